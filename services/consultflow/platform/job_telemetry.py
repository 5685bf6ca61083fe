"""What a service's job worker tells about each job: a consumer span in the trace the job message carries,
the log fields of the job, how long the job waited for a worker, and how handling it ended.

The worker calls these hooks (platform/worker.py); the handler runs on an executor thread in a copy of the
job's context, so its logs, its calls to peers and the status events it emits stay in the job's trace.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, TypeVar

from nats.aio.msg import Msg
from opentelemetry import trace
from opentelemetry.trace import SpanKind

from consultflow.api.events.v1 import events_pb2
from consultflow.platform import logging as logs
from consultflow.platform import metrics, tracing

if TYPE_CHECKING:
    from consultflow.platform.jobs import Outcome

W = TypeVar("W")


def observed_handling(
    handle: Callable[[W, Msg], Awaitable[None]],
) -> Callable[[W, Msg], Awaitable[None]]:
    """Runs a worker's handling of one job message in a consumer span under the message's trace context,
    with the log fields `received` binds undone afterwards."""

    @functools.wraps(handle)
    async def handling(worker: W, message: Msg) -> None:
        span = tracing.start_span(
            f"job {message.subject.removeprefix('jobs.')}",
            tracing.context_from(message.headers),
            SpanKind.CONSUMER,
            {"messaging.system": "nats", "messaging.destination.name": message.subject},
        )
        token = logs.bind()
        try:
            with tracing.activated(span):
                await handle(worker, message)
        finally:
            logs.unbind(token)

    return handling


def received(service: str, job: events_pb2.JobActivated, message: Msg) -> None:
    """Names the job in the span and the logs; a first delivery of a first attempt tells how long the job
    waited from its creation (the orchestrator's step) to this worker."""
    logs.bind(
        instance_id=job.instance_id,
        business_key=job.business_key,
        job_key=job.job_key,
        operation=job.operation,
    )
    span = trace.get_current_span()
    span.set_attribute("consultflow.job_key", job.job_key)
    span.set_attribute("consultflow.instance_id", job.instance_id)
    span.set_attribute("consultflow.business_key", job.business_key)
    if job.attempt == 1 and message.metadata.num_delivered == 1 and job.HasField("created_at"):
        waited = metrics.seconds_since(job.created_at.ToDatetime())
        metrics.JOB_DISPATCH_SECONDS.labels(service).observe(waited)


def handled(service: str, job: events_pb2.JobActivated, outcome: Outcome) -> None:
    """Counts how the handler ended (completed, error, failed; a replayed outcome counts as it was)."""
    metrics.JOBS_HANDLED.labels(service, job.operation, outcome.kind).inc()
    trace.get_current_span().set_attribute("consultflow.outcome", outcome.kind)
