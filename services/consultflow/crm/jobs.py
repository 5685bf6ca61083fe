"""The crm operations that diagrams call as service tasks (`crm.<operation>`, docs/operations.md).

Each handler reads its inputs from the job, builds the same command the gRPC API builds (with the job's
variable names in errors), and runs one use case in the unit of work `run_job` gives it (which also
makes a redelivered job act once). crm needs no dependencies: `operations.bind(None)`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from consultflow.crm import usecases
from consultflow.crm.domain import (
    Decline,
    NewFeasibility,
    NewInquiry,
    NewLead,
    NewMarketInsight,
    NewOpportunity,
    NewReferral,
    NewRequirements,
    NewRevisit,
    NewValueAddedService,
)
from consultflow.platform.db import UnitOfWork
from consultflow.platform.inputs import renamed_fields
from consultflow.platform.jobs import Job, Operations

operations = Operations[None]("crm")


@operations.handler("record_inquiry")
def record_inquiry(uow: UnitOfWork, job: Job, deps: None) -> Mapping[str, Any]:
    """2.1.2: records the inquiry the process was started with; returns its id and the client's."""
    command = NewInquiry.parse(
        channel=job.text("channel"),
        client_name=job.text("client_name"),
        client_industry=job.text("client_industry", ""),
        contact_name=job.text("contact_name"),
        contact_email=job.text("contact_email", ""),
        contact_phone=job.text("contact_phone", ""),
        question=job.text("question"),
        engagement_id=job.engagement_id,
        request_id=job.request_id,
        lead_id=job.text("lead_id", ""),
        referred_by=job.text("referred_by", ""),
    )
    inquiry, client = usecases.record_inquiry(uow, command)
    return {"inquiry_id": inquiry.inquiry_id, "client_id": client.client_id}


@operations.handler("refer_inquiry")
def refer_inquiry(uow: UnitOfWork, job: Job, deps: None) -> Mapping[str, Any]:
    """2.1.1/5.3.3 → 2.1.2: a lead or an earlier engagement's opportunity becomes a new engagement; returns
    the new engagement's id, which the diagram's `inquiry.referred` message starts it with."""
    command = NewReferral.parse(
        client_name=job.text("client_name"),
        client_industry=job.text("client_industry", ""),
        contact_name=job.text("contact_name"),
        contact_email=job.text("contact_email", ""),
        contact_phone=job.text("contact_phone", ""),
        question=job.text("question"),
        lead_id=job.text("lead_id", ""),
        referred_by=job.text("referred_by", ""),
        request_id=job.request_id,
    )
    return {"referred_engagement_id": usecases.refer_inquiry(uow, command).referred_engagement_id}


@operations.handler("record_requirements")
def record_requirements(uow: UnitOfWork, job: Job, deps: None) -> Mapping[str, Any]:
    """2.2.1: a new version of the inquiry's requirements document."""
    command = NewRequirements.parse(
        inquiry_id=job.text("inquiry_id"),
        communication_mode=job.text("communication_mode"),
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


@operations.handler("record_feasibility")
def record_feasibility(uow: UnitOfWork, job: Job, deps: None) -> Mapping[str, Any]:
    """2.2.2: the verdicts per dimension and the experts' conclusion whether to take the project on."""
    with renamed_fields(report="feasibility_report"):
        command = NewFeasibility.parse(
            inquiry_id=job.text("inquiry_id"),
            technical_feasible=job.get("technical_feasible"),
            technical_reason=job.text("technical_reason", ""),
            economic_feasible=job.get("economic_feasible"),
            economic_reason=job.text("economic_reason", ""),
            time_feasible=job.get("time_feasible"),
            time_reason=job.text("time_reason", ""),
            assessors=job.get("assessors"),
            report=job.text("feasibility_report", ""),
            worth_taking_on=job.get("worth_taking_on", None),
            worth_reason=job.text("worth_reason", ""),
        )
    result = usecases.record_feasibility(uow, command)
    return {
        "feasibility_id": result.assessment.feasibility_id,
        "feasible": result.assessment.feasible,
        "feasibility_summary": result.assessment.summary,
    }


@operations.handler("decline_inquiry")
def decline_inquiry(uow: UnitOfWork, job: Job, deps: None) -> Mapping[str, Any]:
    """2.2.2, 2.3.1, 6.3.1: closes the inquiry with the reason it was not taken on."""
    command = Decline.parse(inquiry_id=job.text("inquiry_id"), decline_reason=job.text("decline_reason"))
    inquiry, _ = usecases.decline_inquiry(uow, command)
    return {"intake_outcome": inquiry.status, "decline_reason": command.reason.value}


@operations.handler("record_market_insight")
def record_market_insight(uow: UnitOfWork, job: Job, deps: None) -> Mapping[str, Any]:
    """2.1.1: trends, demand and competitors."""
    command = NewMarketInsight.parse(
        industry_trends=job.text("industry_trends", ""),
        market_demand=job.text("market_demand", ""),
        competitors=job.text("competitors", ""),
        potential_clients=job.text("potential_clients", ""),
        industry=job.text("industry", ""),
    )
    return {"insight_id": usecases.record_market_insight(uow, command).insight_id}


@operations.handler("record_lead")
def record_lead(uow: UnitOfWork, job: Job, deps: None) -> Mapping[str, Any]:
    """2.1.1: a lead from a trade fair, seminar, online platform or another channel; with the round's
    `insight_id`, also every lead that round found so far (`lead_ids`, for their follow-up)."""
    command = NewLead.parse(
        lead_source=job.text("lead_source"),
        lead_company=job.text("lead_company"),
        lead_contact=job.text("lead_contact", ""),
        lead_notes=job.text("lead_notes", ""),
        insight_id=job.text("insight_id", ""),
    )
    lead = usecases.record_lead(uow, command)
    return {"lead_id": lead.lead_id, "lead_ids": usecases.leads_of_round(uow.session, lead)}


@operations.handler("record_revisit")
def record_revisit(uow: UnitOfWork, job: Job, deps: None) -> Mapping[str, Any]:
    """5.3.1: a periodic revisit made (it fulfils the client's earliest due revisit plan, if any)."""
    command = NewRevisit.parse(
        client_id=job.text("client_id"),
        revisit_method=job.text("revisit_method"),
        revisit_findings=job.text("revisit_findings"),
        new_needs=job.text("new_needs", ""),
        engagement_id=job.engagement_id,
    )
    revisit, _ = usecases.record_revisit(uow, command)
    return {"revisit_id": revisit.revisit_id}


@operations.handler("record_value_added_service")
def record_value_added_service(uow: UnitOfWork, job: Job, deps: None) -> Mapping[str, Any]:
    """5.3.2: a value-added service delivered."""
    with renamed_fields(description="value_added_description"):
        command = NewValueAddedService.parse(
            client_id=job.text("client_id"),
            value_added_service=job.text("value_added_service"),
            description=job.text("value_added_description", ""),
            engagement_id=job.engagement_id,
        )
    return {"value_added_service_id": usecases.record_value_added_service(uow, command).service_id}


@operations.handler("record_opportunity")
def record_opportunity(uow: UnitOfWork, job: Job, deps: None) -> Mapping[str, Any]:
    """5.3.3: a follow-on project (the default) or a referral."""
    command = NewOpportunity.parse(
        client_id=job.text("client_id"),
        opportunity=job.text("opportunity"),
        opportunity_kind=job.text("opportunity_kind", ""),
        referred_company=job.text("referred_company", ""),
        engagement_id=job.engagement_id,
    )
    return {"opportunity_id": usecases.record_opportunity(uow, command).opportunity_id}
