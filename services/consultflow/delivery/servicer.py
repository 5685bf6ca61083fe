"""The delivery gRPC API: thin translation between messages and use cases."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date
from decimal import Decimal
from typing import Any

import grpc

from consultflow.api.delivery.v1 import delivery_pb2 as pb
from consultflow.api.delivery.v1 import delivery_pb2_grpc as pb_grpc
from consultflow.delivery import domain, orm, service
from consultflow.delivery.adapters import Dependencies
from consultflow.delivery.domain import (
    ArtefactKind,
    ChangeDecision,
    Classification,
    CommunicationKind,
    Conclusion,
    CriterionResult,
    DeliverableItem,
    Direction,
    DocumentCategory,
    FindingKind,
    MaterialsReview,
    Member,
    NewDocument,
    OnsitePlan,
    PlannedTask,
    Platform,
    Role,
    Verdict,
)
from consultflow.delivery.service import Plan, TaskUpdate
from consultflow.platform.db import UnitOfWork
from consultflow.platform.paging import next_token, page_offset, page_size
from consultflow.platform.timeutil import timestamp

# --- messages from rows ---------------------------------------------------------------------------------


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


class DeliveryServicer(pb_grpc.DeliveryServiceServicer):
    def __init__(self, uow: Callable[[], UnitOfWork], deps: Dependencies) -> None:
        self._uow = uow
        self._deps = deps

    def _project(self, uow: UnitOfWork, project: orm.Project) -> pb.Project:
        return project_message(project, service.team_of(uow, project.project_id))

    # 3.1

    def OpenProject(self, request: pb.OpenProjectRequest, context: grpc.ServicerContext) -> Any:
        with self._uow() as uow:
            project = service.open_project(
                uow, self._deps.contracts, request.contract_id, request.engagement_id
            )
            reply = self._project(uow, project)
            uow.commit()
            return reply

    def GetProject(self, request: pb.GetProjectRequest, context: grpc.ServicerContext) -> Any:
        with self._uow() as uow:
            return self._project(uow, service.get_project(uow, request.project_id))

    def ListProjects(self, request: pb.ListProjectsRequest, context: grpc.ServicerContext) -> Any:
        size, offset = page_size(request.page_size), page_offset(request.page_token)
        with self._uow() as uow:
            rows = service.list_projects(uow, request.engagement_id, request.phase, size + 1, offset)
            return pb.ListProjectsResponse(
                projects=[self._project(uow, p) for p in rows[:size]],
                next_page_token=next_token(offset, size, len(rows)),
            )

    def FormTeam(self, request: pb.FormTeamRequest, context: grpc.ServicerContext) -> Any:
        members = [
            Member(m.name, domain.choice(Role, m.role, "members.role"), m.duties) for m in request.members
        ]
        with self._uow() as uow:
            team = service.form_team(uow, request.project_id, members)
            reply = project_message(service.get_project(uow, request.project_id), team)
            uow.commit()
            return reply

    def RecordKickoff(self, request: pb.RecordKickoffRequest, context: grpc.ServicerContext) -> Any:
        with self._uow() as uow:
            kickoff = service.record_kickoff(
                uow,
                request.project_id,
                domain.parse_date(request.kickoff_date, "kickoff_date"),
                domain.names(list(request.attendees), "attendees"),
                request.briefing,
                request.rules_agreed,
                domain.names(list(request.materials_handed_out), "materials_handed_out"),
            )
            uow.commit()
            return kickoff_message(kickoff)

    # 3.2

    def AddDocument(self, request: pb.AddDocumentRequest, context: grpc.ServicerContext) -> Any:
        category = domain.choice(DocumentCategory, request.category, "category")
        document = NewDocument(
            title=domain.required("title", request.title, 500),
            category=category,
            source=domain.required("source", request.source, 300),
            classification=domain.choice(Classification, request.classification, "classification")
            if request.classification
            else domain.default_classification(category),
            link=domain.parse_link(request.link, "link"),
        )
        with self._uow() as uow:
            (row,) = service.add_documents(
                uow, request.project_id, [document], archive=not request.collect_only
            )
            uow.commit()
            return document_message(row)

    def ArchiveDocument(self, request: pb.ArchiveDocumentRequest, context: grpc.ServicerContext) -> Any:
        with self._uow() as uow:
            document = service.archive_document(uow, request.document_id)
            uow.commit()
            return document_message(document)

    def ListDocuments(self, request: pb.ListDocumentsRequest, context: grpc.ServicerContext) -> Any:
        size, offset = page_size(request.page_size), page_offset(request.page_token)
        with self._uow() as uow:
            rows = service.list_documents(
                uow, request.project_id, request.category, request.archive_state, size + 1, offset
            )
            return pb.ListDocumentsResponse(
                documents=[document_message(d) for d in rows[:size]],
                next_page_token=next_token(offset, size, len(rows)),
            )

    def RecordSiteVisit(self, request: pb.RecordSiteVisitRequest, context: grpc.ServicerContext) -> Any:
        with self._uow() as uow:
            visit = service.record_site_visit(
                uow,
                request.project_id,
                domain.parse_date(request.visit_date, "visit_date"),
                domain.names(list(request.visitors), "visitors"),
                domain.names(list(request.interviewees), "interviewees"),
                request.processes_observed,
                request.observations,
            )
            uow.commit()
            return site_visit_message(visit)

    def RecordAnalysis(self, request: pb.RecordAnalysisRequest, context: grpc.ServicerContext) -> Any:
        findings = [
            domain.finding(
                domain.choice(FindingKind, f.kind, "findings.kind"),
                f.description,
                f.risk_category,
                "findings.description",
            )
            for f in request.findings
        ]
        with self._uow() as uow:
            analysis, rows = service.record_analysis(
                uow, self._deps.risks, request.project_id, findings, request.request_id
            )
            uow.commit()
            return analysis_message(analysis, rows)

    # 3.3

    def SubmitSolution(self, request: pb.SubmitSolutionRequest, context: grpc.ServicerContext) -> Any:
        artefacts = [
            domain.artefact(domain.choice(ArtefactKind, a.kind, "artefacts.kind"), a.title, a.link)
            for a in request.artefacts
        ]
        with self._uow() as uow:
            solution = service.submit_solution(uow, request.project_id, request.summary, artefacts)
            uow.commit()
            return solution_message(solution, [])

    def ReviewSolution(self, request: pb.ReviewSolutionRequest, context: grpc.ServicerContext) -> Any:
        verdict = domain.choice(Verdict, request.verdict, "verdict")
        domain.check_review(verdict, request.comments, "comments")
        with self._uow() as uow:
            solution = service.review_solution(
                uow, request.solution_id, verdict, request.comments, request.reviewer
            )
            reviews = service.solution_reviews(uow, solution.solution_id)
            uow.commit()
            return solution_message(solution, reviews)

    def ListSolutions(self, request: pb.ListSolutionsRequest, context: grpc.ServicerContext) -> Any:
        with self._uow() as uow:
            rows = service.solutions(uow, request.project_id)
            return pb.ListSolutionsResponse(solutions=[solution_message(s, r) for s, r in rows])

    # 3.4

    def StartExecution(self, request: pb.StartExecutionRequest, context: grpc.ServicerContext) -> Any:
        with self._uow() as uow:
            plan = service.start_execution(uow, request.project_id)
            uow.commit()
            return plan_message(plan)

    def GetWorkPlan(self, request: pb.GetWorkPlanRequest, context: grpc.ServicerContext) -> Any:
        with self._uow() as uow:
            return plan_message(service.work_plan(uow, request.project_id))

    def AddTask(self, request: pb.AddTaskRequest, context: grpc.ServicerContext) -> Any:
        planned = PlannedTask(
            name=domain.required("name", request.name, 300),
            planned_start=domain.parse_date(request.planned_start, "planned_start"),
            planned_end=domain.parse_date(request.planned_end, "planned_end"),
            budget=domain.parse_money(request.budget, "budget"),
        )
        with self._uow() as uow:
            task = service.add_task(uow, request.project_id, planned, request.milestone_id)
            uow.commit()
            return task_message(task)

    def UpdateTask(self, request: pb.UpdateTaskRequest, context: grpc.ServicerContext) -> Any:
        update = TaskUpdate(
            actual_start=domain.parse_date(request.actual_start, "actual_start")
            if request.HasField("actual_start")
            else None,
            actual_end=domain.parse_date(request.actual_end, "actual_end")
            if request.HasField("actual_end")
            else None,
            actual_cost=domain.parse_money(request.actual_cost, "actual_cost")
            if request.HasField("actual_cost")
            else None,
            progress=domain.parse_progress(request.progress) if request.HasField("progress") else None,
        )
        with self._uow() as uow:
            task = service.update_task(uow, request.task_id, update)
            uow.commit()
            return task_message(task)

    def RecordMilestoneReached(
        self, request: pb.RecordMilestoneReachedRequest, context: grpc.ServicerContext
    ) -> Any:
        with self._uow() as uow:
            milestone = service.record_milestone_reached(
                uow, request.milestone_id, domain.parse_date(request.actual_date, "actual_date")
            )
            uow.commit()
            return milestone_message(milestone)

    def RecordQualityCheck(self, request: pb.RecordQualityCheckRequest, context: grpc.ServicerContext) -> Any:
        with self._uow() as uow:
            check = service.record_quality_check(uow, request.task_id, request.passed, request.notes)
            uow.commit()
            return quality_check_message(check)

    def RecordMeeting(self, request: pb.RecordMeetingRequest, context: grpc.ServicerContext) -> Any:
        held_on = domain.parse_date(request.held_on, "held_on") if request.held_on else service.today()
        with self._uow() as uow:
            meeting = service.record_meeting(
                uow,
                request.project_id,
                held_on,
                request.progress_report,
                request.problems,
                domain.lines(list(request.decisions), "decisions"),
                request.internal_updates,
            )
            uow.commit()
            return meeting_message(meeting)

    def EvaluateIndicators(self, request: pb.EvaluateIndicatorsRequest, context: grpc.ServicerContext) -> Any:
        as_of = domain.parse_date(request.as_of, "as_of") if request.as_of else None
        with self._uow() as uow:
            snapshot, _ = service.evaluate_indicators(uow, self._deps.thresholds, request.project_id, as_of)
            uow.commit()
            return snapshot_message(snapshot)

    def ListIndicatorSnapshots(
        self, request: pb.ListIndicatorSnapshotsRequest, context: grpc.ServicerContext
    ) -> Any:
        size, offset = page_size(request.page_size), page_offset(request.page_token)
        with self._uow() as uow:
            rows = service.snapshots(uow, request.project_id, size + 1, offset)
            return pb.ListIndicatorSnapshotsResponse(
                snapshots=[snapshot_message(s) for s in rows[:size]],
                next_page_token=next_token(offset, size, len(rows)),
            )

    def RecordCorrectiveAction(
        self, request: pb.RecordCorrectiveActionRequest, context: grpc.ServicerContext
    ) -> Any:
        with self._uow() as uow:
            action, indicators = service.record_corrective_action(
                uow, request.project_id, request.action, request.owner
            )
            uow.commit()
            return pb.CorrectiveAction(
                corrective_action_id=action.corrective_action_id,
                project_id=action.project_id,
                action=action.action,
                owner=action.owner,
                indicators=indicators,
                recorded_at=timestamp(action.recorded_at),
            )

    def CompleteExecution(self, request: pb.CompleteExecutionRequest, context: grpc.ServicerContext) -> Any:
        with self._uow() as uow:
            project = service.complete_execution(uow, request.project_id, request.completion_summary)
            reply = self._project(uow, project)
            uow.commit()
            return reply

    # 3.5

    def LogCommunication(self, request: pb.LogCommunicationRequest, context: grpc.ServicerContext) -> Any:
        direction = domain.choice(Direction, request.direction, "direction")
        kind = domain.choice(CommunicationKind, request.kind, "kind")
        with self._uow() as uow:
            entry = service.log_communication(
                uow, request.project_id, direction, kind, request.counterpart, request.summary
            )
            uow.commit()
            return communication_message(entry)

    def ListCommunications(self, request: pb.ListCommunicationsRequest, context: grpc.ServicerContext) -> Any:
        size, offset = page_size(request.page_size), page_offset(request.page_token)
        with self._uow() as uow:
            rows = service.communications(uow, request.project_id, request.direction, size + 1, offset)
            return pb.ListCommunicationsResponse(
                communications=[communication_message(c) for c in rows[:size]],
                next_page_token=next_token(offset, size, len(rows)),
            )

    def SendProgressReport(self, request: pb.SendProgressReportRequest, context: grpc.ServicerContext) -> Any:
        with self._uow() as uow:
            entry = service.send_progress_report(uow, request.project_id)
            uow.commit()
            return communication_message(entry)

    def RequestChange(self, request: pb.RequestChangeRequest, context: grpc.ServicerContext) -> Any:
        with self._uow() as uow:
            change = service.request_change(
                uow, request.project_id, request.description, request.requested_by, request.request_id
            )
            uow.commit()
            return change_message(change)

    def RespondToChange(self, request: pb.RespondToChangeRequest, context: grpc.ServicerContext) -> Any:
        decision = domain.choice(ChangeDecision, request.decision, "decision")
        with self._uow() as uow:
            change = service.respond_to_change(uow, request.change_request_id, decision, request.response)
            uow.commit()
            return change_message(change)

    def ListChangeRequests(self, request: pb.ListChangeRequestsRequest, context: grpc.ServicerContext) -> Any:
        with self._uow() as uow:
            rows = service.change_requests(uow, request.project_id)
            return pb.ListChangeRequestsResponse(change_requests=[change_message(c) for c in rows])

    # 4.1-4.3

    def CompileDeliverables(
        self, request: pb.CompileDeliverablesRequest, context: grpc.ServicerContext
    ) -> Any:
        items = [
            DeliverableItem(
                domain.required("deliverables.name", d.name, 300),
                domain.parse_link(d.link, "deliverables.link"),
            )
            for d in request.deliverables
        ]
        with self._uow() as uow:
            deliverable_set = service.compile_deliverables(
                uow, request.project_id, items, request.results_summary
            )
            uow.commit()
            return set_message(deliverable_set, [])

    def ReviewDeliverables(self, request: pb.ReviewDeliverablesRequest, context: grpc.ServicerContext) -> Any:
        review = MaterialsReview(
            logic_ok=request.logic_ok,
            consistency_ok=request.consistency_ok,
            accuracy_ok=request.accuracy_ok,
            contract_conformance_ok=request.contract_conformance_ok,
            comments=request.comments,
        )
        with self._uow() as uow:
            reviewed = service.review_deliverables(uow, request.project_id, review, request.reviewer)
            reviews = service.deliverable_reviews(uow, reviewed.deliverable_set_id)
            uow.commit()
            return set_message(reviewed, reviews)

    def ListDeliverableSets(
        self, request: pb.ListDeliverableSetsRequest, context: grpc.ServicerContext
    ) -> Any:
        with self._uow() as uow:
            rows = service.deliverable_sets(uow, request.project_id)
            return pb.ListDeliverableSetsResponse(deliverable_sets=[set_message(s, r) for s, r in rows])

    def PlanOnsiteDelivery(self, request: pb.PlanOnsiteDeliveryRequest, context: grpc.ServicerContext) -> Any:
        plan = OnsitePlan(
            delivery_time=domain.parse_datetime(request.delivery_time, "delivery_time"),
            place=request.place,
            attendees=tuple(domain.names(list(request.attendees), "attendees")),
            preparations=tuple(domain.lines(list(request.preparations), "preparations")),
        )
        with self._uow() as uow:
            delivery = service.plan_onsite_delivery(uow, request.project_id, plan)
            uow.commit()
            return delivery_message(delivery)

    def PlanOnlineDelivery(self, request: pb.PlanOnlineDeliveryRequest, context: grpc.ServicerContext) -> Any:
        platform = domain.choice(Platform, request.platform, "platform")
        with self._uow() as uow:
            delivery = service.plan_online_delivery(uow, request.project_id, platform, request.channel_tested)
            uow.commit()
            return delivery_message(delivery)

    def SendDeliverablesOnline(
        self, request: pb.SendDeliverablesOnlineRequest, context: grpc.ServicerContext
    ) -> Any:
        with self._uow() as uow:
            delivery = service.send_deliverables_online(uow, request.delivery_id)
            uow.commit()
            return delivery_message(delivery)

    def RecordDelivery(self, request: pb.RecordDeliveryRequest, context: grpc.ServicerContext) -> Any:
        with self._uow() as uow:
            delivery = service.record_delivery(uow, request.delivery_id, request.client_feedback)
            uow.commit()
            return delivery_message(delivery)

    def ListDeliveries(self, request: pb.ListDeliveriesRequest, context: grpc.ServicerContext) -> Any:
        with self._uow() as uow:
            rows = service.deliveries(uow, request.project_id)
            return pb.ListDeliveriesResponse(deliveries=[delivery_message(d) for d in rows])

    # 4.4

    def _acceptance(self, uow: UnitOfWork, acceptance: orm.Acceptance) -> pb.Acceptance:
        return acceptance_message(acceptance, service.items_of(uow, acceptance.acceptance_id))

    def RequestAcceptance(self, request: pb.RequestAcceptanceRequest, context: grpc.ServicerContext) -> Any:
        acceptance_date = domain.parse_date(request.acceptance_date, "acceptance_date")
        criteria = domain.criteria_list(list(request.criteria))
        with self._uow() as uow:
            acceptance = service.request_acceptance(
                uow, request.project_id, acceptance_date, request.content, criteria
            )
            reply = self._acceptance(uow, acceptance)
            uow.commit()
            return reply

    def RecordAcceptanceReport(
        self, request: pb.RecordAcceptanceReportRequest, context: grpc.ServicerContext
    ) -> Any:
        conclusion = domain.choice(Conclusion, request.conclusion, "conclusion")
        results = [CriterionResult(r.criterion, r.passed, r.comment) for r in request.results]
        with self._uow() as uow:
            acceptance = service.record_acceptance_report(
                uow,
                request.acceptance_id,
                results,
                conclusion,
                request.comments,
                request.reported_by,
                request.request_id,
            )
            reply = self._acceptance(uow, acceptance)
            uow.commit()
            return reply

    def RecordRectificationItems(
        self, request: pb.RecordRectificationItemsRequest, context: grpc.ServicerContext
    ) -> Any:
        items = [
            domain.RectificationItem(
                domain.required("items.description", i.description),
                domain.required("items.owner", i.owner, domain.NAME_LIMIT),
                domain.parse_date(i.due_date, "items.due_date"),
            )
            for i in request.items
        ]
        with self._uow() as uow:
            acceptance, _ = service.record_rectification_items(uow, request.acceptance_id, items)
            reply = self._acceptance(uow, acceptance)
            uow.commit()
            return reply

    def CloseRectificationItem(
        self, request: pb.CloseRectificationItemRequest, context: grpc.ServicerContext
    ) -> Any:
        with self._uow() as uow:
            item = service.close_rectification_item(uow, request.rectification_item_id, request.notes)
            uow.commit()
            return item_message(item)

    def ListAcceptances(self, request: pb.ListAcceptancesRequest, context: grpc.ServicerContext) -> Any:
        with self._uow() as uow:
            return pb.ListAcceptancesResponse(
                acceptances=[self._acceptance(uow, a) for a in service.acceptances(uow, request.project_id)]
            )

    def CloseAcceptance(self, request: pb.CloseAcceptanceRequest, context: grpc.ServicerContext) -> Any:
        with self._uow() as uow:
            project = service.close_acceptance(uow, request.project_id, request.acceptance_id)
            reply = self._project(uow, project)
            uow.commit()
            return reply
