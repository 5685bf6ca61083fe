"""The delivery gRPC API against a real database (SQLite, PostgreSQL), real NATS and its real peers:
contracts (with crm) and risk, checked over their own APIs."""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from consultflow.api.contracts.v1 import contracts_pb2
from consultflow.api.delivery.v1 import delivery_pb2 as pb
from consultflow.delivery import app
from consultflow.platform.bootstrap import Context, Parts
from tests.support.components import closed_address
from tests.support.dates import day
from tests.support.delivery import (
    Peers,
    RunningDelivery,
    running_delivery,
    status_events,
    types_of,
)
from tests.support.rpc import refused


@pytest.fixture
def delivery(tmp_path: Path, nats_url: str, database_url: str, peers: Peers) -> Iterator[RunningDelivery]:
    with running_delivery(
        tmp_path, nats_url, database_url, peers.contracts_address, peers.risk_address
    ) as running:
        yield running


TEAM = [
    pb.TeamMemberInput(name="Wang Fang", role="project_manager"),
    pb.TeamMemberInput(name="Li Lei", role="consultant", duties="entry strategy"),
    pb.TeamMemberInput(name="Chen Jing", role="analyst"),
    pb.TeamMemberInput(name="Liu Yang", role="assistant"),
]


def test_a_project_from_contract_to_follow_up(
    delivery: RunningDelivery,
    peers: Peers,
    contract: contracts_pb2.Contract,
    engagement_id: str,
    nats_url: str,
) -> None:
    stub = delivery.stub
    contract_id, engagement = contract.contract_id, engagement_id

    # 3.1 open from the signed contract; opening again returns the same project
    project = stub.OpenProject(pb.OpenProjectRequest(contract_id=contract_id, engagement_id=engagement))
    assert (project.phase, project.deadline, project.service_start) == ("opened", day(60), day(-30))
    assert list(project.contract_deliverables) == [
        "Diagnosis report",
        "Entry strategy",
        "Implementation roadmap",
    ]
    assert [m.name for m in project.contract_milestones] == ["Diagnosis", "Final report"]
    assert stub.OpenProject(pb.OpenProjectRequest(contract_id=contract_id)).project_id == project.project_id
    pid = project.project_id
    assert stub.GetProject(pb.GetProjectRequest(project_id=pid)).engagement_id == engagement
    assert [
        p.project_id for p in stub.ListProjects(pb.ListProjectsRequest(engagement_id=engagement)).projects
    ] == [pid]

    team = stub.FormTeam(pb.FormTeamRequest(project_id=pid, members=TEAM)).team
    assert (team[0].name, team[0].role) == ("Wang Fang", "project_manager")
    assert team[1].duties == "entry strategy" and team[2].duties.startswith("collects")
    kickoff = stub.RecordKickoff(
        pb.RecordKickoffRequest(
            project_id=pid,
            kickoff_date=day(-29),
            attendees=["Wang Fang", "Li Lei", "Chen Jing"],
            briefing="Background, goals, tasks, schedule and quality requirements",
            rules_agreed="Weekly report on Fridays; shared drive; respond within a day",
            materials_handed_out=["contract", "proposal", "work manual"],
        )
    )
    assert list(kickoff.materials_handed_out) == ["contract", "proposal", "work manual"]

    # 3.2 research
    archived = stub.AddDocument(
        pb.AddDocumentRequest(
            project_id=pid, title="EU lighting market 2025", category="market", source="Eurostat"
        )
    )
    collected = stub.AddDocument(
        pb.AddDocumentRequest(
            project_id=pid,
            title="Sales ledger",
            category="client_internal",
            source="client",
            collect_only=True,
        )
    )
    assert (archived.archive_state, archived.classification) == ("archived", "internal")
    assert (collected.archive_state, collected.classification) == ("collected", "confidential")
    assert stub.ArchiveDocument(
        pb.ArchiveDocumentRequest(document_id=collected.document_id)
    ).archived_at.seconds
    listed = stub.ListDocuments(
        pb.ListDocumentsRequest(project_id=pid, archive_state="archived", page_size=1)
    )
    assert len(listed.documents) == 1 and listed.next_page_token
    stub.RecordSiteVisit(
        pb.RecordSiteVisitRequest(
            project_id=pid,
            visit_date=day(-20),
            visitors=["Li Lei"],
            interviewees=["Export manager", "COO"],
            processes_observed="Order handling, export documentation",
            observations="Manual customs paperwork causes two-week delays",
        )
    )
    findings = [
        pb.FindingInput(kind="problem", description="Customs paperwork is manual"),
        pb.FindingInput(kind="opportunity", description="EU energy-label demand"),
        pb.FindingInput(
            kind="risk", description="CE certification may take 6 months", risk_category="technical"
        ),
    ]
    analysis_request = f"analysis-{engagement}"  # request ids are unique across projects
    analysis = stub.RecordAnalysis(
        pb.RecordAnalysisRequest(project_id=pid, findings=findings, request_id=analysis_request)
    )
    again = stub.RecordAnalysis(
        pb.RecordAnalysisRequest(project_id=pid, findings=findings, request_id=analysis_request)
    )
    assert again.analysis_id == analysis.analysis_id
    # the risk service registered the one risk found, once, under the request id derived from the analysis
    (registered,) = peers.risks_of(engagement)
    assert analysis.risks_reported == 1 and analysis.findings[2].risk_id == registered.risk_id
    assert (registered.engagement_id, registered.stage, registered.category, registered.description) == (
        engagement,
        "implementation",
        "technical",
        "CE certification may take 6 months",
    )
    assert peers.risk_registered_under(f"delivery:{analysis_request}:2", engagement) == registered.risk_id
    assert len(peers.risks_of(engagement)) == 1

    # 3.3 solution: revise, then approve
    artefacts = [pb.Artefact(kind="flow_chart", title="Export flow", link="https://wiki.example/flow")]
    first = stub.SubmitSolution(
        pb.SubmitSolutionRequest(project_id=pid, summary="Entry via distributors", artefacts=artefacts)
    )
    review_criteria = [
        pb.CriterionReview(criterion="soundness", verdict="met", comments="Sound"),
        pb.CriterionReview(criterion="feasibility", verdict="met", comments="Feasible"),
        pb.CriterionReview(criterion="innovation", verdict="met", comments="New channel"),
        pb.CriterionReview(criterion="risk_response", verdict="not_met", comments="No currency hedge"),
    ]
    refused(
        lambda: stub.ReviewSolution(
            pb.ReviewSolutionRequest(
                solution_id=first.solution_id, verdict="revise", comments="x", criteria=review_criteria[:2]
            )
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
        "innovation_verdict",
    )
    revised = stub.ReviewSolution(
        pb.ReviewSolutionRequest(
            solution_id=first.solution_id,
            verdict="revise",
            comments="Add a risk response",
            reviewer="Expert Zhou",
            criteria=review_criteria,
        )
    )
    assert revised.status == "revise" and revised.reviews[0].reviewer == "Expert Zhou"
    assert [(c.criterion, c.verdict) for c in revised.reviews[0].criteria] == [
        ("soundness", "met"),
        ("feasibility", "met"),
        ("innovation", "met"),
        ("risk_response", "not_met"),
    ]
    second = stub.SubmitSolution(
        pb.SubmitSolutionRequest(project_id=pid, summary="Distributors + own hub", artefacts=artefacts)
    )
    assert second.version == 2
    assert (
        stub.ReviewSolution(
            pb.ReviewSolutionRequest(solution_id=second.solution_id, verdict="approved")
        ).status
        == "approved"
    )
    assert [s.status for s in stub.ListSolutions(pb.ListSolutionsRequest(project_id=pid)).solutions] == [
        "revise",
        "approved",
    ]

    # 3.4 execution: baseline from the contract's milestones, a budgeted task, progress and quality
    plan = stub.StartExecution(pb.StartExecutionRequest(project_id=pid))
    assert [(m.name, m.planned_date) for m in plan.milestones] == [
        ("Diagnosis", day(-10)),
        ("Final report", day(50)),
    ]
    assert [(t.planned_start, t.planned_end) for t in plan.tasks] == [
        (day(-30), day(-10)),
        (day(-10), day(50)),
    ]
    task = stub.AddTask(
        pb.AddTaskRequest(
            project_id=pid,
            name="Distributor screening",
            planned_start=day(-20),
            planned_end=day(19),
            budget="1000",
        )
    )
    updated = stub.UpdateTask(
        pb.UpdateTaskRequest(task_id=task.task_id, actual_start=day(-20), actual_cost="600", progress=50)
    )
    assert (updated.progress, updated.actual_cost, updated.actual_end) == (50, "600.00", "")
    reached = stub.RecordMilestoneReached(
        pb.RecordMilestoneReachedRequest(milestone_id=plan.milestones[0].milestone_id, actual_date=day(-9))
    )
    assert reached.actual_date == day(-9)
    stub.RecordQualityCheck(
        pb.RecordQualityCheckRequest(task_id=task.task_id, passed=False, notes="Sources missing")
    )
    stub.RecordQualityCheck(pb.RecordQualityCheckRequest(task_id=task.task_id, passed=True))
    assert stub.GetWorkPlan(pb.GetWorkPlanRequest(project_id=pid)).overall_progress == 50
    meeting = stub.RecordMeeting(
        pb.RecordMeetingRequest(
            project_id=pid, progress_report="Screening half done", decisions=["Hire a customs broker"]
        )
    )
    assert list(meeting.decisions) == ["Hire a customs broker"]

    # 3.4.2 indicators: only the budgeted task weighs; PV = 1000 × 21/40 = 525, EV = 500, AC = 600
    snapshot = stub.EvaluateIndicators(pb.EvaluateIndicatorsRequest(project_id=pid, as_of=day(0)))
    assert (snapshot.weighting, snapshot.planned_value, snapshot.earned_value) == (
        "budget",
        "525.0000",
        "500.0000",
    )
    assert snapshot.schedule_deviation_rate == pytest.approx(0.0476)  # 25 / 525: green
    assert snapshot.cost_overrun_rate == pytest.approx(0.2)  # 100 / 500: red
    assert snapshot.quality_pass_rate == pytest.approx(0.5)  # 1 of 2 checks: red
    assert (snapshot.schedule_status, snapshot.cost_status, snapshot.quality_status) == (
        "green",
        "red",
        "red",
    )
    assert list(snapshot.breached_indicators) == ["cost_overrun_rate", "quality_pass_rate"]
    assert len(stub.ListIndicatorSnapshots(pb.ListIndicatorSnapshotsRequest(project_id=pid)).snapshots) == 1
    action = stub.RecordCorrectiveAction(
        pb.RecordCorrectiveActionRequest(
            project_id=pid, action="Re-plan screening; peer review of sources", owner="Wang Fang"
        )
    )
    assert list(action.indicators) == ["cost_overrun_rate", "quality_pass_rate"]

    # 3.5 communication and a change of needs
    stub.LogCommunication(
        pb.LogCommunicationRequest(
            project_id=pid,
            direction="internal",
            kind="report",
            counterpart="sales dept",
            summary="Weekly report",
        )
    )
    report = stub.SendProgressReport(pb.SendProgressReportRequest(project_id=pid))
    assert report.kind == "progress_report" and "Overall progress" in report.summary
    change = stub.RequestChange(
        pb.RequestChangeRequest(
            project_id=pid, description="Add the UK market", requested_by="COO", request_id="CR-1"
        )
    )
    assert (
        stub.RequestChange(
            pb.RequestChangeRequest(project_id=pid, description="Add the UK market", request_id="CR-1")
        ).change_request_id
        == change.change_request_id
    )
    answered = stub.RespondToChange(
        pb.RespondToChangeRequest(
            change_request_id=change.change_request_id, decision="deferred", response="After phase 1"
        )
    )
    assert answered.status == "deferred"
    assert len(stub.ListChangeRequests(pb.ListChangeRequestsRequest(project_id=pid)).change_requests) == 1
    external = stub.ListCommunications(
        pb.ListCommunicationsRequest(project_id=pid, direction="external")
    ).communications
    assert {c.kind for c in external} == {"progress_report", "change_request", "answer"}
    done = stub.CompleteExecution(
        pb.CompleteExecutionRequest(project_id=pid, completion_summary="Roadmap agreed")
    )
    assert done.phase == "executed"

    # 4.1 deliverables: a set that misses a contracted deliverable is sent back, the next one passes
    first_set = stub.CompileDeliverables(
        pb.CompileDeliverablesRequest(
            project_id=pid,
            deliverables=[
                pb.DeliverableInput(name="Diagnosis report"),
                pb.DeliverableInput(name="Entry strategy"),
            ],
            results_summary="Diagnosis and strategy",
        )
    )
    assert list(first_set.missing_contract_deliverables) == ["Implementation roadmap"]
    sent_back = stub.ReviewDeliverables(
        pb.ReviewDeliverablesRequest(
            project_id=pid,
            logic_ok=True,
            consistency_ok=True,
            accuracy_ok=True,
            contract_conformance_ok=False,
            comments="Roadmap missing",
        )
    )
    assert sent_back.status == "revise" and not sent_back.reviews[0].approved
    names = ["Diagnosis report", "Entry strategy", "Implementation roadmap"]
    second_set = stub.CompileDeliverables(
        pb.CompileDeliverablesRequest(
            project_id=pid,
            deliverables=[pb.DeliverableInput(name=n) for n in names],
            results_summary="Complete set",
        )
    )
    assert [d.version for d in second_set.deliverables] == [
        2,
        2,
        1,
    ] and not second_set.missing_contract_deliverables
    approved = stub.ReviewDeliverables(
        pb.ReviewDeliverablesRequest(
            project_id=pid, logic_ok=True, consistency_ok=True, accuracy_ok=True, contract_conformance_ok=True
        )
    )
    assert approved.status == "approved"
    assert [
        s.status
        for s in stub.ListDeliverableSets(pb.ListDeliverableSetsRequest(project_id=pid)).deliverable_sets
    ] == [
        "revise",
        "approved",
    ]

    # 4.2-4.3 delivery on site and online
    onsite = stub.PlanOnsiteDelivery(
        pb.PlanOnsiteDeliveryRequest(
            project_id=pid,
            delivery_time=f"{day(1)}T09:30:00+08:00",
            place="Client HQ, Shenzhen",
            attendees=["Wang Fang", "COO"],
            preparations=["projector", "bound reports"],
        )
    )
    assert onsite.mode == "onsite" and onsite.status == "planned"
    delivered = stub.RecordDelivery(
        pb.RecordDeliveryRequest(delivery_id=onsite.delivery_id, client_feedback="Clear")
    )
    assert delivered.status == "delivered"
    refused(
        lambda: stub.PlanOnlineDelivery(pb.PlanOnlineDeliveryRequest(project_id=pid, platform="email")),
        grpc.StatusCode.FAILED_PRECONDITION,
        "channel_tested",
    )
    online = stub.PlanOnlineDelivery(
        pb.PlanOnlineDeliveryRequest(project_id=pid, platform="email", channel_tested=True)
    )
    assert (
        stub.SendDeliverablesOnline(pb.SendDeliverablesOnlineRequest(delivery_id=online.delivery_id)).status
        == "sent"
    )
    stub.RecordDelivery(pb.RecordDeliveryRequest(delivery_id=online.delivery_id))
    assert len(stub.ListDeliveries(pb.ListDeliveriesRequest(project_id=pid)).deliveries) == 2

    # 4.4 acceptance: a failed round, rectification, no new round while items are open, then a pass
    criteria = ["Report complete", "Roadmap feasible"]
    round_one = stub.RequestAcceptance(
        pb.RequestAcceptanceRequest(
            project_id=pid, acceptance_date=day(3), content="All three deliverables", criteria=criteria
        )
    )
    assert (round_one.round, round_one.status) == (1, "requested")

    def request_round() -> pb.Acceptance:
        return stub.RequestAcceptance(
            pb.RequestAcceptanceRequest(
                project_id=pid, acceptance_date=day(10), content="Again", criteria=criteria
            )
        )

    refused(request_round, grpc.StatusCode.FAILED_PRECONDITION, "awaits the client's report")
    failed = stub.RecordAcceptanceReport(
        pb.RecordAcceptanceReportRequest(
            acceptance_id=round_one.acceptance_id,
            results=[
                pb.CriterionResult(criterion="Report complete", passed=True),
                pb.CriterionResult(criterion="Roadmap feasible", passed=False, comment="Costs unclear"),
            ],
            conclusion="failed",
            reported_by="COO",
            request_id="REP-1",
        )
    )
    assert (failed.status, failed.conclusion) == ("failed", "failed")
    refused(request_round, grpc.StatusCode.FAILED_PRECONDITION, "record its rectification items first")
    rectifying = stub.RecordRectificationItems(
        pb.RecordRectificationItemsRequest(
            acceptance_id=round_one.acceptance_id,
            items=[
                pb.RectificationItemInput(description="Cost the roadmap", owner="Li Lei", due_date=day(7)),
                pb.RectificationItemInput(description="Add a pilot plan", owner="Chen Jing", due_date=day(8)),
            ],
        )
    )
    assert rectifying.status == "rectifying" and len(rectifying.rectification_items) == 2
    refused(request_round, grpc.StatusCode.FAILED_PRECONDITION, "2 rectification item(s) are still open")
    first_item, second_item = rectifying.rectification_items
    stub.CloseRectificationItem(
        pb.CloseRectificationItemRequest(
            rectification_item_id=first_item.rectification_item_id, notes="Costed"
        )
    )
    refused(request_round, grpc.StatusCode.FAILED_PRECONDITION, "1 rectification item(s) are still open")
    refused(
        lambda: stub.CloseAcceptance(
            pb.CloseAcceptanceRequest(project_id=pid, acceptance_id=round_one.acceptance_id)
        ),
        grpc.StatusCode.FAILED_PRECONDITION,
        "only a passed report",
    )
    closed = stub.CloseRectificationItem(
        pb.CloseRectificationItemRequest(
            rectification_item_id=second_item.rectification_item_id, notes="Pilot planned"
        )
    )
    assert closed.status == "closed"
    round_two = request_round()
    assert round_two.round == 2
    passed = stub.RecordAcceptanceReport(
        pb.RecordAcceptanceReportRequest(
            acceptance_id=round_two.acceptance_id,
            results=[pb.CriterionResult(criterion=c, passed=True) for c in criteria],
            conclusion="passed",
        )
    )
    assert passed.status == "passed"
    followed = stub.CloseAcceptance(
        pb.CloseAcceptanceRequest(project_id=pid, acceptance_id=round_two.acceptance_id)
    )
    assert followed.phase == "follow_up" and followed.follow_up_at.seconds
    rounds = stub.ListAcceptances(pb.ListAcceptancesRequest(project_id=pid)).acceptances
    assert [(a.round, a.status) for a in rounds] == [(1, "rectified"), (2, "closed")]
    refused(
        lambda: stub.RecordMeeting(pb.RecordMeetingRequest(project_id=pid, progress_report="late")),
        grpc.StatusCode.FAILED_PRECONDITION,
        "follow-up",
    )

    # every change was announced on STATUS, correlated with the engagement
    events = status_events(nats_url, lambda es: "project.follow_up" in types_of(es))
    seen = types_of(events)
    for expected in (
        "project.opened",
        "team.formed",
        "kickoff.recorded",
        "document.archived",
        "document.collected",
        "site_visit.recorded",
        "analysis.recorded",
        "solution.submitted",
        "solution.revision_requested",
        "solution.approved",
        "execution.started",
        "task.added",
        "task.updated",
        "milestone.reached",
        "quality_check.recorded",
        "meeting.recorded",
        "indicators.evaluated",
        "indicator.breached",
        "corrective_action.recorded",
        "communication.logged",
        "progress_report.sent",
        "change.requested",
        "change.responded",
        "execution.completed",
        "deliverables.compiled",
        "deliverables.revision_requested",
        "deliverables.approved",
        "delivery.planned",
        "delivery.sent",
        "delivery.delivered",
        "acceptance.requested",
        "acceptance.reported",
        "rectification.planned",
        "rectification.closed",
        "acceptance.rectified",
        "acceptance.closed",
        "project.follow_up",
    ):
        assert expected in seen, expected
    assert all(
        e.correlation["engagement_id"] == engagement and e.correlation["project_id"] == pid for e in events
    )
    assert seen.count("change.requested") == 1 and seen.count("analysis.recorded") == 1
    breaches = [json.loads(e.payload_json) for e in events if e.type == "indicator.breached"]
    assert sorted((b["indicator"], b["status"]) for b in breaches) == [
        ("cost_overrun_rate", "red"),
        ("quality_pass_rate", "red"),
    ]
    assert breaches[0]["engagement_id"] == engagement and isinstance(breaches[0]["value"], float)
    reports = [json.loads(e.payload_json) for e in events if e.type == "acceptance.reported"]
    assert [(r["acceptance_round"], r["acceptance_conclusion"]) for r in reports] == [
        (1, "failed"),
        (2, "passed"),
    ]
    requested = [json.loads(e.payload_json) for e in events if e.type == "acceptance.requested"]
    assert requested[0]["project_team"] == ["Wang Fang", "Li Lei", "Chen Jing", "Liu Yang"], "4.4.2 support"
    change_event = next(json.loads(e.payload_json) for e in events if e.type == "change.requested")
    assert change_event["change_request_id"] == change.change_request_id


def test_bad_requests_get_precise_status_codes_naming_the_field(
    delivery: RunningDelivery, peers: Peers, contract: contracts_pb2.Contract, engagement_id: str
) -> None:
    stub = delivery.stub
    invalid, not_found, precondition = (
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.NOT_FOUND,
        grpc.StatusCode.FAILED_PRECONDITION,
    )
    refused(lambda: stub.OpenProject(pb.OpenProjectRequest()), invalid, "contract_id")
    refused(lambda: stub.OpenProject(pb.OpenProjectRequest(contract_id="C-404")), not_found, "C-404")
    refused(
        lambda: stub.OpenProject(
            pb.OpenProjectRequest(contract_id=contract.contract_id, engagement_id="E-9")
        ),
        invalid,
        "engagement_id",
    )
    # contracts on their way to signature: in legal review, and signed by the firm but not yet the client
    for status in ("in_legal_review", "signed_by_firm"):
        unsigned = peers.contract_in_state(f"{engagement_id}-{status}", status)
        refused(
            functools.partial(stub.OpenProject, pb.OpenProjectRequest(contract_id=unsigned.contract_id)),
            precondition,
            f"is {status}, not signed",
        )
    refused(lambda: stub.GetProject(pb.GetProjectRequest(project_id="nope")), not_found, "project")

    pid = stub.OpenProject(pb.OpenProjectRequest(contract_id=contract.contract_id)).project_id
    refused(
        lambda: stub.FormTeam(
            pb.FormTeamRequest(project_id=pid, members=[pb.TeamMemberInput(name="Li", role="consultant")])
        ),
        invalid,
        "project_manager",
    )
    refused(
        lambda: stub.FormTeam(
            pb.FormTeamRequest(project_id=pid, members=[pb.TeamMemberInput(name="Li", role="boss")])
        ),
        invalid,
        "members.role",
    )
    kickoff = pb.RecordKickoffRequest(
        project_id=pid, kickoff_date=day(0), attendees=["Li"], briefing="b", rules_agreed="r"
    )
    refused(lambda: stub.RecordKickoff(kickoff), precondition, "form the team")
    stub.FormTeam(pb.FormTeamRequest(project_id=pid, members=TEAM))
    refused(lambda: stub.RecordKickoff(kickoff), invalid, "attendees", "Wang Fang")
    refused(
        lambda: stub.RecordKickoff(pb.RecordKickoffRequest(project_id=pid, kickoff_date="next week")),
        invalid,
        "kickoff_date",
    )
    refused(
        lambda: stub.AddDocument(
            pb.AddDocumentRequest(project_id=pid, title="t", category="gossip", source="s")
        ),
        invalid,
        "category",
    )
    refused(
        lambda: stub.RecordSiteVisit(
            pb.RecordSiteVisitRequest(
                project_id=pid, visit_date=day(5), interviewees=["COO"], observations="o"
            )
        ),
        invalid,
        "visit_date",
    )
    refused(
        lambda: stub.RecordAnalysis(
            pb.RecordAnalysisRequest(
                project_id=pid,
                findings=[pb.FindingInput(kind="risk", description="x", risk_category="weather")],
            )
        ),
        invalid,
        "risk_category",
    )
    refused(
        lambda: stub.SubmitSolution(
            pb.SubmitSolutionRequest(
                project_id=pid, summary="s", artefacts=[pb.Artefact(kind="mind_map", link="ftp://x")]
            )
        ),
        invalid,
        "artefacts.link",
    )
    solution = stub.SubmitSolution(pb.SubmitSolutionRequest(project_id=pid, summary="s"))
    refused(
        lambda: stub.ReviewSolution(
            pb.ReviewSolutionRequest(solution_id=solution.solution_id, verdict="revise")
        ),
        invalid,
        "comments",
    )
    refused(
        lambda: stub.StartExecution(pb.StartExecutionRequest(project_id=pid)),
        precondition,
        "no approved solution",
    )
    refused(lambda: stub.GetWorkPlan(pb.GetWorkPlanRequest(project_id=pid)), precondition, "no work plan")
    stub.ReviewSolution(pb.ReviewSolutionRequest(solution_id=solution.solution_id, verdict="approved"))
    refused(
        lambda: stub.ReviewSolution(
            pb.ReviewSolutionRequest(solution_id=solution.solution_id, verdict="approved")
        ),
        precondition,
        "already reviewed",
    )
    plan = stub.StartExecution(pb.StartExecutionRequest(project_id=pid))
    refused(
        lambda: stub.StartExecution(pb.StartExecutionRequest(project_id=pid)), precondition, "already started"
    )
    task_id = plan.tasks[0].task_id
    for update, field in (
        (pb.UpdateTaskRequest(task_id=task_id, progress=101), "progress"),
        (pb.UpdateTaskRequest(task_id=task_id, progress=-5), "progress"),
        (pb.UpdateTaskRequest(task_id=task_id, actual_cost="-3"), "actual_cost"),
        (pb.UpdateTaskRequest(task_id=task_id, progress=20), "actual_start"),
        (
            pb.UpdateTaskRequest(task_id=task_id, actual_start=day(-5), actual_end=day(-6), progress=100),
            "actual_end",
        ),
        (pb.UpdateTaskRequest(task_id=task_id, actual_start=day(2)), "actual_start"),
    ):
        refused(functools.partial(stub.UpdateTask, update), invalid, field)
    refused(
        lambda: stub.AddTask(
            pb.AddTaskRequest(project_id=pid, name="t", planned_start=day(5), planned_end=day(4))
        ),
        invalid,
        "planned_end",
    )
    refused(
        lambda: stub.AddTask(
            pb.AddTaskRequest(project_id=pid, name="t", planned_start=day(5), planned_end=day(90))
        ),
        invalid,
        "planned_end",
        "deadline",
    )
    refused(
        lambda: stub.AddTask(
            pb.AddTaskRequest(
                project_id=pid, name="t", planned_start=day(1), planned_end=day(2), budget="1.234"
            )
        ),
        invalid,
        "budget",
    )
    refused(lambda: stub.UpdateTask(pb.UpdateTaskRequest(task_id="nope")), not_found, "task")
    refused(
        lambda: stub.RecordQualityCheck(pb.RecordQualityCheckRequest(task_id=task_id, passed=False)),
        invalid,
        "notes",
    )
    refused(
        lambda: stub.LogCommunication(
            pb.LogCommunicationRequest(project_id=pid, direction="external", kind="meeting", summary="s")
        ),
        invalid,
        "kind",
    )
    refused(
        lambda: stub.RespondToChange(
            pb.RespondToChangeRequest(change_request_id="nope", decision="accepted", response="r")
        ),
        not_found,
        "change request",
    )
    refused(
        lambda: stub.CompileDeliverables(
            pb.CompileDeliverablesRequest(
                project_id=pid, deliverables=[pb.DeliverableInput(name="x")], results_summary="s"
            )
        ),
        precondition,
        "execution is not complete",
    )
    refused(
        lambda: stub.PlanOnlineDelivery(
            pb.PlanOnlineDeliveryRequest(project_id=pid, platform="carrier pigeon")
        ),
        invalid,
        "platform",
    )
    refused(
        lambda: stub.PlanOnlineDelivery(
            pb.PlanOnlineDeliveryRequest(project_id=pid, platform="email", channel_tested=True)
        ),
        precondition,
        "internal review",
    )
    refused(
        lambda: stub.RequestAcceptance(
            pb.RequestAcceptanceRequest(project_id=pid, acceptance_date=day(1), content="c", criteria=["x"])
        ),
        precondition,
        "nothing has been delivered",
    )
    refused(
        lambda: stub.RequestAcceptance(
            pb.RequestAcceptanceRequest(project_id=pid, acceptance_date=day(1), content="c")
        ),
        invalid,
        "acceptance_criteria",
    )
    refused(
        lambda: stub.RecordAcceptanceReport(
            pb.RecordAcceptanceReportRequest(acceptance_id="a", conclusion="maybe")
        ),
        invalid,
        "conclusion",
    )
    refused(lambda: stub.ListProjects(pb.ListProjectsRequest(page_size=-1)), invalid, "page_size")


def _short_timeout_build(context: Context) -> Parts:
    return app.build(context, call_timeout=0.5)


def test_an_unreachable_contracts_service_is_unavailable(
    tmp_path: Path, nats_url: str, sqlite_url: str
) -> None:
    with running_delivery(
        tmp_path, nats_url, sqlite_url, closed_address(), closed_address(), _short_timeout_build
    ) as delivery:
        refused(
            lambda: delivery.stub.OpenProject(pb.OpenProjectRequest(contract_id="C-1")),
            grpc.StatusCode.UNAVAILABLE,
            "contracts.GetContract",
        )
        assert not delivery.stub.ListProjects(pb.ListProjectsRequest()).projects


def test_an_unreachable_risk_service_is_unavailable_and_records_no_analysis(
    tmp_path: Path,
    nats_url: str,
    sqlite_url: str,
    peers: Peers,
    contract: contracts_pb2.Contract,
    engagement_id: str,
) -> None:
    with running_delivery(
        tmp_path, nats_url, sqlite_url, peers.contracts_address, closed_address(), _short_timeout_build
    ) as delivery:
        stub = delivery.stub
        pid = stub.OpenProject(pb.OpenProjectRequest(contract_id=contract.contract_id)).project_id
        finding = pb.FindingInput(kind="risk", description="CE certification", risk_category="technical")
        refused(
            lambda: stub.RecordAnalysis(
                pb.RecordAnalysisRequest(project_id=pid, findings=[finding], request_id=f"A-{engagement_id}")
            ),
            grpc.StatusCode.UNAVAILABLE,
            "risk.RegisterRisk",
        )
        assert stub.GetProject(pb.GetProjectRequest(project_id=pid)).phase == "opened"
    assert peers.risks_of(engagement_id) == []


def test_the_delivery_service_reports_serving(delivery: RunningDelivery) -> None:
    health = health_pb2_grpc.HealthStub(delivery.channel)
    reply = health.Check(health_pb2.HealthCheckRequest(service=app.SERVICE_NAME))
    assert reply.status == health_pb2.HealthCheckResponse.SERVING
