"""Sample engagements end to end on the running system, driven only through gRPC (and read back from
NATS) as real clients would: the records every service holds at the end, and the status events seen."""

from __future__ import annotations

import json
import uuid
from collections import Counter, defaultdict

from consultflow.cli.system import LocalSystem
from consultflow.demo.checks import check
from consultflow.demo.driver import Clients, Driver, Story
from consultflow.demo.stories import stories
from tests.support.groups import DEMO_SYSTEM
from tests.support.status import all_status_events

pytestmark = DEMO_SYSTEM

# Status events each story must have caused, by type (source.entity.event), with how many at least.
EXPECTED_EVENTS: dict[str, dict[str, int]] = {
    "INFEASIBLE": {"crm.inquiry.recorded": 1, "crm.feasibility.assessed": 1, "crm.inquiry.declined": 1},
    "ONSITE": {
        "contracts.quotation.sent": 1,
        "contracts.contract.signed": 1,
        "contracts.contract.distributed": 1,
        "delivery.delivery.planned": 1,
        "delivery.acceptance.reported": 2,
        "delivery.rectification.planned": 1,
        "survey.survey.analysed": 1,
        "crm.revisit.recorded": 1,
        "crm.value_added_service.recorded": 1,
        "crm.opportunity.recorded": 1,
        "crm.inquiry.referred": 1,  # 5.3.3 → 2.1.2: the referred client's inquiry starts a new engagement
        "risk.risk.registered": 1,
        "delivery.work_report.recorded": 1,  # 3.4.1: the team's work and its quality check
        "delivery.quality_check.recorded": 1,
    },
    "ONLINE": {
        "contracts.contract.signed": 1,
        "delivery.indicator.breached": 1,
        "delivery.corrective_action.recorded": 1,
        "risk.warning.raised": 1,
        "risk.warning.acknowledged": 1,
        "survey.problem.recorded": 2,
        "survey.measure.defined": 4,
        "survey.problem.solved": 2,
        "crm.revisit.recorded": 1,
    },
    "AVOIDED": {"risk.risk.registered": 1, "risk.risk.assessed": 1, "crm.inquiry.declined": 1},
    "UNSIGNED": {
        "risk.risk.assessed": 1,
        "risk.response.planned": 2,  # 6.3: another strategy than prescribed, chosen twice
        "risk.response.deviation_rejected": 1,
        "risk.response.deviation_approved": 1,
        "contracts.contract.signed_by_firm": 2,
        "contracts.contract.signature_refused": 1,  # 2.4.3: refused, then the signing period ended
        "contracts.contract.reopened": 1,
        "crm.inquiry.declined": 1,
    },
}
NEVER: dict[str, set[str]] = {
    "INFEASIBLE": {"contracts.quotation.sent"},
    "AVOIDED": {"contracts.contract.signed"},
    "UNSIGNED": {"contracts.contract.signed", "contracts.contract.signed_by_client"},
}
# Events that must come before others of the same story (first occurrences, in the stream's order).
BEFORE: dict[str, list[tuple[str, str]]] = {
    # 3.5.2 from the kick-off: the client hears of the project's progress before execution starts
    "ONLINE": [("delivery.progress_report.sent", "delivery.execution.started")],
}


def test_sample_engagements_end_as_scripted(demo_system: LocalSystem) -> None:
    clients = Clients(demo_system.endpoints())
    engagements: list[Story] = stories(uuid.uuid4().hex[:6])
    try:
        driver = Driver(clients, engagements)
        driver.start()
        driver.run(timeout=300)
        problems = {story.key: check(clients, story) for story in engagements}
    finally:
        clients.close()
    assert problems == {story.key: [] for story in engagements}, json.dumps(
        problems, indent=2, ensure_ascii=False
    )

    seen: dict[str, Counter[str]] = defaultdict(Counter)
    order: dict[str, list[str]] = defaultdict(list)
    ids: list[str] = []
    for event in all_status_events(demo_system.nats_url, credentials=demo_system.nats_credentials()):
        ids.append(event.id)
        engagement = event.correlation.get("engagement_id", "")
        seen[engagement][f"{event.source}.{event.type}"] += 1
        order[engagement].append(f"{event.source}.{event.type}")
    assert len(ids) == len(set(ids)), "a status event was published twice"
    for story in engagements:
        kind = story.kind
        counts = seen[story.key]
        missing = {k: (counts[k], v) for k, v in EXPECTED_EVENTS[kind].items() if counts[k] < v}
        assert not missing, f"{story.key}: events (seen, expected at least) {missing}"
        unexpected = NEVER.get(kind, set()) & set(counts)
        assert not unexpected, f"{story.key}: {unexpected}"
        for first, then in BEFORE.get(kind, []):
            events = order[story.key]
            assert first in events and then in events and events.index(first) < events.index(then), (
                f"{story.key}: {first} does not come before {then}"
            )
        if kind in ("ONSITE", "ONLINE"):
            assert counts["contracts.contract.signed"] == 1, "exactly one signed contract"
        assert counts["orchestrator.instance.completed"] >= 1, (
            f"{story.key}: the engagement's completion was not announced"
        )
