"""processed_jobs is pruned: only records older than the TTL go, oldest first, a bounded batch at a time."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, insert, select

from consultflow.platform.db import Database, UnitOfWork, migrate
from consultflow.platform.jobs import PRUNE_BATCH, prune_processed_jobs, prune_processed_jobs_periodically
from consultflow.platform.tables import processed_jobs
from tests.support.polling import eventually_async

TTL = timedelta(days=7)


def _record(db: Database, processed_at: dict[str, datetime]) -> None:
    with UnitOfWork(db, "test") as uow:
        uow.session.execute(
            insert(processed_jobs),
            [
                {
                    "job_key": key,
                    "operation": "crm.op",
                    "outcome": "completed",
                    "result": "{}",
                    "processed_at": at,
                }
                for key, at in processed_at.items()
            ],
        )
        uow.commit()


def _keys(db: Database) -> set[str]:
    with db.read() as session:
        return set(session.scalars(select(processed_jobs.c.job_key)))


def test_pruning_deletes_only_records_older_than_the_ttl_oldest_first_in_batches(database_url: str) -> None:
    db = Database(database_url)
    migrate(db, "crm")
    now = datetime.now(UTC)
    old = {f"old-{i}": now - TTL - timedelta(hours=5 - i) for i in range(5)}  # old-0 is the oldest
    young = {"young-0": now - TTL + timedelta(minutes=1), "young-1": now - timedelta(seconds=1)}
    _record(db, old | young)
    first = prune_processed_jobs(db, now - TTL, limit=2)
    after_first = _keys(db)
    batches = [first] + [prune_processed_jobs(db, now - TTL, limit=2) for _ in range(3)]
    remaining = _keys(db)
    db.dispose()
    assert batches == [2, 2, 1, 0]
    assert after_first == (set(old) - {"old-0", "old-1"}) | set(young), "not the oldest first"
    assert remaining == set(young)


def test_the_periodic_pruning_empties_a_backlog_batch_after_batch(database_url: str) -> None:
    db = Database(database_url)
    migrate(db, "crm")
    now = datetime.now(UTC)
    backlog = 2 * PRUNE_BATCH + 7
    _record(db, {f"old-{i}": now - TTL - timedelta(seconds=i + 1) for i in range(backlog)} | {"young": now})

    def count() -> int:
        with db.read() as session:
            return int(session.scalar(select(func.count()).select_from(processed_jobs)) or 0)

    async def run() -> None:
        with ThreadPoolExecutor(max_workers=1) as executor:
            loop = asyncio.get_running_loop()
            pruning = asyncio.create_task(
                prune_processed_jobs_periodically(db, TTL, executor, every_seconds=3600)
            )

            async def pruned() -> bool:
                return await loop.run_in_executor(executor, count) == 1

            try:
                await eventually_async(pruned, "the backlog to be pruned in one round", within=30.0)
            finally:
                pruning.cancel()

    asyncio.run(run())
    remaining = _keys(db)
    db.dispose()
    assert remaining == {"young"}
