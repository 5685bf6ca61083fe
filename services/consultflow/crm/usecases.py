"""CRM use cases. Write use cases run in the unit of work they are given and emit the status events of
what they changed; read use cases take a read-only session.

The caller (a gRPC method or a job handler) owns the unit of work and commits it, so a write either
happens entirely, with its events, or not at all. Which changes are allowed is decided in `domain.py`.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from consultflow.crm import domain
from consultflow.crm.domain import (
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
    NewReferral,
    NewRequirements,
    NewRevisit,
    NewRevisitPlan,
    NewValueAddedService,
    OpportunityStatus,
    RevisitPlanStatus,
)
from consultflow.crm.orm import (
    Client,
    Contact,
    FeasibilityAssessment,
    FeasibilityVerdict,
    Inquiry,
    Lead,
    MarketInsight,
    Opportunity,
    Referral,
    RequirementsDocument,
    RequirementsVersion,
    Revisit,
    RevisitPlan,
    ValueAddedService,
    as_list,
)
from consultflow.platform.db import UnitOfWork, by_request, one
from consultflow.platform.errors import AlreadyExists, InvalidArgument, NotFound
from consultflow.platform.timeutil import now


def _new_id() -> str:
    return str(uuid.uuid4())


# --- payloads of status events ---------------------------------------------------------------------


def client_payload(client: Client) -> dict[str, Any]:
    return {"client_id": client.client_id, "client_name": client.name, "client_industry": client.industry}


def contact_payload(contact: Contact) -> dict[str, Any]:
    return {
        "contact_id": contact.contact_id,
        "client_id": contact.client_id,
        "contact_name": contact.name,
        "contact_email": contact.email,
        "contact_phone": contact.phone,
        "contact_role": contact.role,
    }


def inquiry_payload(inquiry: Inquiry, client: Client) -> dict[str, Any]:
    return {
        "inquiry_id": inquiry.inquiry_id,
        "engagement_id": inquiry.engagement_id,
        "channel": inquiry.channel,
        "client_id": client.client_id,
        "client_name": client.name,
        "client_industry": client.industry,
        "contact_name": inquiry.contact_name,
        "contact_email": inquiry.contact_email,
        "contact_phone": inquiry.contact_phone,
        "question": inquiry.question,
        "inquiry_status": inquiry.status,
        "received_at": inquiry.received_at,
    }


# --- clients and contacts --------------------------------------------------------------------------


def _client_by_name(session: Session, name: str) -> Client | None:
    return session.scalars(select(Client).where(func.lower(Client.name) == name.lower())).first()


def _add_client(uow: UnitOfWork, name: str, industry: str) -> Client:
    client = Client(client_id=_new_id(), name=name, industry=industry, created_at=now())
    uow.session.add(client)
    uow.session.flush()
    uow.emit("client.created", client.client_id, client_payload(client))
    return client


def create_client(uow: UnitOfWork, command: NewClient) -> Client:
    """Adds a client; a name already taken (ignoring case) is refused with the existing client's id."""
    existing = _client_by_name(uow.session, command.name)
    if existing is not None:
        raise AlreadyExists(f"client {existing.name!r} exists as {existing.client_id}")
    return _add_client(uow, command.name, command.industry)


def find_or_create_client(uow: UnitOfWork, name: str, industry: str) -> Client:
    """Clients are matched by name (case-insensitive; the commands trim it); a new name creates one."""
    return _client_by_name(uow.session, name) or _add_client(uow, name, industry)


def get_client(session: Session, client_id: str) -> Client:
    return one(session, Client, client_id, "client")


def contacts_of(session: Session, client_ids: Sequence[str]) -> dict[str, list[Contact]]:
    """Every contact of the given clients, in the order they were added."""
    result: dict[str, list[Contact]] = defaultdict(list)
    if client_ids:
        rows = session.scalars(
            select(Contact)
            .where(Contact.client_id.in_(client_ids))
            .order_by(Contact.created_at, Contact.contact_id)
        )
        for contact in rows:
            result[contact.client_id].append(contact)
    return result


def add_contact(uow: UnitOfWork, client_id: str, command: NewContact) -> Contact:
    """Adds a person to a client; a second contact with the same name at the same client is refused."""
    client = get_client(uow.session, client_id)
    taken = _contact_by_name(uow.session, client, command.name)
    if taken is not None:
        raise AlreadyExists(f"contact {taken.name!r} exists at {client.name!r} as {taken.contact_id}")
    return _insert_contact(uow, client, command.name, command.email, command.phone, command.role)


def _contact_by_name(session: Session, client: Client, name: str) -> Contact | None:
    """Contact names are unique within a client regardless of case, like client names."""
    return session.scalars(
        select(Contact).where(Contact.client_id == client.client_id, func.lower(Contact.name) == name.lower())
    ).first()


def _insert_contact(
    uow: UnitOfWork, client: Client, name: str, email: str, phone: str, role: str = ""
) -> Contact:
    contact = Contact(
        contact_id=_new_id(),
        client_id=client.client_id,
        name=name,
        email=email,
        phone=phone,
        role=role,
        created_at=now(),
    )
    uow.session.add(contact)
    uow.session.flush()
    uow.emit("contact.added", contact.contact_id, contact_payload(contact))
    return contact


def _contact_for_inquiry(uow: UnitOfWork, client: Client, command: NewInquiry) -> Contact:
    """The client's contact of that name, with blank details filled in; a new name adds a contact."""
    contact = _contact_by_name(uow.session, client, command.contact_name)
    if contact is None:
        return _insert_contact(
            uow, client, command.contact_name, command.contact_email, command.contact_phone
        )
    if (not contact.email and command.contact_email) or (not contact.phone and command.contact_phone):
        contact.email = contact.email or command.contact_email
        contact.phone = contact.phone or command.contact_phone
        uow.emit("contact.updated", contact.contact_id, contact_payload(contact))
    return contact


def search_clients(session: Session, text: str, industry: str, limit: int, offset: int) -> list[Client]:
    """Clients whose name contains `text` (ignoring case), optionally of one industry, by name."""
    query = select(Client)
    if text.strip():
        pattern = "%" + _escape_like(text.strip()) + "%"
        query = query.where(Client.name.ilike(pattern, escape="\\"))
    if industry.strip():
        query = query.where(func.lower(Client.industry) == industry.strip().lower())
    query = query.order_by(Client.name, Client.client_id).offset(offset).limit(limit)
    return list(session.scalars(query))


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


# --- inquiries (2.1.2) -----------------------------------------------------------------------------


def record_inquiry(uow: UnitOfWork, command: NewInquiry) -> tuple[Inquiry, Client]:
    """2.1.2: records an inquiry; the same request id returns the inquiry recorded first.

    The client is matched by name and the contact by name within the client; new ones are added. An
    inquiry from a market-research lead (2.1.1) marks the lead converted; one that a lead or an earlier
    engagement was referred from (`refer_inquiry`) is linked to that referral.
    """
    existing = by_request(uow.session, Inquiry, command.request_id)
    if existing is not None:
        return existing, get_client(uow.session, existing.client_id)
    referral = _referral_to(uow.session, command.engagement_id)
    lead: Lead | None = None
    converted = LeadStatus.NEW
    if command.lead_id:
        lead = one(uow.session, Lead, command.lead_id, "lead")
        converted = domain.after_conversion(LeadStatus(lead.status))
    client = find_or_create_client(uow, command.client_name, command.client_industry)
    contact = _contact_for_inquiry(uow, client, command)
    inquiry = Inquiry(
        inquiry_id=_new_id(),
        request_id=command.request_id or None,
        engagement_id=command.engagement_id,
        channel=command.channel.value,
        client_id=client.client_id,
        contact_id=contact.contact_id,
        lead_id=command.lead_id or None,
        referred_by=command.referred_by,
        contact_name=command.contact_name,
        contact_email=command.contact_email,
        contact_phone=command.contact_phone,
        question=command.question,
        status=InquiryStatus.OPEN.value,
        decline_reason="",
        received_at=now(),
    )
    uow.session.add(inquiry)
    uow.session.flush()
    uow.emit(
        "inquiry.recorded",
        inquiry.inquiry_id,
        inquiry_payload(inquiry, client),
        {"engagement_id": inquiry.engagement_id},
    )
    if lead is not None:
        lead.status = converted.value
        lead.inquiry_id = inquiry.inquiry_id
        uow.emit("lead.converted", lead.lead_id, {"lead_id": lead.lead_id, "inquiry_id": inquiry.inquiry_id})
    if referral is not None and referral.inquiry_id is None:
        referral.inquiry_id = inquiry.inquiry_id
    return inquiry, client


def _referral_to(session: Session, engagement_id: str) -> Referral | None:
    if not engagement_id:
        return None
    return session.scalars(select(Referral).where(Referral.referred_engagement_id == engagement_id)).first()


def new_engagement_id() -> str:
    """An engagement id the firm mints for a referred inquiry (the new engagement's business key)."""
    return f"E-{uuid.uuid4().hex[:12]}"


def refer_inquiry(uow: UnitOfWork, command: NewReferral) -> Referral:
    """2.1.1 → 2.1.2 and 5.3.3 → 2.1.2: mints the id of the engagement a lead or an earlier engagement's
    opportunity becomes and records where it came from; the same request id returns the first referral.

    The new engagement records the inquiry itself (`record_inquiry` with the lead or `referred_by`), which
    converts the lead and completes the link.
    """
    existing = by_request(uow.session, Referral, command.request_id)
    if existing is not None:
        return existing
    if command.lead_id:
        lead = one(uow.session, Lead, command.lead_id, "lead")
        referred = uow.session.scalars(
            select(Referral.referral_id).where(Referral.lead_id == lead.lead_id)
        ).first()
        domain.check_can_refer(LeadStatus(lead.status), referred is not None)
    referral = Referral(
        referral_id=_new_id(),
        request_id=command.request_id or None,
        referred_engagement_id=new_engagement_id(),
        channel=command.channel.value,
        lead_id=command.lead_id or None,
        referred_by=command.referred_by,
        client_name=command.client_name,
        question=command.question,
        inquiry_id=None,
        referred_at=now(),
    )
    uow.session.add(referral)
    uow.session.flush()
    uow.emit(
        "inquiry.referred",
        referral.referral_id,
        {
            "referral_id": referral.referral_id,
            "referred_engagement_id": referral.referred_engagement_id,
            "channel": referral.channel,
            "lead_id": referral.lead_id or "",
            "referred_by": referral.referred_by,
            "client_name": referral.client_name,
        },
        {"engagement_id": referral.referred_by or referral.referred_engagement_id},
    )
    return referral


def referrals(session: Session, referred_by: str = "", lead_id: str = "") -> list[Referral]:
    """The referrals an engagement made or a lead became, oldest first."""
    query = select(Referral).order_by(Referral.referred_at, Referral.referral_id)
    if referred_by:
        query = query.where(Referral.referred_by == referred_by)
    if lead_id:
        query = query.where(Referral.lead_id == lead_id)
    return list(session.scalars(query))


def get_inquiry(session: Session, inquiry_id: str) -> tuple[Inquiry, Client]:
    inquiry = one(session, Inquiry, inquiry_id, "inquiry")
    return inquiry, get_client(session, inquiry.client_id)


def list_inquiries(
    session: Session,
    status: InquiryStatus | None,
    engagement_id: str,
    limit: int,
    offset: int,
    open_only: bool = False,
    client_id: str = "",
) -> list[tuple[Inquiry, Client]]:
    """Newest first. `open_only`: inquiries nobody has decided on yet (open or in assessment)."""
    query = select(Inquiry, Client).join(Client, Client.client_id == Inquiry.client_id)
    if status is not None:
        query = query.where(Inquiry.status == status.value)
    if open_only:
        query = query.where(Inquiry.status.in_([s.value for s in domain.OPEN_INQUIRY_STATUSES]))
    if engagement_id:
        query = query.where(Inquiry.engagement_id == engagement_id)
    if client_id:
        query = query.where(Inquiry.client_id == client_id)
    query = query.order_by(Inquiry.received_at.desc(), Inquiry.inquiry_id).offset(offset).limit(limit)
    return [(row[0], row[1]) for row in session.execute(query).all()]


def decline_inquiry(uow: UnitOfWork, command: Decline) -> tuple[Inquiry, Client]:
    """Closes an inquiry with the reason it was not taken on (2.2.2 infeasible, offer rejected/expired,
    6.3.1 risk avoided)."""
    inquiry, client = get_inquiry(uow.session, command.inquiry_id)
    latest = _latest_assessment(uow.session, inquiry.inquiry_id)
    status = domain.after_decline(
        InquiryStatus(inquiry.status), command.reason, None if latest is None else bool(latest.feasible)
    )
    inquiry.status = status.value
    inquiry.decline_reason = command.reason.value
    inquiry.closed_at = now()
    uow.emit(
        "inquiry.declined",
        inquiry.inquiry_id,
        {**inquiry_payload(inquiry, client), "decline_reason": command.reason.value},
        {"engagement_id": inquiry.engagement_id},
    )
    return inquiry, client


# --- requirements (2.2.1) --------------------------------------------------------------------------


@dataclass(frozen=True)
class Requirements:
    document: RequirementsDocument
    versions: list[RequirementsVersion]

    @property
    def current(self) -> RequirementsVersion:
        return self.versions[-1]


def record_requirements(uow: UnitOfWork, command: NewRequirements) -> Requirements:
    """2.2.1: writes the inquiry's requirements document, or a new version of it."""
    inquiry, _ = get_inquiry(uow.session, command.inquiry_id)
    status = domain.after_requirements(InquiryStatus(inquiry.status))
    document = uow.session.scalars(
        select(RequirementsDocument).where(RequirementsDocument.inquiry_id == inquiry.inquiry_id)
    ).first()
    if document is None:
        document = RequirementsDocument(
            requirements_id=_new_id(),
            inquiry_id=inquiry.inquiry_id,
            engagement_id=inquiry.engagement_id,
            current_version=1,
            created_at=now(),
        )
        uow.session.add(document)
        uow.session.flush()
    else:
        document.current_version += 1
    version = RequirementsVersion(
        requirements_id=document.requirements_id,
        version=document.current_version,
        communication_mode=command.communication_mode.value,
        needs=command.needs,
        background=command.background,
        goals=command.goals,
        expected_results=command.expected_results,
        recorded_by=command.recorded_by,
        recorded_at=now(),
    )
    uow.session.add(version)
    inquiry.status = status.value
    uow.session.flush()
    uow.emit(
        "requirements.recorded",
        document.requirements_id,
        {
            "requirements_id": document.requirements_id,
            "requirements_version": version.version,
            "inquiry_id": inquiry.inquiry_id,
            "inquiry_status": inquiry.status,
            "communication_mode": version.communication_mode,
        },
        {"engagement_id": document.engagement_id},
    )
    return get_requirements(uow.session, document.requirements_id)


def get_requirements(session: Session, requirements_id: str = "", inquiry_id: str = "") -> Requirements:
    """A requirements document with every version, by its id or by its inquiry's."""
    if requirements_id:
        document = session.get(RequirementsDocument, requirements_id)
    elif inquiry_id:
        document = session.scalars(
            select(RequirementsDocument).where(RequirementsDocument.inquiry_id == inquiry_id)
        ).first()
    else:
        raise InvalidArgument("requirements_id", "give the document's id or its inquiry_id")
    if document is None:
        raise NotFound("requirements document", requirements_id or f"of inquiry {inquiry_id}")
    versions = list(
        session.scalars(
            select(RequirementsVersion)
            .where(RequirementsVersion.requirements_id == document.requirements_id)
            .order_by(RequirementsVersion.version)
        )
    )
    return Requirements(document, versions)


# --- feasibility (2.2.2) ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Assessment:
    assessment: FeasibilityAssessment
    verdicts: list[FeasibilityVerdict]


def _latest_assessment(session: Session, inquiry_id: str) -> FeasibilityAssessment | None:
    return session.scalars(
        select(FeasibilityAssessment)
        .where(FeasibilityAssessment.inquiry_id == inquiry_id)
        .order_by(FeasibilityAssessment.assessed_at.desc(), FeasibilityAssessment.feasibility_id)
    ).first()


def record_feasibility(uow: UnitOfWork, command: NewFeasibility) -> Assessment:
    """2.2.2: records the verdicts and the overall go/no-go; a go accepts the inquiry for intake."""
    inquiry, _ = get_inquiry(uow.session, command.inquiry_id)
    document = uow.session.scalars(
        select(RequirementsDocument).where(RequirementsDocument.inquiry_id == inquiry.inquiry_id)
    ).first()
    status = domain.after_assessment(InquiryStatus(inquiry.status), document is not None, command.feasible)
    assert document is not None  # after_assessment refuses an assessment without requirements
    assessment = FeasibilityAssessment(
        feasibility_id=_new_id(),
        inquiry_id=inquiry.inquiry_id,
        engagement_id=inquiry.engagement_id,
        requirements_version=document.current_version,
        feasible=command.feasible,
        summary=command.summary(),
        report=command.report,
        assessors=list(command.assessors),
        assessed_at=now(),
    )
    uow.session.add(assessment)
    uow.session.flush()
    verdicts = [
        FeasibilityVerdict(
            feasibility_id=assessment.feasibility_id,
            dimension=v.dimension.value,
            feasible=v.feasible,
            reason=v.reason,
        )
        for v in command.verdicts
    ]
    uow.session.add_all(verdicts)
    inquiry.status = status.value
    uow.session.flush()
    uow.emit(
        "feasibility.assessed",
        assessment.feasibility_id,
        {
            "feasibility_id": assessment.feasibility_id,
            "inquiry_id": inquiry.inquiry_id,
            "feasible": assessment.feasible,
            "feasibility_summary": assessment.summary,
            "assessors": list(command.assessors),
            "verdicts": {
                v.dimension.value: {"feasible": v.feasible, "reason": v.reason} for v in command.verdicts
            },
        },
        {"engagement_id": inquiry.engagement_id},
    )
    if command.feasible:
        uow.emit(
            "inquiry.accepted",
            inquiry.inquiry_id,
            {"inquiry_id": inquiry.inquiry_id, "inquiry_status": inquiry.status},
            {"engagement_id": inquiry.engagement_id},
        )
    return Assessment(assessment, verdicts)


def get_feasibility(session: Session, feasibility_id: str) -> Assessment:
    assessment = one(session, FeasibilityAssessment, feasibility_id, "feasibility assessment")
    return Assessment(assessment, _verdicts(session, [feasibility_id])[feasibility_id])


def _verdicts(session: Session, ids: Sequence[str]) -> dict[str, list[FeasibilityVerdict]]:
    order = {d.value: i for i, d in enumerate(Dimension)}
    result: dict[str, list[FeasibilityVerdict]] = defaultdict(list)
    for verdict in session.scalars(
        select(FeasibilityVerdict).where(FeasibilityVerdict.feasibility_id.in_(ids))
    ):
        result[verdict.feasibility_id].append(verdict)
    for verdicts in result.values():
        verdicts.sort(key=lambda v: order.get(v.dimension, 99))
    return result


def assessors_of(assessment: FeasibilityAssessment) -> list[str]:
    return as_list(assessment.assessors)


# --- an engagement's intake history ----------------------------------------------------------------


@dataclass(frozen=True)
class IntakeHistory:
    inquiries: list[tuple[Inquiry, Client]]
    requirements: list[Requirements]
    assessments: list[Assessment]


def intake_history(session: Session, engagement_id: str) -> IntakeHistory:
    """Everything crm knows of an engagement's intake: inquiries, requirements versions, assessments."""
    if not engagement_id:
        raise InvalidArgument("engagement_id", "is required")
    inquiries = [
        (row[0], row[1])
        for row in session.execute(
            select(Inquiry, Client)
            .join(Client, Client.client_id == Inquiry.client_id)
            .where(Inquiry.engagement_id == engagement_id)
            .order_by(Inquiry.received_at, Inquiry.inquiry_id)
        ).all()
    ]
    inquiry_ids = [i.inquiry_id for i, _ in inquiries]
    documents = list(
        session.scalars(
            select(RequirementsDocument)
            .where(RequirementsDocument.inquiry_id.in_(inquiry_ids))
            .order_by(RequirementsDocument.created_at)
        )
    )
    requirements = [get_requirements(session, d.requirements_id) for d in documents]
    assessments = list(
        session.scalars(
            select(FeasibilityAssessment)
            .where(FeasibilityAssessment.inquiry_id.in_(inquiry_ids))
            .order_by(FeasibilityAssessment.assessed_at, FeasibilityAssessment.feasibility_id)
        )
    )
    verdicts = _verdicts(session, [a.feasibility_id for a in assessments])
    return IntakeHistory(
        inquiries, requirements, [Assessment(a, verdicts[a.feasibility_id]) for a in assessments]
    )


# --- market research (2.1.1) -----------------------------------------------------------------------


def record_market_insight(uow: UnitOfWork, command: NewMarketInsight) -> MarketInsight:
    insight = MarketInsight(
        insight_id=_new_id(),
        industry=command.industry,
        industry_trends=command.industry_trends,
        market_demand=command.market_demand,
        competitors=command.competitors,
        potential_clients=command.potential_clients,
        recorded_at=now(),
    )
    uow.session.add(insight)
    uow.session.flush()
    uow.emit(
        "insight.recorded",
        insight.insight_id,
        {"insight_id": insight.insight_id, "industry": insight.industry},
    )
    return insight


def list_market_insights(session: Session, industry: str, limit: int, offset: int) -> list[MarketInsight]:
    query = select(MarketInsight)
    if industry.strip():
        query = query.where(func.lower(MarketInsight.industry) == industry.strip().lower())
    query = query.order_by(MarketInsight.recorded_at.desc(), MarketInsight.insight_id)
    return list(session.scalars(query.offset(offset).limit(limit)))


def record_lead(uow: UnitOfWork, command: NewLead) -> Lead:
    lead = Lead(
        lead_id=_new_id(),
        source=command.source.value,
        company=command.company,
        contact=command.contact,
        notes=command.notes,
        status=LeadStatus.NEW.value,
        recorded_at=now(),
        insight_id=command.insight_id,
    )
    uow.session.add(lead)
    uow.session.flush()
    uow.emit(
        "lead.recorded",
        lead.lead_id,
        {"lead_id": lead.lead_id, "lead_source": lead.source, "lead_company": lead.company},
    )
    return lead


def leads_of_round(session: Session, lead: Lead) -> list[str]:
    """2.1.1: the ids of the leads one research round (its market insight) found so far, in the order
    recorded; a lead recorded without a round is its own."""
    if not lead.insight_id:
        return [lead.lead_id]
    return list(
        session.scalars(
            select(Lead.lead_id)
            .where(Lead.insight_id == lead.insight_id)
            .order_by(Lead.recorded_at, Lead.lead_id)
        )
    )


def list_leads(session: Session, status: LeadStatus | None, limit: int, offset: int) -> list[Lead]:
    query = select(Lead)
    if status is not None:
        query = query.where(Lead.status == status.value)
    query = query.order_by(Lead.recorded_at.desc(), Lead.lead_id)
    return list(session.scalars(query.offset(offset).limit(limit)))


# --- relationship maintenance (5.3) ----------------------------------------------------------------


def plan_revisit(uow: UnitOfWork, command: NewRevisitPlan) -> RevisitPlan:
    """5.3.1: schedules a revisit of a client."""
    client = get_client(uow.session, command.client_id)
    plan = RevisitPlan(
        plan_id=_new_id(),
        client_id=client.client_id,
        engagement_id=command.engagement_id,
        method=command.method.value,
        due_date=command.due_date,
        purpose=command.purpose,
        status=RevisitPlanStatus.PLANNED.value,
        created_at=now(),
    )
    uow.session.add(plan)
    uow.session.flush()
    uow.emit(
        "revisit.planned",
        plan.plan_id,
        {"plan_id": plan.plan_id, "client_id": client.client_id, "due_date": plan.due_date},
        {"engagement_id": plan.engagement_id},
    )
    return plan


def record_revisit(uow: UnitOfWork, command: NewRevisit) -> tuple[Revisit, RevisitPlan | None]:
    """5.3.1: records a revisit made. It fulfils the plan named, else the client's earliest planned
    revisit that is due (of the same engagement when one is given)."""
    client = get_client(uow.session, command.client_id)
    plan: RevisitPlan | None
    if command.plan_id:
        plan = one(uow.session, RevisitPlan, command.plan_id, "revisit plan")
        if plan.client_id != client.client_id:
            raise NotFound("revisit plan", command.plan_id)
    else:
        query = select(RevisitPlan).where(
            RevisitPlan.client_id == client.client_id,
            RevisitPlan.status == RevisitPlanStatus.PLANNED.value,
            RevisitPlan.due_date <= now().date(),
        )
        if command.engagement_id:
            query = query.where(RevisitPlan.engagement_id.in_([command.engagement_id, ""]))
        plan = uow.session.scalars(query.order_by(RevisitPlan.due_date, RevisitPlan.plan_id)).first()
    revisit = Revisit(
        revisit_id=_new_id(),
        client_id=client.client_id,
        engagement_id=command.engagement_id,
        method=command.method.value,
        findings=command.findings,
        new_needs=command.new_needs,
        revisited_at=now(),
    )
    uow.session.add(revisit)
    if plan is not None:
        plan.status = domain.after_revisit(RevisitPlanStatus(plan.status)).value  # a plan made once
        plan.revisit_id = revisit.revisit_id
    uow.session.flush()
    uow.emit(
        "revisit.recorded",
        revisit.revisit_id,
        {
            "revisit_id": revisit.revisit_id,
            "client_id": client.client_id,
            "revisit_method": revisit.method,
            "new_needs": revisit.new_needs,
            "plan_id": plan.plan_id if plan is not None else "",
        },
        {"engagement_id": revisit.engagement_id},
    )
    return revisit, plan


def list_due_revisits(
    session: Session, as_of: date, limit: int, offset: int
) -> list[tuple[RevisitPlan, Client]]:
    """Planned revisits due on or before `as_of`, oldest first."""
    rows = session.execute(
        select(RevisitPlan, Client)
        .join(Client, Client.client_id == RevisitPlan.client_id)
        .where(RevisitPlan.status == RevisitPlanStatus.PLANNED.value, RevisitPlan.due_date <= as_of)
        .order_by(RevisitPlan.due_date, RevisitPlan.plan_id)
        .offset(offset)
        .limit(limit)
    ).all()
    return [(row[0], row[1]) for row in rows]


def record_value_added_service(uow: UnitOfWork, command: NewValueAddedService) -> ValueAddedService:
    """5.3.2: records a value-added service delivered to a client."""
    client = get_client(uow.session, command.client_id)
    item = ValueAddedService(
        service_id=_new_id(),
        client_id=client.client_id,
        engagement_id=command.engagement_id,
        kind=command.kind.value,
        description=command.description,
        delivered_at=now(),
    )
    uow.session.add(item)
    uow.session.flush()
    uow.emit(
        "value_added_service.recorded",
        item.service_id,
        {"value_added_service_id": item.service_id, "client_id": client.client_id, "kind": item.kind},
        {"engagement_id": item.engagement_id},
    )
    return item


def record_opportunity(uow: UnitOfWork, command: NewOpportunity) -> Opportunity:
    """5.3.3: records a follow-on project or a referral."""
    client = get_client(uow.session, command.client_id)
    opportunity = Opportunity(
        opportunity_id=_new_id(),
        client_id=client.client_id,
        engagement_id=command.engagement_id,
        kind=command.kind.value,
        description=command.description,
        referred_company=command.referred_company,
        status=OpportunityStatus.OPEN.value,
        recorded_at=now(),
    )
    uow.session.add(opportunity)
    uow.session.flush()
    uow.emit(
        "opportunity.recorded",
        opportunity.opportunity_id,
        {
            "opportunity_id": opportunity.opportunity_id,
            "client_id": client.client_id,
            "opportunity_kind": opportunity.kind,
            "referred_company": opportunity.referred_company,
        },
        {"engagement_id": opportunity.engagement_id},
    )
    return opportunity


@dataclass(frozen=True)
class Relationship:
    client: Client
    plans: list[RevisitPlan]
    revisits: list[Revisit]
    services: list[ValueAddedService]
    opportunities: list[Opportunity]


def relationship(session: Session, client_id: str) -> Relationship:
    """5.3: a client's revisit plans, revisits, value-added services and opportunities, oldest first."""
    client = get_client(session, client_id)
    return Relationship(
        client,
        list(
            session.scalars(
                select(RevisitPlan)
                .where(RevisitPlan.client_id == client_id)
                .order_by(RevisitPlan.due_date, RevisitPlan.plan_id)
            )
        ),
        list(
            session.scalars(
                select(Revisit).where(Revisit.client_id == client_id).order_by(Revisit.revisited_at)
            )
        ),
        list(
            session.scalars(
                select(ValueAddedService)
                .where(ValueAddedService.client_id == client_id)
                .order_by(ValueAddedService.delivered_at)
            )
        ),
        list(
            session.scalars(
                select(Opportunity)
                .where(Opportunity.client_id == client_id)
                .order_by(Opportunity.recorded_at)
            )
        ),
    )
