"""Delivery rows as API messages (the servicer's replies); dates as ISO text, money with two decimals."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from decimal import Decimal

from consultflow.api.delivery.v1 import delivery_pb2 as pb
from consultflow.delivery import orm
from consultflow.delivery.domain import ReviewCriterion
from consultflow.delivery.usecases import Plan
from consultflow.platform.timeutil import timestamp


def _day(value: date | None) -> str:
    return value.isoformat() if value else ""


def _money(value: Decimal) -> str:
    return str(Decimal(value).quantize(Decimal("0.01")))


def project_message(project: orm.Project, team: Sequence[orm.TeamMember]) -> pb.Project:
    return pb.Project(
        project_id=project.project_id,
        engagement_id=project.engagement_id,
        contract_id=project.contract_id,
        client_id=project.client_id,
        phase=project.phase,
        service_content=project.service_content,
        scope=project.scope,
        service_start=_day(project.service_start),
        deadline=_day(project.deadline),
        contract_deliverables=project.contract_deliverables,
        contract_milestones=[
            pb.Milestone(name=str(m["name"]), planned_date=str(m["due_date"]))
            for m in project.contract_milestones
        ],
        team=[pb.TeamMember(member_id=m.member_id, name=m.name, role=m.role, duties=m.duties) for m in team],
        completion_summary=project.completion_summary,
        opened_at=timestamp(project.opened_at),
        execution_started_at=timestamp(project.execution_started_at),
        execution_completed_at=timestamp(project.execution_completed_at),
        follow_up_at=timestamp(project.follow_up_at),
    )


def kickoff_message(k: orm.Kickoff) -> pb.Kickoff:
    return pb.Kickoff(
        kickoff_id=k.kickoff_id,
        project_id=k.project_id,
        kickoff_date=_day(k.kickoff_date),
        attendees=k.attendees,
        briefing=k.briefing,
        rules_agreed=k.rules_agreed,
        materials_handed_out=k.materials_handed_out,
        recorded_at=timestamp(k.recorded_at),
    )


def document_message(d: orm.Document) -> pb.Document:
    return pb.Document(
        document_id=d.document_id,
        project_id=d.project_id,
        title=d.title,
        category=d.category,
        source=d.source,
        classification=d.classification,
        link=d.link,
        archive_state=d.archive_state,
        collected_at=timestamp(d.collected_at),
        archived_at=timestamp(d.archived_at),
    )


def site_visit_message(v: orm.SiteVisit) -> pb.SiteVisit:
    return pb.SiteVisit(
        site_visit_id=v.site_visit_id,
        project_id=v.project_id,
        visit_date=_day(v.visit_date),
        visitors=v.visitors,
        interviewees=v.interviewees,
        processes_observed=v.processes_observed,
        observations=v.observations,
        recorded_at=timestamp(v.recorded_at),
    )


def analysis_message(a: orm.Analysis, findings: Sequence[orm.Finding]) -> pb.Analysis:
    return pb.Analysis(
        analysis_id=a.analysis_id,
        project_id=a.project_id,
        findings=[
            pb.Finding(
                finding_id=f.finding_id,
                kind=f.kind,
                description=f.description,
                risk_category=f.risk_category,
                risk_id=f.risk_id,
            )
            for f in findings
        ],
        risks_reported=sum(1 for f in findings if f.risk_id),
        recorded_at=timestamp(a.recorded_at),
    )


def solution_message(s: orm.Solution, reviews: Sequence[orm.SolutionReview]) -> pb.Solution:
    return pb.Solution(
        solution_id=s.solution_id,
        project_id=s.project_id,
        version=s.version,
        summary=s.summary,
        status=s.status,
        artefacts=[pb.Artefact(kind=a["kind"], title=a["title"], link=a["link"]) for a in s.artefacts],
        reviews=[
            pb.SolutionReview(
                review_id=r.review_id,
                reviewer=r.reviewer,
                verdict=r.verdict,
                comments=r.comments,
                reviewed_at=timestamp(r.reviewed_at),
                criteria=[
                    pb.CriterionReview(
                        criterion=c.value,
                        verdict=getattr(r, f"{c.value}_verdict"),
                        comments=getattr(r, f"{c.value}_comments"),
                    )
                    for c in ReviewCriterion
                    if getattr(r, f"{c.value}_verdict")
                ],
            )
            for r in reviews
        ],
        submitted_at=timestamp(s.submitted_at),
    )


def milestone_message(m: orm.Milestone) -> pb.Milestone:
    return pb.Milestone(
        milestone_id=m.milestone_id,
        name=m.name,
        planned_date=_day(m.planned_date),
        actual_date=_day(m.actual_date),
    )


def task_message(t: orm.Task) -> pb.Task:
    return pb.Task(
        task_id=t.task_id,
        project_id=t.project_id,
        milestone_id=t.milestone_id or "",
        name=t.name,
        planned_start=_day(t.planned_start),
        planned_end=_day(t.planned_end),
        actual_start=_day(t.actual_start),
        actual_end=_day(t.actual_end),
        budget=_money(t.budget),
        actual_cost=_money(t.actual_cost),
        progress=t.progress,
    )


def plan_message(plan: Plan) -> pb.WorkPlan:
    return pb.WorkPlan(
        work_plan_id=plan.work_plan.work_plan_id,
        project_id=plan.work_plan.project_id,
        milestones=[milestone_message(m) for m in plan.milestones],
        tasks=[task_message(t) for t in plan.tasks],
        overall_progress=plan.overall_progress,
        baselined_at=timestamp(plan.work_plan.baselined_at),
    )


def quality_check_message(c: orm.QualityCheck) -> pb.QualityCheck:
    return pb.QualityCheck(
        quality_check_id=c.quality_check_id,
        project_id=c.project_id,
        subject=c.subject,
        subject_id=c.subject_id,
        passed=c.passed,
        notes=c.notes,
        checked_at=timestamp(c.checked_at),
    )


def meeting_message(m: orm.Meeting) -> pb.Meeting:
    return pb.Meeting(
        meeting_id=m.meeting_id,
        project_id=m.project_id,
        held_on=_day(m.held_on),
        progress_report=m.progress_report,
        problems=m.problems,
        decisions=m.decisions,
        internal_updates=m.internal_updates,
        recorded_at=timestamp(m.recorded_at),
    )


def snapshot_message(s: orm.IndicatorSnapshot) -> pb.IndicatorSnapshot:
    return pb.IndicatorSnapshot(
        snapshot_id=s.snapshot_id,
        project_id=s.project_id,
        as_of=_day(s.as_of),
        weighting=s.weighting,
        planned_value=str(s.planned_value),
        earned_value=str(s.earned_value),
        actual_cost=_money(s.actual_cost),
        budget_at_completion=_money(s.budget_at_completion),
        quality_checks=s.quality_checks,
        quality_checks_passed=s.quality_checks_passed,
        schedule_deviation_rate=float(s.schedule_deviation_rate),
        cost_overrun_rate=float(s.cost_overrun_rate),
        quality_pass_rate=float(s.quality_pass_rate),
        schedule_status=s.schedule_status,
        cost_status=s.cost_status,
        quality_status=s.quality_status,
        breached_indicators=s.breached_indicators,
        evaluated_at=timestamp(s.evaluated_at),
    )


def corrective_action_message(action: orm.CorrectiveAction, indicators: Sequence[str]) -> pb.CorrectiveAction:
    return pb.CorrectiveAction(
        corrective_action_id=action.corrective_action_id,
        project_id=action.project_id,
        action=action.action,
        owner=action.owner,
        indicators=indicators,
        recorded_at=timestamp(action.recorded_at),
    )


def communication_message(c: orm.Communication) -> pb.Communication:
    return pb.Communication(
        communication_id=c.communication_id,
        project_id=c.project_id,
        direction=c.direction,
        kind=c.kind,
        counterpart=c.counterpart,
        summary=c.summary,
        occurred_at=timestamp(c.occurred_at),
    )


def change_message(c: orm.ChangeRequest) -> pb.ChangeRequest:
    return pb.ChangeRequest(
        change_request_id=c.change_request_id,
        project_id=c.project_id,
        description=c.description,
        requested_by=c.requested_by,
        status=c.status,
        response=c.response,
        requested_at=timestamp(c.requested_at),
        responded_at=timestamp(c.responded_at),
    )


def set_message(s: orm.DeliverableSet, reviews: Sequence[orm.DeliverableReview]) -> pb.DeliverableSet:
    return pb.DeliverableSet(
        deliverable_set_id=s.deliverable_set_id,
        project_id=s.project_id,
        version=s.version,
        results_summary=s.results_summary,
        status=s.status,
        deliverables=[pb.Deliverable(name=i["name"], link=i["link"], version=i["version"]) for i in s.items],
        missing_contract_deliverables=s.missing_contract_deliverables,
        reviews=[
            pb.DeliverableReview(
                review_id=r.review_id,
                logic_ok=r.logic_ok,
                consistency_ok=r.consistency_ok,
                accuracy_ok=r.accuracy_ok,
                contract_conformance_ok=r.contract_conformance_ok,
                approved=r.approved,
                comments=r.comments,
                reviewer=r.reviewer,
                reviewed_at=timestamp(r.reviewed_at),
            )
            for r in reviews
        ],
        compiled_at=timestamp(s.compiled_at),
    )


def delivery_message(d: orm.Delivery) -> pb.Delivery:
    return pb.Delivery(
        delivery_id=d.delivery_id,
        project_id=d.project_id,
        deliverable_set_id=d.deliverable_set_id,
        mode=d.mode,
        status=d.status,
        delivery_time=timestamp(d.delivery_time),
        place=d.place,
        attendees=d.attendees,
        preparations=d.preparations,
        platform=d.platform,
        channel_tested=d.channel_tested,
        client_feedback=d.client_feedback,
        planned_at=timestamp(d.planned_at),
        sent_at=timestamp(d.sent_at),
        delivered_at=timestamp(d.delivered_at),
    )


def item_message(i: orm.RectificationItem) -> pb.RectificationItem:
    return pb.RectificationItem(
        rectification_item_id=i.rectification_item_id,
        acceptance_id=i.acceptance_id,
        description=i.description,
        owner=i.owner,
        due_date=_day(i.due_date),
        status=i.status,
        notes=i.notes,
        closed_at=timestamp(i.closed_at),
    )


def acceptance_message(a: orm.Acceptance, items: Sequence[orm.RectificationItem]) -> pb.Acceptance:
    return pb.Acceptance(
        acceptance_id=a.acceptance_id,
        project_id=a.project_id,
        round=a.round,
        acceptance_date=_day(a.acceptance_date),
        content=a.content,
        criteria=a.criteria,
        status=a.status,
        conclusion=a.conclusion,
        results=[
            pb.CriterionResult(criterion=r["criterion"], passed=r["passed"], comment=r["comment"])
            for r in a.results
        ],
        report_comments=a.report_comments,
        reported_by=a.reported_by,
        rectification_items=[item_message(i) for i in items],
        reminders_sent=a.reminders_sent,
        requested_at=timestamp(a.requested_at),
        reported_at=timestamp(a.reported_at),
    )


# --- the servicer ---------------------------------------------------------------------------------------
