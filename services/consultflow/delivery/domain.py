"""Delivery rules as plain code (regulation chapters 3 and 4): what makes a team, a plan, a review, a
delivery or an acceptance round valid, and which state a project or a record may move to next.

Values arrive from gRPC messages and from diagrams (job parameters, where lists are often text with one
entry per line or comma-separated names); the parsers here accept both and name the field they refuse.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Self

from consultflow.platform.errors import FailedPrecondition, InvalidArgument
from consultflow.platform.inputs import (
    choice,
    entries,
    iso_date,
    iso_datetime,
    lines,
    names,
    optional_choice,
    optional_text,
    renamed_fields,
    required_text,
    yes_no,
)

TEXT_LIMIT = 20_000
"""Reports, minutes and summaries run longer than the platform's default text limit."""
NAME_LIMIT = 200
MONEY_LIMIT = Decimal("1e12")


# --- vocabularies -----------------------------------------------------------------------------------


class Role(StrEnum):
    """3.1.1: the roles of a project team."""

    PROJECT_MANAGER = "project_manager"
    CONSULTANT = "consultant"
    ANALYST = "analyst"
    ASSISTANT = "assistant"


STANDARD_DUTIES: dict[Role, str] = {
    Role.PROJECT_MANAGER: (
        "leads the team; briefs it at kick-off; plans, runs project meetings and monitors schedule, "
        "quality and cost; organises reviews of solution and delivery materials (3.1.2, 3.4, 4.1.2)"
    ),
    Role.CONSULTANT: "researches, designs the solution and presents results to the client (3.2, 3.3, 4.3)",
    Role.ANALYST: "collects, organises and analyses data; identifies problems, opportunities, risks (3.2)",
    Role.ASSISTANT: "archives materials, keeps records and supports communication and logistics (3.2.1, 3.5)",
}
"""A role's duties when the team is formed without naming them (an [assumption] for the regulation's
owner: 3.1.1 asks for duties per role but does not spell them out)."""


class Phase(StrEnum):
    """Where a project stands, in the order of chapters 3 and 4."""

    OPENED = "opened"
    KICKED_OFF = "kicked_off"
    RESEARCH = "research"
    SOLUTION_DESIGN = "solution_design"
    EXECUTION = "execution"
    EXECUTED = "executed"
    DELIVERY = "delivery"
    ACCEPTANCE = "acceptance"
    FOLLOW_UP = "follow_up"


_PHASE_ORDER = list(Phase)


def advance(current: str, to: Phase) -> str:
    """The later of the two phases: recording research after the solution never moves a project back."""
    return to.value if _PHASE_ORDER.index(to) > _PHASE_ORDER.index(Phase(current)) else current


def ensure_active(phase: str) -> None:
    """A project in follow-up has been accepted: chapters 3 and 4 are closed for it."""
    if phase == Phase.FOLLOW_UP:
        raise FailedPrecondition("the project was accepted and is in follow-up: its delivery is closed")


class DocumentCategory(StrEnum):
    """3.2.1: industry data, client internal data, market data."""

    INDUSTRY = "industry"
    CLIENT_INTERNAL = "client_internal"
    MARKET = "market"


class Classification(StrEnum):
    PUBLIC = "public"
    INTERNAL = "internal"
    CONFIDENTIAL = "confidential"


class ArchiveState(StrEnum):
    """3.2.1: a document is collected into the data repository, then archived."""

    COLLECTED = "collected"
    ARCHIVED = "archived"


def check_archivable(state: str, document_id: str) -> None:
    """A document is archived once."""
    if state == ArchiveState.ARCHIVED:
        raise FailedPrecondition(f"document {document_id!r} is already archived")


def default_classification(category: DocumentCategory) -> Classification:
    """Client internal data is confidential unless said otherwise; other research data is internal."""
    return (
        Classification.CONFIDENTIAL
        if category is DocumentCategory.CLIENT_INTERNAL
        else Classification.INTERNAL
    )


class FindingKind(StrEnum):
    """3.2.3: the client's problems, opportunities and potential risks."""

    PROBLEM = "problem"
    OPPORTUNITY = "opportunity"
    RISK = "risk"


class RiskCategory(StrEnum):
    """6.1.2: risk classes (as the risk service knows them).

    A copy of the risk service's `Category` kept by hand: risk.proto carries the category as a plain
    string (`string category = 3`), there is no proto enum to map through, and delivery may not import
    another service's domain. Keep the two in step until the proto gains an enum."""

    MARKET = "market"
    TECHNICAL = "technical"
    MANAGEMENT = "management"
    PERSONNEL = "personnel"
    FINANCIAL = "financial"
    OTHER = "other"


class ArtefactKind(StrEnum):
    """3.3.1: a solution is illustrated with flow charts and mind maps."""

    FLOW_CHART = "flow_chart"
    MIND_MAP = "mind_map"
    OTHER = "other"


class Verdict(StrEnum):
    APPROVED = "approved"
    REVISE = "revise"


class SolutionStatus(StrEnum):
    """3.3: a solution version awaits its expert review, is superseded by a newer version, or was reviewed."""

    SUBMITTED = "submitted"
    SUPERSEDED = "superseded"
    APPROVED = "approved"
    REVISE = "revise"


class DeliverableSetStatus(StrEnum):
    """4.1: a deliverable set version awaits its internal review, is superseded, or was reviewed."""

    COMPILED = "compiled"
    SUPERSEDED = "superseded"
    APPROVED = "approved"
    REVISE = "revise"


@dataclass(frozen=True)
class ReviewCycle:
    """3.3.1-3.3.2, 4.1.1-4.1.2: an artefact reviewed version by version until a version is approved. A new
    version supersedes the one still awaiting review; a reviewed version keeps its verdict; only the version
    awaiting review may be reviewed, once."""

    awaiting: str
    superseded: str
    approved: str
    revise: str

    def superseded_by_new_version(self, status: str) -> bool:
        """Whether a new version supersedes a version in `status` (only one awaiting review)."""
        return status == self.awaiting

    def check_reviewable(self, status: str, what: str) -> None:
        if status != self.awaiting:
            raise FailedPrecondition(f"the {what} was already reviewed ({status}); submit a new version")

    def after_review(self, approved: bool) -> str:
        """The status a review's verdict gives the version."""
        return self.approved if approved else self.revise


SOLUTION_REVIEW = ReviewCycle(
    SolutionStatus.SUBMITTED, SolutionStatus.SUPERSEDED, SolutionStatus.APPROVED, SolutionStatus.REVISE
)
DELIVERABLES_REVIEW = ReviewCycle(
    DeliverableSetStatus.COMPILED,
    DeliverableSetStatus.SUPERSEDED,
    DeliverableSetStatus.APPROVED,
    DeliverableSetStatus.REVISE,
)


class Direction(StrEnum):
    """3.5.1 internal, 3.5.2 external communication."""

    INTERNAL = "internal"
    EXTERNAL = "external"


class CommunicationKind(StrEnum):
    REPORT = "report"
    MESSAGE = "message"
    MEETING = "meeting"
    PROGRESS_REPORT = "progress_report"
    CLIENT_REQUEST = "client_request"
    CHANGE_REQUEST = "change_request"
    CLIENT_QUESTION = "client_question"
    ANSWER = "answer"
    CLIENT_FEEDBACK = "client_feedback"
    REMINDER = "reminder"
    EXPERT = "expert"
    PARTNER = "partner"


_INTERNAL_KINDS = {CommunicationKind.REPORT, CommunicationKind.MESSAGE, CommunicationKind.MEETING}


def check_communication(direction: Direction, kind: CommunicationKind) -> None:
    """Reports, messages and meetings are internal (3.5.1); everything with the client or outside experts
    and partners is external (3.5.2)."""
    if (kind in _INTERNAL_KINDS) != (direction is Direction.INTERNAL):
        raise InvalidArgument("kind", f"{kind.value!r} is not {direction.value} communication")


class ChangeDecision(StrEnum):
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    DEFERRED = "deferred"


class ChangeStatus(StrEnum):
    """3.5.2: a change request awaits its answer, or carries the decision taken."""

    REQUESTED = "requested"
    ACCEPTED = ChangeDecision.ACCEPTED.value
    REJECTED = ChangeDecision.REJECTED.value
    DEFERRED = ChangeDecision.DEFERRED.value


def check_change_response(status: str, decision: ChangeDecision, response: str) -> None:
    """A change request is answered once, unless it was deferred; the answer says why."""
    if status not in (ChangeStatus.REQUESTED, ChangeStatus.DEFERRED):
        raise FailedPrecondition(f"the change request was already {status}")
    required_text("change_response", response, TEXT_LIMIT)


class DeliveryMode(StrEnum):
    ONSITE = "onsite"
    ONLINE = "online"


class Platform(StrEnum):
    """4.2.2: email, online documents, video conference."""

    EMAIL = "email"
    ONLINE_DOCUMENTS = "online_documents"
    VIDEO_CONFERENCE = "video_conference"


class DeliveryStatus(StrEnum):
    """4.2-4.3: planned; an online delivery is sent through its platform; then delivered."""

    PLANNED = "planned"
    SENT = "sent"
    DELIVERED = "delivered"


def check_sendable(mode: str, status: str) -> None:
    """4.3.2: only an online delivery is sent, once, after it was planned."""
    if mode != DeliveryMode.ONLINE:
        raise FailedPrecondition("an on-site delivery is not sent online")
    if status != DeliveryStatus.PLANNED:
        raise FailedPrecondition(f"the delivery was already {status}")


def check_deliverable(mode: str, status: str) -> None:
    """4.3.1-4.3.2: an on-site delivery takes place as planned; an online one once its materials were sent."""
    expected = DeliveryStatus.SENT if mode == DeliveryMode.ONLINE else DeliveryStatus.PLANNED
    if status != expected:
        raise FailedPrecondition(
            f"an {mode} delivery is recorded once it is {expected.value}; this one is {status}"
        )


class ChannelNotTested(FailedPrecondition):
    """4.2.2: an online delivery needs a secure, stable channel tested in advance."""

    def __init__(self) -> None:
        super().__init__("channel_tested: the online channel must be tested before the delivery (4.2.2)")


# --- parsing ----------------------------------------------------------------------------------------


def money(field: str, value: object) -> Decimal:
    """A non-negative amount with at most two decimals; empty is 0."""
    if value is None or value == "":
        return Decimal("0.00")
    if isinstance(value, float):
        value = repr(value)
    try:
        amount = Decimal(str(value).strip())
    except InvalidOperation:
        raise InvalidArgument(field, f"{value!r} is not a decimal amount") from None
    if not amount.is_finite() or amount < 0:
        raise InvalidArgument(field, "must be a non-negative amount")
    if amount >= MONEY_LIMIT:
        raise InvalidArgument(field, "is too large")
    if amount != amount.quantize(Decimal("0.01")):
        raise InvalidArgument(field, "has more than two decimal places")
    return amount.quantize(Decimal("0.01"))


def percent(field: str, value: object) -> int:
    """Percent complete: a whole number from 0 to 100."""
    if isinstance(value, bool):
        raise InvalidArgument(field, "must be a whole number from 0 to 100")
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        raise InvalidArgument(field, f"{value!r} is not a number") from None
    if not number.is_finite() or number != number.to_integral_value() or not 0 <= number <= 100:
        raise InvalidArgument(field, "must be a whole number from 0 to 100")
    return int(number)


def http_link(field: str, value: object) -> str:
    """An http(s) URL, or empty."""
    url = optional_text(field, value, 1000)
    if url and not re.fullmatch(r"https?://\S+", url):
        raise InvalidArgument(field, f"{url!r} is not an http(s) link")
    return url


def split_fields(line: str, count: int) -> list[str]:
    """`a | b | c` → up to `count` stripped parts, missing ones empty (the line format diagrams use)."""
    parts = [p.strip() for p in line.split("|", count - 1)]
    return parts + [""] * (count - len(parts))


# --- commands ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Member:
    """3.1.1: one person in one role, with the duties of that role."""

    name: str
    role: Role
    duties: str


@dataclass(frozen=True)
class Team:
    """3.1.1: exactly one project manager; a person may hold one entry per role; duties default per role."""

    members: tuple[Member, ...]

    @classmethod
    def parse(cls, *, members: Iterable[tuple[object, object, object]]) -> Self:
        """`members` as (name, role, duties) entries."""
        entries = [(name, choice("members.role", role, Role), duties) for name, role, duties in members]
        if not entries:
            raise InvalidArgument("members", "a team needs at least a project manager")
        managers = [role for _, role, _ in entries if role is Role.PROJECT_MANAGER]
        if len(managers) != 1:
            raise InvalidArgument(
                "project_manager", f"a team has exactly one project manager, not {len(managers)}"
            )
        result: list[Member] = []
        seen: set[tuple[str, Role]] = set()
        for raw_name, role, raw_duties in entries:
            name = required_text("members.name", raw_name, NAME_LIMIT)
            key = (name.lower(), role)
            if key in seen:
                continue
            seen.add(key)
            duties = optional_text("duties", raw_duties, TEXT_LIMIT) or STANDARD_DUTIES[role]
            result.append(Member(name, role, duties))
        return cls(tuple(result))


def duties_by_role(field: str, value: object) -> dict[Role, str]:
    """Duties from a diagram: a mapping role → text, or lines `role: duties`; plain text applies to all."""
    if value is None or value == "":
        return {}
    if isinstance(value, dict):
        return {choice(field, k, Role): optional_text(field, v, TEXT_LIMIT) for k, v in value.items()}
    result: dict[Role, str] = {}
    general: list[str] = []
    for line in lines(field, value, TEXT_LIMIT):
        head, sep, rest = line.partition(":")
        key = head.strip().lower().replace(" ", "_")
        if sep and key in {r.value for r in Role}:
            result[Role(key)] = rest.strip()
        else:
            general.append(line)
    if general:
        for role in Role:
            result.setdefault(role, "; ".join(general))
    return result


def kickoff_attendance(attendees: Sequence[str], project_manager: str | None) -> None:
    """3.1.2: the project manager holds the kick-off, so the team is formed first and the PM attends."""
    if project_manager is None:
        raise FailedPrecondition("form the team (3.1.1) before the kick-off meeting")
    if not attendees:
        raise InvalidArgument("attendees", "is required")
    if project_manager.lower() not in {a.lower() for a in attendees}:
        raise InvalidArgument(
            "attendees", f"the project manager {project_manager!r} must attend the kick-off"
        )


@dataclass(frozen=True)
class NewDocument:
    """3.2.1: a document for the project data repository, classified."""

    title: str
    category: DocumentCategory
    source: str
    classification: Classification
    link: str = ""

    @classmethod
    def parse(
        cls, *, title: object, category: object, source: object, classification: object, link: object
    ) -> Self:
        """Without a classification, the category's default (`default_classification`)."""
        kind = choice("category", category, DocumentCategory)
        return cls(
            title=required_text("title", title, 500),
            category=kind,
            source=required_text("source", source, 300),
            classification=optional_choice("classification", classification, Classification)
            or default_classification(kind),
            link=http_link("link", link),
        )


def documents_from_lines(field: str, value: object, category: DocumentCategory) -> list[NewDocument]:
    """3.2.1 from a diagram: one document per line, `title | source | classification | link` (the source
    defaults to where the category's data comes from); errors name `field`."""
    result = []
    for line in lines(field, value, TEXT_LIMIT):
        title, source, classification, link = split_fields(line, 4)
        with renamed_fields(title=field, source=field, classification=field, link=field):
            document = NewDocument.parse(
                title=title,
                category=category,
                source=source or _DEFAULT_SOURCE[category],
                classification=classification,
                link=link,
            )
        result.append(document)
    return result


_DEFAULT_SOURCE = {
    DocumentCategory.INDUSTRY: "industry research",
    DocumentCategory.CLIENT_INTERNAL: "client",
    DocumentCategory.MARKET: "market research",
}


@dataclass(frozen=True)
class NewFinding:
    """3.2.3: a problem, opportunity or risk found in the analysis; only a risk has a risk category."""

    kind: FindingKind
    description: str
    risk_category: str = ""

    @classmethod
    def parse(cls, *, kind: object, description: object, risk_category: object = "") -> Self:
        finding_kind = choice("kind", kind, FindingKind)
        text = required_text("description", description, TEXT_LIMIT)
        category = optional_choice("risk_category", risk_category, RiskCategory)
        if category is not None and finding_kind is not FindingKind.RISK:
            raise InvalidArgument("risk_category", "only a risk has a risk category")
        return cls(finding_kind, text, category.value if category else "")


@dataclass(frozen=True)
class Artefact:
    """3.3.1: a flow chart, mind map or other illustration of a solution, by link."""

    kind: ArtefactKind
    title: str
    link: str

    @classmethod
    def parse(cls, *, kind: object, title: object, link: object) -> Self:
        """Without a title, the kind names it."""
        artefact_kind = choice("kind", kind, ArtefactKind)
        url = http_link("link", link)
        if not url:
            raise InvalidArgument("link", "is required")
        name = optional_text("title", title, 300) or artefact_kind.value.replace("_", " ")
        return cls(artefact_kind, name, url)


def check_review(verdict: Verdict, comments: str, field: str = "review_comments") -> None:
    """A verdict asking for revision says what to revise (3.3.2, 4.1.2)."""
    if verdict is Verdict.REVISE and not comments.strip():
        raise InvalidArgument(field, "say what to revise")


@dataclass(frozen=True)
class PlannedTask:
    """3.4.1: a task of the work plan with its planned dates and budget."""

    name: str
    planned_start: date
    planned_end: date
    budget: Decimal

    @classmethod
    def parse(cls, *, name: object, planned_start: object, planned_end: object, budget: object) -> Self:
        task = cls(
            name=required_text("name", name, 300),
            planned_start=iso_date("planned_start", planned_start),
            planned_end=iso_date("planned_end", planned_end),
            budget=money("budget", budget),
        )
        if task.planned_end < task.planned_start:
            raise InvalidArgument("planned_end", "must not be before planned_start")
        return task


@dataclass(frozen=True)
class TaskUpdate:
    """3.4.1: what a progress report sets; None leaves a field as it is."""

    actual_start: date | None = None
    actual_end: date | None = None
    actual_cost: Decimal | None = None
    progress: int | None = None

    @classmethod
    def parse(
        cls,
        *,
        actual_start: object = None,
        actual_end: object = None,
        actual_cost: object = None,
        progress: object = None,
    ) -> Self:
        """Each value given (not None) is parsed; None means "not reported"."""
        return cls(
            actual_start=None if actual_start is None else iso_date("actual_start", actual_start),
            actual_end=None if actual_end is None else iso_date("actual_end", actual_end),
            actual_cost=None if actual_cost is None else money("actual_cost", actual_cost),
            progress=None if progress is None else percent("progress", progress),
        )


def baseline_tasks(service_start: date, milestones: Sequence[tuple[str, date]]) -> list[PlannedTask]:
    """3.4.1: the proposal's schedule as a baseline: one task per milestone, from the previous milestone
    (or the service start) to its due date. Budgets are not in the contract: they start at 0."""
    tasks = []
    start = service_start
    for name, due in sorted(milestones, key=lambda m: m[1]):
        begin = min(start, due)
        tasks.append(
            PlannedTask.parse(
                name=f"Reach milestone: {name}", planned_start=begin, planned_end=due, budget="0"
            )
        )
        start = due
    return tasks


@dataclass(frozen=True)
class TaskState:
    """What a progress update may change, and the rules it must keep."""

    actual_start: date | None
    actual_end: date | None
    actual_cost: Decimal
    progress: int

    def check(self) -> None:
        if self.actual_end is not None and self.actual_start is None:
            raise InvalidArgument("actual_start", "a finished task needs its actual start")
        if self.actual_start and self.actual_end and self.actual_end < self.actual_start:
            raise InvalidArgument("actual_end", "must not be before actual_start")
        if self.progress == 100 and self.actual_end is None:
            raise InvalidArgument("actual_end", "a task at 100 % needs its actual end date")
        if self.actual_end is not None and self.progress != 100:
            raise InvalidArgument("progress", "a task with an actual end date is at 100 %")
        if self.progress > 0 and self.actual_start is None:
            raise InvalidArgument("actual_start", "a task with progress needs its actual start")


class Band(StrEnum):
    """3.4.2, 6.4.2: the band `warning_thresholds.dmn` puts an indicator in."""

    GREEN = "green"
    AMBER = "amber"
    RED = "red"


WARNING_BANDS = (Band.AMBER, Band.RED)
"""Bands that count as a breach (6.4.2: amber and red raise a warning)."""


def breached(band: str) -> bool:
    return band in WARNING_BANDS


def check_within_service(field: str, value: date, start: date | None, end: date | None) -> None:
    """Dates of the work plan stay within the contracted service period."""
    if start is not None and value < start:
        raise InvalidArgument(field, f"{value} is before the service start {start}")
    if end is not None and value > end:
        raise InvalidArgument(field, f"{value} is after the contract's deadline {end}")


@dataclass(frozen=True)
class DeliverableItem:
    """4.1.1: a deliverable by name, with a link to it."""

    name: str
    link: str = ""

    @classmethod
    def parse(cls, *, name: object, link: object = "") -> Self:
        return cls(required_text("name", name, 300), http_link("link", link))


def deliverable_items(field: str, value: object) -> list[DeliverableItem]:
    """4.1.1 from a diagram: one deliverable per line, `name | link`; errors name `field`."""
    items = []
    for line in lines(field, value, TEXT_LIMIT):
        name, link = split_fields(line, 2)
        with renamed_fields(name=field, link=field):
            items.append(DeliverableItem.parse(name=name, link=link))
    return items


def check_deliverables(items: Sequence[DeliverableItem]) -> None:
    if not items:
        raise InvalidArgument("deliverables", "name at least one deliverable")
    seen: set[str] = set()
    for item in items:
        if item.name.lower() in seen:
            raise InvalidArgument("deliverables", f"{item.name!r} is listed twice")
        seen.add(item.name.lower())


def missing_contract_deliverables(contracted: Sequence[str], items: Sequence[DeliverableItem]) -> list[str]:
    """The contract's deliverables that no compiled item is named after (case-insensitive)."""
    have = {i.name.strip().lower() for i in items}
    return [name for name in contracted if name.strip().lower() not in have]


@dataclass(frozen=True)
class MaterialsReview:
    """4.1.2: logic, consistency, accuracy and contract conformance; a failed review says what to revise."""

    logic_ok: bool
    consistency_ok: bool
    accuracy_ok: bool
    contract_conformance_ok: bool
    comments: str

    @classmethod
    def parse(
        cls,
        *,
        logic_ok: object,
        consistency_ok: object,
        accuracy_ok: object,
        contract_conformance_ok: object,
        comments: object,
    ) -> Self:
        review = cls(
            logic_ok=yes_no("logic_ok", logic_ok),
            consistency_ok=yes_no("consistency_ok", consistency_ok),
            accuracy_ok=yes_no("accuracy_ok", accuracy_ok),
            contract_conformance_ok=yes_no("contract_conformance_ok", contract_conformance_ok),
            comments="" if comments is None else str(comments).strip(),
        )
        if not review.approved and not review.comments:
            raise InvalidArgument("review_comments", "say what failed the review and what to revise")
        return review

    @property
    def approved(self) -> bool:
        return self.logic_ok and self.consistency_ok and self.accuracy_ok and self.contract_conformance_ok


@dataclass(frozen=True)
class OnsitePlan:
    """4.2.1: time, place and attendees agreed in advance; the preparations made."""

    delivery_time: datetime
    place: str
    attendees: tuple[str, ...]
    preparations: tuple[str, ...]

    @classmethod
    def parse(cls, *, delivery_time: object, place: object, attendees: object, preparations: object) -> Self:
        """Attendees and preparations: lists, or text separated by commas, semicolons or new lines."""
        plan = cls(
            delivery_time=iso_datetime("delivery_time", delivery_time),
            place=required_text("delivery_place", place, 500),
            attendees=names("attendees", attendees),
            preparations=entries("preparations", preparations, ",;\n", TEXT_LIMIT),
        )
        if not plan.attendees:
            raise InvalidArgument("attendees", "is required")
        return plan
