"""The crm gRPC API: thin translation between messages and use cases (errors map in the bootstrap)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from datetime import date

import grpc
from sqlalchemy.orm import Session

from consultflow.api.crm.v1 import crm_pb2 as pb
from consultflow.api.crm.v1 import crm_pb2_grpc as pb_grpc
from consultflow.crm import domain, usecases
from consultflow.crm.domain import (
    Channel,
    Decline,
    Dimension,
    InquiryStatus,
    LeadStatus,
    NewClient,
    NewContact,
    NewFeasibility,
    NewInquiry,
    NewLead,
    NewMarketInsight,
    NewOpportunity,
    NewRequirements,
    NewRevisit,
    NewRevisitPlan,
    NewValueAddedService,
    RevisitPlanStatus,
)
from consultflow.crm.orm import (
    Client,
    Contact,
    Inquiry,
    Lead,
    MarketInsight,
    Opportunity,
    Revisit,
    RevisitPlan,
    ValueAddedService,
)
from consultflow.platform.db import UnitOfWork
from consultflow.platform.inputs import optional_choice, optional_date, renamed_fields
from consultflow.platform.paging import Page
from consultflow.platform.timeutil import now, timestamp

CHANNELS = {
    pb.CHANNEL_HOTLINE: Channel.HOTLINE,
    pb.CHANNEL_EMAIL: Channel.EMAIL,
    pb.CHANNEL_ONLINE: Channel.ONLINE,
    pb.CHANNEL_REFERRAL: Channel.REFERRAL,
    pb.CHANNEL_MARKET_RESEARCH: Channel.MARKET_RESEARCH,
}
CHANNEL_CODES = {v: k for k, v in CHANNELS.items()}


# --- messages from rows ----------------------------------------------------------------------------


def contact_message(contact: Contact) -> pb.Contact:
    return pb.Contact(
        contact_id=contact.contact_id,
        name=contact.name,
        email=contact.email,
        phone=contact.phone,
        role=contact.role,
    )


def client_message(client: Client, contacts: Sequence[Contact]) -> pb.Client:
    return pb.Client(
        client_id=client.client_id,
        name=client.name,
        industry=client.industry,
        contacts=[contact_message(c) for c in contacts],
        created_at=timestamp(client.created_at),
    )


def inquiry_message(inquiry: Inquiry, client: Client) -> pb.Inquiry:
    return pb.Inquiry(
        inquiry_id=inquiry.inquiry_id,
        engagement_id=inquiry.engagement_id,
        channel=CHANNEL_CODES[Channel(inquiry.channel)],
        client_id=client.client_id,
        client_name=client.name,
        client_industry=client.industry,
        contact_name=inquiry.contact_name,
        contact_email=inquiry.contact_email,
        contact_phone=inquiry.contact_phone,
        question=inquiry.question,
        status=inquiry.status,
        received_at=timestamp(inquiry.received_at),
        contact_id=inquiry.contact_id or "",
        lead_id=inquiry.lead_id or "",
        referred_by=inquiry.referred_by or "",
        decline_reason=inquiry.decline_reason or "",
        closed_at=timestamp(inquiry.closed_at),
    )


def requirements_message(requirements: usecases.Requirements) -> pb.RequirementsDocument:
    document = requirements.document
    return pb.RequirementsDocument(
        requirements_id=document.requirements_id,
        inquiry_id=document.inquiry_id,
        engagement_id=document.engagement_id,
        current_version=document.current_version,
        versions=[
            pb.RequirementsVersion(
                version=v.version,
                communication_mode=v.communication_mode,
                needs=v.needs,
                background=v.background,
                goals=v.goals,
                expected_results=v.expected_results,
                recorded_by=v.recorded_by,
                recorded_at=timestamp(v.recorded_at),
            )
            for v in requirements.versions
        ],
    )


def feasibility_message(result: usecases.Assessment) -> pb.FeasibilityAssessment:
    a = result.assessment
    return pb.FeasibilityAssessment(
        feasibility_id=a.feasibility_id,
        inquiry_id=a.inquiry_id,
        engagement_id=a.engagement_id,
        requirements_version=a.requirements_version,
        verdicts=[
            pb.DimensionResult(dimension=v.dimension, feasible=v.feasible, reason=v.reason)
            for v in result.verdicts
        ],
        assessors=usecases.assessors_of(a),
        feasible=a.feasible,
        summary=a.summary,
        report=a.report,
        assessed_at=timestamp(a.assessed_at),
    )


def insight_message(insight: MarketInsight) -> pb.MarketInsight:
    return pb.MarketInsight(
        insight_id=insight.insight_id,
        industry=insight.industry,
        industry_trends=insight.industry_trends,
        market_demand=insight.market_demand,
        competitors=insight.competitors,
        potential_clients=insight.potential_clients,
        recorded_at=timestamp(insight.recorded_at),
    )


def lead_message(lead: Lead) -> pb.Lead:
    return pb.Lead(
        lead_id=lead.lead_id,
        lead_source=lead.source,
        lead_company=lead.company,
        lead_contact=lead.contact,
        lead_notes=lead.notes,
        status=lead.status,
        inquiry_id=lead.inquiry_id or "",
        recorded_at=timestamp(lead.recorded_at),
    )


def plan_message(plan: RevisitPlan, client_name: str, as_of: date) -> pb.RevisitPlan:
    return pb.RevisitPlan(
        plan_id=plan.plan_id,
        client_id=plan.client_id,
        client_name=client_name,
        engagement_id=plan.engagement_id,
        revisit_method=plan.method,
        due_date=plan.due_date.isoformat(),
        purpose=plan.purpose,
        status=plan.status,
        revisit_id=plan.revisit_id or "",
        due=domain.revisit_is_due(plan.due_date, RevisitPlanStatus(plan.status), as_of),
    )


def revisit_message(revisit: Revisit, plan: RevisitPlan | None = None) -> pb.Revisit:
    return pb.Revisit(
        revisit_id=revisit.revisit_id,
        client_id=revisit.client_id,
        engagement_id=revisit.engagement_id,
        revisit_method=revisit.method,
        revisit_findings=revisit.findings,
        new_needs=revisit.new_needs,
        revisited_at=timestamp(revisit.revisited_at),
        plan_id=plan.plan_id if plan is not None else "",
    )


def value_added_message(item: ValueAddedService) -> pb.ValueAddedService:
    return pb.ValueAddedService(
        value_added_service_id=item.service_id,
        client_id=item.client_id,
        engagement_id=item.engagement_id,
        value_added_service=item.kind,
        description=item.description,
        delivered_at=timestamp(item.delivered_at),
    )


def opportunity_message(item: Opportunity) -> pb.Opportunity:
    return pb.Opportunity(
        opportunity_id=item.opportunity_id,
        client_id=item.client_id,
        engagement_id=item.engagement_id,
        opportunity=item.description,
        opportunity_kind=item.kind,
        referred_company=item.referred_company,
        status=item.status,
        recorded_at=timestamp(item.recorded_at),
    )


VERDICT_WORDS = {pb.VERDICT_FEASIBLE: "feasible", pb.VERDICT_INFEASIBLE: "infeasible"}
"""A dimension's verdict as the words the domain parses (unspecified is "", which it refuses)."""

VERDICT_FIELDS = {f"{d.value}_feasible": f"{d.value}.verdict" for d in Dimension}
"""Where a verdict sits in RecordFeasibilityRequest, for errors."""


class CrmServicer(pb_grpc.CrmServiceServicer):
    """Each method: parse the request into a command, run one use case, answer.

    Writes run in a unit of work and commit; reads run in a read-only session (no write lock) and build
    their answer inside it.
    """

    def __init__(
        self, uow: Callable[[], UnitOfWork], read: Callable[[], AbstractContextManager[Session]]
    ) -> None:
        self._uow = uow
        self._read = read

    # --- clients and contacts

    def CreateClient(self, request: pb.CreateClientRequest, context: grpc.ServicerContext) -> pb.Client:
        command = NewClient.parse(name=request.name, industry=request.industry)
        with self._uow() as uow:
            client = usecases.create_client(uow, command)
            uow.commit()
        return client_message(client, [])

    def GetClient(self, request: pb.GetClientRequest, context: grpc.ServicerContext) -> pb.Client:
        with self._read() as session:
            client = usecases.get_client(session, request.client_id)
            contacts = usecases.contacts_of(session, [client.client_id])[client.client_id]
            return client_message(client, contacts)

    def SearchClients(
        self, request: pb.SearchClientsRequest, context: grpc.ServicerContext
    ) -> pb.SearchClientsResponse:
        page = Page.of(request.page_size, request.page_token)
        with self._read() as session:
            clients = usecases.search_clients(
                session, request.text, request.industry, page.fetch, page.offset
            )
            shown = page.rows(clients)
            contacts = usecases.contacts_of(session, [c.client_id for c in shown])
            return pb.SearchClientsResponse(
                clients=[client_message(c, contacts[c.client_id]) for c in shown],
                next_page_token=page.next_token(clients),
            )

    def AddContact(self, request: pb.AddContactRequest, context: grpc.ServicerContext) -> pb.Contact:
        command = NewContact.parse(
            name=request.name, email=request.email, phone=request.phone, role=request.role
        )
        with self._uow() as uow:
            contact = usecases.add_contact(uow, request.client_id, command)
            uow.commit()
        return contact_message(contact)

    # --- intake

    def RecordInquiry(self, request: pb.RecordInquiryRequest, context: grpc.ServicerContext) -> pb.Inquiry:
        command = NewInquiry.parse(
            channel=CHANNELS.get(request.channel, ""),
            client_name=request.client_name,
            client_industry=request.client_industry,
            contact_name=request.contact_name,
            contact_email=request.contact_email,
            contact_phone=request.contact_phone,
            question=request.question,
            engagement_id=request.engagement_id,
            request_id=request.request_id,
            lead_id=request.lead_id,
            referred_by=request.referred_by,
        )
        with self._uow() as uow:
            inquiry, client = usecases.record_inquiry(uow, command)
            uow.commit()
        return inquiry_message(inquiry, client)

    def GetInquiry(self, request: pb.GetInquiryRequest, context: grpc.ServicerContext) -> pb.Inquiry:
        with self._read() as session:
            return inquiry_message(*usecases.get_inquiry(session, request.inquiry_id))

    def ListInquiries(
        self, request: pb.ListInquiriesRequest, context: grpc.ServicerContext
    ) -> pb.ListInquiriesResponse:
        status = optional_choice("status", request.status, InquiryStatus)
        page = Page.of(request.page_size, request.page_token)
        with self._read() as session:
            rows = usecases.list_inquiries(
                session,
                status,
                request.engagement_id,
                page.fetch,
                page.offset,
                open_only=request.open_only,
                client_id=request.client_id,
            )
            return pb.ListInquiriesResponse(
                inquiries=[inquiry_message(i, c) for i, c in page.rows(rows)],
                next_page_token=page.next_token(rows),
            )

    def RecordRequirements(
        self, request: pb.RecordRequirementsRequest, context: grpc.ServicerContext
    ) -> pb.RequirementsDocument:
        command = NewRequirements.parse(
            inquiry_id=request.inquiry_id,
            communication_mode=request.communication_mode,
            needs=request.needs,
            goals=request.goals,
            expected_results=request.expected_results,
            background=request.background,
            recorded_by=request.recorded_by,
        )
        with self._uow() as uow:
            requirements = usecases.record_requirements(uow, command)
            uow.commit()
        return requirements_message(requirements)

    def GetRequirements(
        self, request: pb.GetRequirementsRequest, context: grpc.ServicerContext
    ) -> pb.RequirementsDocument:
        with self._read() as session:
            return requirements_message(
                usecases.get_requirements(session, request.requirements_id, request.inquiry_id)
            )

    def RecordFeasibility(
        self, request: pb.RecordFeasibilityRequest, context: grpc.ServicerContext
    ) -> pb.FeasibilityAssessment:
        with renamed_fields(**VERDICT_FIELDS):
            command = NewFeasibility.parse(
                inquiry_id=request.inquiry_id,
                technical_feasible=VERDICT_WORDS.get(request.technical.verdict, ""),
                technical_reason=request.technical.reason,
                economic_feasible=VERDICT_WORDS.get(request.economic.verdict, ""),
                economic_reason=request.economic.reason,
                time_feasible=VERDICT_WORDS.get(request.time.verdict, ""),
                time_reason=request.time.reason,
                assessors=list(request.assessors),
                report=request.report,
                worth_taking_on=request.worth_taking_on if request.HasField("worth_taking_on") else None,
                worth_reason=request.worth_reason,
            )
        with self._uow() as uow:
            result = usecases.record_feasibility(uow, command)
            uow.commit()
        return feasibility_message(result)

    def GetFeasibility(
        self, request: pb.GetFeasibilityRequest, context: grpc.ServicerContext
    ) -> pb.FeasibilityAssessment:
        with self._read() as session:
            return feasibility_message(usecases.get_feasibility(session, request.feasibility_id))

    def DeclineInquiry(self, request: pb.DeclineInquiryRequest, context: grpc.ServicerContext) -> pb.Inquiry:
        command = Decline.parse(inquiry_id=request.inquiry_id, decline_reason=request.decline_reason)
        with self._uow() as uow:
            inquiry, client = usecases.decline_inquiry(uow, command)
            uow.commit()
        return inquiry_message(inquiry, client)

    def GetIntakeHistory(
        self, request: pb.GetIntakeHistoryRequest, context: grpc.ServicerContext
    ) -> pb.IntakeHistory:
        with self._read() as session:
            history = usecases.intake_history(session, request.engagement_id)
            return pb.IntakeHistory(
                engagement_id=request.engagement_id,
                inquiries=[inquiry_message(i, c) for i, c in history.inquiries],
                requirements=[requirements_message(r) for r in history.requirements],
                assessments=[feasibility_message(a) for a in history.assessments],
            )

    # --- market research

    def RecordMarketInsight(
        self, request: pb.RecordMarketInsightRequest, context: grpc.ServicerContext
    ) -> pb.MarketInsight:
        command = NewMarketInsight.parse(
            industry_trends=request.industry_trends,
            market_demand=request.market_demand,
            competitors=request.competitors,
            potential_clients=request.potential_clients,
            industry=request.industry,
        )
        with self._uow() as uow:
            insight = usecases.record_market_insight(uow, command)
            uow.commit()
        return insight_message(insight)

    def ListMarketInsights(
        self, request: pb.ListMarketInsightsRequest, context: grpc.ServicerContext
    ) -> pb.ListMarketInsightsResponse:
        page = Page.of(request.page_size, request.page_token)
        with self._read() as session:
            rows = usecases.list_market_insights(session, request.industry, page.fetch, page.offset)
            return pb.ListMarketInsightsResponse(
                insights=[insight_message(i) for i in page.rows(rows)],
                next_page_token=page.next_token(rows),
            )

    def RecordLead(self, request: pb.RecordLeadRequest, context: grpc.ServicerContext) -> pb.Lead:
        command = NewLead.parse(
            lead_source=request.lead_source,
            lead_company=request.lead_company,
            lead_contact=request.lead_contact,
            lead_notes=request.lead_notes,
        )
        with self._uow() as uow:
            lead = usecases.record_lead(uow, command)
            uow.commit()
        return lead_message(lead)

    def ListLeads(self, request: pb.ListLeadsRequest, context: grpc.ServicerContext) -> pb.ListLeadsResponse:
        status = optional_choice("status", request.status, LeadStatus)
        page = Page.of(request.page_size, request.page_token)
        with self._read() as session:
            rows = usecases.list_leads(session, status, page.fetch, page.offset)
            return pb.ListLeadsResponse(
                leads=[lead_message(lead) for lead in page.rows(rows)],
                next_page_token=page.next_token(rows),
            )

    # --- relationship maintenance

    def PlanRevisit(self, request: pb.PlanRevisitRequest, context: grpc.ServicerContext) -> pb.RevisitPlan:
        command = NewRevisitPlan.parse(
            client_id=request.client_id,
            revisit_method=request.revisit_method,
            due_date=request.due_date,
            purpose=request.purpose,
            engagement_id=request.engagement_id,
        )
        with self._uow() as uow:
            plan = usecases.plan_revisit(uow, command)
            uow.commit()
        return plan_message(plan, "", now().date())

    def ListDueRevisits(
        self, request: pb.ListDueRevisitsRequest, context: grpc.ServicerContext
    ) -> pb.ListDueRevisitsResponse:
        as_of = optional_date("as_of", request.as_of) or now().date()
        page = Page.of(request.page_size, request.page_token)
        with self._read() as session:
            rows = usecases.list_due_revisits(session, as_of, page.fetch, page.offset)
            return pb.ListDueRevisitsResponse(
                plans=[plan_message(p, c.name, as_of) for p, c in page.rows(rows)],
                next_page_token=page.next_token(rows),
            )

    def RecordRevisit(self, request: pb.RecordRevisitRequest, context: grpc.ServicerContext) -> pb.Revisit:
        command = NewRevisit.parse(
            client_id=request.client_id,
            revisit_method=request.revisit_method,
            revisit_findings=request.revisit_findings,
            new_needs=request.new_needs,
            engagement_id=request.engagement_id,
            plan_id=request.plan_id,
        )
        with self._uow() as uow:
            revisit, plan = usecases.record_revisit(uow, command)
            uow.commit()
        return revisit_message(revisit, plan)

    def RecordValueAddedService(
        self, request: pb.RecordValueAddedServiceRequest, context: grpc.ServicerContext
    ) -> pb.ValueAddedService:
        command = NewValueAddedService.parse(
            client_id=request.client_id,
            value_added_service=request.value_added_service,
            description=request.description,
            engagement_id=request.engagement_id,
        )
        with self._uow() as uow:
            item = usecases.record_value_added_service(uow, command)
            uow.commit()
        return value_added_message(item)

    def RecordOpportunity(
        self, request: pb.RecordOpportunityRequest, context: grpc.ServicerContext
    ) -> pb.Opportunity:
        command = NewOpportunity.parse(
            client_id=request.client_id,
            opportunity=request.opportunity,
            opportunity_kind=request.opportunity_kind,
            referred_company=request.referred_company,
            engagement_id=request.engagement_id,
        )
        with self._uow() as uow:
            item = usecases.record_opportunity(uow, command)
            uow.commit()
        return opportunity_message(item)

    def GetRelationship(
        self, request: pb.GetRelationshipRequest, context: grpc.ServicerContext
    ) -> pb.Relationship:
        with self._read() as session:
            rel = usecases.relationship(session, request.client_id)
            contacts = usecases.contacts_of(session, [rel.client.client_id])[rel.client.client_id]
            by_revisit = {p.revisit_id: p for p in rel.plans if p.revisit_id}
            return pb.Relationship(
                client=client_message(rel.client, contacts),
                plans=[plan_message(p, rel.client.name, now().date()) for p in rel.plans],
                revisits=[revisit_message(r, by_revisit.get(r.revisit_id)) for r in rel.revisits],
                value_added_services=[value_added_message(s) for s in rel.services],
                opportunities=[opportunity_message(o) for o in rel.opportunities],
            )
