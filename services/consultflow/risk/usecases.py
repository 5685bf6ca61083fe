"""Risk use cases: each runs in the caller's unit of work and emits the status events of what it changed.

Queries take a plain session, so read-only RPCs can run them in `Database.read()` (on SQLite a deferred
BEGIN, which takes no write lock) and use cases in `uow.session`.

Every event carries the engagement id as correlation; payload keys are the process variables the
diagrams use (`risk_id`, `risk_stage`, `warning_id`, …), because a status event that becomes a BPMN
message merges its payload into the receiving process.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import ColumnElement, and_, func, select
from sqlalchemy.orm import Session

from consultflow.platform.db import UnitOfWork, by_request, one, where_given
from consultflow.platform.errors import NotFound
from consultflow.platform.inputs import required_text
from consultflow.platform.timeutil import now
from consultflow.risk.domain import (
    RISK_PRIORITY_INDICATOR,
    Assessment,
    Deviation,
    DeviationDecision,
    HeatCell,
    IdentificationSession,
    Level,
    NewRisk,
    Occurrence,
    PlacedRisk,
    Reading,
    RegisterStatus,
    ResponseChoice,
    ResponseStatus,
    ReviewFindings,
    RiskStatus,
    Stage,
    Tables,
    Trigger,
    WarningStatus,
    assess,
    check_can_carry_out,
    check_can_respond,
    check_deviation_awaits,
    check_register_open,
    check_risk_open,
    heat_map,
    is_overdue,
    later_stage,
    level_of_open_warning,
    reading_level,
    status_after_assessment,
    warning_for_new_priority,
)
from consultflow.risk.orm import EarlyWarning, Identification, Register, ResponsePlan, Review, Risk

REVIEW_SOURCE = "periodic review (6.4.1)"


# --- views: the entity's state as event payloads (process variable names) ------------------------------


def register_payload(register: Register) -> dict[str, Any]:
    return {
        "register_id": register.register_id,
        "engagement_id": register.engagement_id,
        "client_name": register.client_name,
        "register_stage": register.stage,
        "project_manager": register.project_manager,
        "register_status": register.status,
        "opened_at": register.opened_at,
        "register_closed_at": register.closed_at,
    }


def risk_payload(risk: Risk) -> dict[str, Any]:
    return {
        "risk_id": risk.risk_id,
        "engagement_id": risk.engagement_id,
        "risk_description": risk.description,
        "risk_category": risk.category,
        "risk_stage": risk.stage,
        "risk_source": risk.source,
        "risk_owner": risk.owner,
        "identification_method": risk.identification_method,
        "risk_status": risk.status,
        "likelihood": risk.likelihood,
        "impact": risk.impact,
        "risk_level": risk.level,
        "risk_priority": risk.priority,
        "suggested_strategy": risk.suggested_strategy,
        "strategy_basis": risk.strategy_basis,
        "strategy": risk.strategy,
        "registered_at": risk.registered_at,
        "occurred_at": risk.occurred_at,
        "occurrence": risk.occurrence,
    }


def response_payload(plan: ResponsePlan) -> dict[str, Any]:
    return {
        "response_id": plan.response_id,
        "risk_id": plan.risk_id,
        "engagement_id": plan.engagement_id,
        "strategy": plan.strategy,
        "suggested_strategy": plan.suggested_strategy,
        "measures": plan.measures,
        "measure_owner": plan.owner,
        "measure_due": plan.due_date,
        "response_status": plan.status,
        "measures_effective": plan.effective,
        "deviation": plan.deviation,
        "deviation_reason": plan.deviation_reason,
        "deviation_note": plan.deviation_note,
    }


def warning_payload(warning: EarlyWarning) -> dict[str, Any]:
    return {
        "warning_id": warning.warning_id,
        "engagement_id": warning.engagement_id,
        "risk_id": warning.risk_id,
        "indicator": warning.indicator,
        "indicator_value": warning.value,
        "warning_level": warning.level,
        "warning_trigger": warning.trigger,
        "warning_status": warning.status,
        "raised_at": warning.raised_at,
        "acknowledged_at": warning.acknowledged_at,
        "acknowledged_by": warning.acknowledged_by,
        "warning_action": warning.action,
        "escalated_at": warning.escalated_at,
    }


# --- register ---------------------------------------------------------------------------------------


def _find_register(session: Session, engagement_id: str) -> Register | None:
    return session.scalars(select(Register).where(Register.engagement_id == engagement_id)).first()


def get_register(session: Session, engagement_id: str) -> Register:
    register = _find_register(session, required_text("engagement_id", engagement_id, 100))
    if register is None:
        raise NotFound("risk register of engagement", engagement_id)
    return register


def _new_register(uow: UnitOfWork, engagement_id: str, client_name: str) -> Register:
    register = Register(
        register_id=str(uuid.uuid4()),
        engagement_id=engagement_id,
        client_name=client_name,
        stage=Stage.INTAKE.value,
        project_manager="",
        status=RegisterStatus.OPEN.value,
        opened_at=now(),
    )
    uow.session.add(register)
    uow.session.flush()
    uow.emit(
        "register.opened", register.register_id, register_payload(register), {"engagement_id": engagement_id}
    )
    return register


def open_register(uow: UnitOfWork, engagement_id: str, client_name: str) -> Register:
    """Ch. 6: the engagement's register. A risk registered before the register was opened (the intake
    may find one before risk management starts) already created it; opening it then only names the client."""
    engagement_id = required_text("engagement_id", engagement_id, 100)
    client_name = client_name.strip()
    register = _open_register_for(uow, engagement_id, client_name)
    if client_name and client_name != register.client_name:
        register.client_name = client_name
        uow.session.flush()
        uow.emit(
            "register.updated",
            register.register_id,
            register_payload(register),
            {"engagement_id": engagement_id},
        )
    return register


def _open_register_for(uow: UnitOfWork, engagement_id: str, client_name: str = "") -> Register:
    """The engagement's register, created if it has none yet; a closed one takes no more changes."""
    register = _find_register(uow.session, engagement_id) or _new_register(uow, engagement_id, client_name)
    check_register_open(RegisterStatus(register.status), engagement_id)
    return register


def close_register(uow: UnitOfWork, engagement_id: str) -> Register:
    """Ch. 6: risk management ends with the engagement; closing twice changes nothing."""
    register = get_register(uow.session, engagement_id)
    if register.status != RegisterStatus.CLOSED.value:
        register.status = RegisterStatus.CLOSED.value
        register.closed_at = now()
        uow.session.flush()
        uow.emit(
            "register.closed",
            register.register_id,
            register_payload(register),
            {"engagement_id": engagement_id},
        )
    return register


def record_stage(uow: UnitOfWork, engagement_id: str, stage: Stage, project_manager: str = "") -> Register:
    """6.1.1, 6.3.1: the engagement entered a stage; the register's stage only moves forward, so it says
    whether the engagement is still in its intake (where a risk to avoid can still decline the project).
    The project manager the engagement names with the stage (none before 2.3.2) is the one risk
    management's project-manager tasks are assigned to; an empty name keeps the one recorded."""
    register = _open_register_for(uow, required_text("engagement_id", engagement_id, 100))
    later = later_stage(Stage(register.stage), stage)
    manager = project_manager.strip()[:200] or register.project_manager
    if later.value != register.stage or manager != register.project_manager:
        register.stage = later.value
        register.project_manager = manager
        uow.session.flush()
        uow.emit(
            "register.updated",
            register.register_id,
            register_payload(register),
            {"engagement_id": register.engagement_id},
        )
    return register


def record_identification(
    uow: UnitOfWork, session: IdentificationSession, request_id: str
) -> tuple[Identification, list[Risk]]:
    """6.1.1: an organised identification at a stage is recorded, and every risk it found is registered
    (each publishes `risk.registered` → message `risk.identified`); the same request id returns the first."""
    existing = by_request(uow.session, Identification, request_id)
    if existing is not None:
        return existing, []
    record_stage(uow, session.engagement_id, session.stage)
    identification = Identification(
        identification_id=str(uuid.uuid4()),
        request_id=request_id or None,
        engagement_id=session.engagement_id,
        stage=session.stage.value,
        method=session.method.value,
        team=session.team,
        departments=session.departments,
        experts=session.experts,
        risks_found=len(session.risks),
        recorded_at=now(),
    )
    uow.session.add(identification)
    uow.session.flush()
    risks = [
        register_risk(
            uow,
            NewRisk(
                engagement_id=session.engagement_id,
                description=description,
                stage=session.stage,
                identification_method=session.method,
                source=f"identification {identification.identification_id}",
                request_id=f"{request_id}:{index}" if request_id else "",
            ),
        )
        for index, description in enumerate(session.risks)
    ]
    uow.emit(
        "identification.recorded",
        identification.identification_id,
        {
            "identification_id": identification.identification_id,
            "engagement_id": identification.engagement_id,
            "stage": identification.stage,
            "method": identification.method,
            "team": identification.team,
            "departments": identification.departments,
            "experts": identification.experts,
            "risk_ids": [r.risk_id for r in risks],
        },
        {"engagement_id": identification.engagement_id},
    )
    return identification, risks


@dataclass(frozen=True)
class RegisterCounts:
    open_risks: int
    overdue_measures: int
    open_warnings: int


def register_counts(session: Session, engagement_id: str, today: date) -> RegisterCounts:
    """6.4.1: what a monitoring review looks at first."""
    open_risks = session.scalar(
        select(func.count())
        .select_from(Risk)
        .where(Risk.engagement_id == engagement_id, Risk.status != RiskStatus.CLOSED.value)
    )
    overdue = session.scalar(
        select(func.count())
        .select_from(ResponsePlan)
        .where(ResponsePlan.engagement_id == engagement_id, _overdue(today))
    )
    open_warnings = session.scalar(
        select(func.count())
        .select_from(EarlyWarning)
        .where(
            EarlyWarning.engagement_id == engagement_id,
            EarlyWarning.status == WarningStatus.RAISED.value,
        )
    )
    return RegisterCounts(open_risks or 0, overdue or 0, open_warnings or 0)


# --- risks ------------------------------------------------------------------------------------------


def register_risk(uow: UnitOfWork, command: NewRisk) -> Risk:
    """6.1: records a risk and publishes `risk.registered` (→ message `risk.identified`); the same
    request id returns the risk registered first."""
    existing = by_request(uow.session, Risk, command.request_id)
    if existing is not None:
        return existing
    register = _open_register_for(uow, command.engagement_id)
    risk = Risk(
        risk_id=str(uuid.uuid4()),
        request_id=command.request_id or None,
        register_id=register.register_id,
        engagement_id=command.engagement_id,
        description=command.description,
        category=command.category.value if command.category else "",
        stage=command.stage.value,
        source=command.source,
        owner=command.owner,
        identification_method=command.identification_method.value if command.identification_method else "",
        status=RiskStatus.REGISTERED.value,
        registered_at=now(),
    )
    uow.session.add(risk)
    stage = later_stage(Stage(register.stage), command.stage)
    if stage.value != register.stage:
        register.stage = stage.value
    uow.session.flush()
    uow.emit("risk.registered", risk.risk_id, risk_payload(risk), {"engagement_id": risk.engagement_id})
    return risk


def get_risk(session: Session, risk_id: str) -> Risk:
    return one(session, Risk, risk_id, "risk")


def _live_risk(uow: UnitOfWork, risk_id: str) -> Risk:
    risk = get_risk(uow.session, risk_id)
    check_risk_open(RiskStatus(risk.status), risk_id)
    return risk


def list_risks(
    session: Session, engagement_id: str, status: str, category: str, stage: str, limit: int, offset: int
) -> list[Risk]:
    query = where_given(
        select(Risk),
        (Risk.engagement_id, engagement_id),
        (Risk.status, status),
        (Risk.category, category),
        (Risk.stage, stage),
    )
    return list(session.scalars(query.order_by(Risk.registered_at, Risk.risk_id).offset(offset).limit(limit)))


def assess_risk(uow: UnitOfWork, command: Assessment, tables: Tables) -> tuple[Risk, EarlyWarning | None]:
    """6.2: the matrix gives level, priority and suggested strategy; a priority that moves into a worse
    warning band raises a warning (6.4.2 [assumption])."""
    risk = _live_risk(uow, command.risk_id)
    cell = assess(tables, command.likelihood, command.impact)
    category, method = command.classification(risk.category, risk.identification_method)
    previous_priority = risk.priority
    risk.category, risk.identification_method = category, method
    risk.likelihood, risk.impact = cell.likelihood, cell.impact
    risk.level, risk.priority = cell.level, cell.priority
    risk.suggested_strategy, risk.strategy_basis = cell.suggested_strategy.value, cell.strategy_basis
    if command.likelihood_basis:
        risk.likelihood_basis = command.likelihood_basis
    if command.affected_objective is not None:
        risk.affected_objective = command.affected_objective.value
    risk.assessed_at = now()
    risk.status = status_after_assessment(RiskStatus(risk.status)).value
    uow.session.flush()
    uow.emit("risk.assessed", risk.risk_id, risk_payload(risk), {"engagement_id": risk.engagement_id})
    warning = None
    band = warning_for_new_priority(tables, previous_priority, cell.priority)
    if band is not None:
        warning = _raise(
            uow,
            risk.engagement_id,
            RISK_PRIORITY_INDICATOR,
            float(cell.priority),
            band,
            Trigger.RISK_LEVEL,
            risk.risk_id,
            request_id=None,
        )
    return risk, warning


def close_risk(uow: UnitOfWork, risk_id: str, reason: str) -> Risk:
    risk = _live_risk(uow, risk_id)
    risk.status = RiskStatus.CLOSED.value
    risk.closed_at = now()
    risk.close_reason = reason.strip()
    uow.session.flush()
    uow.emit("risk.closed", risk.risk_id, risk_payload(risk), {"engagement_id": risk.engagement_id})
    return risk


def report_risk_occurred(uow: UnitOfWork, occurrence: Occurrence) -> Risk:
    """6.3.4: the risk happened (an accepted risk is responded to when it happens); publishes
    `risk.occurred` (→ message `risk.occurred`, key risk_id), which starts the contingency response.
    Reporting it again records the latest report and publishes again."""
    risk = _live_risk(uow, occurrence.risk_id)
    risk.occurred_at = now()
    risk.occurrence = occurrence.description
    uow.session.flush()
    uow.emit(
        "risk.occurred",
        risk.risk_id,
        {**risk_payload(risk), "occurrence_reported_by": occurrence.reported_by},
        {"engagement_id": risk.engagement_id},
    )
    return risk


@dataclass(frozen=True)
class MatrixView:
    """The risk matrix with the risks in each cell, and how many are not assessed yet."""

    likelihoods: list[str]
    impacts: list[str]
    cells: list[HeatCell]
    total: int
    unassessed: int


def risk_matrix(session: Session, engagement_id: str, include_closed: bool, tables: Tables) -> MatrixView:
    """6.2.3: the heat map of an engagement's assessed risks, or of the whole firm's."""
    query = select(Risk)
    if engagement_id:
        query = query.where(Risk.engagement_id == engagement_id)
    if not include_closed:
        query = query.where(Risk.status != RiskStatus.CLOSED.value)
    risks = list(session.scalars(query.order_by(Risk.registered_at, Risk.risk_id)))
    placed = [
        PlacedRisk(r.risk_id, r.engagement_id, r.description, r.status, r.likelihood, r.impact)
        for r in risks
        if r.likelihood and r.impact
    ]
    cells = heat_map(tables, placed)
    return MatrixView(
        likelihoods=tables.likelihoods(),
        impacts=tables.impacts(),
        cells=cells,
        total=sum(len(c.risks) for c in cells),
        unassessed=sum(1 for r in risks if not r.likelihood),
    )


# --- responses --------------------------------------------------------------------------------------


def plan_response(uow: UnitOfWork, choice: ResponseChoice) -> ResponsePlan:
    """6.3: the strategy chosen with measures, owner and due date. The matrix prescribes the strategy
    (`suggested_strategy`); another one needs a reason and awaits management's approval."""
    risk = get_risk(uow.session, choice.risk_id)
    check_can_respond(RiskStatus(risk.status), risk.risk_id)
    deviation = choice.deviation(risk.suggested_strategy)
    plan = ResponsePlan(
        response_id=str(uuid.uuid4()),
        risk_id=risk.risk_id,
        engagement_id=risk.engagement_id,
        strategy=choice.strategy.value,
        suggested_strategy=risk.suggested_strategy,
        measures=choice.measures,
        owner=choice.owner,
        due_date=choice.due,
        status=ResponseStatus.PLANNED.value,
        decided_by=choice.decided_by,
        deviation=deviation.value,
        deviation_reason=choice.deviation_reason if deviation is not Deviation.NONE else "",
        planned_at=now(),
    )
    uow.session.add(plan)
    risk.strategy = choice.strategy.value
    risk.status = RiskStatus.RESPONDED.value
    uow.session.flush()
    uow.emit(
        "response.planned",
        plan.response_id,
        {**response_payload(plan), **risk_payload(risk)},
        {"engagement_id": plan.engagement_id},
    )
    return plan


def get_response(session: Session, response_id: str) -> ResponsePlan:
    return one(session, ResponsePlan, response_id, "response")


def _latest_plan(session: Session, risk_id: str) -> ResponsePlan | None:
    query = select(ResponsePlan).where(ResponsePlan.risk_id == risk_id)
    order = (ResponsePlan.planned_at.desc(), ResponsePlan.response_id.desc())
    return session.scalars(query.order_by(*order).limit(1)).first()


def decide_deviation(uow: UnitOfWork, decision: DeviationDecision) -> ResponsePlan:
    """6.3 [assumption]: management approves a plan that deviates from the prescribed strategy, or
    rejects it: the plan is void and the risk is assessed again, waiting for a new plan (the prescribed
    strategy, or another justified one that again awaits approval)."""
    plan = get_response(uow.session, decision.response_id)
    check_deviation_awaits(Deviation(plan.deviation), plan.response_id)
    risk = get_risk(uow.session, plan.risk_id)
    check_risk_open(RiskStatus(risk.status), risk.risk_id)
    outcome = decision.outcome()
    plan.deviation = outcome.value
    plan.deviation_decided_by = decision.decided_by
    plan.deviation_note = decision.note
    plan.deviation_decided_at = now()
    if outcome is Deviation.REJECTED:
        plan.status = ResponseStatus.REJECTED.value
        if _latest_plan(uow.session, risk.risk_id) is plan:
            risk.strategy = ""
            risk.status = RiskStatus.ASSESSED.value
    uow.session.flush()
    uow.emit(
        f"response.deviation_{outcome.value}",
        plan.response_id,
        {**response_payload(plan), **risk_payload(risk)},
        {"engagement_id": plan.engagement_id},
    )
    return plan


def complete_response(uow: UnitOfWork, response_id: str, effective: bool, notes: str) -> ResponsePlan:
    """6.4.1: the response's measures were carried out, effective or not (a deviating plan only once
    approved)."""
    plan = get_response(uow.session, response_id)
    check_can_carry_out(ResponseStatus(plan.status), Deviation(plan.deviation), response_id)
    plan.status = ResponseStatus.DONE.value
    plan.effective = effective
    plan.completion_notes = notes.strip()
    plan.completed_at = now()
    uow.session.flush()
    uow.emit(
        "response.completed", plan.response_id, response_payload(plan), {"engagement_id": plan.engagement_id}
    )
    return plan


def _overdue(today: date) -> ColumnElement[bool]:
    """Planned responses whose due date has passed (the SQL twin of `domain.is_overdue`)."""
    return and_(
        ResponsePlan.status == ResponseStatus.PLANNED.value,
        ResponsePlan.due_date.is_not(None),
        ResponsePlan.due_date < today,
    )


def list_responses(
    session: Session,
    engagement_id: str,
    risk_id: str,
    overdue_only: bool,
    today: date,
    limit: int,
    offset: int,
) -> list[ResponsePlan]:
    query = select(ResponsePlan)
    if engagement_id:
        query = query.where(ResponsePlan.engagement_id == engagement_id)
    if risk_id:
        query = query.where(ResponsePlan.risk_id == risk_id)
    if overdue_only:
        query = query.where(_overdue(today))
    order = (ResponsePlan.planned_at, ResponsePlan.response_id)
    return list(session.scalars(query.order_by(*order).offset(offset).limit(limit)))


def response_overdue(plan: ResponsePlan, today: date) -> bool:
    return is_overdue(plan.due_date, plan.status == ResponseStatus.DONE.value, today)


# --- monitoring -------------------------------------------------------------------------------------


def record_review(uow: UnitOfWork, findings: ReviewFindings, today: date) -> tuple[Review, Risk | None]:
    """6.4.1: a periodic review; a new risk it found is registered at the register's current stage."""
    register = get_register(uow.session, findings.engagement_id)
    new_risk = None
    if findings.new_risk_found:
        new_risk = register_risk(
            uow,
            NewRisk.parse(
                engagement_id=register.engagement_id,
                description=findings.new_risk_description,
                stage=register.stage,
                source=REVIEW_SOURCE,
                owner=findings.reviewed_by,
            ),
        )
    counts = register_counts(uow.session, register.engagement_id, today)
    review = Review(
        review_id=str(uuid.uuid4()),
        engagement_id=register.engagement_id,
        measures_carried_out=findings.measures_carried_out,
        measures_effective=findings.measures_effective,
        new_risk_found=findings.new_risk_found,
        new_risk_id=new_risk.risk_id if new_risk else "",
        open_risks=counts.open_risks,
        overdue_measures=counts.overdue_measures,
        reviewed_by=findings.reviewed_by,
        notes=findings.notes,
        reviewed_at=now(),
    )
    uow.session.add(review)
    uow.session.flush()
    uow.emit(
        "review.recorded",
        review.review_id,
        {
            "review_id": review.review_id,
            "engagement_id": review.engagement_id,
            "measures_carried_out": review.measures_carried_out,
            "measures_effective": review.measures_effective,
            "new_risk_found": review.new_risk_found,
            "new_risk_id": review.new_risk_id,
            "open_risks": review.open_risks,
            "overdue_measures": review.overdue_measures,
        },
        {"engagement_id": review.engagement_id},
    )
    return review, new_risk


def list_reviews(session: Session, engagement_id: str, limit: int, offset: int) -> list[Review]:
    query = select(Review).where(Review.engagement_id == required_text("engagement_id", engagement_id, 100))
    return list(
        session.scalars(query.order_by(Review.reviewed_at, Review.review_id).offset(offset).limit(limit))
    )


# --- early warning ----------------------------------------------------------------------------------


def _open_warning(session: Session, engagement_id: str, indicator: str, risk_id: str) -> EarlyWarning | None:
    """The warning still raised (not acknowledged) for this engagement's indicator and risk, if any."""
    query = select(EarlyWarning).where(
        EarlyWarning.engagement_id == engagement_id,
        EarlyWarning.indicator == indicator,
        EarlyWarning.risk_id == risk_id,
        EarlyWarning.status == WarningStatus.RAISED.value,
    )
    return session.scalars(query.order_by(EarlyWarning.raised_at).limit(1)).first()


def _raise(
    uow: UnitOfWork,
    engagement_id: str,
    indicator: str,
    value: float,
    level: Level,
    trigger: Trigger,
    risk_id: str,
    request_id: str | None,
) -> EarlyWarning:
    """A new warning (`warning.raised`), or, while one is open for the same indicator and risk, that one
    updated (`warning.updated`: no second warning, task or escalation for one lasting breach)."""
    open_warning = _open_warning(uow.session, engagement_id, indicator, risk_id)
    if open_warning is not None:
        open_warning.value = value
        open_warning.level = level_of_open_warning(Level(open_warning.level), level).value
        open_warning.readings += 1
        uow.session.flush()
        uow.emit(
            "warning.updated",
            open_warning.warning_id,
            {**warning_payload(open_warning), "warning_readings": open_warning.readings},
            {"engagement_id": engagement_id},
        )
        return open_warning
    warning = EarlyWarning(
        warning_id=str(uuid.uuid4()),
        request_id=request_id,
        engagement_id=engagement_id,
        risk_id=risk_id,
        indicator=indicator,
        value=value,
        level=level.value,
        trigger=trigger.value,
        status=WarningStatus.RAISED.value,
        raised_at=now(),
        escalations=0,
        readings=1,
    )
    uow.session.add(warning)
    uow.session.flush()
    uow.emit("warning.raised", warning.warning_id, warning_payload(warning), {"engagement_id": engagement_id})
    return warning


def raise_warning(uow: UnitOfWork, reading: Reading, tables: Tables) -> EarlyWarning:
    """6.4.2 [assumption]: records a key risk indicator reading as a warning and publishes
    `warning.raised` (→ messages `engagement.risk_warning` and `risk.warning_raised`), or updates the
    warning still open for the same indicator and risk; the same request id returns the first."""
    existing = by_request(uow.session, EarlyWarning, reading.request_id)
    if existing is not None:
        return existing
    if reading.risk_id:
        get_risk(uow.session, reading.risk_id)
    level = reading_level(tables, reading)
    return _raise(
        uow,
        reading.engagement_id,
        reading.indicator,
        reading.value,
        level,
        Trigger.INDICATOR,
        reading.risk_id,
        reading.request_id or None,
    )


def get_warning(session: Session, warning_id: str) -> EarlyWarning:
    return one(session, EarlyWarning, warning_id, "warning")


def acknowledge_warning(uow: UnitOfWork, warning_id: str, action: str, acknowledged_by: str) -> EarlyWarning:
    """6.4.2 [assumption]: someone took the warning on and says what they do about it; publishes
    `warning.acknowledged` (→ message `risk.warning_acknowledged`, key warning_id). Acknowledging an
    acknowledged warning returns it unchanged."""
    warning = get_warning(uow.session, warning_id)
    if warning.status == WarningStatus.ACKNOWLEDGED.value:
        return warning
    warning.action = required_text("action", action, 5000)
    warning.acknowledged_by = acknowledged_by.strip()
    warning.status = WarningStatus.ACKNOWLEDGED.value
    warning.acknowledged_at = now()
    uow.session.flush()
    uow.emit(
        "warning.acknowledged",
        warning.warning_id,
        warning_payload(warning),
        {"engagement_id": warning.engagement_id},
    )
    return warning


def escalate_warning(uow: UnitOfWork, warning_id: str) -> tuple[EarlyWarning, bool]:
    """6.4.2 [assumption]: nobody acknowledged the warning in time (the diagram's timer says when), so it
    goes to management. A warning acknowledged meanwhile is not escalated (returns False)."""
    warning = get_warning(uow.session, warning_id)
    if warning.status == WarningStatus.ACKNOWLEDGED.value:
        return warning, False
    warning.escalations += 1
    warning.escalated_at = now()
    uow.session.flush()
    uow.emit(
        "warning.escalated",
        warning.warning_id,
        {**warning_payload(warning), "escalations": warning.escalations},
        {"engagement_id": warning.engagement_id},
    )
    return warning, True


def list_warnings(
    session: Session, engagement_id: str, status: str, level: str, limit: int, offset: int
) -> list[EarlyWarning]:
    query = where_given(
        select(EarlyWarning),
        (EarlyWarning.engagement_id, engagement_id),
        (EarlyWarning.status, status),
        (EarlyWarning.level, level),
    )
    order = (EarlyWarning.raised_at, EarlyWarning.warning_id)
    return list(session.scalars(query.order_by(*order).offset(offset).limit(limit)))
