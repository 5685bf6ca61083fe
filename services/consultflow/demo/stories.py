"""The sample engagements `consultflow demo` runs: together they take every branch the regulation has.

- DEMO-INFEASIBLE: the feasibility assessment says no; the intake ends with the reason recorded (2.2.2).
- DEMO-ONSITE: a risk noted at intake is mitigated; the proposal is sent back once, the contract comes back
  from legal once, the solution is revised once; on-site delivery; the first acceptance fails, is rectified
  and passes (4.4.3); a satisfied client; periodic revisits with a value-added service and a referred client
  who becomes a new inquiry (5.3.3 → 2.1.2).
- DEMO-ONLINE: a work package falls behind, monitoring breaches its threshold, a corrective action is taken
  and risk management raises an early warning the project manager acknowledges (3.4.2, 6.4.2); online
  delivery after a failed channel test; an unhappy client: two problems, measures by the team, rectification
  reported until solved.
- DEMO-AVOIDED: a likely, severe risk found at intake is avoided: risk management stops the intake (6.3.1).
- DEMO-UNSIGNED: the risk matrix prescribes transferring a risk found at intake; the project manager
  chooses to mitigate it instead, management rejects the first reason and approves the second (6.3); the
  client refuses to sign the contract, then lets the signing period end (2.4.3), and after negotiating
  again ends the negotiation: not taken on.
In DEMO-ONLINE the solution review waits until monitoring has evaluated the indicators and the client has
had a progress report: both run from the kick-off, before execution starts (3.4.2, 3.5.2).
"""

from __future__ import annotations

from typing import Any

from consultflow.demo.driver import (
    Story,
    day,
    fall_behind_schedule,
    monitored_before_execution,
    warning_acknowledged,
)

FEASIBLE = {"technical_feasible": True, "economic_feasible": True, "time_feasible": True, "take_on": True}
APPROVED = {"proposal_verdict": "approved"}
ALL_CHECKS = {"logic_ok": True, "consistency_ok": True, "accuracy_ok": True, "contract_conformance_ok": True}
# 3.3.2: the experts' verdict on each review criterion
CRITERIA_MET = {f"{c}_verdict": "met" for c in ("soundness", "feasibility", "innovation", "risk_response")}
HAPPY = {"service_quality": 5, "result_quality": 4, "team_performance": 5, "overall_satisfaction": 5}
UNHAPPY = {"service_quality": 4, "result_quality": 2, "team_performance": 3, "overall_satisfaction": 3}


def inquiry(client: str, contact: str, email: str, question: str, channel: str = "email") -> dict[str, Any]:
    return {
        "channel": channel,
        "client_name": client,
        "client_industry": "manufacturing",
        "contact_name": contact,
        "contact_email": email,
        "contact_phone": "",
        "question": question,
    }


def common(**decisions: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Decisions every engagement makes the same way unless a story says otherwise."""
    base: dict[str, list[dict[str, Any]]] = {
        "understand_needs": [{"communication_mode": "phone"}],
        "assess_feasibility": [FEASIBLE],
        "review_proposal": [APPROVED],
        "legal_review": [{"legal_verdict": "approved"}],
        "collect_data_form": [{"site_visit_needed": False}],
        "review_solution": [{**CRITERIA_MET, "solution_verdict": "approved"}],
        "check_quality_form": [{"quality_passed": True}],
        "review_deliverables_form": [ALL_CHECKS],
        "delivery_needs_form": [
            {"client_preference": "onsite", "needs_demonstration": True, "client_remote": False}
        ],
        "prepare_online_form": [{"platform": "video_conference", "channel_tested": True}],
        # 4.3.1: the client understands and accepts the results after one presentation
        "present_onsite_form": [{"results_accepted": True}],
        "plan_survey_form": [{"survey_method": "questionnaire"}],
        "rectify_and_report_form": [{"problem_solved": True}],
        "revisit_client_form": [{"revisit_method": "phone"}],
        "assess_risk_form": [
            {
                "risk_category": "personnel",
                "identification_method": "brainstorming",
                "likelihood": "medium",
                "likelihood_basis": "staff turnover in the client's sector over the last two years",
                "affected_objective": "schedule",
                "impact": "moderate",
            }
        ],
        # 6.1.1: each stage's organised identification (risks the stories need are noted where they arise)
        "identify_risks_form": [
            {
                "session_method": "checklist",
                "team_participants": "the engagement's consultants",
                "department_participants": "finance, legal",
                "expert_participants": "an industry expert",
                "risks_found": "無 none",
            }
        ],
        "choose_strategy_form": [{"strategy": "mitigate"}],
        "risk_review_form": [{"measures_carried_out": True, "measures_effective": True}],
        "assess_change_form": [{"change_decision": "accepted"}],
        "identify_problem_form": [{"problem_nature": "result", "problem_severity": "moderate"}],
    }
    return {**base, **decisions}


def stories(run: str) -> list[Story]:
    """The demo's engagements; `run` makes their keys unique so a demo can run again on the same system."""
    return [
        Story(
            key=f"DEMO-INFEASIBLE-{run}",
            title="An inquiry the firm cannot take on",
            inquiry=inquiry(
                "Harbin Ice Sculpture Co.",
                "Mr Liu",
                "liu@ice.example",
                "Can you certify our sculptures as art?",
            ),
            decisions=common(
                assess_feasibility=[
                    {
                        "technical_feasible": False,
                        "technical_reason": "Art certification is outside our expertise",
                        "economic_feasible": True,
                        "time_feasible": True,
                        "take_on": False,
                        "take_on_reasons": "Not technically feasible for us",
                    }
                ]
            ),
            expect_outcome="not taken on (infeasible)",
        ),
        Story(
            key=f"DEMO-ONSITE-{run}",
            title="Every review loop, on-site delivery, a failed acceptance, revisits",
            inquiry=inquiry(
                "深圳照明 Shenzhen Lighting",
                "陳女士 Ms Chen",
                "chen@shenzhen-lighting.example",
                "Enter the European market",
                "hotline",
            ),
            decisions=common(
                understand_needs=[{"communication_mode": "face_to_face"}],
                assess_feasibility=[{**FEASIBLE, "risk_noted": True, "risk_category": "personnel"}],
                review_proposal=[
                    {"proposal_verdict": "revise", "review_comments": "Add a partner screening step"},
                    APPROVED,
                ],
                legal_review=[
                    {
                        "legal_verdict": "revise",
                        "legal_opinions": "breach_liability: cap it at the contract value",
                    },
                    {"legal_verdict": "approved"},
                ],
                collect_data_form=[{"site_visit_needed": True}],
                review_solution=[
                    {
                        **CRITERIA_MET,
                        "feasibility_verdict": "not_met",
                        "feasibility_comments": "Three markets at once overstretch the team",
                        "solution_verdict": "revise",
                        "review_comments": "Phase the entry",
                    },
                    {**CRITERIA_MET, "solution_verdict": "approved"},
                ],
                revisit_client_form=[
                    {
                        "revisit_method": "visit",
                        "offer_value_added_service": True,
                        "opportunity_found": True,
                        "opportunity": "A follow-on study for the Middle East",
                    },
                    {"revisit_method": "phone"},
                ],
                provide_value_added_service_form=[{"value_added_service": "free_training"}],
                # 5.3.3: the client recommends another company, which becomes a new inquiry (2.1.2)
                pursue_opportunity_form=[
                    {
                        "opportunity_kind": "referral",
                        "refer_as_inquiry": True,
                        "inquiry_client_name": "佛山陶瓷 Foshan Ceramics",
                        "inquiry_contact_name": "郭先生 Mr Guo",
                        "inquiry_contact_email": "guo@foshan-ceramics.example",
                        "inquiry_question": "A market study for the Middle East",
                    }
                ],
            ),
            acceptance=["failed", "passed"],
            ratings=HAPPY,
        ),
        Story(
            key=f"DEMO-ONLINE-{run}",
            title="Behind schedule: corrective action and a warning; online delivery; an unhappy client",
            inquiry=inquiry(
                "杭州茶業 Hangzhou Tea",
                "王先生 Mr Wang",
                "wang@hangzhou-tea.example",
                "Digitalise our sales channels",
                "online",
            ),
            decisions=common(
                # the engagement began a month ago, so a work package can be late (3.4.2)
                negotiate_contract=[{"service_start": day(-30), "service_end": day(90)}],
                delivery_needs_form=[
                    {"client_preference": "online", "needs_demonstration": False, "client_remote": True}
                ],
                prepare_online_form=[
                    {"platform": "video_conference", "channel_tested": False},
                    {"platform": "video_conference", "channel_tested": True},
                ],
                # 5.2.1 two problems in one survey; 5.2.2 the first gets two measures
                identify_problem_form=[
                    {"problem_nature": "result", "problem_severity": "moderate", "more_problems": True},
                    {
                        "problem_nature": "communication",
                        "problem_severity": "minor",
                        "problem_description": "Answers to the client's questions took a week",
                        "more_problems": False,
                    },
                ],
                define_measure_form=[
                    {"more_measures": True},
                    {"measure": "One named contact answers the client", "responsible_person": "Li Ming"},
                ],
                rectify_and_report_form=[
                    {"problem_solved": False, "progress_report": "Estimates half done"},
                    {"problem_solved": True},
                ],
                revisit_client_form=[{"revisit_method": "email"}],
            ),
            ratings=UNHAPPY,
            on_execution=fall_behind_schedule,
            execution_done_when=warning_acknowledged,
            hold_until={"review_solution": monitored_before_execution},
        ),
        Story(
            key=f"DEMO-AVOIDED-{run}",
            title="A risk too severe to take: the intake stops",
            inquiry=inquiry(
                "Atlantis Mining Ltd.", "Ms Reed", "reed@atlantis.example", "Restructure our offshore mines"
            ),
            decisions=common(
                assess_feasibility=[
                    {
                        **FEASIBLE,
                        "risk_noted": True,
                        "risk_category": "financial",
                        "risk_description": "The client is close to insolvency",
                    }
                ],
                assess_risk_form=[
                    {
                        "risk_category": "financial",
                        "identification_method": "checklist",
                        "likelihood": "high",
                        "likelihood_basis": "two years of losses and a creditor's filing",
                        "affected_objective": "cost",
                        "impact": "severe",
                    }
                ],
                choose_strategy_form=[{"strategy": "avoid", "measures": "Decline the engagement"}],
            ),
            held={"prepare_quotation_form"},  # nobody quotes while risk management decides
            expect_outcome="declined (risk avoided)",
        ),
        Story(
            key=f"DEMO-UNSIGNED-{run}",
            title="Another strategy than the matrix prescribes; a contract the client does not sign",
            inquiry=inquiry(
                "武漢光電 Wuhan Optics",
                "趙女士 Ms Zhao",
                "zhao@wuhan-optics.example",
                "Forecast demand for our new sensors",
            ),
            decisions=common(
                assess_feasibility=[
                    {
                        **FEASIBLE,
                        "risk_noted": True,
                        "risk_category": "technical",
                        "risk_description": "The client's ERP migration may leave us without sales data",
                    }
                ],
                # 6.2.3: medium likelihood × severe impact → the matrix prescribes transfer
                assess_risk_form=[
                    {
                        "risk_category": "technical",
                        "identification_method": "checklist",
                        "likelihood": "medium",
                        "likelihood_basis": "the client's ERP migration is already three months late",
                        "affected_objective": "schedule",
                        "impact": "severe",
                    }
                ],
                # 6.3: the project manager chooses another strategy, with a reason; management decides
                choose_strategy_form=[
                    {
                        "strategy": "mitigate",
                        "measures": "Ask the client for a data extract before the migration",
                        "deviation_reason": "Transferring costs too much",
                    },
                    {
                        "strategy": "mitigate",
                        "measures": "A data extract before the migration; weekly checks with the client's IT",
                        "deviation_reason": "Nobody insures or takes over a client's data access; an extract "
                        "before the migration removes most of the risk at little cost",
                    },
                ],
                approve_deviation_form=[
                    {"deviation_approved": False, "deviation_note": "Say why the risk cannot be transferred"},
                    {"deviation_approved": True, "deviation_note": "Agreed: the extract is the better cover"},
                ],
                # 2.4.1 again after the refusal, and again after the signing period ended
                negotiate_contract=[
                    {"negotiation_outcome": "agreed"},
                    {
                        "negotiation_outcome": "agreed",
                        "breach_liability": "Liability capped at twice the contract value",
                        "negotiation_notes": "The client asked for a higher liability cap; agreed",
                    },
                    {
                        "negotiation_outcome": "client_ends",
                        "negotiation_notes": "The client postponed the project indefinitely",
                    },
                ],
            ),
            signatures=["refuse", "let_lapse"],
            expect_outcome="not taken on (offer_rejected)",
        ),
    ]
