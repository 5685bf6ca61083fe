"""The outbox relay: publishes committed outbox rows to JetStream and marks them sent.

Rows are written by `UnitOfWork.publish` in the same transaction as the change that caused them. The
relay publishes with `Nats-Msg-Id`, so a row published twice (a crash between publish and mark, or a
lease that moved to another replica mid-batch) is dropped by the stream's duplicate window: delivery is
at-least-once, duplicates are filtered, nothing is lost.

A commit hands the rows it wrote to the relay (`notify`), which publishes them at once without reading
them back; a read of the due rows (`flush_once`) runs when a commit wrote only delayed rows, after a full
batch, and at least every `poll_seconds` — for rows whose hand-over was lost with a crash, refused rows
due again, and rows of partitions taken over. The relay has a thread of its own for its reads and writes,
so it never waits in line behind the component's requests.

With several replicas each relay publishes only the rows of the partitions its lease keeper owns
(platform/claims.py): a row takes a partition its writer owns, so the writer's relay, handed the rows by
the commit, publishes them at once; the rows of a replica that died move with its partitions. Deleting
sent rows runs in the owner of partition 0 only.

A row that can never be published is set aside ("dead": `dead_at`, with the reason in `last_error`)
instead of being retried forever, and the relay goes on with the rows after it: at once when it can never
fit (larger than the largest message NATS or the stream accepts, a subject no stream takes, a subject this
component's NATS user may not publish to), else after `Limits.outbox_publish_attempts` refused publishes
with a growing back-off. Refusals while NATS is unreachable, has no JetStream answering, or the stream is
full (JOBS discards new messages) are transient: they are retried and never counted. Each dead row is
logged at ERROR and handed to `on_dead_letter` (the orchestrator turns a dead job into an incident on its
instance); `consultflow outbox` lists them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import OrderedDict
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import nats.errors
from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.errors import APIError, NoStreamResponseError, ServiceUnavailableError
from sqlalchemy import and_, delete, func, or_, select, update

from consultflow.platform.claims import EVERYTHING, Owned
from consultflow.platform.db import Database, OutboxRow, busy_error, sent_headers
from consultflow.platform.faults import crash_point
from consultflow.platform.limits import DEFAULT_LIMITS, Limits
from consultflow.platform.messaging import stream_of, subject_matches
from consultflow.platform.nats_access import permissions
from consultflow.platform.tables import outbox
from consultflow.platform.timeutil import aware

log = logging.getLogger(__name__)


# JetStream's error codes for a message larger than the stream's max_msg_size, and for a full stream
# (discard new: maximum messages or bytes exceeded).
MESSAGE_TOO_LARGE = 10054
STREAM_STORE_FAILED = 10077
FIRST_RETRY_SECONDS = 0.5
MAX_RETRY_SECONDS = 60.0


REMEMBERED_SENT = 4096
"""How many rows the relay remembers publishing, so a hand-over that arrives after a read already
published its rows does not publish them again."""


@dataclass(frozen=True)
class DeadLetter:
    """An outbox row set aside because it cannot be published, with the reason."""

    seq: int
    subject: str
    msg_id: str
    payload: bytes
    reason: str


class _Verdict:
    """How one failed publish is treated."""

    TRANSIENT = "transient"  # NATS away or busy, stream full: retry, never count
    REFUSED = "refused"  # counted; dead after `outbox_publish_attempts`
    NEVER = "never"  # can never succeed: dead at once


class OutboxRelay:
    """Moves outbox rows to NATS: those commits hand it at once, the others by reading them."""

    def __init__(
        self,
        db: Database,
        js: JetStreamContext,
        executor: Executor,
        batch_size: int = 256,
        poll_seconds: float = 1.0,
        keep_sent: timedelta = timedelta(hours=1),
        nc: Client | None = None,
        publisher: str | None = None,
        limits: Limits = DEFAULT_LIMITS,
        owned: Callable[[], Owned] = lambda: EVERYTHING,
    ) -> None:
        """`nc` tells whether NATS is reachable (failures while it is not are never counted);
        `publisher` is this component's NATS user, whose publish rights are checked before publishing
        (None: an open server, as in some tests); `owned` says which partitions' rows this relay
        publishes now (a `LeaseKeeper.owned`; by default all)."""
        self.owned = owned
        self._db = db
        self._js = js
        self._nc = nc
        self._allowed = permissions(publisher).publish if publisher else None
        self._limits = limits
        self.on_dead_letter: Callable[[DeadLetter], None] | None = None
        """Called (on an executor thread) for each row set aside, after it was marked dead."""
        self._executor = executor
        self._batch_size = batch_size
        self._poll_seconds = poll_seconds
        self._keep_sent = keep_sent
        self._wake = asyncio.Event()
        self._loop = asyncio.get_running_loop()
        self._stopping = False
        self._last_cleanup = datetime.now(UTC)
        self._handed: list[OutboxRow] = []
        self._read_asked = True  # at start: whatever an earlier run left
        self._last_read = self._loop.time()
        self._next_due: datetime | None = None
        self._sent: OrderedDict[str, None] = OrderedDict()  # message ids, oldest first

    def notify(self, rows: Sequence[OutboxRow] = ()) -> None:
        """After a commit that wrote outbox rows: `rows` are those due at once, published without reading
        them back; none (only delayed rows) asks for a read. Safe from any thread."""
        self._loop.call_soon_threadsafe(self._take, tuple(rows))

    def _take(self, rows: tuple[OutboxRow, ...]) -> None:
        if rows:
            self._handed.extend(rows)
        else:
            self._read_asked = True
        self._wake.set()

    async def run(self) -> None:
        while not self._stopping:
            try:
                await self._publish_handed()
                if self._read_due():
                    self._read_asked = False
                    self._last_read = self._loop.time()
                    published, self._next_due = await self.flush_once()
                    if published >= self._batch_size:
                        self._read_asked = True
                        continue
            except Exception as error:
                busy = busy_error(error)
                if busy is None:
                    log.exception("outbox relay failed; retrying")
                else:  # published rows not yet marked go again: the stream drops the duplicates
                    log.warning("outbox relay: %s; retrying in %.0f s", busy, self._poll_seconds)
                self._read_asked = True
                await asyncio.sleep(self._poll_seconds)
                continue
            if self._handed:
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._until_read())
            self._wake.clear()

    def _read_due(self) -> bool:
        return self._read_asked or self._until_read() <= 0

    def _until_read(self) -> float:
        """Seconds until the next read of the due rows: the poll interval, or a delayed row's time."""
        seconds = self._poll_seconds - (self._loop.time() - self._last_read)
        if self._next_due is not None:
            seconds = min(seconds, (self._next_due - datetime.now(UTC)).total_seconds())
        return max(0.0, seconds)

    async def stop(self) -> None:
        """Stops the loop after a last flush, so committed rows leave before the process does."""
        self._stopping = True
        self._wake.set()
        try:
            await self._publish_handed()
            await self.flush_once()
        except Exception:
            log.warning("final outbox flush failed; rows stay for the next start", exc_info=True)

    async def _publish_handed(self) -> None:
        """Publishes the rows commits handed over (one batch) that are this replica's and not yet sent."""
        if not self._handed:
            return
        batch, self._handed = self._handed[: self._batch_size], self._handed[self._batch_size :]
        owned = self.owned()
        await self._publish([r for r in batch if owned.includes(r.slot) and r.msg_id not in self._sent])

    async def flush_once(self) -> tuple[int, datetime | None]:
        """Reads and publishes one batch of due rows; returns how many and when the next delayed row is
        due."""
        rows, next_due = await self._loop.run_in_executor(self._executor, self._fetch_due)
        if not rows:
            await self._maybe_cleanup()
            return 0, next_due
        return await self._publish(rows), next_due

    async def _publish(self, rows: list[OutboxRow]) -> int:
        """Publishes `rows`, marks them sent, refused or dead; returns how many left the outbox.

        Rows that fail do not hold up the others: each is published, set aside or retried on its own."""
        if not rows:
            return 0
        dead: list[tuple[OutboxRow, str]] = []
        publishable: list[OutboxRow] = []
        for row in rows:
            reason = self._never_publishable(row)
            if reason is None:
                publishable.append(row)
            else:
                dead.append((row, reason))
        results = await asyncio.gather(
            *(self._js.publish(r.subject, r.payload, headers=r.headers) for r in publishable),
            return_exceptions=True,
        )
        sent: list[OutboxRow] = []
        refused: list[tuple[OutboxRow, str]] = []
        transient: list[BaseException] = []
        for row, result in zip(publishable, results, strict=True):
            if not isinstance(result, BaseException):
                sent.append(row)
                continue
            verdict = self._judge(result)
            reason = f"{type(result).__name__}: {result}"
            if verdict == _Verdict.NEVER:
                dead.append((row, reason))
            elif verdict == _Verdict.REFUSED and row.attempts + 1 >= self._limits.outbox_publish_attempts:
                dead.append((row, f"refused {row.attempts + 1} times, last: {reason}"))
            elif verdict == _Verdict.REFUSED:
                refused.append((row, reason))
            else:
                transient.append(result)
        if sent:
            crash_point("outbox.after_publish")
            self._remember_sent([r.msg_id for r in sent])
            await self._loop.run_in_executor(self._executor, self._mark_sent, [r.seq for r in sent])
        if refused:
            await self._loop.run_in_executor(self._executor, self._mark_refused, refused)
            log.warning(
                "outbox: %d publishes refused, retried later (first: %s, %s)",
                len(refused),
                refused[0][0].subject,
                refused[0][1],
            )
            self._read_asked = True  # to learn when the first refused row is due again
        for row, reason in dead:
            await self._loop.run_in_executor(self._executor, self._set_aside, row, reason)
        if transient:
            log.warning("outbox: %d of %d publishes failed: %s", len(transient), len(rows), transient[0])
            await asyncio.sleep(0.2)
        return len(sent) + len(dead)

    def _remember_sent(self, msg_ids: list[str]) -> None:
        """By message id, not row number: SQLite numbers rows afresh once the clean-up emptied the table."""
        for msg_id in msg_ids:
            self._sent[msg_id] = None
        while len(self._sent) > REMEMBERED_SENT:
            self._sent.popitem(last=False)

    def _never_publishable(self, row: OutboxRow) -> str | None:
        """Why a row can never be published, known before trying; None when it may be."""
        largest = self._limits.stream_max_message_bytes
        server = getattr(self._nc, "max_payload", 0) if self._nc is not None else 0
        if server:
            largest = min(largest, server)
        # The server counts headers too ("NATS/1.0\r\n", "key: value\r\n" each, a blank line), and closes
        # the connection of a client that sends more than max_payload: never send it.
        size = len(row.payload) + 12 + sum(len(k) + len(v) + 4 for k, v in row.headers.items())
        if size > largest:
            return (
                f"its payload of {len(row.payload)} bytes exceeds the largest message NATS accepts "
                f"({largest} bytes; limit stream_max_message_bytes and the server's max_payload)"
            )
        if stream_of(row.subject) is None:
            return f"no stream takes the subject {row.subject}"
        if self._allowed is not None and not any(subject_matches(p, row.subject) for p in self._allowed):
            return f"this component's NATS user may not publish to {row.subject}"
        return None

    def _judge(self, error: BaseException) -> str:
        if isinstance(error, nats.errors.MaxPayloadError):
            return _Verdict.NEVER
        if isinstance(error, APIError) and error.err_code == MESSAGE_TOO_LARGE:
            return _Verdict.NEVER
        if isinstance(error, APIError) and error.err_code == STREAM_STORE_FAILED:
            return _Verdict.TRANSIENT  # the stream is full (discard new) until its consumers catch up
        if isinstance(error, ServiceUnavailableError | NoStreamResponseError | nats.errors.NoRespondersError):
            return _Verdict.TRANSIENT  # JetStream not answering (restarting, no leader yet)
        if isinstance(
            error,
            nats.errors.ConnectionClosedError
            | nats.errors.ConnectionDrainingError
            | nats.errors.OutboundBufferLimitError
            | nats.errors.ConnectionReconnectingError,
        ):
            return _Verdict.TRANSIENT
        if self._nc is not None and not self._nc.is_connected:
            return _Verdict.TRANSIENT
        return _Verdict.REFUSED

    def _fetch_due(self) -> tuple[list[OutboxRow], datetime | None]:
        now = datetime.now(UTC)
        mine = self.owned().where(outbox.c.claim_slot)
        with self._db.read() as session:
            due = session.execute(
                select(
                    outbox.c.seq,
                    outbox.c.claim_slot,
                    outbox.c.subject,
                    outbox.c.msg_id,
                    outbox.c.payload,
                    outbox.c.headers,
                    outbox.c.attempts,
                )
                .where(
                    and_(
                        outbox.c.sent_at.is_(None),
                        outbox.c.dead_at.is_(None),
                        or_(outbox.c.not_before.is_(None), outbox.c.not_before <= now),
                        mine,
                    )
                )
                .order_by(outbox.c.seq)
                .limit(self._batch_size)
            ).all()
            next_due = session.execute(
                select(outbox.c.not_before)
                .where(
                    and_(
                        outbox.c.sent_at.is_(None),
                        outbox.c.dead_at.is_(None),
                        outbox.c.not_before > now,
                        mine,
                    )
                )
                .order_by(outbox.c.not_before)
                .limit(1)
            ).scalar()
        rows = [
            OutboxRow(
                seq=r.seq,
                slot=r.claim_slot,
                subject=r.subject,
                msg_id=r.msg_id,
                payload=r.payload,
                headers=sent_headers(json.loads(r.headers) if r.headers else None, r.msg_id),
                attempts=r.attempts or 0,
            )
            for r in due
        ]
        return rows, aware(next_due)

    def _mark_sent(self, seqs: list[int]) -> None:
        with self._db.session() as session, session.begin():
            session.execute(update(outbox).where(outbox.c.seq.in_(seqs)).values(sent_at=datetime.now(UTC)))

    def _mark_refused(self, refused: list[tuple[OutboxRow, str]]) -> None:
        """Counts a refusal and holds the row back a growing while (not before), so it does not spin."""
        now = datetime.now(UTC)
        with self._db.session() as session, session.begin():
            for row, reason in refused:
                delay = min(FIRST_RETRY_SECONDS * 2**row.attempts, MAX_RETRY_SECONDS)
                session.execute(
                    update(outbox)
                    .where(outbox.c.seq == row.seq)
                    .values(
                        attempts=row.attempts + 1,
                        last_error=reason[:4000],
                        not_before=now + timedelta(seconds=delay),
                    )
                )

    def _set_aside(self, row: OutboxRow, reason: str) -> None:
        """Marks the row dead (durably, with the reason), says so at ERROR, then tells `on_dead_letter`."""
        with self._db.session() as session, session.begin():
            session.execute(
                update(outbox)
                .where(outbox.c.seq == row.seq)
                .values(dead_at=datetime.now(UTC), last_error=reason[:4000], attempts=row.attempts + 1)
            )
        log.error(
            "outbox: message %s to %s set aside, it cannot be published: %s (`consultflow outbox` lists it)",
            row.msg_id,
            row.subject,
            reason,
        )
        if self.on_dead_letter is not None:
            try:
                self.on_dead_letter(DeadLetter(row.seq, row.subject, row.msg_id, row.payload, reason))
            except Exception:
                log.exception("outbox: handling the dead message %s failed", row.msg_id)

    async def _maybe_cleanup(self) -> None:
        now = datetime.now(UTC)
        if now - self._last_cleanup < timedelta(minutes=1) or not self.owned().cleans_up:
            return
        self._last_cleanup = now
        cutoff = now - self._keep_sent
        await self._loop.run_in_executor(self._executor, self._delete_sent_before, cutoff)

    def _delete_sent_before(self, cutoff: datetime) -> None:
        with self._db.session() as session, session.begin():
            session.execute(
                delete(outbox).where(and_(outbox.c.sent_at.is_not(None), outbox.c.sent_at < cutoff))
            )


@dataclass(frozen=True)
class SetAside:
    """A dead outbox row as `consultflow outbox` shows it."""

    seq: int
    subject: str
    msg_id: str
    size: int
    created_at: datetime
    dead_at: datetime
    attempts: int
    reason: str


def set_aside(db: Database) -> list[SetAside]:
    """The rows the relay set aside, oldest first."""
    with db.read() as session:
        rows = session.execute(
            select(
                outbox.c.seq,
                outbox.c.subject,
                outbox.c.msg_id,
                func.length(outbox.c.payload).label("size"),
                outbox.c.created_at,
                outbox.c.dead_at,
                outbox.c.attempts,
                outbox.c.last_error,
            )
            .where(outbox.c.dead_at.is_not(None))
            .order_by(outbox.c.seq)
        ).all()
    return [
        SetAside(
            r.seq,
            r.subject,
            r.msg_id,
            int(r.size or 0),
            aware(r.created_at) or r.created_at,
            aware(r.dead_at) or r.dead_at,
            r.attempts,
            r.last_error or "",
        )
        for r in rows
    ]


def requeue(db: Database, seq: int) -> bool:
    """Gives a dead row to the relay again (after its cause was fixed, e.g. a limit raised); False when
    no dead row has that number."""
    with db.session() as session, session.begin():
        result = session.execute(
            update(outbox)
            .where(and_(outbox.c.seq == seq, outbox.c.dead_at.is_not(None)))
            .values(dead_at=None, attempts=0, not_before=None)
        )
    return bool(result.rowcount)  # type: ignore[attr-defined]
