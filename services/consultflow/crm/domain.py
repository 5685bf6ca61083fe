"""CRM rules as plain code: what makes each record valid and which changes the regulation allows.

Chapter 2.1 (inquiries, market research), 2.2 (requirements, feasibility) and 5.3 (relationship
maintenance). Nothing here touches a database, gRPC or NATS; `usecases.py` applies these rules in a unit
of work. Commands are built from raw values (a request's fields, a job's variables) by their `parse`
classmethods, which name the field in every error.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from typing import Self

from consultflow.platform.errors import FailedPrecondition, InvalidArgument
from consultflow.platform.inputs import (
    choice,
    iso_date,
    names,
    optional_choice,
    optional_text,
    required_text,
    yes_no,
)

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_PHONE = re.compile(r"[0-9+()\-. ]{5,30}")

NAME_LIMIT = 300
TEXT_LIMIT = 10_000
ID_LIMIT = 36
"""Ids crm issues (uuid4 text)."""
ENGAGEMENT_LIMIT = 100
REQUEST_LIMIT = 200
EMAIL_LIMIT = 300
PHONE_LIMIT = 50


class Channel(StrEnum):
    """Where an inquiry came from: 2.1.2 hotline, mailbox, online service; referrals; 2.1.1 leads."""

    HOTLINE = "hotline"
    EMAIL = "email"
    ONLINE = "online"
    REFERRAL = "referral"
    MARKET_RESEARCH = "market_research"


class InquiryStatus(StrEnum):
    """An inquiry's life in intake: recorded, needs understood, worth taking on, or closed with a reason."""

    OPEN = "open"
    IN_ASSESSMENT = "in_assessment"
    ACCEPTED = "accepted"
    DECLINED = "declined"


class CommunicationMode(StrEnum):
    """2.2.1: how business staff talked with the client."""

    PHONE = "phone"
    FACE_TO_FACE = "face_to_face"


class Dimension(StrEnum):
    """2.2.2: the three feasibility dimensions."""

    TECHNICAL = "technical"
    ECONOMIC = "economic"
    TIME = "time"


class DeclineReason(StrEnum):
    """Why an intake ended without a contract (2.2.2, 2.3.1, 6.3.1)."""

    INFEASIBLE = "infeasible"
    OFFER_REJECTED = "offer_rejected"
    OFFER_EXPIRED = "offer_expired"
    RISK_AVOIDED = "risk_avoided"


class LeadSource(StrEnum):
    """2.1.1: where market research found a lead."""

    TRADE_FAIR = "trade_fair"
    SEMINAR = "seminar"
    ONLINE_PLATFORM = "online_platform"
    OTHER = "other"  # 2.1.1 等渠道: the list of channels is open


class LeadStatus(StrEnum):
    """2.1.1: a lead found by market research, until an inquiry from it is recorded."""

    NEW = "new"
    CONVERTED = "converted"


class RevisitMethod(StrEnum):
    """5.3.1: phone, email or visit."""

    PHONE = "phone"
    EMAIL = "email"
    VISIT = "visit"


class RevisitPlanStatus(StrEnum):
    """5.3.1: a planned revisit, until it is made."""

    PLANNED = "planned"
    DONE = "done"


class ValueAddedKind(StrEnum):
    """5.3.2: e.g. industry news sharing, free consulting training."""

    INDUSTRY_NEWS = "industry_news"
    FREE_TRAINING = "free_training"


class OpportunityStatus(StrEnum):
    """5.3.3: an opportunity as recorded (nothing in crm moves it on yet)."""

    OPEN = "open"


class OpportunityKind(StrEnum):
    """5.3.3: a follow-on project with the client, or a referral to another company."""

    FOLLOW_ON = "follow_on"
    REFERRAL = "referral"


# --- crm-specific inputs ----------------------------------------------------------------------------


def email_address(field: str, value: object) -> str:
    """An e-mail address (trimmed), or "" when none is given."""
    text = optional_text(field, value, EMAIL_LIMIT)
    if text and not _EMAIL.match(text):
        raise InvalidArgument(field, f"{text!r} is not an email address")
    return text


def phone_number(field: str, value: object) -> str:
    """A phone number (digits, spaces and + ( ) - .; 5 to 30 characters), or "" when none is given."""
    text = optional_text(field, value, PHONE_LIMIT)
    if text and not _PHONE.fullmatch(text):
        raise InvalidArgument(field, f"{text!r} is not a phone number")
    return text


_FEASIBLE_WORDS = {"feasible": True, "infeasible": False}


def feasibility_verdict(field: str, value: object) -> bool:
    """2.2.2: a dimension's verdict: "feasible"/"infeasible", or a yes/no value (true/false, yes/no …)."""
    if value is None or (isinstance(value, str) and not value.strip()):
        raise InvalidArgument(field, "is required (feasible or infeasible)")
    if isinstance(value, str) and value.strip().lower() in _FEASIBLE_WORDS:
        return _FEASIBLE_WORDS[value.strip().lower()]
    try:
        return yes_no(field, value)
    except InvalidArgument:
        raise InvalidArgument(field, f"{value!r} is not feasible or infeasible (or true/false)") from None


# --- clients and contacts --------------------------------------------------------------------------


@dataclass(frozen=True)
class NewClient:
    """An organisation the firm talks to; names are unique regardless of case."""

    name: str
    industry: str = ""

    @classmethod
    def parse(cls, *, name: object, industry: object = "") -> Self:
        return cls(
            name=required_text("name", name, NAME_LIMIT),
            industry=optional_text("industry", industry, 200),
        )


def _email_or_phone(email_field: str, email: str, phone: str) -> None:
    """2.1.2 asks for contact details: an email address or a phone number."""
    if not email and not phone:
        raise InvalidArgument(email_field, "an email address or a phone number is required (2.1.2)")


@dataclass(frozen=True)
class NewContact:
    """A person at a client; 2.1.2 asks for contact details, so an email or a phone number."""

    name: str
    email: str = ""
    phone: str = ""
    role: str = ""

    @classmethod
    def parse(cls, *, name: object, email: object = "", phone: object = "", role: object = "") -> Self:
        checked_name = required_text("name", name, 200)
        checked_role = optional_text("role", role, 200)
        checked_email = email_address("email", email)
        checked_phone = phone_number("phone", phone)
        _email_or_phone("email", checked_email, checked_phone)
        return cls(name=checked_name, email=checked_email, phone=checked_phone, role=checked_role)


# --- inquiries (2.1.2) -----------------------------------------------------------------------------


@dataclass(frozen=True)
class NewInquiry:
    """2.1.2: each inquiry records the client's basic information, the question and contact details."""

    channel: Channel
    client_name: str
    client_industry: str
    contact_name: str
    contact_email: str
    contact_phone: str
    question: str
    engagement_id: str = ""
    request_id: str = ""
    lead_id: str = ""
    referred_by: str = ""

    @classmethod
    def parse(
        cls,
        *,
        channel: object,
        client_name: object,
        contact_name: object,
        question: object,
        client_industry: object = "",
        contact_email: object = "",
        contact_phone: object = "",
        engagement_id: object = "",
        request_id: object = "",
        lead_id: object = "",
        referred_by: object = "",
    ) -> Self:
        """An inquiry from a market-research lead (`lead_id`) comes through market_research (2.1.1); one
        referred by an earlier engagement (`referred_by`, 5.3.3) through a referral."""
        kind = choice("channel", channel, Channel)
        client = required_text("client_name", client_name, NAME_LIMIT)
        contact = required_text("contact_name", contact_name, 200)
        asked = required_text("question", question, TEXT_LIMIT)
        industry = optional_text("client_industry", client_industry, 200)
        email = email_address("contact_email", contact_email)
        phone = phone_number("contact_phone", contact_phone)
        _email_or_phone("contact_email", email, phone)
        lead = optional_text("lead_id", lead_id, ID_LIMIT)
        if lead and kind is not Channel.MARKET_RESEARCH:
            raise InvalidArgument("channel", "an inquiry from a lead comes through market_research (2.1.1)")
        referrer = optional_text("referred_by", referred_by, ENGAGEMENT_LIMIT)
        if referrer and kind is not Channel.REFERRAL:
            raise InvalidArgument("channel", "an inquiry referred by an engagement comes through a referral")
        return cls(
            channel=kind,
            client_name=client,
            client_industry=industry,
            contact_name=contact,
            contact_email=email,
            contact_phone=phone,
            question=asked,
            engagement_id=optional_text("engagement_id", engagement_id, ENGAGEMENT_LIMIT),
            request_id=optional_text("request_id", request_id, REQUEST_LIMIT),
            lead_id=lead,
            referred_by=referrer,
        )


@dataclass(frozen=True)
class NewReferral:
    """2.1.1 → 2.1.2, 5.3.3 → 2.1.2: a market-research lead that became an inquiry, or a follow-on project or
    referral from an earlier engagement, handed to a new engagement whose inquiry is recorded next.

    Exactly one origin: the lead (`lead_id`) or the engagement that referred it (`referred_by`). The
    contact details are checked as an inquiry's are (2.1.2), so the new engagement can record them.
    """

    client_name: str
    client_industry: str
    contact_name: str
    contact_email: str
    contact_phone: str
    question: str
    lead_id: str = ""
    referred_by: str = ""
    request_id: str = ""

    @property
    def channel(self) -> Channel:
        return Channel.MARKET_RESEARCH if self.lead_id else Channel.REFERRAL

    @classmethod
    def parse(
        cls,
        *,
        client_name: object,
        contact_name: object,
        question: object,
        client_industry: object = "",
        contact_email: object = "",
        contact_phone: object = "",
        lead_id: object = "",
        referred_by: object = "",
        request_id: object = "",
    ) -> Self:
        lead = optional_text("lead_id", lead_id, ID_LIMIT)
        referrer = optional_text("referred_by", referred_by, ENGAGEMENT_LIMIT)
        if bool(lead) == bool(referrer):
            raise InvalidArgument(
                "lead_id", "give the lead (2.1.1) or the engagement that referred it (referred_by, 5.3.3)"
            )
        # the contact details are checked exactly as the new engagement's inquiry will check them
        inquiry = NewInquiry.parse(
            channel=(Channel.MARKET_RESEARCH if lead else Channel.REFERRAL).value,
            client_name=client_name,
            contact_name=contact_name,
            question=question,
            client_industry=client_industry,
            contact_email=contact_email,
            contact_phone=contact_phone,
            request_id=request_id,
            lead_id=lead,
            referred_by=referrer,
        )
        return cls(
            client_name=inquiry.client_name,
            client_industry=inquiry.client_industry,
            contact_name=inquiry.contact_name,
            contact_email=inquiry.contact_email,
            contact_phone=inquiry.contact_phone,
            question=inquiry.question,
            lead_id=inquiry.lead_id,
            referred_by=inquiry.referred_by,
            request_id=inquiry.request_id,
        )


def check_can_refer(status: LeadStatus, already_referred: bool) -> None:
    """2.1.1: a lead becomes one inquiry, so it is handed to one new engagement."""
    check_can_convert(status)
    if already_referred:
        raise FailedPrecondition("2.1.1: the lead was already handed to a new engagement")


OPEN_INQUIRY_STATUSES = (InquiryStatus.OPEN, InquiryStatus.IN_ASSESSMENT)
"""Inquiries nobody has decided on yet."""


def check_can_record_requirements(status: InquiryStatus) -> None:
    if status is InquiryStatus.DECLINED:
        raise FailedPrecondition("2.2.1: the inquiry was declined; its intake is closed")


def check_can_assess(status: InquiryStatus, has_requirements: bool) -> None:
    """2.2.2 follows 2.2.1: professionals assess what business staff understood of the client's needs."""
    if status is InquiryStatus.DECLINED:
        raise FailedPrecondition("2.2.2: the inquiry was declined; its intake is closed")
    if not has_requirements:
        raise FailedPrecondition(
            "2.2.2: a feasibility assessment needs the preliminary requirements document (2.2.1) first"
        )


def check_can_decline(status: InquiryStatus, reason: DeclineReason, latest_feasible: bool | None) -> None:
    if status is InquiryStatus.DECLINED:
        raise FailedPrecondition("the inquiry is already declined")
    if reason is DeclineReason.INFEASIBLE and latest_feasible is not False:
        raise FailedPrecondition(
            "2.2.2: declining as infeasible needs a feasibility assessment that said no-go"
        )


def after_requirements(status: InquiryStatus) -> InquiryStatus:
    """2.2.1: recording requirements puts an open inquiry in assessment (a later version changes nothing)."""
    check_can_record_requirements(status)
    return InquiryStatus.IN_ASSESSMENT if status is InquiryStatus.OPEN else status


def after_assessment(status: InquiryStatus, has_requirements: bool, feasible: bool) -> InquiryStatus:
    """2.2.2: a go accepts the inquiry for intake; a no-go leaves (or puts) it in assessment."""
    check_can_assess(status, has_requirements)
    return InquiryStatus.ACCEPTED if feasible else InquiryStatus.IN_ASSESSMENT


def after_decline(
    status: InquiryStatus, reason: DeclineReason, latest_feasible: bool | None
) -> InquiryStatus:
    """2.2.2, 2.3.1, 6.3.1: declining closes the intake (see `check_can_decline`)."""
    check_can_decline(status, reason, latest_feasible)
    return InquiryStatus.DECLINED


@dataclass(frozen=True)
class Decline:
    """Closing an inquiry with the reason it was not taken on (2.2.2, 2.3.1, 6.3.1)."""

    inquiry_id: str
    reason: DeclineReason

    @classmethod
    def parse(cls, *, inquiry_id: object, decline_reason: object) -> Self:
        reason = choice("decline_reason", decline_reason, DeclineReason)
        return cls(inquiry_id=required_text("inquiry_id", inquiry_id, ID_LIMIT), reason=reason)


# --- requirements (2.2.1) --------------------------------------------------------------------------


@dataclass(frozen=True)
class NewRequirements:
    """2.2.1: the preliminary requirements document: needs, background, goals, expected results."""

    inquiry_id: str
    communication_mode: CommunicationMode
    needs: str
    goals: str
    expected_results: str
    background: str = ""
    recorded_by: str = ""

    @classmethod
    def parse(
        cls,
        *,
        inquiry_id: object,
        communication_mode: object,
        needs: object,
        goals: object,
        expected_results: object,
        background: object = "",
        recorded_by: object = "",
    ) -> Self:
        mode = choice("communication_mode", communication_mode, CommunicationMode)
        return cls(
            inquiry_id=required_text("inquiry_id", inquiry_id, ID_LIMIT),
            communication_mode=mode,
            needs=required_text("needs", needs, TEXT_LIMIT),
            goals=required_text("goals", goals, TEXT_LIMIT),
            expected_results=required_text("expected_results", expected_results, TEXT_LIMIT),
            background=optional_text("background", background, TEXT_LIMIT),
            recorded_by=optional_text("recorded_by", recorded_by, 200),
        )


# --- feasibility (2.2.2) ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Verdict:
    """One dimension's verdict; an infeasible verdict must say why."""

    dimension: Dimension
    feasible: bool
    reason: str = ""

    @classmethod
    def parse(cls, dimension: Dimension, *, feasible: object, reason: object = "") -> Self:
        """Fields are named `<dimension>_feasible` and `<dimension>_reason`."""
        verdict = feasibility_verdict(f"{dimension.value}_feasible", feasible)
        field = f"{dimension.value}_reason"
        text = optional_text(field, reason, TEXT_LIMIT)
        if not verdict and not text:
            raise InvalidArgument(field, f"an infeasible {dimension.value} verdict needs its reason")
        return cls(dimension, verdict, text)


@dataclass(frozen=True)
class NewFeasibility:
    """2.2.2: technical, economic and time verdicts by named assessors, and the report's conclusion whether
    the project is worth taking on, with its reasons (the experts' judgement, not a rule over the three)."""

    inquiry_id: str
    technical: Verdict
    economic: Verdict
    time: Verdict
    assessors: tuple[str, ...]
    report: str = ""
    worth_taking_on: bool | None = None  # None: an older payload without the conclusion
    worth_reason: str = ""

    @classmethod
    def parse(
        cls,
        *,
        inquiry_id: object,
        technical_feasible: object,
        economic_feasible: object,
        time_feasible: object,
        assessors: object,
        technical_reason: object = "",
        economic_reason: object = "",
        time_reason: object = "",
        report: object = "",
        worth_taking_on: object = None,
        worth_reason: object = "",
    ) -> Self:
        """Verdicts are "feasible"/"infeasible" or yes/no values; assessors a list or names separated by
        commas, semicolons or new lines; the conclusion (worth taking on) is a yes/no value and needs its
        reasons."""
        technical = Verdict.parse(Dimension.TECHNICAL, feasible=technical_feasible, reason=technical_reason)
        economic = Verdict.parse(Dimension.ECONOMIC, feasible=economic_feasible, reason=economic_reason)
        time = Verdict.parse(Dimension.TIME, feasible=time_feasible, reason=time_reason)
        who = names("assessors", assessors, NAME_LIMIT)
        checked_id = required_text("inquiry_id", inquiry_id, ID_LIMIT)
        if not who:
            raise InvalidArgument("assessors", "name at least one consultant or expert who assessed (2.2.2)")
        worth = None if worth_taking_on is None else yes_no("worth_taking_on", worth_taking_on)
        reasons = optional_text("worth_reason", worth_reason, TEXT_LIMIT)
        if worth is not None and not reasons:
            raise InvalidArgument("worth_reason", "the conclusion whether to take it on needs its reasons")
        return cls(
            inquiry_id=checked_id,
            technical=technical,
            economic=economic,
            time=time,
            assessors=who,
            report=optional_text("report", report, TEXT_LIMIT),
            worth_taking_on=worth,
            worth_reason=reasons,
        )

    @property
    def verdicts(self) -> tuple[Verdict, Verdict, Verdict]:
        return (self.technical, self.economic, self.time)

    @property
    def feasible(self) -> bool:
        """The go/no-go: the experts' conclusion; an older payload without one goes only when every
        dimension is feasible."""
        if self.worth_taking_on is not None:
            return self.worth_taking_on
        return all(v.feasible for v in self.verdicts)

    def summary(self) -> str:
        """One line for the feasibility report: the overall verdict, its reasons and each infeasible
        dimension's reason."""
        infeasible = "; ".join(f"{v.dimension.value}: {v.reason}" for v in self.verdicts if not v.feasible)
        if self.worth_taking_on is not None:
            verdict = "go" if self.worth_taking_on else "no-go"
            return f"{verdict}: {self.worth_reason}" + (f" (infeasible — {infeasible})" if infeasible else "")
        if self.feasible:
            return "go: technically, economically and time-wise feasible"
        return f"no-go: {infeasible}"


# --- market research (2.1.1) -----------------------------------------------------------------------


@dataclass(frozen=True)
class NewMarketInsight:
    """2.1.1: what the marketing department learned about trends, demand and competitors."""

    industry_trends: str = ""
    market_demand: str = ""
    competitors: str = ""
    potential_clients: str = ""
    industry: str = ""

    @classmethod
    def parse(
        cls,
        *,
        industry_trends: object = "",
        market_demand: object = "",
        competitors: object = "",
        potential_clients: object = "",
        industry: object = "",
    ) -> Self:
        insight = cls(
            industry_trends=optional_text("industry_trends", industry_trends, TEXT_LIMIT),
            market_demand=optional_text("market_demand", market_demand, TEXT_LIMIT),
            competitors=optional_text("competitors", competitors, TEXT_LIMIT),
            potential_clients=optional_text("potential_clients", potential_clients, TEXT_LIMIT),
            industry=optional_text("industry", industry, 200),
        )
        if not (insight.industry_trends or insight.market_demand or insight.competitors):
            raise InvalidArgument(
                "industry_trends", "record at least one of industry trends, market demand or competitors"
            )
        return insight


@dataclass(frozen=True)
class NewLead:
    """2.1.1: a project lead from a trade fair, seminar or online platform."""

    source: LeadSource
    company: str
    contact: str = ""
    notes: str = ""
    insight_id: str = ""  # the research round (market insight) that found it

    @classmethod
    def parse(
        cls,
        *,
        lead_source: object,
        lead_company: object,
        lead_contact: object = "",
        lead_notes: object = "",
        insight_id: object = "",
    ) -> Self:
        return cls(
            source=choice("lead_source", lead_source, LeadSource),
            company=required_text("lead_company", lead_company, NAME_LIMIT),
            contact=optional_text("lead_contact", lead_contact, 300),
            notes=optional_text("lead_notes", lead_notes, TEXT_LIMIT),
            insight_id=optional_text("insight_id", insight_id, ID_LIMIT),
        )


def check_can_convert(status: LeadStatus) -> None:
    if status is LeadStatus.CONVERTED:
        raise FailedPrecondition("2.1.1: the lead already became an inquiry")


def after_conversion(status: LeadStatus) -> LeadStatus:
    """2.1.1: an inquiry recorded from a lead converts it, once."""
    check_can_convert(status)
    return LeadStatus.CONVERTED


# --- relationship maintenance (5.3) ----------------------------------------------------------------


@dataclass(frozen=True)
class NewRevisitPlan:
    """5.3.1: a revisit business staff intend to make, and when."""

    client_id: str
    method: RevisitMethod
    due_date: date
    purpose: str = ""
    engagement_id: str = ""

    @classmethod
    def parse(
        cls,
        *,
        client_id: object,
        revisit_method: object,
        due_date: object,
        purpose: object = "",
        engagement_id: object = "",
    ) -> Self:
        method = choice("revisit_method", revisit_method, RevisitMethod)
        due = iso_date("due_date", due_date)
        return cls(
            client_id=required_text("client_id", client_id, ID_LIMIT),
            method=method,
            due_date=due,
            purpose=optional_text("purpose", purpose, TEXT_LIMIT),
            engagement_id=optional_text("engagement_id", engagement_id, ENGAGEMENT_LIMIT),
        )


@dataclass(frozen=True)
class NewRevisit:
    """5.3.1: a revisit made: how, what was learned about the results' use, and any new needs."""

    client_id: str
    method: RevisitMethod
    findings: str
    new_needs: str = ""
    engagement_id: str = ""
    plan_id: str = ""

    @classmethod
    def parse(
        cls,
        *,
        client_id: object,
        revisit_method: object,
        revisit_findings: object,
        new_needs: object = "",
        engagement_id: object = "",
        plan_id: object = "",
    ) -> Self:
        method = choice("revisit_method", revisit_method, RevisitMethod)
        return cls(
            client_id=required_text("client_id", client_id, ID_LIMIT),
            method=method,
            findings=required_text("revisit_findings", revisit_findings, TEXT_LIMIT),
            new_needs=optional_text("new_needs", new_needs, TEXT_LIMIT),
            engagement_id=optional_text("engagement_id", engagement_id, ENGAGEMENT_LIMIT),
            plan_id=optional_text("plan_id", plan_id, ID_LIMIT),
        )


def check_plan_open(status: RevisitPlanStatus) -> None:
    if status is RevisitPlanStatus.DONE:
        raise FailedPrecondition("5.3.1: the planned revisit was already made")


def after_revisit(status: RevisitPlanStatus) -> RevisitPlanStatus:
    """5.3.1: a revisit made fulfils its plan, once."""
    check_plan_open(status)
    return RevisitPlanStatus.DONE


def revisit_is_due(due_date: date, status: RevisitPlanStatus, as_of: date) -> bool:
    """A planned revisit is due on and after its date until it is made."""
    return status is RevisitPlanStatus.PLANNED and due_date <= as_of


@dataclass(frozen=True)
class NewValueAddedService:
    """5.3.2: a value-added service delivered to a client."""

    client_id: str
    kind: ValueAddedKind
    description: str = ""
    engagement_id: str = ""

    @classmethod
    def parse(
        cls,
        *,
        client_id: object,
        value_added_service: object,
        description: object = "",
        engagement_id: object = "",
    ) -> Self:
        kind = choice("value_added_service", value_added_service, ValueAddedKind)
        return cls(
            client_id=required_text("client_id", client_id, ID_LIMIT),
            kind=kind,
            description=optional_text("description", description, TEXT_LIMIT),
            engagement_id=optional_text("engagement_id", engagement_id, ENGAGEMENT_LIMIT),
        )


@dataclass(frozen=True)
class NewOpportunity:
    """5.3.3: a follow-on project (the default) or a referral; a referral names the company referred."""

    client_id: str
    description: str
    kind: OpportunityKind = OpportunityKind.FOLLOW_ON
    referred_company: str = ""
    engagement_id: str = ""

    @classmethod
    def parse(
        cls,
        *,
        client_id: object,
        opportunity: object,
        opportunity_kind: object = "",
        referred_company: object = "",
        engagement_id: object = "",
    ) -> Self:
        kind = (
            optional_choice("opportunity_kind", opportunity_kind, OpportunityKind)
            or OpportunityKind.FOLLOW_ON
        )
        checked = cls(
            client_id=required_text("client_id", client_id, ID_LIMIT),
            description=required_text("opportunity", opportunity, TEXT_LIMIT),
            kind=kind,
            referred_company=optional_text("referred_company", referred_company, NAME_LIMIT),
            engagement_id=optional_text("engagement_id", engagement_id, ENGAGEMENT_LIMIT),
        )
        if checked.kind is OpportunityKind.REFERRAL and not checked.referred_company:
            raise InvalidArgument("referred_company", "a referral names the company referred (5.3.3)")
        return checked
