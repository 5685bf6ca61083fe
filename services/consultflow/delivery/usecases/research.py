"""Delivery use cases of 3.2 research and analysis: the data repository, site visits and the analysis of
findings."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from consultflow.delivery import domain
from consultflow.delivery.adapters import RiskReport, Risks
from consultflow.delivery.domain import (
    ArchiveState,
    DocumentCategory,
    FindingKind,
    NewDocument,
    NewFinding,
    NewSiteVisit,
    Phase,
)
from consultflow.delivery.orm import Analysis, Document, Finding, Project, SiteVisit
from consultflow.delivery.usecases.common import active, emit, get, move, new_id, project_of, today
from consultflow.platform.db import UnitOfWork, by_request
from consultflow.platform.errors import InvalidArgument
from consultflow.platform.timeutil import now


def add_documents(
    uow: UnitOfWork, project_id: str, documents: Sequence[NewDocument], archive: bool = True
) -> list[Document]:
    """3.2.1: documents into the project data repository, classified, and archived unless only collected."""
    project = active(uow, project_id)
    moment = now()
    rows = [
        Document(
            document_id=new_id(),
            project_id=project.project_id,
            title=d.title,
            category=d.category.value,
            source=d.source,
            classification=d.classification.value,
            link=d.link,
            archive_state=(ArchiveState.ARCHIVED if archive else ArchiveState.COLLECTED).value,
            collected_at=moment,
            archived_at=moment if archive else None,
        )
        for d in documents
    ]
    uow.session.add_all(rows)
    move(project, Phase.RESEARCH)
    uow.session.flush()
    for row in rows:
        emit(
            uow,
            project,
            "document.archived" if archive else "document.collected",
            row.document_id,
            document_id=row.document_id,
            title=row.title,
            category=row.category,
            classification=row.classification,
        )
    return rows


def archive_document(uow: UnitOfWork, document_id: str) -> Document:
    document = get(uow.session, Document, document_id, "document_id", "document")
    project = active(uow, document.project_id)
    domain.check_archivable(document.archive_state, document_id)
    document.archive_state = ArchiveState.ARCHIVED.value
    document.archived_at = now()
    uow.session.flush()
    emit(uow, project, "document.archived", document.document_id, document_id=document.document_id)
    return document


def list_documents(
    session: Session,
    project_id: str,
    category: DocumentCategory | None,
    archive_state: ArchiveState | None,
    limit: int,
    offset: int,
) -> list[Document]:
    """The project's documents in the order they were collected; optionally one category or state."""
    project = project_of(session, project_id)
    query = select(Document).where(Document.project_id == project.project_id)
    if category is not None:
        query = query.where(Document.category == category.value)
    if archive_state is not None:
        query = query.where(Document.archive_state == archive_state.value)
    query = query.order_by(Document.collected_at, Document.title).offset(offset).limit(limit)
    return list(session.scalars(query))


def record_site_visit(uow: UnitOfWork, project_id: str, command: NewSiteVisit) -> SiteVisit:
    """3.2.2: who visited, when, whom they interviewed, which processes they saw, what they observed."""
    project = active(uow, project_id)
    command.check(today())
    visit = SiteVisit(
        site_visit_id=new_id(),
        project_id=project.project_id,
        visit_date=command.visit_date,
        visitors=list(command.visitors),
        interviewees=list(command.interviewees),
        processes_observed=command.processes_observed,
        observations=command.observations,
        recorded_at=now(),
    )
    uow.session.add(visit)
    move(project, Phase.RESEARCH)
    uow.session.flush()
    emit(
        uow,
        project,
        "site_visit.recorded",
        visit.site_visit_id,
        site_visit_id=visit.site_visit_id,
        visit_date=command.visit_date,
    )
    return visit


def findings_of(session: Session, analysis_id: str) -> list[Finding]:
    return list(
        session.scalars(select(Finding).where(Finding.analysis_id == analysis_id).order_by(Finding.position))
    )


def _project_to_analyse(
    session: Session, project_id: str, findings: Sequence[NewFinding], engagement_id: str, lock: bool = False
) -> Project:
    project = project_of(session, project_id, lock=lock)
    domain.ensure_active(project.phase)
    if engagement_id and engagement_id != project.engagement_id:
        raise InvalidArgument("engagement_id", f"project {project_id!r} belongs to {project.engagement_id!r}")
    if not findings:
        raise InvalidArgument("findings", "record at least one problem, opportunity or risk")
    return project


def record_analysis(
    uow: UnitOfWork,
    risks: Risks,
    project_id: str,
    findings: Sequence[NewFinding],
    request_id: str = "",
    engagement_id: str = "",
) -> tuple[Analysis, list[Finding]]:
    """3.2.3: problems, opportunities and risks found; each risk is registered with the risk service
    (6.1.1, stage implementation) under a request id derived from this analysis, so a retry never
    registers it twice.

    The risks are registered after a check in a read session and before the transaction's first
    statement, so on SQLite no other writer waits for the write lock while risk answers; the transaction
    checks again before it writes."""
    analysis_id = new_id()
    with uow.read() as session:
        repeat = by_request(session, Analysis, request_id) is not None
        looked = None if repeat else _project_to_analyse(session, project_id, findings, engagement_id)
    risk_ids = {
        position: risks.register_risk(
            RiskReport(
                engagement_id=looked.engagement_id,
                description=found.description,
                category=found.risk_category,
                source="data analysis (3.2.3)",
                request_id=f"delivery:{request_id or analysis_id}:{position}",
            )
        )
        for position, found in enumerate(findings)
        if looked is not None and found.kind is FindingKind.RISK
    }
    done = by_request(uow.session, Analysis, request_id)
    if done is not None:
        return done, findings_of(uow.session, done.analysis_id)
    project = _project_to_analyse(uow.session, project_id, findings, engagement_id, lock=True)
    analysis = Analysis(
        analysis_id=analysis_id,
        project_id=project.project_id,
        request_id=request_id or None,
        recorded_at=now(),
    )
    uow.session.add(analysis)
    rows = [
        Finding(
            finding_id=new_id(),
            analysis_id=analysis.analysis_id,
            position=position,
            kind=found.kind.value,
            description=found.description,
            risk_category=found.risk_category,
            risk_id=risk_ids.get(position, ""),
        )
        for position, found in enumerate(findings)
    ]
    uow.session.add_all(rows)
    move(project, Phase.RESEARCH)
    uow.session.flush()
    emit(
        uow,
        project,
        "analysis.recorded",
        analysis.analysis_id,
        analysis_id=analysis.analysis_id,
        findings=[{"kind": r.kind, "description": r.description, "risk_id": r.risk_id} for r in rows],
        risks_reported=sum(1 for r in rows if r.risk_id),
    )
    return analysis, rows
