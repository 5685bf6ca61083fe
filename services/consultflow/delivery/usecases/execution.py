"""Delivery use cases of 3.4 execution and monitoring: the work plan, tasks, milestones, quality checks,
meetings,
the indicators and corrective actions."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from consultflow.delivery import domain, indicators
from consultflow.delivery.adapters import Thresholds
from consultflow.delivery.domain import (
    CommunicationKind,
    Direction,
    NewCorrectiveAction,
    NewMeeting,
    Phase,
    PlannedTask,
    SolutionStatus,
    TaskState,
    TaskUpdate,
)
from consultflow.delivery.orm import (
    Communication,
    CorrectiveAction,
    CorrectiveActionNeed,
    IndicatorSnapshot,
    Meeting,
    Milestone,
    Project,
    QualityCheck,
    Solution,
    Task,
    WorkPlan,
)
from consultflow.delivery.usecases.common import (
    active,
    emit,
    get,
    log_entry,
    move,
    new_id,
    project_of,
    quality_check,
    today,
)
from consultflow.platform.db import UnitOfWork
from consultflow.platform.errors import FailedPrecondition, InvalidArgument
from consultflow.platform.inputs import optional_text, required_text
from consultflow.platform.timeutil import now


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
    project = active(uow, project_id)
    if project.execution_started_at is not None:
        raise FailedPrecondition("execution has already started")
    approved = uow.session.scalars(
        select(Solution).where(
            Solution.project_id == project.project_id, Solution.status == SolutionStatus.APPROVED.value
        )
    ).first()
    if approved is None:
        raise FailedPrecondition("no approved solution: the solution review (3.3.2) comes first")
    moment = now()
    plan = WorkPlan(work_plan_id=new_id(), project_id=project.project_id, baselined_at=moment)
    uow.session.add(plan)
    schedule = [
        (str(m["name"]), date.fromisoformat(m["due_date"]))
        for m in project.contract_milestones
        if m.get("due_date")
    ]
    milestones = {
        name: Milestone(
            milestone_id=new_id(),
            project_id=project.project_id,
            name=name,
            planned_date=due,
            actual_date=None,
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
    move(project, Phase.EXECUTION)
    uow.session.flush()
    emit(
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
        task_id=new_id(),
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


def _plan_row(session: Session, project_id: str) -> WorkPlan:
    """The project's work plan row; a project whose execution has not started has none."""
    plan = session.scalars(select(WorkPlan).where(WorkPlan.project_id == project_id)).first()
    if plan is None:
        raise FailedPrecondition("execution has not started: there is no work plan yet")
    return plan


def execution_started(session: Session, project_id: str) -> bool:
    """3.4.1: whether execution started on a work plan (monitoring from the kick-off has none before)."""
    return project_of(session, project_id).execution_started_at is not None


def work_plan(session: Session, project_id: str) -> Plan:
    project = project_of(session, project_id)
    plan = _plan_row(session, project.project_id)
    milestones = session.scalars(
        select(Milestone)
        .where(Milestone.project_id == project.project_id)
        .order_by(Milestone.planned_date, Milestone.name)
    )
    tasks = session.scalars(
        select(Task)
        .where(Task.project_id == project.project_id)
        .order_by(Task.planned_start, Task.created_at)
    )
    return Plan(plan, list(milestones), list(tasks))


def add_task(uow: UnitOfWork, project_id: str, planned: PlannedTask, milestone_id: str = "") -> Task:
    """3.4.1: a task of the work plan, within the service period."""
    project = active(uow, project_id)
    _plan_row(uow.session, project.project_id)
    domain.check_within_service(
        "planned_start", planned.planned_start, project.service_start, project.deadline
    )
    domain.check_within_service("planned_end", planned.planned_end, project.service_start, project.deadline)
    if milestone_id:
        milestone = get(uow.session, Milestone, milestone_id, "milestone_id", "milestone")
        if milestone.project_id != project.project_id:
            raise InvalidArgument("milestone_id", "belongs to another project")
    task = _new_task(project, planned, milestone_id or None, now())
    uow.session.add(task)
    uow.session.flush()
    emit(
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


def update_task(uow: UnitOfWork, task_id: str, update: TaskUpdate) -> Task:
    """3.4.1: actual dates, actual cost and progress; the result must keep the task's rules."""
    task = get(uow.session, Task, task_id, "task_id", "task")
    project = active(uow, task.project_id)
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
    emit(
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
    milestone = get(uow.session, Milestone, milestone_id, "milestone_id", "milestone")
    project = active(uow, milestone.project_id)
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
    emit(
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


def record_quality_check(uow: UnitOfWork, task_id: str, passed: bool, notes: str) -> QualityCheck:
    """3.4.1: a task checked against the company's quality system."""
    task = get(uow.session, Task, task_id, "task_id", "task")
    project = active(uow, task.project_id)
    notes = optional_text("notes", notes, domain.TEXT_LIMIT)
    if not passed and not notes:
        raise InvalidArgument("notes", "say why the check failed")
    return _checked(uow, project, "task", task.task_id, passed, notes)


def record_work_report(uow: UnitOfWork, project_id: str, report: str) -> Communication:
    """3.4.1, 3.5.1: the project team reports the work it carried out per the work plan; logged as internal
    communication (a regular work report) for the project manager's quality check."""
    project = active(uow, project_id)
    if project.execution_started_at is None:
        raise FailedPrecondition("execution has not started: there is no work plan to work on")
    text = required_text("work_report", report, domain.TEXT_LIMIT)
    entry = log_entry(uow, project, Direction.INTERNAL, CommunicationKind.REPORT, "project team", text)
    uow.session.flush()
    emit(
        uow,
        project,
        "work_report.recorded",
        entry.communication_id,
        work_report_id=entry.communication_id,
        summary=entry.summary,
    )
    return entry


def check_work_quality(
    uow: UnitOfWork, project_id: str, work_report_id: str, passed: bool, notes: str
) -> QualityCheck:
    """3.4.1: the team's reported work checked against the company's quality system; like a task's check it
    counts in the quality pass rate (3.4.2)."""
    project = active(uow, project_id)
    report = get(uow.session, Communication, work_report_id, "work_report_id", "work report")
    if report.project_id != project.project_id or report.kind != CommunicationKind.REPORT.value:
        raise InvalidArgument("work_report_id", f"is not a work report of project {project_id!r}")
    notes = optional_text("quality_notes", notes, domain.TEXT_LIMIT)
    if not passed and not notes:
        raise InvalidArgument("quality_notes", "say why the work does not meet the quality requirements")
    return _checked(uow, project, "work_report", report.communication_id, passed, notes)


def _checked(
    uow: UnitOfWork, project: Project, subject: str, subject_id: str, passed: bool, notes: str
) -> QualityCheck:
    """Records a quality check (a task's or a work report's) and announces it; both count in the rate."""
    check = quality_check(uow, project, subject, subject_id, passed, notes)
    uow.session.flush()
    emit(
        uow,
        project,
        "quality_check.recorded",
        check.quality_check_id,
        quality_check_id=check.quality_check_id,
        subject=subject,
        subject_id=subject_id,
        passed=passed,
    )
    return check


def record_meeting(uow: UnitOfWork, project_id: str, command: NewMeeting) -> Meeting:
    """3.4.1, 3.5.1: a project meeting reporting progress and resolving problems; logged as internal
    communication."""
    project = active(uow, project_id)
    held_on = command.held_on or today()
    if held_on > today():
        raise InvalidArgument("held_on", "a meeting is recorded after it was held")
    decisions = list(command.decisions)
    meeting = Meeting(
        meeting_id=new_id(),
        project_id=project.project_id,
        held_on=held_on,
        progress_report=command.progress_report,
        problems=command.problems,
        decisions=decisions,
        internal_updates=command.internal_updates,
        recorded_at=now(),
    )
    uow.session.add(meeting)
    summary = f"Project meeting {held_on}: {meeting.progress_report}"
    if decisions:
        summary += "\nDecisions: " + "; ".join(decisions)
    log_entry(uow, project, Direction.INTERNAL, CommunicationKind.MEETING, "project team", summary)
    uow.session.flush()
    emit(
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
    uow: UnitOfWork,
    thresholds: Thresholds,
    project_id: str,
    as_of: date | None = None,
    engagement_id: str = "",
) -> tuple[IndicatorSnapshot, list[CorrectiveActionNeed]]:
    """3.4.2: computes the indicators (see `indicators`), stores a snapshot, and for each indicator in the
    amber or red band records a corrective action need and publishes `indicator.breached` (→ risk
    management raises a warning, 6.4.2). An `engagement_id` given must be the project's."""
    project = active(uow, project_id)
    if engagement_id and engagement_id != project.engagement_id:
        raise InvalidArgument("engagement_id", f"the project belongs to {project.engagement_id!r}")
    plan = work_plan(uow.session, project.project_id)
    checks = uow.session.execute(
        select(func.count(), func.count().filter(QualityCheck.passed.is_(True))).where(
            QualityCheck.project_id == project.project_id
        )
    ).one()
    figures = indicators.compute([_figures(t) for t in plan.tasks], checks[0], checks[1], as_of or today())
    rates = figures.rates()
    bands = {name: thresholds.band(name, value) for name, value in rates.items()}
    breached = [name for name in indicators.NAMES if domain.breached(bands[name])]
    moment = now()
    snapshot = IndicatorSnapshot(
        snapshot_id=new_id(),
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
    emit(
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
            need_id=new_id(),
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
        emit(
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


def snapshots(session: Session, project_id: str, limit: int, offset: int) -> list[IndicatorSnapshot]:
    project = project_of(session, project_id)
    query = (
        select(IndicatorSnapshot)
        .where(IndicatorSnapshot.project_id == project.project_id)
        .order_by(IndicatorSnapshot.evaluated_at.desc())
        .offset(offset)
        .limit(limit)
    )
    return list(session.scalars(query))


def record_corrective_action(
    uow: UnitOfWork, project_id: str, action: NewCorrectiveAction
) -> tuple[CorrectiveAction, list[str]]:
    """3.4.2: the corrective action taken; it answers every open need (breached indicator) of the project."""
    project = active(uow, project_id)
    row = CorrectiveAction(
        corrective_action_id=new_id(),
        project_id=project.project_id,
        action=action.action,
        owner=action.owner,
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
    emit(
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
    project = active(uow, project_id)
    if project.execution_started_at is None:
        raise FailedPrecondition("execution has not started")
    if project.execution_completed_at is not None:
        raise FailedPrecondition("execution was already completed")
    project.completion_summary = required_text("completion_summary", summary, domain.TEXT_LIMIT)
    project.execution_completed_at = now()
    move(project, Phase.EXECUTED)
    open_tasks = [t.name for t in work_plan(uow.session, project.project_id).tasks if t.progress < 100]
    uow.session.flush()
    emit(
        uow,
        project,
        "execution.completed",
        project.project_id,
        execution_completed_at=project.execution_completed_at,
        completion_summary=project.completion_summary,
        open_tasks=open_tasks,
    )
    return project
