"""Chaos: while several engagements run, nats-server, the orchestrator and each service are killed
(SIGKILL) at random moments and brought back by the supervisor `consultflow up` uses; nothing is lost and
nothing is doubled.

Each engagement is a skeleton of the engagement's steps that reaches every service with its real
operations — crm records the inquiry (2.1.2), risk registers a risk (6.1.1), contracts prepares the
quotation (2.3.1), delivery opens the project of the signed contract (3.1.1), survey plans the
satisfaction survey (5.1.1) — then waits for a timer and for the client's reply (a message). The contract
each project needs is made beforehand through the crm and contracts APIs (one more inquiry and quotation
per engagement, before any kill).

Seeded: the seed is printed; `CONSULTFLOW_CHAOS_SEED=<seed>` replays the same kills at the same moments
(the moments are relative, so a replay is close, not identical). Bounded: kills stop after
`KILL_WINDOW_SECONDS`, the engagements must end within `DEADLINE_SECONDS`.
"""

from __future__ import annotations

import json
import os
import random
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import grpc
import pytest
from sqlalchemy import create_engine, text

from consultflow.api.contracts.v1 import contracts_pb2_grpc
from consultflow.api.crm.v1 import crm_pb2_grpc
from consultflow.api.orchestrator.v1 import orchestrator_pb2 as pb
from consultflow.api.orchestrator.v1 import orchestrator_pb2_grpc as pb_grpc
from consultflow.cli.system import LocalSystem, Supervision, SupervisionEvent
from tests.support.bpmn_builder import bpmn, bpmn_folder, message, operator_xml
from tests.support.contracts import Services, signed_contract
from tests.support.delivery import DELIVERY_TERMS
from tests.support.identity import local_identity, signed_channel
from tests.support.polling import eventually
from tests.support.status import all_status_events

T = TypeVar("T")
SEED = int(os.environ.get("CONSULTFLOW_CHAOS_SEED") or random.SystemRandom().randrange(1_000_000))
ENGAGEMENTS = 8
VICTIMS = ("nats", "orchestrator", "crm", "contracts", "delivery", "survey", "risk")
EXTRA_KILLS = 4
KILL_WINDOW_SECONDS = 16.0
DEADLINE_SECONDS = 75.0
RETRYABLE = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
INQUIRY = {
    "channel": "email",
    "client_name": "Chaos Monkey Ltd.",
    "contact_name": "Ms Zhao",
    "contact_email": "zhao@example.cn",
    "question": "Will it survive?",
}
STEPS: list[tuple[str, str, dict[str, str]]] = [
    ("inquiry", "crm.record_inquiry", {name: name for name in INQUIRY}),
    (
        "risk",
        "risk.register_risk",
        {
            "risk_description": "'Key people may leave'",
            "risk_stage": "'intake'",
            "risk_source": "'chaos'",
        },
    ),
    (
        "quotation",
        "contracts.prepare_quotation",
        {
            "client_id": "client_id",
            "consulting_fee": "'52000.00'",
            "currency": "'CNY'",
            "tax_rate": "'0.06'",
            "validity_days": "30",
        },
    ),
    ("project", "delivery.open_project", {"contract_id": "contract_id"}),
    (
        "survey",
        "survey.create_plan",
        {
            "client_id": "client_id",
            "survey_method": "'questionnaire'",
            "respondents": "'Ms Zhao'",
            "survey_date": "'2025-06-01'",
        },
    ),
]
RESULTS = ("inquiry_id", "risk_id", "quotation_id", "project_id", "survey_id")
# (service database, table, rows per engagement): the setup's contract adds one inquiry and one quotation
ROWS: tuple[tuple[str, str, int], ...] = (
    ("crm", "inquiries", 2),
    ("risk", "risks", 1),
    ("contracts", "quotations", 2),
    ("delivery", "projects", 1),
    ("survey", "surveys", 1),
)
TIMER = '<timerEventDefinition><timeDuration>"PT1S"</timeDuration></timerEventDefinition>'
REPLY = '<messageEventDefinition messageRef="m_reply"/>'


def diagram() -> bytes:
    """start → a job at every service (many retries: a peer may be down for a while) → timer → reply.

    The back-off base is in seconds (1, 2, 4 … a failed job waits): a job that fails because a peer it calls
    was just killed is retried well inside the deadline."""
    tasks = "".join(
        f'<serviceTask id="{task}" name="{task}">{operator_xml(op, params, retries=30, backoff=1)}'
        "</serviceTask>"
        for task, op, params in STEPS
    )
    chain = [task for task, _, _ in STEPS]
    flows = "\n".join(f"{a} -> {b}" for a, b in zip(["s", *chain], [*chain, "pause"], strict=True))
    return bpmn(
        "chaos",
        f'<startEvent id="s"/>{tasks}<intermediateCatchEvent id="pause">{TIMER}</intermediateCatchEvent>'
        f'<intermediateCatchEvent id="reply">{REPLY}</intermediateCatchEvent><endEvent id="e"/>',
        flows + "\npause -> reply\nreply -> e",
        extra=message("m_reply", "client.reply", "engagement_id"),
    )


@pytest.fixture
def system(tmp_path: Path) -> Iterator[LocalSystem]:
    folder = bpmn_folder(tmp_path, {"chaos": diagram()})
    running = LocalSystem(
        tmp_path / "data",
        identity=local_identity(),
        extra_env={"CONSULTFLOW_JOB_TIMEOUT_SECONDS": "3"},
        component_env={"orchestrator": {"CONSULTFLOW_BPMN_DIR": str(folder)}},
        # chaos kills a child again soon after its restart: allow that, but keep the back-off
        supervision=Supervision(first_backoff_seconds=0.2, max_backoff_seconds=2.0, crash_loop_limit=50),
    )
    running.start()
    yield running
    running.stop()


def ask(system: LocalSystem, method: str, request: object) -> Any:
    """Calls the orchestrator once on a fresh channel (its process may have been restarted)."""
    with signed_channel(system.children["orchestrator"].address) as channel:
        return getattr(pb_grpc.OrchestratorServiceStub(channel), method)(request, timeout=5)


def retried(fn: Callable[[], T], deadline: float) -> T:
    """`fn` until it is answered: a component that was killed is being restarted meanwhile."""
    while True:
        try:
            return fn()
        except grpc.RpcError as error:
            if error.code() not in RETRYABLE or time.monotonic() > deadline:
                raise
            time.sleep(0.2)


class Killer(threading.Thread):
    """SIGKILLs every victim once and a few more at random, at random moments in the kill window."""

    def __init__(self, system: LocalSystem, chance: random.Random) -> None:
        super().__init__(daemon=True)
        self.system = system
        self.plan = [*chance.sample(VICTIMS, len(VICTIMS)), *chance.choices(VICTIMS, k=EXTRA_KILLS)]
        self.pauses = [chance.uniform(0.5, 2 * KILL_WINDOW_SECONDS / len(self.plan)) for _ in self.plan]
        self.killed: list[tuple[float, str]] = []
        self.done = threading.Event()
        self.started = time.monotonic()  # reset by start()

    def start(self) -> None:
        self.started = time.monotonic()
        super().start()

    def run(self) -> None:
        for victim, pause in zip(self.plan, self.pauses, strict=True):
            if self.done.wait(pause):
                return
            while not self.done.is_set():  # a victim still restarting is killed once it runs again
                process = self.system.nats if victim == "nats" else self.system.children[victim].process
                if process is not None and process.poll() is None:
                    process.kill()
                    self.killed.append((round(time.monotonic() - self.started, 1), victim))
                    break
                self.done.wait(0.1)


def test_chaos_kills_lose_nothing_and_double_nothing(system: LocalSystem) -> None:
    print(f"\nchaos seed {SEED} (CONSULTFLOW_CHAOS_SEED={SEED} replays it)")
    chance = random.Random(SEED)
    services = Services(
        contracts_pb2_grpc.ContractsServiceStub(signed_channel(system.children["contracts"].address)),
        crm_pb2_grpc.CrmServiceStub(signed_channel(system.children["crm"].address)),
    )
    keys = [f"CHAOS-{SEED}-{n}" for n in range(ENGAGEMENTS)]
    contracts = {key: signed_contract(services, key, DELIVERY_TERMS).contract_id for key in keys}

    killer = Killer(system, chance)
    timeline: list[tuple[float, str, str, str]] = []

    def report(event: SupervisionEvent) -> None:
        what = event.detail.split(";")[0]
        timeline.append((round(time.monotonic() - killer.started, 1), event.name, event.kind, what))

    stopping = threading.Event()
    supervisor = threading.Thread(target=system.supervise, args=(stopping.is_set, 0.1, report), daemon=True)
    supervisor.start()
    killer.start()
    started = time.monotonic()
    deadline = started + DEADLINE_SECONDS
    try:
        try:
            instance_ids = drive(system, keys, contracts, deadline)
        finally:
            print(f"chaos: kills {killer.killed}\nchaos: supervisor {timeline}")
        elapsed = time.monotonic() - started
        killer.join()  # the engagements start over the kill window, so they run while it lasts
        eventually(lambda: not system.restart_pending(), "the supervisor to restart the last victim", 30)
        print(f"chaos: {len(killer.killed)} kills, engagements done in {elapsed:.1f}s")
        assert {victim for _, victim in killer.killed} == set(VICTIMS), "every process was killed"
        check_nothing_lost_or_doubled(system, keys, instance_ids, deadline)
    finally:
        killer.done.set()
        killer.join()
        system.stop()  # first: children the supervisor thread started die with it (PR_SET_PDEATHSIG)
        stopping.set()
        supervisor.join()


def drive(system: LocalSystem, keys: list[str], contracts: dict[str, str], deadline: float) -> dict[str, str]:
    """Starts the engagements spread over the kill window and sends each its reply once it waits, until
    every one completed."""
    instance_ids: dict[str, str] = {}
    starts = {key: time.monotonic() + n * KILL_WINDOW_SECONDS / len(keys) for n, key in enumerate(keys)}
    replied: set[str] = set()
    completed: set[str] = set()
    while len(completed) < len(keys):
        assert time.monotonic() < deadline, f"not all engagements ended: {sorted(set(keys) - completed)}"
        for key in keys:
            try:
                if key not in instance_ids and time.monotonic() >= starts[key]:
                    variables = {**INQUIRY, "engagement_id": key, "contract_id": contracts[key]}
                    request = pb.CreateInstanceRequest(
                        process_id="chaos", business_key=key, variables_json=json.dumps(variables)
                    )  # idempotent by business key: a retried start returns the first instance
                    created = ask(system, "CreateInstance", request)
                    instance_ids[key] = created.instance_id
                if key not in instance_ids or key in completed:
                    continue
                get = pb.GetInstanceRequest(instance_id=instance_ids[key], history_limit=1)
                instance = ask(system, "GetInstance", get)
                assert not instance.incidents, f"{key}: {instance.incidents}"
                if instance.state == pb.INSTANCE_STATE_COMPLETED:
                    completed.add(key)
                elif "reply" in {a.element_id for a in instance.active_elements} and key not in replied:
                    reply = pb.PublishMessageRequest(
                        name="client.reply", correlation_key=key, message_id=f"reply-{key}", ttl_seconds=3600
                    )  # de-duplicated by its id: a retried publish correlates once
                    ask(system, "PublishMessage", reply)
                    replied.add(key)
            except grpc.RpcError as error:
                if error.code() not in RETRYABLE:
                    raise
        time.sleep(0.2)
    return instance_ids


def check_nothing_lost_or_doubled(
    system: LocalSystem, keys: list[str], instance_ids: dict[str, str], deadline: float
) -> None:
    for key, instance_id in instance_ids.items():
        get = pb.GetInstanceRequest(instance_id=instance_id)
        instance = retried(partial(ask, system, "GetInstance", get), deadline + 30)
        variables = json.loads(instance.variables_json)
        assert all(variables.get(name) for name in RESULTS), f"{key}: {variables}"
    for component, table, rows in ROWS:
        engine = create_engine(f"sqlite:///{system.data_dir / (component + '.db')}")
        with engine.connect() as connection:
            counts: dict[str, int] = dict(
                connection.execute(
                    text(f"SELECT engagement_id, count(*) FROM {table} GROUP BY engagement_id")
                ).all()
            )
        engine.dispose()
        assert counts == dict.fromkeys(keys, rows), f"{component}.{table}: a job acted twice or never"

    events = all_status_events(system.nats_url, credentials=system.nats_credentials())
    ids = [e.id for e in events]
    assert len(ids) == len(set(ids)), "a status event was stored twice"
    for kind in ("instance.created", "instance.completed"):
        seen = Counter(e.subject for e in events if (e.source, e.type) == ("orchestrator", kind))
        assert seen == Counter(instance_ids.values()), f"an {kind} event was lost or doubled"
    per_engagement: dict[str, Counter[str]] = defaultdict(Counter)
    for event in events:
        key = event.correlation.get("engagement_id", "")
        if key in keys and event.source != "orchestrator":
            per_engagement[key][f"{event.source}.{event.type}"] += 1
    print(f"chaos: status events of one engagement {dict(per_engagement[keys[0]])}")
    first = per_engagement[keys[0]]
    assert all(per_engagement[key] == first for key in keys), (
        f"the engagements' status events differ: {json.dumps(per_engagement, indent=1)}"
    )
    for expected in ("crm.inquiry.recorded", "risk.risk.registered", "contracts.quotation.prepared"):
        assert expected in first, f"{expected} missing: {first}"
