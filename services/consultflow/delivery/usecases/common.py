"""What the delivery use cases share: ids, the project a change belongs to, its status events, the
communication log and quality checks several chapters write."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session

from consultflow.delivery import domain
from consultflow.delivery.domain import CommunicationKind, Direction, Phase
from consultflow.delivery.orm import Communication, Project, QualityCheck
from consultflow.platform.db import UnitOfWork, one
from consultflow.platform.errors import InvalidArgument, NotFound
from consultflow.platform.inputs import optional_text, required_text
from consultflow.platform.timeutil import now

M = TypeVar("M")


def new_id() -> str:
    return str(uuid.uuid4())


def today() -> date:
    """The current date (UTC), the default status date."""
    return now().date()


def required_id(field: str, value: str) -> str:
    """An id a request must name (an empty one is the caller's mistake, not an unknown record)."""
    if not value or not value.strip():
        raise InvalidArgument(field, "is required")
    return value.strip()


def get(session: Session, model: type[M], key: str, field: str, kind: str) -> M:
    """The row of `model` with id `key` (given in `field`), or NotFound naming `kind`."""
    return one(session, model, required_id(field, key), kind)


def project_of(session: Session, project_id: str, lock: bool = False) -> Project:
    """The project; `lock` serialises changes to one project (row lock on PostgreSQL)."""
    query = select(Project).where(Project.project_id == required_id("project_id", project_id))
    if lock:
        query = query.with_for_update()
    project = session.scalars(query).first()
    if project is None:
        raise NotFound("project", project_id)
    return project


def active(uow: UnitOfWork, project_id: str) -> Project:
    """The project, locked for a change, refused once it was accepted (chapters 3 and 4 are closed)."""
    project = project_of(uow.session, project_id, lock=True)
    domain.ensure_active(project.phase)
    return project


def emit(uow: UnitOfWork, project: Project, event: str, subject_id: str, /, **payload: Any) -> None:
    """A status event of the project, correlated by its engagement and project ids."""
    keys = {"engagement_id": project.engagement_id, "project_id": project.project_id}
    uow.emit(event, subject_id, {**keys, **payload}, keys)


def move(project: Project, phase: Phase) -> None:
    """Moves the project forward to `phase` (never back)."""
    project.phase = domain.advance(project.phase, phase)


def log_entry(
    uow: UnitOfWork,
    project: Project,
    direction: Direction,
    kind: CommunicationKind,
    counterpart: str,
    summary: str,
) -> Communication:
    """3.5: an entry in the project's communication log (meetings, deliveries and reminders write one too)."""
    domain.check_communication(direction, kind)
    entry = Communication(
        communication_id=new_id(),
        project_id=project.project_id,
        direction=direction.value,
        kind=kind.value,
        counterpart=optional_text("counterpart", counterpart, 300),
        summary=required_text("summary", summary, domain.TEXT_LIMIT),
        occurred_at=now(),
    )
    uow.session.add(entry)
    return entry


def quality_check(
    uow: UnitOfWork, project: Project, subject: str, subject_id: str, passed: bool, notes: str
) -> QualityCheck:
    """3.4.1, 4.1.2: a quality check (of a task, or the internal review of deliverables)."""
    check = QualityCheck(
        quality_check_id=new_id(),
        project_id=project.project_id,
        subject=subject,
        subject_id=subject_id,
        passed=passed,
        notes=notes,
        checked_at=now(),
    )
    uow.session.add(check)
    return check
