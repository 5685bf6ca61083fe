"""Delivery rules as plain code (regulation chapters 3 and 4): what makes a team, a plan, a review, a
delivery or an acceptance round valid, and which state a project or a record may move to next.

Values arrive from gRPC messages and from diagrams (job parameters, where lists are often text with one
entry per line or comma-separated names); the parsers here accept both and name the field they refuse.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Self

from consultflow.platform.errors import FailedPrecondition, InvalidArgument
from consultflow.platform.inputs import (
    choice,
    iso_date,
    lines,
    names,
    optional_choice,
    optional_date,
    optional_text,
    renamed_fields,
    required_text,
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


class ReviewCriterion(StrEnum):
    """3.3.2: what the experts review a solution for (合理性、可行性、創新性、風險應對措施)."""

    SOUNDNESS = "soundness"
    FEASIBILITY = "feasibility"
    INNOVATION = "innovation"
    RISK_RESPONSE = "risk_response"


class CriterionVerdict(StrEnum):
    """3.3.2: the experts' finding on one review criterion."""

    MET = "met"
    NOT_MET = "not_met"


class SolutionStatus(StrEnum):
    """3.3: a solution version awaits its expert review, is superseded by a newer version, or was reviewed."""

    SUBMITTED = "submitted"
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
    COORDINATION = "coordination"


_INTERNAL_KINDS = {
    CommunicationKind.REPORT,
    CommunicationKind.MESSAGE,
    CommunicationKind.MEETING,
    CommunicationKind.COORDINATION,
}


def check_communication(direction: Direction, kind: CommunicationKind) -> None:
    """Reports, messages and meetings are internal (3.5.1); everything with the client or outside experts
    and partners is external (3.5.2)."""
    if (kind in _INTERNAL_KINDS) != (direction is Direction.INTERNAL):
        raise InvalidArgument("kind", f"{kind.value!r} is not {direction.value} communication")


@dataclass(frozen=True)
class NewCommunication:
    """3.5.1, 3.5.2: an entry for the communication log; a change of needs is a `NewChangeRequest`."""

    direction: Direction
    kind: CommunicationKind
    counterpart: str
    summary: str

    @classmethod
    def parse(cls, *, direction: object, kind: object, counterpart: object, summary: object) -> Self:
        entry = cls(
            direction=choice("direction", direction, Direction),
            kind=choice("kind", kind, CommunicationKind),
            counterpart=optional_text("counterpart", counterpart, 300),
            summary=required_text("summary", summary, TEXT_LIMIT),
        )
        if entry.kind is CommunicationKind.CHANGE_REQUEST:
            raise InvalidArgument(
                "kind", "record a change of needs with RequestChange, which starts its assessment"
            )
        check_communication(entry.direction, entry.kind)
        return entry


@dataclass(frozen=True)
class NewChangeRequest:
    """3.5.2: the client's change of needs, and who asked (the client unless named)."""

    description: str
    requested_by: str

    @classmethod
    def parse(cls, *, description: object, requested_by: object) -> Self:
        return cls(
            description=required_text("description", description, TEXT_LIMIT),
            requested_by=optional_text("requested_by", requested_by, NAME_LIMIT) or "client",
        )


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


@dataclass(frozen=True)
class ChangeResponse:
    """3.5.2: the decision on a change request and the answer given to the client."""

    decision: ChangeDecision
    response: str

    @classmethod
    def parse(cls, *, decision: object, response: object) -> Self:
        """The answer is required once the request may still be answered (`check_change_response`)."""
        return cls(
            decision=choice("decision", decision, ChangeDecision),
            response=optional_text("change_response", response, TEXT_LIMIT),
        )


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
class NewKickoff:
    """3.1.2: the kick-off meeting: when, who attended, the briefing, the rules agreed, the materials."""

    kickoff_date: date
    attendees: tuple[str, ...]
    briefing: str
    rules_agreed: str
    materials_handed_out: tuple[str, ...]

    @classmethod
    def parse(
        cls,
        *,
        kickoff_date: object,
        attendees: object,
        briefing: object,
        rules_agreed: object,
        materials_handed_out: object,
    ) -> Self:
        return cls(
            kickoff_date=iso_date("kickoff_date", kickoff_date),
            attendees=names("attendees", attendees),
            briefing=required_text("briefing", briefing, TEXT_LIMIT),
            rules_agreed=required_text("rules_agreed", rules_agreed, TEXT_LIMIT),
            materials_handed_out=names("materials_handed_out", materials_handed_out),
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
class NewSiteVisit:
    """3.2.2: who visited, when, whom they interviewed, which processes they saw, what they observed."""

    visit_date: date
    visitors: tuple[str, ...]
    interviewees: tuple[str, ...]
    processes_observed: str
    observations: str

    @classmethod
    def parse(
        cls,
        *,
        visit_date: object,
        visitors: object,
        interviewees: object,
        processes_observed: object,
        observations: object,
    ) -> Self:
        return cls(
            visit_date=iso_date("visit_date", visit_date),
            visitors=names("visitors", visitors),
            interviewees=names("interviewees", interviewees),
            processes_observed=optional_text("processes_observed", processes_observed, TEXT_LIMIT),
            observations=required_text("observations", observations, TEXT_LIMIT),
        )

    def check(self, today: date) -> None:
        """A visit is recorded after it took place, with the interviews or the processes observed."""
        if self.visit_date > today:
            raise InvalidArgument("visit_date", "a visit is recorded after it took place, not before")
        if not self.interviewees and not self.processes_observed:
            raise InvalidArgument("interviewees", "record the interviews or the processes observed")


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


@dataclass(frozen=True)
class CriterionAssessment:
    """3.3.2: the experts' verdict and comment on one review criterion; a criterion not met says why."""

    criterion: ReviewCriterion
    verdict: CriterionVerdict
    comments: str

    @classmethod
    def parse(cls, *, criterion: ReviewCriterion, verdict: object, comments: object) -> Self:
        field = criterion.value
        assessment = cls(
            criterion=criterion,
            verdict=choice(f"{field}_verdict", verdict, CriterionVerdict),
            comments=optional_text(f"{field}_comments", comments, TEXT_LIMIT),
        )
        if assessment.verdict is CriterionVerdict.NOT_MET and not assessment.comments:
            raise InvalidArgument(f"{field}_comments", "say why the criterion is not met")
        return assessment


@dataclass(frozen=True)
class ExpertReview:
    """3.3.2: the expert review of a solution version: approved, or revise saying what to revise; with a
    verdict and comment per review criterion. A review without criteria is one recorded by a diagram that
    did not yet ask for them (a running engagement); a review that gives some criteria gives all four."""

    verdict: Verdict
    comments: str
    reviewer: str
    criteria: tuple[CriterionAssessment, ...] = ()

    @classmethod
    def parse(
        cls,
        *,
        verdict: object,
        comments: object,
        reviewer: object,
        criteria: Mapping[ReviewCriterion, tuple[object, object]] | None = None,
    ) -> Self:
        """`criteria`: criterion → (verdict, comments); a criterion without a verdict is not given."""
        given = {c: v for c, v in (criteria or {}).items() if v[0] not in (None, "")}
        missing = [c.value for c in ReviewCriterion if c not in given]
        if given and missing:
            raise InvalidArgument(f"{missing[0]}_verdict", "review every criterion (3.3.2)")
        review = cls(
            verdict=choice("verdict", verdict, Verdict),
            comments=optional_text("review_comments", comments, TEXT_LIMIT),
            reviewer=optional_text("reviewer", reviewer, NAME_LIMIT),
            criteria=tuple(
                CriterionAssessment.parse(criterion=c, verdict=given[c][0], comments=given[c][1])
                for c in ReviewCriterion
                if c in given
            ),
        )
        if review.verdict is Verdict.REVISE and not review.comments:
            raise InvalidArgument("review_comments", "say what to revise")
        return review

    def criterion(self, criterion: ReviewCriterion) -> CriterionAssessment | None:
        return next((a for a in self.criteria if a.criterion is criterion), None)


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
class NewMeeting:
    """3.4.1, 3.5.1: a project meeting: progress reported, problems, decisions, internal updates."""

    held_on: date | None
    """None: today."""
    progress_report: str
    problems: str
    decisions: tuple[str, ...]
    internal_updates: str

    @classmethod
    def parse(
        cls,
        *,
        held_on: object,
        progress_report: object,
        problems: object,
        decisions: object,
        internal_updates: object,
    ) -> Self:
        return cls(
            held_on=optional_date("held_on", held_on),
            progress_report=required_text("progress_report", progress_report, TEXT_LIMIT),
            problems=optional_text("problems", problems, TEXT_LIMIT),
            decisions=lines("decisions", decisions, TEXT_LIMIT),
            internal_updates=optional_text("internal_updates", internal_updates, TEXT_LIMIT),
        )


@dataclass(frozen=True)
class NewCoordination:
    """3.5.1: work that needs another department's support, agreed with that department."""

    departments: tuple[str, ...]
    support_needed: str
    outcome: str

    @classmethod
    def parse(cls, *, departments: object, support_needed: object, outcome: object) -> Self:
        named = names("departments", departments)
        if not named:
            raise InvalidArgument("departments", "name at least one department")
        return cls(
            departments=tuple(named),
            support_needed=required_text("support_needed", support_needed, TEXT_LIMIT),
            outcome=required_text("coordination_outcome", outcome, TEXT_LIMIT),
        )


@dataclass(frozen=True)
class NewCorrectiveAction:
    """3.4.2: the corrective action taken after an indicator breach, and who owns it."""

    action: str
    owner: str

    @classmethod
    def parse(cls, *, action: object, owner: object) -> Self:
        return cls(
            action=required_text("corrective_action", action, TEXT_LIMIT),
            owner=required_text("action_owner", owner, NAME_LIMIT),
        )


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
