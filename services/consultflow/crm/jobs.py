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
    Channel,
    CommunicationMode,
    Decline,
    DeclineReason,
    LeadSource,
    NewFeasibility,
    NewInquiry,
    NewLead,
    NewMarketInsight,
    NewOpportunity,
    NewReferral,
    NewRequirements,
    NewRevisit,
    NewValueAddedService,
    OpportunityKind,
    RevisitMethod,
    ValueAddedKind,
)
from consultflow.platform.db import UnitOfWork
from consultflow.platform.inputs import renamed_fields
from consultflow.platform.jobs import Job, Operations
from consultflow.platform.operation_spec import ENGAGEMENT, flag, integer, listing, one_of, optional, text

operations = Operations[None]("crm")


@operations.handler(
    "record_inquiry",
    clauses=["2.1.2"],
    inputs=[
        ENGAGEMENT,
        one_of("channel", Channel, "how the inquiry came in"),
        text("client_name"),
        optional(text("client_industry")),
        text("contact_name"),
        optional(text("contact_email", "an e-mail address or a phone number is required")),
        optional(text("contact_phone", "an e-mail address or a phone number is required")),
        text("question", "what the client asks"),
        optional(text("lead_id", "the market-research lead this inquiry converts (message start only)")),
        optional(text("referred_by", "the engagement this one was referred from (message start only)")),
    ],
    outputs=[text("inquiry_id"), text("client_id", "the client, found by name or created")],
    description="A referred inquiry brings lead_id (channel market_research: the lead is marked converted) "
    "or referred_by (channel referral: the referral is linked to the inquiry).",
)
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


@operations.handler(
    "refer_inquiry",
    clauses=["2.1.1", "5.3.3", "2.1.2"],
    inputs=[
        text("client_name"),
        optional(text("client_industry")),
        text("contact_name"),
        optional(text("contact_email", "an e-mail address or a phone number is required")),
        optional(text("contact_phone", "an e-mail address or a phone number is required")),
        text("question"),
        optional(text("lead_id", "the market-research lead referred; exactly one of lead_id, referred_by")),
        optional(text("referred_by", "the earlier engagement's id; exactly one of lead_id, referred_by")),
    ],
    outputs=[text("referred_engagement_id", "the new engagement's id (E- and 12 hex digits)")],
    description="Mints the new engagement's id and records the referral (event inquiry.referred); a lead is "
    "referred once. The diagram then throws message inquiry.referred, which starts the new engagement.",
)
def refer_inquiry(uow: UnitOfWork, job: Job, deps: None) -> Mapping[str, Any]:
    """2.1.1/5.3.3 → 2.1.2: hands a lead or an earlier engagement's opportunity to a new engagement.

    Returns the new engagement's id, which the diagram's `inquiry.referred` message starts it with."""
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


@operations.handler(
    "record_requirements",
    clauses=["2.2.1"],
    inputs=[
        ENGAGEMENT,
        text("inquiry_id"),
        one_of("communication_mode", CommunicationMode),
        text("needs"),
        optional(text("background")),
        text("goals"),
        text("expected_results"),
        optional(text("recorded_by")),
    ],
    outputs=[text("requirements_id"), integer("requirements_version")],
    description="Each call is a new version of the engagement's requirements document; refused for a "
    "declined inquiry.",
)
def record_requirements(uow: UnitOfWork, job: Job, deps: None) -> Mapping[str, Any]:
    """2.2.1: records a new version of the inquiry's requirements document."""
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


@operations.handler(
    "record_feasibility",
    clauses=["2.2.2"],
    inputs=[
        ENGAGEMENT,
        text("inquiry_id"),
        flag("technical_feasible"),
        optional(text("technical_reason", "required when not feasible")),
        flag("economic_feasible"),
        optional(text("economic_reason", "required when not feasible")),
        flag("time_feasible"),
        optional(text("time_reason", "required when not feasible")),
        listing("assessors", "the experts, a list or names separated by commas; at least one"),
        optional(text("feasibility_report")),
        optional(flag("worth_taking_on", "the experts' go/no-go; without it: all three dimensions feasible")),
        optional(text("worth_reason", "required with worth_taking_on")),
    ],
    outputs=[
        text("feasibility_id"),
        flag("feasible", "the go/no-go"),
        text("feasibility_summary"),
    ],
    description="Refused before crm.record_requirements.",
)
def record_feasibility(uow: UnitOfWork, job: Job, deps: None) -> Mapping[str, Any]:
    """2.2.2: records the feasibility verdicts and the experts' conclusion whether to take the project on."""
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


@operations.handler(
    "decline_inquiry",
    clauses=["2.2.2", "2.3.1", "6.3.1"],
    inputs=[
        ENGAGEMENT,
        text("inquiry_id"),
        one_of("decline_reason", DeclineReason, "infeasible needs a no-go assessment"),
    ],
    outputs=[text("intake_outcome", '"declined"'), text("decline_reason")],
    description="Refused for an inquiry already declined.",
)
def decline_inquiry(uow: UnitOfWork, job: Job, deps: None) -> Mapping[str, Any]:
    """2.2.2, 2.3.1, 6.3.1: closes the inquiry with the reason it was not taken on."""
    command = Decline.parse(inquiry_id=job.text("inquiry_id"), decline_reason=job.text("decline_reason"))
    inquiry, _ = usecases.decline_inquiry(uow, command)
    return {"intake_outcome": inquiry.status, "decline_reason": command.reason.value}


@operations.handler(
    "record_market_insight",
    clauses=["2.1.1"],
    inputs=[
        optional(text("industry_trends", "at least one of trends, demand, competitors")),
        optional(text("market_demand")),
        optional(text("competitors")),
        optional(text("potential_clients")),
        optional(text("industry")),
    ],
    outputs=[text("insight_id")],
)
def record_market_insight(uow: UnitOfWork, job: Job, deps: None) -> Mapping[str, Any]:
    """2.1.1: records a round of market research: trends, demand and competitors."""
    command = NewMarketInsight.parse(
        industry_trends=job.text("industry_trends", ""),
        market_demand=job.text("market_demand", ""),
        competitors=job.text("competitors", ""),
        potential_clients=job.text("potential_clients", ""),
        industry=job.text("industry", ""),
    )
    return {"insight_id": usecases.record_market_insight(uow, command).insight_id}


@operations.handler(
    "record_lead",
    clauses=["2.1.1"],
    inputs=[
        one_of("lead_source", LeadSource, "other: the channels are not a closed list (2.1.1 等渠道)"),
        text("lead_company"),
        optional(text("lead_contact")),
        optional(text("lead_notes")),
        optional(text("insight_id", "the research round (crm.record_market_insight) the lead belongs to")),
    ],
    outputs=[
        text("lead_id"),
        listing("lead_ids", "every lead of the round so far, in the order recorded (else this lead's)"),
    ],
)
def record_lead(uow: UnitOfWork, job: Job, deps: None) -> Mapping[str, Any]:
    """2.1.1: records a lead from a trade fair, seminar, online platform or another channel.

    With the round's `insight_id`, also every lead that round found so far (`lead_ids`, for their
    follow-up)."""
    command = NewLead.parse(
        lead_source=job.text("lead_source"),
        lead_company=job.text("lead_company"),
        lead_contact=job.text("lead_contact", ""),
        lead_notes=job.text("lead_notes", ""),
        insight_id=job.text("insight_id", ""),
    )
    lead = usecases.record_lead(uow, command)
    return {"lead_id": lead.lead_id, "lead_ids": usecases.leads_of_round(uow.session, lead)}


@operations.handler(
    "record_revisit",
    clauses=["5.3.1"],
    inputs=[
        ENGAGEMENT,
        text("client_id"),
        one_of("revisit_method", RevisitMethod),
        text("revisit_findings"),
        optional(text("new_needs")),
    ],
    outputs=[text("revisit_id")],
)
def record_revisit(uow: UnitOfWork, job: Job, deps: None) -> Mapping[str, Any]:
    """5.3.1: records a periodic revisit (it fulfils the client's earliest due revisit plan, if any)."""
    command = NewRevisit.parse(
        client_id=job.text("client_id"),
        revisit_method=job.text("revisit_method"),
        revisit_findings=job.text("revisit_findings"),
        new_needs=job.text("new_needs", ""),
        engagement_id=job.engagement_id,
    )
    revisit, _ = usecases.record_revisit(uow, command)
    return {"revisit_id": revisit.revisit_id}


@operations.handler(
    "record_value_added_service",
    clauses=["5.3.2"],
    inputs=[
        ENGAGEMENT,
        text("client_id"),
        one_of("value_added_service", ValueAddedKind),
        optional(text("value_added_description")),
    ],
    outputs=[text("value_added_service_id")],
)
def record_value_added_service(uow: UnitOfWork, job: Job, deps: None) -> Mapping[str, Any]:
    """5.3.2: records a value-added service delivered."""
    with renamed_fields(description="value_added_description"):
        command = NewValueAddedService.parse(
            client_id=job.text("client_id"),
            value_added_service=job.text("value_added_service"),
            description=job.text("value_added_description", ""),
            engagement_id=job.engagement_id,
        )
    return {"value_added_service_id": usecases.record_value_added_service(uow, command).service_id}


@operations.handler(
    "record_opportunity",
    clauses=["5.3.3"],
    inputs=[
        ENGAGEMENT,
        text("client_id"),
        text("opportunity"),
        optional(one_of("opportunity_kind", OpportunityKind, "default follow_on")),
        optional(text("referred_company", "required for a referral")),
    ],
    outputs=[text("opportunity_id")],
)
def record_opportunity(uow: UnitOfWork, job: Job, deps: None) -> Mapping[str, Any]:
    """5.3.3: records an opportunity: a follow-on project (the default) or a referral."""
    command = NewOpportunity.parse(
        client_id=job.text("client_id"),
        opportunity=job.text("opportunity"),
        opportunity_kind=job.text("opportunity_kind", ""),
        referred_company=job.text("referred_company", ""),
        engagement_id=job.engagement_id,
    )
    return {"opportunity_id": usecases.record_opportunity(uow, command).opportunity_id}
