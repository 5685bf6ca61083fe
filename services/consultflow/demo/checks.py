"""What each story must have left in the services when it ends, read over their gRPC APIs.

The demo prints these results and exits 0 only when every story ended as scripted; the end-to-end tests
assert the same lists are empty.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC

from consultflow.api.contracts.v1 import contracts_pb2
from consultflow.api.crm.v1 import crm_pb2
from consultflow.api.delivery.v1 import delivery_pb2
from consultflow.api.orchestrator.v1 import orchestrator_pb2
from consultflow.api.risk.v1 import risk_pb2
from consultflow.api.survey.v1 import survey_pb2
from consultflow.demo.driver import TIMEOUT, Clients, Story, completed_elements, project_of


@dataclass
class Figures:
    """The numbers the demo prints at the end of an engagement."""

    satisfaction_score: float | None = None
    indicators: str = ""
    risks_by_level: str = ""


def check(clients: Clients, story: Story) -> list[str]:
    """Problems with a finished story's records; empty when it ended as scripted."""
    problems = (
        []
        if story.outcome == story.expect_outcome
        else [f"ended {story.outcome!r}, expected {story.expect_outcome!r}"]
    )
    problems += CHECKS[story.kind.lower()](clients, story)
    return problems


def _history(clients: Clients, story: Story) -> crm_pb2.IntakeHistory:
    return clients.crm.GetIntakeHistory(
        crm_pb2.GetIntakeHistoryRequest(engagement_id=story.key), timeout=TIMEOUT
    )


def _contracts(clients: Clients, story: Story) -> list[contracts_pb2.Contract]:
    return list(
        clients.contracts.ListContracts(
            contracts_pb2.ListContractsRequest(engagement_id=story.key), timeout=TIMEOUT
        ).contracts
    )


def _expect(problems: list[str], ok: bool, what: str) -> None:
    if not ok:
        problems.append(what)


def check_infeasible(clients: Clients, story: Story) -> list[str]:
    problems: list[str] = []
    history = _history(clients, story)
    inquiry = history.inquiries[0] if history.inquiries else None
    _expect(problems, inquiry is not None and inquiry.status == "declined", "the inquiry is not declined")
    _expect(
        problems,
        inquiry is not None and inquiry.decline_reason == "infeasible",
        "the decline reason is not 'infeasible'",
    )
    _expect(
        problems, len(history.assessments) == 1 and not history.assessments[0].feasible, "no no-go assessment"
    )
    quotations = clients.contracts.ListQuotations(
        contracts_pb2.ListQuotationsRequest(engagement_id=story.key), timeout=TIMEOUT
    )
    _expect(problems, len(quotations.quotations) == 0, "a quotation was prepared for an infeasible inquiry")
    return problems


def check_avoided(clients: Clients, story: Story) -> list[str]:
    problems: list[str] = []
    inquiry = _history(clients, story).inquiries[0]
    _expect(
        problems,
        inquiry.decline_reason == "risk_avoided",
        f"decline reason {inquiry.decline_reason!r}, not 'risk_avoided'",
    )
    risks = clients.risk.ListRisks(risk_pb2.ListRisksRequest(engagement_id=story.key), timeout=TIMEOUT).risks
    _expect(
        problems,
        any(r.strategy == "avoid" and r.stage == "intake" for r in risks),
        "no intake risk with the strategy 'avoid'",
    )
    _expect(problems, not _contracts(clients, story), "a contract was drafted although the risk was avoided")
    return problems


def check_unsigned(clients: Clients, story: Story) -> list[str]:
    problems: list[str] = []
    inquiry = _history(clients, story).inquiries[0]
    _expect(
        problems,
        inquiry.decline_reason == "offer_rejected",
        f"decline reason {inquiry.decline_reason!r}, not 'offer_rejected' (the client ended the negotiation)",
    )
    # 6.3: the prescribed strategy, another one chosen with a reason, rejected once and then approved
    risks = clients.risk.ListRisks(risk_pb2.ListRisksRequest(engagement_id=story.key), timeout=TIMEOUT).risks
    intake = [r for r in risks if r.stage == "intake"]
    _expect(
        problems,
        len(intake) == 1 and intake[0].suggested_strategy == "transfer" and intake[0].strategy == "mitigate",
        "the intake risk does not show the prescribed 'transfer' and the chosen 'mitigate'",
    )
    responses = clients.risk.ListResponses(
        risk_pb2.ListResponsesRequest(engagement_id=story.key), timeout=TIMEOUT
    ).responses
    deviations = sorted((r.planned_at.ToDatetime(), r.deviation, r.deviation_reason) for r in responses)
    _expect(
        problems,
        [d for _, d, _ in deviations] == ["rejected", "approved"],
        f"deviations {[d for _, d, _ in deviations]}, expected rejected then approved",
    )
    _expect(problems, all(reason for _, _, reason in deviations), "a deviation without its reason")
    approved = [r for r in responses if r.deviation == "approved"]
    _expect(
        problems,
        any(r.suggested_strategy == "transfer" and r.strategy == "mitigate" for r in approved),
        "the approved deviation does not keep the prescribed 'transfer' beside the chosen 'mitigate'",
    )
    # 2.4.3: refused once, the signing period ended once, never signed by the client
    contracts = _contracts(clients, story)
    _expect(problems, len(contracts) == 1, f"{len(contracts)} contracts, expected one with several versions")
    if contracts:
        contract = contracts[0]
        notes = [v.change_note for v in contract.versions]
        _expect(
            problems,
            any("refused" in n for n in notes) and any("signing period" in n for n in notes),
            f"contract versions {notes} do not show a refusal and an ended signing period",
        )
        _expect(problems, not contract.client_signature.signatory, "the client signed after all")
        _expect(problems, contract.status == "draft", f"the contract is {contract.status}, not back in draft")
    return problems


def _one_distributed_contract(
    clients: Clients, story: Story, problems: list[str]
) -> contracts_pb2.Contract | None:
    contracts = _contracts(clients, story)
    _expect(problems, len(contracts) == 1, f"{len(contracts)} contracts, expected exactly one")
    if not contracts:
        return None
    contract = contracts[0]
    _expect(problems, contract.status == "distributed", f"the contract is {contract.status}, not distributed")
    return contract


def _follow_up(clients: Clients, story: Story, problems: list[str], happy: bool) -> crm_pb2.Relationship:
    """Checks the survey, the client's problems and the revisits; returns the relationship it read."""
    surveys = clients.survey.ListSurveys(
        survey_pb2.ListSurveysRequest(engagement_id=story.key), timeout=TIMEOUT
    ).surveys
    _expect(problems, len(surveys) == 1 and surveys[0].status == "analysed", "the survey was not analysed")
    if surveys:
        analysis = clients.survey.GetAnalysis(
            survey_pb2.GetAnalysisRequest(survey_id=surveys[0].survey_id), timeout=TIMEOUT
        )
        if happy:
            _expect(
                problems,
                analysis.satisfaction_score >= 80,
                f"score {analysis.satisfaction_score} for a happy client",
            )
        else:
            _expect(
                problems,
                analysis.satisfaction_score < 80,
                f"score {analysis.satisfaction_score} for an unhappy client",
            )
    problems_found = clients.survey.ListProblems(
        survey_pb2.ListProblemsRequest(engagement_id=story.key), timeout=TIMEOUT
    ).problems
    if happy:
        _expect(problems, not problems_found, "a problem was recorded for a satisfied client")
    else:
        # two problems (5.2.1), three measures (5.2.2), one problem not solved at first (5.2.3)
        _expect(
            problems,
            len(problems_found) == 2 and all(p.status == "solved" for p in problems_found),
            "the client's two problems are not solved",
        )
        measures = sum(len(p.measures) for p in problems_found)
        _expect(problems, measures == 4, f"{measures} measures, expected 4 (two, one, and one more)")
        reports = sum(len(p.progress_reports) for p in problems_found)
        _expect(
            problems, reports == 3, f"{reports} progress reports, expected 3 (not yet solved, solved, solved)"
        )
    client_id = _history(clients, story).inquiries[0].client_id
    relationship = clients.crm.GetRelationship(
        crm_pb2.GetRelationshipRequest(client_id=client_id), timeout=TIMEOUT
    )
    _expect(problems, len(relationship.revisits) >= 1, "no periodic revisit was recorded")
    return relationship


def check_onsite(clients: Clients, story: Story) -> list[str]:
    problems: list[str] = []
    contract = _one_distributed_contract(clients, story, problems)
    if contract is not None:
        verdicts = [r.verdict for r in contract.legal_reviews]
        _expect(
            problems,
            verdicts == ["revise", "approved"],
            f"legal reviews {verdicts}, expected revise then approved",
        )
        proposal = clients.contracts.GetProposal(
            contracts_pb2.GetProposalRequest(proposal_id=contract.proposal_id), timeout=TIMEOUT
        )
        reviews = [r.verdict for r in proposal.reviews]
        _expect(
            problems,
            reviews == ["revise", "approved"],
            f"proposal reviews {reviews}, expected revise then approved",
        )
    project = project_of(clients, story)
    if project is None:
        return [*problems, "no project was opened"]
    solutions = clients.delivery.ListSolutions(
        delivery_pb2.ListSolutionsRequest(project_id=project.project_id), timeout=TIMEOUT
    ).solutions
    _expect(problems, len(solutions) == 2, f"{len(solutions)} solution versions, expected 2 (revised once)")
    deliveries = clients.delivery.ListDeliveries(
        delivery_pb2.ListDeliveriesRequest(project_id=project.project_id), timeout=TIMEOUT
    ).deliveries
    _expect(
        problems,
        [d.mode for d in deliveries] == ["onsite"],
        f"deliveries {[d.mode for d in deliveries]}, expected on-site",
    )
    acceptances = clients.delivery.ListAcceptances(
        delivery_pb2.ListAcceptancesRequest(project_id=project.project_id), timeout=TIMEOUT
    ).acceptances
    conclusions = [a.conclusion for a in acceptances]
    _expect(
        problems,
        conclusions == ["failed", "passed"],
        f"acceptance rounds {conclusions}, expected failed then passed",
    )
    _expect(problems, project.phase == "follow_up", f"the project is in {project.phase}, not follow_up")
    relationship = _follow_up(clients, story, problems, happy=True)
    _expect(
        problems, len(relationship.value_added_services) >= 1, "no value-added service was recorded (5.3.2)"
    )
    _expect(problems, len(relationship.opportunities) >= 1, "no cooperation opportunity was recorded (5.3.3)")
    listed = clients.crm.ListInquiries(crm_pb2.ListInquiriesRequest(page_size=500), timeout=TIMEOUT)
    inquiries = listed.inquiries
    referred = [i for i in inquiries if i.referred_by == story.key]
    _expect(
        problems,
        len(referred) == 1 and referred[0].engagement_id != story.key,
        "the referred client's inquiry does not start a new engagement linked back (5.3.3 → 2.1.2)",
    )
    if referred:
        # the new engagement runs like any inquiry (nobody plays it in the demo): risk management started
        risk = clients.orchestrator.ListInstances(
            orchestrator_pb2.ListInstancesRequest(
                process_id="risk_management", business_key=referred[0].engagement_id
            ),
            timeout=TIMEOUT,
        ).instances
        _expect(problems, len(risk) == 1, "the referred engagement has no risk management of its own")
    return problems


def check_online(clients: Clients, story: Story) -> list[str]:
    problems: list[str] = []
    _one_distributed_contract(clients, story, problems)
    project = project_of(clients, story)
    if project is None:
        return [*problems, "no project was opened"]
    snapshots = clients.delivery.ListIndicatorSnapshots(
        delivery_pb2.ListIndicatorSnapshotsRequest(project_id=project.project_id), timeout=TIMEOUT
    ).snapshots
    _expect(
        problems, any(s.breached_indicators for s in snapshots), "no indicator snapshot crossed its threshold"
    )
    problems += _monitored_before_execution(clients, story, project)
    warnings = clients.risk.ListWarnings(
        risk_pb2.ListWarningsRequest(engagement_id=story.key), timeout=TIMEOUT
    ).warnings
    indicator_warnings = [w for w in warnings if w.trigger == "indicator"]
    _expect(problems, bool(indicator_warnings), "no early warning was raised for the breached indicator")
    _expect(problems, all(w.status == "acknowledged" for w in warnings), "a warning was never acknowledged")
    deliveries = clients.delivery.ListDeliveries(
        delivery_pb2.ListDeliveriesRequest(project_id=project.project_id), timeout=TIMEOUT
    ).deliveries
    _expect(
        problems,
        [d.mode for d in deliveries] == ["online"],
        f"deliveries {[d.mode for d in deliveries]}, expected online",
    )
    _follow_up(clients, story, problems, happy=False)
    return problems


def _monitored_before_execution(clients: Clients, story: Story, project: delivery_pb2.Project) -> list[str]:
    """3.4.2 and 3.5.2 throughout: the indicators were evaluated and the client had a progress report
    after the kick-off and before execution started (3.4.1)."""
    problems: list[str] = []
    if not project.HasField("execution_started_at"):
        return ["execution never started"]
    started = project.execution_started_at.ToDatetime(tzinfo=UTC)
    done = completed_elements(clients, story)
    evaluated = [t for t in done.get("evaluate_indicators", []) if t < started]
    _expect(problems, bool(evaluated), "the indicators were not evaluated before execution started (3.4.2)")
    reports = clients.delivery.ListCommunications(
        delivery_pb2.ListCommunicationsRequest(project_id=project.project_id, direction="external"),
        timeout=TIMEOUT,
    ).communications
    early = [
        c for c in reports if c.kind == "progress_report" and c.occurred_at.ToDatetime(tzinfo=UTC) < started
    ]
    _expect(problems, bool(early), "the client had no progress report before execution started (3.5.2)")
    return problems


CHECKS: dict[str, Callable[[Clients, Story], list[str]]] = {
    "infeasible": check_infeasible,
    "avoided": check_avoided,
    "onsite": check_onsite,
    "online": check_online,
    "unsigned": check_unsigned,
}


def figures(clients: Clients, story: Story) -> Figures:
    """Satisfaction score, the last indicator snapshot and the engagement's risks by level."""
    result = Figures()
    surveys = clients.survey.ListSurveys(
        survey_pb2.ListSurveysRequest(engagement_id=story.key), timeout=TIMEOUT
    ).surveys
    if surveys and surveys[0].status == "analysed":
        result.satisfaction_score = clients.survey.GetAnalysis(
            survey_pb2.GetAnalysisRequest(survey_id=surveys[0].survey_id), timeout=TIMEOUT
        ).satisfaction_score
    project = project_of(clients, story)
    if project is not None:
        snapshots = clients.delivery.ListIndicatorSnapshots(
            delivery_pb2.ListIndicatorSnapshotsRequest(project_id=project.project_id), timeout=TIMEOUT
        ).snapshots
        if snapshots:
            s = snapshots[0]
            result.indicators = (
                f"schedule deviation {s.schedule_deviation_rate:.0%} ({s.schedule_status}), "
                f"quality pass {s.quality_pass_rate:.0%} ({s.quality_status}), "
                f"cost overrun {s.cost_overrun_rate:.0%} ({s.cost_status})"
            )
    risks = clients.risk.ListRisks(risk_pb2.ListRisksRequest(engagement_id=story.key), timeout=TIMEOUT).risks
    levels: dict[str, int] = {}
    for risk in risks:
        levels[risk.level or "unassessed"] = levels.get(risk.level or "unassessed", 0) + 1
    result.risks_by_level = ", ".join(f"{level} {count}" for level, count in sorted(levels.items())) or "none"
    return result
