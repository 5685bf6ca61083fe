"""Delivery use cases of 4.4 acceptance: acceptance rounds, the client's reports, rectification items and
the close."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from consultflow.delivery import acceptance_rules as rules
from consultflow.delivery import domain
from consultflow.delivery.acceptance_rules import AcceptanceStatus, ItemStatus
from consultflow.delivery.domain import CommunicationKind, Direction, Phase
from consultflow.delivery.orm import Acceptance, Project, RectificationItem, TeamMember
from consultflow.delivery.usecases.common import active, emit, get, log_entry, move, new_id, project_of, today
from consultflow.delivery.usecases.handover import deliveries
from consultflow.platform.db import UnitOfWork
from consultflow.platform.errors import FailedPrecondition, InvalidArgument
from consultflow.platform.inputs import required_text
from consultflow.platform.timeutil import aware, now


def _open_items(
    session: Session, project_id: str, acceptance_id: str | None = None
) -> list[RectificationItem]:
    query = select(RectificationItem).where(
        RectificationItem.project_id == project_id, RectificationItem.status == ItemStatus.OPEN.value
    )
    if acceptance_id:
        query = query.where(RectificationItem.acceptance_id == acceptance_id)
    return list(session.scalars(query.order_by(RectificationItem.position)))


def items_of(session: Session, acceptance_id: str) -> list[RectificationItem]:
    return list(
        session.scalars(
            select(RectificationItem)
            .where(RectificationItem.acceptance_id == acceptance_id)
            .order_by(RectificationItem.recorded_at, RectificationItem.position)
        )
    )


def _last_round(session: Session, project_id: str) -> Acceptance | None:
    query = select(Acceptance).where(Acceptance.project_id == project_id)
    return session.scalars(query.order_by(Acceptance.round.desc()).limit(1)).first()


def request_acceptance(uow: UnitOfWork, project_id: str, request: rules.AcceptanceRequest) -> Acceptance:
    """4.4.1: an acceptance request (time, content, criteria) opening the next round; refused while
    rectification items are open (4.4.3), while a round awaits its report, or before any delivery."""
    project = active(uow, project_id)
    last = _last_round(uow.session, project.project_id)
    round_number = rules.next_round(
        last.status if last else None,
        last.round if last else 0,
        len(_open_items(uow.session, project.project_id)),
    )
    delivered = [aware(d.delivered_at) for d in deliveries(uow.session, project.project_id) if d.delivered_at]
    if not delivered:
        raise FailedPrecondition("nothing has been delivered yet (4.3): acceptance follows delivery")
    first_delivery = min(d for d in delivered if d is not None).date()
    if request.acceptance_date < first_delivery:
        raise InvalidArgument(
            "acceptance_date", f"{request.acceptance_date} is before the delivery on {first_delivery}"
        )
    acceptance = Acceptance(
        acceptance_id=new_id(),
        project_id=project.project_id,
        round=round_number,
        acceptance_date=request.acceptance_date,
        content=request.content,
        criteria=list(request.criteria),
        status=AcceptanceStatus.REQUESTED.value,
        results=[],
        reminders_sent=0,
        requested_at=now(),
    )
    uow.session.add(acceptance)
    move(project, Phase.ACCEPTANCE)
    uow.session.flush()
    emit(
        uow,
        project,
        "acceptance.requested",
        acceptance.acceptance_id,
        acceptance_id=acceptance.acceptance_id,
        acceptance_round=acceptance.round,
        acceptance_date=request.acceptance_date,
        acceptance_criteria=list(request.criteria),
        project_team=team_names(uow.session, project.project_id),
    )
    return acceptance


def team_names(session: Session, project_id: str) -> list[str]:
    """3.1.1: the names of the project's team, its project manager first: who supports the acceptance
    check (4.4.2; the engagement offers its task to them)."""
    query = select(TeamMember.name).where(TeamMember.project_id == project_id).order_by(TeamMember.position)
    names: list[str] = []
    for name in session.scalars(query):
        if name not in names:
            names.append(name)
    return names


def send_acceptance_reminder(uow: UnitOfWork, acceptance_id: str) -> datetime | None:
    """4.4.2: reminds the client of a pending acceptance; once the report is in there is nothing to remind
    of and nothing happens (None)."""
    acceptance = get(uow.session, Acceptance, acceptance_id, "acceptance_id", "acceptance")
    project = project_of(uow.session, acceptance.project_id, lock=True)
    if acceptance.status != AcceptanceStatus.REQUESTED:
        return None
    acceptance.reminders_sent += 1
    acceptance.reminded_at = now()
    log_entry(
        uow,
        project,
        Direction.EXTERNAL,
        CommunicationKind.REMINDER,
        "client",
        f"Reminder {acceptance.reminders_sent}: acceptance round {acceptance.round} "
        f"({acceptance.acceptance_date}) awaits the client's report",
    )
    uow.session.flush()
    emit(
        uow,
        project,
        "acceptance.reminded",
        acceptance.acceptance_id,
        acceptance_id=acceptance.acceptance_id,
        reminders_sent=acceptance.reminders_sent,
    )
    return acceptance.reminded_at


def record_acceptance_report(
    uow: UnitOfWork,
    acceptance_id: str,
    report: rules.AcceptanceReport,
    request_id: str = "",
) -> Acceptance:
    """4.4.2-4.4.3: the client's report: a result per criterion and the conclusion. Publishes
    `acceptance.reported` with `acceptance_conclusion` (→ message acceptance.reported)."""
    if request_id:
        done = uow.session.scalars(
            select(Acceptance).where(Acceptance.report_request_id == request_id)
        ).first()
        if done is not None:
            return done
    acceptance = get(uow.session, Acceptance, acceptance_id, "acceptance_id", "acceptance")
    project = active(uow, acceptance.project_id)
    rules.check_reportable(acceptance.status, acceptance.round, acceptance.conclusion)
    rules.check_report(acceptance.criteria, report.results, report.conclusion, report.comments)
    by_key = {r.criterion.strip().lower(): r for r in report.results}
    acceptance.results = [
        {
            "criterion": c,
            "passed": by_key[c.lower()].passed,
            "comment": by_key[c.lower()].comment.strip(),
        }
        for c in acceptance.criteria
    ]
    acceptance.conclusion = report.conclusion.value
    acceptance.status = report.conclusion.value
    acceptance.report_comments = report.comments
    acceptance.reported_by = report.reported_by
    acceptance.report_request_id = request_id or None
    acceptance.reported_at = now()
    uow.session.flush()
    emit(
        uow,
        project,
        "acceptance.reported",
        acceptance.acceptance_id,
        acceptance_id=acceptance.acceptance_id,
        acceptance_round=acceptance.round,
        acceptance_conclusion=report.conclusion.value,
        acceptance_results=acceptance.results,
        acceptance_comments=acceptance.report_comments,
    )
    return acceptance


def record_rectification_items(
    uow: UnitOfWork, acceptance_id: str, items: Sequence[rules.RectificationItem]
) -> tuple[Acceptance, int]:
    """4.4.3: after a failed report, what to rectify, who, until when; returns the round's open items."""
    acceptance = get(uow.session, Acceptance, acceptance_id, "acceptance_id", "acceptance")
    project = active(uow, acceptance.project_id)
    rules.check_rectifiable(acceptance.status, acceptance.round)
    reported = aware(acceptance.reported_at)
    rules.check_rectification(items, reported.date() if reported else today())
    moment = now()
    start = len(items_of(uow.session, acceptance.acceptance_id))
    rows = [
        RectificationItem(
            rectification_item_id=new_id(),
            acceptance_id=acceptance.acceptance_id,
            project_id=project.project_id,
            position=start + i,
            description=item.description,
            owner=item.owner,
            due_date=item.due,
            status=ItemStatus.OPEN.value,
            notes="",
            recorded_at=moment,
        )
        for i, item in enumerate(items)
    ]
    uow.session.add_all(rows)
    acceptance.status = AcceptanceStatus.RECTIFYING.value
    uow.session.flush()
    open_count = len(_open_items(uow.session, project.project_id, acceptance.acceptance_id))
    emit(
        uow,
        project,
        "rectification.planned",
        acceptance.acceptance_id,
        acceptance_id=acceptance.acceptance_id,
        rectification_items=[
            {
                "rectification_item_id": r.rectification_item_id,
                "what": r.description,
                "who": r.owner,
                "until": r.due_date,
            }
            for r in rows
        ],
        open_rectification_items=open_count,
    )
    return acceptance, open_count


def _close_item(uow: UnitOfWork, project: Project, item: RectificationItem, notes: str) -> None:
    item.status = ItemStatus.CLOSED.value
    item.notes = notes
    item.closed_at = now()
    emit(
        uow,
        project,
        "rectification.closed",
        item.rectification_item_id,
        rectification_item_id=item.rectification_item_id,
        acceptance_id=item.acceptance_id,
        rectification_notes=notes,
    )


def _settle(uow: UnitOfWork, project: Project, acceptance: Acceptance) -> int:
    """The round is rectified once its last item is closed."""
    uow.session.flush()
    remaining = len(_open_items(uow.session, project.project_id, acceptance.acceptance_id))
    if rules.rectified(acceptance.status, remaining):
        acceptance.status = AcceptanceStatus.RECTIFIED.value
        uow.session.flush()
        emit(
            uow,
            project,
            "acceptance.rectified",
            acceptance.acceptance_id,
            acceptance_id=acceptance.acceptance_id,
            acceptance_round=acceptance.round,
        )
    return remaining


def close_rectification_item(uow: UnitOfWork, item_id: str, notes: str) -> RectificationItem:
    item = get(uow.session, RectificationItem, item_id, "rectification_item_id", "rectification item")
    project = active(uow, item.project_id)
    rules.check_item_open(item.status)
    _close_item(uow, project, item, required_text("notes", notes, domain.TEXT_LIMIT))
    acceptance = uow.session.get(Acceptance, item.acceptance_id)
    assert acceptance is not None
    _settle(uow, project, acceptance)
    return item


def close_rectification_items(uow: UnitOfWork, acceptance_id: str, notes: str) -> int:
    """4.4.3: closes every open item of the round with the notes; returns the items still open (0)."""
    acceptance = get(uow.session, Acceptance, acceptance_id, "acceptance_id", "acceptance")
    project = active(uow, acceptance.project_id)
    rules.check_items_closable(acceptance.status, acceptance.round)
    text = required_text("rectification_notes", notes, domain.TEXT_LIMIT)
    for item in _open_items(uow.session, project.project_id, acceptance.acceptance_id):
        _close_item(uow, project, item, text)
    return _settle(uow, project, acceptance)


def acceptances(session: Session, project_id: str) -> list[Acceptance]:
    project = project_of(session, project_id)
    return list(
        session.scalars(
            select(Acceptance).where(Acceptance.project_id == project.project_id).order_by(Acceptance.round)
        )
    )


def close_acceptance(uow: UnitOfWork, project_id: str, acceptance_id: str) -> Project:
    """4.4.3: a passed acceptance closes delivery; the project moves to follow-up (chapter 5)."""
    project = active(uow, project_id)
    acceptance = get(uow.session, Acceptance, acceptance_id, "acceptance_id", "acceptance")
    if acceptance.project_id != project.project_id:
        raise InvalidArgument("acceptance_id", f"belongs to another project than {project_id!r}")
    last = _last_round(uow.session, project.project_id)
    if last is None or last.acceptance_id != acceptance.acceptance_id:
        raise FailedPrecondition(f"acceptance round {acceptance.round} is not the last round")
    rules.check_closable(acceptance.status, acceptance.round)
    acceptance.status = AcceptanceStatus.CLOSED.value
    project.phase = Phase.FOLLOW_UP.value
    project.follow_up_at = now()
    uow.session.flush()
    emit(
        uow,
        project,
        "acceptance.closed",
        acceptance.acceptance_id,
        acceptance_id=acceptance.acceptance_id,
        acceptance_round=acceptance.round,
    )
    emit(uow, project, "project.follow_up", project.project_id, project_status=Phase.FOLLOW_UP.value)
    return project
