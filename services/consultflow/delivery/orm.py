"""The delivery service's tables: projects and everything recorded about them (chapters 3 and 4)."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

ID = String(36)
Money = Numeric(14, 2)
Rate = Numeric(12, 4)
Value = Numeric(18, 4)
Stamp = DateTime(timezone=True)


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {dict[str, Any]: JSON, list[Any]: JSON}


def _project_fk() -> Mapped[str]:
    return mapped_column(ForeignKey("projects.project_id"), index=True)


class Project(Base):
    """A signed contract being carried out (3.1.1); one per contract."""

    __tablename__ = "projects"
    project_id: Mapped[str] = mapped_column(ID, primary_key=True)
    engagement_id: Mapped[str] = mapped_column(String(100), index=True)
    contract_id: Mapped[str] = mapped_column(String(100), unique=True)
    client_id: Mapped[str] = mapped_column(String(100), default="")
    phase: Mapped[str] = mapped_column(String(30))
    service_content: Mapped[str] = mapped_column(Text, default="")
    scope: Mapped[str] = mapped_column(Text, default="")
    service_start: Mapped[date | None] = mapped_column(Date)
    deadline: Mapped[date | None] = mapped_column(Date)
    contract_deliverables: Mapped[list[Any]] = mapped_column(default=list)
    contract_milestones: Mapped[list[Any]] = mapped_column(default=list)  # [{name, due_date}]
    completion_summary: Mapped[str] = mapped_column(Text, default="")
    opened_at: Mapped[datetime] = mapped_column(Stamp)
    execution_started_at: Mapped[datetime | None] = mapped_column(Stamp)
    execution_completed_at: Mapped[datetime | None] = mapped_column(Stamp)
    follow_up_at: Mapped[datetime | None] = mapped_column(Stamp)


class TeamMember(Base):
    """3.1.1: a person in a role with duties."""

    __tablename__ = "team_members"
    member_id: Mapped[str] = mapped_column(ID, primary_key=True)
    project_id: Mapped[str] = _project_fk()
    name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(30))
    duties: Mapped[str] = mapped_column(Text)
    position: Mapped[int] = mapped_column(Integer)


class Kickoff(Base):
    """3.1.2: the kick-off meeting."""

    __tablename__ = "kickoffs"
    kickoff_id: Mapped[str] = mapped_column(ID, primary_key=True)
    project_id: Mapped[str] = _project_fk()
    kickoff_date: Mapped[date] = mapped_column(Date)
    attendees: Mapped[list[Any]] = mapped_column()
    briefing: Mapped[str] = mapped_column(Text)
    rules_agreed: Mapped[str] = mapped_column(Text)
    materials_handed_out: Mapped[list[Any]] = mapped_column()
    recorded_at: Mapped[datetime] = mapped_column(Stamp)


class Document(Base):
    """3.2.1: an entry of the project data repository."""

    __tablename__ = "documents"
    document_id: Mapped[str] = mapped_column(ID, primary_key=True)
    project_id: Mapped[str] = _project_fk()
    title: Mapped[str] = mapped_column(String(500))
    category: Mapped[str] = mapped_column(String(30))
    source: Mapped[str] = mapped_column(String(300))
    classification: Mapped[str] = mapped_column(String(30))
    link: Mapped[str] = mapped_column(String(1000), default="")
    archive_state: Mapped[str] = mapped_column(String(20))
    collected_at: Mapped[datetime] = mapped_column(Stamp)
    archived_at: Mapped[datetime | None] = mapped_column(Stamp)


class SiteVisit(Base):
    """3.2.2: research at the client's site."""

    __tablename__ = "site_visits"
    site_visit_id: Mapped[str] = mapped_column(ID, primary_key=True)
    project_id: Mapped[str] = _project_fk()
    visit_date: Mapped[date] = mapped_column(Date)
    visitors: Mapped[list[Any]] = mapped_column()
    interviewees: Mapped[list[Any]] = mapped_column()
    processes_observed: Mapped[str] = mapped_column(Text)
    observations: Mapped[str] = mapped_column(Text)
    recorded_at: Mapped[datetime] = mapped_column(Stamp)


class Analysis(Base):
    """3.2.3: one round of data analysis and its findings."""

    __tablename__ = "analyses"
    analysis_id: Mapped[str] = mapped_column(ID, primary_key=True)
    project_id: Mapped[str] = _project_fk()
    request_id: Mapped[str | None] = mapped_column(String(200), unique=True)
    recorded_at: Mapped[datetime] = mapped_column(Stamp)


class Finding(Base):
    __tablename__ = "findings"
    finding_id: Mapped[str] = mapped_column(ID, primary_key=True)
    analysis_id: Mapped[str] = mapped_column(ForeignKey("analyses.analysis_id"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(20))
    description: Mapped[str] = mapped_column(Text)
    risk_category: Mapped[str] = mapped_column(String(30), default="")
    risk_id: Mapped[str] = mapped_column(String(100), default="")


class Solution(Base):
    """3.3.1: a version of the solution."""

    __tablename__ = "solutions"
    solution_id: Mapped[str] = mapped_column(ID, primary_key=True)
    project_id: Mapped[str] = _project_fk()
    version: Mapped[int] = mapped_column(Integer)
    summary: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(20))
    artefacts: Mapped[list[Any]] = mapped_column()  # [{kind, title, link}]
    submitted_at: Mapped[datetime] = mapped_column(Stamp)
    __table_args__ = (UniqueConstraint("project_id", "version"),)


class SolutionReview(Base):
    """3.3.2: an expert review of a solution version."""

    __tablename__ = "solution_reviews"
    review_id: Mapped[str] = mapped_column(ID, primary_key=True)
    solution_id: Mapped[str] = mapped_column(ForeignKey("solutions.solution_id"), index=True)
    reviewer: Mapped[str] = mapped_column(String(200), default="")
    verdict: Mapped[str] = mapped_column(String(20))
    comments: Mapped[str] = mapped_column(Text, default="")
    # the review criteria of 3.3.2, each a verdict (met, not_met) and a comment; "" for a review a diagram
    # recorded before it asked for them
    soundness_verdict: Mapped[str] = mapped_column(String(20), default="", server_default="")
    soundness_comments: Mapped[str] = mapped_column(Text, default="", server_default="")
    feasibility_verdict: Mapped[str] = mapped_column(String(20), default="", server_default="")
    feasibility_comments: Mapped[str] = mapped_column(Text, default="", server_default="")
    innovation_verdict: Mapped[str] = mapped_column(String(20), default="", server_default="")
    innovation_comments: Mapped[str] = mapped_column(Text, default="", server_default="")
    risk_response_verdict: Mapped[str] = mapped_column(String(20), default="", server_default="")
    risk_response_comments: Mapped[str] = mapped_column(Text, default="", server_default="")
    reviewed_at: Mapped[datetime] = mapped_column(Stamp)


class WorkPlan(Base):
    """3.4.1: the plan execution follows; baselined when execution starts."""

    __tablename__ = "work_plans"
    work_plan_id: Mapped[str] = mapped_column(ID, primary_key=True)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.project_id"), unique=True)
    baselined_at: Mapped[datetime] = mapped_column(Stamp)


class Milestone(Base):
    __tablename__ = "milestones"
    milestone_id: Mapped[str] = mapped_column(ID, primary_key=True)
    project_id: Mapped[str] = _project_fk()
    name: Mapped[str] = mapped_column(String(300))
    planned_date: Mapped[date] = mapped_column(Date)
    actual_date: Mapped[date | None] = mapped_column(Date)


class Task(Base):
    """A task of the work plan: planned and actual dates, budget, actual cost, progress."""

    __tablename__ = "tasks"
    task_id: Mapped[str] = mapped_column(ID, primary_key=True)
    project_id: Mapped[str] = _project_fk()
    milestone_id: Mapped[str | None] = mapped_column(ForeignKey("milestones.milestone_id"))
    name: Mapped[str] = mapped_column(String(300))
    planned_start: Mapped[date] = mapped_column(Date)
    planned_end: Mapped[date] = mapped_column(Date)
    actual_start: Mapped[date | None] = mapped_column(Date)
    actual_end: Mapped[date | None] = mapped_column(Date)
    budget: Mapped[Decimal] = mapped_column(Money)
    actual_cost: Mapped[Decimal] = mapped_column(Money)
    progress: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(Stamp)
    updated_at: Mapped[datetime] = mapped_column(Stamp)


class QualityCheck(Base):
    """A quality check (of a task, or the internal review of deliverables); feeds the quality pass rate."""

    __tablename__ = "quality_checks"
    quality_check_id: Mapped[str] = mapped_column(ID, primary_key=True)
    project_id: Mapped[str] = _project_fk()
    subject: Mapped[str] = mapped_column(String(20))
    subject_id: Mapped[str] = mapped_column(String(36))
    passed: Mapped[bool] = mapped_column(Boolean)
    notes: Mapped[str] = mapped_column(Text, default="")
    checked_at: Mapped[datetime] = mapped_column(Stamp)


class Meeting(Base):
    """3.4.1, 3.5.1: a project meeting."""

    __tablename__ = "meetings"
    meeting_id: Mapped[str] = mapped_column(ID, primary_key=True)
    project_id: Mapped[str] = _project_fk()
    held_on: Mapped[date] = mapped_column(Date)
    progress_report: Mapped[str] = mapped_column(Text)
    problems: Mapped[str] = mapped_column(Text)
    decisions: Mapped[list[Any]] = mapped_column()
    internal_updates: Mapped[str] = mapped_column(Text)
    recorded_at: Mapped[datetime] = mapped_column(Stamp)


class IndicatorSnapshot(Base):
    """3.4.2: the indicators as evaluated on one status date."""

    __tablename__ = "indicator_snapshots"
    snapshot_id: Mapped[str] = mapped_column(ID, primary_key=True)
    project_id: Mapped[str] = _project_fk()
    as_of: Mapped[date] = mapped_column(Date)
    weighting: Mapped[str] = mapped_column(String(10))
    planned_value: Mapped[Decimal] = mapped_column(Value)
    earned_value: Mapped[Decimal] = mapped_column(Value)
    actual_cost: Mapped[Decimal] = mapped_column(Money)
    budget_at_completion: Mapped[Decimal] = mapped_column(Money)
    quality_checks: Mapped[int] = mapped_column(Integer)
    quality_checks_passed: Mapped[int] = mapped_column(Integer)
    schedule_deviation_rate: Mapped[Decimal] = mapped_column(Rate)
    cost_overrun_rate: Mapped[Decimal] = mapped_column(Rate)
    quality_pass_rate: Mapped[Decimal] = mapped_column(Rate)
    schedule_status: Mapped[str] = mapped_column(String(10))
    cost_status: Mapped[str] = mapped_column(String(10))
    quality_status: Mapped[str] = mapped_column(String(10))
    breached_indicators: Mapped[list[Any]] = mapped_column()
    evaluated_at: Mapped[datetime] = mapped_column(Stamp)
    __table_args__ = (Index("ix_indicator_snapshots_project_time", "project_id", "evaluated_at"),)


class CorrectiveAction(Base):
    """3.4.2: corrective action taken by the project manager."""

    __tablename__ = "corrective_actions"
    corrective_action_id: Mapped[str] = mapped_column(ID, primary_key=True)
    project_id: Mapped[str] = _project_fk()
    action: Mapped[str] = mapped_column(Text)
    owner: Mapped[str] = mapped_column(String(200))
    recorded_at: Mapped[datetime] = mapped_column(Stamp)


class CorrectiveActionNeed(Base):
    """3.4.2: an indicator found in the amber or red band; open until a corrective action answers it."""

    __tablename__ = "corrective_action_needs"
    need_id: Mapped[str] = mapped_column(ID, primary_key=True)
    project_id: Mapped[str] = _project_fk()
    snapshot_id: Mapped[str] = mapped_column(ForeignKey("indicator_snapshots.snapshot_id"))
    indicator: Mapped[str] = mapped_column(String(40))
    value: Mapped[Decimal] = mapped_column(Rate)
    status: Mapped[str] = mapped_column(String(10))  # amber, red
    corrective_action_id: Mapped[str | None] = mapped_column(
        ForeignKey("corrective_actions.corrective_action_id")
    )
    raised_at: Mapped[datetime] = mapped_column(Stamp)


class Communication(Base):
    """3.5: the internal and external communication log."""

    __tablename__ = "communications"
    communication_id: Mapped[str] = mapped_column(ID, primary_key=True)
    project_id: Mapped[str] = _project_fk()
    direction: Mapped[str] = mapped_column(String(10))
    kind: Mapped[str] = mapped_column(String(30))
    counterpart: Mapped[str] = mapped_column(String(300), default="")
    summary: Mapped[str] = mapped_column(Text)
    occurred_at: Mapped[datetime] = mapped_column(Stamp)


class ChangeRequest(Base):
    """3.5.2: a change of the client's needs and the project's answer."""

    __tablename__ = "change_requests"
    change_request_id: Mapped[str] = mapped_column(ID, primary_key=True)
    project_id: Mapped[str] = _project_fk()
    request_id: Mapped[str | None] = mapped_column(String(200), unique=True)
    description: Mapped[str] = mapped_column(Text)
    requested_by: Mapped[str] = mapped_column(String(200), default="")
    status: Mapped[str] = mapped_column(String(20))
    response: Mapped[str] = mapped_column(Text, default="")
    requested_at: Mapped[datetime] = mapped_column(Stamp)
    responded_at: Mapped[datetime | None] = mapped_column(Stamp)


class DeliverableSet(Base):
    """4.1.1: a version of the compiled results."""

    __tablename__ = "deliverable_sets"
    deliverable_set_id: Mapped[str] = mapped_column(ID, primary_key=True)
    project_id: Mapped[str] = _project_fk()
    version: Mapped[int] = mapped_column(Integer)
    results_summary: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(20))
    items: Mapped[list[Any]] = mapped_column()  # [{name, link, version}]
    missing_contract_deliverables: Mapped[list[Any]] = mapped_column()
    compiled_at: Mapped[datetime] = mapped_column(Stamp)
    __table_args__ = (UniqueConstraint("project_id", "version"),)


class DeliverableReview(Base):
    """4.1.2: the internal review of a deliverable set."""

    __tablename__ = "deliverable_reviews"
    review_id: Mapped[str] = mapped_column(ID, primary_key=True)
    deliverable_set_id: Mapped[str] = mapped_column(
        ForeignKey("deliverable_sets.deliverable_set_id"), index=True
    )
    logic_ok: Mapped[bool] = mapped_column(Boolean)
    consistency_ok: Mapped[bool] = mapped_column(Boolean)
    accuracy_ok: Mapped[bool] = mapped_column(Boolean)
    contract_conformance_ok: Mapped[bool] = mapped_column(Boolean)
    approved: Mapped[bool] = mapped_column(Boolean)
    comments: Mapped[str] = mapped_column(Text, default="")
    reviewer: Mapped[str] = mapped_column(String(200), default="")
    reviewed_at: Mapped[datetime] = mapped_column(Stamp)


class Delivery(Base):
    """4.2-4.3: how and when the approved results reach the client."""

    __tablename__ = "deliveries"
    delivery_id: Mapped[str] = mapped_column(ID, primary_key=True)
    project_id: Mapped[str] = _project_fk()
    deliverable_set_id: Mapped[str] = mapped_column(ForeignKey("deliverable_sets.deliverable_set_id"))
    mode: Mapped[str] = mapped_column(String(10))
    status: Mapped[str] = mapped_column(String(20))
    delivery_time: Mapped[datetime | None] = mapped_column(Stamp)
    place: Mapped[str] = mapped_column(String(500), default="")
    attendees: Mapped[list[Any]] = mapped_column(default=list)
    preparations: Mapped[list[Any]] = mapped_column(default=list)
    platform: Mapped[str] = mapped_column(String(30), default="")
    channel_tested: Mapped[bool] = mapped_column(Boolean, default=False)
    client_feedback: Mapped[str] = mapped_column(Text, default="")
    planned_at: Mapped[datetime] = mapped_column(Stamp)
    sent_at: Mapped[datetime | None] = mapped_column(Stamp)
    delivered_at: Mapped[datetime | None] = mapped_column(Stamp)


class Acceptance(Base):
    """4.4: one acceptance round: the request, the client's report, and its rectification."""

    __tablename__ = "acceptances"
    acceptance_id: Mapped[str] = mapped_column(ID, primary_key=True)
    project_id: Mapped[str] = _project_fk()
    round: Mapped[int] = mapped_column(Integer)
    acceptance_date: Mapped[date] = mapped_column(Date)
    content: Mapped[str] = mapped_column(Text)
    criteria: Mapped[list[Any]] = mapped_column()
    status: Mapped[str] = mapped_column(String(20))
    conclusion: Mapped[str] = mapped_column(String(10), default="")
    results: Mapped[list[Any]] = mapped_column(default=list)  # [{criterion, passed, comment}]
    report_comments: Mapped[str] = mapped_column(Text, default="")
    reported_by: Mapped[str] = mapped_column(String(200), default="")
    report_request_id: Mapped[str | None] = mapped_column(String(200), unique=True)
    reminders_sent: Mapped[int] = mapped_column(Integer, default=0)
    requested_at: Mapped[datetime] = mapped_column(Stamp)
    reminded_at: Mapped[datetime | None] = mapped_column(Stamp)
    reported_at: Mapped[datetime | None] = mapped_column(Stamp)
    __table_args__ = (UniqueConstraint("project_id", "round"),)


class RectificationItem(Base):
    """4.4.3: what to rectify after a failed acceptance, who does it, until when."""

    __tablename__ = "rectification_items"
    rectification_item_id: Mapped[str] = mapped_column(ID, primary_key=True)
    acceptance_id: Mapped[str] = mapped_column(ForeignKey("acceptances.acceptance_id"), index=True)
    project_id: Mapped[str] = _project_fk()
    position: Mapped[int] = mapped_column(Integer)
    description: Mapped[str] = mapped_column(Text)
    owner: Mapped[str] = mapped_column(String(200))
    due_date: Mapped[date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(10))
    notes: Mapped[str] = mapped_column(Text, default="")
    recorded_at: Mapped[datetime] = mapped_column(Stamp)
    closed_at: Mapped[datetime | None] = mapped_column(Stamp)
