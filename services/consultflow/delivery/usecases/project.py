"""Delivery use cases of 3.1 projects, team, kick-off: a project opened from its signed contract, its team
and the kick-off."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from consultflow.delivery import domain
from consultflow.delivery.adapters import Contracts
from consultflow.delivery.domain import NewKickoff, Phase, Role, Team
from consultflow.delivery.orm import Kickoff, Project, TeamMember
from consultflow.delivery.usecases.common import active, emit, move, new_id, project_of, required_id
from consultflow.platform.db import UnitOfWork
from consultflow.platform.errors import AlreadyExists, FailedPrecondition, InvalidArgument
from consultflow.platform.timeutil import now


def open_project(uow: UnitOfWork, contracts: Contracts, contract_id: str, engagement_id: str = "") -> Project:
    """3.1.1: opens the project of a signed contract; the same contract returns its project.

    contracts is asked before the transaction's first statement (a look in a read session decides
    whether to ask), so on SQLite no other writer waits for the write lock while contracts answers."""
    contract_id = required_id("contract_id", contract_id)
    with uow.read() as session:
        opened = session.scalar(select(Project.project_id).where(Project.contract_id == contract_id).limit(1))
    asked = contracts.get_contract(contract_id) if opened is None else None
    existing = uow.session.scalars(select(Project).where(Project.contract_id == contract_id)).first()
    if existing is not None:
        if engagement_id and engagement_id != existing.engagement_id:
            raise AlreadyExists(f"contract {contract_id!r} already has a project in another engagement")
        return existing
    contract = asked or contracts.get_contract(contract_id)
    if not contract.signed:
        raise FailedPrecondition(f"contract {contract_id!r} is {contract.status or 'unknown'}, not signed")
    if engagement_id and contract.engagement_id and engagement_id != contract.engagement_id:
        raise InvalidArgument(
            "engagement_id", f"contract {contract_id!r} belongs to engagement {contract.engagement_id!r}"
        )
    engagement = engagement_id or contract.engagement_id
    if not engagement:
        raise InvalidArgument("engagement_id", "is required (the contract names no engagement)")
    project = Project(
        project_id=new_id(),
        engagement_id=engagement,
        contract_id=contract_id,
        client_id=contract.client_id,
        phase=Phase.OPENED.value,
        service_content=contract.service_content,
        scope=contract.scope,
        service_start=contract.service_start,
        deadline=contract.service_end,
        contract_deliverables=list(contract.deliverables),
        contract_milestones=[
            {"name": m.name, "due_date": m.due_date.isoformat() if m.due_date else ""}
            for m in contract.milestones
        ],
        opened_at=now(),
    )
    uow.session.add(project)
    uow.session.flush()
    emit(
        uow,
        project,
        "project.opened",
        project.project_id,
        contract_id=contract_id,
        client_id=project.client_id,
        deadline=project.deadline,
    )
    return project


def get_project(session: Session, project_id: str) -> Project:
    return project_of(session, project_id)


def team_of(session: Session, project_id: str) -> list[TeamMember]:
    return list(
        session.scalars(
            select(TeamMember).where(TeamMember.project_id == project_id).order_by(TeamMember.position)
        )
    )


def list_projects(
    session: Session, engagement_id: str, phase: Phase | None, limit: int, offset: int
) -> list[Project]:
    """Projects, newest first; optionally of one engagement, in one phase."""
    query = select(Project)
    if engagement_id:
        query = query.where(Project.engagement_id == engagement_id)
    if phase is not None:
        query = query.where(Project.phase == phase.value)
    return list(session.scalars(query.order_by(Project.opened_at.desc()).offset(offset).limit(limit)))


def form_team(uow: UnitOfWork, project_id: str, team: Team) -> list[TeamMember]:
    """3.1.1: sets the project's team (a later call replaces it)."""
    project = active(uow, project_id)
    for old in team_of(uow.session, project.project_id):
        uow.session.delete(old)
    uow.session.flush()
    rows = [
        TeamMember(
            member_id=new_id(),
            project_id=project.project_id,
            name=m.name,
            role=m.role.value,
            duties=m.duties,
            position=i,
        )
        for i, m in enumerate(team.members)
    ]
    uow.session.add_all(rows)
    uow.session.flush()
    emit(
        uow,
        project,
        "team.formed",
        project.project_id,
        team=[{"name": m.name, "role": m.role, "duties": m.duties} for m in rows],
        team_size=team_size(rows),
    )
    return rows


def team_size(members: Sequence[TeamMember]) -> int:
    """People on the team (one person may hold two roles)."""
    return len({m.name.lower() for m in members})


def project_manager(session: Session, project_id: str) -> str | None:
    return next((m.name for m in team_of(session, project_id) if m.role == Role.PROJECT_MANAGER), None)


def record_kickoff(uow: UnitOfWork, project_id: str, meeting: NewKickoff) -> Kickoff:
    """3.1.2: the kick-off meeting: briefing, rules agreed, materials handed out."""
    project = active(uow, project_id)
    domain.kickoff_attendance(meeting.attendees, project_manager(uow.session, project.project_id))
    kickoff = Kickoff(
        kickoff_id=new_id(),
        project_id=project.project_id,
        kickoff_date=meeting.kickoff_date,
        attendees=list(meeting.attendees),
        briefing=meeting.briefing,
        rules_agreed=meeting.rules_agreed,
        materials_handed_out=list(meeting.materials_handed_out),
        recorded_at=now(),
    )
    uow.session.add(kickoff)
    move(project, Phase.KICKED_OFF)
    uow.session.flush()
    emit(
        uow,
        project,
        "kickoff.recorded",
        kickoff.kickoff_id,
        kickoff_id=kickoff.kickoff_id,
        kickoff_date=meeting.kickoff_date,
        attendees=list(meeting.attendees),
        materials_handed_out=list(meeting.materials_handed_out),
    )
    return kickoff
