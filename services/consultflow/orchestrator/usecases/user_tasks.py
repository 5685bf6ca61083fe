"""People's work: claiming, giving back and completing user tasks."""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from typing import Any

from SpiffWorkflow.util.task import TaskState

from consultflow.orchestrator import engine, sizes
from consultflow.orchestrator.forms import validate_form
from consultflow.orchestrator.host import InstanceHost
from consultflow.orchestrator.orm import UserTask
from consultflow.orchestrator.records import Effects, UserTaskStatus, correlation
from consultflow.orchestrator.step import Step
from consultflow.orchestrator.usecases import audit
from consultflow.orchestrator.usecases.audit import Change
from consultflow.platform import policy
from consultflow.platform.errors import FailedPrecondition, InvalidArgument, NotFound, PermissionDenied
from consultflow.platform.identity import Caller
from consultflow.platform.policy import Role


def claim_user_task(host: InstanceHost, user_task_id: str, actor: Caller, force: bool = False) -> UserTask:
    """The caller takes an open task it is a candidate for; taking it from someone else needs `force`,
    which only an admin has."""
    with host.uow_factory() as uow:
        row = uow.session.get(UserTask, user_task_id) if user_task_id else None
        if row is None:
            raise NotFound("user task", user_task_id)
        if row.status != UserTaskStatus.OPEN:
            raise FailedPrecondition(f"user task {user_task_id} is {row.status.lower()}")
        task = f"user task {user_task_id}"
        policy.require_candidate(actor, task, row.assignee, row.candidate_groups, row.candidate_users)
        if row.assignee and row.assignee != actor.name:
            if not force:
                raise FailedPrecondition(f"{task} is claimed by {row.assignee!r}; use force")
            if not actor.has_role(Role.ADMIN):
                raise PermissionDenied(f"{task} is claimed by {row.assignee!r}; only an admin takes it over")
        took_over = row.assignee if row.assignee and row.assignee != actor.name else ""
        row.assignee = actor.name
        instance_id = row.instance_id
        change = Change(
            "usertask.claimed",
            row.instance_id,
            row.business_key,
            row.element_id,
            f"taken over from {took_over}" if took_over else "",
        )
        audit.record(uow.session, actor, change, host.clock.now())
        uow.emit(
            "usertask.claimed",
            user_task_id,
            {"name": row.name, "element_id": row.element_id, "assignee": actor.name},
            correlation(instance_id, row.process_id, row.business_key),
        )
        uow.commit()
    host.notify(Effects(instances={instance_id}))
    return row


def unclaim_user_task(host: InstanceHost, user_task_id: str, actor: Caller) -> UserTask:
    """The person holding an open task gives it back to its candidates; ops (and admins) may give back
    anyone's, e.g. for someone away."""
    with host.uow_factory() as uow:
        row = uow.session.get(UserTask, user_task_id) if user_task_id else None
        if row is None:
            raise NotFound("user task", user_task_id)
        task = f"user task {user_task_id}"
        if row.status != UserTaskStatus.OPEN:
            raise FailedPrecondition(f"{task} is {row.status.lower()}")
        if not row.assignee:
            raise FailedPrecondition(f"{task} is not claimed")
        held_by = row.assignee
        if held_by != actor.name and not actor.has_role(Role.OPS, Role.ADMIN):
            raise PermissionDenied(f"{task} is claimed by {held_by!r}, not by {actor.name!r}")
        row.assignee = ""
        instance_id = row.instance_id
        detail = f"given back for {held_by}" if held_by != actor.name else ""
        change = Change("usertask.unclaimed", row.instance_id, row.business_key, row.element_id, detail)
        audit.record(uow.session, actor, change, host.clock.now())
        uow.emit(
            "usertask.unclaimed",
            user_task_id,
            {"name": row.name, "element_id": row.element_id, "unclaimed_by": actor.name},
            correlation(instance_id, row.process_id, row.business_key),
        )
        uow.commit()
    host.notify(Effects(instances={instance_id}))
    return row


def complete_user_task(
    host: InstanceHost, user_task_id: str, values: Mapping[str, Any], actor: Caller
) -> None:
    """The person who holds the task submits its form; they are recorded as the one who completed it."""
    if not user_task_id:
        raise InvalidArgument("user_task_id", "is required")
    sizes.check_input(values, host.limits)  # a form's fields are its variables: the error names the field
    with host.db.read() as session:
        row = session.get(UserTask, user_task_id)
    if row is None:
        raise NotFound("user task", user_task_id)
    host.step(
        row.instance_id,
        partial(complete, user_task_id=user_task_id, values=values, actor=actor),
    )


def complete(step: Step, user_task_id: str, values: Mapping[str, Any], actor: Caller) -> None:
    """The submitted form, checked against the task's fields, lands in its data and the task completes."""
    current = step.session.get(UserTask, user_task_id)
    assert current is not None
    if current.status != UserTaskStatus.OPEN:
        raise FailedPrecondition(f"user task {user_task_id} is {current.status.lower()}")
    policy.require_claimant(actor, f"user task {user_task_id}", current.assignee)
    task = engine.find_task(step.workflow, user_task_id)
    if task is None or task.state != TaskState.READY:
        raise FailedPrecondition(f"user task {user_task_id} no longer waits")
    spec: engine.HumanTask = task.task_spec
    data = validate_form(spec.form_fields, values)
    spec.add_data_from_form(task, data)
    task.run()
    step.record_completed(task)
    done_by = actor.name
    step.close_user_task(user_task_id, UserTaskStatus.COMPLETED, done_by)
    step.history("usertask.completed", current.element_id, current.name, done_by)
    change = Change("usertask.completed", step.instance_id, step.record.business_key, current.element_id)
    audit.record(step.session, actor, change, step.now)
    step.uow.emit(
        "usertask.completed",
        user_task_id,
        {"name": current.name, "element_id": current.element_id, "completed_by": done_by, "values": data},
        step.record.correlation,
    )
    step.advance()
