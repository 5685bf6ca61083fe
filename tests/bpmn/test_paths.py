"""Path tests: the diagrams run in-process on the real orchestrator (see harness.py). Each scenario plays
one story of the regulation and checks where it ended; together the scenarios take every sequence flow of
every diagram, which the last test measures from the instances' task trees and prints."""

from __future__ import annotations

import json
import os
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.groups import one_worker
from tests.support.regulation_world import FlowIndex, World

pytestmark = one_worker(__name__)

INDEX = FlowIndex.load()

INQUIRY = {
    "channel": "email",
    "client_name": "深圳照明 Shenzhen Lighting",
    "client_industry": "manufacturing",
    "contact_name": "陳女士 Ms Chen",
    "contact_email": "chen@example.cn",
    "contact_phone": "",
    "question": "Can you help us enter the European market?",
}
ALL_FEASIBLE = {"technical_feasible": True, "economic_feasible": True, "time_feasible": True, "take_on": True}
ALL_CHECKS_PASS = {
    "logic_ok": True,
    "consistency_ok": True,
    "accuracy_ok": True,
    "contract_conformance_ok": True,
}
TEAM = {  # 3.1.1: the engagement's project manager and team
    "project_manager": "Wang Fang",
    "consultants": "Li Ming, Zhou Hua",
    "analysts": "Zhao Lei",
    "assistants": "Sun Yu",
}
CRITERIA_MET = {f"{c}_verdict": "met" for c in ("soundness", "feasibility", "innovation", "risk_response")}
GREEN = {"schedule_deviation_rate": 0.02, "quality_pass_rate": 0.98, "cost_overrun_rate": 0.01}
UNHAPPY = {"service_quality": 4, "result_quality": 2, "team_performance": 4, "overall_satisfaction": 3}
HAPPY = {"service_quality": 5, "result_quality": 5, "team_performance": 4, "overall_satisfaction": 5}
# a follow-up started on its own needs the team of 3.1.1 (TEAM) for its actors (5.2.1-5.2.3)
WHOLE_TEAM = ",Wang Fang,Li Ming,Zhou Hua,Zhao Lei,Sun Yu,"  # TEAM as the orchestrator stores candidate users
REFERRAL = {
    "opportunity_kind": "referral",
    "refer_as_inquiry": True,
    "inquiry_client_name": "佛山陶瓷 Foshan Ceramics",
    "inquiry_contact_name": "郭先生 Mr Guo",
    "inquiry_contact_email": "guo@foshan.example",
}

Scenario = Callable[[World], None]
SCENARIOS: dict[str, Scenario] = {}


def scenario(fn: Scenario) -> Scenario:
    SCENARIOS[fn.__name__] = fn
    return fn


def start_engagement(w: World, engagement_id: str) -> None:
    w.start("engagement", engagement_id, engagement_id=engagement_id, **INQUIRY)


def contract(w: World, engagement_id: str, *, risk_noted: bool = False) -> None:
    """Intake without detours up to a signed contract."""
    w.submit("understand_needs", communication_mode="phone")
    w.submit("assess_feasibility", **ALL_FEASIBLE, risk_noted=risk_noted)
    w.submit("prepare_quotation_form")
    w.submit("draft_proposal_form")
    w.submit("review_proposal", proposal_verdict="approved")
    w.client("quotation.accepted", engagement_id)
    w.submit("negotiate_contract")
    w.submit("legal_review", legal_verdict="approved")
    w.submit("sign_contract_form")
    w.client("contract.signed", engagement_id)


FOLLOW_THROUGH = {
    "avoid": "change_plan_form",  # after the intake (at intake the project is declined)
    "mitigate": "carry_out_mitigation_form",
    "transfer": "arrange_transfer_form",
}  # accept waits until the risk occurs (6.3.4)


def assess(
    w: World,
    likelihood: str,
    impact: str,
    strategy: str | None,
    *,
    follow_through: bool = True,
    manager: str | None = None,
    **choice: str,
) -> None:
    """Assesses a risk and chooses its strategy (None: the form's, which is the prescribed one); a chosen
    strategy that the matrix prescribes is carried out at once (`follow_through`)."""
    w.submit(
        "assess_risk_form",
        risk_category="other",
        identification_method="checklist",
        likelihood=likelihood,
        affected_objective="schedule",
        impact=impact,
    )
    if manager is not None:  # the engagement's project manager the register records ("": none named yet)
        (choose,) = w.user_tasks("choose_strategy_form")
        assert (choose.assignee, choose.candidate_groups) == (manager, ",project_manager,")
    w.submit("choose_strategy_form", **({"strategy": strategy} if strategy else {}), **choice)
    if follow_through and strategy in FOLLOW_THROUGH:
        w.submit(FOLLOW_THROUGH[strategy], measures_effective=True)


def measure(w: World, text: str, person: str, *, more: bool = False) -> None:
    """The team defines a rectification measure (5.2.2) naming its responsible person."""
    w.submit("define_measure_form", measure=text, responsible_person=person, more_measures=more)


def open_tasks(w: World) -> list[str]:
    """The open user tasks, but the stage identifications (6.1.1): each stage the engagement enters opens
    one in its risk management, and a scenario about something else leaves it open (the register closes
    with the engagement); the scenarios about them look at them by name."""
    return sorted(t.element_id for t in w.user_tasks() if t.element_id != "identify_risks_form")


# --------------------------------------------------------------------------------------------- scenarios


@scenario
def full_engagement(w: World) -> None:
    """Every chapter with its loops: revisions, errors, reminders, warnings, rectifications, revisits."""
    eid = "E-FULL"
    start_engagement(w, eid)
    assert w.instance("risk_management").status == "ACTIVE", "engagement.started starts risk management"
    assert len(w.user_tasks("identify_risks_form")) == 1, "the intake starts its risk identification (6.1.1)"

    # ch. 2 intake, with a risk noted at the feasibility assessment (6.1.1)
    w.submit("understand_needs", communication_mode="face_to_face")
    w.submit(
        "assess_feasibility",
        **ALL_FEASIBLE,
        risk_noted=True,
        risk_description="key client staff may leave",
        risk_category="personnel",
    )
    w.submit("prepare_quotation_form")
    assess(w, "high", "major", "mitigate", manager="")  # no project manager named yet: the group's
    assert w.variables("risk_management")["engagement_id"] == eid
    w.submit("draft_proposal_form", project_manager="Wang Fang")
    w.submit("review_proposal", proposal_verdict="revise")
    (revision,) = w.user_tasks("revise_proposal_form")
    assert revision.assignee == "Wang Fang", "the engagement's project manager revises the proposal (2.3.2)"
    w.submit("revise_proposal_form", revision_note="partner screening added")
    w.submit("review_proposal", proposal_verdict="approved")
    w.client("quotation.accepted", eid)
    w.submit("negotiate_contract")
    w.submit("legal_review", legal_verdict="revise", completeness_verdict="revise")
    w.submit("revise_contract_form", revision_notes="liability capped per legal", revision_needs_client=False)
    w.submit("legal_review", legal_verdict="approved")
    w.submit("sign_contract_form")
    w.client("contract.signed", eid)
    assert w.count("contracts.submit_for_legal_review") == 2
    assert w.count("contracts.distribute_contract") == 1

    # ch. 3 implementation: the team recorded at 3.1.1 gets the later tasks
    w.submit("form_team_form", **TEAM)
    (kickoff,) = w.user_tasks("kickoff_form")
    assert kickoff.assignee == "Wang Fang", "the engagement's project manager holds the kick-off (3.1.2)"
    w.submit("kickoff_form")
    (collect,) = w.user_tasks("collect_data_form")
    assert collect.candidate_users == ",Wang Fang,Li Ming,Zhou Hua,Zhao Lei,Sun Yu,", "the team of 3.1.1"
    w.submit("collect_data_form", site_visit_needed=True)
    w.submit("site_visit_form")
    w.submit("analyse_data_form", risk_found=True, risk_description="client data incomplete")
    assert w.count("risk.register_risk") == 2, "the analysis' risk is registered by the diagram (6.1.1)"
    assess(w, "low", "severe", "transfer", manager="Wang Fang")  # named by the implementation stage
    w.submit("design_solution_form")
    w.submit(
        "review_solution",
        **{**CRITERIA_MET, "innovation_verdict": "not_met"},
        innovation_comments="the same plan as last year's",
        solution_verdict="revise",
    )
    w.submit("design_solution_form")
    w.submit("review_solution", **CRITERIA_MET, solution_verdict="approved")
    w.indicators = {**GREEN, "schedule_deviation_rate": 0.2}
    w.elapse("monitoring_cycle", "engagement")
    assert open_tasks(w) == ["acknowledge_warning_form", "corrective_action_form", "do_project_work_form"]
    w.submit("corrective_action_form")
    w.submit("acknowledge_warning_form")
    w.indicators = GREEN
    w.elapse("monitoring_cycle", "engagement")
    w.elapse("project_meeting_cycle", "engagement")
    w.submit("project_meeting_form")  # nothing needs another department: the meeting is recorded (3.5.1)
    w.elapse("report_to_client_cycle", "engagement")
    w.submit("report_progress_form")
    w.client("client.change_requested", eid, project_id="project-1", change_request_id="change-1")
    w.submit("assess_change_form", change_decision="accepted")
    w.elapse("risk_monitoring_cycle", "risk_management")
    w.submit("risk_review_form", measures_carried_out=True, measures_effective=True)
    assert open_tasks(w) == ["do_project_work_form"]
    w.submit("do_project_work_form", work_report="market sizing and partner screening done")
    w.submit("check_quality_form", quality_passed=False, quality_notes="two charts lack their sources")
    assert w.count("delivery.check_work_quality") == 1, "a failed check counts in the quality pass rate"
    w.submit("carry_out_work_form")

    # ch. 4 delivery: a failed review, a risk, on-site delivery, a late and then failed acceptance
    w.submit("compile_results_form")
    w.submit("review_deliverables_form", **{**ALL_CHECKS_PASS, "consistency_ok": False})
    w.submit("compile_results_form")
    w.submit("review_deliverables_form", **ALL_CHECKS_PASS, risk_noted=True, risk_category="market")
    assess(w, "low", "minor", "accept", manager="Wang Fang")
    assert open_tasks(w) == ["delivery_needs_form"], "an accepted risk waits until it occurs (6.3.4)"
    w.publish("risk.occurred", w.risk_ids[-1], occurrence="a competitor published first")
    w.settle()
    assert w.user_tasks("respond_to_occurrence_form")[0].assignee == "Wang Fang"
    w.submit("respond_to_occurrence_form", measures_effective=True)
    w.submit("delivery_needs_form", client_preference="none", needs_demonstration=True, client_remote=False)
    w.submit("arrange_onsite_form", delivery_time="2030-06-01T10:00:00+08:00")
    assert open_tasks(w) == ["prepare_onsite_form"], "the project team prepares the on-site delivery (4.2.1)"
    w.submit("prepare_onsite_form")
    assert open_tasks(w) == [], "the presentation waits for the agreed delivery time (4.3.1)"
    w.elapse("delivery_time_reached")
    presenters = w.user_tasks("present_onsite_form")[0].candidate_users
    assert presenters == ",Wang Fang,Li Ming,Zhou Hua,", (
        "the engagement's project manager or its consultants present (4.3.1)"
    )
    w.submit("present_onsite_form", results_accepted=False)
    w.submit("present_onsite_form", results_accepted=True)
    w.submit("request_acceptance_form")
    assert open_tasks(w) == ["support_acceptance_form"], "the team supports the client's check (4.4.2)"
    supporters = w.user_tasks("support_acceptance_form")[0].candidate_users
    assert supporters == ",Wang Fang,Li Ming,Zhou Hua,Zhao Lei,Sun Yu,", "this team (3.1.1)"
    w.submit("support_acceptance_form")
    w.elapse("acceptance_reminder", "engagement")
    w.elapse("acceptance_overdue", "engagement")
    w.submit("follow_up_overdue_form")
    w.client("acceptance.reported", eid, acceptance_conclusion="failed", acceptance_comments="charts unclear")
    w.submit("plan_rectification_form")
    w.submit("complete_rectification_form")
    w.submit("request_acceptance_form")
    w.client("acceptance.reported", eid, acceptance_conclusion="passed", acceptance_comments="")
    assert "support_acceptance_form" in open_tasks(w), "every round is supported, the report does not wait"
    w.submit("support_acceptance_form")
    assert w.count("delivery.request_acceptance") == 2

    # ch. 5 follow-up: a reminder, dissatisfaction, a risk, rectification until solved, two revisits
    w.submit("plan_survey_form", survey_method="questionnaire", survey_date="2030-06-01")
    assert w.count("survey.send_questionnaire") == 0, "5.1.2: the questionnaire waits for the planned date"
    w.elapse("survey_date_reached", "engagement")
    w.elapse("survey_reminder_cycle", "engagement")
    w.survey_ratings = UNHAPPY
    w.client("survey.response_received", eid, response_id="response-1")
    w.submit("analyse_dissatisfaction_form", dissatisfaction_causes="charts unclear, export markets missing")
    w.submit(
        "identify_problem_form",
        problem_nature="result",
        problem_severity="moderate",
        risk_noted=True,
        more_problems=False,
    )
    assess(w, "high", "severe", "avoid", manager="Wang Fang")
    measure(w, "labelled charts and a summary", "Li Ming")
    w.submit("rectify_and_report_form", problem_solved=False)
    measure(w, "walk the client through the charts", "Zhao Lei")  # 5.2.3: not solved yet, a further measure
    w.submit("rectify_and_report_form", problem_solved=True)
    w.elapse("revisit_cycle", "engagement")
    w.submit(
        "revisit_client_form",
        revisit_method="visit",
        offer_value_added_service=True,
        opportunity_found=True,
        opportunity="a market study for the client's supplier",
    )
    w.submit("provide_value_added_service_form", value_added_service="free_training")
    w.submit("pursue_opportunity_form", opportunity_kind="follow_on", refer_as_inquiry=False)
    w.elapse("revisit_cycle", "engagement")
    w.submit("revisit_client_form", revisit_method="phone")
    w.elapse("maintenance_period", "engagement")

    assert w.incidents() == []
    assert open_tasks(w) == []
    assert w.instance("engagement").status == "COMPLETED"
    assert w.instance("risk_management").status == "COMPLETED", "engagement.closed ends risk management"
    engagement = w.ends("engagement")
    for end in ("contract_signed", "implementation_completed", "accepted", "follow_up_completed"):
        assert end in engagement
    assert engagement.count("engagement_closed") == 1
    assert "not_taken_on" not in engagement and "declined_to_avoid_risk" not in engagement
    assert engagement.count("opportunity_recorded") == 1 and engagement.count("revisit_done") == 1
    variables = w.variables("engagement")
    assert variables["intake_outcome"] == "contracted"
    assert variables["project_status"] == "follow_up"
    assert variables["problem_solved"] is True
    risk = w.ends("risk_management")
    for end in ("warning_acknowledged", "review_recorded"):
        assert end in risk
    # mitigated, transferred, the accepted risk that occurred, and the plan changed to avoid one
    assert risk.count("response_carried_out") == 4 and w.count("risk.complete_response") == 4
    assert "decline_project" not in risk and "escalation_handled" not in risk
    assert w.count("risk.decide_deviation") == 0, "every strategy chosen was the prescribed one"
    assert w.count("risk.escalate_warning") == 0
    # 6.1.1: the engagement announced each stage it entered, with its project manager once named
    assert w.count("risk.record_stage") == 4 and w.worker.stage_of[eid] == "follow_up"
    assert len(w.user_tasks("identify_risks_form")) == 0, "the register closed with the engagement"


@scenario
def infeasible_inquiry_is_not_taken_on(w: World) -> None:
    start_engagement(w, "E-INFEASIBLE")
    w.submit("understand_needs", communication_mode="phone")
    w.submit("assess_feasibility", **{**ALL_FEASIBLE, "economic_feasible": False, "take_on": False})
    assert w.instance("engagement").status == "COMPLETED"
    assert w.ends("engagement") == ["not_feasible", "not_taken_on"]
    variables = w.variables("engagement")
    assert (variables["intake_outcome"], variables["decline_reason"]) == ("declined", "infeasible")
    assert w.count("contracts.prepare_quotation") == 0
    assert w.ends("risk_management") == ["monitoring_over", "risk_management_closed"]


@scenario
def rejected_quote_is_negotiated_until_the_client_ends_it(w: World) -> None:
    start_engagement(w, "E-REJECTED")
    w.submit("understand_needs", communication_mode="phone")
    w.submit("assess_feasibility", **ALL_FEASIBLE, risk_noted=False)
    w.submit("prepare_quotation_form")
    w.submit("draft_proposal_form")
    w.submit("review_proposal", proposal_verdict="approved")
    w.client("quotation.rejected", "E-REJECTED", quotation_status="rejected", answer_note="too expensive")
    assert open_tasks(w) == ["negotiate_contract"], "2.4.1: a rejected quote is negotiated"
    w.submit("negotiate_contract", negotiation_outcome="client_ends")
    assert w.ends("engagement") == ["not_taken_on", "offer_rejected"]
    assert w.variables("engagement")["decline_reason"] == "offer_rejected"
    assert w.count("risk.register_risk") == 0
    assert w.instance("risk_management").status == "COMPLETED"


@scenario
def unanswered_quote_expires(w: World) -> None:
    start_engagement(w, "E-EXPIRED")
    w.submit("understand_needs", communication_mode="phone")
    w.submit("assess_feasibility", **ALL_FEASIBLE)
    w.submit("prepare_quotation_form", validity_days="14")
    w.submit("draft_proposal_form")
    w.submit("review_proposal", proposal_verdict="approved")
    w.elapse("quote_expired", "engagement")
    assert w.ends("engagement") == ["not_taken_on", "offer_expired"]
    assert w.variables("engagement")["decline_reason"] == "offer_expired"
    assert w.count("contracts.expire_quotation") == 1
    w.client("quotation.accepted", "E-EXPIRED")  # too late: nobody waits, nothing changes
    assert w.count("contracts.draft_contract") == 0


@scenario
def risk_to_avoid_at_intake_stops_the_engagement(w: World) -> None:
    eid = "E-AVOID"
    start_engagement(w, eid)
    w.submit("understand_needs", communication_mode="face_to_face")
    w.submit("assess_feasibility", **ALL_FEASIBLE, risk_noted=True, risk_category="financial")
    assert open_tasks(w) == ["assess_risk_form", "prepare_quotation_form"]
    assess(w, "high", "severe", "avoid", follow_through=False)
    assert w.count("crm.decline_inquiry") == 1
    assert open_tasks(w) == [], "the intake's open quotation task is withdrawn"
    assert w.ends("engagement") == ["declined_to_avoid_risk"]
    assert w.variables("engagement")["decline_reason"] == "risk_avoided"
    assert "decline_project" in w.ends("risk_management")
    assert w.instance("risk_management").status == "COMPLETED"
    assert w.count("contracts.prepare_quotation") == 0


@scenario
def implementation_without_site_visit_stays_on_track(w: World) -> None:
    w.start("implementation", engagement_id="E-IMPL", contract_id="contract-9")
    w.submit("form_team_form")
    w.submit("kickoff_form")
    w.submit("collect_data_form", site_visit_needed=False)
    w.submit("analyse_data_form")
    w.submit("design_solution_form")
    w.submit("review_solution", **CRITERIA_MET, solution_verdict="approved")
    assert open_tasks(w) == ["do_project_work_form"]
    w.elapse("project_meeting_cycle")
    w.submit("project_meeting_form", coordination_needed=True)
    w.submit("coordinate_departments_form", departments="finance, legal")
    assert w.count("delivery.record_coordination") == 1, "cross-department coordination (3.5.1)"
    w.elapse("project_meeting_cycle")
    assert open_tasks(w) == ["do_project_work_form", "project_meeting_form"]
    w.submit("do_project_work_form")
    # SpiffWorkflow withdraws a round a cycle timer started when its host activity completes
    assert open_tasks(w) == ["check_quality_form"]
    w.submit("check_quality_form", quality_passed=True)
    w.submit("carry_out_work_form")
    assert open_tasks(w) == []
    assert w.instance("implementation").status == "COMPLETED"
    ends = w.ends("implementation")
    assert "implementation_completed" in ends and "coordination_recorded" in ends
    assert "meeting_recorded" not in ends
    # monitoring (3.4.2) and client reporting (3.5.2) run in the engagement, not in this process
    assert w.count("delivery.evaluate_indicators") == 0 and w.count("delivery.send_progress_report") == 0
    assert w.count("delivery.record_site_visit") == 0 and w.count("risk.register_risk") == 0


@scenario
def online_delivery_after_an_untested_channel(w: World) -> None:
    team = {
        "project_manager": "Wang Fang",
        "consultants": "Li Ming",
        "analysts": "Zhao Lei",
        "assistants": "",
    }
    w.start("delivery_acceptance", engagement_id="E-ONLINE", project_id="project-7", **team)
    assert w.user_tasks("compile_results_form")[0].candidate_users == ",Wang Fang,Li Ming,Zhao Lei,"
    w.submit("compile_results_form")
    assert w.user_tasks("review_deliverables_form")[0].assignee == "Wang Fang", "the engagement's PM (4.1.2)"
    w.submit("review_deliverables_form", **ALL_CHECKS_PASS, risk_noted=False)
    w.submit("delivery_needs_form", client_preference="online", needs_demonstration=False, client_remote=True)
    assert w.variables("delivery_acceptance")["delivery_mode"] == "online"
    w.submit("prepare_online_form", platform="video_conference", channel_tested=False)
    assert open_tasks(w) == ["prepare_online_form"], "a failed channel test is prepared and tested again"
    w.submit("prepare_online_form", platform="video_conference", channel_tested=True)
    w.submit("explain_online_form")
    assert open_tasks(w) == ["reply_to_feedback_form"], "the feedback is handled and answered (4.3.2)"
    w.submit("reply_to_feedback_form")
    w.submit("request_acceptance_form")
    w.client("acceptance.reported", "E-ONLINE", acceptance_conclusion="passed", acceptance_comments="")
    assert w.instance("delivery_acceptance").status == "COMPLETED"
    assert w.ends("delivery_acceptance") == ["accepted"]
    assert w.count("delivery.plan_online_delivery") == 1, "only a tested channel is recorded"
    assert w.count("delivery.send_deliverables_online") == 1
    assert w.count("delivery.plan_onsite_delivery") == 0


# --- intake (ch. 2) scenarios ------------------------------------------------------------------------


@scenario
def negotiation_sends_the_quotation_and_the_proposal_back(w: World) -> None:
    """2.4.1: negotiation on the quote and the proposal can send both back for revision; terms agreed on a
    quote the client rejected send it back too, as a contract is drafted only on an accepted quote."""
    eid = "E-RENEGOTIATED"
    start_engagement(w, eid)
    w.submit("understand_needs", communication_mode="phone")
    w.submit("assess_feasibility", **ALL_FEASIBLE)
    w.submit("prepare_quotation_form")
    w.submit("draft_proposal_form")
    w.submit("review_proposal", proposal_verdict="approved")
    w.client("quotation.accepted", eid, quotation_status="accepted")
    w.submit("negotiate_contract", negotiation_outcome="revise")
    assert open_tasks(w) == ["prepare_quotation_form"], "the quotation is revised"
    w.submit("prepare_quotation_form", consulting_fee="90000")
    w.submit("draft_proposal_form")
    w.submit("review_proposal", proposal_verdict="approved")
    w.client("quotation.rejected", eid, quotation_status="rejected")
    w.submit("negotiate_contract", negotiation_outcome="agreed")
    assert open_tasks(w) == ["prepare_quotation_form"], "a rejected quote is revised before any contract"
    w.submit("prepare_quotation_form", consulting_fee="85000")
    w.submit("draft_proposal_form")
    w.submit("review_proposal", proposal_verdict="approved")
    w.client("quotation.accepted", eid, quotation_status="accepted")
    w.submit("negotiate_contract")
    w.submit("legal_review", legal_verdict="approved")
    w.submit("sign_contract_form")
    w.client("contract.signed", eid)
    assert w.count("contracts.prepare_quotation") == 3
    assert w.count("contracts.send_offer") == 3
    assert w.count("contracts.draft_contract") == 1
    assert w.variables("engagement")["intake_outcome"] == "contracted"


@scenario
def refused_or_unsigned_contract_is_negotiated_again(w: World) -> None:
    """2.4.3: the client refuses to sign, or does not sign within the signing period: the contract goes
    back to negotiation (2.4.1), which signs it in the end or ends when the client does not go on."""
    eid = "E-REFUSED"
    start_engagement(w, eid)
    w.submit("understand_needs", communication_mode="phone")
    w.submit("assess_feasibility", **ALL_FEASIBLE)
    w.submit("prepare_quotation_form")
    w.submit("draft_proposal_form")
    w.submit("review_proposal", proposal_verdict="approved")
    w.client("quotation.accepted", eid, quotation_status="accepted")
    w.submit("negotiate_contract")
    w.submit("legal_review", legal_verdict="approved")
    w.submit("sign_contract_form")
    w.client("contract.signature_refused", eid)
    assert open_tasks(w) == ["negotiate_contract"], "a refused signature is negotiated again"
    assert w.count("contracts.reopen_negotiation") == 0, "RefuseSignature has reopened the contract"
    w.submit("negotiate_contract", breach_liability="capped at the fee")
    w.submit("legal_review", legal_verdict="approved")
    w.submit("sign_contract_form")
    w.elapse("signature_overdue", "engagement")
    assert open_tasks(w) == ["negotiate_contract"], "an unsigned contract is negotiated again"
    assert w.count("contracts.reopen_negotiation") == 1
    w.submit("negotiate_contract", negotiation_outcome="client_ends")
    assert w.ends("engagement") == ["not_taken_on", "offer_rejected"]
    assert w.count("contracts.draft_contract") == 2
    assert w.count("contracts.sign_contract") == 2
    assert w.count("contracts.distribute_contract") == 0


@scenario
def several_leads_in_one_research_round(w: World) -> None:
    """2.1.1: one round of market research can bring several leads, each recorded in the CRM and followed up
    by the business staff; a lead that becomes an inquiry starts a new engagement (2.1.2) that knows it."""
    w.fire_start_timer("market_research")
    w.submit("collect_market_intelligence_form", lead_found=True)
    w.submit("record_lead_form", lead_source="trade_fair", another_lead=True)
    w.submit("record_lead_form", lead_source="seminar", another_lead=True)
    w.submit("record_lead_form", lead_source="other")
    assert w.count("crm.record_lead") == 3 and w.count("crm.record_market_insight") == 1
    assert open_tasks(w) == ["contact_lead_form"] * 3, "every lead of the round is followed up"
    w.submit("contact_lead_form", lead_outcome="no_need")
    w.submit("contact_lead_form", lead_outcome="no_need")
    assert w.instances("engagement") == []
    client = {k: v for k, v in INQUIRY.items() if k != "channel"}
    w.submit("contact_lead_form", lead_outcome="inquiry", **client)
    (run,) = w.instances("market_research")
    assert run.status == "COMPLETED"
    assert w.ends_of(run) == ["lead_handed_over", "lead_not_converted", "lead_not_converted", "lead_recorded"]
    ((referred, (lead_id, referred_by)),) = w.worker.referrals.items()
    assert lead_id in ("lead-1", "lead-2", "lead-3") and referred_by == ""
    engagement = w.instance("engagement")
    assert engagement.business_key == referred
    variables = w.variables("engagement")
    assert (variables["engagement_id"], variables["lead_id"], variables["channel"]) == (
        referred,
        lead_id,
        "market_research",
    )
    assert w.count("crm.record_inquiry") == 1
    assert open_tasks(w) == ["understand_needs"], "the referred inquiry goes on to 2.2.1 like any other"


@scenario
def feasible_but_not_worth_taking_on(w: World) -> None:
    """2.2.2: the experts conclude whether the project is worth taking on; feasible in every dimension, it
    can still be declined."""
    start_engagement(w, "E-NOT-WORTH")
    w.submit("understand_needs", communication_mode="phone")
    w.submit("assess_feasibility", **{**ALL_FEASIBLE, "take_on": False}, take_on_reasons="too small a fee")
    assert w.ends("engagement") == ["not_feasible", "not_taken_on"]
    assert w.variables("engagement")["decline_reason"] == "infeasible"
    assert w.count("contracts.prepare_quotation") == 0


@scenario
def revised_proposal_revises_the_quotation_and_legal_revision_goes_to_the_client(w: World) -> None:
    """2.3.2/2.3.1: the internal review can send the quotation back with the proposal; 2.4.3: a revision
    per the legal opinion that the client must agree to is negotiated again (2.4.1); the copies go to the
    departments and people the signatory named."""
    eid = "E-REVISED"
    start_engagement(w, eid)
    w.submit("understand_needs", communication_mode="phone")
    w.submit("assess_feasibility", **ALL_FEASIBLE)
    w.submit("prepare_quotation_form")
    w.submit("draft_proposal_form")
    w.submit("review_proposal", proposal_verdict="revise", revise_quotation=True)
    assert open_tasks(w) == ["prepare_quotation_form"], "the quotation is revised with the proposal"
    w.submit("prepare_quotation_form", consulting_fee="95000")
    w.submit("draft_proposal_form")
    w.submit("review_proposal", proposal_verdict="approved")
    w.client("quotation.accepted", eid, quotation_status="accepted")
    w.submit("negotiate_contract")
    w.submit("legal_review", legal_verdict="revise", legality_verdict="revise")
    w.submit("revise_contract_form", revision_notes="the payment terms change", revision_needs_client=True)
    assert open_tasks(w) == ["negotiate_contract"], "the client must agree: negotiated again"
    w.submit("negotiate_contract", payment_terms="50% on signing")
    w.submit("legal_review", legal_verdict="approved")
    w.submit("sign_contract_form", distribution_recipients="delivery, finance, Ms Li (PMO)")
    w.client("contract.signed", eid)
    assert w.count("contracts.prepare_quotation") == 2 and w.count("contracts.draft_proposal") == 2
    assert w.count("contracts.draft_contract") == 2 and w.count("contracts.revise_contract") == 0
    variables = w.variables("engagement")
    assert variables["intake_outcome"] == "contracted"
    assert variables["distributed_to"] == "delivery, finance, Ms Li (PMO)"


# --- end of the intake scenarios ------------------------------------------------------------------

# --- chapters 3-4: monitoring and client reporting throughout (3.4.2, 3.5.2) --------------------------


@scenario
def monitoring_and_reporting_run_from_kickoff_to_delivery(w: World) -> None:
    """The kick-off starts the weekly monitoring and the business staff's client reports in the engagement;
    they run through research, design, execution and delivery, and the delivery ends them."""
    eid = "E-THROUGHOUT"
    start_engagement(w, eid)
    contract(w, eid)
    w.submit("form_team_form")
    assert w.count("delivery.evaluate_indicators") == 0
    w.submit("kickoff_form")
    # research: before execution there is no work plan to measure against (nothing breached)
    w.indicators = {**GREEN, "schedule_deviation_rate": 0.5}
    w.elapse("monitoring_cycle", "engagement")
    assert w.count("delivery.evaluate_indicators") == 1
    w.elapse("report_to_client_cycle", "engagement")
    assert open_tasks(w) == ["collect_data_form", "report_progress_form"]
    w.submit("report_progress_form", report_notes="data collection under way; asked about export data")
    assert w.count("delivery.send_progress_report") == 1
    w.submit("collect_data_form", site_visit_needed=False)
    w.submit("analyse_data_form")
    w.submit("design_solution_form")
    w.submit("review_solution", **CRITERIA_MET, solution_verdict="approved")
    w.submit("do_project_work_form")
    w.submit("check_quality_form", quality_passed=True)
    w.submit("carry_out_work_form")
    # delivery (ch. 4): still monitored and reported on until the deliverables are delivered
    w.submit("compile_results_form")
    w.submit("review_deliverables_form", **ALL_CHECKS_PASS)
    w.elapse("monitoring_cycle", "engagement")
    assert open_tasks(w) == ["acknowledge_warning_form", "corrective_action_form", "delivery_needs_form"]
    # the corrective action is this engagement's project manager's (recorded with the proposal, 2.3.2)
    manager = w.variables("engagement")["project_manager"]
    assert [t.assignee for t in w.user_tasks("corrective_action_form")] == [manager]
    w.submit("corrective_action_form")
    w.submit("acknowledge_warning_form")
    w.elapse("report_to_client_cycle", "engagement")
    w.submit("report_progress_form")
    w.submit("delivery_needs_form", client_preference="online", needs_demonstration=False, client_remote=True)
    w.submit("prepare_online_form", platform="video_conference", channel_tested=True)
    w.submit("explain_online_form")
    w.submit("reply_to_feedback_form")
    # delivered: both end; nothing waits for their timers any more
    ends = w.ends("engagement")
    assert "monitoring_ended" in ends and "reporting_ended" in ends
    assert ends.count("indicators_on_track") == 1 and ends.count("action_taken") == 1
    assert ends.count("progress_reported") == 2
    assert open_tasks(w) == ["request_acceptance_form"]
    assert w.incidents() == []


# --- follow-up (ch. 5) scenarios ---------------------------------------------------------------------


@scenario
def unanswered_survey_closes(w: World) -> None:
    w.start("follow_up", engagement_id="E-SILENT", client_id="client-3", **TEAM)
    w.submit("plan_survey_form", survey_method="questionnaire", survey_date="2030-06-01")
    w.elapse("survey_date_reached")
    w.elapse("survey_closed")
    assert w.count("survey.analyse_responses") == 0
    w.elapse("maintenance_period")
    assert w.instance("follow_up").status == "COMPLETED"
    assert w.ends("follow_up") == ["follow_up_completed", "maintenance_over"]


@scenario
def satisfied_client_needs_no_rectification(w: World) -> None:
    """5.1.2: a face-to-face survey waits for its planned date; staff take the answers down."""
    w.start("follow_up", engagement_id="E-HAPPY", client_id="client-4", **TEAM)
    w.submit("plan_survey_form", survey_method="face_to_face", survey_date="2030-06-01")
    assert w.count("survey.send_questionnaire") == 0
    assert open_tasks(w) == [], "the interview waits for the survey date"
    w.elapse("survey_date_reached")
    w.submit("conduct_interview_survey_form", **{k: str(v) for k, v in HAPPY.items()})
    assert w.count("survey.record_interview") == 1
    w.submit("analyse_dissatisfaction_form", dissatisfaction_causes="none found")
    assert w.count("survey.record_causes") == 1
    assert w.variables("follow_up")["rectification_needed"] is False
    assert w.count("survey.record_problem") == 0
    w.elapse("maintenance_period")
    assert w.ends("follow_up") == ["follow_up_completed", "maintenance_over"]


@scenario
def phone_interview_reveals_dissatisfaction(w: World) -> None:
    """5.1.2 → 5.1.3 → 5.2: the answers of a phone interview are analysed like a questionnaire's; two
    problems, measures by the team, rectification by the people the measures name, regular reports."""
    w.start("follow_up", engagement_id="E-PHONE", client_id="client-6", **TEAM)
    w.submit("plan_survey_form", survey_method="phone_interview", survey_date="2030-06-01")
    w.elapse("survey_date_reached")
    w.submit("conduct_interview_survey_form", **{k: str(v) for k, v in UNHAPPY.items()})
    assert open_tasks(w) == ["analyse_dissatisfaction_form"], "5.1.3: the causes before the decision"
    w.submit("analyse_dissatisfaction_form")
    assert w.variables("follow_up")["rectification_needed"] is True
    assert w.count("survey.send_questionnaire") == 0 and w.count("survey.send_reminder") == 0
    # 5.2.1: two problems, one after the other, identified by the engagement's own project manager
    (identify,) = w.user_tasks("identify_problem_form")
    assert identify.assignee == TEAM["project_manager"]
    w.submit("identify_problem_form", problem_nature="result", problem_severity="major", more_problems=True)
    w.submit("identify_problem_form", problem_nature="team", problem_severity="minor", more_problems=False)
    assert w.count("survey.record_problem") == 2
    # 5.2.2: the engagement's team defines the measures, the first problem needs two
    define = w.user_tasks("define_measure_form")
    assert len(define) == 2 and {t.candidate_users for t in define} == {WHOLE_TEAM}
    measure(w, "labelled charts", "Li Ming", more=True)
    measure(w, "a named contact", "Chen Jing")
    measure(w, "a summary page", "Zhao Lei")
    assert w.count("survey.define_measure") == 3
    # 5.2.3: those the measures name rectify, and report progress regularly while they work
    rectify = w.user_tasks("rectify_and_report_form")
    assert {t.candidate_users for t in rectify} == {",Li Ming,Zhao Lei,", ",Chen Jing,"}
    w.elapse("progress_report_cycle")
    assert open_tasks(w).count("report_progress_form") == 2
    w.submit("report_progress_form", progress_report="charts relabelled, summary drafted")
    w.submit("report_progress_form", progress_report="contact named, client informed")
    assert w.count("survey.report_progress") == 2
    w.submit("rectify_and_report_form", problem_solved=False)  # not solved: a further measure
    w.submit("rectify_and_report_form", problem_solved=True)
    measure(w, "walk the client through", "Wang Fang")
    w.submit("rectify_and_report_form", problem_solved=True)
    assert w.count("survey.define_measure") == 4 and w.count("survey.report_progress") == 5
    assert open_tasks(w) == []
    w.elapse("maintenance_period")
    assert w.instance("follow_up").status == "COMPLETED"


@scenario
def client_feedback_leads_to_rectification(w: World) -> None:
    """5.2.1: a satisfied survey, but the client's feedback points to a problem."""
    w.start("follow_up", engagement_id="E-FEEDBACK", client_id="client-7", **TEAM)
    w.submit("plan_survey_form", survey_method="questionnaire", survey_date="2030-06-01")
    w.elapse("survey_date_reached")
    w.survey_ratings = HAPPY
    w.client("survey.response_received", "E-FEEDBACK", response_id="response-7")
    w.submit("analyse_dissatisfaction_form", feedback_problem=True)
    assert w.variables("follow_up")["rectification_needed"] is False
    w.submit("identify_problem_form", problem_nature="other", problem_severity="minor", more_problems=False)
    w.submit("define_measure_form", more_measures=False)
    w.submit("rectify_and_report_form", problem_solved=True)
    w.elapse("maintenance_period")
    assert w.instance("follow_up").status == "COMPLETED"


@scenario
def rectification_without_a_new_risk(w: World) -> None:
    w.start("follow_up", engagement_id="E-FIX", client_id="client-5", **TEAM)
    w.submit("plan_survey_form", survey_method="questionnaire", survey_date="2030-06-01")
    w.elapse("survey_date_reached")
    w.survey_ratings = UNHAPPY
    w.client("survey.response_received", "E-FIX", response_id="response-5")
    w.submit("analyse_dissatisfaction_form")
    w.submit(
        "identify_problem_form",
        problem_nature="communication",
        problem_severity="major",
        risk_noted=False,
        more_problems=False,
    )
    w.submit("define_measure_form", more_measures=False)
    w.submit("rectify_and_report_form", problem_solved=True)
    assert w.count("risk.register_risk") == 0 and w.count("survey.report_progress") == 1
    w.elapse("maintenance_period")
    assert w.instance("follow_up").status == "COMPLETED"


@scenario
def revisit_feedback_value_added_service_and_a_referral(w: World) -> None:
    """5.3.1 → 5.2.1: a problem the client reports at a revisit is rectified like a survey's; 5.3.2 a
    value-added service for the client's need; 5.3.3 a referred client becomes a new inquiry (2.1.2)."""
    eid = "E-REVISIT"
    w.start("follow_up", engagement_id=eid, client_id="client-8", **TEAM, **INQUIRY)
    w.submit("plan_survey_form", survey_method="questionnaire", survey_date="2030-06-01")
    w.elapse("survey_date_reached")
    w.survey_ratings = HAPPY
    w.client("survey.response_received", eid, response_id="response-8")
    w.submit("analyse_dissatisfaction_form")
    assert w.count("survey.record_problem") == 0
    w.elapse("revisit_cycle")
    w.submit(
        "revisit_client_form",
        revisit_method="phone",
        revisit_problem=True,
        offer_value_added_service=True,
        opportunity_found=True,
        opportunity="a market study for the client's supplier",
    )
    assert open_tasks(w) == ["identify_problem_form"], "the reported problem comes first"
    w.submit("identify_problem_form", problem_nature="result", problem_severity="minor", more_problems=False)
    measure(w, "explain the roadmap's cost model", "Li Ming")
    w.submit("rectify_and_report_form", problem_solved=True)
    w.submit(
        "provide_value_added_service_form",
        value_added_service="industry_news",
        value_added_need="the client watches EU lighting rules",
        value_added_resources="the research team's monthly digest",
    )
    assert w.count("crm.record_value_added_service") == 1
    (pursue,) = w.user_tasks("pursue_opportunity_form")
    assert pursue.assignee == "" and "business" in pursue.candidate_groups
    w.submit("pursue_opportunity_form", **REFERRAL)
    # 5.3.3: the referral becomes a new inquiry (2.1.2) of its own engagement, linked back to this one
    assert w.count("crm.record_opportunity") == 1
    assert list(w.worker.referrals.values()) == [("", eid)]
    ((key, payload),) = w.messages("inquiry.referred")
    assert key == payload["engagement_id"] == payload["referred_engagement_id"] != eid
    assert payload["referred_by"] == eid and payload["channel"] == "referral" and payload["lead_id"] == ""
    assert payload["client_name"] == REFERRAL["inquiry_client_name"]
    assert payload["client_industry"] == INQUIRY["client_industry"], "the form starts from the engagement's"
    w.elapse("maintenance_period", "follow_up")
    ends = w.ends("follow_up")
    assert "inquiry_referred" in ends and "problems_rectified" in ends and "opportunity_recorded" not in ends


# --- end of the follow-up scenarios ---------------------------------------------------------------


@scenario
def unacknowledged_warning_is_escalated(w: World) -> None:
    eid = "E-RISK"
    w.publish("engagement.started", eid, thrown=True, engagement_id=eid, client_name="Lone Risk Ltd")
    w.settle()
    w.publish("risk.indicator_breached", eid, indicator="cost_overrun_rate", value=0.2, status="red")
    w.settle()
    # a week later the breach lasts: the open warning is updated, not raised again (one wait, one escalation)
    w.publish("risk.indicator_breached", eid, indicator="cost_overrun_rate", value=0.25, status="red")
    w.settle()
    assert w.count("risk.raise_warning") == 2
    w.elapse("not_acknowledged")
    assert open_tasks(w) == ["handle_escalation_form"]
    w.submit("handle_escalation_form")
    # a second warning is acknowledged while it is being escalated: the service escalates nothing
    w.publish("risk.indicator_breached", eid, indicator="schedule_deviation_rate", value=0.1, status="amber")
    w.settle()
    w.plan("risk.escalate_warning", escalated_at=None, warning_status="acknowledged")
    w.elapse("not_acknowledged")
    assert "handle_escalation_form" not in open_tasks(w)
    w.elapse("risk_monitoring_cycle")
    w.submit("risk_review_form", measures_carried_out=True, measures_effective=False, new_risk_found=True)
    assess(w, "medium", "moderate", "mitigate")
    w.publish("engagement.closed", eid, thrown=True, engagement_id=eid)
    w.settle()
    assert w.instance("risk_management").status == "COMPLETED"
    ends = w.ends("risk_management")
    assert "escalation_handled" in ends and "acknowledged_meanwhile" in ends
    assert "warning_acknowledged" not in ends
    assert "response_carried_out" in ends and "risk_management_closed" in ends
    assert w.count("risk.escalate_warning") == 2


@scenario
def a_strategy_other_than_the_prescribed_one_needs_approval(w: World) -> None:
    """6.3: the matrix prescribes the strategy; another needs a reason and management's approval."""
    eid = "E-DEVIATE"
    w.publish("engagement.started", eid, thrown=True, engagement_id=eid, client_name="Bold Ltd")
    w.settle()
    # high likelihood, severe impact: 6.3.1 prescribes avoid; the project manager wants to accept it
    w.register_risk(eid, "implementation", "the client's data centre may flood")
    w.settle()
    assess(w, "high", "severe", "accept", deviation_reason="the client insures its data centre")
    assert open_tasks(w) == ["approve_deviation_form"]
    w.submit("approve_deviation_form", deviation_approved=False, deviation_note="avoid it (6.3.1)")
    assert open_tasks(w) == ["choose_strategy_form"], "a rejected strategy is chosen again"
    w.submit("choose_strategy_form")  # left as the form starts: the prescribed strategy
    assert w.count("risk.plan_response") == 2
    w.submit("change_plan_form", measures_effective=True)
    # medium likelihood, severe impact: transfer by default [assumption]; mitigation approved instead
    w.register_risk(eid, "implementation", "the key analyst may leave")
    w.settle()
    assess(w, "medium", "severe", "mitigate", follow_through=False, deviation_reason="no insurer covers it")
    w.submit("approve_deviation_form", deviation_approved=True)
    w.submit("carry_out_mitigation_form", measures_effective=False)
    # low likelihood, minor impact: accepted (6.3.4); it never occurs before the engagement ends
    w.register_risk(eid, "implementation", "a meeting room may be double-booked")
    w.settle()
    assess(w, "low", "minor", None)
    assert open_tasks(w) == []
    w.publish("engagement.closed", eid, thrown=True, engagement_id=eid)
    w.settle()
    assert w.instance("risk_management").status == "COMPLETED", "closing ends the wait for the accepted risk"
    ends = w.ends("risk_management")
    assert ends.count("response_carried_out") == 2 and "risk_management_closed" in ends
    assert w.count("risk.decide_deviation") == 2 and w.count("risk.complete_response") == 2


@scenario
def every_stage_starts_an_organised_risk_identification(w: World) -> None:
    """6.1.1: each stage the engagement enters starts an identification session (method, participants, risks
    found); 6.3.1: a risk to avoid found at the intake but decided once the engagement is past it changes the
    plan, because the register's current stage decides, not the stage the risk was found at."""
    eid = "E-STAGES"
    w.publish("engagement.started", eid, thrown=True, engagement_id=eid, client_name="Stage Ltd")
    w.settle()

    def enter(stage: str, manager: str) -> None:
        """The engagement enters `stage`, naming its project manager ("" while none is named)."""
        w.publish(
            "engagement.stage_started",
            eid,
            thrown=True,
            engagement_id=eid,
            engagement_stage=stage,
            project_manager=manager,
        )

    enter("intake", "")
    w.settle()
    assert [t.element_id for t in w.user_tasks()] == ["identify_risks_form"]
    w.submit(
        "identify_risks_form",
        session_method="brainstorming",
        team_participants="the proposal's consultants",
        department_participants="finance, legal",
        expert_participants="an industry expert",
        risks_found="the sponsor may leave; the budget is not approved",
    )
    assert open_tasks(w) == ["assess_risk_form", "assess_risk_form"], "every risk found is assessed"
    w.submit(
        "assess_risk_form",
        risk_category="personnel",
        identification_method="brainstorming",
        likelihood="high",
        impact="severe",
        affected_objective="schedule",
    )
    # no project manager is named during the intake before 2.3.2: the group keeps the task, no incident
    (choose,) = w.user_tasks("choose_strategy_form")
    assert (choose.assignee, choose.candidate_groups) == ("", ",project_manager,") and w.incidents() == []
    # the contract is signed before the risk is decided: the engagement enters its implementation and
    # names its project manager
    enter("implementation", "Wang Fang")
    w.settle()
    w.submit("identify_risks_form", session_method="checklist")  # none found this time
    w.submit("choose_strategy_form")  # the prescribed avoid, decided after the intake (6.3.1)
    (change,) = w.user_tasks("change_plan_form")
    assert change.assignee == "Wang Fang", "the follow-through goes to the engagement's project manager"
    w.submit("change_plan_form", measures_effective=True)
    assess(w, "low", "minor", None, manager="Wang Fang")
    # a later stage that names no one keeps the project manager the register records
    enter("delivery", "")
    w.settle()
    w.submit("identify_risks_form", session_method="delphi", risks_found="the client's data room closes")
    assess(w, "low", "minor", None, manager="Wang Fang")
    assert open_tasks(w) == []
    w.publish("engagement.closed", eid, thrown=True, engagement_id=eid)
    w.settle()
    ends = w.ends("risk_management")
    assert ends.count("stage_risks_identified") == 3 and "decline_project" not in ends
    assert w.count("risk.record_stage") == 3 and w.count("risk.record_identification") == 3
    assert w.instance("risk_management").status == "COMPLETED"


@scenario
def monthly_market_research(w: World) -> None:
    w.fire_start_timer("market_research")
    w.submit("collect_market_intelligence_form", lead_found=True)
    w.submit("record_lead_form", lead_source="trade_fair")
    w.submit("contact_lead_form", lead_outcome="no_need")
    w.fire_start_timer("market_research")
    w.submit("collect_market_intelligence_form", lead_found=False)
    runs = w.instances("market_research")
    assert [r.status for r in runs] == ["COMPLETED", "COMPLETED"]
    assert sorted(e for r in runs for e in w.ends_of(r)) == ["lead_not_converted", "lead_recorded", "no_lead"]
    assert w.count("crm.record_lead") == 1 and w.count("crm.record_market_insight") == 2


# ------------------------------------------------------------------------------------------------- tests

RECORD = Path(__file__).with_name("scenario_elements.json")
UPDATE = "CONSULTFLOW_UPDATE_TRACEABILITY"


@dataclass(frozen=True)
class Result:
    flows: dict[str, set[str]]  # file -> sequence flows taken
    elements: dict[str, set[str]]  # file -> elements reached


_results: dict[str, Result] = {}


def _run(name: str, tmp_path_factory: pytest.TempPathFactory) -> Result:
    """Runs a scenario once per session and returns what its instances did."""
    if name not in _results:
        world = World(Path(tmp_path_factory.mktemp(name)), INDEX)
        try:
            SCENARIOS[name](world)
            _results[name] = Result(world.flows(), world.elements())
        finally:
            world.close()
    return _results[name]


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_scenario(name: str, tmp_path_factory: pytest.TempPathFactory) -> None:
    assert _run(name, tmp_path_factory).flows


def test_the_scenarios_take_every_sequence_flow(tmp_path_factory: pytest.TempPathFactory) -> None:
    taken: dict[str, set[str]] = defaultdict(set)
    for name in SCENARIOS:
        for file, flows in _run(name, tmp_path_factory).flows.items():
            taken[file] |= flows
    missing: dict[str, list[str]] = {}
    print("\nsequence flow coverage of the path tests:")
    for file, diagram_flows in sorted(INDEX.flows.items()):
        total = set(diagram_flows)
        covered = len(taken[file] & total)
        print(f"  {file:28} {covered:3}/{len(total):3} flows  {100 * covered / len(total):5.1f} %")
        if covered < len(total):
            missing[file] = sorted(total - taken[file])
    assert not missing, f"flows no scenario takes: {missing}"


def test_the_traceability_record_of_the_scenarios_is_current(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """tests/bpmn/scenario_elements.json (read by `python -m consultflow.traceability`) says which elements
    each scenario reaches; CONSULTFLOW_UPDATE_TRACEABILITY=1 rewrites it."""
    record = {
        name: {file: sorted(ids) for file, ids in sorted(_run(name, tmp_path_factory).elements.items())}
        for name in SCENARIOS
    }
    text = json.dumps(record, indent=1, ensure_ascii=False, sort_keys=True) + "\n"
    if os.environ.get(UPDATE):
        RECORD.write_text(text, encoding="utf-8")
    assert RECORD.is_file() and RECORD.read_text(encoding="utf-8") == text, (
        f"{RECORD.name} is stale: run {UPDATE}=1 pytest tests/bpmn/test_paths.py, then "
        "python -m consultflow.traceability"
    )
