"""The risk service against a real database (SQLite, and PostgreSQL when configured) and real NATS:
every RPC and job operation, the status events on STATUS, idempotency and precise errors."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import grpc
import pytest
from sqlalchemy import func, select

from consultflow.api.risk.v1 import risk_pb2 as pb
from consultflow.api.risk.v1 import risk_pb2_grpc as pb_grpc
from consultflow.platform.decisions import DecisionTables
from consultflow.platform.settings import repository_root
from consultflow.platform.tables import processed_jobs
from consultflow.risk.adapters import Dependencies, RiskTables
from consultflow.risk.app import build
from consultflow.risk.jobs import operations
from consultflow.risk.orm import EarlyWarning, Risk
from tests.support.components import ComponentThread, running
from tests.support.dates import day
from tests.support.identity import signed_channel
from tests.support.jobs import completed, job, refused_job, run
from tests.support.rpc import refused, rpc_error
from tests.support.status import events_including

HANDLERS = operations.bind(Dependencies(tables=RiskTables(repository_root() / "bpmn")))


@pytest.fixture
def risk(tmp_path: Path, nats_url: str, database_url: str) -> Iterator[ComponentThread]:
    with running("risk", build, tmp_path, nats_url, database_url) as thread:
        yield thread


def stub(thread: ComponentThread) -> pb_grpc.RiskServiceStub:
    return pb_grpc.RiskServiceStub(signed_channel(thread.address))


def test_the_register_assessment_response_and_monitoring_over_grpc(
    risk: ComponentThread, nats_url: str
) -> None:
    api = stub(risk)
    registered = api.RegisterRisk(
        pb.RegisterRiskRequest(
            engagement_id="E-1",
            description="The client's budget may be cut mid-project",
            stage="intake",
            source="feasibility assessment",
            owner="Ms Li",
            request_id="feasibility-1",
        )
    )
    assert (registered.status, registered.category, registered.priority) == ("registered", "", 0)
    again = api.RegisterRisk(
        pb.RegisterRiskRequest(
            engagement_id="E-1", description="x", stage="intake", request_id="feasibility-1"
        )
    )
    assert again.risk_id == registered.risk_id

    assessed = api.AssessRisk(
        pb.AssessRiskRequest(
            risk_id=registered.risk_id,
            likelihood="high",
            impact="severe",
            category="financial",
            identification_method="checklist",
        )
    )
    assert (assessed.risk.level, assessed.risk.priority, assessed.risk.suggested_strategy) == (
        "critical",
        1,
        "avoid",
    )
    assert (assessed.risk.strategy_basis, assessed.risk.status, assessed.risk.category) == (
        "6.3.1",
        "assessed",
        "financial",
    )
    assert (assessed.warning.level, assessed.warning.trigger, assessed.warning.indicator) == (
        "red",
        "risk_level",
        "risk_priority",
    )
    reassessed = api.AssessRisk(
        pb.AssessRiskRequest(risk_id=registered.risk_id, likelihood="high", impact="severe")
    )
    assert not reassessed.HasField("warning")  # the same band again

    plan = api.PlanResponse(
        pb.PlanResponseRequest(
            risk_id=registered.risk_id,
            strategy="mitigate",  # not what the matrix prescribes (6.3.1): a reason, then approval
            measures="Phase the work so each phase is paid on its own",
            owner="Mr Wang",
            due_date=day(-2),
            decided_by="project manager",
            deviation_reason="The client's board guaranteed the first two phases in writing",
        )
    )
    assert (plan.strategy, plan.suggested_strategy, plan.status, plan.overdue) == (
        "mitigate",
        "avoid",
        "planned",
        True,
    )
    assert (plan.deviation, plan.deviation_reason) == (
        "awaiting_approval",
        "The client's board guaranteed the first two phases in writing",
    )
    assert api.GetRisk(pb.GetRiskRequest(risk_id=registered.risk_id)).status == "responded"
    overdue = api.ListResponses(pb.ListResponsesRequest(engagement_id="E-1", overdue_only=True))
    assert [p.response_id for p in overdue.responses] == [plan.response_id]

    register = api.GetRegister(pb.GetRegisterRequest(engagement_id="E-1"))
    assert (
        register.status,
        register.stage,
        register.open_risks,
        register.overdue_measures,
        register.open_warnings,
    ) == (
        "open",
        "intake",
        1,
        1,
        1,
    )

    review = api.RecordReview(
        pb.RecordReviewRequest(
            engagement_id="E-1",
            measures_carried_out=False,
            measures_effective=False,
            new_risk_found=True,
            new_risk_description="The sponsor is leaving the client",
            reviewed_by="Ms Li",
        )
    )
    found = api.GetRisk(pb.GetRiskRequest(risk_id=review.new_risk_id))
    assert (found.stage, found.source, found.status) == ("intake", "periodic review (6.4.1)", "registered")
    assert (review.open_risks, review.overdue_measures) == (2, 1)
    assert [r.review_id for r in api.ListReviews(pb.ListReviewsRequest(engagement_id="E-1")).reviews] == [
        review.review_id
    ]

    matrix = api.GetRiskMatrix(pb.GetRiskMatrixRequest(engagement_id="E-1"))
    cells = {(c.likelihood, c.impact): c for c in matrix.cells}
    assert (len(matrix.cells), matrix.total, matrix.unassessed) == (12, 1, 1)
    assert [r.risk_id for r in cells[("high", "severe")].risks] == [registered.risk_id]
    assert cells[("high", "severe")].count == 1 and cells[("low", "minor")].count == 0

    acknowledged = api.AcknowledgeWarning(
        pb.AcknowledgeWarningRequest(
            warning_id=assessed.warning.warning_id, action="phasing agreed", acknowledged_by="PM"
        )
    )
    assert (acknowledged.status, acknowledged.action) == ("acknowledged", "phasing agreed")
    twice = api.AcknowledgeWarning(
        pb.AcknowledgeWarningRequest(warning_id=assessed.warning.warning_id, action="other")
    )
    assert (twice.action, twice.acknowledged_at) == ("phasing agreed", acknowledged.acknowledged_at)

    reading = api.RaiseWarning(
        pb.RaiseWarningRequest(
            engagement_id="E-1", indicator="cost_overrun_rate", value=0.07, request_id="reading-1"
        )
    )
    assert (reading.level, reading.trigger, reading.status) == ("amber", "indicator", "raised")
    assert (
        api.RaiseWarning(
            pb.RaiseWarningRequest(
                engagement_id="E-1", indicator="cost_overrun_rate", value=0.07, request_id="reading-1"
            )
        ).warning_id
        == reading.warning_id
    )
    raised = api.ListWarnings(pb.ListWarningsRequest(engagement_id="E-1", status="raised"))
    assert [w.warning_id for w in raised.warnings] == [reading.warning_id]

    completing = pb.CompleteResponseRequest(response_id=plan.response_id, effective=True, notes="paid")
    refused(lambda: api.CompleteResponse(completing), grpc.StatusCode.FAILED_PRECONDITION, "awaits approval")
    approved = api.DecideDeviation(
        pb.DecideDeviationRequest(response_id=plan.response_id, approved=True, decided_by="Director Zhao")
    )
    assert (approved.deviation, approved.deviation_decided_by, approved.status) == (
        "approved",
        "Director Zhao",
        "planned",
    )
    assert approved.HasField("deviation_decided_at")
    done = api.CompleteResponse(completing)
    assert (done.status, done.effective, done.overdue) == ("done", True, False)
    closed = api.CloseRisk(pb.CloseRiskRequest(risk_id=registered.risk_id, reason="budget confirmed"))
    assert (closed.status, closed.close_reason) == ("closed", "budget confirmed")
    assert api.GetRiskMatrix(pb.GetRiskMatrixRequest(engagement_id="E-1")).total == 0
    assert api.GetRiskMatrix(pb.GetRiskMatrixRequest(engagement_id="E-1", include_closed=True)).total == 1
    listed = api.ListRisks(pb.ListRisksRequest(engagement_id="E-1", page_size=1))
    assert len(listed.risks) == 1 and listed.next_page_token
    assert api.GetRegister(pb.GetRegisterRequest(engagement_id="E-1")).open_risks == 1

    expected = [
        "register.opened",
        "risk.registered",
        "risk.assessed",
        "warning.raised",
        "risk.assessed",
        "response.planned",
        "risk.registered",
        "review.recorded",
        "warning.acknowledged",
        "warning.raised",
        "response.deviation_approved",
        "response.completed",
        "risk.closed",
    ]
    events = events_including(nats_url, expected, "risk")
    assert sorted(e.type for e in events) == sorted(expected)
    assert all(e.correlation["engagement_id"] == "E-1" for e in events)
    first = next(e for e in events if e.type == "risk.registered")
    payload = json.loads(first.payload_json)
    assert (payload["risk_id"], payload["risk_stage"], payload["engagement_id"]) == (
        registered.risk_id,
        "intake",
        "E-1",
    )
    for event in (e for e in events if e.type.startswith("warning.")):
        assert json.loads(event.payload_json)["warning_id"] == event.subject


def test_a_rejected_deviation_sends_the_risk_back_to_be_planned_again(
    risk: ComponentThread, nats_url: str
) -> None:
    api = stub(risk)
    registered = api.RegisterRisk(
        pb.RegisterRiskRequest(engagement_id="E-5", description="The client may not pay", stage="intake")
    )
    api.AssessRisk(
        pb.AssessRiskRequest(
            risk_id=registered.risk_id,
            likelihood="high",
            impact="severe",
            category="financial",
            identification_method="checklist",
        )
    )
    accepting = pb.PlanResponseRequest(risk_id=registered.risk_id, strategy="accept")
    refused(
        lambda: api.PlanResponse(accepting),
        grpc.StatusCode.INVALID_ARGUMENT,
        "deviation_reason: is required: the risk matrix prescribes 'avoid', not 'accept' (6.3)",
    )
    accepting.deviation_reason = "We have always been paid by this client"
    plan = api.PlanResponse(accepting)
    assert (plan.deviation, plan.status) == ("awaiting_approval", "planned")
    rejecting = pb.DecideDeviationRequest(response_id=plan.response_id, approved=False)
    refused(lambda: api.DecideDeviation(rejecting), grpc.StatusCode.INVALID_ARGUMENT, "deviation_note")
    rejecting.note = "A high, severe risk is avoided (6.3.1)"
    rejected = api.DecideDeviation(rejecting)
    assert (rejected.deviation, rejected.status, rejected.deviation_note) == (
        "rejected",
        "rejected",
        "A high, severe risk is avoided (6.3.1)",
    )
    again = api.GetRisk(pb.GetRiskRequest(risk_id=registered.risk_id))
    assert (again.status, again.strategy) == ("assessed", "")  # to be planned again
    refused(lambda: api.DecideDeviation(rejecting), grpc.StatusCode.FAILED_PRECONDITION, "no deviation")
    refused(
        lambda: api.CompleteResponse(pb.CompleteResponseRequest(response_id=plan.response_id)),
        grpc.StatusCode.FAILED_PRECONDITION,
        "plan the risk again",
    )
    avoiding = api.PlanResponse(
        pb.PlanResponseRequest(
            risk_id=registered.risk_id,
            strategy="avoid",
            measures="Decline the engagement",
            owner="Mr Wang",
            due_date=day(-2),
        )
    )
    assert (avoiding.deviation, avoiding.deviation_reason) == ("none", "")
    assert api.GetRisk(pb.GetRiskRequest(risk_id=registered.risk_id)).strategy == "avoid"
    approving = pb.DecideDeviationRequest(response_id=avoiding.response_id, approved=True)
    refused(
        lambda: api.DecideDeviation(approving),
        grpc.StatusCode.FAILED_PRECONDITION,
        "no deviation awaiting approval",
    )
    expected = ["response.planned", "response.deviation_rejected", "response.planned"]
    events = events_including(nats_url, expected, "risk")
    decided = next(e for e in events if e.type == "response.deviation_rejected")
    payload = json.loads(decided.payload_json)
    assert (payload["deviation"], payload["risk_status"], payload["strategy"]) == (
        "rejected",
        "assessed",
        "",
    )


def test_an_accepted_risk_that_happens_is_reported_and_its_response_recorded(
    risk: ComponentThread, nats_url: str
) -> None:
    api = stub(risk)
    registered = api.RegisterRisk(
        pb.RegisterRiskRequest(
            engagement_id="E-6", description="A workshop room may be double-booked", stage="delivery"
        )
    )
    api.AssessRisk(
        pb.AssessRiskRequest(
            risk_id=registered.risk_id,
            likelihood="low",
            impact="minor",
            category="management",
            identification_method="checklist",
        )
    )
    plan = api.PlanResponse(pb.PlanResponseRequest(risk_id=registered.risk_id, strategy="accept"))
    assert (plan.deviation, plan.measures) == ("none", "")  # 6.3.4: no special measures
    refused(
        lambda: api.ReportRiskOccurred(pb.ReportRiskOccurredRequest(risk_id=registered.risk_id)),
        grpc.StatusCode.INVALID_ARGUMENT,
        "description: is required",
    )
    occurred = api.ReportRiskOccurred(
        pb.ReportRiskOccurredRequest(
            risk_id=registered.risk_id,
            description="The room was given to another client",
            reported_by="Ms Li",
        )
    )
    assert occurred.occurrence == "The room was given to another client" and occurred.HasField("occurred_at")
    events = events_including(nats_url, ["risk.occurred"], "risk")
    happened = next(e for e in events if e.type == "risk.occurred")
    payload = json.loads(happened.payload_json)
    assert (payload["risk_id"], payload["occurrence"], payload["occurrence_reported_by"]) == (
        registered.risk_id,
        "The room was given to another client",
        "Ms Li",
    )
    recorded = completed(
        run(
            risk,
            HANDLERS,
            job(
                "risk.complete_response",
                response_id=plan.response_id,
                measures_effective=True,
                follow_through_notes="moved to the client's own boardroom",
            ),
        )
    )
    assert recorded["response_completed_at"]
    done = api.ListResponses(pb.ListResponsesRequest(risk_id=registered.risk_id)).responses
    assert [(p.status, p.completion_notes) for p in done] == [("done", "moved to the client's own boardroom")]
    api.CloseRisk(pb.CloseRiskRequest(risk_id=registered.risk_id, reason="handled"))
    refused(
        lambda: api.ReportRiskOccurred(
            pb.ReportRiskOccurredRequest(risk_id=registered.risk_id, description="again")
        ),
        grpc.StatusCode.FAILED_PRECONDITION,
        "is closed",
    )


def test_one_lasting_breach_is_one_warning_until_it_is_acknowledged(
    risk: ComponentThread, nats_url: str
) -> None:
    api = stub(risk)
    reading = pb.RaiseWarningRequest(engagement_id="E-7", indicator="cost_overrun_rate", value=0.07)
    first = api.RaiseWarning(reading)
    assert (first.level, first.readings) == ("amber", 1)
    reading.value = 0.2  # a week later the same breach is worse
    again = api.RaiseWarning(reading)
    assert (again.warning_id, again.level, again.value, again.readings) == (first.warning_id, "red", 0.2, 2)
    reading.value = 0.07  # better again, but still unacknowledged: it stays red until someone acts
    assert api.RaiseWarning(reading).level == "red"
    other = api.RaiseWarning(
        pb.RaiseWarningRequest(engagement_id="E-7", indicator="schedule_deviation_rate", value=0.2)
    )
    assert other.warning_id != first.warning_id  # another indicator, another warning
    api.AcknowledgeWarning(pb.AcknowledgeWarningRequest(warning_id=first.warning_id, action="budget review"))
    after = api.RaiseWarning(reading)
    assert (after.warning_id != first.warning_id, after.level, after.readings) == (True, "amber", 1)
    # a risk's priority: an open warning of the risk is updated when a reassessment worsens its band
    registered = api.RegisterRisk(
        pb.RegisterRiskRequest(engagement_id="E-7", description="x", stage="intake")
    )
    assessing = pb.AssessRiskRequest(
        risk_id=registered.risk_id,
        likelihood="high",
        impact="major",
        category="market",
        identification_method="delphi",
    )
    amber = api.AssessRisk(assessing).warning
    assessing.impact = "severe"
    red = api.AssessRisk(assessing).warning
    assert (red.warning_id, amber.level, red.level, red.readings) == (amber.warning_id, "amber", "red", 2)
    expected = [
        "warning.raised",
        "warning.updated",
        "warning.updated",
        "warning.raised",
        "warning.acknowledged",
        "warning.raised",
        "warning.raised",
        "warning.updated",
    ]
    events = [e for e in events_including(nats_url, expected, "risk") if e.type.startswith("warning.")]
    assert sorted(e.type for e in events) == sorted(expected)


def test_all_twelve_cells_agree_with_the_decision_table(risk: ComponentThread) -> None:
    api = stub(risk)
    table = DecisionTables(repository_root() / "bpmn")
    cells = [(lh, im) for lh in ("high", "medium", "low") for im in ("severe", "major", "moderate", "minor")]
    for likelihood, impact in cells:
        registered = api.RegisterRisk(
            pb.RegisterRiskRequest(
                engagement_id="E-12", description=f"{likelihood} × {impact}", stage="delivery"
            )
        )
        risk_ = api.AssessRisk(
            pb.AssessRiskRequest(
                risk_id=registered.risk_id,
                likelihood=likelihood,
                impact=impact,
                category="technical",
                identification_method="delphi",
            )
        ).risk
        expected = table.decide("risk_matrix", {"likelihood": likelihood, "impact": impact})
        assert (risk_.level, risk_.priority, risk_.suggested_strategy, risk_.strategy_basis) == (
            expected["risk_level"],
            expected["risk_priority"],
            expected["suggested_strategy"],
            expected["strategy_basis"],
        ), (likelihood, impact)
    matrix = api.GetRiskMatrix(pb.GetRiskMatrixRequest())  # the whole firm
    assert matrix.total == 12 and all(c.count == 1 for c in matrix.cells)
    for cell in matrix.cells:
        expected = table.decide("risk_matrix", {"likelihood": cell.likelihood, "impact": cell.impact})
        assert (cell.level, cell.priority, cell.suggested_strategy) == (
            expected["risk_level"],
            expected["risk_priority"],
            expected["suggested_strategy"],
        )


def test_every_job_operation(risk: ComponentThread, nats_url: str) -> None:
    # The intake may find a risk before risk management opens the register (which then exists already).
    risk_id = completed(
        run(
            risk,
            HANDLERS,
            job(
                "risk.register_risk",
                engagement_id="E-2",
                risk_description="Key data may arrive late",
                risk_category="technical",
                risk_stage="implementation",
                risk_source="data analysis",
            ),
        )
    )["risk_id"]
    register_id = completed(
        run(risk, HANDLERS, job("risk.open_register", engagement_id="E-2", client_name="ACME"))
    )["register_id"]
    assessed = completed(
        run(
            risk,
            HANDLERS,
            job(
                "risk.assess_risk",
                risk_id=risk_id,
                risk_category="technical",
                identification_method="brainstorming",
                likelihood="medium",
                impact="major",
            ),
        )
    )
    assert assessed == {
        "risk_level": "high",
        "risk_priority": 2,
        "suggested_strategy": "mitigate",
        "project_manager": "",
    }
    response_id = completed(
        run(
            risk,
            HANDLERS,
            job(
                "risk.plan_response",
                risk_id=risk_id,
                strategy="mitigate",
                measures="ask for the data twice a week",
                measure_owner="Ms Li",
                measure_due=day(-2),
            ),
        )
    )["response_id"]
    assert response_id
    deviating = completed(
        run(
            risk,
            HANDLERS,
            job(
                "risk.plan_response",
                risk_id=risk_id,
                strategy="transfer",
                measures="subcontract the data collection",
                measure_owner="Ms Li",
                measure_due=day(-2),
                deviation_reason="a partner has the data already",
            ),
        )
    )
    assert deviating["deviates"] is True
    unjustified = {"risk_id": risk_id, "strategy": "accept"}
    assert "deviation_reason: is required" in refused_job(risk, HANDLERS, "risk.plan_response", unjustified)
    decided = completed(
        run(
            risk,
            HANDLERS,
            job(
                "risk.decide_deviation",
                response_id=deviating["response_id"],
                deviation_approved="no",
                deviation_note="the partner's data is two years old",
            ),
        )
    )
    # the rejected plan is void; the first one stands; the register says the stage the engagement is in
    assert decided == {"deviation_approved": False, "register_stage": "implementation", "project_manager": ""}
    assert completed(run(risk, HANDLERS, job("risk.review_register", engagement_id="E-2"))) == {
        "open_risks": 1,
        "overdue_measures": 1,
        "project_manager": "",
    }
    review_id = completed(
        run(
            risk,
            HANDLERS,
            job(
                "risk.record_review",
                engagement_id="E-2",
                measures_carried_out=True,
                measures_effective="no",
                new_risk_found="yes",
                new_risk_description="A second data source is needed",
            ),
        )
    )["review_id"]
    assert review_id
    raised = completed(
        run(
            risk,
            HANDLERS,
            job(
                "risk.raise_warning",
                engagement_id="E-2",
                indicator="schedule_deviation_rate",
                value="0.2",
                status="amber",
            ),
        )
    )
    assert raised["warning_level"] == "red"  # the table's band is worse than the reporter's
    assert raised["warning_new"] is True
    escalated = completed(run(risk, HANDLERS, job("risk.escalate_warning", warning_id=raised["warning_id"])))
    assert escalated["escalated_at"] and escalated["warning_status"] == "raised"
    acknowledged = completed(
        run(
            risk,
            HANDLERS,
            job(
                "risk.acknowledge_warning",
                warning_id=raised["warning_id"],
                warning_action="extra analyst for two weeks",
                acknowledged_by="PM",
            ),
        )
    )
    assert acknowledged["acknowledged_at"]
    late = completed(run(risk, HANDLERS, job("risk.escalate_warning", warning_id=raised["warning_id"])))
    assert late == {"escalated_at": None, "warning_status": "acknowledged"}
    closed = completed(run(risk, HANDLERS, job("risk.close_register", engagement_id="E-2")))
    assert closed["register_closed_at"]

    api = stub(risk)
    register = api.GetRegister(pb.GetRegisterRequest(engagement_id="E-2"))
    assert (register.register_id, register.client_name, register.stage, register.status) == (
        register_id,
        "ACME",
        "implementation",
        "closed",
    )
    new_risk = [
        r for r in api.ListRisks(pb.ListRisksRequest(engagement_id="E-2")).risks if r.risk_id != risk_id
    ]
    assert [(r.stage, r.description) for r in new_risk] == [
        ("implementation", "A second data source is needed")
    ]
    late_risk = {"engagement_id": "E-2", "risk_description": "too late", "risk_stage": "follow_up"}
    assert "is closed" in refused_job(risk, HANDLERS, "risk.register_risk", late_risk)

    expected = [
        "register.opened",
        "risk.registered",
        "register.updated",
        "risk.assessed",
        "warning.raised",  # priority 2 crossed into amber
        "response.planned",
        "response.planned",
        "response.deviation_rejected",
        "risk.registered",
        "review.recorded",
        "warning.raised",
        "warning.escalated",
        "warning.acknowledged",
        "register.closed",
    ]
    events = events_including(nats_url, expected, "risk")
    assert sorted(e.type for e in events) == sorted(expected)
    assert {e.correlation["engagement_id"] for e in events} == {"E-2"}


def test_a_stage_s_identification_registers_what_it_found_and_the_stage_decides_the_decline(
    risk: ComponentThread, nats_url: str
) -> None:
    """6.1.1: an organised identification at a stage is recorded and each risk it found registered;
    6.2.1/6.2.2: the assessment keeps its basis and objective; 6.3.1: plan_response reports the stage the
    engagement is in."""
    stage = completed(
        run(risk, HANDLERS, job("risk.record_stage", engagement_id="E-ID", engagement_stage="intake"))
    )
    assert stage == {"register_stage": "intake", "project_manager": ""}, "no project manager named yet"
    found = completed(
        run(
            risk,
            HANDLERS,
            job(
                "risk.record_identification",
                engagement_id="E-ID",
                engagement_stage="intake",
                session_method="delphi",
                team_participants="Ms Li, Mr Wu",
                department_participants="finance",
                expert_participants="an energy-market expert",
                risks_found="the sponsor may leave; the budget is not approved；",
            ),
        )
    )
    assert found["identification_id"] and found["risks_registered"] == 2
    api = stub(risk)
    risks = api.ListRisks(pb.ListRisksRequest(engagement_id="E-ID")).risks
    assert sorted((r.description, r.stage, r.identification_method) for r in risks) == [
        ("the budget is not approved", "intake", "delphi"),
        ("the sponsor may leave", "intake", "delphi"),
    ]
    risk_id = risks[0].risk_id
    completed(
        run(
            risk,
            HANDLERS,
            job(
                "risk.assess_risk",
                risk_id=risk_id,
                risk_category="personnel",
                identification_method="delphi",
                likelihood="high",
                impact="severe",
                likelihood_basis="two sponsors left in five years",
                affected_objective="schedule",
            ),
        )
    )
    # the engagement signs its contract and enters its implementation before the risk is decided
    later = job(
        "risk.record_stage", engagement_id="E-ID", engagement_stage="implementation", project_manager="Ms Li"
    )
    now_at = {"register_stage": "implementation", "project_manager": "Ms Li"}
    assert completed(run(risk, HANDLERS, later)) == now_at, "the stage names the project manager"
    earlier = job("risk.record_stage", engagement_id="E-ID", engagement_stage="intake", project_manager="")
    assert completed(run(risk, HANDLERS, earlier)) == now_at, "forward only; no name keeps the recorded one"
    planned = completed(
        run(
            risk,
            HANDLERS,
            job(
                "risk.plan_response",
                risk_id=risk_id,
                strategy="avoid",
                measures="a second sponsor signs the proposal",
                measure_owner="Ms Li",
                measure_due=day(-2),
            ),
        )
    )
    assert planned["register_stage"] == "implementation" and planned["deviates"] is False
    assert planned["project_manager"] == "Ms Li", "the follow-through goes to the engagement's PM"
    assert stub(risk).GetRegister(pb.GetRegisterRequest(engagement_id="E-ID")).project_manager == "Ms Li"
    bad = {
        "engagement_id": "E-ID",
        "engagement_stage": "delivery",
        "session_method": "guessing",
        "team_participants": "x",
        "department_participants": "y",
        "expert_participants": "z",
    }
    assert "session_method" in refused_job(risk, HANDLERS, "risk.record_identification", bad)
    expected = ["identification.recorded"]
    events = events_including(nats_url, expected, "risk")
    recorded = [e for e in events if e.type == "identification.recorded"]
    assert recorded and recorded[0].correlation["engagement_id"] == "E-ID"


def test_a_job_delivered_twice_acts_once(risk: ComponentThread) -> None:
    registering = job(
        "risk.register_risk",
        key="job-1",
        engagement_id="E-3",
        risk_description="scope creep",
        risk_stage="intake",
    )
    first = completed(run(risk, HANDLERS, registering))
    second = run(risk, HANDLERS, registering)
    assert second.replayed and second.variables == first
    warning = job(
        "risk.raise_warning",
        key="job-2",
        engagement_id="E-3",
        indicator="quality_pass_rate",
        value=0.8,
        status="",
    )
    assert run(risk, HANDLERS, warning).variables == run(risk, HANDLERS, warning).variables
    assert risk.context is not None
    with risk.context.read() as session:
        assert session.scalar(select(func.count()).select_from(Risk)) == 1
        assert session.scalar(select(func.count()).select_from(EarlyWarning)) == 1
        assert session.scalar(select(func.count()).select_from(processed_jobs)) == 2


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_bad_requests_get_precise_codes_naming_the_field(risk: ComponentThread) -> None:
    api = stub(risk)
    cases: list[tuple[Callable[[Any], Any], Any, grpc.StatusCode, str]] = [
        (
            api.RegisterRisk,
            pb.RegisterRiskRequest(engagement_id="E-4", stage="intake"),
            grpc.StatusCode.INVALID_ARGUMENT,
            "description: is required",
        ),
        (
            api.RegisterRisk,
            pb.RegisterRiskRequest(engagement_id="E-4", description="x", stage="later"),
            grpc.StatusCode.INVALID_ARGUMENT,
            "stage: 'later' is not one of intake",
        ),
        (
            api.RegisterRisk,
            pb.RegisterRiskRequest(description="x", stage="intake"),
            grpc.StatusCode.INVALID_ARGUMENT,
            "engagement_id: is required",
        ),
        (
            api.RegisterRisk,
            pb.RegisterRiskRequest(engagement_id="E-4", description="x", stage="intake", category="weather"),
            grpc.StatusCode.INVALID_ARGUMENT,
            "category: 'weather'",
        ),
        (
            api.AssessRisk,
            pb.AssessRiskRequest(risk_id="nope", likelihood="high", impact="major"),
            grpc.StatusCode.NOT_FOUND,
            "risk 'nope' not found",
        ),
        (api.GetRegister, pb.GetRegisterRequest(engagement_id="E-none"), grpc.StatusCode.NOT_FOUND, "E-none"),
        (
            api.RaiseWarning,
            pb.RaiseWarningRequest(engagement_id="E-4", indicator="mood", value=1),
            grpc.StatusCode.INVALID_ARGUMENT,
            "indicator: 'mood' is not one of",
        ),
        (
            api.RaiseWarning,
            pb.RaiseWarningRequest(engagement_id="E-4", indicator="cost_overrun_rate", status="purple"),
            grpc.StatusCode.INVALID_ARGUMENT,
            "status: 'purple'",
        ),
        (
            api.ListRisks,
            pb.ListRisksRequest(page_token="abc"),
            grpc.StatusCode.INVALID_ARGUMENT,
            "page_token",
        ),
    ]
    for call, request, code, text in cases:
        refused(partial(call, request), code, text)

    risk_id = api.RegisterRisk(
        pb.RegisterRiskRequest(engagement_id="E-4", description="x", stage="intake")
    ).risk_id
    for request, code, text in [
        (
            pb.AssessRiskRequest(
                risk_id=risk_id,
                likelihood="certain",
                impact="major",
                category="market",
                identification_method="delphi",
            ),
            grpc.StatusCode.INVALID_ARGUMENT,
            "likelihood: 'certain' is not one of high, medium, low (6.2.1)",
        ),
        (
            pb.AssessRiskRequest(
                risk_id=risk_id,
                likelihood="high",
                impact="",
                category="market",
                identification_method="delphi",
            ),
            grpc.StatusCode.INVALID_ARGUMENT,
            "impact: is required",
        ),
        (
            pb.AssessRiskRequest(
                risk_id=risk_id, likelihood="high", impact="major", identification_method="delphi"
            ),
            grpc.StatusCode.INVALID_ARGUMENT,
            "category: is required",
        ),
        (
            pb.AssessRiskRequest(risk_id=risk_id, likelihood="high", impact="major", category="market"),
            grpc.StatusCode.INVALID_ARGUMENT,
            "identification_method: is required",
        ),
    ]:
        error = rpc_error(api.AssessRisk, request)
        assert (error.code(), text in (error.details() or "")) == (code, True), error.details()
    error = rpc_error(api.PlanResponse, pb.PlanResponseRequest(risk_id=risk_id, strategy="accept"))
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION and "not assessed" in (error.details() or "")
    api.AssessRisk(
        pb.AssessRiskRequest(
            risk_id=risk_id,
            likelihood="low",
            impact="minor",
            category="market",
            identification_method="delphi",
        )
    )
    error = rpc_error(
        api.PlanResponse,
        pb.PlanResponseRequest(risk_id=risk_id, strategy="transfer", measures="insurance", owner="CFO"),
    )
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT and (error.details() or "").startswith(
        "due_date:"
    )
    warning = api.RaiseWarning(
        pb.RaiseWarningRequest(engagement_id="E-4", indicator="cost_overrun_rate", value=0.5)
    )
    error = rpc_error(api.AcknowledgeWarning, pb.AcknowledgeWarningRequest(warning_id=warning.warning_id))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT and (error.details() or "").startswith("action:")

    # Jobs name the diagram's variables, and a refused job is not retried.
    refusals: list[tuple[str, dict[str, Any], str]] = [
        (
            "risk.register_risk",
            {"engagement_id": "E-4", "risk_description": "", "risk_stage": "intake"},
            "risk_description: is required",
        ),
        (
            "risk.register_risk",
            {"engagement_id": "E-4", "risk_description": "x", "risk_stage": "closing"},
            "risk_stage: 'closing'",
        ),
        (
            "risk.register_risk",
            {"engagement_id": "E-4", "risk_description": "x"},
            "risk_stage: the diagram passes no",
        ),
        (
            "risk.assess_risk",
            {"risk_id": risk_id, "likelihood": "high", "impact": "major", "risk_category": "moods"},
            "risk_category: 'moods'",
        ),
        (
            "risk.plan_response",
            {
                "risk_id": risk_id,
                "strategy": "mitigate",
                "measures": "x",
                "measure_owner": "",
                "measure_due": "",
            },
            "measure_owner: is required",
        ),
        (
            "risk.plan_response",
            {
                "risk_id": risk_id,
                "strategy": "mitigate",
                "measures": "x",
                "measure_owner": "Li",
                "measure_due": "soon",
            },
            "measure_due: 'soon' is not a date",
        ),
        (
            "risk.raise_warning",
            {"engagement_id": "E-4", "indicator": "cost_overrun_rate", "value": "lots", "status": ""},
            "value: 'lots' is not a number",
        ),
        (
            "risk.record_review",
            {
                "engagement_id": "E-4",
                "measures_carried_out": "maybe",
                "measures_effective": True,
                "new_risk_found": False,
            },
            "measures_carried_out: 'maybe'",
        ),
        (
            "risk.acknowledge_warning",
            {"warning_id": warning.warning_id, "warning_action": " "},
            "warning_action: is required",
        ),
        ("risk.escalate_warning", {"warning_id": "nope"}, "warning 'nope' not found"),
    ]
    for operation, parameters, text in refusals:
        message = refused_job(risk, HANDLERS, operation, parameters)
        assert text in message, message
