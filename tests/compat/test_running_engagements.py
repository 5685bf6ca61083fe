"""Engagements already running survive a release (issue 12, "Engagements already running").

The whole system starts with the orchestrator deploying the frozen diagrams of tests/fixtures/diagrams_v1.
Engagements are driven (through the public APIs, as the demo does) to points inside intake, implementation,
delivery acceptance and follow-up, where each one waits at a user task or a receive task nobody answers yet.
Then the release: the orchestrator stops and starts again with the current bpmn/, deploying what changed
(`CONSULTFLOW_DEPLOY_AT_START=changed`, as a release that ships its diagrams does; the default deploys only
processes never deployed) and reading the current status-messages.toml. The waiting engagements stay on
v1, a new one starts on the newest version, and the v1 ones are played to their end against the current
services: every job succeeds, no incident.

The people's decisions and the client's acts below are keyed by v1's element and form field ids on purpose:
they answer the v1 forms those instances show, whatever the current diagrams ask.
"""

from __future__ import annotations

import json
import signal
import time
import tomllib
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from consultflow.api.orchestrator.v1 import orchestrator_pb2 as pb
from consultflow.cli.demo import DEMO_TIMERS, demo_env, timers_file
from consultflow.cli.system import LocalSystem
from consultflow.demo.driver import (
    TIMEOUT,
    Clients,
    Driver,
    Story,
    accept_quote,
    answer_survey,
    outcome_of,
    report_acceptance,
    sign_contract,
)

ROOT = Path(__file__).resolve().parents[2]
V1 = ROOT / "tests" / "fixtures" / "diagrams_v1"
CURRENT = ROOT / "bpmn"

FEASIBLE = {"technical_feasible": True, "economic_feasible": True, "time_feasible": True}
CRITERIA_MET = {f"{c}_verdict": "met" for c in ("soundness", "feasibility", "innovation", "risk_response")}
# v1's forms: the decisions every engagement makes (other required fields get the driver's sample values)
V1_DECISIONS: dict[str, list[dict[str, Any]]] = {
    "understand_needs": [{"communication_mode": "phone"}],
    "assess_feasibility": [FEASIBLE],
    "review_proposal": [{"proposal_verdict": "approved"}],
    "legal_review": [{"legal_verdict": "approved"}],
    "collect_data_form": [{"site_visit_needed": False}],
    "review_solution": [{**CRITERIA_MET, "solution_verdict": "approved"}],
    "review_deliverables_form": [
        {"logic_ok": True, "consistency_ok": True, "accuracy_ok": True, "contract_conformance_ok": True}
    ],
    "delivery_needs_form": [
        {"client_preference": "onsite", "needs_demonstration": True, "client_remote": False}
    ],
    "plan_survey_form": [{"survey_method": "questionnaire"}],
    "rectify_and_report_form": [{"problem_solved": True}],
    "revisit_client_form": [{"revisit_method": "phone"}],
    "risk_review_form": [{"measures_carried_out": True, "measures_effective": True}],
    "assess_change_form": [{"change_decision": "accepted"}],
    "identify_problem_form": [{"problem_nature": "result", "problem_severity": "moderate"}],
}
# v1's receive tasks where the client acts, and what the client does there (the services' RPCs)
V1_CLIENT_ACTS: dict[str, Callable[[Clients, Story], None]] = {
    "await_quote_answer": accept_quote,
    "await_client_signature": sign_contract,
    "client_acceptance": report_acceptance,
    "await_survey_response": answer_survey,
}
# stage → the v1 element the engagement waits at during the release (user task or receive task)
HOLDS = {
    "intake-task": "assess_feasibility",
    "intake-client": "await_client_signature",
    "implementation": "review_solution",
    "acceptance": "client_acceptance",
    "follow-up": "await_survey_response",
}
DRIVE_TIMEOUT = 240.0


class HoldingDriver(Driver):
    """The demo's driver with v1's client acts; a story's `held` elements (user tasks and receive tasks)
    are left waiting until released."""

    def _follow(self, story: Story) -> None:
        instance = self.clients.orchestrator.GetInstance(
            pb.GetInstanceRequest(instance_id=story.instance_id, history_limit=1), timeout=TIMEOUT
        )
        story.waiting = [a.element_id for a in instance.active_elements if a.type != "boundaryEvent"]
        if instance.incidents:
            incident = instance.incidents[0]
            story.outcome = f"stuck: {incident.kind} at {incident.element_id}: {incident.message}"
            return
        if instance.state != pb.INSTANCE_STATE_ACTIVE:
            if self._risk_management_done(story):
                story.outcome = outcome_of(instance, json.loads(instance.variables_json or "{}"))
            return
        for element in instance.active_elements:
            act = V1_CLIENT_ACTS.get(element.element_id)
            if act is not None and element.element_id not in story.held:
                act(self.clients, story)


def v1_story(stage: str, run: str) -> Story:
    return Story(
        key=f"COMPAT-{stage}-{run}",
        title=f"started on v1, waits in {stage} during the release",
        inquiry={
            "channel": "email",
            "client_name": f"Legacy Client {stage}",
            "client_industry": "manufacturing",
            "contact_name": "Ms Old",
            "contact_email": "old@legacy.example",
            "contact_phone": "",
            "question": "Restructure our export business",
        },
        decisions=V1_DECISIONS,
        held={HOLDS[stage]},
    )


def demo_timers(folder: Path) -> Path:
    """The demo's short timer periods by element id: v1's (frozen beside its diagrams) over today's, so a
    timer the current diagrams renamed still runs short in a v1 instance."""
    periods: dict[str, str] = {}
    for path in (timers_file(), V1 / "timers.toml"):
        periods.update(tomllib.loads(path.read_text(encoding="utf-8"))["timers"])
    merged = folder / "timers.toml"
    merged.write_text("[timers]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in periods.items()))
    return merged


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalSystem]:
    """The whole system, its orchestrator deploying v1 (the services are today's)."""
    data_dir = tmp_path_factory.mktemp("compat")
    running = LocalSystem(
        data_dir,
        extra_env={**demo_env(), "CONSULTFLOW_TIMER_OVERRIDES": str(demo_timers(data_dir))},
        component_env={"orchestrator": {"CONSULTFLOW_BPMN_DIR": str(V1)}},
        marker=DEMO_TIMERS,
    )
    running.start()
    yield running
    running.stop()


def drive_until(driver: HoldingDriver, done: Callable[[], bool], what: str, may_end: bool) -> None:
    """Plays everyone around the stories until `done`; fails at once on an incident, or on an engagement
    that ended where none `may_end`."""
    deadline = time.monotonic() + DRIVE_TIMEOUT
    while not done():
        ended = {s.key: s.outcome for s in driver.stories.values() if s.outcome}
        assert not {k: o for k, o in ended.items() if o.startswith("stuck") or not may_end}, ended
        if time.monotonic() > deadline:
            waiting = {s.key: (s.outcome or s.waiting) for s in driver.stories.values()}
            raise AssertionError(f"{what} not reached in {DRIVE_TIMEOUT:.0f}s: {waiting}")
        driver.tick()
        time.sleep(0.25)


def release(system: LocalSystem) -> None:
    """Stops the orchestrator as a release does (SIGTERM) and starts it with the current bpmn/."""
    process = system.children["orchestrator"].process
    assert process is not None
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=30)
    system.restart(
        "orchestrator", env={"CONSULTFLOW_BPMN_DIR": str(CURRENT), "CONSULTFLOW_DEPLOY_AT_START": "changed"}
    )


def latest_definition(clients: Clients, process_id: str) -> pb.ProcessDefinition:
    found = clients.orchestrator.ListDefinitions(
        pb.ListDefinitionsRequest(process_id=process_id, latest_only=True), timeout=TIMEOUT
    ).definitions
    assert len(found) == 1, found
    return found[0]


def failed_jobs(clients: Clients, instance_id: str) -> list[str]:
    history = clients.orchestrator.GetInstance(
        pb.GetInstanceRequest(instance_id=instance_id), timeout=TIMEOUT
    ).history
    return [f"{e.element_id}: {e.detail}" for e in history if e.type == "job.failed"]


@pytest.mark.timeout(2 * DRIVE_TIMEOUT + 120)
def test_engagements_started_on_v1_finish_after_the_current_diagrams_are_deployed(
    system: LocalSystem,
) -> None:
    clients = Clients(system.endpoints())
    run = uuid.uuid4().hex[:6]
    stories = [v1_story(stage, run) for stage in HOLDS]
    try:
        driver = HoldingDriver(clients, stories)
        driver.start()
        v1_engagement = latest_definition(clients, "engagement").definition_id
        v1_risk = latest_definition(clients, "risk_management").definition_id
        drive_until(driver, lambda: all(s.held <= set(s.waiting) for s in stories), "the holds", False)
        started_on = definitions(clients, stories)
        assert sorted(started_on.values()) == sorted([v1_engagement, v1_risk] * len(stories))

        release(system)
        current = latest_definition(clients, "engagement")
        if (CURRENT / "engagement.bpmn").read_bytes() != (V1 / "engagement.bpmn").read_bytes():
            assert current.definition_id != v1_engagement, "the release deploys the changed engagement"
        assert definitions(clients, stories) == started_on, "running instances stay on their version"
        new = clients.orchestrator.CreateInstance(
            pb.CreateInstanceRequest(
                process_id="engagement",
                business_key=f"COMPAT-NEW-{run}",
                variables_json=json.dumps({"engagement_id": f"COMPAT-NEW-{run}", **stories[0].inquiry}),
            ),
            timeout=TIMEOUT,
        )
        assert new.definition_id == current.definition_id, "a new engagement starts on the newest version"
        clients.orchestrator.CancelInstance(
            pb.CancelInstanceRequest(instance_id=new.instance_id, reason="only its version mattered"),
            timeout=TIMEOUT,
        )

        for story in stories:
            story.held.clear()
        drive_until(driver, lambda: all(s.finished for s in stories), "the end of every v1 engagement", True)
        assert {s.key: s.outcome for s in stories} == {s.key: "closed" for s in stories}
        assert definitions(clients, stories) == started_on
        failed = {i: failed_jobs(clients, i) for i in started_on}
        assert {i: f for i, f in failed.items() if f} == {}, "jobs of v1 instances failed"
        incidents = clients.orchestrator.ListIncidents(
            pb.ListIncidentsRequest(include_resolved=True, page_size=500), timeout=TIMEOUT
        ).incidents
        assert [f"{i.element_id}: {i.message}" for i in incidents] == []
    finally:
        clients.close()


def definitions(clients: Clients, stories: list[Story]) -> dict[str, str]:
    """Instance id → definition id of the stories' engagements and their risk management."""
    found: dict[str, str] = {}
    for story in stories:
        for process_id in ("engagement", "risk_management"):
            request = pb.ListInstancesRequest(process_id=process_id, business_key=story.key)
            for instance in clients.orchestrator.ListInstances(request, timeout=TIMEOUT).instances:
                found[instance.instance_id] = instance.definition_id
    return found
