"""How `run_job` reports a handler's failure: refused requests are final, transient failures are retried."""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import pytest
from sqlalchemy import select

from consultflow.platform.db import Database, UnitOfWork, migrate
from consultflow.platform.errors import (
    Conflict,
    DomainError,
    FailedPrecondition,
    PermissionDenied,
    Unauthenticated,
    Unavailable,
)
from consultflow.platform.jobs import Job, run_job
from consultflow.platform.tables import processed_jobs
from tests.support.jobs import job


def _job(retries: int = 3) -> Job:
    return replace(job("test.op", key="job-1"), retries=retries)


@pytest.mark.parametrize(
    ("error", "retries"),
    [
        (Unavailable("contracts.GetContract: connection refused"), 2),
        (Conflict("a concurrent change won"), 2),
        (Unauthenticated("crm GetClient: the token's key id 'k2' is not one the issuer publishes"), 2),
        (FailedPrecondition("the rules forbid it"), 0),
        (PermissionDenied("crm GetClient: component contracts may not call it"), 0),
    ],
)
def test_transient_failures_are_retried_and_refusals_are_not(
    sqlite_url: str, error: DomainError, retries: int
) -> None:
    db = Database(sqlite_url)
    migrate(db, "crm")

    def handler(uow: UnitOfWork, job: Job) -> Mapping[str, Any]:
        raise error

    outcome = run_job(lambda: UnitOfWork(db, "test"), {"test.op": handler}, _job())
    db.dispose()
    assert outcome.kind == "failed"
    assert outcome.retries == retries
    assert error.message in outcome.message


def test_a_handler_that_calls_a_peer_before_its_first_statement_holds_no_write_lock(sqlite_url: str) -> None:
    """The peer call of a job (crm for a contract draft) must not keep other writers of the service
    waiting: the handler's transaction begins at its first statement, after the call."""
    db = Database(sqlite_url)
    migrate(db, "crm")
    seen: dict[str, str] = {}

    def handler(uow: UnitOfWork, job: Job) -> Mapping[str, Any]:
        other = sqlite3.connect(sqlite_url.removeprefix("sqlite:///"), timeout=0.2, isolation_level=None)
        try:
            other.execute("BEGIN IMMEDIATE")  # another writer, while "the peer call" is under way
            other.execute("ROLLBACK")
            seen["other writer"] = "got the lock"
        except sqlite3.OperationalError as error:
            seen["other writer"] = str(error)
        finally:
            other.close()
        uow.session.execute(select(processed_jobs.c.job_key))  # the handler's own first statement
        return {"done": True}

    outcome = run_job(lambda: UnitOfWork(db, "test"), {"test.op": handler}, _job())
    with db.read() as session:
        recorded = session.execute(select(processed_jobs.c.outcome)).scalars().all()
    db.dispose()
    assert seen == {"other writer": "got the lock"}
    assert (outcome.kind, recorded) == ("completed", ["completed"])
