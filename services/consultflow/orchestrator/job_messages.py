"""How a job reaches its worker: its JobActivated message, queued on the outbox in the step's transaction."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from consultflow.api.events.v1 import events_pb2
from consultflow.orchestrator import observability
from consultflow.orchestrator.records import JobRow
from consultflow.platform import jsonutil
from consultflow.platform.db import UnitOfWork
from consultflow.platform.messaging import job_subject
from consultflow.platform.timeutil import timestamp

JOB_ACTIVATED_HEADERS = {"Content-Type": "application/protobuf; type=consultflow.api.events.v1.JobActivated"}


def json_safe(data: Mapping[str, Any]) -> dict[str, Any]:
    """Task data as plain JSON values (what a worker or a person is shown)."""
    safe: dict[str, Any] = json.loads(jsonutil.dumps({k: v for k, v in data.items() if not callable(v)}))
    return safe


def publish_job(
    uow: UnitOfWork,
    job: JobRow,
    parameters: Mapping[str, Any],
    variables: Mapping[str, Any],
    process_id: str,
    business_key: str,
    not_before: datetime | None = None,
) -> None:
    """Queues the job's message on the outbox (called in the transaction that created or retried it).

    The message id names the attempt and the delivery, so the outbox and JetStream de-duplicate a step
    that is retried but not a deliberate redelivery. The message's headers carry the step's trace context
    (`UnitOfWork.publish`), so the worker's span joins the instance's trace.
    """
    if job.attempt == 1 and job.deliveries == 1:
        observability.job_created(job.operation)
    message = events_pb2.JobActivated(
        job_key=job.job_key,
        instance_id=job.instance_id,
        process_id=process_id,
        element_id=job.element_id,
        element_name=job.element_name,
        operation=job.operation,
        parameters_json=jsonutil.dumps(json_safe(parameters)),
        variables_json=jsonutil.dumps(json_safe(variables)),
        attempt=job.attempt,
        retries=job.retries,
        deadline=timestamp(job.deadline),
        business_key=business_key,
        created_at=timestamp(job.created_at),
    )
    uow.publish(
        job_subject(job.operation),
        f"{job.job_key}:{job.attempt}:{job.deliveries}",
        message.SerializeToString(),
        headers=JOB_ACTIVATED_HEADERS,
        not_before=not_before,
    )
