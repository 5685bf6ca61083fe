"""A worker's replies to a job (complete, fail, throw a BPMN error, extend its deadline) and the redelivery
of unanswered jobs."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from SpiffWorkflow.task import Task
from sqlalchemy import select, update

from consultflow.orchestrator import engine, observability, sizes
from consultflow.orchestrator.host import InstanceHost
from consultflow.orchestrator.job_messages import publish_job
from consultflow.orchestrator.orm import JOBS, JobRecord
from consultflow.orchestrator.parking import not_parked
from consultflow.orchestrator.records import IncidentKind, JobRow, JobStatus, OpenJob, instance_of
from consultflow.orchestrator.step import Step
from consultflow.platform import policy
from consultflow.platform.claims import EVERYTHING, Owned
from consultflow.platform.errors import FailedPrecondition, InvalidArgument, NotFound
from consultflow.platform.identity import Caller

log = logging.getLogger(__name__)

MAX_BACKOFF_SECONDS = 300
MAX_ERROR_MESSAGE = 4000
MAX_DELIVERY_FACTOR = 10
"""A job delivered n times waits n job deadlines (at most this many) before the next delivery."""


# ------------------------------------------------------------------------------------- a job's step


def _with_open_job(
    host: InstanceHost, job_key: str, action: Callable[[Step, OpenJob], None], actor: Caller | None
) -> None:
    """Runs `action(step, job)` in a step of the job's instance; unknown keys are NOT_FOUND.

    An open job is described from the instance's own state (no read); only a job that is no longer open
    (a late or repeated reply) is read from its row. `actor` (the caller over gRPC; None for code in this
    process) must own the job's operation.
    """
    checked = partial(_as_owner, action=action, actor=actor, owners=host.operation_owners)
    _job_step(host, job_key, partial(_apply_to_open_job, job_key=job_key, action=checked))


def _with_job_row(
    host: InstanceHost, job_key: str, action: Callable[[Step, JobRow], None], actor: Caller | None
) -> None:
    """Runs `action(step, job)` with the job's row, in a step of its instance."""
    checked = partial(_as_owner, action=action, actor=actor, owners=host.operation_owners)
    _job_step(host, job_key, partial(_apply_to_job_row, job_key=job_key, action=checked))


def _as_owner(
    step: Step,
    job: Any,
    action: Callable[[Step, Any], None],
    actor: Caller | None,
    owners: Mapping[str, tuple[str, ...]],
) -> None:
    if actor is not None:
        policy.require_operation(actor, job.operation, owners)
    action(step, job)


def _job_step(host: InstanceHost, job_key: str, action: Callable[[Step], None]) -> None:
    if not job_key:
        raise InvalidArgument("job_key", "is required")
    try:
        host.step(instance_of(job_key), action)
    except NotFound as error:
        raise NotFound("job", job_key) from error


def _apply_to_open_job(step: Step, job_key: str, action: Callable[[Step, OpenJob], None]) -> None:
    job = step.open_job(job_key) if job_key in step.waits.jobs else None
    action(step, job if job is not None else _job_row(step, job_key))


def _apply_to_job_row(step: Step, job_key: str, action: Callable[[Step, JobRow], None]) -> None:
    action(step, _job_row(step, job_key))


def _job_row(step: Step, job_key: str) -> JobRow:
    job = step.job(job_key)
    if job is None:
        raise NotFound("job", job_key)
    return job


def _waiting_task(step: Step, job: OpenJob) -> Task:
    task = engine.find_task(step.workflow, job.task_id)
    if task is None or not engine.is_waiting_service_task(task):
        raise FailedPrecondition(f"job {job.job_key}: its task no longer waits for a reply")
    return task


def _refuse_unless_waiting(job: OpenJob) -> None:
    if not job.status.waits_for_reply:
        raise FailedPrecondition(f"job {job.job_key} is {job.status.lower()}: its task no longer waits")


# --------------------------------------------------------------------------------------- complete


def complete_job(
    host: InstanceHost, job_key: str, variables: Mapping[str, Any], actor: Caller | None = None
) -> None:
    sizes.check_input(variables, host.limits, "variables_json")
    _with_open_job(host, job_key, partial(complete, variables=variables), actor)


def complete(step: Step, job: OpenJob, variables: Mapping[str, Any]) -> None:
    """The worker's result lands in the task's data (or in its result variable) and the task completes."""
    if job.status == JobStatus.COMPLETED:
        return step.skip()  # a repeated reply: nothing changes
    _refuse_unless_waiting(job)
    task = _waiting_task(step, job)
    spec: engine.JobServiceTask = task.task_spec
    if spec.merges_result:
        task.data.update(variables)
    else:
        task.data[spec.result_variable] = dict(variables)
    step.close_job(job.job_key, JobStatus.COMPLETED)
    observability.job_completed(job.operation)
    step.history("job.completed", job.element_id, job.element_name, job.operation)
    task.complete()
    step.record_completed(task)
    step.advance()


# ------------------------------------------------------------------------------------------- fail


def fail_job(
    host: InstanceHost,
    job_key: str,
    retries: int,
    backoff_ms: int,
    message: str,
    actor: Caller | None = None,
) -> None:
    if retries < 0:
        raise InvalidArgument("retries", "must not be negative")
    if backoff_ms < 0:
        raise InvalidArgument("retry_backoff_ms", "must not be negative")
    _with_job_row(
        host, job_key, partial(fail, retries=retries, backoff_ms=backoff_ms, message=message), actor
    )


def fail(step: Step, job: JobRow, retries: int, backoff_ms: int, message: str) -> None:
    """Retries after a back-off while the worker grants retries; else the job becomes an incident."""
    if job.status in (JobStatus.COMPLETED, JobStatus.INCIDENT, JobStatus.ERROR_THROWN):
        return step.skip()  # a late or repeated failure report changes nothing
    if job.status != JobStatus.ACTIVATABLE:
        raise FailedPrecondition(f"job {job.job_key} is {job.status.lower()}: its task no longer waits")
    task = engine.find_task(step.workflow, job.task_id)
    observability.job_failed(job.operation)
    if retries > 0:
        backoff = retry_backoff(backoff_ms, job.backoff_base, job.attempt)
        retry_at = step.now + backoff
        step.update_job(
            job.job_key,
            attempt=job.attempt + 1,
            retries=retries - 1,
            deliveries=1,
            error_message=message[:MAX_ERROR_MESSAGE],
            deadline=retry_at + step.env.job_deadline,
            activated_at=retry_at,
        )
        step.history("job.failed", job.element_id, job.element_name, f"retry in {backoff}: {message}")
        republish_job(step, job.job_key, task, retry_at)
    else:
        step.update_job(job.job_key, status=JobStatus.INCIDENT, error_message=message[:MAX_ERROR_MESSAGE])
        step.history("job.failed", job.element_id, job.element_name, f"no retries left: {message}")
        step.add_incident(task, IncidentKind.JOB_NO_RETRIES, f"{job.operation}: {message}", job=job.job_key)


def retry_backoff(backoff_ms: int, backoff_base: int, attempt: int) -> timedelta:
    """The worker's back-off if it names one, else the diagram's base doubled per attempt (capped)."""
    if backoff_ms:
        return timedelta(milliseconds=backoff_ms)
    return timedelta(seconds=min(backoff_base * 2 ** (attempt - 1), MAX_BACKOFF_SECONDS))


# -------------------------------------------------------------------------------------- BPMN errors


def throw_error(
    host: InstanceHost,
    job_key: str,
    code: str,
    message: str,
    variables: Mapping[str, Any],
    actor: Caller | None = None,
) -> None:
    if not code:
        raise InvalidArgument("error_code", "is required")
    sizes.check_input(variables, host.limits, "variables_json")
    _with_open_job(host, job_key, partial(throw, code=code, message=message, variables=variables), actor)


def throw(step: Step, job: OpenJob, code: str, message: str, variables: Mapping[str, Any]) -> None:
    """Routes a worker's BPMN error to a boundary event that catches it; nothing catches it: an incident."""
    if job.status == JobStatus.ERROR_THROWN:
        return step.skip()
    _refuse_unless_waiting(job)
    task = _waiting_task(step, job)
    observability.job_failed(job.operation)
    if engine.catch_error(task, code, message, variables):
        step.close_job(job.job_key, JobStatus.ERROR_THROWN)
        step.history("job.error", job.element_id, job.element_name, f"{code}: {message}")
        step.advance()
    elif job.status != JobStatus.INCIDENT:
        step.update_job(
            job.job_key, status=JobStatus.INCIDENT, error_message=f"{code}: {message}"[:MAX_ERROR_MESSAGE]
        )
        step.add_incident(
            task,
            IncidentKind.UNHANDLED_ERROR,
            f"no boundary event catches error {code!r}: {message}",
            job=job.job_key,
        )


# ------------------------------------------------------------------------------------ extending


def extend_job_deadline(
    host: InstanceHost, job_key: str, extend_by: timedelta, actor: Caller | None = None
) -> datetime:
    """Moves a waiting job's deadline to at least now + `extend_by` (zero: the usual job deadline), so a
    worker still running it is not overtaken by a redelivery; returns the deadline now in force.

    One row changes, not the instance: a heartbeat is not a step of the process, so it writes neither
    the instance's state nor its history. The hold is bounded per delivery (`Limits.max_job_hold_seconds`
    from `activated_at`): past it the extension is refused and the job is delivered again at its
    deadline, as when its worker died.
    """
    if not job_key:
        raise InvalidArgument("job_key", "is required")
    if extend_by < timedelta(0):
        raise InvalidArgument("extend_by_ms", "must not be negative")
    now = host.clock.now()
    wanted = now + (extend_by or host.job_deadline)
    with host.uow_factory() as uow:
        found = uow.session.execute(select(JOBS).where(JOBS.c.job_key == job_key).with_for_update()).first()
        if found is None:
            raise NotFound("job", job_key)
        job = JobRow.from_row(found)
        if actor is not None:
            policy.require_operation(actor, job.operation, host.operation_owners)
        if job.status != JobStatus.ACTIVATABLE:
            raise FailedPrecondition(f"job {job_key} is {job.status.lower()}: its task no longer waits")
        if wanted <= job.deadline:
            return job.deadline  # never earlier than it was
        _refuse_past_hold(job, wanted, host.limits.max_job_hold_seconds)
        # the row is locked (FOR UPDATE; SQLite: BEGIN IMMEDIATE), so no redelivery changed it meanwhile
        uow.session.execute(update(JOBS).where(JOBS.c.job_key == job_key).values(deadline=wanted))
        uow.commit()
    return wanted


def _refuse_past_hold(job: JobRow, wanted: datetime, max_hold_seconds: float) -> None:
    held = (wanted - job.activated_at).total_seconds()
    if held > max_hold_seconds:
        raise FailedPrecondition(
            f"job {job.job_key}: a deadline {held:.0f} s after its delivery began passes the limit "
            f"max_job_hold_seconds ({max_hold_seconds:g} s); it is delivered again at its deadline"
        )


# ------------------------------------------------------------------------------------- redelivery


def redeliver_overdue_jobs(host: InstanceHost, limit: int = 200, owned: Owned = EVERYTHING) -> int:
    """Republishes jobs no worker answered before their deadline (JetStream redelivers too; this covers a
    message that left the stream without a reply). A parked instance's jobs wait until it is un-parked.
    With several replicas each scans the partitions it owns (`owned`, platform/claims.py)."""
    now = host.clock.now()
    with host.db.read() as session:
        keys = list(
            session.scalars(
                select(JobRecord.job_key)
                .where(
                    JobRecord.status == JobStatus.ACTIVATABLE,
                    JobRecord.deadline < now,
                    owned.where(JobRecord.claim_slot),
                    not_parked(JobRecord.instance_id),
                )
                .order_by(JobRecord.deadline)
                .limit(limit)
            )
        )
    for key in keys:
        try:
            _with_job_row(host, key, redeliver, None)
        except Exception:
            log.exception("redelivering job %s failed", key)
    return len(keys)


def redeliver(step: Step, job: JobRow) -> None:
    """Publishes an overdue job again, giving the worker longer each time."""
    if job.status != JobStatus.ACTIVATABLE or job.deadline >= step.now:
        return step.skip()
    task = engine.find_task(step.workflow, job.task_id)
    deliveries = job.deliveries + 1
    step.update_job(
        job.job_key,
        deliveries=deliveries,
        deadline=step.now + step.env.job_deadline * min(deliveries, MAX_DELIVERY_FACTOR),
        activated_at=step.now,
    )
    step.history("job.redelivered", job.element_id, job.element_name, f"delivery {deliveries}")
    republish_job(step, job.job_key, task)


# ------------------------------------------------------------------------------------- publishing


def republish_job(step: Step, job_key: str, task: Task | None, not_before: datetime | None = None) -> None:
    """Queues a job's message again, from its row as this step just updated it (a retry, a redelivery)."""
    job = step.job(job_key)
    assert job is not None, f"job {job_key} has a row: it was just updated"
    publish_job(
        step.uow,
        job,
        _parameters(step, task),
        task.data if task else {},
        step.record.process_id,
        step.record.business_key,
        not_before,
    )


def _parameters(step: Step, task: Task | None) -> dict[str, Any]:
    """The job's parameters; a failing expression sends none (the job was created with them, so the
    expression failing now means the data changed under it) and says so in the log."""
    if task is None:
        return {}
    try:
        return engine.job_parameters(task)
    except Exception as exc:
        log.warning(
            "instance %s: parameters of %s no longer evaluate (%s), publishing none",
            step.instance_id,
            task.task_spec.bpmn_id,
            type(exc).__name__,
        )
        log.debug("instance %s: %s", step.instance_id, engine.error_text(exc))
        return {}
