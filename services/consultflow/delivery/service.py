"""Delivery use cases: each runs in the unit of work it is given and emits the status events of what it
changed (`status.delivery.<entity>.<event>`, correlated by `engagement_id` and `project_id`)."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any, TypeVar

from sqlalchemy import func, select

from consultflow.delivery import domain, indicators
from consultflow.delivery.adapters import Contracts, RiskReport, Risks, Thresholds
from consultflow.delivery.domain import (
    Artefact,
    ChangeDecision,
    CommunicationKind,
    Conclusion,
    CriterionResult,
    DeliverableItem,
    DeliveryMode,
    Direction,
    DocumentCategory,
    FindingKind,
    MaterialsReview,
    Member,
    NewDocument,
    NewFinding,
    OnsitePlan,
    Phase,
    PlannedTask,
    Platform,
    Role,
    TaskState,
    Verdict,
)
from consultflow.delivery.orm import (
    Acceptance,
    Analysis,
    ChangeRequest,
    Communication,
    CorrectiveAction,
    CorrectiveActionNeed,
    DeliverableReview,
    DeliverableSet,
    Delivery,
    Document,
    Finding,
    IndicatorSnapshot,
    Kickoff,
    Meeting,
    Milestone,
    Project,
    QualityCheck,
    RectificationItem,
    SiteVisit,
    Solution,
    SolutionReview,
    Task,
    TeamMember,
    WorkPlan,
)
from consultflow.platform.db import UnitOfWork
from consultflow.platform.errors import AlreadyExists, FailedPrecondition, InvalidArgument, NotFound
from consultflow.platform.timeutil import aware, now

M = TypeVar("M")

WARNING_STATUSES = ("amber", "red")
"""Bands of `warning_thresholds.dmn` that count as a breach (6.4.2: amber and red raise a warning)."""


def _id() -> str:
    return str(uuid.uuid4())


def today() -> date:
    """The current date (UTC), the default status date."""
    return now().date()


def _required_id(field: str, value: str) -> str:
    if not value or not value.strip():
        raise InvalidArgument(field, "is required")
    return value.strip()


def _get(uow: UnitOfWork, model: type[M], key: str, field: str, kind: str) -> M:
    row = uow.session.get(model, _required_id(field, key))
    if row is None:
        raise NotFound(kind, key)
    return row


def _project(uow: UnitOfWork, project_id: str, lock: bool = False) -> Project:
    """The project; `lock` serialises changes to one project (row lock on PostgreSQL)."""
    query = select(Project).where(Project.project_id == _required_id("project_id", project_id))
    if lock:
        query = query.with_for_update()
    project = uow.session.scalars(query).first()
    if project is None:
        raise NotFound("project", project_id)
    return project


def _active(uow: UnitOfWork, project_id: str) -> Project:
    project = _project(uow, project_id, lock=True)
    domain.ensure_active(project.phase)
    return project


def _emit(uow: UnitOfWork, project: Project, event: str, subject_id: str, /, **payload: Any) -> None:
    keys = {"engagement_id": project.engagement_id, "project_id": project.project_id}
    uow.emit(event, subject_id, {**keys, **payload}, keys)


def _move(project: Project, phase: Phase) -> None:
    project.phase = domain.advance(project.phase, phase)


# --- 3.1 projects, team, kick-off ---------------------------------------------------------------------


def open_project(uow: UnitOfWork, contracts: Contracts, contract_id: str, engagement_id: str = "") -> Project:
    """3.1.1: opens the project of a signed contract; the same contract returns its project."""
    contract_id = _required_id("contract_id", contract_id)
    existing = uow.session.scalars(select(Project).where(Project.contract_id == contract_id)).first()
    if existing is not None:
        if engagement_id and engagement_id != existing.engagement_id:
            raise AlreadyExists(f"contract {contract_id!r} already has a project in another engagement")
        return existing
    contract = contracts.get_contract(contract_id)
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
        project_id=_id(),
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
    _emit(
        uow,
        project,
        "project.opened",
        project.project_id,
        contract_id=contract_id,
        client_id=project.client_id,
        deadline=project.deadline,
    )
    return project


def get_project(uow: UnitOfWork, project_id: str) -> Project:
    return _project(uow, project_id)


def get_acceptance(uow: UnitOfWork, acceptance_id: str) -> Acceptance:
    return _get(uow, Acceptance, acceptance_id, "acceptance_id", "acceptance")


def team_of(uow: UnitOfWork, project_id: str) -> list[TeamMember]:
    return list(
        uow.session.scalars(
            select(TeamMember).where(TeamMember.project_id == project_id).order_by(TeamMember.position)
        )
    )


def list_projects(uow: UnitOfWork, engagement_id: str, phase: str, limit: int, offset: int) -> list[Project]:
    query = select(Project)
    if engagement_id:
        query = query.where(Project.engagement_id == engagement_id)
    if phase:
        query = query.where(Project.phase == domain.choice(Phase, phase, "phase").value)
    return list(uow.session.scalars(query.order_by(Project.opened_at.desc()).offset(offset).limit(limit)))


def form_team(uow: UnitOfWork, project_id: str, members: Sequence[Member]) -> list[TeamMember]:
    """3.1.1: sets the project's team (a later call replaces it)."""
    project = _active(uow, project_id)
    team = domain.team(members)
    for old in team_of(uow, project.project_id):
        uow.session.delete(old)
    uow.session.flush()
    rows = [
        TeamMember(
            member_id=_id(),
            project_id=project.project_id,
            name=m.name,
            role=m.role.value,
            duties=m.duties,
            position=i,
        )
        for i, m in enumerate(team)
    ]
    uow.session.add_all(rows)
    uow.session.flush()
    _emit(
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


def project_manager(uow: UnitOfWork, project_id: str) -> str | None:
    return next((m.name for m in team_of(uow, project_id) if m.role == Role.PROJECT_MANAGER), None)


def record_kickoff(
    uow: UnitOfWork,
    project_id: str,
    kickoff_date: date,
    attendees: Sequence[str],
    briefing: str,
    rules_agreed: str,
    materials: Sequence[str],
) -> Kickoff:
    """3.1.2: the kick-off meeting: briefing, rules agreed, materials handed out."""
    project = _active(uow, project_id)
    domain.kickoff_attendance(attendees, project_manager(uow, project.project_id))
    kickoff = Kickoff(
        kickoff_id=_id(),
        project_id=project.project_id,
        kickoff_date=kickoff_date,
        attendees=list(attendees),
        briefing=domain.required("briefing", briefing),
        rules_agreed=domain.required("rules_agreed", rules_agreed),
        materials_handed_out=list(materials),
        recorded_at=now(),
    )
    uow.session.add(kickoff)
    _move(project, Phase.KICKED_OFF)
    uow.session.flush()
    _emit(
        uow,
        project,
        "kickoff.recorded",
        kickoff.kickoff_id,
        kickoff_id=kickoff.kickoff_id,
        kickoff_date=kickoff_date,
        attendees=list(attendees),
        materials_handed_out=list(materials),
    )
    return kickoff


# --- 3.2 research and analysis ------------------------------------------------------------------------


def add_documents(
    uow: UnitOfWork, project_id: str, documents: Sequence[NewDocument], archive: bool = True
) -> list[Document]:
    """3.2.1: documents into the project data repository, classified, and archived unless only collected."""
    project = _active(uow, project_id)
    moment = now()
    rows = [
        Document(
            document_id=_id(),
            project_id=project.project_id,
            title=d.title,
            category=d.category.value,
            source=d.source,
            classification=d.classification.value,
            link=d.link,
            archive_state="archived" if archive else "collected",
            collected_at=moment,
            archived_at=moment if archive else None,
        )
        for d in documents
    ]
    uow.session.add_all(rows)
    _move(project, Phase.RESEARCH)
    uow.session.flush()
    for row in rows:
        _emit(
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
    document = _get(uow, Document, document_id, "document_id", "document")
    project = _active(uow, document.project_id)
    if document.archive_state == "archived":
        raise FailedPrecondition(f"document {document_id!r} is already archived")
    document.archive_state = "archived"
    document.archived_at = now()
    uow.session.flush()
    _emit(uow, project, "document.archived", document.document_id, document_id=document.document_id)
    return document


def list_documents(
    uow: UnitOfWork, project_id: str, category: str, archive_state: str, limit: int, offset: int
) -> list[Document]:
    project = _project(uow, project_id)
    query = select(Document).where(Document.project_id == project.project_id)
    if category:
        query = query.where(Document.category == domain.choice(DocumentCategory, category, "category").value)
    if archive_state:
        if archive_state not in ("collected", "archived"):
            raise InvalidArgument("archive_state", f"{archive_state!r} is not one of collected, archived")
        query = query.where(Document.archive_state == archive_state)
    query = query.order_by(Document.collected_at, Document.title).offset(offset).limit(limit)
    return list(uow.session.scalars(query))


def record_site_visit(
    uow: UnitOfWork,
    project_id: str,
    visit_date: date,
    visitors: Sequence[str],
    interviewees: Sequence[str],
    processes_observed: str,
    observations: str,
) -> SiteVisit:
    """3.2.2: who visited, when, whom they interviewed, which processes they saw, what they observed."""
    project = _active(uow, project_id)
    if visit_date > today():
        raise InvalidArgument("visit_date", "a visit is recorded after it took place, not before")
    if not interviewees and not processes_observed.strip():
        raise InvalidArgument("interviewees", "record the interviews or the processes observed")
    visit = SiteVisit(
        site_visit_id=_id(),
        project_id=project.project_id,
        visit_date=visit_date,
        visitors=list(visitors),
        interviewees=list(interviewees),
        processes_observed=processes_observed.strip(),
        observations=domain.required("observations", observations),
        recorded_at=now(),
    )
    uow.session.add(visit)
    _move(project, Phase.RESEARCH)
    uow.session.flush()
    _emit(
        uow,
        project,
        "site_visit.recorded",
        visit.site_visit_id,
        site_visit_id=visit.site_visit_id,
        visit_date=visit_date,
    )
    return visit


def findings_of(uow: UnitOfWork, analysis_id: str) -> list[Finding]:
    return list(
        uow.session.scalars(
            select(Finding).where(Finding.analysis_id == analysis_id).order_by(Finding.position)
        )
    )


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
    registers it twice."""
    if request_id:
        done = uow.session.scalars(select(Analysis).where(Analysis.request_id == request_id)).first()
        if done is not None:
            return done, findings_of(uow, done.analysis_id)
    project = _active(uow, project_id)
    if engagement_id and engagement_id != project.engagement_id:
        raise InvalidArgument("engagement_id", f"project {project_id!r} belongs to {project.engagement_id!r}")
    if not findings:
        raise InvalidArgument("findings", "record at least one problem, opportunity or risk")
    analysis = Analysis(
        analysis_id=_id(), project_id=project.project_id, request_id=request_id or None, recorded_at=now()
    )
    uow.session.add(analysis)
    rows = []
    for position, found in enumerate(findings):
        row = Finding(
            finding_id=_id(),
            analysis_id=analysis.analysis_id,
            position=position,
            kind=found.kind.value,
            description=found.description,
            risk_category=found.risk_category,
            risk_id="",
        )
        if found.kind is FindingKind.RISK:
            row.risk_id = risks.register_risk(
                RiskReport(
                    engagement_id=project.engagement_id,
                    description=found.description,
                    category=found.risk_category,
                    source="data analysis (3.2.3)",
                    request_id=f"delivery:{request_id or analysis.analysis_id}:{position}",
                )
            )
        rows.append(row)
    uow.session.add_all(rows)
    _move(project, Phase.RESEARCH)
    uow.session.flush()
    _emit(
        uow,
        project,
        "analysis.recorded",
        analysis.analysis_id,
        analysis_id=analysis.analysis_id,
        findings=[{"kind": r.kind, "description": r.description, "risk_id": r.risk_id} for r in rows],
        risks_reported=sum(1 for r in rows if r.risk_id),
    )
    return analysis, rows


# --- 3.3 solution ---------------------------------------------------------------------------------------


def submit_solution(
    uow: UnitOfWork, project_id: str, summary: str, artefacts: Sequence[Artefact]
) -> Solution:
    """3.3.1: a new solution version; one still awaiting review is superseded by it."""
    project = _active(uow, project_id)
    if project.execution_started_at is not None:
        raise FailedPrecondition("execution has started on the approved solution")
    previous = _current_solution(uow, project.project_id)
    if previous is not None and previous.status == "submitted":
        previous.status = "superseded"
    solution = Solution(
        solution_id=_id(),
        project_id=project.project_id,
        version=(previous.version if previous else 0) + 1,
        summary=domain.required("solution_summary", summary),
        status="submitted",
        artefacts=[{"kind": a.kind.value, "title": a.title, "link": a.link} for a in artefacts],
        submitted_at=now(),
    )
    uow.session.add(solution)
    _move(project, Phase.SOLUTION_DESIGN)
    uow.session.flush()
    _emit(
        uow,
        project,
        "solution.submitted",
        solution.solution_id,
        solution_id=solution.solution_id,
        solution_version=solution.version,
        artefacts=solution.artefacts,
    )
    return solution


def _current_solution(uow: UnitOfWork, project_id: str) -> Solution | None:
    query = select(Solution).where(Solution.project_id == project_id)
    return uow.session.scalars(query.order_by(Solution.version.desc()).limit(1)).first()


def review_solution(
    uow: UnitOfWork, solution_id: str, verdict: Verdict, comments: str, reviewer: str
) -> Solution:
    """3.3.2: the expert review of a version: approved, or revise with comments (until approved)."""
    solution = _get(uow, Solution, solution_id, "solution_id", "solution")
    project = _active(uow, solution.project_id)
    domain.check_review(verdict, comments)
    domain.check_reviewable(solution.status, "solution")
    review = SolutionReview(
        review_id=_id(),
        solution_id=solution.solution_id,
        reviewer=domain.optional("reviewer", reviewer, domain.NAME_LIMIT),
        verdict=verdict.value,
        comments=comments.strip(),
        reviewed_at=now(),
    )
    uow.session.add(review)
    solution.status = verdict.value
    uow.session.flush()
    _emit(
        uow,
        project,
        "solution.approved" if verdict is Verdict.APPROVED else "solution.revision_requested",
        solution.solution_id,
        solution_id=solution.solution_id,
        solution_version=solution.version,
        review_comments=review.comments,
    )
    return solution


def solution_reviews(uow: UnitOfWork, solution_id: str) -> list[SolutionReview]:
    """The reviews of one solution version, oldest first (a reply after a review needs only these)."""
    return list(
        uow.session.scalars(
            select(SolutionReview)
            .where(SolutionReview.solution_id == solution_id)
            .order_by(SolutionReview.reviewed_at)
        )
    )


def solutions(uow: UnitOfWork, project_id: str) -> list[tuple[Solution, list[SolutionReview]]]:
    project = _project(uow, project_id)
    rows = uow.session.scalars(
        select(Solution).where(Solution.project_id == project.project_id).order_by(Solution.version)
    )
    return [(s, solution_reviews(uow, s.solution_id)) for s in rows]


# --- 3.4 execution and monitoring -----------------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    work_plan: WorkPlan
    milestones: list[Milestone]
    tasks: list[Task]

    @property
    def overall_progress(self) -> int:
        return indicators.overall_progress([_figures(t) for t in self.tasks])


def _figures(task: Task) -> indicators.TaskFigures:
    return indicators.TaskFigures(
        task.planned_start, task.planned_end, task.budget, task.actual_cost, task.progress
    )


def start_execution(uow: UnitOfWork, project_id: str) -> Plan:
    """3.4.1: execution starts on an approved solution with the baseline work plan: the contract's
    milestones and one task per milestone (budgets to be set by the project manager)."""
    project = _active(uow, project_id)
    if project.execution_started_at is not None:
        raise FailedPrecondition("execution has already started")
    approved = uow.session.scalars(
        select(Solution).where(Solution.project_id == project.project_id, Solution.status == "approved")
    ).first()
    if approved is None:
        raise FailedPrecondition("no approved solution: the solution review (3.3.2) comes first")
    moment = now()
    plan = WorkPlan(work_plan_id=_id(), project_id=project.project_id, baselined_at=moment)
    uow.session.add(plan)
    schedule = [
        (str(m["name"]), date.fromisoformat(m["due_date"]))
        for m in project.contract_milestones
        if m.get("due_date")
    ]
    milestones = {
        name: Milestone(
            milestone_id=_id(), project_id=project.project_id, name=name, planned_date=due, actual_date=None
        )
        for name, due in schedule
    }
    uow.session.add_all(milestones.values())
    uow.session.flush()
    start = project.service_start or today()
    tasks = [
        _new_task(project, planned, milestones[name].milestone_id, moment)
        for planned, (name, _) in zip(
            domain.baseline_tasks(start, schedule), sorted(schedule, key=lambda m: m[1]), strict=True
        )
    ]
    uow.session.add_all(tasks)
    project.execution_started_at = moment
    _move(project, Phase.EXECUTION)
    uow.session.flush()
    _emit(
        uow,
        project,
        "execution.started",
        plan.work_plan_id,
        work_plan_id=plan.work_plan_id,
        milestones=[{"name": m.name, "planned_date": m.planned_date} for m in milestones.values()],
        tasks=len(tasks),
    )
    return Plan(plan, list(milestones.values()), tasks)


def _new_task(project: Project, planned: PlannedTask, milestone_id: str | None, moment: datetime) -> Task:
    return Task(
        task_id=_id(),
        project_id=project.project_id,
        milestone_id=milestone_id,
        name=planned.name,
        planned_start=planned.planned_start,
        planned_end=planned.planned_end,
        actual_start=None,
        actual_end=None,
        budget=planned.budget,
        actual_cost=Decimal("0.00"),
        progress=0,
        created_at=moment,
        updated_at=moment,
    )


def _plan_row(uow: UnitOfWork, project_id: str) -> WorkPlan:
    """The project's work plan row; a project whose execution has not started has none."""
    plan = uow.session.scalars(select(WorkPlan).where(WorkPlan.project_id == project_id)).first()
    if plan is None:
        raise FailedPrecondition("execution has not started: there is no work plan yet")
    return plan


def work_plan(uow: UnitOfWork, project_id: str) -> Plan:
    project = _project(uow, project_id)
    plan = _plan_row(uow, project.project_id)
    milestones = uow.session.scalars(
        select(Milestone)
        .where(Milestone.project_id == project.project_id)
        .order_by(Milestone.planned_date, Milestone.name)
    )
    tasks = uow.session.scalars(
        select(Task)
        .where(Task.project_id == project.project_id)
        .order_by(Task.planned_start, Task.created_at)
    )
    return Plan(plan, list(milestones), list(tasks))


def add_task(uow: UnitOfWork, project_id: str, planned: PlannedTask, milestone_id: str = "") -> Task:
    """3.4.1: a task of the work plan, within the service period."""
    project = _active(uow, project_id)
    _plan_row(uow, project.project_id)
    domain.check_within_service(
        "planned_start", planned.planned_start, project.service_start, project.deadline
    )
    domain.check_within_service("planned_end", planned.planned_end, project.service_start, project.deadline)
    if milestone_id:
        milestone = _get(uow, Milestone, milestone_id, "milestone_id", "milestone")
        if milestone.project_id != project.project_id:
            raise InvalidArgument("milestone_id", "belongs to another project")
    task = _new_task(project, planned, milestone_id or None, now())
    uow.session.add(task)
    uow.session.flush()
    _emit(
        uow,
        project,
        "task.added",
        task.task_id,
        task_id=task.task_id,
        name=task.name,
        planned_start=task.planned_start,
        planned_end=task.planned_end,
        budget=task.budget,
    )
    return task


@dataclass(frozen=True)
class TaskUpdate:
    """Fields a progress report sets; None leaves a field as it is."""

    actual_start: date | None = None
    actual_end: date | None = None
    actual_cost: Decimal | None = None
    progress: int | None = None


def update_task(uow: UnitOfWork, task_id: str, update: TaskUpdate) -> Task:
    """3.4.1: actual dates, actual cost and progress; the result must keep the task's rules."""
    task = _get(uow, Task, task_id, "task_id", "task")
    project = _active(uow, task.project_id)
    state = TaskState(
        actual_start=update.actual_start if update.actual_start is not None else task.actual_start,
        actual_end=update.actual_end if update.actual_end is not None else task.actual_end,
        actual_cost=update.actual_cost if update.actual_cost is not None else task.actual_cost,
        progress=update.progress if update.progress is not None else task.progress,
    )
    state.check()
    for field, value in (("actual_start", state.actual_start), ("actual_end", state.actual_end)):
        if value is not None and value > today():
            raise InvalidArgument(field, f"{value} is in the future")
    task.actual_start, task.actual_end = state.actual_start, state.actual_end
    task.actual_cost, task.progress = state.actual_cost, state.progress
    task.updated_at = now()
    uow.session.flush()
    _emit(
        uow,
        project,
        "task.updated",
        task.task_id,
        task_id=task.task_id,
        progress=task.progress,
        actual_cost=task.actual_cost,
        actual_start=task.actual_start,
        actual_end=task.actual_end,
    )
    return task


def record_milestone_reached(uow: UnitOfWork, milestone_id: str, actual_date: date) -> Milestone:
    milestone = _get(uow, Milestone, milestone_id, "milestone_id", "milestone")
    project = _active(uow, milestone.project_id)
    if actual_date > today():
        raise InvalidArgument("actual_date", f"{actual_date} is in the future")
    if project.service_start and actual_date < project.service_start:
        raise InvalidArgument(
            "actual_date", f"{actual_date} is before the service start {project.service_start}"
        )
    if milestone.actual_date is not None:
        raise FailedPrecondition(
            f"milestone {milestone.name!r} was already reached on {milestone.actual_date}"
        )
    milestone.actual_date = actual_date
    uow.session.flush()
    _emit(
        uow,
        project,
        "milestone.reached",
        milestone.milestone_id,
        milestone_id=milestone.milestone_id,
        name=milestone.name,
        planned_date=milestone.planned_date,
        actual_date=actual_date,
    )
    return milestone


def _quality_check(
    uow: UnitOfWork, project: Project, subject: str, subject_id: str, passed: bool, notes: str
) -> QualityCheck:
    check = QualityCheck(
        quality_check_id=_id(),
        project_id=project.project_id,
        subject=subject,
        subject_id=subject_id,
        passed=passed,
        notes=notes,
        checked_at=now(),
    )
    uow.session.add(check)
    return check


def record_quality_check(uow: UnitOfWork, task_id: str, passed: bool, notes: str) -> QualityCheck:
    """3.4.1: a task checked against the company's quality system."""
    task = _get(uow, Task, task_id, "task_id", "task")
    project = _active(uow, task.project_id)
    notes = domain.optional("notes", notes)
    if not passed and not notes:
        raise InvalidArgument("notes", "say why the check failed")
    check = _quality_check(uow, project, "task", task.task_id, passed, notes)
    uow.session.flush()
    _emit(
        uow,
        project,
        "quality_check.recorded",
        check.quality_check_id,
        quality_check_id=check.quality_check_id,
        subject="task",
        subject_id=task.task_id,
        passed=passed,
    )
    return check


def record_meeting(
    uow: UnitOfWork,
    project_id: str,
    held_on: date,
    progress_report: str,
    problems: str,
    decisions: Sequence[str],
    internal_updates: str,
) -> Meeting:
    """3.4.1, 3.5.1: a project meeting reporting progress and resolving problems; logged as internal
    communication."""
    project = _active(uow, project_id)
    if held_on > today():
        raise InvalidArgument("held_on", "a meeting is recorded after it was held")
    meeting = Meeting(
        meeting_id=_id(),
        project_id=project.project_id,
        held_on=held_on,
        progress_report=domain.required("progress_report", progress_report),
        problems=domain.optional("problems", problems),
        decisions=list(decisions),
        internal_updates=domain.optional("internal_updates", internal_updates),
        recorded_at=now(),
    )
    uow.session.add(meeting)
    summary = f"Project meeting {held_on}: {meeting.progress_report}"
    if decisions:
        summary += "\nDecisions: " + "; ".join(decisions)
    _log(uow, project, Direction.INTERNAL, CommunicationKind.MEETING, "project team", summary)
    uow.session.flush()
    _emit(
        uow,
        project,
        "meeting.recorded",
        meeting.meeting_id,
        meeting_id=meeting.meeting_id,
        held_on=held_on,
        decisions=list(decisions),
    )
    return meeting


def evaluate_indicators(
    uow: UnitOfWork, thresholds: Thresholds, project_id: str, as_of: date | None = None
) -> tuple[IndicatorSnapshot, list[CorrectiveActionNeed]]:
    """3.4.2: computes the indicators (see `indicators`), stores a snapshot, and for each indicator in the
    amber or red band records a corrective action need and publishes `indicator.breached` (→ risk
    management raises a warning, 6.4.2)."""
    project = _active(uow, project_id)
    plan = work_plan(uow, project.project_id)
    checks = uow.session.execute(
        select(func.count(), func.count().filter(QualityCheck.passed.is_(True))).where(
            QualityCheck.project_id == project.project_id
        )
    ).one()
    figures = indicators.compute([_figures(t) for t in plan.tasks], checks[0], checks[1], as_of or today())
    rates = figures.rates()
    bands = {name: thresholds.band(name, value) for name, value in rates.items()}
    breached = [name for name in indicators.NAMES if bands[name] in WARNING_STATUSES]
    moment = now()
    snapshot = IndicatorSnapshot(
        snapshot_id=_id(),
        project_id=project.project_id,
        as_of=figures.as_of,
        weighting=figures.weighting,
        planned_value=figures.planned_value,
        earned_value=figures.earned_value,
        actual_cost=figures.actual_cost,
        budget_at_completion=figures.budget_at_completion,
        quality_checks=figures.quality_checks,
        quality_checks_passed=figures.quality_checks_passed,
        schedule_deviation_rate=figures.schedule_deviation_rate,
        cost_overrun_rate=figures.cost_overrun_rate,
        quality_pass_rate=figures.quality_pass_rate,
        schedule_status=bands[indicators.SCHEDULE],
        cost_status=bands[indicators.COST],
        quality_status=bands[indicators.QUALITY],
        breached_indicators=breached,
        evaluated_at=moment,
    )
    uow.session.add(snapshot)
    uow.session.flush()
    _emit(
        uow,
        project,
        "indicators.evaluated",
        snapshot.snapshot_id,
        indicator_snapshot_id=snapshot.snapshot_id,
        as_of=figures.as_of,
        **{name: float(value) for name, value in rates.items()},
        breached_indicators=breached,
    )
    needs = []
    for name in breached:
        need = CorrectiveActionNeed(
            need_id=_id(),
            project_id=project.project_id,
            snapshot_id=snapshot.snapshot_id,
            indicator=name,
            value=rates[name],
            status=bands[name],
            corrective_action_id=None,
            raised_at=moment,
        )
        uow.session.add(need)
        needs.append(need)
    uow.session.flush()
    for need in needs:
        # The payload's indicator, value and status are what risk.raise_warning takes.
        _emit(
            uow,
            project,
            "indicator.breached",
            need.need_id,
            indicator=need.indicator,
            value=float(need.value),
            status=need.status,
            indicator_snapshot_id=snapshot.snapshot_id,
            as_of=figures.as_of,
        )
    return snapshot, needs


def snapshots(uow: UnitOfWork, project_id: str, limit: int, offset: int) -> list[IndicatorSnapshot]:
    project = _project(uow, project_id)
    query = (
        select(IndicatorSnapshot)
        .where(IndicatorSnapshot.project_id == project.project_id)
        .order_by(IndicatorSnapshot.evaluated_at.desc())
        .offset(offset)
        .limit(limit)
    )
    return list(uow.session.scalars(query))


def record_corrective_action(
    uow: UnitOfWork, project_id: str, action: str, owner: str
) -> tuple[CorrectiveAction, list[str]]:
    """3.4.2: the corrective action taken; it answers every open need (breached indicator) of the project."""
    project = _active(uow, project_id)
    row = CorrectiveAction(
        corrective_action_id=_id(),
        project_id=project.project_id,
        action=domain.required("corrective_action", action),
        owner=domain.required("action_owner", owner, domain.NAME_LIMIT),
        recorded_at=now(),
    )
    uow.session.add(row)
    uow.session.flush()
    needs = list(
        uow.session.scalars(
            select(CorrectiveActionNeed).where(
                CorrectiveActionNeed.project_id == project.project_id,
                CorrectiveActionNeed.corrective_action_id.is_(None),
            )
        )
    )
    for need in needs:
        need.corrective_action_id = row.corrective_action_id
    answered = sorted({n.indicator for n in needs})
    uow.session.flush()
    _emit(
        uow,
        project,
        "corrective_action.recorded",
        row.corrective_action_id,
        corrective_action_id=row.corrective_action_id,
        corrective_action=row.action,
        action_owner=row.owner,
        indicators=answered,
    )
    return row, answered


def complete_execution(uow: UnitOfWork, project_id: str, summary: str) -> Project:
    """3.4.1: the project manager confirms execution complete; tasks still open are named in the event."""
    project = _active(uow, project_id)
    if project.execution_started_at is None:
        raise FailedPrecondition("execution has not started")
    if project.execution_completed_at is not None:
        raise FailedPrecondition("execution was already completed")
    project.completion_summary = domain.required("completion_summary", summary)
    project.execution_completed_at = now()
    _move(project, Phase.EXECUTED)
    open_tasks = [t.name for t in work_plan(uow, project.project_id).tasks if t.progress < 100]
    uow.session.flush()
    _emit(
        uow,
        project,
        "execution.completed",
        project.project_id,
        execution_completed_at=project.execution_completed_at,
        completion_summary=project.completion_summary,
        open_tasks=open_tasks,
    )
    return project


# --- 3.5 communication ----------------------------------------------------------------------------------


def _log(
    uow: UnitOfWork,
    project: Project,
    direction: Direction,
    kind: CommunicationKind,
    counterpart: str,
    summary: str,
) -> Communication:
    domain.check_communication(direction, kind)
    entry = Communication(
        communication_id=_id(),
        project_id=project.project_id,
        direction=direction.value,
        kind=kind.value,
        counterpart=domain.optional("counterpart", counterpart, 300),
        summary=domain.required("summary", summary),
        occurred_at=now(),
    )
    uow.session.add(entry)
    return entry


def log_communication(
    uow: UnitOfWork,
    project_id: str,
    direction: Direction,
    kind: CommunicationKind,
    counterpart: str,
    summary: str,
) -> Communication:
    """3.5.1, 3.5.2: an entry in the communication log. A change of needs goes through `request_change`."""
    project = _active(uow, project_id)
    if kind is CommunicationKind.CHANGE_REQUEST:
        raise InvalidArgument(
            "kind", "record a change of needs with RequestChange, which starts its assessment"
        )
    entry = _log(uow, project, direction, kind, counterpart, summary)
    uow.session.flush()
    _emit(
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
    uow: UnitOfWork, project_id: str, direction: str, limit: int, offset: int
) -> list[Communication]:
    project = _project(uow, project_id)
    query = select(Communication).where(Communication.project_id == project.project_id)
    if direction:
        query = query.where(Communication.direction == domain.choice(Direction, direction, "direction").value)
    query = query.order_by(Communication.occurred_at.desc()).offset(offset).limit(limit)
    return list(uow.session.scalars(query))


def progress_summary(uow: UnitOfWork, project: Project) -> str:
    """What the client reads in a progress report: plan progress, milestones, the latest indicators."""
    parts = [f"Progress report of {today().isoformat()} ({project.phase.replace('_', ' ')})."]
    if project.execution_started_at is None:
        parts.append("Execution has not started yet.")
    else:
        plan = work_plan(uow, project.project_id)
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
        latest = snapshots(uow, project.project_id, 1, 0)
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


def send_progress_report(uow: UnitOfWork, project_id: str) -> Communication:
    """3.5.2: a regular progress report to the client, logged as external communication."""
    project = _active(uow, project_id)
    entry = _log(
        uow,
        project,
        Direction.EXTERNAL,
        CommunicationKind.PROGRESS_REPORT,
        "client",
        progress_summary(uow, project),
    )
    uow.session.flush()
    _emit(
        uow,
        project,
        "progress_report.sent",
        entry.communication_id,
        progress_report_id=entry.communication_id,
        summary=entry.summary,
    )
    return entry


def request_change(
    uow: UnitOfWork, project_id: str, description: str, requested_by: str, request_id: str = ""
) -> ChangeRequest:
    """3.5.2: the client's change of needs; publishes `change.requested` so the implementation process
    assesses it (message client.change_requested)."""
    if request_id:
        done = uow.session.scalars(
            select(ChangeRequest).where(ChangeRequest.request_id == request_id)
        ).first()
        if done is not None:
            return done
    project = _active(uow, project_id)
    text = domain.required("description", description)
    who = domain.optional("requested_by", requested_by, domain.NAME_LIMIT) or "client"
    entry = _log(uow, project, Direction.EXTERNAL, CommunicationKind.CHANGE_REQUEST, who, text)
    change = ChangeRequest(
        change_request_id=_id(),
        project_id=project.project_id,
        request_id=request_id or None,
        description=text,
        requested_by=who,
        status="requested",
        requested_at=entry.occurred_at,
    )
    uow.session.add(change)
    uow.session.flush()
    _emit(
        uow,
        project,
        "change.requested",
        change.change_request_id,
        change_request_id=change.change_request_id,
        change_description=text,
        requested_by=who,
    )
    return change


def respond_to_change(
    uow: UnitOfWork,
    change_request_id: str,
    decision: ChangeDecision,
    response: str,
    project_id: str = "",
) -> ChangeRequest:
    """3.5.2: accepted, rejected or deferred, with the answer given to the client."""
    change = _get(uow, ChangeRequest, change_request_id, "change_request_id", "change request")
    if project_id and project_id != change.project_id:
        raise InvalidArgument("change_request_id", f"belongs to another project than {project_id!r}")
    project = _active(uow, change.project_id)
    domain.check_change_response(change.status, decision, response)
    change.status = decision.value
    change.response = response.strip()
    change.responded_at = now()
    _log(
        uow,
        project,
        Direction.EXTERNAL,
        CommunicationKind.ANSWER,
        change.requested_by,
        f"Change request {decision.value}: {change.response}",
    )
    uow.session.flush()
    _emit(
        uow,
        project,
        "change.responded",
        change.change_request_id,
        change_request_id=change.change_request_id,
        change_decision=decision.value,
        change_response=change.response,
    )
    return change


def change_requests(uow: UnitOfWork, project_id: str) -> list[ChangeRequest]:
    project = _project(uow, project_id)
    return list(
        uow.session.scalars(
            select(ChangeRequest)
            .where(ChangeRequest.project_id == project.project_id)
            .order_by(ChangeRequest.requested_at)
        )
    )


# --- 4.1 deliverables -------------------------------------------------------------------------------------


def _current_set(uow: UnitOfWork, project_id: str) -> DeliverableSet | None:
    query = select(DeliverableSet).where(DeliverableSet.project_id == project_id)
    return uow.session.scalars(query.order_by(DeliverableSet.version.desc()).limit(1)).first()


def compile_deliverables(
    uow: UnitOfWork, project_id: str, items: Sequence[DeliverableItem], results_summary: str
) -> DeliverableSet:
    """4.1.1: the results compiled into a new version of the deliverable set."""
    project = _active(uow, project_id)
    if project.execution_completed_at is None:
        raise FailedPrecondition("execution is not complete (3.4.1): nothing to compile yet")
    domain.check_deliverables(items)
    previous = _current_set(uow, project.project_id)
    if previous is not None and previous.status == "compiled":
        previous.status = "superseded"
    earlier = uow.session.scalars(
        select(DeliverableSet.items).where(DeliverableSet.project_id == project.project_id)
    ).all()
    counts = Counter(str(old["name"]).lower() for old_items in earlier for old in old_items)
    deliverable_set = DeliverableSet(
        deliverable_set_id=_id(),
        project_id=project.project_id,
        version=(previous.version if previous else 0) + 1,
        results_summary=domain.required("results_summary", results_summary),
        status="compiled",
        items=[{"name": i.name, "link": i.link, "version": counts[i.name.lower()] + 1} for i in items],
        missing_contract_deliverables=domain.missing_contract_deliverables(
            project.contract_deliverables, items
        ),
        compiled_at=now(),
    )
    uow.session.add(deliverable_set)
    _move(project, Phase.DELIVERY)
    uow.session.flush()
    _emit(
        uow,
        project,
        "deliverables.compiled",
        deliverable_set.deliverable_set_id,
        deliverable_set_id=deliverable_set.deliverable_set_id,
        deliverable_set_version=deliverable_set.version,
        deliverables=[i["name"] for i in deliverable_set.items],
        missing_contract_deliverables=deliverable_set.missing_contract_deliverables,
    )
    return deliverable_set


def review_deliverables(
    uow: UnitOfWork, project_id: str, review: MaterialsReview, reviewer: str = ""
) -> DeliverableSet:
    """4.1.2: the internal review of the current set; approved only when all four checks pass. The review
    is a quality check (quality pass rate)."""
    project = _active(uow, project_id)
    review.check()
    current = _current_set(uow, project.project_id)
    if current is None:
        raise FailedPrecondition("no deliverables compiled yet (4.1.1)")
    domain.check_reviewable(current.status, f"deliverable set version {current.version}")
    row = DeliverableReview(
        review_id=_id(),
        deliverable_set_id=current.deliverable_set_id,
        logic_ok=review.logic_ok,
        consistency_ok=review.consistency_ok,
        accuracy_ok=review.accuracy_ok,
        contract_conformance_ok=review.contract_conformance_ok,
        approved=review.approved,
        comments=review.comments.strip(),
        reviewer=domain.optional("reviewer", reviewer, domain.NAME_LIMIT),
        reviewed_at=now(),
    )
    uow.session.add(row)
    current.status = "approved" if review.approved else "revise"
    _quality_check(uow, project, "deliverables", current.deliverable_set_id, review.approved, row.comments)
    uow.session.flush()
    _emit(
        uow,
        project,
        "deliverables.approved" if review.approved else "deliverables.revision_requested",
        current.deliverable_set_id,
        deliverable_set_id=current.deliverable_set_id,
        deliverable_set_version=current.version,
        logic_ok=review.logic_ok,
        consistency_ok=review.consistency_ok,
        accuracy_ok=review.accuracy_ok,
        contract_conformance_ok=review.contract_conformance_ok,
        review_comments=row.comments,
    )
    return current


def deliverable_reviews(uow: UnitOfWork, deliverable_set_id: str) -> list[DeliverableReview]:
    """The reviews of one deliverable set version, oldest first."""
    return list(
        uow.session.scalars(
            select(DeliverableReview)
            .where(DeliverableReview.deliverable_set_id == deliverable_set_id)
            .order_by(DeliverableReview.reviewed_at)
        )
    )


def deliverable_sets(
    uow: UnitOfWork, project_id: str
) -> list[tuple[DeliverableSet, list[DeliverableReview]]]:
    project = _project(uow, project_id)
    sets = uow.session.scalars(
        select(DeliverableSet)
        .where(DeliverableSet.project_id == project.project_id)
        .order_by(DeliverableSet.version)
    )
    return [(s, deliverable_reviews(uow, s.deliverable_set_id)) for s in sets]


# --- 4.2-4.3 delivery -----------------------------------------------------------------------------------


def _approved_set(uow: UnitOfWork, project: Project) -> DeliverableSet:
    current = _current_set(uow, project.project_id)
    if current is None or current.status != "approved":
        raise FailedPrecondition("the deliverables have not passed the internal review (4.1.2)")
    return current


def _new_delivery(project: Project, approved: DeliverableSet, mode: DeliveryMode) -> Delivery:
    return Delivery(
        delivery_id=_id(),
        project_id=project.project_id,
        deliverable_set_id=approved.deliverable_set_id,
        mode=mode.value,
        status="planned",
        attendees=[],
        preparations=[],
        planned_at=now(),
    )


def plan_onsite_delivery(uow: UnitOfWork, project_id: str, plan: OnsitePlan) -> Delivery:
    """4.2.1: time, place and attendees agreed in advance, and the preparations."""
    project = _active(uow, project_id)
    approved = _approved_set(uow, project)
    if plan.delivery_time.date() < today():
        raise InvalidArgument("delivery_time", "an on-site delivery is agreed in advance, not for a past day")
    delivery = _new_delivery(project, approved, DeliveryMode.ONSITE)
    delivery.delivery_time = plan.delivery_time
    delivery.place = plan.place.strip()
    delivery.attendees = list(plan.attendees)
    delivery.preparations = list(plan.preparations)
    uow.session.add(delivery)
    uow.session.flush()
    _emit(
        uow,
        project,
        "delivery.planned",
        delivery.delivery_id,
        delivery_id=delivery.delivery_id,
        delivery_mode="onsite",
        delivery_time=plan.delivery_time,
        delivery_place=delivery.place,
        attendees=delivery.attendees,
    )
    return delivery


def plan_online_delivery(
    uow: UnitOfWork, project_id: str, platform: Platform, channel_tested: bool
) -> Delivery:
    """4.2.2: the platform chosen and the channel tested in advance (`ChannelNotTested` otherwise)."""
    project = _active(uow, project_id)
    approved = _approved_set(uow, project)
    if not channel_tested:
        raise domain.ChannelNotTested()
    delivery = _new_delivery(project, approved, DeliveryMode.ONLINE)
    delivery.platform = platform.value
    delivery.channel_tested = True
    uow.session.add(delivery)
    uow.session.flush()
    _emit(
        uow,
        project,
        "delivery.planned",
        delivery.delivery_id,
        delivery_id=delivery.delivery_id,
        delivery_mode="online",
        platform=platform.value,
    )
    return delivery


def send_deliverables_online(uow: UnitOfWork, delivery_id: str) -> Delivery:
    """4.3.2: the materials sent through the chosen platform."""
    delivery = _get(uow, Delivery, delivery_id, "delivery_id", "delivery")
    project = _active(uow, delivery.project_id)
    if delivery.mode != DeliveryMode.ONLINE:
        raise FailedPrecondition("an on-site delivery is not sent online")
    if delivery.status != "planned":
        raise FailedPrecondition(f"the delivery was already {delivery.status}")
    delivery.status = "sent"
    delivery.sent_at = now()
    uow.session.flush()
    _emit(
        uow,
        project,
        "delivery.sent",
        delivery.delivery_id,
        delivery_id=delivery.delivery_id,
        platform=delivery.platform,
        sent_at=delivery.sent_at,
    )
    return delivery


def record_delivery(uow: UnitOfWork, delivery_id: str, client_feedback: str) -> Delivery:
    """4.3.1, 4.3.2: the delivery took place; the client's feedback is recorded and logged."""
    delivery = _get(uow, Delivery, delivery_id, "delivery_id", "delivery")
    project = _active(uow, delivery.project_id)
    expected = "sent" if delivery.mode == DeliveryMode.ONLINE else "planned"
    if delivery.status != expected:
        raise FailedPrecondition(
            f"an {delivery.mode} delivery is recorded once it is {expected}; this one is {delivery.status}"
        )
    delivery.status = "delivered"
    delivery.delivered_at = now()
    delivery.client_feedback = domain.optional("client_feedback", client_feedback)
    if delivery.client_feedback:
        _log(
            uow,
            project,
            Direction.EXTERNAL,
            CommunicationKind.CLIENT_FEEDBACK,
            "client",
            delivery.client_feedback,
        )
    uow.session.flush()
    _emit(
        uow,
        project,
        "delivery.delivered",
        delivery.delivery_id,
        delivery_id=delivery.delivery_id,
        delivery_mode=delivery.mode,
        delivered_at=delivery.delivered_at,
        client_feedback=delivery.client_feedback,
    )
    return delivery


def deliveries(uow: UnitOfWork, project_id: str) -> list[Delivery]:
    project = _project(uow, project_id)
    return list(
        uow.session.scalars(
            select(Delivery).where(Delivery.project_id == project.project_id).order_by(Delivery.planned_at)
        )
    )


# --- 4.4 acceptance -------------------------------------------------------------------------------------


def _open_items(
    uow: UnitOfWork, project_id: str, acceptance_id: str | None = None
) -> list[RectificationItem]:
    query = select(RectificationItem).where(
        RectificationItem.project_id == project_id, RectificationItem.status == "open"
    )
    if acceptance_id:
        query = query.where(RectificationItem.acceptance_id == acceptance_id)
    return list(uow.session.scalars(query.order_by(RectificationItem.position)))


def items_of(uow: UnitOfWork, acceptance_id: str) -> list[RectificationItem]:
    return list(
        uow.session.scalars(
            select(RectificationItem)
            .where(RectificationItem.acceptance_id == acceptance_id)
            .order_by(RectificationItem.recorded_at, RectificationItem.position)
        )
    )


def _last_round(uow: UnitOfWork, project_id: str) -> Acceptance | None:
    query = select(Acceptance).where(Acceptance.project_id == project_id)
    return uow.session.scalars(query.order_by(Acceptance.round.desc()).limit(1)).first()


def request_acceptance(
    uow: UnitOfWork, project_id: str, acceptance_date: date, content: str, criteria: Sequence[str]
) -> Acceptance:
    """4.4.1: an acceptance request (time, content, criteria) opening the next round; refused while
    rectification items are open (4.4.3), while a round awaits its report, or before any delivery."""
    project = _active(uow, project_id)
    last = _last_round(uow, project.project_id)
    domain.next_round_allowed(last.status if last else None, len(_open_items(uow, project.project_id)))
    delivered = [aware(d.delivered_at) for d in deliveries(uow, project.project_id) if d.delivered_at]
    if not delivered:
        raise FailedPrecondition("nothing has been delivered yet (4.3): acceptance follows delivery")
    first_delivery = min(d for d in delivered if d is not None).date()
    if acceptance_date < first_delivery:
        raise InvalidArgument(
            "acceptance_date", f"{acceptance_date} is before the delivery on {first_delivery}"
        )
    if not criteria:
        raise InvalidArgument("acceptance_criteria", "name at least one criterion")
    acceptance = Acceptance(
        acceptance_id=_id(),
        project_id=project.project_id,
        round=(last.round if last else 0) + 1,
        acceptance_date=acceptance_date,
        content=domain.required("acceptance_content", content),
        criteria=list(criteria),
        status="requested",
        results=[],
        reminders_sent=0,
        requested_at=now(),
    )
    uow.session.add(acceptance)
    _move(project, Phase.ACCEPTANCE)
    uow.session.flush()
    _emit(
        uow,
        project,
        "acceptance.requested",
        acceptance.acceptance_id,
        acceptance_id=acceptance.acceptance_id,
        acceptance_round=acceptance.round,
        acceptance_date=acceptance_date,
        acceptance_criteria=list(criteria),
    )
    return acceptance


def send_acceptance_reminder(uow: UnitOfWork, acceptance_id: str) -> datetime | None:
    """4.4.2: reminds the client of a pending acceptance; once the report is in there is nothing to remind
    of and nothing happens (None)."""
    acceptance = _get(uow, Acceptance, acceptance_id, "acceptance_id", "acceptance")
    project = _project(uow, acceptance.project_id, lock=True)
    if acceptance.status != "requested":
        return None
    acceptance.reminders_sent += 1
    acceptance.reminded_at = now()
    _log(
        uow,
        project,
        Direction.EXTERNAL,
        CommunicationKind.REMINDER,
        "client",
        f"Reminder {acceptance.reminders_sent}: acceptance round {acceptance.round} "
        f"({acceptance.acceptance_date}) awaits the client's report",
    )
    uow.session.flush()
    _emit(
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
    results: Sequence[CriterionResult],
    conclusion: Conclusion,
    comments: str,
    reported_by: str,
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
    acceptance = _get(uow, Acceptance, acceptance_id, "acceptance_id", "acceptance")
    project = _active(uow, acceptance.project_id)
    if acceptance.status != "requested":
        raise FailedPrecondition(
            f"acceptance round {acceptance.round} was already reported ({acceptance.conclusion})"
        )
    domain.check_report(acceptance.criteria, results, conclusion, comments)
    by_key = {r.criterion.strip().lower(): r for r in results}
    acceptance.results = [
        {
            "criterion": c,
            "passed": by_key[c.lower()].passed,
            "comment": by_key[c.lower()].comment.strip(),
        }
        for c in acceptance.criteria
    ]
    acceptance.conclusion = conclusion.value
    acceptance.status = conclusion.value
    acceptance.report_comments = domain.optional("comments", comments)
    acceptance.reported_by = domain.optional("reported_by", reported_by, domain.NAME_LIMIT) or "client"
    acceptance.report_request_id = request_id or None
    acceptance.reported_at = now()
    uow.session.flush()
    _emit(
        uow,
        project,
        "acceptance.reported",
        acceptance.acceptance_id,
        acceptance_id=acceptance.acceptance_id,
        acceptance_round=acceptance.round,
        acceptance_conclusion=conclusion.value,
        acceptance_results=acceptance.results,
        acceptance_comments=acceptance.report_comments,
    )
    return acceptance


def record_rectification_items(
    uow: UnitOfWork, acceptance_id: str, items: Sequence[domain.RectificationItem]
) -> tuple[Acceptance, int]:
    """4.4.3: after a failed report, what to rectify, who, until when; returns the round's open items."""
    acceptance = _get(uow, Acceptance, acceptance_id, "acceptance_id", "acceptance")
    project = _active(uow, acceptance.project_id)
    if acceptance.status not in ("failed", "rectifying"):
        raise FailedPrecondition(
            f"acceptance round {acceptance.round} is {acceptance.status}: "
            "rectification follows a failed report"
        )
    reported = aware(acceptance.reported_at)
    domain.check_rectification(items, reported.date() if reported else today())
    moment = now()
    start = len(items_of(uow, acceptance.acceptance_id))
    rows = [
        RectificationItem(
            rectification_item_id=_id(),
            acceptance_id=acceptance.acceptance_id,
            project_id=project.project_id,
            position=start + i,
            description=item.description,
            owner=item.owner,
            due_date=item.due,
            status="open",
            notes="",
            recorded_at=moment,
        )
        for i, item in enumerate(items)
    ]
    uow.session.add_all(rows)
    acceptance.status = "rectifying"
    uow.session.flush()
    open_count = len(_open_items(uow, project.project_id, acceptance.acceptance_id))
    _emit(
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
    item.status = "closed"
    item.notes = notes
    item.closed_at = now()
    _emit(
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
    remaining = len(_open_items(uow, project.project_id, acceptance.acceptance_id))
    if remaining == 0 and acceptance.status == "rectifying":
        acceptance.status = "rectified"
        uow.session.flush()
        _emit(
            uow,
            project,
            "acceptance.rectified",
            acceptance.acceptance_id,
            acceptance_id=acceptance.acceptance_id,
            acceptance_round=acceptance.round,
        )
    return remaining


def close_rectification_item(uow: UnitOfWork, item_id: str, notes: str) -> RectificationItem:
    item = _get(uow, RectificationItem, item_id, "rectification_item_id", "rectification item")
    project = _active(uow, item.project_id)
    if item.status != "open":
        raise FailedPrecondition("the rectification item is already closed")
    _close_item(uow, project, item, domain.required("notes", notes))
    acceptance = uow.session.get(Acceptance, item.acceptance_id)
    assert acceptance is not None
    _settle(uow, project, acceptance)
    return item


def close_rectification_items(uow: UnitOfWork, acceptance_id: str, notes: str) -> int:
    """4.4.3: closes every open item of the round with the notes; returns the items still open (0)."""
    acceptance = _get(uow, Acceptance, acceptance_id, "acceptance_id", "acceptance")
    project = _active(uow, acceptance.project_id)
    if acceptance.status not in ("rectifying", "rectified"):
        raise FailedPrecondition(
            f"acceptance round {acceptance.round} is {acceptance.status}: "
            "record its rectification items first"
        )
    text = domain.required("rectification_notes", notes)
    for item in _open_items(uow, project.project_id, acceptance.acceptance_id):
        _close_item(uow, project, item, text)
    return _settle(uow, project, acceptance)


def acceptances(uow: UnitOfWork, project_id: str) -> list[Acceptance]:
    project = _project(uow, project_id)
    return list(
        uow.session.scalars(
            select(Acceptance).where(Acceptance.project_id == project.project_id).order_by(Acceptance.round)
        )
    )


def close_acceptance(uow: UnitOfWork, project_id: str, acceptance_id: str) -> Project:
    """4.4.3: a passed acceptance closes delivery; the project moves to follow-up (chapter 5)."""
    project = _active(uow, project_id)
    acceptance = _get(uow, Acceptance, acceptance_id, "acceptance_id", "acceptance")
    if acceptance.project_id != project.project_id:
        raise InvalidArgument("acceptance_id", f"belongs to another project than {project_id!r}")
    last = _last_round(uow, project.project_id)
    if last is None or last.acceptance_id != acceptance.acceptance_id:
        raise FailedPrecondition(f"acceptance round {acceptance.round} is not the last round")
    if acceptance.status != "passed":
        raise FailedPrecondition(
            f"acceptance round {acceptance.round} is {acceptance.status}: "
            "only a passed report closes acceptance"
        )
    acceptance.status = "closed"
    project.phase = Phase.FOLLOW_UP.value
    project.follow_up_at = now()
    uow.session.flush()
    _emit(
        uow,
        project,
        "acceptance.closed",
        acceptance.acceptance_id,
        acceptance_id=acceptance.acceptance_id,
        acceptance_round=acceptance.round,
    )
    _emit(uow, project, "project.follow_up", project.project_id, project_status=Phase.FOLLOW_UP.value)
    return project
