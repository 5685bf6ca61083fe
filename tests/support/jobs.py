"""The one job factory for service tests, and running a job exactly as a service's worker does."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from consultflow.platform.jobs import Job, JobHandler, Outcome, run_job
from tests.support.components import ComponentThread


def job(operation: str, key: str = "", business_key: str = "", **parameters: Any) -> Job:
    """A job as the orchestrator would send it for a service task with these parameters."""
    return Job(
        key=key or str(uuid.uuid4()),
        operation=operation,
        instance_id="instance-1",
        process_id="test",
        element_id=operation.split(".")[1],
        parameters=parameters,
        variables={},
        attempt=1,
        retries=3,
        business_key=business_key,
    )


def run(thread: ComponentThread, handlers: Mapping[str, JobHandler], job: Job) -> Outcome:
    """Runs a job exactly as the service's worker does (idempotent, in the service's own database)."""
    assert thread.context is not None
    return run_job(thread.context.uow, handlers, job)


def completed(outcome: Outcome) -> Mapping[str, Any]:
    """The variables of a job that must have completed."""
    assert outcome.kind == "completed", outcome
    return outcome.variables


def refused_job(
    thread: ComponentThread, handlers: Mapping[str, JobHandler], operation: str, parameters: Mapping[str, Any]
) -> str:
    """Runs a job the service must refuse without retries (an incident); returns the failure message."""
    outcome = run(thread, handlers, job(operation, **parameters))
    assert (outcome.kind, outcome.retries) == ("failed", 0), outcome
    return outcome.message
