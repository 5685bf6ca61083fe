"""The delivery operations diagrams call as service tasks (`delivery.<operation>`, docs/operations.md).

Each handler reads the task's parameters, builds the domain values, runs one use case and returns the
variables the catalogue names. Handlers get the peers they need through `Dependencies`; `bind` turns them
into the platform's `(uow, job) -> variables` handlers.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from consultflow.delivery import domain, usecases
from consultflow.delivery.adapters import Dependencies
from consultflow.delivery.domain import (
    ChangeDecision,
    ChannelNotTested,
    DeliverableSetStatus,
    DocumentCategory,
    FindingKind,
    MaterialsReview,
    Member,
    OnsitePlan,
    Platform,
    Role,
    Verdict,
)
from consultflow.platform.db import UnitOfWork
from consultflow.platform.errors import BpmnError, InvalidArgument
from consultflow.platform.jobs import Job, JobHandler
from consultflow.platform.timeutil import aware

Variables = Mapping[str, Any]
DeliveryHandler = Callable[[UnitOfWork, Job, Dependencies], Variables]


def _iso(moment: datetime | None) -> str | None:
    value = aware(moment)
    return value.isoformat() if value else None


def _engagement(job: Job) -> str:
    return str(job.get("engagement_id", "") or job.business_key or "")


# --- 3.1 ---


def open_project(uow: UnitOfWork, job: Job, deps: Dependencies) -> Variables:
    """3.1.1: the project of a signed contract (scope, schedule, deliverables from contracts)."""
    project = usecases.open_project(uow, deps.contracts, str(job.get("contract_id")), _engagement(job))
    return {"project_id": project.project_id}


def form_team(uow: UnitOfWork, job: Job, deps: Dependencies) -> Variables:
    """3.1.1: the project manager and comma-separated consultants, analysts and assistants."""
    duties = domain.duties_by_role(job.get("duties", ""))
    members = [
        Member(name, role, duties.get(role, ""))
        for role, field in (
            (Role.PROJECT_MANAGER, "project_manager"),
            (Role.CONSULTANT, "consultants"),
            (Role.ANALYST, "analysts"),
            (Role.ASSISTANT, "assistants"),
        )
        for name in domain.names(job.get(field, ""), field)
    ]
    rows = usecases.form_team(uow, str(job.get("project_id")), members)
    return {"team_size": usecases.team_size(rows)}


def record_kickoff(uow: UnitOfWork, job: Job, deps: Dependencies) -> Variables:
    """3.1.2: the kick-off meeting."""
    kickoff = usecases.record_kickoff(
        uow,
        str(job.get("project_id")),
        domain.parse_date(job.get("kickoff_date"), "kickoff_date"),
        domain.names(job.get("attendees"), "attendees"),
        job.text("briefing", ""),
        job.text("rules_agreed", ""),
        domain.names(job.get("materials_handed_out", ""), "materials_handed_out"),
    )
    return {"kickoff_id": kickoff.kickoff_id}


# --- 3.2 ---


def archive_research_data(uow: UnitOfWork, job: Job, deps: Dependencies) -> Variables:
    """3.2.1: one document per line (`title | source | classification | link`) per kind of data."""
    documents = [
        document
        for category, field in (
            (DocumentCategory.INDUSTRY, "industry_data"),
            (DocumentCategory.CLIENT_INTERNAL, "client_data"),
            (DocumentCategory.MARKET, "market_data"),
        )
        for document in domain.documents_from_lines(category, job.get(field, ""), field)
    ]
    if not documents:
        raise InvalidArgument(
            "industry_data", "no documents: name at least one of industry, client or market data"
        )
    rows = usecases.add_documents(uow, str(job.get("project_id")), documents)
    return {"documents_archived": len(rows)}


def record_site_visit(uow: UnitOfWork, job: Job, deps: Dependencies) -> Variables:
    """3.2.2: an on-site visit."""
    visit = usecases.record_site_visit(
        uow,
        str(job.get("project_id")),
        domain.parse_date(job.get("visit_date"), "visit_date"),
        domain.names(job.get("visitors", ""), "visitors"),
        domain.names(job.get("interviewees", ""), "interviewees"),
        job.text("processes_observed", ""),
        job.text("observations", ""),
    )
    return {"site_visit_id": visit.site_visit_id}


def record_analysis(uow: UnitOfWork, job: Job, deps: Dependencies) -> Variables:
    """3.2.3: problems and opportunities (one per line) and a risk found, registered with risk over gRPC."""
    findings = [
        domain.finding(FindingKind.PROBLEM, p) for p in domain.lines(job.get("problems", ""), "problems")
    ]
    findings += [
        domain.finding(FindingKind.OPPORTUNITY, o)
        for o in domain.lines(job.get("opportunities", ""), "opportunities")
    ]
    if domain.parse_bool(job.get("risk_found", False), "risk_found"):
        description = job.text("risk_description", "")
        if not description.strip():
            raise InvalidArgument("risk_description", "is required when a risk was found")
        findings.append(domain.finding(FindingKind.RISK, description, job.text("risk_category", "")))
    analysis, rows = usecases.record_analysis(
        uow, deps.risks, str(job.get("project_id")), findings, f"job:{job.key}", _engagement(job)
    )
    return {"analysis_id": analysis.analysis_id, "risks_reported": sum(1 for r in rows if r.risk_id)}


# --- 3.3 ---


def submit_solution(uow: UnitOfWork, job: Job, deps: Dependencies) -> Variables:
    """3.3.1: a solution version with its flow chart and mind map links."""
    artefacts = [
        domain.artefact(kind, "", link, field)
        for kind, field in (
            (domain.ArtefactKind.FLOW_CHART, "flow_chart_link"),
            (domain.ArtefactKind.MIND_MAP, "mind_map_link"),
        )
        if (link := job.text(field, "").strip())
    ]
    solution = usecases.submit_solution(
        uow, str(job.get("project_id")), job.text("solution_summary", ""), artefacts
    )
    return {"solution_id": solution.solution_id, "solution_version": solution.version}


def record_solution_review(uow: UnitOfWork, job: Job, deps: Dependencies) -> Variables:
    """3.3.2: the expert review's verdict."""
    solution = usecases.review_solution(
        uow,
        str(job.get("solution_id")),
        domain.choice(Verdict, job.get("solution_verdict"), "solution_verdict"),
        job.text("review_comments", ""),
        job.text("reviewer", ""),
    )
    return {"solution_approved": solution.status == Verdict.APPROVED}


# --- 3.4 ---


def start_execution(uow: UnitOfWork, job: Job, deps: Dependencies) -> Variables:
    """3.4.1: the baseline work plan from the contract's schedule."""
    plan = usecases.start_execution(uow, str(job.get("project_id")))
    return {"work_plan_id": plan.work_plan.work_plan_id}


def record_meeting(uow: UnitOfWork, job: Job, deps: Dependencies) -> Variables:
    """3.4.1, 3.5.1: a project meeting; decisions one per line."""
    held_on = job.get("held_on", "")
    meeting = usecases.record_meeting(
        uow,
        str(job.get("project_id")),
        domain.parse_date(held_on, "held_on") if held_on else usecases.today(),
        job.text("progress_report", ""),
        job.text("problems", ""),
        domain.lines(job.get("decisions", ""), "decisions"),
        job.text("internal_updates", ""),
    )
    return {"meeting_id": meeting.meeting_id}


def evaluate_indicators(uow: UnitOfWork, job: Job, deps: Dependencies) -> Variables:
    """3.4.2: the indicators as of today; a breach publishes `indicator.breached`."""
    project = usecases.get_project(uow.session, str(job.get("project_id")))
    engagement = _engagement(job)
    if engagement and engagement != project.engagement_id:
        raise InvalidArgument("engagement_id", f"the project belongs to {project.engagement_id!r}")
    snapshot, _ = usecases.evaluate_indicators(uow, deps.thresholds, project.project_id)
    return {
        "schedule_deviation_rate": float(snapshot.schedule_deviation_rate),
        "quality_pass_rate": float(snapshot.quality_pass_rate),
        "cost_overrun_rate": float(snapshot.cost_overrun_rate),
        "indicators_breached": bool(snapshot.breached_indicators),
        "breached_indicators": list(snapshot.breached_indicators),
    }


def record_corrective_action(uow: UnitOfWork, job: Job, deps: Dependencies) -> Variables:
    """3.4.2: the corrective action taken."""
    action, _ = usecases.record_corrective_action(
        uow,
        str(job.get("project_id")),
        job.text("corrective_action", ""),
        job.text("action_owner", ""),
    )
    return {"corrective_action_id": action.corrective_action_id}


def complete_execution(uow: UnitOfWork, job: Job, deps: Dependencies) -> Variables:
    """3.4.1: the project manager confirms completion."""
    project = usecases.complete_execution(uow, str(job.get("project_id")), job.text("completion_summary", ""))
    return {"execution_completed_at": _iso(project.execution_completed_at)}


# --- 3.5 ---


def send_progress_report(uow: UnitOfWork, job: Job, deps: Dependencies) -> Variables:
    """3.5.2: a progress report to the client."""
    entry = usecases.send_progress_report(uow, str(job.get("project_id")))
    return {"progress_report_id": entry.communication_id}


def record_change_response(uow: UnitOfWork, job: Job, deps: Dependencies) -> Variables:
    """3.5.2: the answer to the client's change request."""
    change = usecases.respond_to_change(
        uow,
        str(job.get("change_request_id")),
        domain.choice(ChangeDecision, job.get("change_decision"), "change_decision"),
        job.text("change_response", ""),
        str(job.get("project_id")),
    )
    return {"change_request_status": change.status}


# --- 4.1-4.3 ---


def compile_deliverables(uow: UnitOfWork, job: Job, deps: Dependencies) -> Variables:
    """4.1.1: one deliverable per line (`name | link`)."""
    deliverable_set = usecases.compile_deliverables(
        uow,
        str(job.get("project_id")),
        domain.deliverable_items(job.get("deliverables", "")),
        job.text("results_summary", ""),
    )
    return {"deliverable_set_version": deliverable_set.version}


def record_deliverable_review(uow: UnitOfWork, job: Job, deps: Dependencies) -> Variables:
    """4.1.2: the four checks; approved only when all pass."""
    review = MaterialsReview(
        logic_ok=domain.parse_bool(job.get("logic_ok"), "logic_ok"),
        consistency_ok=domain.parse_bool(job.get("consistency_ok"), "consistency_ok"),
        accuracy_ok=domain.parse_bool(job.get("accuracy_ok"), "accuracy_ok"),
        contract_conformance_ok=domain.parse_bool(
            job.get("contract_conformance_ok"), "contract_conformance_ok"
        ),
        comments=job.text("review_comments", ""),
    )
    deliverable_set = usecases.review_deliverables(
        uow, str(job.get("project_id")), review, job.text("reviewer", "")
    )
    return {"deliverables_approved": deliverable_set.status == DeliverableSetStatus.APPROVED}


def plan_onsite_delivery(uow: UnitOfWork, job: Job, deps: Dependencies) -> Variables:
    """4.2.1: time, place, attendees and preparations (one per line or comma-separated)."""
    plan = OnsitePlan(
        delivery_time=domain.parse_datetime(job.get("delivery_time"), "delivery_time"),
        place=job.text("delivery_place", ""),
        attendees=tuple(domain.names(job.get("attendees"), "attendees")),
        preparations=tuple(domain.names(job.get("preparations", ""), "preparations")),
    )
    delivery = usecases.plan_onsite_delivery(uow, str(job.get("project_id")), plan)
    return {"delivery_id": delivery.delivery_id}


def plan_online_delivery(uow: UnitOfWork, job: Job, deps: Dependencies) -> Variables:
    """4.2.2: platform and channel test; an untested channel is the BPMN error `channel_not_tested`."""
    try:
        delivery = usecases.plan_online_delivery(
            uow,
            str(job.get("project_id")),
            domain.choice(Platform, job.get("platform"), "platform"),
            domain.parse_bool(job.get("channel_tested", False), "channel_tested"),
        )
    except ChannelNotTested as refused:
        raise BpmnError("channel_not_tested", refused.message) from refused
    return {"delivery_id": delivery.delivery_id}


def send_deliverables_online(uow: UnitOfWork, job: Job, deps: Dependencies) -> Variables:
    """4.3.2: the materials sent through the platform."""
    delivery = usecases.send_deliverables_online(uow, str(job.get("delivery_id")))
    return {"sent_at": _iso(delivery.sent_at)}


def record_delivery(uow: UnitOfWork, job: Job, deps: Dependencies) -> Variables:
    """4.3.1, 4.3.2: delivered, with the client's feedback."""
    delivery = usecases.record_delivery(uow, str(job.get("delivery_id")), job.text("client_feedback", ""))
    return {"delivered_at": _iso(delivery.delivered_at)}


# --- 4.4 ---


def request_acceptance(uow: UnitOfWork, job: Job, deps: Dependencies) -> Variables:
    """4.4.1: time, content and criteria (one per line); refused while rectification items are open."""
    acceptance = usecases.request_acceptance(
        uow,
        str(job.get("project_id")),
        domain.parse_date(job.get("acceptance_date"), "acceptance_date"),
        job.text("acceptance_content", ""),
        domain.criteria_list(job.get("acceptance_criteria", "")),
    )
    return {"acceptance_id": acceptance.acceptance_id, "acceptance_round": acceptance.round}


def send_acceptance_reminder(uow: UnitOfWork, job: Job, deps: Dependencies) -> Variables:
    """4.4.2: a reminder while the report is outstanding (None once it is in)."""
    return {"reminded_at": _iso(usecases.send_acceptance_reminder(uow, str(job.get("acceptance_id"))))}


def record_rectification_items(uow: UnitOfWork, job: Job, deps: Dependencies) -> Variables:
    """4.4.3: one item per line (`what | who | until`), owner and due date as defaults."""
    acceptance_id = str(job.get("acceptance_id"))
    acceptance = usecases.get_acceptance(uow.session, acceptance_id)
    reported = aware(acceptance.reported_at)
    due = job.get("rectification_due", "")
    items = domain.rectification_items(
        job.get("rectification_items", ""),
        domain.optional("rectification_owner", job.get("rectification_owner", ""), domain.NAME_LIMIT),
        domain.parse_date(due, "rectification_due") if due else None,
        reported.date() if reported else usecases.today(),
    )
    _, open_items = usecases.record_rectification_items(uow, acceptance_id, items)
    return {"open_rectification_items": open_items}


def close_rectification_items(uow: UnitOfWork, job: Job, deps: Dependencies) -> Variables:
    """4.4.3: every open item of the round closed with the notes."""
    remaining = usecases.close_rectification_items(
        uow, str(job.get("acceptance_id")), job.text("rectification_notes", "")
    )
    return {"open_rectification_items": remaining}


def close_acceptance(uow: UnitOfWork, job: Job, deps: Dependencies) -> Variables:
    """4.4.3: passed → follow-up."""
    project = usecases.close_acceptance(uow, str(job.get("project_id")), str(job.get("acceptance_id")))
    return {"project_status": project.phase}


HANDLERS: dict[str, DeliveryHandler] = {
    "delivery.open_project": open_project,
    "delivery.form_team": form_team,
    "delivery.record_kickoff": record_kickoff,
    "delivery.archive_research_data": archive_research_data,
    "delivery.record_site_visit": record_site_visit,
    "delivery.record_analysis": record_analysis,
    "delivery.submit_solution": submit_solution,
    "delivery.record_solution_review": record_solution_review,
    "delivery.start_execution": start_execution,
    "delivery.record_meeting": record_meeting,
    "delivery.evaluate_indicators": evaluate_indicators,
    "delivery.record_corrective_action": record_corrective_action,
    "delivery.send_progress_report": send_progress_report,
    "delivery.record_change_response": record_change_response,
    "delivery.complete_execution": complete_execution,
    "delivery.compile_deliverables": compile_deliverables,
    "delivery.record_deliverable_review": record_deliverable_review,
    "delivery.plan_onsite_delivery": plan_onsite_delivery,
    "delivery.plan_online_delivery": plan_online_delivery,
    "delivery.send_deliverables_online": send_deliverables_online,
    "delivery.record_delivery": record_delivery,
    "delivery.request_acceptance": request_acceptance,
    "delivery.send_acceptance_reminder": send_acceptance_reminder,
    "delivery.record_rectification_items": record_rectification_items,
    "delivery.close_rectification_items": close_rectification_items,
    "delivery.close_acceptance": close_acceptance,
}
"""Every delivery operation of docs/operations.md, by name."""


def bind(deps: Dependencies) -> dict[str, JobHandler]:
    """The platform's handlers: each operation with the dependencies it needs."""

    def bound(handler: DeliveryHandler) -> JobHandler:
        def run(uow: UnitOfWork, job: Job) -> Variables:
            return handler(uow, job, deps)

        return run

    return {operation: bound(handler) for operation, handler in HANDLERS.items()}
