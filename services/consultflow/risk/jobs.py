"""The risk operations that diagrams call as service tasks (`risk.<operation>`, docs/operations.md).

Each handler reads the catalogue's inputs, calls one use case and returns the catalogue's outputs.
Validation errors name the job's own variables (e.g. `risk_description`, not the API's `description`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from consultflow.platform.db import UnitOfWork
from consultflow.platform.inputs import number, optional_choice, renamed_fields
from consultflow.platform.jobs import Job, JobHandler
from consultflow.platform.timeutil import now
from consultflow.risk import usecases
from consultflow.risk.domain import (
    Assessment,
    Level,
    NewRisk,
    Reading,
    ResponseChoice,
    ReviewFindings,
    Tables,
)


def engagement_of(job: Job) -> str:
    return job.text("engagement_id", "") or job.business_key


def handlers(tables: Tables) -> dict[str, JobHandler]:
    """The risk service's job handlers; the matrix and thresholds come from `tables`."""

    def open_register(uow: UnitOfWork, job: Job) -> Mapping[str, Any]:
        """Ch. 6: opens the engagement's register when its risk management starts."""
        register = usecases.open_register(uow, engagement_of(job), job.text("client_name", ""))
        return {"register_id": register.register_id}

    def register_risk(uow: UnitOfWork, job: Job) -> Mapping[str, Any]:
        """6.1.1: registers a risk found at a stage; publishes `risk.registered` (→ `risk.identified`)."""
        with renamed_fields(
            description="risk_description",
            category="risk_category",
            stage="risk_stage",
            source="risk_source",
            owner="risk_owner",
        ):
            command = NewRisk.parse(
                engagement_id=engagement_of(job),
                description=job.text("risk_description"),
                stage=job.text("risk_stage"),
                category=job.text("risk_category", ""),
                identification_method=job.text("identification_method", ""),
                source=job.text("risk_source", ""),
                owner=job.text("risk_owner", ""),
                request_id=f"job:{job.key}",
            )
        risk = usecases.register_risk(uow, command)
        return {"risk_id": risk.risk_id}

    def assess_risk(uow: UnitOfWork, job: Job) -> Mapping[str, Any]:
        """6.1.2, 6.2: classification and likelihood × impact → level, priority, suggested strategy."""
        with renamed_fields(category="risk_category"):
            command = Assessment.parse(
                risk_id=job.text("risk_id"),
                likelihood=job.text("likelihood"),
                impact=job.text("impact"),
                category=job.text("risk_category", ""),
                identification_method=job.text("identification_method", ""),
            )
            risk, _warning = usecases.assess_risk(uow, tables, command)
        return {
            "risk_level": risk.level,
            "risk_priority": risk.priority,
            "suggested_strategy": risk.suggested_strategy,
        }

    def plan_response(uow: UnitOfWork, job: Job) -> Mapping[str, Any]:
        """6.3: the chosen strategy with measures, owner and due date."""
        with renamed_fields(owner="measure_owner", due_date="measure_due"):
            choice = ResponseChoice.parse(
                risk_id=job.text("risk_id"),
                strategy=job.text("strategy"),
                measures=job.text("measures", ""),
                owner=job.text("measure_owner", ""),
                due_date=job.text("measure_due", ""),
                decided_by=str(job.parameters.get("decided_by") or ""),
            )
        plan = usecases.plan_response(uow, choice)
        return {"response_id": plan.response_id}

    def review_register(uow: UnitOfWork, job: Job) -> Mapping[str, Any]:
        """6.4.1: what the periodic review starts from."""
        register = usecases.get_register(uow.session, engagement_of(job))
        counts = usecases.register_counts(uow.session, register.engagement_id, now().date())
        return {"open_risks": counts.open_risks, "overdue_measures": counts.overdue_measures}

    def record_review(uow: UnitOfWork, job: Job) -> Mapping[str, Any]:
        """6.4.1: the review's findings; a new risk is registered at the register's stage."""
        findings = ReviewFindings(
            engagement_id=engagement_of(job),
            measures_carried_out=job.flag("measures_carried_out"),
            measures_effective=job.flag("measures_effective"),
            new_risk_found=job.flag("new_risk_found"),
            new_risk_description=job.text("new_risk_description", ""),
            reviewed_by=str(job.parameters.get("reviewed_by") or ""),
            notes=str(job.parameters.get("review_notes") or ""),
        )
        review, _new_risk = usecases.record_review(uow, findings, now().date())
        return {"review_id": review.review_id}

    def raise_warning(uow: UnitOfWork, job: Job) -> Mapping[str, Any]:
        """6.4.2: a key risk indicator reading (the 3.4.2 indicators) becomes a warning; publishes
        `warning.raised` (→ `engagement.risk_warning`)."""
        reading = Reading(
            engagement_id=engagement_of(job),
            indicator=job.text("indicator"),
            value=number("value", job.get("value")),
            reported=optional_choice("status", job.text("status", ""), Level),
            risk_id=str(job.parameters.get("risk_id") or ""),
            request_id=f"job:{job.key}",
        )
        warning = usecases.raise_warning(uow, tables, reading)
        return {"warning_id": warning.warning_id, "warning_level": warning.level}

    def escalate_warning(uow: UnitOfWork, job: Job) -> Mapping[str, Any]:
        """6.4.2: nobody acknowledged in time; `escalated_at` is null when it was acknowledged meanwhile."""
        warning, escalated = usecases.escalate_warning(uow, job.text("warning_id"))
        return {
            "escalated_at": warning.escalated_at if escalated else None,
            "warning_status": warning.status,
        }

    def acknowledge_warning(uow: UnitOfWork, job: Job) -> Mapping[str, Any]:
        """6.4.2: publishes `warning.acknowledged` (→ `risk.warning_acknowledged`, key warning_id)."""
        with renamed_fields(action="warning_action"):
            warning = usecases.acknowledge_warning(
                uow,
                job.text("warning_id"),
                job.text("warning_action"),
                job.text("acknowledged_by", ""),
            )
        return {"acknowledged_at": warning.acknowledged_at}

    def close_register(uow: UnitOfWork, job: Job) -> Mapping[str, Any]:
        """Ch. 6: the engagement ended; its register closes."""
        register = usecases.close_register(uow, engagement_of(job))
        return {"register_closed_at": register.closed_at}

    return {
        "risk.open_register": open_register,
        "risk.register_risk": register_risk,
        "risk.assess_risk": assess_risk,
        "risk.plan_response": plan_response,
        "risk.review_register": review_register,
        "risk.record_review": record_review,
        "risk.raise_warning": raise_warning,
        "risk.escalate_warning": escalate_warning,
        "risk.acknowledge_warning": acknowledge_warning,
        "risk.close_register": close_register,
    }
