"""Delivery use cases of 3.5 communication: the communication log, progress reports and change requests."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from consultflow.delivery import domain
from consultflow.delivery.domain import (
    ChangeResponse,
    ChangeStatus,
    CommunicationKind,
    Direction,
    NewChangeRequest,
    NewCommunication,
    NewCoordination,
)
from consultflow.delivery.orm import ChangeRequest, Communication, Project
from consultflow.delivery.usecases.common import active, emit, get, log_entry, new_id, project_of, today
from consultflow.delivery.usecases.execution import snapshots, work_plan
from consultflow.platform.db import UnitOfWork, by_request
from consultflow.platform.errors import InvalidArgument
from consultflow.platform.inputs import optional_text, required_text
from consultflow.platform.timeutil import now


def log_communication(uow: UnitOfWork, project_id: str, command: NewCommunication) -> Communication:
    """3.5.1, 3.5.2: an entry in the communication log. A change of needs goes through `request_change`."""
    project = active(uow, project_id)
    entry = log_entry(uow, project, command.direction, command.kind, command.counterpart, command.summary)
    uow.session.flush()
    emit(
        uow,
        project,
        "communication.logged",
        entry.communication_id,
        communication_id=entry.communication_id,
        direction=entry.direction,
        kind=entry.kind,
    )
    return entry


def communications(
    session: Session, project_id: str, direction: Direction | None, limit: int, offset: int
) -> list[Communication]:
    """The project's communication log, newest first; optionally one direction."""
    project = project_of(session, project_id)
    query = select(Communication).where(Communication.project_id == project.project_id)
    if direction is not None:
        query = query.where(Communication.direction == direction.value)
    query = query.order_by(Communication.occurred_at.desc()).offset(offset).limit(limit)
    return list(session.scalars(query))


def progress_summary(session: Session, project: Project) -> str:
    """What the client reads in a progress report: plan progress, milestones, the latest indicators."""
    parts = [f"Progress report of {today().isoformat()} ({project.phase.replace('_', ' ')})."]
    if project.execution_started_at is None:
        parts.append("Execution has not started yet.")
    else:
        plan = work_plan(session, project.project_id)
        done = sum(1 for t in plan.tasks if t.progress == 100)
        parts.append(
            f"Overall progress {plan.overall_progress} % ({done} of {len(plan.tasks)} tasks complete)."
        )
        reached = [f"{m.name} ({m.actual_date})" for m in plan.milestones if m.actual_date]
        upcoming = [m for m in plan.milestones if not m.actual_date]
        if reached:
            parts.append("Milestones reached: " + ", ".join(reached) + ".")
        if upcoming:
            parts.append(f"Next milestone: {upcoming[0].name}, planned for {upcoming[0].planned_date}.")
        latest = snapshots(session, project.project_id, 1, 0)
        if latest:
            s = latest[0]
            parts.append(
                f"Indicators as of {s.as_of}: schedule deviation {_percent(s.schedule_deviation_rate)}, "
                f"cost overrun {_percent(s.cost_overrun_rate)}, quality pass rate "
                f"{_percent(s.quality_pass_rate)}."
            )
    return " ".join(parts)


def _percent(rate: Decimal) -> str:
    return f"{(Decimal(rate) * 100).quantize(Decimal('0.1'))} %"


def send_progress_report(uow: UnitOfWork, project_id: str, notes: str = "") -> Communication:
    """3.5.2: a regular progress report to the client, logged as external communication; `notes`: what the
    business staff reported and answered beside it."""
    project = active(uow, project_id)
    summary = progress_summary(uow.session, project)
    if extra := optional_text("report_notes", notes, domain.TEXT_LIMIT):
        summary = f"{summary}\n{extra}"
    entry = log_entry(
        uow,
        project,
        Direction.EXTERNAL,
        CommunicationKind.PROGRESS_REPORT,
        "client",
        summary,
    )
    uow.session.flush()
    emit(
        uow,
        project,
        "progress_report.sent",
        entry.communication_id,
        progress_report_id=entry.communication_id,
        summary=entry.summary,
    )
    return entry


def record_coordination(uow: UnitOfWork, project_id: str, command: NewCoordination) -> Communication:
    """3.5.1: work that needs other departments' support, coordinated with them; logged as internal
    communication with the departments as counterpart."""
    project = active(uow, project_id)
    summary = f"Support needed: {command.support_needed}\nAgreed: {command.outcome}"
    entry = log_entry(
        uow,
        project,
        Direction.INTERNAL,
        CommunicationKind.COORDINATION,
        ", ".join(command.departments),
        summary,
    )
    uow.session.flush()
    emit(
        uow,
        project,
        "coordination.recorded",
        entry.communication_id,
        coordination_id=entry.communication_id,
        departments=list(command.departments),
    )
    return entry


def record_acceptance_support(uow: UnitOfWork, project_id: str, notes: str) -> Communication:
    """4.4.2: the project team's explanations to the client during the acceptance check, logged as
    external communication (an answer to the client). The support runs beside the check and does not hold
    up the client's report, so it is recorded even when the report already closed the acceptance."""
    project = project_of(uow.session, project_id, lock=True)
    entry = log_entry(
        uow,
        project,
        Direction.EXTERNAL,
        CommunicationKind.ANSWER,
        "client",
        required_text("support_notes", notes, domain.TEXT_LIMIT),
    )
    uow.session.flush()
    return entry


def request_change(
    uow: UnitOfWork, project_id: str, change: NewChangeRequest, request_id: str = ""
) -> ChangeRequest:
    """3.5.2: the client's change of needs; publishes `change.requested` so the implementation process
    assesses it (message client.change_requested)."""
    done = by_request(uow.session, ChangeRequest, request_id)
    if done is not None:
        return done
    project = active(uow, project_id)
    text, who = change.description, change.requested_by
    entry = log_entry(uow, project, Direction.EXTERNAL, CommunicationKind.CHANGE_REQUEST, who, text)
    row = ChangeRequest(
        change_request_id=new_id(),
        project_id=project.project_id,
        request_id=request_id or None,
        description=text,
        requested_by=who,
        status=ChangeStatus.REQUESTED.value,
        requested_at=entry.occurred_at,
    )
    uow.session.add(row)
    uow.session.flush()
    emit(
        uow,
        project,
        "change.requested",
        row.change_request_id,
        change_request_id=row.change_request_id,
        change_description=text,
        requested_by=who,
    )
    return row


def respond_to_change(
    uow: UnitOfWork,
    change_request_id: str,
    answer: ChangeResponse,
    project_id: str = "",
) -> ChangeRequest:
    """3.5.2: accepted, rejected or deferred, with the answer given to the client."""
    change = get(uow.session, ChangeRequest, change_request_id, "change_request_id", "change request")
    if project_id and project_id != change.project_id:
        raise InvalidArgument("change_request_id", f"belongs to another project than {project_id!r}")
    project = active(uow, change.project_id)
    domain.check_change_response(change.status, answer.decision, answer.response)
    change.status = answer.decision.value
    change.response = answer.response
    change.responded_at = now()
    log_entry(
        uow,
        project,
        Direction.EXTERNAL,
        CommunicationKind.ANSWER,
        change.requested_by,
        f"Change request {answer.decision.value}: {change.response}",
    )
    uow.session.flush()
    emit(
        uow,
        project,
        "change.responded",
        change.change_request_id,
        change_request_id=change.change_request_id,
        change_decision=answer.decision.value,
        change_response=change.response,
    )
    return change


def change_requests(session: Session, project_id: str) -> list[ChangeRequest]:
    project = project_of(session, project_id)
    return list(
        session.scalars(
            select(ChangeRequest)
            .where(ChangeRequest.project_id == project.project_id)
            .order_by(ChangeRequest.requested_at)
        )
    )
