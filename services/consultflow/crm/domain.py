"""CRM rules as plain code: what makes each record valid and which changes the regulation allows.

Chapter 2.1 (inquiries, market research), 2.2 (requirements, feasibility) and 5.3 (relationship
maintenance). Nothing here touches a database, gRPC or NATS; `usecases.py` applies these rules in a unit
of work.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from typing import TypeVar

from consultflow.platform.errors import FailedPrecondition, InvalidArgument
from consultflow.platform.inputs import optional_text, required_text

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_PHONE = re.compile(r"[0-9+()\-. ]{5,30}")

NAME_LIMIT = 300
TEXT_LIMIT = 10_000


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


class LeadStatus(StrEnum):
    NEW = "new"
    CONVERTED = "converted"


class RevisitMethod(StrEnum):
    """5.3.1: phone, email or visit."""

    PHONE = "phone"
    EMAIL = "email"
    VISIT = "visit"


class RevisitPlanStatus(StrEnum):
    PLANNED = "planned"
    DONE = "done"


class ValueAddedKind(StrEnum):
    """5.3.2: e.g. industry news sharing, free consulting training."""

    INDUSTRY_NEWS = "industry_news"
    FREE_TRAINING = "free_training"


class OpportunityKind(StrEnum):
    """5.3.3: a follow-on project with the client, or a referral to another company."""

    FOLLOW_ON = "follow_on"
    REFERRAL = "referral"


E = TypeVar("E", bound=StrEnum)


def parse_choice(kind: type[E], value: object, field_name: str) -> E:
    """The enum member named by `value`; an error naming the field and the allowed values otherwise."""
    text = str(value or "").strip()
    if not text:
        raise InvalidArgument(field_name, f"is required (one of {_allowed(kind)})")
    try:
        return kind(text)
    except ValueError:
        raise InvalidArgument(field_name, f"{text!r} is not one of {_allowed(kind)}") from None


def _allowed(kind: type[StrEnum]) -> str:
    return ", ".join(member.value for member in kind)


def parse_channel(value: str, field_name: str = "channel") -> Channel:
    return parse_choice(Channel, value, field_name)


def required(field_name: str, value: str, limit: int = TEXT_LIMIT) -> str:
    """The platform's `required_text` with this service's default limit."""
    return required_text(field_name, value, limit)


def optional(field_name: str, value: str, limit: int = TEXT_LIMIT) -> str:
    """The platform's `optional_text` with this service's default limit."""
    return optional_text(field_name, value, limit)


def check_email(field_name: str, value: str) -> None:
    if value and not _EMAIL.match(value):
        raise InvalidArgument(field_name, f"{value!r} is not an email address")


def check_phone(field_name: str, value: str) -> None:
    if value and not _PHONE.fullmatch(value):
        raise InvalidArgument(field_name, f"{value!r} is not a phone number")


def parse_names(value: object, field_name: str) -> tuple[str, ...]:
    """Names given as a list or as text separated by commas or new lines (as a form field gives them)."""
    if value is None:
        items: Iterable[object] = ()
    elif isinstance(value, str):
        items = re.split(r"[,\n;]", value)
    elif isinstance(value, list | tuple):
        items = value
    else:
        raise InvalidArgument(field_name, "must be a list of names or text separated by commas")
    names: list[str] = []
    for item in items:
        name = str(item).strip()
        if len(name) > NAME_LIMIT:
            raise InvalidArgument(field_name, f"{name[:40]!r}… is longer than {NAME_LIMIT} characters")
        if name and name not in names:
            names.append(name)
    return tuple(names)


def parse_flag(value: object, field_name: str) -> bool:
    """A yes/no answer as a boolean or its usual spellings; anything else names the field."""
    if isinstance(value, bool):
        return value
    text = str(value if value is not None else "").strip().lower()
    if text in {"true", "yes", "1", "feasible"}:
        return True
    if text in {"false", "no", "0", "infeasible"}:
        return False
    raise InvalidArgument(field_name, f"{value!r} is not true or false")


def parse_date(value: object, field_name: str) -> date:
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value or "").strip())
    except ValueError:
        raise InvalidArgument(field_name, f"{value!r} is not a date (YYYY-MM-DD)") from None


# --- clients and contacts --------------------------------------------------------------------------


@dataclass(frozen=True)
class NewClient:
    """An organisation the firm talks to; names are unique regardless of case."""

    name: str
    industry: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "name", required("name", self.name, NAME_LIMIT))
        object.__setattr__(self, "industry", optional("industry", self.industry, 200))


@dataclass(frozen=True)
class NewContact:
    """A person at a client; 2.1.2 asks for contact details, so an email or a phone number."""

    name: str
    email: str = ""
    phone: str = ""
    role: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "name", required("name", self.name, 200))
        object.__setattr__(self, "email", self.email.strip())
        object.__setattr__(self, "phone", self.phone.strip())
        object.__setattr__(self, "role", optional("role", self.role, 200))
        if not self.email and not self.phone:
            raise InvalidArgument("email", "an email address or a phone number is required (2.1.2)")
        check_email("email", self.email)
        check_phone("phone", self.phone)


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

    def __post_init__(self) -> None:
        object.__setattr__(self, "client_name", required("client_name", self.client_name, NAME_LIMIT))
        object.__setattr__(self, "contact_name", required("contact_name", self.contact_name, 200))
        object.__setattr__(self, "question", required("question", self.question, TEXT_LIMIT))
        object.__setattr__(self, "client_industry", optional("client_industry", self.client_industry, 200))
        if not self.contact_email and not self.contact_phone:
            raise InvalidArgument("contact_email", "an email address or a phone number is required (2.1.2)")
        check_email("contact_email", self.contact_email)
        check_phone("contact_phone", self.contact_phone)
        if self.lead_id and self.channel is not Channel.MARKET_RESEARCH:
            raise InvalidArgument("channel", "an inquiry from a lead comes through market_research (2.1.1)")


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

    def __post_init__(self) -> None:
        required("inquiry_id", self.inquiry_id, 36)
        object.__setattr__(self, "needs", required("needs", self.needs))
        object.__setattr__(self, "goals", required("goals", self.goals))
        object.__setattr__(self, "expected_results", required("expected_results", self.expected_results))
        object.__setattr__(self, "background", optional("background", self.background))
        object.__setattr__(self, "recorded_by", optional("recorded_by", self.recorded_by, 200))


# --- feasibility (2.2.2) ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Verdict:
    """One dimension's verdict; an infeasible verdict must say why."""

    dimension: Dimension
    feasible: bool
    reason: str = ""

    def __post_init__(self) -> None:
        field_name = f"{self.dimension.value}_reason"
        object.__setattr__(self, "reason", optional(field_name, self.reason))
        if not self.feasible and not self.reason:
            raise InvalidArgument(
                field_name, f"an infeasible {self.dimension.value} verdict needs its reason"
            )


@dataclass(frozen=True)
class NewFeasibility:
    """2.2.2: technical, economic and time verdicts by named assessors; go only when all are feasible."""

    inquiry_id: str
    technical: Verdict
    economic: Verdict
    time: Verdict
    assessors: tuple[str, ...]
    report: str = ""

    def __post_init__(self) -> None:
        required("inquiry_id", self.inquiry_id, 36)
        for expected, verdict in zip(Dimension, self.verdicts, strict=True):
            if verdict.dimension is not expected:
                raise InvalidArgument(f"{expected.value}_feasible", "holds the verdict of another dimension")
        if not self.assessors:
            raise InvalidArgument("assessors", "name at least one consultant or expert who assessed (2.2.2)")
        object.__setattr__(self, "report", optional("report", self.report))

    @property
    def verdicts(self) -> tuple[Verdict, Verdict, Verdict]:
        return (self.technical, self.economic, self.time)

    @property
    def feasible(self) -> bool:
        """Worth taking on only when every dimension is feasible."""
        return all(v.feasible for v in self.verdicts)

    def summary(self) -> str:
        """One line for the feasibility report: the overall verdict and each infeasible dimension's reason."""
        if self.feasible:
            return "go: technically, economically and time-wise feasible"
        reasons = "; ".join(f"{v.dimension.value}: {v.reason}" for v in self.verdicts if not v.feasible)
        return f"no-go: {reasons}"


# --- market research (2.1.1) -----------------------------------------------------------------------


@dataclass(frozen=True)
class NewMarketInsight:
    """2.1.1: what the marketing department learned about trends, demand and competitors."""

    industry_trends: str = ""
    market_demand: str = ""
    competitors: str = ""
    potential_clients: str = ""
    industry: str = ""

    def __post_init__(self) -> None:
        for name in ("industry_trends", "market_demand", "competitors", "potential_clients"):
            object.__setattr__(self, name, optional(name, getattr(self, name)))
        object.__setattr__(self, "industry", optional("industry", self.industry, 200))
        if not (self.industry_trends or self.market_demand or self.competitors):
            raise InvalidArgument(
                "industry_trends", "record at least one of industry trends, market demand or competitors"
            )


@dataclass(frozen=True)
class NewLead:
    """2.1.1: a project lead from a trade fair, seminar or online platform."""

    source: LeadSource
    company: str
    contact: str = ""
    notes: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "company", required("lead_company", self.company, NAME_LIMIT))
        object.__setattr__(self, "contact", optional("lead_contact", self.contact, 300))
        object.__setattr__(self, "notes", optional("lead_notes", self.notes))


def check_can_convert(status: LeadStatus) -> None:
    if status is LeadStatus.CONVERTED:
        raise FailedPrecondition("2.1.1: the lead already became an inquiry")


# --- relationship maintenance (5.3) ----------------------------------------------------------------


@dataclass(frozen=True)
class NewRevisitPlan:
    """5.3.1: a revisit business staff intend to make, and when."""

    client_id: str
    method: RevisitMethod
    due_date: date
    purpose: str = ""
    engagement_id: str = ""

    def __post_init__(self) -> None:
        required("client_id", self.client_id, 36)
        object.__setattr__(self, "purpose", optional("purpose", self.purpose))


@dataclass(frozen=True)
class NewRevisit:
    """5.3.1: a revisit made: how, what was learned about the results' use, and any new needs."""

    client_id: str
    method: RevisitMethod
    findings: str
    new_needs: str = ""
    engagement_id: str = ""
    plan_id: str = ""

    def __post_init__(self) -> None:
        required("client_id", self.client_id, 36)
        object.__setattr__(self, "findings", required("revisit_findings", self.findings))
        object.__setattr__(self, "new_needs", optional("new_needs", self.new_needs))


def check_plan_open(status: RevisitPlanStatus) -> None:
    if status is RevisitPlanStatus.DONE:
        raise FailedPrecondition("5.3.1: the planned revisit was already made")


@dataclass(frozen=True)
class NewValueAddedService:
    """5.3.2: a value-added service delivered to a client."""

    client_id: str
    kind: ValueAddedKind
    description: str = ""
    engagement_id: str = ""

    def __post_init__(self) -> None:
        required("client_id", self.client_id, 36)
        object.__setattr__(self, "description", optional("description", self.description))


@dataclass(frozen=True)
class NewOpportunity:
    """5.3.3: a follow-on project or a referral; a referral names the company referred."""

    client_id: str
    description: str
    kind: OpportunityKind = OpportunityKind.FOLLOW_ON
    referred_company: str = ""
    engagement_id: str = ""

    def __post_init__(self) -> None:
        required("client_id", self.client_id, 36)
        object.__setattr__(self, "description", required("opportunity", self.description))
        object.__setattr__(
            self, "referred_company", optional("referred_company", self.referred_company, NAME_LIMIT)
        )
        if self.kind is OpportunityKind.REFERRAL and not self.referred_company:
            raise InvalidArgument("referred_company", "a referral names the company referred (5.3.3)")


def revisit_is_due(due_date: date, status: RevisitPlanStatus, as_of: date) -> bool:
    """A planned revisit is due on and after its date until it is made."""
    return status is RevisitPlanStatus.PLANNED and due_date <= as_of
