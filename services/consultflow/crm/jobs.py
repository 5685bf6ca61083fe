"""The crm operations that diagrams call as service tasks (`crm.<operation>`, docs/operations.md).

Each handler reads its inputs from the job, builds the same command the gRPC API builds, and runs the
use case in the unit of work `run_job` gives it (which also makes a redelivered job act once).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from consultflow.crm import usecases
from consultflow.crm.domain import (
    CommunicationMode,
    DeclineReason,
    Dimension,
    LeadSource,
    NewFeasibility,
    NewInquiry,
    NewLead,
    NewMarketInsight,
    NewOpportunity,
    NewRequirements,
    NewRevisit,
    NewValueAddedService,
    OpportunityKind,
    RevisitMethod,
    ValueAddedKind,
    Verdict,
    parse_channel,
    parse_choice,
    parse_flag,
    parse_names,
)
from consultflow.platform.db import UnitOfWork
from consultflow.platform.jobs import Job, JobHandler


def _engagement(job: Job) -> str:
    return str(job.get("engagement_id", "") or job.business_key)


def record_inquiry(uow: UnitOfWork, job: Job) -> Mapping[str, Any]:
    """2.1.2: records the inquiry the process was started with; returns its id and the client's."""
    command = NewInquiry(
        channel=parse_channel(job.text("channel"), "channel"),
        client_name=job.text("client_name"),
        client_industry=job.text("client_industry", ""),
        contact_name=job.text("contact_name"),
        contact_email=job.text("contact_email", ""),
        contact_phone=job.text("contact_phone", ""),
        question=job.text("question"),
        engagement_id=_engagement(job),
        request_id=f"job:{job.key}",
    )
    inquiry, client = usecases.record_inquiry(uow, command)
    return {"inquiry_id": inquiry.inquiry_id, "client_id": client.client_id}


def record_requirements(uow: UnitOfWork, job: Job) -> Mapping[str, Any]:
    """2.2.1: a new version of the inquiry's requirements document."""
    command = NewRequirements(
        inquiry_id=job.text("inquiry_id"),
        communication_mode=parse_choice(
            CommunicationMode, job.get("communication_mode"), "communication_mode"
        ),
        needs=job.text("needs"),
        goals=job.text("goals"),
        expected_results=job.text("expected_results"),
        background=job.text("background", ""),
        recorded_by=job.text("recorded_by", ""),
    )
    requirements = usecases.record_requirements(uow, command)
    return {
        "requirements_id": requirements.document.requirements_id,
        "requirements_version": requirements.document.current_version,
    }


def _dimension(job: Job, dimension: Dimension) -> Verdict:
    name = dimension.value
    return Verdict(
        dimension,
        parse_flag(job.get(f"{name}_feasible"), f"{name}_feasible"),
        job.text(f"{name}_reason", ""),
    )


def record_feasibility(uow: UnitOfWork, job: Job) -> Mapping[str, Any]:
    """2.2.2: the verdicts per dimension and the overall go/no-go."""
    command = NewFeasibility(
        inquiry_id=job.text("inquiry_id"),
        technical=_dimension(job, Dimension.TECHNICAL),
        economic=_dimension(job, Dimension.ECONOMIC),
        time=_dimension(job, Dimension.TIME),
        assessors=parse_names(job.get("assessors"), "assessors"),
        report=job.text("feasibility_report", ""),
    )
    result = usecases.record_feasibility(uow, command)
    return {
        "feasibility_id": result.assessment.feasibility_id,
        "feasible": result.assessment.feasible,
        "feasibility_summary": result.assessment.summary,
    }


def decline_inquiry(uow: UnitOfWork, job: Job) -> Mapping[str, Any]:
    """2.2.2, 2.3.1, 6.3.1: closes the inquiry with the reason it was not taken on."""
    reason = parse_choice(DeclineReason, job.get("decline_reason"), "decline_reason")
    usecases.decline_inquiry(uow, job.text("inquiry_id"), reason)
    return {"intake_outcome": "declined", "decline_reason": reason.value}


def record_market_insight(uow: UnitOfWork, job: Job) -> Mapping[str, Any]:
    """2.1.1: trends, demand and competitors."""
    command = NewMarketInsight(
        industry_trends=job.text("industry_trends", ""),
        market_demand=job.text("market_demand", ""),
        competitors=job.text("competitors", ""),
        potential_clients=job.text("potential_clients", ""),
        industry=job.text("industry", ""),
    )
    return {"insight_id": usecases.record_market_insight(uow, command).insight_id}


def record_lead(uow: UnitOfWork, job: Job) -> Mapping[str, Any]:
    """2.1.1: a lead from a trade fair, seminar or online platform."""
    command = NewLead(
        source=parse_choice(LeadSource, job.get("lead_source"), "lead_source"),
        company=job.text("lead_company"),
        contact=job.text("lead_contact", ""),
        notes=job.text("lead_notes", ""),
    )
    return {"lead_id": usecases.record_lead(uow, command).lead_id}


def record_revisit(uow: UnitOfWork, job: Job) -> Mapping[str, Any]:
    """5.3.1: a periodic revisit made."""
    command = NewRevisit(
        client_id=job.text("client_id"),
        method=parse_choice(RevisitMethod, job.get("revisit_method"), "revisit_method"),
        findings=job.text("revisit_findings"),
        new_needs=job.text("new_needs", ""),
        engagement_id=_engagement(job),
    )
    revisit, _ = usecases.record_revisit(uow, command)
    return {"revisit_id": revisit.revisit_id}


def record_value_added_service(uow: UnitOfWork, job: Job) -> Mapping[str, Any]:
    """5.3.2: a value-added service delivered."""
    command = NewValueAddedService(
        client_id=job.text("client_id"),
        kind=parse_choice(ValueAddedKind, job.get("value_added_service"), "value_added_service"),
        description=job.text("value_added_description", ""),
        engagement_id=_engagement(job),
    )
    return {"value_added_service_id": usecases.record_value_added_service(uow, command).service_id}


def record_opportunity(uow: UnitOfWork, job: Job) -> Mapping[str, Any]:
    """5.3.3: a follow-on project or a referral."""
    command = NewOpportunity(
        client_id=job.text("client_id"),
        description=job.text("opportunity"),
        kind=parse_choice(
            OpportunityKind, job.get("opportunity_kind", "") or "follow_on", "opportunity_kind"
        ),
        referred_company=job.text("referred_company", ""),
        engagement_id=_engagement(job),
    )
    return {"opportunity_id": usecases.record_opportunity(uow, command).opportunity_id}


HANDLERS: dict[str, JobHandler] = {
    "crm.record_inquiry": record_inquiry,
    "crm.record_requirements": record_requirements,
    "crm.record_feasibility": record_feasibility,
    "crm.decline_inquiry": decline_inquiry,
    "crm.record_market_insight": record_market_insight,
    "crm.record_lead": record_lead,
    "crm.record_revisit": record_revisit,
    "crm.record_value_added_service": record_value_added_service,
    "crm.record_opportunity": record_opportunity,
}
