"""Two orchestrator replicas on one database: each due timer fires once, in the replica that owns its
instance's partition, and a replica that loses the race for a timer writes no new revision."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from consultflow.api.orchestrator.v1 import orchestrator_pb2 as pb
from consultflow.cli.system import free_port
from consultflow.orchestrator.app import build
from consultflow.orchestrator.orm import Instance, JobRecord
from consultflow.orchestrator.usecases import jobs, messages, timers
from consultflow.platform.claims import LeaseKeeper, SharedSqlite
from consultflow.platform.clock import ShiftedClock
from tests.integration.orchestrator.test_start_events import engagement_and_risk
from tests.support.bpmn_builder import bpmn, bpmn_folder, flows_xml, message, service_task
from tests.support.components import ComponentThread, component_settings
from tests.support.orchestrator_harness import Harness
from tests.support.polling import eventually
from tests.support.system import InProcessSystem

TIMER = bpmn(
    "p",
    '<startEvent id="s"/><intermediateCatchEvent id="wait"><timerEventDefinition>'
    '<timeDuration>"P1D"</timeDuration></timerEventDefinition></intermediateCatchEvent><endEvent id="e"/>',
    "s -> wait\nwait -> e",
)
INSTANCES = 40


@pytest.fixture
def replicas(database_url: str) -> Iterator[tuple[Harness, Harness, LeaseKeeper, LeaseKeeper]]:
    clock = ShiftedClock()
    first, second = Harness(database_url, clock=clock), Harness(database_url, clock=clock)
    # a long TTL: the leases must not lapse on a slow machine between the rounds below and the scans
    keepers = (
        LeaseKeeper(first.db, ttl=timedelta(minutes=1)),
        LeaseKeeper(second.db, ttl=timedelta(minutes=1)),
    )
    for _ in range(3):
        for keeper in keepers:
            keeper.tick()
    yield first, second, *keepers
    first.close()
    second.close()


def _revisions(h: Harness, ids: list[str]) -> dict[str, int]:
    query = select(Instance.instance_id, Instance.revision).where(Instance.instance_id.in_(ids))
    with h.db.read() as session:
        return {row.instance_id: row.revision for row in session.execute(query)}


def test_each_due_timer_fires_once_in_the_replica_that_owns_it(
    replicas: tuple[Harness, Harness, LeaseKeeper, LeaseKeeper],
) -> None:
    first, second, k1, k2 = replicas
    first.deploy(p=TIMER)
    ids = [first.start("p") for _ in range(INSTANCES)]
    before = _revisions(first, ids)
    first.clock.advance(timedelta(days=2))
    with ThreadPoolExecutor(2) as pool:
        one = pool.submit(lambda: timers.fire_due_timers(first.orchestrator, owned=k1.owned()))
        two = pool.submit(lambda: timers.fire_due_timers(second.orchestrator, owned=k2.owned()))
        fired = one.result(), two.result()
    print(f"\nfired by the replicas: {fired}")
    assert sum(fired) == INSTANCES and min(fired) > 0, "each replica fired the timers of its partitions"
    after = _revisions(first, ids)
    for instance in ids:
        assert first.status(instance) == "COMPLETED"
        assert first.history(instance, "timer.fired") == ["timer.fired wait"]
        assert after[instance] == before[instance] + 1, "one step, one revision"
    assert timers.fire_due_timers(first.orchestrator, owned=k1.owned()) == 0


def test_a_replica_that_lost_the_race_writes_no_revision(
    replicas: tuple[Harness, Harness, LeaseKeeper, LeaseKeeper],
) -> None:
    first, second, _, _ = replicas
    first.deploy(p=TIMER)
    ids = [first.start("p") for _ in range(5)]
    first.clock.advance(timedelta(days=2))
    assert first.orchestrator.fire_due_timers() == 5  # the winner
    fired = _revisions(first, ids)
    for instance in ids:  # the loser had read the same due instances and wakes them now
        second.orchestrator.step(instance, timers.wake)
    assert _revisions(second, ids) == fired
    waiting = [first.start("p") for _ in range(3)]  # a wake with nothing due yet writes nothing either
    started = _revisions(first, waiting)
    for instance in waiting:
        second.orchestrator.step(instance, timers.wake)
    assert _revisions(second, waiting) == started


def test_overdue_jobs_are_redelivered_by_the_owner_of_their_partition(
    replicas: tuple[Harness, Harness, LeaseKeeper, LeaseKeeper],
) -> None:
    first, second, k1, k2 = replicas
    first.deploy(
        p=bpmn(
            "p",
            '<startEvent id="s"/>' + service_task("t", "crm.lookup") + '<endEvent id="e"/>',
            "s -> t\nt -> e",
        )
    )
    ids = [first.start("p") for _ in range(INSTANCES)]
    first.clock.advance(timedelta(hours=1))
    with ThreadPoolExecutor(2) as pool:
        one = pool.submit(lambda: jobs.redeliver_overdue_jobs(first.orchestrator, owned=k1.owned()))
        two = pool.submit(lambda: jobs.redeliver_overdue_jobs(second.orchestrator, owned=k2.owned()))
        redelivered = one.result(), two.result()
    assert sum(redelivered) == INSTANCES and min(redelivered) > 0
    with first.db.read() as session:
        deliveries = list(session.scalars(select(JobRecord.deliveries).where(JobRecord.instance_id.in_(ids))))
    assert deliveries == [2] * INSTANCES, "each overdue job was published again once"


def test_two_orchestrator_processes_share_the_partitions(
    tmp_path: Path, nats_url: str, database_url: str
) -> None:
    """The whole runtime (bootstrap, lease keeper, scheduler) twice on one database: the leases split,
    every timer fires once, and a replica that stops hands its partitions to the other."""
    quick = TIMER.replace(b'"P1D"', b'"PT1S"')
    folder = bpmn_folder(tmp_path, {"p": quick})
    options = {"bpmn_dir": folder, "claim_lease_seconds": 2.0, "claim_shared_sqlite": True}
    first = ComponentThread(
        component_settings("orchestrator", tmp_path, nats_url, database_url, **options), build
    )
    second = ComponentThread(
        component_settings("orchestrator", tmp_path, nats_url, database_url, **options), build
    )
    with ExitStack() as stack:
        for component in (first, second):
            stack.callback(component.stop)
            component.start()
        claims = [c.context.claims for c in (first, second) if c.context is not None]

        def split() -> bool:
            owned = [c.owned().partitions for c in claims]
            return len(owned[0]) == len(owned[1]) == 8 and owned[0].isdisjoint(owned[1])

        eventually(split, "the two replicas to own 8 partitions each", 15)
        system = InProcessSystem({"orchestrator": first})
        ids = [
            system.orchestrator.CreateInstance(pb.CreateInstanceRequest(process_id="p")).instance_id
            for _ in range(INSTANCES)
        ]
        for instance_id in ids:
            done = system.wait_completed(instance_id)
            assert [e.element_id for e in done.history if e.type == "timer.fired"] == ["wait"]
        if database_url.startswith("sqlite"):  # without the flag a third replica on the file is refused
            refused = replace(
                first.settings, claim_shared_sqlite=False, grpc_address=f"127.0.0.1:{free_port()}"
            )
            with pytest.raises(RuntimeError, match="failed to start") as error:
                ComponentThread(refused, build).start()
            assert isinstance(error.value.__cause__, SharedSqlite)
        system.channels["orchestrator"].close()
        second.stop()
        eventually(lambda: len(claims[0].owned().partitions) == 16, "the first replica to own everything", 15)


def test_thrown_messages_are_delivered_once_by_the_owner_of_their_key(
    replicas: tuple[Harness, Harness, LeaseKeeper, LeaseKeeper],
) -> None:
    first, second, k1, k2 = replicas
    sender = bpmn(
        "engagement",
        """<startEvent id="s"/>
        <intermediateThrowEvent id="start_risk"><messageEventDefinition messageRef="m_started">
          <extensionElements><spiffworkflow:messagePayload>{"engagement_id": engagement_id}</spiffworkflow:messagePayload></extensionElements>
        </messageEventDefinition></intermediateThrowEvent>
        <userTask id="work"/><endEvent id="e"/>""",
        "s -> start_risk\nstart_risk -> work\nwork -> e",
        extra=message("m_started", "engagement.started", "engagement_id"),
    )
    receiver = engagement_and_risk()["risk"]  # started by the message, keyed by its engagement id
    first.deploy(engagement=sender, risk=receiver)
    for i in range(INSTANCES):
        first.start("engagement", f"E{i}", engagement_id=f"E{i}")
    with ThreadPoolExecutor(2) as pool:
        one = pool.submit(lambda: messages.correlate_pending(first.orchestrator, owned=k1.owned()))
        two = pool.submit(lambda: messages.correlate_pending(second.orchestrator, owned=k2.owned()))
        delivered = one.result(), two.result()
    print(f"\ndelivered by the replicas: {delivered}")
    assert sum(delivered) == INSTANCES and min(delivered) > 0
    started, _ = first.orchestrator.list_instances(process_id="risk", page_size=100)
    assert sorted(i.business_key or "" for i in started) == sorted(f"E{i}" for i in range(INSTANCES))


def test_a_multi_instance_ends_when_its_last_child_completes_in_the_other_replica(
    replicas: tuple[Harness, Harness, LeaseKeeper, LeaseKeeper],
) -> None:
    """The replica that finishes the last child of a multi-instance sub-process need not be the one that
    created the children: it ends the sub-process all the same (the ONLINE engagement once stayed ACTIVE
    with nothing to wait for, its `rectify_problem` STARTED after both children completed, the second in
    the other replica)."""
    first, second, _, _ = replicas
    inner, _ = flows_xml("ps -> fix\nfix -> pe", prefix="g")
    first.deploy(
        p=bpmn(
            "p",
            f"""<startEvent id="s"/>
            <subProcess id="rectify"><multiInstanceLoopCharacteristics isSequential="false">
                <loopDataInputRef>problems</loopDataInputRef><inputDataItem id="problem" name="problem"/>
              </multiInstanceLoopCharacteristics>
              <startEvent id="ps"/>{service_task("fix", "survey.define_measure")}<endEvent id="pe"/>{inner}
            </subProcess><endEvent id="e"/>""",
            "s -> rectify\nrectify -> e",
        )
    )
    instance = first.start("p", problems=["price", "delay"])  # the first replica creates both children
    one, two = first.jobs(instance, "survey.define_measure")
    first.orchestrator.complete_job(one.job_key, {})
    second.orchestrator.complete_job(two.job_key, {})  # a replica that never created a child of `rectify`
    assert first.status(instance) == "COMPLETED", first.history(instance)
