"""The delivery gRPC API: thin translation between messages and use cases."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager

import grpc
from sqlalchemy import select
from sqlalchemy.orm import Session

from consultflow.api.delivery.v1 import delivery_pb2 as pb
from consultflow.api.delivery.v1 import delivery_pb2_grpc as pb_grpc
from consultflow.delivery import usecases
from consultflow.delivery.acceptance_rules import (
    AcceptanceReport,
    AcceptanceRequest,
    RectificationItem,
)
from consultflow.delivery.adapters import Dependencies
from consultflow.delivery.deliverables_rules import (
    DeliverableItem,
    MaterialsReview,
    OnlinePlan,
    OnsitePlan,
)
from consultflow.delivery.domain import (
    ArchiveState,
    Artefact,
    ChangeResponse,
    Direction,
    DocumentCategory,
    ExpertReview,
    NewChangeRequest,
    NewCommunication,
    NewCorrectiveAction,
    NewDocument,
    NewFinding,
    NewKickoff,
    NewMeeting,
    NewSiteVisit,
    Phase,
    PlannedTask,
    ReviewCriterion,
    TaskUpdate,
    Team,
)
from consultflow.delivery.messages import (
    acceptance_message,
    analysis_message,
    change_message,
    communication_message,
    corrective_action_message,
    delivery_message,
    document_message,
    item_message,
    kickoff_message,
    meeting_message,
    milestone_message,
    plan_message,
    project_message,
    quality_check_message,
    set_message,
    site_visit_message,
    snapshot_message,
    solution_message,
    task_message,
)
from consultflow.delivery.orm import Project, TeamMember
from consultflow.platform import policy
from consultflow.platform.authn import current_caller
from consultflow.platform.db import UnitOfWork
from consultflow.platform.errors import InvalidArgument
from consultflow.platform.inputs import choice, iso_date, optional_choice, renamed_fields
from consultflow.platform.paging import Page


class DeliveryServicer(pb_grpc.DeliveryServiceServicer):
    """Each write runs in a unit of work it commits; each read in a read-only session (no write lock)."""

    def __init__(
        self,
        uow: Callable[[], UnitOfWork],
        read: Callable[[], AbstractContextManager[Session]],
        deps: Dependencies,
    ) -> None:
        self._uow = uow
        self._read = read
        self._deps = deps

    # 3.1

    def OpenProject(self, request: pb.OpenProjectRequest, context: grpc.ServicerContext) -> pb.Project:
        with self._uow() as uow:
            project = usecases.open_project(
                uow, self._deps.contracts, request.contract_id, request.engagement_id
            )
            reply = project_message(project, usecases.team_of(uow.session, project.project_id))
            uow.commit()
            return reply

    def GetProject(self, request: pb.GetProjectRequest, context: grpc.ServicerContext) -> pb.Project:
        with self._read() as session:
            project = usecases.get_project(session, request.project_id)
            return project_message(project, usecases.team_of(session, project.project_id))

    def ListProjects(
        self, request: pb.ListProjectsRequest, context: grpc.ServicerContext
    ) -> pb.ListProjectsResponse:
        page = Page.of(request.page_size, request.page_token)
        phase = optional_choice("phase", request.phase, Phase)
        with self._read() as session:
            rows = usecases.list_projects(session, request.engagement_id, phase, page.fetch, page.offset)
            return pb.ListProjectsResponse(
                projects=[
                    project_message(p, usecases.team_of(session, p.project_id)) for p in page.rows(rows)
                ],
                next_page_token=page.next_token(rows),
            )

    def FormTeam(self, request: pb.FormTeamRequest, context: grpc.ServicerContext) -> pb.Project:
        team = Team.parse(members=[(m.name, m.role, m.duties) for m in request.members])
        with self._uow() as uow:
            members = usecases.form_team(uow, request.project_id, team)
            reply = project_message(usecases.get_project(uow.session, request.project_id), members)
            uow.commit()
            return reply

    def RecordKickoff(self, request: pb.RecordKickoffRequest, context: grpc.ServicerContext) -> pb.Kickoff:
        meeting = NewKickoff.parse(
            kickoff_date=request.kickoff_date,
            attendees=list(request.attendees),
            briefing=request.briefing,
            rules_agreed=request.rules_agreed,
            materials_handed_out=list(request.materials_handed_out),
        )
        with self._uow() as uow:
            kickoff = usecases.record_kickoff(uow, request.project_id, meeting)
            uow.commit()
            return kickoff_message(kickoff)

    # 3.2

    def AddDocument(self, request: pb.AddDocumentRequest, context: grpc.ServicerContext) -> pb.Document:
        document = NewDocument.parse(
            title=request.title,
            category=request.category,
            source=request.source,
            classification=request.classification,
            link=request.link,
        )
        with self._uow() as uow:
            (row,) = usecases.add_documents(
                uow, request.project_id, [document], archive=not request.collect_only
            )
            _require_team_of(uow.session, row.project_id)  # before the commit
            uow.commit()
            return document_message(row)

    def ArchiveDocument(
        self, request: pb.ArchiveDocumentRequest, context: grpc.ServicerContext
    ) -> pb.Document:
        with self._uow() as uow:
            document = usecases.archive_document(uow, request.document_id)
            uow.commit()
            return document_message(document)

    def ListDocuments(
        self, request: pb.ListDocumentsRequest, context: grpc.ServicerContext
    ) -> pb.ListDocumentsResponse:
        page = Page.of(request.page_size, request.page_token)
        category = optional_choice("category", request.category, DocumentCategory)
        state = optional_choice("archive_state", request.archive_state, ArchiveState)
        with self._read() as session:
            rows = usecases.list_documents(
                session, request.project_id, category, state, page.fetch, page.offset
            )
            return pb.ListDocumentsResponse(
                documents=[document_message(d) for d in page.rows(rows)],
                next_page_token=page.next_token(rows),
            )

    def RecordSiteVisit(
        self, request: pb.RecordSiteVisitRequest, context: grpc.ServicerContext
    ) -> pb.SiteVisit:
        command = NewSiteVisit.parse(
            visit_date=request.visit_date,
            visitors=list(request.visitors),
            interviewees=list(request.interviewees),
            processes_observed=request.processes_observed,
            observations=request.observations,
        )
        with self._uow() as uow:
            visit = usecases.record_site_visit(uow, request.project_id, command)
            uow.commit()
            return site_visit_message(visit)

    def RecordAnalysis(self, request: pb.RecordAnalysisRequest, context: grpc.ServicerContext) -> pb.Analysis:
        with renamed_fields(kind="findings.kind", description="findings.description"):
            findings = [
                NewFinding.parse(kind=f.kind, description=f.description, risk_category=f.risk_category)
                for f in request.findings
            ]
        with self._uow() as uow:
            analysis, rows = usecases.record_analysis(
                uow, self._deps.risks, request.project_id, findings, request.request_id
            )
            uow.commit()
            return analysis_message(analysis, rows)

    # 3.3

    def SubmitSolution(self, request: pb.SubmitSolutionRequest, context: grpc.ServicerContext) -> pb.Solution:
        with renamed_fields(kind="artefacts.kind", title="artefacts.title", link="artefacts.link"):
            artefacts = [Artefact.parse(kind=a.kind, title=a.title, link=a.link) for a in request.artefacts]
        with self._uow() as uow:
            solution = usecases.submit_solution(uow, request.project_id, request.summary, artefacts)
            uow.commit()
            return solution_message(solution, [])

    def ReviewSolution(self, request: pb.ReviewSolutionRequest, context: grpc.ServicerContext) -> pb.Solution:
        with renamed_fields(review_comments="comments"):
            verdict = ExpertReview.parse(
                verdict=request.verdict,
                comments=request.comments,
                reviewer=request.reviewer,
                criteria=review_criteria(request.criteria),
            )
        with self._uow() as uow:
            solution = usecases.review_solution(uow, request.solution_id, verdict)
            reviews = usecases.solution_reviews(uow.session, solution.solution_id)
            uow.commit()
            return solution_message(solution, reviews)

    def ListSolutions(
        self, request: pb.ListSolutionsRequest, context: grpc.ServicerContext
    ) -> pb.ListSolutionsResponse:
        with self._read() as session:
            rows = usecases.solutions(session, request.project_id)
            return pb.ListSolutionsResponse(solutions=[solution_message(s, r) for s, r in rows])

    # 3.4

    def StartExecution(self, request: pb.StartExecutionRequest, context: grpc.ServicerContext) -> pb.WorkPlan:
        with self._uow() as uow:
            plan = usecases.start_execution(uow, request.project_id)
            uow.commit()
            return plan_message(plan)

    def GetWorkPlan(self, request: pb.GetWorkPlanRequest, context: grpc.ServicerContext) -> pb.WorkPlan:
        with self._read() as session:
            return plan_message(usecases.work_plan(session, request.project_id))

    def AddTask(self, request: pb.AddTaskRequest, context: grpc.ServicerContext) -> pb.Task:
        planned = PlannedTask.parse(
            name=request.name,
            planned_start=request.planned_start,
            planned_end=request.planned_end,
            budget=request.budget,
        )
        with self._uow() as uow:
            task = usecases.add_task(uow, request.project_id, planned, request.milestone_id)
            _require_team_of(uow.session, task.project_id)  # before the commit
            uow.commit()
            return task_message(task)

    def UpdateTask(self, request: pb.UpdateTaskRequest, context: grpc.ServicerContext) -> pb.Task:
        update = TaskUpdate.parse(
            actual_start=request.actual_start if request.HasField("actual_start") else None,
            actual_end=request.actual_end if request.HasField("actual_end") else None,
            actual_cost=request.actual_cost if request.HasField("actual_cost") else None,
            progress=request.progress if request.HasField("progress") else None,
        )
        with self._uow() as uow:
            task = usecases.update_task(uow, request.task_id, update)
            _require_team_of(uow.session, task.project_id)  # before the commit
            uow.commit()
            return task_message(task)

    def RecordMilestoneReached(
        self, request: pb.RecordMilestoneReachedRequest, context: grpc.ServicerContext
    ) -> pb.Milestone:
        with self._uow() as uow:
            milestone = usecases.record_milestone_reached(
                uow, request.milestone_id, iso_date("actual_date", request.actual_date)
            )
            _require_team_of(uow.session, milestone.project_id)  # before the commit
            uow.commit()
            return milestone_message(milestone)

    def RecordQualityCheck(
        self, request: pb.RecordQualityCheckRequest, context: grpc.ServicerContext
    ) -> pb.QualityCheck:
        with self._uow() as uow:
            check = usecases.record_quality_check(uow, request.task_id, request.passed, request.notes)
            _require_team_of(uow.session, check.project_id)  # before the commit
            uow.commit()
            return quality_check_message(check)

    def RecordMeeting(self, request: pb.RecordMeetingRequest, context: grpc.ServicerContext) -> pb.Meeting:
        command = NewMeeting.parse(
            held_on=request.held_on,
            progress_report=request.progress_report,
            problems=request.problems,
            decisions=list(request.decisions),
            internal_updates=request.internal_updates,
        )
        with self._uow() as uow:
            meeting = usecases.record_meeting(uow, request.project_id, command)
            uow.commit()
            return meeting_message(meeting)

    def EvaluateIndicators(
        self, request: pb.EvaluateIndicatorsRequest, context: grpc.ServicerContext
    ) -> pb.IndicatorSnapshot:
        as_of = iso_date("as_of", request.as_of) if request.as_of else None
        with self._uow() as uow:
            snapshot, _ = usecases.evaluate_indicators(uow, self._deps.thresholds, request.project_id, as_of)
            uow.commit()
            return snapshot_message(snapshot)

    def ListIndicatorSnapshots(
        self, request: pb.ListIndicatorSnapshotsRequest, context: grpc.ServicerContext
    ) -> pb.ListIndicatorSnapshotsResponse:
        page = Page.of(request.page_size, request.page_token)
        with self._read() as session:
            rows = usecases.snapshots(session, request.project_id, page.fetch, page.offset)
            return pb.ListIndicatorSnapshotsResponse(
                snapshots=[snapshot_message(s) for s in page.rows(rows)],
                next_page_token=page.next_token(rows),
            )

    def RecordCorrectiveAction(
        self, request: pb.RecordCorrectiveActionRequest, context: grpc.ServicerContext
    ) -> pb.CorrectiveAction:
        command = NewCorrectiveAction.parse(action=request.action, owner=request.owner)
        with self._uow() as uow:
            action, indicators = usecases.record_corrective_action(uow, request.project_id, command)
            uow.commit()
            return corrective_action_message(action, indicators)

    def CompleteExecution(
        self, request: pb.CompleteExecutionRequest, context: grpc.ServicerContext
    ) -> pb.Project:
        with self._uow() as uow:
            project = usecases.complete_execution(uow, request.project_id, request.completion_summary)
            reply = project_message(project, usecases.team_of(uow.session, project.project_id))
            uow.commit()
            return reply

    # 3.5

    def LogCommunication(
        self, request: pb.LogCommunicationRequest, context: grpc.ServicerContext
    ) -> pb.Communication:
        command = NewCommunication.parse(
            direction=request.direction,
            kind=request.kind,
            counterpart=request.counterpart,
            summary=request.summary,
        )
        with self._uow() as uow:
            entry = usecases.log_communication(uow, request.project_id, command)
            _require_team_of(uow.session, entry.project_id)  # before the commit
            uow.commit()
            return communication_message(entry)

    def ListCommunications(
        self, request: pb.ListCommunicationsRequest, context: grpc.ServicerContext
    ) -> pb.ListCommunicationsResponse:
        page = Page.of(request.page_size, request.page_token)
        direction = optional_choice("direction", request.direction, Direction)
        with self._read() as session:
            rows = usecases.communications(session, request.project_id, direction, page.fetch, page.offset)
            return pb.ListCommunicationsResponse(
                communications=[communication_message(c) for c in page.rows(rows)],
                next_page_token=page.next_token(rows),
            )

    def SendProgressReport(
        self, request: pb.SendProgressReportRequest, context: grpc.ServicerContext
    ) -> pb.Communication:
        with self._uow() as uow:
            entry = usecases.send_progress_report(uow, request.project_id)
            uow.commit()
            return communication_message(entry)

    def RequestChange(
        self, request: pb.RequestChangeRequest, context: grpc.ServicerContext
    ) -> pb.ChangeRequest:
        command = NewChangeRequest.parse(description=request.description, requested_by=request.requested_by)
        with self._uow() as uow:
            change = usecases.request_change(uow, request.project_id, command, request.request_id)
            _require_client_of(uow.session, change.project_id)  # before the commit
            uow.commit()
            return change_message(change)

    def RespondToChange(
        self, request: pb.RespondToChangeRequest, context: grpc.ServicerContext
    ) -> pb.ChangeRequest:
        answer = ChangeResponse.parse(decision=request.decision, response=request.response)
        with self._uow() as uow:
            change = usecases.respond_to_change(uow, request.change_request_id, answer)
            uow.commit()
            return change_message(change)

    def ListChangeRequests(
        self, request: pb.ListChangeRequestsRequest, context: grpc.ServicerContext
    ) -> pb.ListChangeRequestsResponse:
        with self._read() as session:
            rows = usecases.change_requests(session, request.project_id)
            return pb.ListChangeRequestsResponse(change_requests=[change_message(c) for c in rows])

    # 4.1-4.3

    def CompileDeliverables(
        self, request: pb.CompileDeliverablesRequest, context: grpc.ServicerContext
    ) -> pb.DeliverableSet:
        with renamed_fields(name="deliverables.name", link="deliverables.link"):
            items = [DeliverableItem.parse(name=d.name, link=d.link) for d in request.deliverables]
        with self._uow() as uow:
            deliverable_set = usecases.compile_deliverables(
                uow, request.project_id, items, request.results_summary
            )
            uow.commit()
            return set_message(deliverable_set, [])

    def ReviewDeliverables(
        self, request: pb.ReviewDeliverablesRequest, context: grpc.ServicerContext
    ) -> pb.DeliverableSet:
        review = MaterialsReview.parse(
            logic_ok=request.logic_ok,
            consistency_ok=request.consistency_ok,
            accuracy_ok=request.accuracy_ok,
            contract_conformance_ok=request.contract_conformance_ok,
            comments=request.comments,
        )
        with self._uow() as uow:
            reviewed = usecases.review_deliverables(uow, request.project_id, review, request.reviewer)
            reviews = usecases.deliverable_reviews(uow.session, reviewed.deliverable_set_id)
            uow.commit()
            return set_message(reviewed, reviews)

    def ListDeliverableSets(
        self, request: pb.ListDeliverableSetsRequest, context: grpc.ServicerContext
    ) -> pb.ListDeliverableSetsResponse:
        with self._read() as session:
            rows = usecases.deliverable_sets(session, request.project_id)
            return pb.ListDeliverableSetsResponse(deliverable_sets=[set_message(s, r) for s, r in rows])

    def PlanOnsiteDelivery(
        self, request: pb.PlanOnsiteDeliveryRequest, context: grpc.ServicerContext
    ) -> pb.Delivery:
        plan = OnsitePlan.parse(
            delivery_time=request.delivery_time,
            place=request.place,
            attendees=list(request.attendees),
            preparations=list(request.preparations),
        )
        with self._uow() as uow:
            delivery = usecases.plan_onsite_delivery(uow, request.project_id, plan)
            uow.commit()
            return delivery_message(delivery)

    def PlanOnlineDelivery(
        self, request: pb.PlanOnlineDeliveryRequest, context: grpc.ServicerContext
    ) -> pb.Delivery:
        plan = OnlinePlan.parse(platform=request.platform, channel_tested=request.channel_tested)
        with self._uow() as uow:
            delivery = usecases.plan_online_delivery(uow, request.project_id, plan)
            uow.commit()
            return delivery_message(delivery)

    def SendDeliverablesOnline(
        self, request: pb.SendDeliverablesOnlineRequest, context: grpc.ServicerContext
    ) -> pb.Delivery:
        with self._uow() as uow:
            delivery = usecases.send_deliverables_online(uow, request.delivery_id)
            uow.commit()
            return delivery_message(delivery)

    def RecordDelivery(self, request: pb.RecordDeliveryRequest, context: grpc.ServicerContext) -> pb.Delivery:
        with self._uow() as uow:
            delivery = usecases.record_delivery(uow, request.delivery_id, request.client_feedback)
            uow.commit()
            return delivery_message(delivery)

    def ListDeliveries(
        self, request: pb.ListDeliveriesRequest, context: grpc.ServicerContext
    ) -> pb.ListDeliveriesResponse:
        with self._read() as session:
            rows = usecases.deliveries(session, request.project_id)
            return pb.ListDeliveriesResponse(deliveries=[delivery_message(d) for d in rows])

    # 4.4

    def RequestAcceptance(
        self, request: pb.RequestAcceptanceRequest, context: grpc.ServicerContext
    ) -> pb.Acceptance:
        command = AcceptanceRequest.parse(
            acceptance_date=request.acceptance_date, content=request.content, criteria=list(request.criteria)
        )
        with self._uow() as uow:
            acceptance = usecases.request_acceptance(uow, request.project_id, command)
            reply = acceptance_message(acceptance, usecases.items_of(uow.session, acceptance.acceptance_id))
            _require_client_of(uow.session, acceptance.project_id)  # before the commit
            uow.commit()
            return reply

    def RecordAcceptanceReport(
        self, request: pb.RecordAcceptanceReportRequest, context: grpc.ServicerContext
    ) -> pb.Acceptance:
        report = AcceptanceReport.parse(
            results=[(r.criterion, r.passed, r.comment) for r in request.results],
            conclusion=request.conclusion,
            comments=request.comments,
            reported_by=request.reported_by,
        )
        with self._uow() as uow:
            acceptance = usecases.record_acceptance_report(
                uow, request.acceptance_id, report, request.request_id
            )
            reply = acceptance_message(acceptance, usecases.items_of(uow.session, acceptance.acceptance_id))
            _require_client_of(uow.session, acceptance.project_id)  # before the commit
            uow.commit()
            return reply

    def RecordRectificationItems(
        self, request: pb.RecordRectificationItemsRequest, context: grpc.ServicerContext
    ) -> pb.Acceptance:
        with renamed_fields(description="items.description", owner="items.owner", due_date="items.due_date"):
            items = [
                RectificationItem.parse(description=i.description, owner=i.owner, due_date=i.due_date)
                for i in request.items
            ]
        with self._uow() as uow:
            acceptance, _ = usecases.record_rectification_items(uow, request.acceptance_id, items)
            reply = acceptance_message(acceptance, usecases.items_of(uow.session, acceptance.acceptance_id))
            _require_client_of(uow.session, acceptance.project_id)  # before the commit
            uow.commit()
            return reply

    def CloseRectificationItem(
        self, request: pb.CloseRectificationItemRequest, context: grpc.ServicerContext
    ) -> pb.RectificationItem:
        with self._uow() as uow:
            item = usecases.close_rectification_item(uow, request.rectification_item_id, request.notes)
            uow.commit()
            return item_message(item)

    def ListAcceptances(
        self, request: pb.ListAcceptancesRequest, context: grpc.ServicerContext
    ) -> pb.ListAcceptancesResponse:
        with self._read() as session:
            return pb.ListAcceptancesResponse(
                acceptances=[
                    acceptance_message(a, usecases.items_of(session, a.acceptance_id))
                    for a in usecases.acceptances(session, request.project_id)
                ]
            )

    def CloseAcceptance(
        self, request: pb.CloseAcceptanceRequest, context: grpc.ServicerContext
    ) -> pb.Project:
        with self._uow() as uow:
            project = usecases.close_acceptance(uow, request.project_id, request.acceptance_id)
            reply = project_message(project, usecases.team_of(uow.session, project.project_id))
            uow.commit()
            return reply


def review_criteria(
    criteria: Iterable[pb.CriterionReview],
) -> dict[ReviewCriterion, tuple[object, object]]:
    """3.3.2: the request's review criteria by criterion, each at most once."""
    found: dict[ReviewCriterion, tuple[object, object]] = {}
    for c in criteria:
        criterion = choice("criteria.criterion", c.criterion, ReviewCriterion)
        if criterion in found:
            raise InvalidArgument("criteria.criterion", f"{criterion.value!r} is given twice")
        found[criterion] = (c.verdict, c.comments)
    return found


def _require_team_of(session: Session, project_id: str) -> None:
    """Only the project's recorded team writes its execution records (platform/policy.py)."""
    members = session.scalars(select(TeamMember.name).where(TeamMember.project_id == project_id))
    policy.require_team_member(current_caller(), project_id, members)


def _require_client_of(session: Session, project_id: str) -> None:
    """A client acts only on its own engagement's project (platform/policy.py)."""
    project = session.get(Project, project_id)
    policy.require_engagement(current_caller(), project.engagement_id if project else "")
