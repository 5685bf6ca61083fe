"""Database access: one engine per component, a unit of work per use case, Alembic migrations.

SQLite (the embedded default) runs in WAL mode; write transactions start with BEGIN IMMEDIATE so two
writers queue on the lock instead of failing half-way when a reader upgrades, and the writers of one
process take turns on a lock of their own first (`_Writers`), so the next starts as the last one ends
rather than when SQLite's busy handler next wakes it. A writer waits for the lock
at most the busy timeout (`Limits.db_busy_timeout_ms`, 5 s by default: every write transaction is a bounded
step — engine time per step plus at most one script's budget — so a longer wait means the database is
overloaded); then `busy_error` turns the failure into
`Unavailable` with a retry hint, which callers receive as UNAVAILABLE + RetryInfo, not INTERNAL.
PostgreSQL is used as is; its lock, serialization and connection failures map the same way.
"""

from __future__ import annotations

import importlib
import json
import logging
import sqlite3
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType, TracebackType
from typing import Any, Self, TypeVar

from alembic import command
from alembic.config import Config
from google.protobuf.timestamp_pb2 import Timestamp
from sqlalchemy import Engine, Select, create_engine, event, exc, insert, select
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session, sessionmaker

from consultflow.api.events.v1 import events_pb2
from consultflow.platform import jsonutil
from consultflow.platform.errors import NotFound, Unavailable
from consultflow.platform.limits import DEFAULT_LIMITS
from consultflow.platform.tables import outbox
from consultflow.platform.tracing import with_trace_context

log = logging.getLogger(__name__)

T = TypeVar("T")

_READONLY = "consultflow_readonly"
# built once: every unit of work that publishes runs it; the row's number and slot come back for the relay
INSERT_OUTBOX = insert(outbox).returning(outbox.c.seq, outbox.c.claim_slot)


@dataclass(frozen=True)
class OutboxRow:
    """An outbox row as the relay publishes it: `headers` include its `Nats-Msg-Id`."""

    seq: int
    slot: int
    subject: str
    msg_id: str
    payload: bytes
    headers: dict[str, str]
    attempts: int = 0


def sent_headers(headers: Mapping[str, str] | None, msg_id: str) -> dict[str, str]:
    """The headers an outbox row is published with: its own and `Nats-Msg-Id`, which the stream
    de-duplicates by."""
    return {**(headers or {}), "Nats-Msg-Id": msg_id}


Committed = Callable[[Sequence[OutboxRow]], None]
"""Told after a commit which outbox rows it wrote that are due at once (the relay publishes them without
reading them back)."""


class Database:
    """An engine and the session factories for read-write and read-only work."""

    def __init__(self, url: str, busy_timeout_ms: int = DEFAULT_LIMITS.db_busy_timeout_ms) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        if self.is_sqlite:
            _ensure_sqlite_folder(url)
            self.engine = create_engine(
                url, connect_args={"check_same_thread": False, "timeout": busy_timeout_ms / 1000}
            )
            _configure_sqlite(self.engine, busy_timeout_ms)
        else:
            self.engine = create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=10)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._readonly_sessions = sessionmaker(
            self.engine.execution_options(**{_READONLY: True}), expire_on_commit=False
        )

    def session(self, readonly: bool = False) -> Session:
        """A new session; prefer `UnitOfWork` or `read()` to manage its life."""
        return (self._readonly_sessions if readonly else self._sessions)()

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A short read-only session (never commits)."""
        session = self.session(readonly=True)
        try:
            yield session
        finally:
            session.close()  # ends the transaction; loaded objects stay readable (detached)

    def dispose(self) -> None:
        self.engine.dispose()


def _ensure_sqlite_folder(url: str) -> None:
    path = url.split(":///", 1)[1] if ":///" in url else ""
    if path and path != ":memory:":
        Path(path.split("?", 1)[0]).parent.mkdir(parents=True, exist_ok=True)


class _Writers:
    """The writers of one SQLite file in this process, taking turns on a lock of their own.

    Waiting for SQLite's write lock is a sleep: its busy handler polls after 1, 2, 5, … up to 100 ms, so a
    writer that queued behind a 15 ms step may sleep 100 ms past its release, while the file has no writer
    at all (a step's dispatch p99 was 0.6–1.4 s with 60 engagements at once, docs/performance.md). Writers
    of one process queue here instead and the next one starts as the last one ends; SQLite's lock still
    serializes them against other processes (migrations, a second replica in tests). The wait is bounded by
    the same busy timeout and fails the same way ("database is locked", so `busy_error` answers
    Unavailable). A plain lock, not a thread's: SQLAlchemy may end a transaction on another thread than the
    one that began it (a connection returned to the pool)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._holder: object | None = None  # the DBAPI connection whose transaction has the turn

    def take_turn(self, dbapi_connection: object, timeout_seconds: float) -> None:
        if not self._lock.acquire(timeout=timeout_seconds):
            raise exc.OperationalError(
                "BEGIN IMMEDIATE", None, sqlite3.OperationalError("database is locked (by this process)")
            )
        self._holder = dbapi_connection

    def end_turn(self, connection: object) -> None:
        """Ends the turn if `connection` (a DBAPI connection or a pool's proxy of one) holds it."""
        if getattr(connection, "dbapi_connection", connection) is self._holder is not None:
            self._holder = None
            self._lock.release()


_WRITERS: dict[str, _Writers] = {}
_WRITERS_GUARD = threading.Lock()


def _writers_of(engine: Engine) -> _Writers:
    """One turn lock per database file in this process, shared by every engine on it."""
    database = engine.url.database or ""
    key = str(Path(database).resolve()) if database and database != ":memory:" else f"memory:{id(engine)}"
    with _WRITERS_GUARD:
        return _WRITERS.setdefault(key, _Writers())


def _configure_sqlite(engine: Engine, busy_timeout_ms: int) -> None:
    writers = _writers_of(engine)
    dialect = engine.dialect
    sqlite_commit, sqlite_rollback = dialect.do_commit, dialect.do_rollback

    def commit_then_end_turn(dbapi_connection: Any) -> None:
        try:
            sqlite_commit(dbapi_connection)
        finally:  # after the COMMIT: the next writer never finds the file still locked
            writers.end_turn(dbapi_connection)

    def rollback_then_end_turn(dbapi_connection: Any) -> None:
        try:
            sqlite_rollback(dbapi_connection)
        finally:  # also when the pool rolls back a connection returned mid-transaction
            writers.end_turn(dbapi_connection)

    dialect.do_commit = commit_then_end_turn  # type: ignore[method-assign]
    dialect.do_rollback = rollback_then_end_turn  # type: ignore[method-assign]

    @event.listens_for(engine, "checkin")
    @event.listens_for(engine, "invalidate")
    def _on_release(dbapi_connection: Any, *_: Any) -> None:
        writers.end_turn(dbapi_connection)  # a connection dropped or returned without a rollback

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # SQLAlchemy's recipe: we emit BEGIN ourselves
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        if connection.get_execution_options().get(_READONLY, False):
            connection.exec_driver_sql("BEGIN")
            return
        dbapi_connection = connection.connection.dbapi_connection
        writers.take_turn(dbapi_connection, busy_timeout_ms / 1000)
        try:
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        except BaseException:
            writers.end_turn(dbapi_connection)
            raise


RETRY_AFTER_SECONDS = 1.0
"""What a caller told the database is busy is asked to wait before trying again."""

_SQLITE_BUSY = ("database is locked", "database is busy", "database table is locked")
_POSTGRES_RETRYABLE = ("40001", "40P01", "55P03", "57014", "57P01", "57P02", "57P03", "53300")
"""Serialization failure, deadlock, lock not available, statement/lock timeout, shutdown, too many
connections; every `08…` connection exception counts too."""


def busy_error(error: BaseException) -> Unavailable | None:
    """`Unavailable` with a retry hint when `error` says the database is busy or out of reach for now
    (SQLite's lock, PostgreSQL's lock, serialization and connection failures, a full connection pool);
    None for any other error. The one place that tells a transient database failure from a bug."""
    if isinstance(error, exc.TimeoutError):  # the connection pool stayed full
        return Unavailable("the database is busy (no free connection)", RETRY_AFTER_SECONDS)
    if not isinstance(error, exc.DBAPIError):
        return None
    original = error.orig
    text = str(original).lower()
    if any(marker in text for marker in _SQLITE_BUSY):
        return Unavailable("the database is busy (locked by another writer)", RETRY_AFTER_SECONDS)
    state = str(getattr(original, "sqlstate", "") or getattr(original, "pgcode", "") or "")
    if state in _POSTGRES_RETRYABLE or state.startswith("08") or error.connection_invalidated:
        return Unavailable("the database is busy or unreachable", RETRY_AFTER_SECONDS)
    return None


class UnitOfWork:
    """One use case's transaction: everything in it commits together or not at all.

    Status events and jobs go through `outbox` rows written in the same transaction, so a message
    exists if and only if the change that caused it committed. Leaving the block without `commit()`
    rolls back.
    """

    def __init__(self, db: Database, source: str, on_commit: Committed | None = None) -> None:
        self._db = db
        self.source = source
        self._on_commit = on_commit
        self.session: Session
        self.wrote_outbox = False
        self._due_now: list[OutboxRow] = []

    def read(self) -> AbstractContextManager[Session]:
        """A read-only session on the same database, outside this unit of work's transaction (on SQLite it
        takes no write lock): to look before deciding to write."""
        return self._db.read()

    def __enter__(self) -> Self:
        self.session = self._db.session()
        self.session.begin()
        self.wrote_outbox = False
        self._due_now = []
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            self.session.rollback()  # a no-op after commit
        finally:
            self.session.close()

    def commit(self) -> None:
        self.session.commit()
        if self.wrote_outbox and self._on_commit is not None:
            self._on_commit(tuple(self._due_now))
        self.wrote_outbox = False
        self._due_now = []

    def publish(
        self,
        subject: str,
        msg_id: str,
        payload: bytes,
        headers: Mapping[str, str] | None = None,
        not_before: datetime | None = None,
    ) -> None:
        """Queues a NATS message that leaves only if this unit of work commits, with the current trace
        context in its headers (platform/tracing.py)."""
        headers = with_trace_context(headers)
        seq, slot = (
            self.session.connection()
            .execute(
                INSERT_OUTBOX,
                {
                    "msg_id": msg_id,
                    "subject": subject,
                    "payload": payload,
                    "headers": json.dumps(dict(headers)) if headers else None,
                    "created_at": datetime.now(UTC),
                    "not_before": not_before,
                },
            )
            .one()
        )
        self.wrote_outbox = True
        if not_before is None:
            row = OutboxRow(seq, slot, subject, msg_id, payload, sent_headers(headers, msg_id))
            self._due_now.append(row)

    def emit(
        self,
        event_type: str,
        subject_id: str,
        payload: Mapping[str, Any],
        correlation: Mapping[str, str] | None = None,
    ) -> events_pb2.StatusEvent:
        """Queues a status event `status.<source>.<entity>.<event>`, e.g. emit("inquiry.recorded", id, …)."""
        now = Timestamp()
        now.GetCurrentTime()
        status = events_pb2.StatusEvent(
            id=str(uuid.uuid4()),
            source=self.source,
            type=event_type,
            subject=subject_id,
            time=now,
            correlation={k: str(v) for k, v in (correlation or {}).items() if v},
            payload_json=jsonutil.dumps(payload),
        )
        self.publish(
            f"status.{self.source}.{event_type}",
            status.id,
            status.SerializeToString(),
            headers={"Content-Type": "application/protobuf; type=consultflow.api.events.v1.StatusEvent"},
        )
        return status


def one(session: Session, model: type[T], key: str, kind: str) -> T:
    """The row of `model` with primary key `key`, or NotFound naming what was asked for."""
    row = session.get(model, key) if key else None
    if row is None:
        raise NotFound(kind, key)
    return row


def by_request(session: Session, model: type[T], request_id: str) -> T | None:
    """The row of `model` an earlier request with this idempotency key created (a `request_id` column)."""
    if not request_id:
        return None
    column = getattr(model, "request_id")  # noqa: B009  (a mapped column every such model declares)
    return session.scalars(select(model).where(column == request_id)).first()


def where_given(query: Select[T], *filters: tuple[Any, object]) -> Select[T]:
    """`query` narrowed by each `(column, value)` whose value was given (a List RPC's empty field means
    "any")."""
    for column, value in filters:
        if value:
            query = query.where(column == value)
    return query


def migrate(db: Database, component: str) -> None:
    """Creates or upgrades the component's schema (and the shared platform tables) to the newest revision."""
    with db.engine.begin() as connection:
        config = alembic_config(component)
        config.attributes["connection"] = connection
        command.upgrade(config, "heads")


def orm_module(component: str) -> ModuleType:
    """The module holding a component's SQL tables (`consultflow.<component>.orm`, with its `Base`)."""
    return importlib.import_module(f"consultflow.{component}.orm")


def alembic_config(component: str) -> Config:
    """Alembic settings for a component: the platform's revisions plus its own, one shared env.py."""
    package = Path(__file__).resolve().parent.parent
    config = Config()
    config.set_main_option("script_location", str(package / "platform" / "migrations"))
    locations = [package / "platform" / "migrations" / "versions", package / component / "migrations"]
    config.set_main_option("version_locations", " ".join(str(p) for p in locations))
    config.set_main_option("path_separator", "space")
    return config
