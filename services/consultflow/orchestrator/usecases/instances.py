"""Starting and cancelling instances."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any, NamedTuple

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError

from consultflow.orchestrator import sizes
from consultflow.orchestrator.host import DefinitionRef, InstanceHost
from consultflow.orchestrator.orm import (
    INCIDENTS,
    INSTANCES,
    JOBS,
    SUBSCRIPTIONS,
    TIMERS,
    USER_TASKS,
    Definition,
    Instance,
)
from consultflow.orchestrator.parking import Parked
from consultflow.orchestrator.records import Effects, InstanceStatus, JobStatus, UserTaskStatus, Waits
from consultflow.orchestrator.step import InstanceRecord, Step, append_history
from consultflow.orchestrator.usecases import audit
from consultflow.orchestrator.usecases.audit import Change
from consultflow.platform.errors import (
    DomainError,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    ResourceExhausted,
)
from consultflow.platform.identity import Caller

log = logging.getLogger(__name__)

MAX_BUSINESS_KEY_LENGTH = 255


@dataclass(frozen=True)
class CreateResult:
    instance_id: str
    definition_id: str
    created: bool


class ExistingInstance(NamedTuple):
    instance_id: str
    definition_id: str


def create_instance(
    host: InstanceHost,
    process_id: str,
    version: int,
    variables: Mapping[str, Any],
    business_key: str = "",
    actor: Caller | None = None,
) -> CreateResult:
    """Starts an instance of a version (the latest when `version` is 0); one per business key."""
    if not process_id:
        raise InvalidArgument("process_id", "is required")
    if version < 0:
        raise InvalidArgument("version", "must be 0 (latest) or a positive version")
    if len(business_key) > MAX_BUSINESS_KEY_LENGTH:
        raise InvalidArgument("business_key", f"is longer than {MAX_BUSINESS_KEY_LENGTH} characters")
    sizes.check_input(variables, host.limits, "variables_json")
    definition = definition_ref(host, process_id, version)
    if business_key:
        existing = instance_by_key(host, process_id, business_key)
        if existing is not None:
            return CreateResult(existing.instance_id, existing.definition_id, created=False)
    try:
        instance_id = host.start(definition, variables, business_key, partial(_audit_created, actor=actor))
    except IntegrityError:
        existing = instance_by_key(host, process_id, business_key)
        if existing is None:
            raise
        return CreateResult(existing.instance_id, existing.definition_id, created=False)
    return CreateResult(instance_id, definition.definition_id, created=True)


def _audit_created(step: Step, actor: Caller | None) -> None:
    change = Change("instance.created", step.instance_id, step.record.business_key, step.record.definition_id)
    audit.record(step.session, actor, change, step.now)


def definition_ref(host: InstanceHost, process_id: str, version: int) -> DefinitionRef:
    """The version to start (the latest when `version` is 0): two columns, read without the ORM,
    because every CreateInstance asks."""
    query = select(Definition.definition_id, Definition.process_id).where(Definition.process_id == process_id)
    if version:
        query = query.where(Definition.version == version)
    with host.db.read() as session:
        row = session.execute(query.order_by(Definition.version.desc()).limit(1)).first()
    if row is None:
        what = f"{process_id} version {version}" if version else process_id
        raise NotFound("process definition", what)
    return DefinitionRef(row.definition_id, row.process_id)


def instance_by_key(host: InstanceHost, process_id: str, business_key: str) -> ExistingInstance | None:
    """The instance already started for this business key, if any."""
    with host.db.read() as session:
        row = session.execute(
            select(Instance.instance_id, Instance.definition_id).where(
                Instance.process_id == process_id, Instance.business_key == business_key
            )
        ).first()
    return None if row is None else ExistingInstance(row.instance_id, row.definition_id)


MAX_CASCADE = 100
"""Instances cancelled with one request at most (an instance and those its messages started, in turn)."""
MAX_REASON_LENGTH = 2000


def cancel_instance(
    host: InstanceHost, instance_id: str, reason: str = "", actor: Caller | None = None
) -> None:
    """Cancels an instance, then every active instance of the same business key that its thrown messages
    started, and theirs in turn: an engagement's risk management would otherwise run on after the
    engagement was cancelled. An instance started for another key (a new engagement a referral started)
    is a business of its own and stays. Any active instance can be cancelled, whatever its state."""
    if len(reason) > MAX_REASON_LENGTH:
        raise InvalidArgument("reason", f"is longer than {MAX_REASON_LENGTH} characters")
    cancel_one(host, instance_id, reason, actor)
    pending, seen = [instance_id], {instance_id}
    while pending and len(seen) <= MAX_CASCADE:
        parent = pending.pop(0)
        with host.db.read() as session:
            key = session.scalar(select(Instance.business_key).where(Instance.instance_id == parent))
            children = (
                list(
                    session.scalars(
                        select(Instance.instance_id).where(
                            Instance.started_by == parent,
                            Instance.business_key == key,
                            Instance.status == InstanceStatus.ACTIVE,
                        )
                    )
                )
                if key
                else []
            )
        for child in children:
            if child in seen:
                continue
            seen.add(child)
            try:
                cause = f"{parent} was cancelled: {reason}".rstrip(": ")
                cancel_one(host, child, cause, actor)
            except FailedPrecondition:
                continue  # it ended meanwhile
            pending.append(child)


def cancel_one(host: InstanceHost, instance_id: str, reason: str, actor: Caller | None) -> None:
    """Cancels one instance through its workflow; when the engine cannot (a parked instance, a state that
    does not load, is over the size limit or fails to step), cancels its rows without the engine."""
    try:
        host.step(instance_id, partial(cancel, reason=reason, actor=actor))
    except Parked:
        cancel_without_engine(host, instance_id, reason, actor, "it is parked")
    except ResourceExhausted as error:  # its state is, or would be, over the size limit
        cancel_without_engine(host, instance_id, reason, actor, error.message)
    except DomainError:
        raise  # not active, not found, a concurrent change that kept winning
    except Exception as error:
        log.warning("instance %s: the engine failed to cancel it (%s)", instance_id, type(error).__name__)
        cancel_without_engine(host, instance_id, reason, actor, f"the engine failed ({type(error).__name__})")


def cancel(step: Step, reason: str, actor: Caller | None = None) -> None:
    """Cancels everything the instance does; its open incidents are resolved with it."""
    if step.status != InstanceStatus.ACTIVE:
        raise FailedPrecondition(f"instance {step.instance_id} is {step.status.lower()}, not active")
    change = Change("instance.canceled", step.instance_id, step.record.business_key, detail=reason)
    audit.record(step.session, actor, change, step.now)
    step.workflow.cancel()
    step.status = InstanceStatus.CANCELED
    step.history("instance.canceled", detail=reason)
    step.uow.emit(
        "instance.canceled", step.instance_id, {**step.summary(), "reason": reason}, step.record.correlation
    )
    for incident_id in list(step.waits.incidents):
        step.resolve_incidents(incident_id=incident_id)


def cancel_without_engine(
    host: InstanceHost, instance_id: str, reason: str, actor: Caller | None, cause: str
) -> None:
    """Cancels an instance's rows in one transaction, never loading its workflow: what a cancel through
    the engine writes (status, jobs and user tasks closed, timers and subscriptions gone, incidents
    resolved, history, audit, the `instance.canceled` event), for an instance the engine cannot step. Its
    stored state stays as it was (an ended instance's state is never loaded again)."""
    with host.without_engine(instance_id) as uow:
        conn = uow.session.connection()
        record = InstanceRecord.load(conn, instance_id)
        if record is None:
            raise NotFound("instance", instance_id)
        if record.status != InstanceStatus.ACTIVE:
            raise FailedPrecondition(f"instance {instance_id} is {record.status.lower()}, not active")
        now = host.clock.now()
        history: list[tuple[str, str]] = []
        open_jobs = JOBS.c.status.in_((JobStatus.ACTIVATABLE, JobStatus.INCIDENT))
        for key in conn.scalars(select(JOBS.c.job_key).where(JOBS.c.instance_id == instance_id, open_jobs)):
            history.append(("job.canceled", key))
        conn.execute(
            update(JOBS)
            .where(JOBS.c.instance_id == instance_id, open_jobs)
            .values(status=JobStatus.CANCELED, updated_at=now)
        )
        open_tasks = (USER_TASKS.c.instance_id == instance_id, USER_TASKS.c.status == UserTaskStatus.OPEN)
        for task_id in conn.scalars(select(USER_TASKS.c.user_task_id).where(*open_tasks)):
            history.append(("usertask.canceled", task_id))
        conn.execute(
            update(USER_TASKS).where(*open_tasks).values(status=UserTaskStatus.CANCELED, completed_at=now)
        )
        conn.execute(delete(TIMERS).where(TIMERS.c.instance_id == instance_id))
        conn.execute(delete(SUBSCRIPTIONS).where(SUBSCRIPTIONS.c.instance_id == instance_id))
        open_incidents = (INCIDENTS.c.instance_id == instance_id, INCIDENTS.c.resolved_at.is_(None))
        for incident_id in conn.scalars(select(INCIDENTS.c.incident_id).where(*open_incidents)):
            history.append(("incident.resolved", incident_id))
            uow.emit("incident.resolved", incident_id, {"instance_id": instance_id}, record.correlation)
        conn.execute(update(INCIDENTS).where(*open_incidents).values(resolved_at=now))
        history.append(("instance.canceled", f"{reason} (cancelled without the engine: {cause})"))
        change = Change("instance.canceled", instance_id, record.business_key, detail=reason)
        audit.record(uow.session, actor, change, now)
        summary = {
            "instance_id": instance_id,
            "process_id": record.process_id,
            "definition_id": record.definition_id,
            "business_key": record.business_key,
            "status": str(InstanceStatus.CANCELED),
        }
        uow.emit("instance.canceled", instance_id, {**summary, "reason": reason}, record.correlation)
        entries = [(kind, "", "", detail) for kind, detail in history]
        seq = append_history(conn, instance_id, record.history_seq, now, entries)
        conn.execute(
            update(INSTANCES)
            .where(INSTANCES.c.instance_id == instance_id)
            .values(
                status=InstanceStatus.CANCELED,
                revision=INSTANCES.c.revision + 1,
                waits=Waits().dumps(),
                waiting_at="[]",
                open_incidents=0,
                history_seq=seq,
                updated_at=now,
                ended_at=now,
            )
        )
        uow.commit()
    host.notify(Effects(instances={instance_id}, timers_changed=True))
