"""The risk operations that diagrams call as service tasks (`risk.<operation>`, docs/operations.md).

Each handler reads the catalogue's inputs, calls one use case and returns the catalogue's outputs; the
matrix and the thresholds come from the decision tables in `deps`. Validation errors name the job's own
variables (e.g. `risk_description`, not the API's `description`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from consultflow.platform.db import UnitOfWork
from consultflow.platform.inputs import choice, renamed_fields
from consultflow.platform.jobs import Job, Operations
from consultflow.platform.operation_spec import (
    ENGAGEMENT,
    anything,
    date,
    flag,
    integer,
    one_of,
    optional,
    text,
)
from consultflow.platform.timeutil import now
from consultflow.risk import usecases
from consultflow.risk.adapters import Dependencies
from consultflow.risk.domain import (
    Assessment,
    Category,
    Deviation,
    DeviationDecision,
    IdentificationSession,
    Level,
    Method,
    NewRisk,
    Objective,
    Reading,
    ResponseChoice,
    ReviewFindings,
    Stage,
    Strategy,
)

operations = Operations[Dependencies]("risk")


def _parameter(job: Job, name: str) -> str:
    """An optional parameter of the service task only (docs/operations.md), never a process variable."""
    return str(job.parameters.get(name) or "")


@operations.handler(
    "open_register",
    clauses=["6"],
    inputs=[ENGAGEMENT, optional(text("client_name"))],
    outputs=[text("register_id")],
    description="A risk registered earlier (e.g. at intake) already opened it: then only the client name "
    "is set.",
)
def open_register(uow: UnitOfWork, job: Job, deps: Dependencies) -> Mapping[str, Any]:
    """Ch. 6: opens the engagement's register when its risk management starts."""
    register = usecases.open_register(uow, job.engagement_id, job.text("client_name", ""))
    return {"register_id": register.register_id}


@operations.handler(
    "record_stage",
    clauses=["6.1.1", "6.3.1"],
    inputs=[
        ENGAGEMENT,
        one_of("engagement_stage", Stage),
        optional(text("project_manager", '"" keeps the one recorded (before 2.3.2 names one)')),
    ],
    outputs=[
        one_of("register_stage", Stage, "the register's stage only moves forward"),
        text("project_manager", "as the register records it"),
    ],
)
def record_stage(uow: UnitOfWork, job: Job, deps: Dependencies) -> Mapping[str, Any]:
    """6.1.1, 6.3.1: records the stage the engagement entered (message `engagement.stage_started`)."""
    with renamed_fields(stage="engagement_stage"):
        stage = choice("stage", job.text("engagement_stage"), Stage)
    register = usecases.record_stage(uow, job.engagement_id, stage, job.text("project_manager", ""))
    return {"register_stage": register.stage, "project_manager": register.project_manager}


@operations.handler(
    "record_identification",
    clauses=["6.1.1"],
    inputs=[
        ENGAGEMENT,
        one_of("engagement_stage", Stage),
        one_of("session_method", Method),
        text("team_participants", "names separated by commas"),
        text("department_participants", "names separated by commas"),
        text("expert_participants", "names separated by commas"),
        optional(text("risks_found", "separated by semicolons; empty or 無 none: none found")),
    ],
    outputs=[text("identification_id"), integer("risks_registered")],
    description="Every risk found is registered, each publishing risk.registered (→ risk.identified); "
    "publishes identification.recorded.",
)
def record_identification(uow: UnitOfWork, job: Job, deps: Dependencies) -> Mapping[str, Any]:
    """6.1.1: records the organised identification of a stage; registers every risk it found."""
    with renamed_fields(
        stage="engagement_stage",
        method="session_method",
        team="team_participants",
        departments="department_participants",
        experts="expert_participants",
    ):
        session = IdentificationSession.parse(
            engagement_id=job.engagement_id,
            stage=job.text("engagement_stage"),
            method=job.text("session_method"),
            team=job.text("team_participants"),
            departments=job.text("department_participants"),
            experts=job.text("expert_participants"),
            risks=job.text("risks_found", ""),
        )
        identification, risks = usecases.record_identification(uow, session, job.request_id)
    return {"identification_id": identification.identification_id, "risks_registered": len(risks)}


@operations.handler(
    "register_risk",
    clauses=["6.1.1"],
    inputs=[
        ENGAGEMENT,
        text("risk_description"),
        optional(one_of("risk_category", Category, "may be empty until assessed")),
        one_of("risk_stage", Stage),
        optional(text("risk_source")),
        optional(text("risk_owner")),
        optional(one_of("identification_method", Method)),
    ],
    outputs=[text("risk_id")],
    description="Publishes risk.registered (→ message risk.identified).",
)
def register_risk(uow: UnitOfWork, job: Job, deps: Dependencies) -> Mapping[str, Any]:
    """6.1.1: registers a risk found at a stage; publishes `risk.registered` (→ `risk.identified`)."""
    with renamed_fields(
        description="risk_description",
        category="risk_category",
        stage="risk_stage",
        source="risk_source",
        owner="risk_owner",
    ):
        command = NewRisk.parse(
            engagement_id=job.engagement_id,
            description=job.text("risk_description"),
            stage=job.text("risk_stage"),
            category=job.text("risk_category", ""),
            identification_method=job.text("identification_method", ""),
            source=job.text("risk_source", ""),
            owner=job.text("risk_owner", ""),
            request_id=job.request_id,
        )
    risk = usecases.register_risk(uow, command)
    return {"risk_id": risk.risk_id}


@operations.handler(
    "assess_risk",
    clauses=["6.1.2", "6.2"],
    inputs=[
        text("risk_id"),
        optional(one_of("risk_category", Category, "required unless the risk has one")),
        optional(one_of("identification_method", Method, "required unless the risk has one")),
        text("likelihood", "a likelihood of risk_matrix.dmn"),
        text("impact", "an impact of risk_matrix.dmn"),
        optional(text("likelihood_basis", "history, industry experience, current environment (6.2.1)")),
        optional(one_of("affected_objective", Objective, "the objective the impact is on (6.2.2)")),
    ],
    outputs=[
        text("risk_level"),
        text("risk_priority"),
        one_of("suggested_strategy", Strategy),
        text("project_manager", '"" before one is named'),
    ],
    description="Level, priority and suggestion read from risk_matrix.dmn; a priority in a worse band of "
    "warning_thresholds.dmn than before raises a warning (warning.raised).",
)
def assess_risk(uow: UnitOfWork, job: Job, deps: Dependencies) -> Mapping[str, Any]:
    """6.1.2, 6.2: assesses a risk: classification and likelihood × impact → level, priority, strategy."""
    with renamed_fields(category="risk_category"):
        command = Assessment.parse(
            risk_id=job.text("risk_id"),
            likelihood=job.text("likelihood"),
            impact=job.text("impact"),
            category=job.text("risk_category", ""),
            identification_method=job.text("identification_method", ""),
            likelihood_basis=job.text("likelihood_basis", ""),
            affected_objective=job.text("affected_objective", ""),
        )
        risk, _warning = usecases.assess_risk(uow, command, deps.tables)
    return {
        "risk_level": risk.level,
        "risk_priority": risk.priority,
        "suggested_strategy": risk.suggested_strategy,
        "project_manager": _project_manager(uow, risk.engagement_id),
    }


@operations.handler(
    "plan_response",
    clauses=["6.3"],
    inputs=[
        text("risk_id"),
        one_of("strategy", Strategy),
        optional(text("measures", "required unless the strategy is accept")),
        optional(text("measure_owner", "required unless the strategy is accept")),
        optional(date("measure_due", "required unless the strategy is accept")),
        optional(text("deviation_reason", "required for a strategy other than the suggested one")),
        optional(text("decided_by", "a parameter only")),
    ],
    outputs=[
        text("response_id"),
        flag("deviates", "the plan awaits approval (risk.decide_deviation)"),
        one_of("register_stage", Stage, "the stage the engagement is in now (6.3.1)"),
        text("project_manager"),
    ],
    description="The risk must be assessed.",
)
def plan_response(uow: UnitOfWork, job: Job, deps: Dependencies) -> Mapping[str, Any]:
    """6.3: plans the response to a risk: the chosen strategy with measures, owner and due date.

    A strategy other than the prescribed one needs `deviation_reason` and awaits approval (`deviates`
    is then true)."""
    with renamed_fields(owner="measure_owner", due_date="measure_due"):
        choice = ResponseChoice.parse(
            risk_id=job.text("risk_id"),
            strategy=job.text("strategy"),
            measures=job.text("measures", ""),
            owner=job.text("measure_owner", ""),
            due_date=job.text("measure_due", ""),
            decided_by=_parameter(job, "decided_by"),
            deviation_reason=job.text("deviation_reason", ""),
        )
    plan = usecases.plan_response(uow, choice)
    return {
        "response_id": plan.response_id,
        "deviates": plan.deviation == Deviation.AWAITING_APPROVAL,
        "register_stage": _register_stage(uow, plan.engagement_id),
        "project_manager": _project_manager(uow, plan.engagement_id),
    }


def _register_stage(uow: UnitOfWork, engagement_id: str) -> str:
    """6.3.1: the stage the engagement is in now (`risk.record_stage`), which says whether a risk to avoid
    can still decline the project; not the stage the risk was found at."""
    return usecases.get_register(uow.session, engagement_id).stage


def _project_manager(uow: UnitOfWork, engagement_id: str) -> str:
    """The engagement's project manager as the register records it (`risk.record_stage`), for the
    assignee of the project-manager task that follows; "" before the engagement names one (2.3.2)."""
    return usecases.get_register(uow.session, engagement_id).project_manager


@operations.handler(
    "decide_deviation",
    clauses=["6.3"],
    assumption=True,
    inputs=[
        text("response_id"),
        flag("deviation_approved"),
        optional(text("deviation_note", "required to reject")),
        optional(text("decided_by", "a parameter only")),
    ],
    outputs=[flag("deviation_approved"), one_of("register_stage", Stage), text("project_manager")],
    description="A rejection voids the plan and puts the risk back to assessed; refused unless the plan's "
    "deviation awaits approval; publishes response.deviation_approved or response.deviation_rejected.",
)
def decide_deviation(uow: UnitOfWork, job: Job, deps: Dependencies) -> Mapping[str, Any]:
    """6.3 [assumption]: management approves or rejects a plan that deviates from the prescribed strategy."""
    decision = DeviationDecision.parse(
        response_id=job.text("response_id"),
        approved=job.flag("deviation_approved"),
        decided_by=_parameter(job, "decided_by"),
        note=job.text("deviation_note", ""),
    )
    plan = usecases.decide_deviation(uow, decision)
    return {
        "deviation_approved": plan.deviation == Deviation.APPROVED,
        "register_stage": _register_stage(uow, plan.engagement_id),
        "project_manager": _project_manager(uow, plan.engagement_id),
    }


@operations.handler(
    "complete_response",
    clauses=["6.3", "6.4.1"],
    inputs=[text("response_id"), flag("measures_effective"), text("follow_through_notes")],
    outputs=[date("response_completed_at", "a timestamp")],
    description="Refused for a plan whose deviation awaits approval or was rejected, and once completed.",
)
def complete_response(uow: UnitOfWork, job: Job, deps: Dependencies) -> Mapping[str, Any]:
    """6.3, 6.4.1: records the follow-through of a response, effective or not.

    The plan changed, the measures taken, the risk transferred, or the contingency response to an
    accepted risk that happened."""
    plan = usecases.complete_response(
        uow,
        job.text("response_id"),
        job.flag("measures_effective"),
        job.text("follow_through_notes"),
    )
    return {"response_completed_at": plan.completed_at}


@operations.handler(
    "review_register",
    clauses=["6.4.1"],
    inputs=[ENGAGEMENT],
    outputs=[integer("open_risks"), integer("overdue_measures"), text("project_manager")],
)
def review_register(uow: UnitOfWork, job: Job, deps: Dependencies) -> Mapping[str, Any]:
    """6.4.1: counts what the periodic review starts from: open risks and overdue measures."""
    register = usecases.get_register(uow.session, job.engagement_id)
    counts = usecases.register_counts(uow.session, register.engagement_id, now().date())
    return {
        "open_risks": counts.open_risks,
        "overdue_measures": counts.overdue_measures,
        "project_manager": register.project_manager,
    }


@operations.handler(
    "record_review",
    clauses=["6.4.1"],
    inputs=[
        ENGAGEMENT,
        flag("measures_carried_out"),
        flag("measures_effective"),
        flag("new_risk_found"),
        optional(text("new_risk_description", "required when a new risk was found")),
        optional(text("reviewed_by", "a parameter only")),
        optional(text("review_notes", "a parameter only")),
    ],
    outputs=[text("review_id")],
    description="A new risk is registered at the latest stage a risk of the engagement was found at "
    "[assumption].",
)
def record_review(uow: UnitOfWork, job: Job, deps: Dependencies) -> Mapping[str, Any]:
    """6.4.1: records the review's findings; a new risk is registered at the register's stage."""
    with renamed_fields(notes="review_notes"):
        findings = ReviewFindings.parse(
            engagement_id=job.engagement_id,
            measures_carried_out=job.flag("measures_carried_out"),
            measures_effective=job.flag("measures_effective"),
            new_risk_found=job.flag("new_risk_found"),
            new_risk_description=job.text("new_risk_description", ""),
            reviewed_by=_parameter(job, "reviewed_by"),
            notes=_parameter(job, "review_notes"),
        )
    review, _new_risk = usecases.record_review(uow, findings, now().date())
    return {"review_id": review.review_id}


@operations.handler(
    "raise_warning",
    clauses=["6.4.2"],
    inputs=[
        ENGAGEMENT,
        text("indicator", "an indicator of warning_thresholds.dmn"),
        anything("value", "a number (rates as fractions)"),
        optional(one_of("status", Level, "as the reporter saw it")),
        optional(text("risk_id", "a parameter only")),
    ],
    outputs=[text("warning_id"), one_of("warning_level", Level), flag("warning_new")],
    description="Publishes warning.raised; while a warning of the same indicator and risk is still raised "
    "it is updated instead (warning_new false, warning.updated) [assumption].",
)
def raise_warning(uow: UnitOfWork, job: Job, deps: Dependencies) -> Mapping[str, Any]:
    """6.4.2: turns a key risk indicator reading (the 3.4.2 indicators) into a warning.

    Publishes `warning.raised` (→ `engagement.risk_warning`, `risk.warning_raised`), or updates the
    warning still open for the indicator (`warning_new` false, `warning.updated`)."""
    reading = Reading.parse(
        engagement_id=job.engagement_id,
        indicator=job.text("indicator"),
        value=job.get("value"),
        status=job.text("status", ""),
        risk_id=_parameter(job, "risk_id"),
        request_id=job.request_id,
    )
    warning = usecases.raise_warning(uow, reading, deps.tables)
    return {
        "warning_id": warning.warning_id,
        "warning_level": warning.level,
        "warning_new": warning.readings == 1,
    }


@operations.handler(
    "escalate_warning",
    clauses=["6.4.2"],
    inputs=[text("warning_id")],
    outputs=[
        optional(date("escalated_at", "a timestamp; null when acknowledged meanwhile")),
        text("warning_status"),
    ],
    description="Publishes warning.escalated.",
)
def escalate_warning(uow: UnitOfWork, job: Job, deps: Dependencies) -> Mapping[str, Any]:
    """6.4.2: escalates a warning nobody acknowledged in time.

    `escalated_at` is null when it was acknowledged meanwhile."""
    warning, escalated = usecases.escalate_warning(uow, job.text("warning_id"))
    return {
        "escalated_at": warning.escalated_at if escalated else None,
        "warning_status": warning.status,
    }


@operations.handler(
    "acknowledge_warning",
    clauses=["6.4.2"],
    inputs=[text("warning_id"), text("warning_action"), optional(text("acknowledged_by"))],
    outputs=[date("acknowledged_at", "a timestamp; acknowledging again returns the first")],
    description="Publishes warning.acknowledged (→ message risk.warning_acknowledged).",
)
def acknowledge_warning(uow: UnitOfWork, job: Job, deps: Dependencies) -> Mapping[str, Any]:
    """6.4.2: records who acknowledged a warning and the action taken.

    Publishes `warning.acknowledged` (→ `risk.warning_acknowledged`, key warning_id)."""
    with renamed_fields(action="warning_action"):
        warning = usecases.acknowledge_warning(
            uow,
            job.text("warning_id"),
            job.text("warning_action"),
            job.text("acknowledged_by", ""),
        )
    return {"acknowledged_at": warning.acknowledged_at}


@operations.handler(
    "close_register",
    clauses=["6"],
    inputs=[ENGAGEMENT],
    outputs=[date("register_closed_at", "a timestamp; closing again returns the first")],
)
def close_register(uow: UnitOfWork, job: Job, deps: Dependencies) -> Mapping[str, Any]:
    """Ch. 6: closes the register when the engagement ended."""
    register = usecases.close_register(uow, job.engagement_id)
    return {"register_closed_at": register.closed_at}
