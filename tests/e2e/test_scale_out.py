"""Scale-out: two orchestrators, two processes of each service and a 3-node JetStream cluster, all real
processes on loopback (what `consultflow up --orchestrators 2 --replicas 2 --nats-cluster 3` runs), on
SQLite files and, when CONSULTFLOW_TEST_POSTGRES_URL is set, on PostgreSQL (a schema per component). The
demo's stories (but the slow UNSIGNED) run while one orchestrator, one replica of each service and one
nats-server are killed outright (SIGKILL) and brought back by the supervisor; the driver calls every
component through the list of its replicas (round robin, skipping the dead).

Every engagement must end as scripted (the demo's own checks, which count the records each story leaves:
one contract, one survey …), and nothing may be doubled: no STATUS message stored twice (its
`Nats-Msg-Id` is the outbox row's id), each job created and completed once in its instance's history, and
each completed job's effect recorded by its service exactly once. A handler may run again after a crash;
its effect may not be recorded again.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from sqlalchemy import create_engine, text

from consultflow import SERVICES
from consultflow.api.orchestrator.v1 import orchestrator_pb2 as pb
from consultflow.cli.demo import DEMO_TIMERS, demo_env
from consultflow.cli.system import LocalSystem, Supervision, SupervisionEvent, replica_counts
from consultflow.demo.checks import check
from consultflow.demo.driver import Clients, Driver, Story
from consultflow.demo.stories import stories
from tests.support.identity import local_identity
from tests.support.polling import eventually
from tests.support.status import status_messages
from tests.support.system_bench import component_databases, component_urls

# One orchestrator, one replica of each service and one nats-server, the first replica of some and the
# second of others (the clients' replica lists must survive either), spread over the engagements' run.
VICTIMS = ("orchestrator", "crm-2", "nats-2", "contracts", "delivery-2", "survey", "risk-2")
FIRST_KILL_SECONDS = 3.0
BETWEEN_KILLS_SECONDS = 2.5
DEADLINE_SECONDS = 240.0
RETRYABLE = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.CANCELLED)
"""How a call that met a dying replica ends: refused, timed out, or cut off (CANCELLED) as it was killed."""


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database(request: pytest.FixtureRequest) -> Iterator[dict[str, str]]:
    """Each component's database URL ({}: its SQLite file), shared by its replicas."""
    yield from component_databases(request.param)


@pytest.fixture
def scaled(tmp_path: Path, database: dict[str, str]) -> Iterator[LocalSystem]:
    system = LocalSystem(
        tmp_path / "data",
        extra_env=demo_env(),
        marker=DEMO_TIMERS,
        identity=local_identity(),
        with_console=False,
        component_env={name: {"CONSULTFLOW_DATABASE_URL": url} for name, url in database.items()},
        replicas=replica_counts(orchestrators=2, replicas=2),
        nats_cluster=3,
        supervision=Supervision(first_backoff_seconds=0.2, max_backoff_seconds=2.0, crash_loop_limit=50),
    )
    try:
        system.start()
        yield system
    finally:
        system.stop()


class Killer(threading.Thread):
    """SIGKILLs each victim once, the first a few seconds into the run, then one every few seconds."""

    def __init__(self, system: LocalSystem) -> None:
        super().__init__(daemon=True)
        self.system = system
        self.killed: list[tuple[float, str]] = []
        self.done = threading.Event()
        self.started = time.monotonic()

    def run(self) -> None:
        nodes = {node.name: node for node in self.system.nats_nodes}
        pause = FIRST_KILL_SECONDS
        for victim in VICTIMS:
            if self.done.wait(pause):
                return
            pause = BETWEEN_KILLS_SECONDS
            while not self.done.is_set():  # a victim still being restarted is killed once it runs again
                node = nodes.get(victim)
                process = node.process if node is not None else self.system.children[victim].process
                if process is not None and process.poll() is None:
                    process.kill()
                    self.killed.append((round(time.monotonic() - self.started, 1), victim))
                    break
                self.done.wait(0.1)


def test_engagements_survive_killed_replicas_and_a_nats_node(
    scaled: LocalSystem, database: dict[str, str]
) -> None:
    targets = {**scaled.endpoints(), **scaled.targets()}  # each component: all its replicas
    assert all("," in targets[name] for name in ("orchestrator", *SERVICES)), targets
    clients = Clients(targets, local_identity())
    # all but UNSIGNED, which waits out a two-minute signing period (test_engagements runs it): every
    # service still takes part, and the run stays near a minute
    engagements: list[Story] = [s for s in stories(uuid.uuid4().hex[:6]) if s.kind != "UNSIGNED"]
    timeline: list[tuple[float, str, str]] = []
    killer = Killer(scaled)

    def report(event: SupervisionEvent) -> None:
        timeline.append((round(time.monotonic() - killer.started, 1), event.name, event.kind))

    stopping = threading.Event()
    supervisor = threading.Thread(target=scaled.supervise, args=(stopping.is_set, 0.1, report), daemon=True)
    supervisor.start()
    try:
        driver = Driver(clients, engagements)
        driver.start()
        killer.start()
        try:
            drive(driver, engagements)
        finally:
            print(f"\nscale-out: kills {killer.killed}\nscale-out: supervisor {timeline}")
        ended = round(time.monotonic() - killer.started, 1)
        print(f"scale-out: engagements ended {ended}s after they started")
        killer.join()
        assert [victim for _, victim in killer.killed] == list(VICTIMS)
        assert all(at < ended for at, _ in killer.killed), "every kill came while engagements ran"
        eventually(lambda: not scaled.restart_pending(), "the supervisor to restart the last victim", 30)
        problems = {story.key: check(clients, story) for story in engagements}
        assert problems == {story.key: [] for story in engagements}, problems
        check_status_once(scaled)
        check_jobs_once(component_urls(scaled, database))
    finally:
        killer.done.set()
        clients.close()
        scaled.stop()  # first: children the supervisor thread started die with it (PR_SET_PDEATHSIG)
        stopping.set()
        supervisor.join()


def drive(driver: Driver, engagements: list[Story]) -> None:
    """The driver's rounds until every story ended; a call that met a dying replica is made again in the
    next round (the driver acts on what it reads, so a repeated round does what is still to do)."""
    deadline = time.monotonic() + DEADLINE_SECONDS
    while not all(story.finished for story in engagements):
        assert time.monotonic() < deadline, "stories still running: " + "; ".join(
            f"{s.key} at {s.waiting}: {where_it_waits(driver.clients, s.key)}"
            for s in engagements
            if not s.finished
        )
        try:
            driver.tick()
        except grpc.RpcError as error:
            if error.code() not in RETRYABLE:
                raise
        time.sleep(0.25)


def where_it_waits(clients: Clients, key: str) -> list[str]:
    """Every instance of an engagement (its risk management too), where it waits and its incidents."""
    request = pb.ListInstancesRequest(business_key=key)
    return [
        f"{i.process_id} {pb.InstanceState.Name(i.state)} {list(i.waiting_at)} incidents {i.open_incidents}"
        for i in clients.orchestrator.ListInstances(request, timeout=15).instances
    ]


def check_status_once(system: LocalSystem) -> None:
    """STATUS holds each outbox row once: no `Nats-Msg-Id` twice, and each is its event's id."""
    messages = status_messages(system.nats_urls, credentials=system.nats_credentials())
    assert messages, "no status events"
    doubled = [msg_id for msg_id, n in Counter(msg_id for msg_id, _ in messages).items() if n > 1]
    assert not doubled, f"status messages stored twice: {doubled[:5]}"
    assert all(msg_id == event.id for msg_id, event in messages), "a message's id is not its event's"


def check_jobs_once(databases: dict[str, str]) -> None:
    """Each job is created and completed once in its instance's history, and each completed job of a
    service has its one processed_jobs record there (the record's key is unique by its primary key: a
    missing one would be an effect lost, an orphan one an effect of a job the orchestrator never made)."""
    orchestrator = create_engine(databases["orchestrator"])
    with orchestrator.connect() as connection:
        jobs = connection.execute(text("SELECT job_key, instance_id, operation, status FROM jobs")).all()
        history = connection.execute(
            text(
                "SELECT instance_id, type, count(*) FROM history "
                "WHERE type IN ('job.created', 'job.completed') GROUP BY instance_id, type"
            )
        ).all()
    orchestrator.dispose()
    recorded = {(instance, kind): count for instance, kind, count in history}
    created = Counter(instance for _, instance, _, _ in jobs)
    completed = Counter(instance for _, instance, _, status in jobs if status == "COMPLETED")
    assert sum(completed.values()) > 0, "no job completed"
    for instance in created:
        assert recorded.get((instance, "job.created"), 0) == created[instance], f"{instance}: jobs created"
        assert recorded.get((instance, "job.completed"), 0) == completed[instance], f"{instance}: completed"
    for service in SERVICES:
        engine = create_engine(databases[service])
        with engine.connect() as connection:
            rows = connection.execute(text("SELECT job_key, outcome FROM processed_jobs")).all()
        processed: dict[str, str] = {key: outcome for key, outcome in rows}
        engine.dispose()
        mine = {key: status for key, _, operation, status in jobs if operation.split(".")[0] == service}
        done = {key for key, status in mine.items() if status == "COMPLETED"}
        assert done, f"{service}: no job of it completed"
        missing = sorted(key for key in done if processed.get(key) != "completed")
        assert not missing, f"{service}: completed jobs without their record: {missing[:5]}"
        orphans = sorted(set(processed) - set(mine))
        assert not orphans, f"{service}: records of jobs the orchestrator never made: {orphans[:5]}"
