"""The unit of work and the outbox: a message leaves if and only if its change committed, exactly once."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager, contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import nats
import nats.errors
import pytest
from nats.aio.client import Client
from nats.js import JetStreamContext
from sqlalchemy import event, func, select

from consultflow.api.events.v1 import events_pb2
from consultflow.platform.db import Database, UnitOfWork, migrate
from consultflow.platform.messaging import connect
from consultflow.platform.outbox import OutboxRelay
from consultflow.platform.tables import outbox


def _db(url: str) -> Database:
    db = Database(url)
    migrate(db, "crm")
    return db


def _count(db: Database, unsent_only: bool = False) -> int:
    with db.read() as session:
        query = select(func.count()).select_from(outbox)
        if unsent_only:
            query = query.where(outbox.c.sent_at.is_(None))
        return int(session.scalar(query) or 0)


@asynccontextmanager
async def running_relay(
    db: Database, nats_url: str, poll_seconds: float
) -> AsyncIterator[tuple[Client, JetStreamContext, OutboxRelay, ThreadPoolExecutor]]:
    """A relay running its loop on `db`, stopped (after its last flush) when the block ends."""
    nc, js = await connect(nats_url, "test")
    executor = ThreadPoolExecutor(2)
    relay = OutboxRelay(db, js, executor, poll_seconds=poll_seconds)
    task = asyncio.create_task(relay.run())
    try:
        yield nc, js, relay, executor
    finally:
        await relay.stop()
        task.cancel()
        await nc.close()
        executor.shutdown()


def test_rollback_leaves_no_message(database_url: str) -> None:
    db = _db(database_url)
    with UnitOfWork(db, "crm") as uow:
        uow.emit("inquiry.recorded", "i-1", {"x": 1})
        # no commit: leaving the block rolls back
    assert _count(db) == 0
    with UnitOfWork(db, "crm") as uow:
        uow.emit("inquiry.recorded", "i-2", {"x": 2})
        uow.commit()
    assert _count(db) == 1
    db.dispose()


def test_relay_publishes_once_and_survives_restart(database_url: str, nats_url: str) -> None:
    db = _db(database_url)
    with UnitOfWork(db, "crm") as uow:
        first = uow.emit("inquiry.recorded", "i-1", {"n": 1}, {"engagement_id": "E1"})
        second = uow.emit("inquiry.recorded", "i-2", {"n": 2})
        uow.commit()

    async def scenario() -> list[events_pb2.StatusEvent]:
        nc, js = await connect(nats_url, "test")
        executor = ThreadPoolExecutor(2)
        # A relay that "crashed" after publishing but before marking: publish by hand, rows stay unsent.
        await js.publish(
            "status.crm.inquiry.recorded", first.SerializeToString(), headers={"Nats-Msg-Id": first.id}
        )
        relay = OutboxRelay(db, js, executor)  # the restarted relay
        published, _ = await relay.flush_once()
        assert published == 2
        assert (await relay.flush_once())[0] == 0  # nothing left
        sub = await js.pull_subscribe("status.>", durable="t", stream="STATUS")
        received = [events_pb2.StatusEvent.FromString(m.data) for m in await sub.fetch(10, timeout=2)]
        await nc.close()
        executor.shutdown()
        return received

    received = asyncio.run(scenario())
    assert [e.id for e in received] == [first.id, second.id], "the republished row was de-duplicated"
    assert received[0].correlation["engagement_id"] == "E1"
    assert received[0].source == "crm" and received[0].type == "inquiry.recorded"
    assert _count(db, unsent_only=True) == 0
    db.dispose()


def test_relay_is_woken_by_commit(database_url: str, nats_url: str) -> None:
    db = _db(database_url)

    async def scenario() -> float:
        async with running_relay(db, nats_url, poll_seconds=30) as (_nc, js, relay, executor):
            sub = await js.subscribe("status.crm.>", stream="STATUS", ordered_consumer=True)
            await asyncio.sleep(0.1)
            loop = asyncio.get_running_loop()
            started = loop.time()

            def commit() -> None:
                with UnitOfWork(db, "crm", on_commit=relay.notify) as uow:
                    uow.emit("client.created", "c-1", {})
                    uow.commit()

            await loop.run_in_executor(executor, commit)
            await sub.next_msg(timeout=5)
            elapsed = loop.time() - started
        return elapsed

    assert asyncio.run(scenario()) < 5  # woken, not waiting for the 30 s poll
    db.dispose()


@contextmanager
def outbox_reads(db: Database) -> Iterator[list[str]]:
    """The SELECTs from the outbox table run meanwhile."""
    seen: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT") and "FROM outbox" in statement:
            seen.append(statement)

    event.listen(db.engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(db.engine, "before_cursor_execute", record)


def test_a_commit_hands_its_rows_over_and_they_leave_once_without_being_read_back(
    database_url: str, nats_url: str
) -> None:
    db = _db(database_url)

    async def scenario() -> tuple[list[str], list[str], int]:
        async with running_relay(db, nats_url, poll_seconds=30) as (nc, _js, relay, executor):
            published = await nc.subscribe("status.crm.>")  # core NATS: sees every publish, duplicates too
            await asyncio.sleep(0.2)  # the relay's first read (rows an earlier run left) is over
            loop = asyncio.get_running_loop()
            handed: list[Any] = []

            def commit() -> None:
                def keep(rows: Any) -> None:
                    handed.extend(rows)
                    relay.notify(rows)

                with UnitOfWork(db, "crm", on_commit=keep) as uow:
                    uow.emit("client.created", "c-1", {})
                    uow.emit("client.created", "c-2", {})
                    uow.commit()

            with outbox_reads(db) as reads:
                await loop.run_in_executor(executor, commit)
                subjects = [(await published.next_msg(timeout=5)).subject for _ in range(2)]
            relay.notify(handed)  # handed over again (as after a read that already published them)
            again = 0
            with contextlib.suppress(nats.errors.TimeoutError):
                await published.next_msg(timeout=0.5)
                again += 1
        return reads, subjects, again

    reads, subjects, again = asyncio.run(scenario())
    assert subjects == ["status.crm.client.created"] * 2
    assert reads == [], "published from the hand-over, not read back"
    assert again == 0, "a row the relay already published is not published again"
    assert _count(db, unsent_only=True) == 0
    db.dispose()


def test_a_delayed_row_leaves_at_its_time_though_the_poll_is_far(database_url: str, nats_url: str) -> None:
    db = _db(database_url)

    async def scenario() -> float:
        async with running_relay(db, nats_url, poll_seconds=30) as (nc, _js, relay, executor):
            published = await nc.subscribe("status.crm.>")
            await asyncio.sleep(0.2)
            loop = asyncio.get_running_loop()
            started = loop.time()

            def commit() -> None:
                with UnitOfWork(db, "crm", on_commit=relay.notify) as uow:
                    uow.publish(
                        "status.crm.later",
                        "later-1",
                        b"x",
                        not_before=datetime.now(UTC) + timedelta(seconds=1),
                    )
                    uow.commit()

            await loop.run_in_executor(executor, commit)
            await published.next_msg(timeout=10)
            elapsed = loop.time() - started
        return elapsed

    elapsed = asyncio.run(scenario())
    assert 0.9 <= elapsed < 10, "not before its time, and not at the 30 s poll"
    db.dispose()


def test_nats_url_fixture_is_clean(nats_url: str) -> None:
    """Each test gets freshly provisioned streams: present (components only verify them) and empty."""

    async def streams() -> dict[str, int]:
        nc = await nats.connect(nats_url)
        counts = {str(s.config.name): s.state.messages for s in await nc.jetstream().streams_info()}
        await nc.close()
        return counts

    assert asyncio.run(streams()) == {"JOBS": 0, "STATUS": 0}


def test_a_busy_database_delays_the_marking_and_loses_or_doubles_nothing(
    tmp_path: Path, nats_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The relay publishes, then cannot mark the rows sent while another writer holds SQLite's lock past
    the busy timeout: it says so at WARNING, and once the lock is free the rows are marked; the stream
    holds each message once."""
    url = f"sqlite:///{tmp_path / 'crm.db'}"
    db = Database(url, busy_timeout_ms=100)
    migrate(db, "crm")
    locker = sqlite3.connect(tmp_path / "crm.db", isolation_level=None, check_same_thread=False)

    async def scenario() -> list[str]:
        async with running_relay(db, nats_url, poll_seconds=0.5) as (_nc, js, relay, executor):
            await asyncio.sleep(0.2)
            loop = asyncio.get_running_loop()

            def commit_then_lock() -> None:
                with UnitOfWork(db, "crm", on_commit=lambda rows: None) as uow:  # handed over below
                    uow.emit("client.created", "c-1", {})
                    uow.emit("client.created", "c-2", {})
                    uow.commit()
                locker.execute("BEGIN IMMEDIATE")  # the next writer waits, then gives up

            await loop.run_in_executor(executor, commit_then_lock)
            relay.notify()  # a read: it finds the rows, publishes them, and cannot mark them
            await asyncio.sleep(1.5)
            assert _count(db, unsent_only=True) == 2, "marked while the lock was held"
            locker.execute("COMMIT")
            for _ in range(50):
                if _count(db, unsent_only=True) == 0:
                    break
                await asyncio.sleep(0.1)
            sub = await js.pull_subscribe("status.>", durable="t", stream="STATUS")
            received = [
                events_pb2.StatusEvent.FromString(m.data).subject for m in await sub.fetch(10, timeout=2)
            ]
        return received

    with caplog.at_level(logging.WARNING, logger="consultflow.platform.outbox"):
        received = asyncio.run(scenario())
    assert sorted(received) == ["c-1", "c-2"], "each message in the stream once"
    assert _count(db, unsent_only=True) == 0
    relay_records = [r for r in caplog.records if r.name == "consultflow.platform.outbox"]
    assert any("database is busy" in r.getMessage() for r in relay_records)
    assert all(r.levelno < logging.ERROR for r in relay_records), "a busy database is not an error"
    locker.close()
    db.dispose()
