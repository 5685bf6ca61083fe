"""The outbox relay: publishes committed outbox rows to JetStream and marks them sent.

Rows are written by `UnitOfWork.publish` in the same transaction as the change that caused them. The
relay publishes with `Nats-Msg-Id`, so a row published twice (a crash between publish and mark, or two
replicas racing) is dropped by the stream's duplicate window: delivery is at-least-once, duplicates are
filtered, nothing is lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from concurrent.futures import Executor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from nats.js import JetStreamContext
from sqlalchemy import and_, delete, or_, select, update

from consultflow.platform.db import Database
from consultflow.platform.faults import crash_point
from consultflow.platform.tables import outbox
from consultflow.platform.timeutil import aware

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Row:
    seq: int
    subject: str
    msg_id: str
    payload: bytes
    headers: dict[str, str]


class OutboxRelay:
    """Moves outbox rows to NATS; woken by commits, and polling as a fallback."""

    def __init__(
        self,
        db: Database,
        js: JetStreamContext,
        executor: Executor,
        batch_size: int = 256,
        poll_seconds: float = 1.0,
        keep_sent: timedelta = timedelta(hours=1),
    ) -> None:
        self._db = db
        self._js = js
        self._executor = executor
        self._batch_size = batch_size
        self._poll_seconds = poll_seconds
        self._keep_sent = keep_sent
        self._wake = asyncio.Event()
        self._loop = asyncio.get_running_loop()
        self._stopping = False
        self._last_cleanup = datetime.now(UTC)

    def notify(self) -> None:
        """Wakes the relay after a commit that wrote outbox rows; safe from any thread."""
        self._loop.call_soon_threadsafe(self._wake.set)

    async def run(self) -> None:
        while not self._stopping:
            try:
                published, next_due = await self.flush_once()
            except Exception:
                log.exception("outbox relay failed; retrying")
                published, next_due = 0, None
                await asyncio.sleep(self._poll_seconds)
            if published >= self._batch_size:
                continue
            timeout = self._poll_seconds
            if next_due is not None:
                timeout = min(timeout, max(0.0, (next_due - datetime.now(UTC)).total_seconds()))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)
            self._wake.clear()

    async def stop(self) -> None:
        """Stops the loop after a last flush, so committed rows leave before the process does."""
        self._stopping = True
        self._wake.set()
        try:
            await self.flush_once()
        except Exception:
            log.warning("final outbox flush failed; rows stay for the next start", exc_info=True)

    async def flush_once(self) -> tuple[int, datetime | None]:
        """Publishes one batch of due rows; returns how many and when the next delayed row is due."""
        rows, next_due = await self._loop.run_in_executor(self._executor, self._fetch_due)
        if not rows:
            await self._maybe_cleanup()
            return 0, next_due
        results = await asyncio.gather(
            *(self._js.publish(r.subject, r.payload, headers=r.headers) for r in rows),
            return_exceptions=True,
        )
        sent = [
            r.seq for r, result in zip(rows, results, strict=True) if not isinstance(result, BaseException)
        ]
        failures = [result for result in results if isinstance(result, BaseException)]
        if sent:
            crash_point("outbox.after_publish")
            await self._loop.run_in_executor(self._executor, self._mark_sent, sent)
        if failures:
            log.warning("outbox: %d of %d publishes failed: %s", len(failures), len(rows), failures[0])
            await asyncio.sleep(0.2)
        return len(sent), next_due

    def _fetch_due(self) -> tuple[list[_Row], datetime | None]:
        now = datetime.now(UTC)
        with self._db.read() as session:
            due = session.execute(
                select(outbox.c.seq, outbox.c.subject, outbox.c.msg_id, outbox.c.payload, outbox.c.headers)
                .where(
                    and_(
                        outbox.c.sent_at.is_(None),
                        or_(outbox.c.not_before.is_(None), outbox.c.not_before <= now),
                    )
                )
                .order_by(outbox.c.seq)
                .limit(self._batch_size)
            ).all()
            next_due = session.execute(
                select(outbox.c.not_before)
                .where(and_(outbox.c.sent_at.is_(None), outbox.c.not_before > now))
                .order_by(outbox.c.not_before)
                .limit(1)
            ).scalar()
        rows = [
            _Row(
                seq=r.seq,
                subject=r.subject,
                msg_id=r.msg_id,
                payload=r.payload,
                headers={**(json.loads(r.headers) if r.headers else {}), "Nats-Msg-Id": r.msg_id},
            )
            for r in due
        ]
        return rows, aware(next_due)

    def _mark_sent(self, seqs: list[int]) -> None:
        with self._db.session() as session, session.begin():
            session.execute(update(outbox).where(outbox.c.seq.in_(seqs)).values(sent_at=datetime.now(UTC)))

    async def _maybe_cleanup(self) -> None:
        now = datetime.now(UTC)
        if now - self._last_cleanup < timedelta(minutes=1):
            return
        self._last_cleanup = now
        cutoff = now - self._keep_sent
        await self._loop.run_in_executor(self._executor, self._delete_sent_before, cutoff)

    def _delete_sent_before(self, cutoff: datetime) -> None:
        with self._db.session() as session, session.begin():
            session.execute(
                delete(outbox).where(and_(outbox.c.sent_at.is_not(None), outbox.c.sent_at < cutoff))
            )
