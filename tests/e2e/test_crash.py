"""Crash tests with real processes: the orchestrator or a worker dies (SIGKILL) at the worst moments and is
started again; every instance still finishes, no job's effect happens twice, no status event is lost.

Deterministic points come from `consultflow.platform.faults` (CONSULTFLOW_FAULTS); the chaos test
(test_chaos.py) kills every process at random moments instead.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import pytest
from sqlalchemy import func, select

from consultflow.api.orchestrator.v1 import orchestrator_pb2 as pb
from consultflow.api.orchestrator.v1 import orchestrator_pb2_grpc as pb_grpc
from consultflow.cli.system import LocalSystem
from consultflow.crm.orm import Inquiry
from consultflow.platform.db import Database
from tests.support.bpmn_builder import bpmn, message, operator_xml
from tests.support.identity import local_identity, signed_channel
from tests.support.status import all_status_events

TASKS = ("first", "second", "third")
INSTANCES = 3
INQUIRY = {
    "channel": "email",
    "client_name": "Crash Test Ltd.",
    "contact_name": "Ms Zhao",
    "contact_email": "zhao@example.cn",
    "question": "Will it survive?",
}
PARAMS = {name: name for name in ("channel", "client_name", "contact_name", "contact_email", "question")}


def diagram() -> bytes:
    tasks = "".join(
        f'<serviceTask id="{t}">{operator_xml("crm.record_inquiry", PARAMS)}</serviceTask>' for t in TASKS
    )
    return bpmn(
        "crashy",
        f"""<startEvent id="s"/>{tasks}
        <intermediateCatchEvent id="pause"><timerEventDefinition><timeDuration>"PT1S"</timeDuration></timerEventDefinition></intermediateCatchEvent>
        <intermediateCatchEvent id="reply"><messageEventDefinition messageRef="m_reply"/></intermediateCatchEvent>
        <endEvent id="e"/>""",
        "s -> first\nfirst -> second\nsecond -> third\nthird -> pause\npause -> reply\nreply -> e",
        extra=message("m_reply", "client.reply", "engagement_id"),
    )


@dataclass
class Rig:
    system: LocalSystem
    data_dir: Path
    crashed: set[str] = field(default_factory=set)

    @property
    def stub(self) -> pb_grpc.OrchestratorServiceStub:
        return pb_grpc.OrchestratorServiceStub(signed_channel(self.system.children["orchestrator"].address))

    def call(self, fn_name: str, request: object, attempts: int = 100) -> object:
        """Calls the orchestrator, retrying while it is down (a crashed component is being restarted)."""
        for _ in range(attempts):
            try:
                return getattr(self.stub, fn_name)(request, timeout=5)
            except grpc.RpcError as error:
                if error.code() not in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
                    raise
                self.revive()
                time.sleep(0.2)
        raise AssertionError(f"{fn_name} kept failing")

    def revive(self) -> list[str]:
        """Restarts (without faults) any component that died; tries again if it dies while starting."""
        revived = []
        for name, child in self.system.children.items():
            for _ in range(5):
                if child.process is None or child.process.poll() is None:
                    break
                try:
                    self.system.restart(
                        name, {**self.system.component_env.get(name, {}), "CONSULTFLOW_FAULTS": ""}
                    )
                except RuntimeError:
                    continue  # killed again while starting (the chaos test does that)
                revived.append(name)
                self.crashed.add(name)
        return revived


@pytest.fixture
def rig_factory(tmp_path: Path) -> Iterator[object]:
    systems: list[LocalSystem] = []

    def make(faults: dict[str, str]) -> Rig:
        bpmn_dir = tmp_path / "bpmn"
        bpmn_dir.mkdir(exist_ok=True)
        (bpmn_dir / "crashy.bpmn").write_bytes(diagram())
        common = {"CONSULTFLOW_JOB_TIMEOUT_SECONDS": "2", "CONSULTFLOW_BPMN_DIR": str(bpmn_dir)}
        system = LocalSystem(
            tmp_path / "data",
            identity=local_identity(),
            extra_env=common,
            components=("orchestrator", "crm"),
            component_env={name: {"CONSULTFLOW_FAULTS": plan} for name, plan in faults.items()},
        )
        systems.append(system)
        system.start()
        return Rig(system, tmp_path / "data")

    yield make
    for system in systems:
        system.stop()


def drive(rig: Rig, expect_crash: str | None) -> list[str]:
    """Starts the instances, replies to each, and keeps every component alive until all complete."""
    instance_ids = []
    for n in range(INSTANCES):
        request = pb.CreateInstanceRequest(
            process_id="crashy",
            business_key=f"E{n}",
            variables_json=json.dumps({**INQUIRY, "engagement_id": f"E{n}"}),
        )
        instance_ids.append(rig.call("CreateInstance", request).instance_id)  # type: ignore[attr-defined]
    replied: set[str] = set()
    deadline = time.monotonic() + 90
    while True:
        rig.revive()
        states = {}
        for instance_id in instance_ids:
            instance = rig.call("GetInstance", pb.GetInstanceRequest(instance_id=instance_id))
            states[instance_id] = instance
        for n, instance_id in enumerate(instance_ids):
            waiting = [a.element_id for a in states[instance_id].active_elements]  # type: ignore[attr-defined]
            if "reply" in waiting and instance_id not in replied:
                reply = pb.PublishMessageRequest(
                    name="client.reply", correlation_key=f"E{n}", message_id=f"reply-{n}", ttl_seconds=3600
                )
                rig.call("PublishMessage", reply)
                replied.add(instance_id)
        if all(i.state == pb.INSTANCE_STATE_COMPLETED for i in states.values()):  # type: ignore[attr-defined]
            break
        assert time.monotonic() < deadline, f"instances did not finish: {states}"
        time.sleep(0.2)
    if expect_crash is not None:
        assert expect_crash in rig.crashed, (
            f"the fault never fired in {expect_crash}: the test did not test anything"
        )
    return instance_ids


def check_nothing_lost_or_doubled(rig: Rig, instance_ids: list[str]) -> None:
    crm = Database(f"sqlite:///{rig.data_dir / 'crm.db'}")
    with crm.read() as session:
        per_engagement = dict(
            (row[0], row[1])
            for row in session.execute(
                select(Inquiry.engagement_id, func.count()).group_by(Inquiry.engagement_id)
            )
        )
        inquiry_ids = set(session.scalars(select(Inquiry.inquiry_id)))
    crm.dispose()
    assert per_engagement == {f"E{n}": len(TASKS) for n in range(INSTANCES)}, "a job's effect happened twice"
    events = all_status_events(rig.system.nats_url, credentials=rig.system.nats_credentials())
    assert len({e.id for e in events}) == len(events), "a status event was published twice"
    recorded = Counter(e.subject for e in events if e.type == "inquiry.recorded")
    assert set(recorded) == inquiry_ids and set(recorded.values()) == {1}, (
        "an inquiry's event was lost or doubled"
    )
    completed = Counter(e.subject for e in events if e.type == "instance.completed")
    assert completed == Counter(instance_ids), "an instance.completed event was lost or doubled"


CRASH_POINTS = [
    ("orchestrator", "orchestrator.step.before_commit=4"),  # mid-step
    ("orchestrator", "orchestrator.step.after_commit=3"),  # committed, jobs/events not yet published
    ("orchestrator", "outbox.after_publish=2"),  # published, not yet marked sent
    ("orchestrator", "orchestrator.timer.fired=1"),  # while firing timers
    ("orchestrator", "orchestrator.message.correlated=2"),  # while correlating
    ("crm", "worker.after_handle=2"),  # the job's effect committed, no reply yet
    ("crm", "worker.before_ack=3"),  # replied, not yet acknowledged
]


@pytest.mark.parametrize(("component", "fault"), CRASH_POINTS, ids=[f for _, f in CRASH_POINTS])
def test_crash_at_a_point_loses_nothing_and_doubles_nothing(
    rig_factory: object, component: str, fault: str
) -> None:
    rig = rig_factory({component: fault})  # type: ignore[operator]
    instance_ids = drive(rig, expect_crash=component)
    check_nothing_lost_or_doubled(rig, instance_ids)
