"""Errors mean something: a caller's megabyte is never echoed, and a busy database asks to retry."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from sqlalchemy import exc

from consultflow.platform.db import Database, UnitOfWork, busy_error
from consultflow.platform.errors import MESSAGE_LIMIT, InvalidArgument, NotFound, Unavailable, clip, shown
from consultflow.platform.grpcerrors import error_from_rpc, status_of
from consultflow.platform.inputs import choice, number
from consultflow.platform.jsonutil import loads_object
from consultflow.platform.limits import Limits

HUGE = "x" * 1_000_000


def test_errors_quote_at_most_a_few_hundred_characters_of_what_they_were_given() -> None:
    assert shown(HUGE).endswith("… (1000000 characters)") and len(shown(HUGE)) < 250
    assert clip("short") == "short"
    errors = [NotFound("client", HUGE), InvalidArgument(HUGE, HUGE), Unavailable(HUGE)]
    with pytest.raises(InvalidArgument) as by_number:
        number("fee", HUGE)
    errors.append(by_number.value)
    from enum import StrEnum

    class Stage(StrEnum):
        A = "a"

    with pytest.raises(InvalidArgument) as by_choice:
        choice("stage", HUGE, Stage)
    errors.append(by_choice.value)
    for error in errors:
        assert len(error.message) <= MESSAGE_LIMIT + 250, type(error).__name__
        assert len(status_of(error).message) <= MESSAGE_LIMIT + 250


def test_variable_names_with_control_characters_are_refused() -> None:
    assert loads_object('{"amount": 1, "note": "a\\nb"}', "variables_json") == {"amount": 1, "note": "a\nb"}
    with pytest.raises(InvalidArgument) as refused:
        loads_object('{"a\\u0000b": 1}', "variables_json")
    assert refused.value.field.startswith("variables_json[") and "control character" in refused.value.problem


def test_a_retryable_error_carries_retry_info_and_says_so() -> None:
    status = status_of(Unavailable("the database is busy", retry_after=1.5))
    assert status.code == grpc.StatusCode.UNAVAILABLE
    assert status.message == "the database is busy; retry in 1.5 s"
    details = dict(status.trailing_metadata)["grpc-status-details-bin"]
    decoded = rpc_status.status_pb2.Status.FromString(details)  # type: ignore[attr-defined]
    info = error_details_pb2.RetryInfo()
    assert decoded.details[0].Unpack(info)
    assert info.retry_delay.ToMilliseconds() == 1500


def test_sqlite_busy_is_unavailable_with_a_retry_hint_after_the_busy_timeout(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'busy.db'}"
    db = Database(url, busy_timeout_ms=Limits(db_busy_timeout_ms=100).db_busy_timeout_ms)
    holder = sqlite3.connect(tmp_path / "busy.db", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(exc.OperationalError) as locked, UnitOfWork(db, "test") as uow:
            uow.session.connection()
    finally:
        holder.execute("ROLLBACK")
        holder.close()
        db.dispose()
    busy = busy_error(locked.value)
    assert isinstance(busy, Unavailable) and busy.retry_after == 1.0


class FakePostgresError(Exception):
    def __init__(self, sqlstate: str) -> None:
        super().__init__(f"error {sqlstate}")
        self.sqlstate = sqlstate


@pytest.mark.parametrize("sqlstate", ["40001", "40P01", "55P03", "57014", "08006", "53300"])
def test_postgres_lock_serialization_and_connection_failures_are_unavailable(sqlstate: str) -> None:
    error = exc.OperationalError("UPDATE …", {}, FakePostgresError(sqlstate))
    assert isinstance(busy_error(error), Unavailable)


def test_other_database_errors_stay_errors() -> None:
    assert busy_error(exc.IntegrityError("INSERT …", {}, FakePostgresError("23505"))) is None
    assert busy_error(ValueError("database is locked")) is None
    assert isinstance(busy_error(exc.TimeoutError("QueuePool limit reached")), Unavailable)


@pytest.mark.parametrize(
    ("code", "kind"),
    [
        (grpc.StatusCode.INVALID_ARGUMENT, InvalidArgument),
        (grpc.StatusCode.NOT_FOUND, NotFound),
        (grpc.StatusCode.UNAVAILABLE, Unavailable),
    ],
)
def test_an_asyncio_call_failure_keeps_its_meaning(code: grpc.StatusCode, kind: type) -> None:
    """grpc.aio's error is no grpc.Call: read as one, every refusal of a worker's reply looked transient
    and the worker sent it again forever."""
    error = grpc.aio.AioRpcError(code, grpc.aio.Metadata(), grpc.aio.Metadata(), details="what went wrong")
    translated = error_from_rpc(error, "orchestrator")
    assert isinstance(translated, kind) and "what went wrong" in translated.message
