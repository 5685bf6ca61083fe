"""A migration batch survives `kill -9` of the orchestrator: killed inside an item's transaction (moved and
marked, not committed), right after an item committed, and between items. At the moment of death every
instance is either fully migrated (target version, item MIGRATED, one instance.migrated event, counted)
or untouched (source version, same revision, item PENDING, no event); after a restart the batch resumes
by itself and completes, each instance migrated exactly once."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import func, select

from consultflow.api.orchestrator.v1 import orchestrator_pb2 as pb
from consultflow.api.orchestrator.v1 import orchestrator_pb2_grpc as pb_grpc
from consultflow.cli.system import LocalSystem
from consultflow.orchestrator.orm import HistoryEvent, Instance, MigrationBatch, MigrationItem
from consultflow.platform.db import Database
from tests.support.identity import local_identity, signed_channel, token
from tests.support.migration_diagrams import V1, V2

INSTANCES = 5


@dataclass(frozen=True)
class Row:
    definition_id: str
    revision: int
    item: str
    events: int


@pytest.fixture
def system_factory(tmp_path: Path, database_url: str) -> Iterator[object]:
    """The orchestrator alone as a separate process, on a fresh SQLite file or PostgreSQL schema."""
    systems: list[LocalSystem] = []

    def make(fault: str) -> LocalSystem:
        empty = tmp_path / "bpmn"
        empty.mkdir(exist_ok=True)
        system = LocalSystem(
            tmp_path / "data",
            identity=local_identity(),
            extra_env={"CONSULTFLOW_BPMN_DIR": str(empty)},
            components=("orchestrator",),
            with_console=False,
            component_env={
                "orchestrator": {"CONSULTFLOW_FAULTS": fault, "CONSULTFLOW_DATABASE_URL": database_url}
            },
        )
        systems.append(system)
        system.start()
        return system

    yield make
    for system in systems:
        system.stop()


def stub_of(system: LocalSystem) -> pb_grpc.OrchestratorServiceStub:
    return pb_grpc.OrchestratorServiceStub(signed_channel(system.children["orchestrator"].address))


def rows(db: Database, batch_id: str) -> dict[str, Row]:
    with db.read() as session:
        chosen = select(MigrationItem).where(MigrationItem.batch_id == batch_id)
        items = {i.instance_id: i.state for i in session.scalars(chosen)}
        events = dict(
            session.execute(
                select(HistoryEvent.instance_id, func.count())
                .where(HistoryEvent.type == "instance.migrated")
                .group_by(HistoryEvent.instance_id)
            ).all()
        )
        return {
            i.instance_id: Row(
                i.definition_id, i.revision, items[i.instance_id], events.get(i.instance_id, 0)
            )
            for i in session.scalars(select(Instance).where(Instance.instance_id.in_(list(items))))
        }


def counters(db: Database, batch_id: str) -> tuple[str, int, int]:
    with db.read() as session:
        batch = session.get(MigrationBatch, batch_id)
        assert batch is not None
        return batch.state, batch.migrated, batch.total


CRASH_POINTS = [
    "orchestrator.migration.item_before_commit=2",  # the second instance moved and marked, not committed
    "orchestrator.step.after_commit=2",  # the second instance committed, nothing after it ran
    "orchestrator.migration.between_items=3",  # three settled, the fourth not begun
]


@pytest.mark.parametrize("fault", CRASH_POINTS)
def test_a_batch_killed_mid_way_leaves_each_instance_whole_and_resumes(
    system_factory: object, database_url: str, fault: str
) -> None:
    system: LocalSystem = system_factory(fault)  # type: ignore[operator]
    stub = stub_of(system)
    stub.DeployResources(
        pb.DeployResourcesRequest(resources=[pb.Resource(name="onboarding.bpmn", content=V1)])
    )
    ids = [
        stub.CreateInstance(
            pb.CreateInstanceRequest(
                process_id="onboarding", business_key=f"K{n}", variables_json=json.dumps({"path": "review"})
            )
        ).instance_id
        for n in range(INSTANCES)
    ]
    revisions = {i: stub.GetInstance(pb.GetInstanceRequest(instance_id=i)).revision for i in ids}
    stub.DeployResources(
        pb.DeployResourcesRequest(resources=[pb.Resource(name="onboarding.bpmn", content=V2)])
    )
    batch = stub.StartMigration(
        pb.StartMigrationRequest(
            plan=pb.MigrationPlan(source_definition_id="onboarding:1", target_definition_id="onboarding:2"),
            reason="crash test",
        )
    )
    child = system.children["orchestrator"]
    assert child.process is not None
    deadline = time.monotonic() + 60
    while child.process.poll() is None:
        assert time.monotonic() < deadline, "the fault never fired: the test did not test anything"
        time.sleep(0.05)

    db = Database(database_url)
    try:
        at_death = rows(db, batch.batch_id)
        moved = {i for i, r in at_death.items() if r.definition_id == "onboarding:2"}
        for instance_id, row in at_death.items():
            if instance_id in moved:
                assert (row.item, row.events) == ("MIGRATED", 1), row
                assert row.revision > revisions[instance_id], row
            else:
                assert row == Row("onboarding:1", revisions[instance_id], "PENDING", 0), row
        assert 0 < len(moved) < INSTANCES, f"killed at {fault} with {len(moved)} moved"
        assert counters(db, batch.batch_id) == ("RUNNING", len(moved), INSTANCES)

        system.restart("orchestrator", {"CONSULTFLOW_FAULTS": "", "CONSULTFLOW_DATABASE_URL": database_url})
        stub = stub_of(system)
        deadline = time.monotonic() + 60
        while stub.GetMigration(pb.GetMigrationRequest(batch_id=batch.batch_id)).state != (
            pb.MIGRATION_STATE_COMPLETED
        ):
            assert time.monotonic() < deadline, "the batch did not resume after the restart"
            time.sleep(0.1)
        after = rows(db, batch.batch_id)
        assert {r.definition_id for r in after.values()} == {"onboarding:2"}
        assert {(r.item, r.events) for r in after.values()} == {("MIGRATED", 1)}
        assert counters(db, batch.batch_id) == ("COMPLETED", INSTANCES, INSTANCES)
        for instance_id in ids:  # the carried-over user task still waits, once
            tasks = stub.ListUserTasks(pb.ListUserTasksRequest(instance_id=instance_id)).user_tasks
            assert [t.element_id for t in tasks if t.state == "OPEN"] == ["review"]
    finally:
        db.dispose()


def test_migration_run_wait_outlasts_an_orchestrator_crash(system_factory: object, database_url: str) -> None:
    """`consultflow migration run --wait` (a separate process) while the orchestrator dies between two
    items and is started again: it says it waits, then reports the batch completed as if nothing happened."""
    system: LocalSystem = system_factory("orchestrator.migration.between_items=2")  # type: ignore[operator]
    stub = stub_of(system)
    stub.DeployResources(
        pb.DeployResourcesRequest(resources=[pb.Resource(name="onboarding.bpmn", content=V1)])
    )
    for n in range(INSTANCES):
        stub.CreateInstance(
            pb.CreateInstanceRequest(
                process_id="onboarding", business_key=f"K{n}", variables_json=json.dumps({"path": "review"})
            )
        )
    stub.DeployResources(
        pb.DeployResourcesRequest(resources=[pb.Resource(name="onboarding.bpmn", content=V2)])
    )
    child = system.children["orchestrator"]
    env = {
        **os.environ,
        "CONSULTFLOW_ORCHESTRATOR_ADDRESS": child.address,
        "CONSULTFLOW_CA_FILE": str(local_identity().ca),
        "CONSULTFLOW_TOKEN": token("otto", roles=["ops"]),
    }
    argv = ["migration", "run", "--from", "onboarding:1", "--to", "onboarding:2", "--reason", "r", "--wait"]
    cli = subprocess.Popen(
        [sys.executable, "-m", "consultflow.cli.main", *argv],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert child.process is not None
        deadline = time.monotonic() + 60
        while child.process.poll() is None:
            assert time.monotonic() < deadline, "the fault never fired: the test did not test anything"
            time.sleep(0.05)
        system.restart("orchestrator", {"CONSULTFLOW_FAULTS": "", "CONSULTFLOW_DATABASE_URL": database_url})
        printed, _ = cli.communicate(timeout=120)
    finally:
        if cli.poll() is None:
            cli.kill()
    assert cli.returncode == 0, printed
    assert "the orchestrator is unavailable: waiting for it" in printed
    assert f"completed: {INSTANCES} migrated, 0 skipped, 0 failed, 0 pending of {INSTANCES}" in printed
