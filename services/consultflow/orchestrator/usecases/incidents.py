"""Resolving incidents: what failed is tried again."""

from __future__ import annotations

from functools import partial

from SpiffWorkflow.util.task import TaskState

from consultflow.orchestrator import engine
from consultflow.orchestrator.host import InstanceHost
from consultflow.orchestrator.orm import Incident
from consultflow.orchestrator.parking import Parked
from consultflow.orchestrator.records import PARKING_KINDS, JobStatus
from consultflow.orchestrator.step import Step
from consultflow.orchestrator.usecases import audit
from consultflow.orchestrator.usecases.audit import Change
from consultflow.orchestrator.usecases.jobs import republish_job
from consultflow.platform.errors import FailedPrecondition, InvalidArgument, NotFound
from consultflow.platform.identity import Caller


def resolve_incident(
    host: InstanceHost, incident_id: str, retries: int = 1, actor: Caller | None = None
) -> None:
    """Retries what failed: a job gets `retries` attempts again; a failed script runs again."""
    if not incident_id:
        raise InvalidArgument("incident_id", "is required")
    if retries < 0:
        raise InvalidArgument("retries", "must not be negative")
    with host.db.read() as session:
        incident = session.get(Incident, incident_id)
    if incident is None:
        raise NotFound("incident", incident_id)
    if incident.resolved_at is not None:
        raise FailedPrecondition(f"incident {incident_id} is already resolved")
    # Only the incident that parks an instance may step it while it is parked (its other incidents are
    # refused before its workflow is loaded: it may be what fails).
    host.step(
        incident.instance_id,
        partial(resolve, incident_id=incident_id, retries=retries, actor=actor),
        even_if_parked=incident.kind in PARKING_KINDS,
    )


def resolve(step: Step, incident_id: str, retries: int, actor: Caller | None = None) -> None:
    """A job's incident publishes the job again; a failed task is reset and runs again; anything else
    (a correlation failure, an engine error, a parked instance) lets the engine try again.

    Resolving the incident that parks an instance un-parks it: if the engine fails again, the step is
    rolled back and it stays parked. While it is parked, its other incidents wait for that one.
    """
    if incident_id not in step.waits.incidents:
        return step.skip()
    if step.waits.parked and incident_id != step.waits.parked:
        raise Parked(step.instance_id, step.waits.parked, "its other incidents wait until it is un-parked")
    if incident_id == step.waits.parked:
        step.waits.parked = ""
        step.history("instance.unparked", detail=incident_id)
        step.effects.timers_changed = True  # its timers count again for the scheduler
        step.effects.messages_pending = True  # and messages buffered for it may be delivered now
    change = Change(
        "incident.resolved", step.instance_id, step.record.business_key, incident_id, f"{retries=}"
    )
    audit.record(step.session, actor, change, step.now)
    task_id, job_key = step.waits.incidents[incident_id]
    step.resolve_incidents(incident_id=incident_id)
    if job_key:
        job = step.job(job_key)
        task = engine.find_task(step.workflow, job.task_id) if job else None
        if job is not None and engine.is_waiting_service_task(task):
            step.update_job(
                job_key,
                status=JobStatus.ACTIVATABLE,
                attempt=job.attempt + 1,
                retries=max(retries, 1) - 1,
                deliveries=1,
                deadline=step.now + step.env.job_deadline,
            )
            step.waits.jobs.add(job_key)
            step.history("job.retried", job.element_id, job.element_name, f"attempt {job.attempt + 1}")
            republish_job(step, job_key, task)
    elif task_id:
        task = engine.find_task(step.workflow, task_id)
        if task is not None and task.state == TaskState.ERROR:
            step.workflow.reset_from_task_id(task.id)
        step.advance()
    else:
        step.advance()
