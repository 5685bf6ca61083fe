"""How `run_job` reports a handler's failure: refused requests are final, transient failures are retried."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from consultflow.platform.db import Database, UnitOfWork, migrate
from consultflow.platform.errors import Conflict, DomainError, FailedPrecondition, Unavailable
from consultflow.platform.jobs import Job, run_job


def _job(retries: int = 3) -> Job:
    return Job(
        key="job-1",
        operation="test.op",
        instance_id="i-1",
        process_id="p",
        element_id="e",
        parameters={},
        variables={},
        attempt=1,
        retries=retries,
    )


@pytest.mark.parametrize(
    ("error", "retries"),
    [
        (Unavailable("contracts.GetContract: connection refused"), 2),
        (Conflict("a concurrent change won"), 2),
        (FailedPrecondition("the rules forbid it"), 0),
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
