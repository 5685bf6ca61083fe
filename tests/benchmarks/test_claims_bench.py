"""Two replicas on one database, every replica scanning everything (as before partition leases) beside
each scanning its own partitions: publishes of one outbox, and steps written for due timers. Prints
figures, asserts nothing about speed (`make bench`)."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import nats
import pytest
from nats.aio.msg import Msg
from sqlalchemy import func, select

from consultflow.orchestrator.orm import Instance
from consultflow.orchestrator.usecases import timers
from consultflow.platform.claims import EVERYTHING, LeaseKeeper, Owned
from consultflow.platform.clock import ShiftedClock
from consultflow.platform.db import Database, UnitOfWork, migrate
from consultflow.platform.messaging import connect
from consultflow.platform.outbox import OutboxRelay
from tests.integration.orchestrator.test_replicas import TIMER
from tests.support.orchestrator_harness import Harness

pytestmark = pytest.mark.benchmark

ROWS = 500
INSTANCES = 100


def _owners(
    database_url: str, partitioned: bool
) -> tuple[list[tuple[Database, Callable[[], Owned]]], list[LeaseKeeper]]:
    replicas = []
    keepers = []
    for _ in range(2):
        db = Database(database_url)
        migrate(db, "crm")
        keeper = LeaseKeeper(db)
        keepers.append(keeper)
        replicas.append((db, keeper.owned if partitioned else (lambda: EVERYTHING)))
    for _ in range(3):
        for keeper in keepers:
            keeper.tick()
    return replicas, keepers


def _publishes(database_url: str, nats_url: str, partitioned: bool) -> tuple[int, int, float]:
    """(publishes seen on the wire, distinct messages, seconds) for ROWS rows and two relays."""
    replicas, keepers = _owners(database_url, partitioned)
    writer = Database(database_url)
    with UnitOfWork(writer, "crm") as uow:
        for i in range(ROWS):
            uow.emit("inquiry.recorded", f"bench-{partitioned}-{i}", {"n": i})
        uow.commit()

    async def scenario() -> tuple[Counter[str], float]:
        counted: Counter[str] = Counter()
        watcher = await nats.connect(nats_url)

        async def count(msg: Msg) -> None:
            counted[msg.header.get("Nats-Msg-Id", "") if msg.header else ""] += 1

        await watcher.subscribe("status.>", cb=count)
        await watcher.flush()
        executor = ThreadPoolExecutor(4)
        connections = [await connect(nats_url, f"relay-{i}") for i in range(2)]
        relays = [
            OutboxRelay(db, js, executor, batch_size=64, owned=owned)
            for (db, owned), (_, js) in zip(replicas, connections, strict=True)
        ]

        async def drain(relay: OutboxRelay) -> None:
            while (await relay.flush_once())[0] > 0:
                pass

        started = time.perf_counter()
        await asyncio.gather(*(drain(r) for r in relays))
        took = time.perf_counter() - started
        await asyncio.sleep(0.5)
        for nc, _ in connections:
            await nc.close()
        await watcher.close()
        executor.shutdown()
        return counted, took

    counted, took = asyncio.run(scenario())
    for keeper in keepers:
        keeper.release()
        keeper.db.dispose()
    writer.dispose()
    return sum(counted.values()), len(counted), took


def test_outbox_publishes_with_and_without_leases(database_url: str, nats_url: str) -> None:
    for partitioned in (False, True):
        sent, distinct, took = _publishes(database_url, nats_url, partitioned)
        label = "leases      " if partitioned else "everyone    "
        print(
            f"\n{label} {ROWS} rows, 2 relays: {sent} publishes ({distinct} distinct) in {took * 1000:.0f} ms"
        )


def test_timer_revisions_with_and_without_leases(database_url: str) -> None:
    clock = ShiftedClock()
    first, second = Harness(database_url, clock=clock), Harness(database_url, clock=clock)
    first.deploy(p=TIMER)
    keepers = LeaseKeeper(first.db), LeaseKeeper(second.db)
    for _ in range(3):
        for keeper in keepers:
            keeper.tick()
    for partitioned in (False, True):
        ids = [first.start("p") for _ in range(INSTANCES)]
        query = select(func.sum(Instance.revision)).where(Instance.instance_id.in_(ids))
        with first.db.read() as session:
            before = int(session.scalar(query) or 0)
        clock.advance(timedelta(days=2))
        for keeper in keepers:  # renewed, as their loop does every TTL/3
            keeper.tick()
        owned = [k.owned() if partitioned else EVERYTHING for k in keepers]
        started = time.perf_counter()
        with ThreadPoolExecutor(2) as pool:
            runs = [
                pool.submit(timers.fire_due_timers, h.orchestrator, 500, o)
                for h, o in zip((first, second), owned, strict=True)
            ]
            fired = [r.result() for r in runs]
        took = time.perf_counter() - started
        with first.db.read() as session:
            written = int(session.scalar(query) or 0) - before
        label = "leases      " if partitioned else "everyone    "
        print(
            f"\n{label} {INSTANCES} due timers, 2 replicas: steps run {sum(fired)}, "
            f"revisions written {written}, {took * 1000:.0f} ms"
        )
    first.close()
    second.close()
