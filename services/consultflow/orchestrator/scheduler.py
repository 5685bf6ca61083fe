"""The orchestrator's background loops: due timers, pending messages, overdue jobs, migration batches.

Each loop sleeps until its next due time or until a committed step wakes it, and calls a blocking use case
on the thread pool. All state lives in the database, so the loops pick up where they were after a restart.
With several replicas each loop scans only the partitions this replica's lease keeper owns, and the
periodic expiry of messages and the migration batches run in the owner of partition 0 (platform/claims.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from concurrent.futures import Executor
from typing import TypeVar

from consultflow.orchestrator.records import Effects
from consultflow.orchestrator.runtime import Orchestrator
from consultflow.orchestrator.usecases import jobs, messages, timers
from consultflow.platform.claims import EVERYTHING, Owned

log = logging.getLogger(__name__)

T = TypeVar("T")

MAX_SLEEP_SECONDS = 1.0
MIGRATION_POLL_SECONDS = 0.5
"""How soon a started (or resumed) batch is picked up: StartMigration answers before its items move."""


class Scheduler:
    """Wakes the use cases that wait on time: timers, buffered messages, unanswered jobs."""

    def __init__(
        self, orchestrator: Orchestrator, executor: Executor, owned: Callable[[], Owned] = lambda: EVERYTHING
    ) -> None:
        """`owned` says which partitions this replica scans now (a `LeaseKeeper.owned`)."""
        self._orchestrator = orchestrator
        self._executor = executor
        self._owned = owned
        self._timers_changed = asyncio.Event()
        self._messages_pending = asyncio.Event()
        loop = asyncio.get_running_loop()

        def on_effects(effects: Effects) -> None:
            if effects.timers_changed:
                loop.call_soon_threadsafe(self._timers_changed.set)
            if effects.messages_pending:
                loop.call_soon_threadsafe(self._messages_pending.set)

        orchestrator.add_listener(on_effects)

    async def _run(self, fn: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn)

    async def timers(self) -> None:
        """Fires due timers; sleeps until the earliest due time (at most a second)."""
        while True:
            self._timers_changed.clear()
            await self._run(lambda: timers.fire_due_timers(self._orchestrator, owned=self._owned()))
            await self._run(lambda: timers.fire_start_timers(self._orchestrator, self._owned()))
            due = await self._run(lambda: timers.next_timer_due(self._orchestrator, self._owned()))
            sleep = MAX_SLEEP_SECONDS
            if due is not None:
                sleep = min(sleep, max(0.0, (due - self._orchestrator.clock.now()).total_seconds()))
            if sleep > 0:
                await _wait(self._timers_changed, sleep)

    async def messages(self) -> None:
        """Delivers messages thrown by instances or buffered for a receiver that now waits."""
        rounds = 0
        while True:
            self._messages_pending.clear()
            await self._run(lambda: messages.correlate_pending(self._orchestrator, owned=self._owned()))
            rounds += 1
            if rounds % 30 == 0 and self._owned().cleans_up:
                await self._run(self._orchestrator.expire_messages)
            await _wait(self._messages_pending, MAX_SLEEP_SECONDS)

    async def jobs(self) -> None:
        """Republishes jobs whose deadline passed without a reply."""
        while True:
            await self._run(lambda: jobs.redeliver_overdue_jobs(self._orchestrator, owned=self._owned()))
            await asyncio.sleep(5.0)

    async def migrations(self) -> None:
        """Moves the pending items of running migration batches (usecases/migration_batches.py); after a
        restart it resumes them."""
        while True:
            if not await self.migration_round():
                await asyncio.sleep(MIGRATION_POLL_SECONDS)

    async def migration_round(self) -> int:
        """One round of batch items, in the owner of partition 0 only (elsewhere none): a round is bounded,
        so a lease that moves stops this replica between rounds. Returns the items it settled."""
        if not self._owned().cleans_up:
            return 0
        return await self._run(self._orchestrator.run_migrations)


async def _wait(event: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(event.wait(), seconds)
