"""The delivery operations diagrams call as service tasks (`delivery.<operation>`, docs/operations.md).

Each handler reads the task's parameters, builds the domain values, runs one use case and returns the
variables the catalogue names. Handlers get the peers they need through `Dependencies`, bound once at start
(`operations.bind(deps)` in app.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from consultflow.delivery import acceptance_rules as rules
from consultflow.delivery import deliverables_rules, domain, usecases
from consultflow.delivery.acceptance_rules import AcceptanceRequest
from consultflow.delivery.adapters import Dependencies
from consultflow.delivery.deliverables_rules import (
    ChannelNotTested,
    DeliverableSetStatus,
    MaterialsReview,
    OnlinePlan,
    OnsitePlan,
    Platform,
)
from consultflow.delivery.domain import (
    Artefact,
    ArtefactKind,
    ChangeResponse,
    DocumentCategory,
    ExpertReview,
    FindingKind,
    NewCoordination,
    NewCorrectiveAction,
    NewFinding,
    NewKickoff,
    NewMeeting,
    NewSiteVisit,
    ReviewCriterion,
    Role,
    SolutionStatus,
    Team,
)
from consultflow.platform.db import UnitOfWork
from consultflow.platform.errors import BpmnError, InvalidArgument
from consultflow.platform.inputs import iso_date, lines, names, optional_text, renamed_fields, yes_no
from consultflow.platform.jobs import Job, Operations
from consultflow.platform.operation_spec import (
    ENGAGEMENT,
    date,
    decimal,
    error,
    flag,
    integer,
    listing,
    one_of,
    optional,
    text,
)
from consultflow.platform.timeutil import aware

Variables = Mapping[str, Any]

operations = Operations[Dependencies]("delivery")
"""Every delivery operation of docs/operations.md (`delivery.<name>`), each declared over its handler."""


def _iso(moment: datetime | None) -> str | None:
    value = aware(moment)
    return value.isoformat() if value else None


# --- 3.1 ---


@operations.handler(
    "open_project",
    clauses=["3.1.1"],
    inputs=[ENGAGEMENT, text("contract_id", "the signed contract")],
    outputs=[text("project_id")],
    description="Scope, schedule and deliverables come from contracts over gRPC.",
)
def open_project(uow: UnitOfWork, job: Job, deps: Dependencies) -> Variables:
    """3.1.1: opens the project of a signed contract (scope, schedule, deliverables from contracts)."""
    project = usecases.open_project(uow, deps.contracts, job.text("contract_id"), job.engagement_id)
    return {"project_id": project.project_id}


@operations.handler(
    "form_team",
    clauses=["3.1.1"],
    inputs=[
        text("project_id"),
        optional(listing("project_manager", "one name")),
        optional(listing("consultants", "names separated by commas")),
        optional(listing("analysts", "names separated by commas")),
        optional(listing("assistants", "names separated by commas")),
        optional(
            text("duties", "lines `role: duties` (or a mapping role → text); plain text applies to all")
        ),
    ],
    outputs=[integer("team_size")],
)
def form_team(uow: UnitOfWork, job: Job, deps: Dependencies) -> Variables:
    """3.1.1: forms the team: the project manager and consultants, analysts and assistants."""
    duties = domain.duties_by_role("duties", job.get("duties", ""))
    team = Team.parse(
        members=[
            (name, role, duties.get(role, ""))
            for role, field in (
                (Role.PROJECT_MANAGER, "project_manager"),
                (Role.CONSULTANT, "consultants"),
                (Role.ANALYST, "analysts"),
                (Role.ASSISTANT, "assistants"),
            )
            for name in names(field, job.get(field, ""))
        ]
    )
    rows = usecases.form_team(uow, job.text("project_id"), team)
    return {"team_size": usecases.team_size(rows)}


@operations.handler(
    "record_kickoff",
    clauses=["3.1.2"],
    inputs=[
        text("project_id"),
        date("kickoff_date"),
        listing("attendees", "names separated by commas"),
        text("briefing"),
        text("rules_agreed"),
        optional(listing("materials_handed_out", "one per line")),
    ],
    outputs=[text("kickoff_id")],
)
def record_kickoff(uow: UnitOfWork, job: Job, deps: Dependencies) -> Variables:
    """3.1.2: records the kick-off meeting."""
    meeting = NewKickoff.parse(
        kickoff_date=job.get("kickoff_date"),
        attendees=job.get("attendees"),
        briefing=job.text("briefing", ""),
        rules_agreed=job.text("rules_agreed", ""),
        materials_handed_out=job.get("materials_handed_out", ""),
    )
    kickoff = usecases.record_kickoff(uow, job.text("project_id"), meeting)
    return {"kickoff_id": kickoff.kickoff_id}


# --- 3.2 ---


@operations.handler(
    "archive_research_data",
    clauses=["3.2.1"],
    inputs=[
        text("project_id"),
        *[
            optional(text(name, "one document per line: `title | source | classification | link`"))
            for name in ("industry_data", "client_data", "market_data")
        ],
    ],
    outputs=[integer("documents_archived")],
    description="At least one document among the industry, client and market data.",
)
def archive_research_data(uow: UnitOfWork, job: Job, deps: Dependencies) -> Variables:
    """3.2.1: archives the research data, one document per line (`title | source | classification | link`)."""
    documents = [
        document
        for category, field in (
            (DocumentCategory.INDUSTRY, "industry_data"),
            (DocumentCategory.CLIENT_INTERNAL, "client_data"),
            (DocumentCategory.MARKET, "market_data"),
        )
        for document in domain.documents_from_lines(field, job.get(field, ""), category)
    ]
    if not documents:
        raise InvalidArgument(
            "industry_data", "no documents: name at least one of industry, client or market data"
        )
    rows = usecases.add_documents(uow, job.text("project_id"), documents)
    return {"documents_archived": len(rows)}


@operations.handler(
    "record_site_visit",
    clauses=["3.2.2"],
    inputs=[
        text("project_id"),
        date("visit_date"),
        optional(listing("visitors", "names separated by commas")),
        optional(listing("interviewees", "names separated by commas")),
        optional(text("processes_observed")),
        text("observations"),
    ],
    outputs=[text("site_visit_id")],
)
def record_site_visit(uow: UnitOfWork, job: Job, deps: Dependencies) -> Variables:
    """3.2.2: records an on-site visit."""
    command = NewSiteVisit.parse(
        visit_date=job.get("visit_date"),
        visitors=job.get("visitors", ""),
        interviewees=job.get("interviewees", ""),
        processes_observed=job.text("processes_observed", ""),
        observations=job.text("observations", ""),
    )
    visit = usecases.record_site_visit(uow, job.text("project_id"), command)
    return {"site_visit_id": visit.site_visit_id}


@operations.handler(
    "record_analysis",
    clauses=["3.2.3"],
    inputs=[
        ENGAGEMENT,
        text("project_id"),
        optional(text("problems", "one per line")),
        optional(text("opportunities", "one per line")),
        optional(flag("risk_found", "older diagrams: a risk found here is registered with risk")),
        optional(text("risk_description", "required when risk_found")),
        optional(text("risk_category")),
    ],
    outputs=[text("analysis_id"), integer("risks_reported")],
    description="Current diagrams register a risk found with risk.register_risk after this task.",
)
def record_analysis(uow: UnitOfWork, job: Job, deps: Dependencies) -> Variables:
    """3.2.3: records the analysis: problems and opportunities (one per line).

    A risk found (older diagrams) is registered with risk over gRPC."""
    findings = [
        NewFinding.parse(kind=kind, description=text)
        for kind, field in ((FindingKind.PROBLEM, "problems"), (FindingKind.OPPORTUNITY, "opportunities"))
        for text in lines(field, job.get(field, ""), domain.TEXT_LIMIT)
    ]
    if yes_no("risk_found", job.get("risk_found", False)):
        description = job.text("risk_description", "")
        if not description.strip():
            raise InvalidArgument("risk_description", "is required when a risk was found")
        with renamed_fields(description="risk_description"):
            risk = NewFinding.parse(
                kind=FindingKind.RISK, description=description, risk_category=job.text("risk_category", "")
            )
        findings.append(risk)
    analysis, rows = usecases.record_analysis(
        uow, deps.risks, job.text("project_id"), findings, job.request_id, job.engagement_id
    )
    return {"analysis_id": analysis.analysis_id, "risks_reported": sum(1 for r in rows if r.risk_id)}


# --- 3.3 ---


@operations.handler(
    "submit_solution",
    clauses=["3.3.1"],
    inputs=[
        text("project_id"),
        text("solution_summary"),
        optional(text("flow_chart_link")),
        optional(text("mind_map_link")),
    ],
    outputs=[text("solution_id"), integer("solution_version")],
)
def submit_solution(uow: UnitOfWork, job: Job, deps: Dependencies) -> Variables:
    """3.3.1: submits a solution version with its flow chart and mind map links."""
    artefacts = []
    for kind, field in (
        (ArtefactKind.FLOW_CHART, "flow_chart_link"),
        (ArtefactKind.MIND_MAP, "mind_map_link"),
    ):
        if link := job.text(field, "").strip():
            with renamed_fields(link=field):
                artefacts.append(Artefact.parse(kind=kind, title="", link=link))
    solution = usecases.submit_solution(
        uow, job.text("project_id"), job.text("solution_summary", ""), artefacts
    )
    return {"solution_id": solution.solution_id, "solution_version": solution.version}


@operations.handler(
    "record_solution_review",
    clauses=["3.3.2"],
    inputs=[
        text("solution_id"),
        one_of("solution_verdict", domain.Verdict),
        optional(text("review_comments")),
        optional(text("reviewer")),
        *[
            field
            for criterion in ReviewCriterion
            for field in (
                optional(one_of(f"{criterion.value}_verdict", domain.CriterionVerdict, "all four or none")),
                optional(text(f"{criterion.value}_comments", "required when not met")),
            )
        ],
    ],
    outputs=[flag("solution_approved")],
    description="The review criteria of 3.3.2: soundness, feasibility, innovation, risk response.",
)
def record_solution_review(uow: UnitOfWork, job: Job, deps: Dependencies) -> Variables:
    """3.3.2: records the expert review of a solution.

    A verdict and comment per review criterion (`<criterion>_verdict`, `<criterion>_comments`) are
    absent when an older diagram records the review."""
    with renamed_fields(verdict="solution_verdict"):
        verdict = ExpertReview.parse(
            verdict=job.get("solution_verdict"),
            comments=job.text("review_comments", ""),
            reviewer=job.text("reviewer", ""),
            criteria={
                c: (job.get(f"{c.value}_verdict", None), job.text(f"{c.value}_comments", ""))
                for c in ReviewCriterion
            },
        )
    solution = usecases.review_solution(uow, job.text("solution_id"), verdict)
    return {"solution_approved": solution.status == SolutionStatus.APPROVED}


# --- 3.4 ---


@operations.handler(
    "start_execution",
    clauses=["3.4.1"],
    inputs=[text("project_id")],
    outputs=[text("work_plan_id")],
    description="The baseline work plan comes from the proposal's schedule.",
)
def start_execution(uow: UnitOfWork, job: Job, deps: Dependencies) -> Variables:
    """3.4.1: starts execution with the baseline work plan from the contract's schedule."""
    plan = usecases.start_execution(uow, job.text("project_id"))
    return {"work_plan_id": plan.work_plan.work_plan_id}


@operations.handler(
    "record_meeting",
    clauses=["3.4.1", "3.5.1"],
    inputs=[
        text("project_id"),
        optional(date("held_on", "default today")),
        text("progress_report"),
        optional(text("problems")),
        optional(text("decisions", "one per line")),
        optional(text("internal_updates")),
    ],
    outputs=[text("meeting_id")],
)
def record_meeting(uow: UnitOfWork, job: Job, deps: Dependencies) -> Variables:
    """3.4.1, 3.5.1: records a project meeting; decisions one per line."""
    command = NewMeeting.parse(
        held_on=job.get("held_on", ""),
        progress_report=job.text("progress_report", ""),
        problems=job.text("problems", ""),
        decisions=job.get("decisions", ""),
        internal_updates=job.text("internal_updates", ""),
    )
    meeting = usecases.record_meeting(uow, job.text("project_id"), command)
    return {"meeting_id": meeting.meeting_id}


@operations.handler(
    "record_work_report",
    clauses=["3.4.1", "3.5.1"],
    inputs=[text("project_id"), text("work_report")],
    outputs=[text("work_report_id")],
    description="Logged as internal communication; refused before execution started.",
)
def record_work_report(uow: UnitOfWork, job: Job, deps: Dependencies) -> Variables:
    """3.4.1: records the team's report of the work carried out per the plan."""
    entry = usecases.record_work_report(uow, job.text("project_id"), job.text("work_report", ""))
    return {"work_report_id": entry.communication_id}


@operations.handler(
    "check_work_quality",
    clauses=["3.4.1"],
    inputs=[
        text("project_id"),
        text("work_report_id"),
        flag("quality_passed"),
        optional(text("quality_notes", "required when the check failed")),
    ],
    outputs=[text("quality_check_id")],
    description="Counts in the quality pass rate (3.4.2).",
)
def check_work_quality(uow: UnitOfWork, job: Job, deps: Dependencies) -> Variables:
    """3.4.1: records the project manager's quality check of the reported work."""
    check = usecases.check_work_quality(
        uow,
        job.text("project_id"),
        job.text("work_report_id"),
        job.flag("quality_passed"),
        job.text("quality_notes", ""),
    )
    return {"quality_check_id": check.quality_check_id}


@operations.handler(
    "evaluate_indicators",
    clauses=["3.4.2"],
    inputs=[ENGAGEMENT, text("project_id")],
    outputs=[
        flag("indicators_measured", "false before execution started (no work plan yet)"),
        optional(decimal("schedule_deviation_rate", "a fraction")),
        optional(decimal("quality_pass_rate", "a fraction")),
        optional(decimal("cost_overrun_rate", "a fraction")),
        flag("indicators_breached"),
        listing("breached_indicators", "the names of the breached indicators"),
    ],
    description="Thresholds from warning_thresholds.dmn; a breach publishes indicator.breached.",
)
def evaluate_indicators(uow: UnitOfWork, job: Job, deps: Dependencies) -> Variables:
    """3.4.2: evaluates the indicators as of today; a breach publishes `indicator.breached`.

    Monitoring runs from the kick-off: before execution starts there is no work plan to measure against,
    so nothing is measured and nothing is breached (`indicators_measured` false)."""
    if not usecases.execution_started(uow.session, job.text("project_id")):
        return {"indicators_measured": False, "indicators_breached": False, "breached_indicators": []}
    snapshot, _ = usecases.evaluate_indicators(
        uow, deps.thresholds, job.text("project_id"), engagement_id=job.engagement_id
    )
    return {
        "indicators_measured": True,
        "schedule_deviation_rate": float(snapshot.schedule_deviation_rate),
        "quality_pass_rate": float(snapshot.quality_pass_rate),
        "cost_overrun_rate": float(snapshot.cost_overrun_rate),
        "indicators_breached": bool(snapshot.breached_indicators),
        "breached_indicators": list(snapshot.breached_indicators),
    }


@operations.handler(
    "record_corrective_action",
    clauses=["3.4.2"],
    inputs=[text("project_id"), text("corrective_action"), text("action_owner")],
    outputs=[text("corrective_action_id")],
)
def record_corrective_action(uow: UnitOfWork, job: Job, deps: Dependencies) -> Variables:
    """3.4.2: records the corrective action taken."""
    command = NewCorrectiveAction.parse(
        action=job.text("corrective_action", ""), owner=job.text("action_owner", "")
    )
    action, _ = usecases.record_corrective_action(uow, job.text("project_id"), command)
    return {"corrective_action_id": action.corrective_action_id}


@operations.handler(
    "complete_execution",
    clauses=["3.4.1"],
    inputs=[text("project_id"), text("completion_summary")],
    outputs=[date("execution_completed_at", "a timestamp")],
)
def complete_execution(uow: UnitOfWork, job: Job, deps: Dependencies) -> Variables:
    """3.4.1: the project manager confirms the execution complete."""
    project = usecases.complete_execution(uow, job.text("project_id"), job.text("completion_summary", ""))
    return {"execution_completed_at": _iso(project.execution_completed_at)}


# --- 3.5 ---


@operations.handler(
    "send_progress_report",
    clauses=["3.5.2"],
    inputs=[text("project_id"), optional(text("report_notes", "what staff told and answered the client"))],
    outputs=[text("progress_report_id")],
    description="The report (work plan and latest indicators) is logged as external communication.",
)
def send_progress_report(uow: UnitOfWork, job: Job, deps: Dependencies) -> Variables:
    """3.5.2: sends a progress report to the client.

    With what the business staff told and answered the client (`report_notes`, absent when an older
    diagram sends the report)."""
    entry = usecases.send_progress_report(uow, job.text("project_id"), job.text("report_notes", ""))
    return {"progress_report_id": entry.communication_id}


@operations.handler(
    "record_coordination",
    clauses=["3.5.1"],
    inputs=[
        text("project_id"),
        optional(listing("departments", "names separated by commas")),
        text("support_needed"),
        text("coordination_outcome"),
    ],
    outputs=[text("coordination_id")],
)
def record_coordination(uow: UnitOfWork, job: Job, deps: Dependencies) -> Variables:
    """3.5.1: records the coordination with other departments whose support the work needs."""
    command = NewCoordination.parse(
        departments=job.get("departments", ""),
        support_needed=job.text("support_needed", ""),
        outcome=job.text("coordination_outcome", ""),
    )
    entry = usecases.record_coordination(uow, job.text("project_id"), command)
    return {"coordination_id": entry.communication_id}


@operations.handler(
    "record_acceptance_support",
    clauses=["4.4.2"],
    inputs=[text("project_id"), text("support_notes")],
    outputs=[text("acceptance_support_id")],
    description="Logged as external communication (kind answer).",
)
def record_acceptance_support(uow: UnitOfWork, job: Job, deps: Dependencies) -> Variables:
    """4.4.2: records the team's explanations to the client during the acceptance check."""
    entry = usecases.record_acceptance_support(uow, job.text("project_id"), job.text("support_notes", ""))
    return {"acceptance_support_id": entry.communication_id}


@operations.handler(
    "record_change_response",
    clauses=["3.5.2"],
    inputs=[
        text("project_id"),
        text("change_request_id"),
        one_of("change_decision", domain.ChangeDecision),
        text("change_response"),
    ],
    outputs=[text("change_request_status")],
)
def record_change_response(uow: UnitOfWork, job: Job, deps: Dependencies) -> Variables:
    """3.5.2: records the answer to the client's change request."""
    with renamed_fields(decision="change_decision"):
        answer = ChangeResponse.parse(
            decision=job.get("change_decision"), response=job.text("change_response", "")
        )
    change = usecases.respond_to_change(uow, job.text("change_request_id"), answer, job.text("project_id"))
    return {"change_request_status": change.status}


# --- 4.1-4.3 ---


@operations.handler(
    "compile_deliverables",
    clauses=["4.1.1"],
    inputs=[
        text("project_id"),
        optional(text("deliverables", "one per line: `name | link`")),
        text("results_summary"),
    ],
    outputs=[integer("deliverable_set_version")],
)
def compile_deliverables(uow: UnitOfWork, job: Job, deps: Dependencies) -> Variables:
    """4.1.1: compiles the deliverables, one per line (`name | link`)."""
    deliverable_set = usecases.compile_deliverables(
        uow,
        job.text("project_id"),
        deliverables_rules.deliverable_items("deliverables", job.get("deliverables", "")),
        job.text("results_summary", ""),
    )
    return {"deliverable_set_version": deliverable_set.version}


@operations.handler(
    "record_deliverable_review",
    clauses=["4.1.2"],
    inputs=[
        text("project_id"),
        flag("logic_ok"),
        flag("consistency_ok"),
        flag("accuracy_ok"),
        flag("contract_conformance_ok"),
        optional(text("review_comments")),
        optional(text("reviewer")),
    ],
    outputs=[flag("deliverables_approved", "only when all four checks pass")],
)
def record_deliverable_review(uow: UnitOfWork, job: Job, deps: Dependencies) -> Variables:
    """4.1.2: reviews the deliverables with four checks; approved only when all pass."""
    review = MaterialsReview.parse(
        logic_ok=job.flag("logic_ok"),
        consistency_ok=job.flag("consistency_ok"),
        accuracy_ok=job.flag("accuracy_ok"),
        contract_conformance_ok=job.flag("contract_conformance_ok"),
        comments=job.text("review_comments", ""),
    )
    deliverable_set = usecases.review_deliverables(
        uow, job.text("project_id"), review, job.text("reviewer", "")
    )
    return {"deliverables_approved": deliverable_set.status == DeliverableSetStatus.APPROVED}


@operations.handler(
    "plan_onsite_delivery",
    clauses=["4.2.1"],
    inputs=[
        text("project_id"),
        date("delivery_time", "date and time"),
        text("delivery_place"),
        listing("attendees", "names separated by commas"),
        optional(listing("preparations", "one per line or comma-separated")),
    ],
    outputs=[text("delivery_id")],
)
def plan_onsite_delivery(uow: UnitOfWork, job: Job, deps: Dependencies) -> Variables:
    """4.2.1: plans an on-site delivery: time, place, attendees and preparations."""
    plan = OnsitePlan.parse(
        delivery_time=job.get("delivery_time"),
        place=job.text("delivery_place", ""),
        attendees=job.get("attendees"),
        preparations=job.get("preparations", ""),
    )
    delivery = usecases.plan_onsite_delivery(uow, job.text("project_id"), plan)
    return {"delivery_id": delivery.delivery_id}


@operations.handler(
    "plan_online_delivery",
    clauses=["4.2.2"],
    inputs=[
        text("project_id"),
        one_of("platform", Platform),
        optional(flag("channel_tested")),
    ],
    outputs=[text("delivery_id")],
    errors=[error("channel_not_tested", "the delivery channel was not tested")],
)
def plan_online_delivery(uow: UnitOfWork, job: Job, deps: Dependencies) -> Variables:
    """4.2.2: plans an online delivery; an untested channel is the BPMN error `channel_not_tested`."""
    plan = OnlinePlan.parse(platform=job.get("platform"), channel_tested=job.get("channel_tested", False))
    try:
        delivery = usecases.plan_online_delivery(uow, job.text("project_id"), plan)
    except ChannelNotTested as refused:
        raise BpmnError("channel_not_tested", refused.message) from refused
    return {"delivery_id": delivery.delivery_id}


@operations.handler(
    "send_deliverables_online",
    clauses=["4.3.2"],
    inputs=[text("delivery_id")],
    outputs=[date("sent_at", "a timestamp")],
)
def send_deliverables_online(uow: UnitOfWork, job: Job, deps: Dependencies) -> Variables:
    """4.3.2: sends the materials through the delivery platform."""
    delivery = usecases.send_deliverables_online(uow, job.text("delivery_id"))
    return {"sent_at": _iso(delivery.sent_at)}


@operations.handler(
    "record_delivery",
    clauses=["4.3.1", "4.3.2"],
    inputs=[
        text("delivery_id"),
        optional(text("client_feedback")),
        optional(text("feedback_reply", "the firm's answers")),
    ],
    outputs=[date("delivered_at", "a timestamp")],
    description="Feedback and answers are logged as external communication.",
)
def record_delivery(uow: UnitOfWork, job: Job, deps: Dependencies) -> Variables:
    """4.3.1, 4.3.2: records the delivery with the client's feedback.

    And the answers given (`feedback_reply`, absent when an older diagram records the delivery)."""
    delivery = usecases.record_delivery(
        uow, job.text("delivery_id"), job.text("client_feedback", ""), job.text("feedback_reply", "")
    )
    return {"delivered_at": _iso(delivery.delivered_at)}


# --- 4.4 ---


@operations.handler(
    "request_acceptance",
    clauses=["4.4.1"],
    inputs=[
        text("project_id"),
        date("acceptance_date"),
        text("acceptance_content"),
        optional(text("acceptance_criteria", "one per line")),
    ],
    outputs=[text("acceptance_id"), integer("acceptance_round")],
    description="Refused while rectification items are open.",
)
def request_acceptance(uow: UnitOfWork, job: Job, deps: Dependencies) -> Variables:
    """4.4.1: requests the client's acceptance check: time, content and criteria (one per line)."""
    request = AcceptanceRequest.parse(
        acceptance_date=job.get("acceptance_date"),
        content=job.text("acceptance_content", ""),
        criteria=job.get("acceptance_criteria", ""),
    )
    acceptance = usecases.request_acceptance(uow, job.text("project_id"), request)
    return {"acceptance_id": acceptance.acceptance_id, "acceptance_round": acceptance.round}


@operations.handler(
    "send_acceptance_reminder",
    clauses=["4.4.2"],
    inputs=[text("acceptance_id")],
    outputs=[optional(date("reminded_at", "a timestamp; null (nothing sent) once the report is in"))],
)
def send_acceptance_reminder(uow: UnitOfWork, job: Job, deps: Dependencies) -> Variables:
    """4.4.2: reminds the client while the acceptance report is outstanding (None once it is in)."""
    return {"reminded_at": _iso(usecases.send_acceptance_reminder(uow, job.text("acceptance_id")))}


@operations.handler(
    "record_rectification_items",
    clauses=["4.4.3"],
    inputs=[
        text("acceptance_id"),
        optional(text("rectification_items", "one per line: `what | who | until`")),
        optional(text("rectification_owner", "the default owner")),
        optional(date("rectification_due", "the default due date")),
    ],
    outputs=[integer("open_rectification_items")],
)
def record_rectification_items(uow: UnitOfWork, job: Job, deps: Dependencies) -> Variables:
    """4.4.3: records rectification items, one per line (`what | who | until`)."""
    due = job.get("rectification_due", "")
    items = rules.rectification_items(
        job.get("rectification_items", ""),
        optional_text("rectification_owner", job.get("rectification_owner", ""), domain.NAME_LIMIT),
        iso_date("rectification_due", due) if due else None,
    )
    _, open_items = usecases.record_rectification_items(uow, job.text("acceptance_id"), items)
    return {"open_rectification_items": open_items}


@operations.handler(
    "close_rectification_items",
    clauses=["4.4.3"],
    inputs=[text("acceptance_id"), text("rectification_notes")],
    outputs=[integer("open_rectification_items", "0")],
)
def close_rectification_items(uow: UnitOfWork, job: Job, deps: Dependencies) -> Variables:
    """4.4.3: closes every open rectification item of the round with the notes."""
    remaining = usecases.close_rectification_items(
        uow, job.text("acceptance_id"), job.text("rectification_notes", "")
    )
    return {"open_rectification_items": remaining}


@operations.handler(
    "close_acceptance",
    clauses=["4.4.3"],
    inputs=[text("project_id"), text("acceptance_id")],
    outputs=[text("project_status", '"follow_up"')],
    description="Refused unless the last acceptance report passed.",
)
def close_acceptance(uow: UnitOfWork, job: Job, deps: Dependencies) -> Variables:
    """4.4.3: closes a passed acceptance; the project moves to follow-up."""
    project = usecases.close_acceptance(uow, job.text("project_id"), job.text("acceptance_id"))
    return {"project_status": project.phase}
