"""Partition leases on a real database, and outbox relays of two replicas sharing one outbox on a real
nats-server: leases split between live members, move when one dies, and every row is published once."""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import nats
import pytest
from nats.aio.msg import Msg
from sqlalchemy import func, select

from consultflow.platform.claims import LeaseKeeper, SharedSqlite
from consultflow.platform.db import Database, UnitOfWork, migrate
from consultflow.platform.messaging import connect
from consultflow.platform.metrics import REGISTRY
from consultflow.platform.outbox import OutboxRelay
from consultflow.platform.tables import outbox

TTL = 2.0
"""The lease TTL of the tests about expiry; the others use a long one, so a slow machine loses none."""


def _keeper(url: str, ttl: float = 60.0, partitions: int = 16) -> LeaseKeeper:
    db = Database(url)
    migrate(db, "crm")
    return LeaseKeeper(db, partitions, timedelta(seconds=ttl))


def _settle(*keepers: LeaseKeeper) -> None:
    """Rounds of every keeper in turn, as their loops would run them, until the split is stable."""
    for _ in range(3):
        for keeper in keepers:
            keeper.tick()


def _close(*keepers: LeaseKeeper) -> None:
    for keeper in keepers:
        keeper.db.dispose()


def _sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_live_members_split_the_partitions(database_url: str) -> None:
    released = _sample("consultflow_lease_changes_total", change="released")
    a, b = _keeper(database_url), _keeper(database_url)
    _settle(a, b)
    mine, theirs = a.owned().partitions, b.owned().partitions
    assert len(mine) == len(theirs) == 8
    # what ops sees: each member owns its half of two members, and a rebalance gave partitions back
    assert _sample("consultflow_leases_owned", member=a.member_id) == 8
    assert _sample("consultflow_lease_members", member=b.member_id) == 2
    assert _sample("consultflow_lease_changes_total", change="released") > released
    assert mine.isdisjoint(theirs) and mine | theirs == set(range(16))
    assert sorted(a.live_members()) == sorted([a.member_id, b.member_id])
    a.release()  # a clean stop: b takes everything at its next round, without waiting for a TTL
    b.tick()
    assert b.owned().partitions == set(range(16))
    assert a.owned().partitions == frozenset()
    assert _sample("consultflow_leases_owned", member=b.member_id) == 16
    assert REGISTRY.get_sample_value("consultflow_leases_owned", {"member": a.member_id}) is None  # gone
    _close(a, b)


def test_a_killed_member_hands_its_partitions_over_within_the_ttl(database_url: str) -> None:
    a, b = _keeper(database_url, TTL), _keeper(database_url, TTL)
    _settle(a, b)
    lost = a.owned().partitions
    epochs = {p: a.epoch(p) for p in lost}
    lost_before = _sample("consultflow_lease_changes_total", change="lost")
    killed = time.monotonic()  # a stops renewing without giving anything back
    b.tick()
    assert b.owned().partitions.isdisjoint(lost), "a's leases are still live: nobody takes them"
    time.sleep(TTL)
    b.tick()
    handed_over = time.monotonic() - killed
    print(f"\nhanded over after {handed_over:.2f} s (lease TTL {TTL} s)")
    assert b.owned().partitions == set(range(16))
    assert all((b.epoch(p) or 0) > (epochs[p] or 0) for p in lost), "a new holder has a new fencing token"
    # a lost its leases: it stops scanning them even before it learns so from the database
    assert a.owned().partitions == frozenset()
    a.tick()  # a comes back: b holds everything, so a owns nothing until b gives its share back
    assert a.owned().partitions == frozenset()
    assert _sample("consultflow_lease_changes_total", change="lost") == lost_before + len(lost)
    _settle(b, a)
    assert len(a.owned().partitions) == len(b.owned().partitions) == 8
    _close(a, b)


def test_a_second_replica_on_one_sqlite_file_is_refused(sqlite_url: str) -> None:
    first, second = _keeper(sqlite_url, TTL), _keeper(sqlite_url, TTL)
    stop = threading.Event()

    def keep_renewing() -> None:  # first is alive: it renews while second starts
        while not stop.wait(0.1):
            first.tick()

    first.tick()
    renewing = threading.Thread(target=keep_renewing)
    renewing.start()
    try:
        with pytest.raises(SharedSqlite, match="CONSULTFLOW_CLAIM_SHARED_SQLITE"):
            second.refuse_shared_sqlite()
    finally:
        stop.set()
        renewing.join()
    first.release()
    second.refuse_shared_sqlite()  # alone now
    _close(first, second)


def test_a_restarted_sqlite_replica_frees_its_ghosts_leases(sqlite_url: str) -> None:
    crashed, restarted = _keeper(sqlite_url, TTL), _keeper(sqlite_url, TTL)
    crashed.tick()  # then killed: it never renews again, and its leases would hold for a TTL
    restarted.refuse_shared_sqlite()  # the ghost's heartbeat does not move: it is not waited for
    assert restarted.tick().partitions == set(range(16)), "the ghost's leases were freed at once"
    _close(crashed, restarted)


def _emit(db: Database, prefix: str, count: int) -> None:
    with UnitOfWork(db, "crm") as uow:
        for i in range(count):
            uow.emit("inquiry.recorded", f"{prefix}-{i}", {"n": i})
        uow.commit()


def _unsent(db: Database) -> int:
    query = select(func.count()).select_from(outbox).where(outbox.c.sent_at.is_(None))
    with db.read() as session:
        return int(session.scalar(query) or 0)


def test_two_relays_publish_every_row_once(database_url: str, nats_url: str) -> None:
    a, b = _keeper(database_url), _keeper(database_url)
    _settle(a, b)
    writer = Database(database_url)  # a process without leases: its rows spread over every partition
    _emit(a.db, "a", 100)  # a's rows land in a's partitions, so a's relay publishes them at once
    _emit(writer, "w", 100)
    with a.db.read() as session:
        slots = list(session.scalars(select(outbox.c.claim_slot)))
    assert sum(1 for s in slots if s % 16 in a.owned().partitions) >= 100

    async def scenario() -> tuple[Counter[str], int, int]:
        counted: Counter[str] = Counter()
        watcher = await nats.connect(nats_url)

        all_arrived = asyncio.Event()

        async def count(msg: Msg) -> None:
            counted[msg.header.get("Nats-Msg-Id", "") if msg.header else ""] += 1
            if sum(counted.values()) >= 200:
                all_arrived.set()

        await watcher.subscribe("status.>", cb=count)
        await watcher.flush()
        executor = ThreadPoolExecutor(4)
        nc_a, js_a = await connect(nats_url, "relay-a")
        nc_b, js_b = await connect(nats_url, "relay-b")
        relays = [
            OutboxRelay(a.db, js_a, executor, batch_size=64, owned=a.owned),
            OutboxRelay(b.db, js_b, executor, batch_size=64, owned=b.owned),
        ]

        async def drain(relay: OutboxRelay) -> int:
            total = 0
            while (published := (await relay.flush_once())[0]) > 0:
                total += published
            return total

        by_a, by_b = await asyncio.gather(*(drain(r) for r in relays))
        await asyncio.wait_for(all_arrived.wait(), 10)
        await watcher.flush()
        await asyncio.sleep(0.3)  # a duplicate, were there one, would arrive with the rest
        for nc in (watcher, nc_a, nc_b):
            await nc.close()
        executor.shutdown()
        return counted, by_a, by_b

    counted, by_a, by_b = asyncio.run(scenario())
    print(f"\nrelay a published {by_a}, relay b {by_b}")
    assert len(counted) == 200 and set(counted.values()) == {1}, "every row was published exactly once"
    assert by_a + by_b == 200 and by_a >= 100 and by_b > 0
    assert _unsent(a.db) == 0
    writer.dispose()
    _close(a, b)


def test_a_relay_that_lost_its_leases_publishes_nothing(database_url: str, nats_url: str) -> None:
    a, b = _keeper(database_url, TTL), _keeper(database_url, TTL)
    _settle(a, b)
    time.sleep(TTL)  # neither renewed: both lost their leases
    writer = Database(database_url)
    _emit(writer, "w", 20)

    async def scenario() -> tuple[int, int]:
        executor = ThreadPoolExecutor(2)
        nc, js = await connect(nats_url, "relay-a")
        relay = OutboxRelay(a.db, js, executor, owned=a.owned)
        stale = (await relay.flush_once())[0]
        await asyncio.get_running_loop().run_in_executor(executor, a.tick)  # a alone renews: it takes all
        fresh = (await relay.flush_once())[0]
        await nc.close()
        executor.shutdown()
        return stale, fresh

    stale, fresh = asyncio.run(scenario())
    assert stale == 0, "a relay whose leases lapsed scans none of their rows"
    assert fresh == 20 and _unsent(writer) == 0
    writer.dispose()
    _close(a, b)
