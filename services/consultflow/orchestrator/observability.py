"""What the orchestrator tells about its steps: a span in the instance's trace, the log fields of the
instance, the step counter and timing, the job and timer metrics of what a step did, and the scrape-time
gauges of its open incidents and user tasks.

`InstanceHost.step` and `.start` are wrapped by `observed_step`; the step itself says which instance it is
on (`step_began`, called by `Step.__init__`) — the instance of a start is made inside it. Metrics of what
a step did (jobs created, completed, failed, timers fired) are counted only when the step committed: a
step retried after a concurrent change, or refused, counts nothing.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Awaitable, Callable, Iterable
from contextvars import ContextVar, Token
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ParamSpec, Protocol, TypeVar

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Span, Status, StatusCode
from sqlalchemy import case, func, select

from consultflow.orchestrator.orm import INCIDENTS, USER_TASKS
from consultflow.orchestrator.records import UserTaskStatus
from consultflow.platform import logging as logs
from consultflow.platform import metrics, tracing
from consultflow.platform.db import Database
from consultflow.platform.errors import DomainError

P = ParamSpec("P")
T = TypeVar("T")


class _Record(Protocol):
    instance_id: str
    process_id: str
    business_key: str
    revision: int
    state: str


class Step(Protocol):
    """What a step shows this module (step.py's `Step`, which imports this module)."""

    record: Any  # an InstanceRecord: _Record
    skipped: bool


@dataclass
class _StepScope:
    """One call of `InstanceHost.step`/`.start`: its attempts' spans and what it counts on commit."""

    started: float
    step: Step | None = None
    span: Span | None = None
    context_token: object = None
    log_token: Token[Any] | None = None
    on_commit: list[Callable[[], None]] = field(default_factory=list)

    def end_attempt(self, error: BaseException | None = None) -> None:
        if self.span is None:
            return
        if error is not None:
            self.span.set_attribute("error.type", type(error).__name__)
            if not isinstance(error, DomainError):
                self.span.set_status(Status(StatusCode.ERROR, type(error).__name__))
        otel_context.detach(self.context_token)  # type: ignore[arg-type]
        if self.log_token is not None:
            logs.unbind(self.log_token)
        self.span.end()
        self.span, self.context_token, self.log_token = None, None, None


_scope: ContextVar[_StepScope | None] = ContextVar("consultflow_step_scope", default=None)


def observed_step(method: Callable[P, T]) -> Callable[P, T]:
    """Times and counts every call of a step method and ends the spans its attempts began."""

    @functools.wraps(method)
    def observed(*args: P.args, **kwargs: P.kwargs) -> T:
        scope = _StepScope(time.perf_counter())
        token = _scope.set(scope)
        outcome = "failed"
        error: BaseException | None = None
        try:
            result = method(*args, **kwargs)
            outcome = "skipped" if scope.step is not None and scope.step.skipped else "committed"
            return result
        except BaseException as failure:
            error = failure
            outcome = "refused" if isinstance(failure, DomainError) else "failed"
            raise
        finally:
            scope.end_attempt(error)
            _scope.reset(token)
            metrics.STEPS.labels(outcome).inc()
            metrics.STEP_SECONDS.observe(time.perf_counter() - scope.started)
            if outcome == "committed":
                for count in scope.on_commit:
                    count()

    return observed


def step_began(step: Step) -> None:
    """A step (an attempt of one) is on its instance: its span starts, its log lines name the instance.
    A retried attempt ends the span of the one before and forgets what that one counted."""
    scope = _scope.get()
    if scope is None:
        return  # a step made outside InstanceHost (a test's own)
    scope.end_attempt()
    scope.step = step
    scope.on_commit.clear()
    record: _Record = step.record
    new = record.revision == 0 and not record.state
    span = tracing.start_instance_span(
        f"{'start' if new else 'step'} {record.process_id}{_cause()}",
        record.instance_id,
        new,
        {
            "consultflow.instance_id": record.instance_id,
            "consultflow.business_key": record.business_key,
            "consultflow.process_id": record.process_id,
        },
    )
    scope.span = span
    scope.context_token = otel_context.attach(trace.set_span_in_context(span))
    scope.log_token = logs.bind(instance_id=record.instance_id, business_key=record.business_key)


def _cause() -> str:
    """What made the step, for its span's name: the gRPC method it runs in (`: CompleteUserTask`); none
    for the scheduler's steps (timers, redeliveries) and where no tracer provider records names."""
    name = getattr(trace.get_current_span(), "name", "")
    return f": {name.rsplit('/', 1)[-1]}" if isinstance(name, str) and "/" in name else ""


def after_commit(count: Callable[[], None]) -> None:
    """Counts when the current step commits (at once outside a step)."""
    scope = _scope.get()
    if scope is None:
        count()
    else:
        scope.on_commit.append(count)


def job_created(operation: str) -> None:
    after_commit(metrics.JOBS_CREATED.labels(operation).inc)


def job_completed(operation: str) -> None:
    after_commit(metrics.JOBS_COMPLETED.labels(operation).inc)


def job_failed(operation: str) -> None:
    after_commit(metrics.JOBS_FAILED.labels(operation).inc)


def timer_fired(due_at: datetime, now: datetime) -> None:
    lateness = max(0.0, (now - due_at).total_seconds())
    after_commit(functools.partial(metrics.TIMER_LATENESS_SECONDS.observe, lateness))


# ------------------------------------------------------------------------------ scrape-time gauges

OPEN_INCIDENTS = select(func.count()).where(INCIDENTS.c.resolved_at.is_(None))
"""ix_incidents_open (resolved_at, created_at) answers it from the index."""


def _open_tasks(now: datetime) -> Any:
    """Open tasks and the overdue among them per candidate-group list (ix_user_tasks_open narrows to the
    open rows; no workflow state is read)."""
    return (
        select(
            USER_TASKS.c.candidate_groups,
            func.count(),
            func.sum(case((USER_TASKS.c.due_at < now, 1), else_=0)),
        )
        .where(USER_TASKS.c.status == UserTaskStatus.OPEN)
        .group_by(USER_TASKS.c.candidate_groups)
    )


def gauges(db: Database) -> metrics.Source:
    """Open incidents, and open and overdue user tasks by group (a task of two groups counts in each;
    one for named people only under `group=""`)."""

    def read() -> Iterable[metrics.Reading]:
        now = datetime.now(UTC)
        with db.read() as session:
            incidents = session.scalar(OPEN_INCIDENTS) or 0
            rows = session.execute(_open_tasks(now)).all()
        opened: dict[str, float] = {}
        overdue: dict[str, float] = {}
        for groups, count, late in rows:
            for group in [g for g in (groups or "").split(",") if g] or [""]:
                opened[group] = opened.get(group, 0) + count
                overdue[group] = overdue.get(group, 0) + (late or 0)
        readings = [metrics.Reading("consultflow_incidents_open", (), float(incidents))]
        for group, count in sorted(opened.items()):
            readings.append(metrics.Reading("consultflow_user_tasks_open", (("group", group),), count))
            readings.append(
                metrics.Reading("consultflow_user_tasks_overdue", (("group", group),), overdue[group])
            )
        return readings

    return read


def watch(db: Database) -> Callable[[], Awaitable[None]]:
    """Adds the orchestrator's gauges to the scrape; returns the stop hook that removes them."""
    key = f"orchestrator:{id(db)}"
    metrics.SCRAPED.add(key, gauges(db))

    async def stop() -> None:
        metrics.SCRAPED.remove(key)

    return stop
