"""Risk rules as plain code (regulation ch. 6): the register's vocabularies, what a risk, an assessment, a
response and a warning must hold, and when an assessment raises a warning.

The risk matrix (6.2.3) and the warning thresholds (6.4.2) are not here: they live in `bpmn/*.dmn` and
reach these rules through the `Tables` protocol, so analysts change them in one place.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from typing import Protocol

from consultflow.platform.errors import FailedPrecondition, InvalidArgument
from consultflow.platform.inputs import (
    choice,
    iso_date,
    number,
    optional_choice,
    optional_text,
    required_text,
    yes_no,
)


class Category(StrEnum):
    """6.1.2: risks classified by nature and impact."""

    MARKET = "market"
    TECHNICAL = "technical"
    MANAGEMENT = "management"
    PERSONNEL = "personnel"
    FINANCIAL = "financial"
    OTHER = "other"


class Method(StrEnum):
    """6.1.1: how a risk was identified."""

    BRAINSTORMING = "brainstorming"
    DELPHI = "delphi"
    CHECKLIST = "checklist"
    OTHER = "other"  # the text lists its methods with 等 (etc.)


class Objective(StrEnum):
    """6.2.2: the project objective a risk would affect (進度、質量、成本、客戶滿意度等)."""

    SCHEDULE = "schedule"
    QUALITY = "quality"
    COST = "cost"
    SATISFACTION = "satisfaction"
    OTHER = "other"


class Stage(StrEnum):
    """6.1.1: the stage of the engagement where a risk was found, in the order they happen."""

    INTAKE = "intake"
    IMPLEMENTATION = "implementation"
    DELIVERY = "delivery"
    FOLLOW_UP = "follow_up"

    @property
    def order(self) -> int:
        return list(Stage).index(self)


class Strategy(StrEnum):
    """6.3: the four responses."""

    AVOID = "avoid"
    MITIGATE = "mitigate"
    TRANSFER = "transfer"
    ACCEPT = "accept"


class RegisterStatus(StrEnum):
    """Ch. 6: an engagement's register is open while its risk management runs."""

    OPEN = "open"
    CLOSED = "closed"


class RiskStatus(StrEnum):
    """6.1-6.3: registered → assessed → responded (a response may be re-planned); closed at any time."""

    REGISTERED = "registered"
    ASSESSED = "assessed"
    RESPONDED = "responded"
    CLOSED = "closed"


class ResponseStatus(StrEnum):
    """6.3, 6.4.1: a response plan's measures are planned, then done (effective or not); a plan whose
    deviation from the prescribed strategy management rejected is void and never done."""

    PLANNED = "planned"
    DONE = "done"
    REJECTED = "rejected"


class Deviation(StrEnum):
    """6.3: whether a plan keeps to the strategy the matrix prescribes. A different strategy needs a
    recorded reason and awaits approval [assumption: the text prescribes the strategy of its cells and
    says nothing of exceptions; an exception approved by management keeps the rule and the record]."""

    NONE = "none"
    AWAITING_APPROVAL = "awaiting_approval"
    APPROVED = "approved"
    REJECTED = "rejected"


class Level(StrEnum):
    """6.4.2 [assumption]: the bands of a key risk indicator, worst last."""

    GREEN = "green"
    AMBER = "amber"
    RED = "red"

    @property
    def severity(self) -> int:
        return list(Level).index(self)


class WarningStatus(StrEnum):
    """6.4.2: a raised warning waits for someone to acknowledge it (escalations keep it raised)."""

    RAISED = "raised"
    ACKNOWLEDGED = "acknowledged"


class Trigger(StrEnum):
    """What raised a warning: an indicator reading, or an assessment whose priority crossed a band."""

    INDICATOR = "indicator"
    RISK_LEVEL = "risk_level"


RISK_PRIORITY_INDICATOR = "risk_priority"
"""The key risk indicator of warning_thresholds.dmn that an assessment's priority is read against."""


@dataclass(frozen=True)
class MatrixCell:
    """One likelihood × impact cell of the risk matrix as the decision table gives it."""

    likelihood: str
    impact: str
    level: str
    priority: int
    suggested_strategy: Strategy
    strategy_basis: str


class Tables(Protocol):
    """The decision tables the rules read (implemented over bpmn/*.dmn by `risk.adapters`)."""

    def likelihoods(self) -> list[str]: ...

    def impacts(self) -> list[str]: ...

    def cell(self, likelihood: str, impact: str) -> MatrixCell: ...

    def indicators(self) -> list[str]: ...

    def level(self, indicator: str, value: float) -> Level: ...


@dataclass(frozen=True)
class NewRisk:
    """6.1: a risk as found; category and identification method may wait for the assessment."""

    engagement_id: str
    description: str
    stage: Stage
    category: Category | None = None
    identification_method: Method | None = None
    source: str = ""
    owner: str = ""
    request_id: str = ""

    @classmethod
    def parse(
        cls,
        *,
        engagement_id: str,
        description: str,
        stage: str,
        category: str = "",
        identification_method: str = "",
        source: str = "",
        owner: str = "",
        request_id: str = "",
    ) -> NewRisk:
        """Validates raw values."""
        return cls(
            engagement_id=required_text("engagement_id", engagement_id, 100),
            description=required_text("description", description, 5000),
            stage=choice("stage", stage, Stage),
            category=optional_choice("category", category, Category),
            identification_method=optional_choice("identification_method", identification_method, Method),
            source=optional_text("source", source, 300),
            owner=optional_text("owner", owner, 200),
            request_id=optional_text("request_id", request_id, 200),
        )


@dataclass(frozen=True)
class Assessment:
    """6.2: the likelihood and impact a person judged, with the classification (6.1.2) it confirms."""

    risk_id: str
    likelihood: str
    impact: str
    category: Category | None
    identification_method: Method | None
    likelihood_basis: str = ""  # 6.2.1: history, industry experience, current environment
    affected_objective: Objective | None = None  # 6.2.2

    @classmethod
    def parse(
        cls,
        *,
        risk_id: str,
        likelihood: str,
        impact: str,
        category: str = "",
        identification_method: str = "",
        likelihood_basis: str = "",
        affected_objective: str = "",
    ) -> Assessment:
        """Validates the classification; likelihood and impact are checked against the matrix (`assess`)."""
        return cls(
            risk_id=required_text("risk_id", risk_id, 100),
            likelihood=likelihood.strip(),
            impact=impact.strip(),
            category=optional_choice("category", category, Category),
            identification_method=optional_choice("identification_method", identification_method, Method),
            likelihood_basis=optional_text("likelihood_basis", likelihood_basis, 5000),
            affected_objective=optional_choice("affected_objective", affected_objective, Objective),
        )

    def classification(self, category: str, identification_method: str) -> tuple[str, str]:
        """6.1.1-6.1.2: the category and method the assessment confirms: the ones it gives, else the
        risk's own (`category`, `identification_method`); a risk that has none must be given them."""
        chosen_category = self.category.value if self.category else category
        chosen_method = (
            self.identification_method.value if self.identification_method else identification_method
        )
        if not chosen_category:
            raise InvalidArgument("category", "is required to assess a risk that has none (6.1.2)")
        if not chosen_method:
            raise InvalidArgument(
                "identification_method", "is required to assess a risk that has none (6.1.1)"
            )
        return chosen_category, chosen_method


NO_RISK_FOUND = {"", "無", "none", "無 none"}


@dataclass(frozen=True)
class IdentificationSession:
    """6.1.1: an organised identification at a stage: the method, the team members, department staff and
    experts who took part, and the risks they found (none is a finding too)."""

    engagement_id: str
    stage: Stage
    method: Method
    team: str
    departments: str
    experts: str
    risks: tuple[str, ...]

    @classmethod
    def parse(
        cls,
        *,
        engagement_id: str,
        stage: str,
        method: str,
        team: str,
        departments: str,
        experts: str,
        risks: str,
    ) -> IdentificationSession:
        """Validates raw values; `risks` lists the risks found separated by semicolons."""
        found = tuple(
            r.strip() for r in risks.replace("；", ";").split(";") if r.strip().lower() not in NO_RISK_FOUND
        )
        for description in found:
            required_text("risks", description, 5000)
        return cls(
            engagement_id=required_text("engagement_id", engagement_id, 100),
            stage=choice("stage", stage, Stage),
            method=choice("method", method, Method),
            team=required_text("team", team, 1000),
            departments=required_text("departments", departments, 1000),
            experts=required_text("experts", experts, 1000),
            risks=found,
        )


def assess(tables: Tables, likelihood: str, impact: str) -> MatrixCell:
    """6.2.3: the matrix cell of a likelihood and an impact; the values must be the table's own."""
    _one_of("likelihood", likelihood, tables.likelihoods(), " (6.2.1)")
    _one_of("impact", impact, tables.impacts(), " (6.2.2)")
    return tables.cell(likelihood, impact)


def _one_of(field: str, value: str, allowed: list[str], note: str = "") -> None:
    """Checks a value against the values a decision table names."""
    if value not in allowed:
        problem = "is required: one of" if not value else f"{value!r} is not one of"
        raise InvalidArgument(field, f"{problem} {', '.join(allowed)}{note}")


def warning_for_new_priority(tables: Tables, previous: int | None, current: int) -> Level | None:
    """6.4.2 [assumption]: a risk-level change is a key risk indicator. An assessment whose priority
    falls in a worse band of the thresholds table than the previous assessment's (a first assessment
    counts from green) raises a warning at the new band; an unchanged or better band raises none."""
    before = Level.GREEN if previous is None else tables.level(RISK_PRIORITY_INDICATOR, previous)
    now = tables.level(RISK_PRIORITY_INDICATOR, current)
    return now if now.severity > before.severity else None


@dataclass(frozen=True)
class ResponseChoice:
    """6.3: the strategy a person chose. Every strategy but accept needs measures, an owner and a due
    date; accept (6.3.4: no special measures, respond if it happens) may still name some. A strategy
    other than the prescribed one carries the reason for the deviation (`deviation`)."""

    risk_id: str
    strategy: Strategy
    measures: str
    owner: str
    due: date | None
    decided_by: str = ""
    deviation_reason: str = ""

    @classmethod
    def parse(
        cls,
        *,
        risk_id: str,
        strategy: str,
        measures: str,
        owner: str,
        due_date: str,
        decided_by: str = "",
        deviation_reason: str = "",
    ) -> ResponseChoice:
        """Validates raw values; whether a deviation reason is needed depends on the risk (`deviation`)."""
        chosen = choice("strategy", strategy, Strategy)
        measures_text = optional_text("measures", measures, 5000)
        needs_measures = chosen is not Strategy.ACCEPT or bool(measures_text)
        if needs_measures:
            required_text("measures", measures_text)
        return cls(
            risk_id=required_text("risk_id", risk_id, 100),
            strategy=chosen,
            measures=measures_text,
            owner=(required_text if needs_measures else optional_text)("owner", owner, 200),
            due=iso_date("due_date", due_date) if needs_measures or due_date.strip() else None,
            decided_by=optional_text("decided_by", decided_by, 200),
            deviation_reason=optional_text("deviation_reason", deviation_reason, 5000),
        )

    def deviation(self, prescribed: str) -> Deviation:
        """6.3.1-6.3.4: the matrix prescribes a strategy for the risk's cell (`prescribed`, the decision
        table's `suggested_strategy`). Choosing it is no deviation; choosing another needs a recorded
        reason, and the plan then awaits management's approval (`DeviationDecision`) [assumption]."""
        if not prescribed or self.strategy.value == prescribed:
            return Deviation.NONE
        if not self.deviation_reason:
            raise InvalidArgument(
                "deviation_reason",
                f"is required: the risk matrix prescribes {prescribed!r}, not {self.strategy.value!r} (6.3)",
            )
        return Deviation.AWAITING_APPROVAL


@dataclass(frozen=True)
class DeviationDecision:
    """6.3 [assumption]: management approves or rejects a plan that deviates from the prescribed
    strategy; a rejection says why, so the next plan can answer it."""

    response_id: str
    approved: bool
    decided_by: str
    note: str

    @classmethod
    def parse(
        cls, *, response_id: str, approved: object, decided_by: str = "", note: str = ""
    ) -> DeviationDecision:
        """Validates raw values; a rejection needs its note."""
        verdict = yes_no("deviation_approved", approved)
        return cls(
            response_id=required_text("response_id", response_id, 100),
            approved=verdict,
            decided_by=optional_text("decided_by", decided_by, 200),
            note=(optional_text if verdict else required_text)("deviation_note", note, 5000),
        )

    def outcome(self) -> Deviation:
        return Deviation.APPROVED if self.approved else Deviation.REJECTED


def check_deviation_awaits(deviation: Deviation, response_id: str) -> None:
    """6.3 [assumption]: only a plan whose deviation awaits approval is approved or rejected, once."""
    if deviation is not Deviation.AWAITING_APPROVAL:
        raise FailedPrecondition(
            f"response {response_id!r} has no deviation awaiting approval (it is {deviation.value!r})"
        )


@dataclass(frozen=True)
class Occurrence:
    """6.3.4: a risk happened; whoever saw it says what happened, and the response follows."""

    risk_id: str
    description: str
    reported_by: str = ""

    @classmethod
    def parse(cls, *, risk_id: str, description: str, reported_by: str = "") -> Occurrence:
        """Validates raw values."""
        return cls(
            risk_id=required_text("risk_id", risk_id, 100),
            description=required_text("description", description, 5000),
            reported_by=optional_text("reported_by", reported_by, 200),
        )


@dataclass(frozen=True)
class ReviewFindings:
    """6.4.1: what a periodic review found."""

    engagement_id: str
    measures_carried_out: bool
    measures_effective: bool
    new_risk_found: bool
    new_risk_description: str
    reviewed_by: str = ""
    notes: str = ""

    @classmethod
    def parse(
        cls,
        *,
        engagement_id: str,
        measures_carried_out: object,
        measures_effective: object,
        new_risk_found: object,
        new_risk_description: str,
        reviewed_by: str = "",
        notes: str = "",
    ) -> ReviewFindings:
        """Validates raw values; a new risk found needs its description."""
        carried_out = yes_no("measures_carried_out", measures_carried_out)
        effective = yes_no("measures_effective", measures_effective)
        found = yes_no("new_risk_found", new_risk_found)
        engagement = required_text("engagement_id", engagement_id, 100)
        description = (required_text if found else optional_text)(
            "new_risk_description", new_risk_description, 5000
        )
        return cls(
            engagement_id=engagement,
            measures_carried_out=carried_out,
            measures_effective=effective,
            new_risk_found=found,
            new_risk_description=description,
            reviewed_by=optional_text("reviewed_by", reviewed_by, 200),
            notes=optional_text("notes", notes, 5000),
        )


@dataclass(frozen=True)
class Reading:
    """6.4.2 [assumption]: a key risk indicator's value, with the band the reporter saw (if any)."""

    engagement_id: str
    indicator: str
    value: float
    reported: Level | None = None
    risk_id: str = ""
    request_id: str = ""

    @classmethod
    def parse(
        cls,
        *,
        engagement_id: str,
        indicator: str,
        value: object,
        status: str = "",
        risk_id: str = "",
        request_id: str = "",
    ) -> Reading:
        """Validates raw values; the indicator is checked against the thresholds table (`reading_level`)."""
        reading_value = number("value", value)
        reported = optional_choice("status", status, Level)
        return cls(
            engagement_id=required_text("engagement_id", engagement_id, 100),
            indicator=indicator,
            value=reading_value,
            reported=reported,
            risk_id=optional_text("risk_id", risk_id, 100),
            request_id=optional_text("request_id", request_id, 200),
        )


def reading_level(tables: Tables, reading: Reading) -> Level:
    """The band of a reading: the thresholds table's, or the reporter's when that is worse (a reporter
    who saw red is not overruled by a table edited since) [assumption]."""
    _one_of("indicator", reading.indicator, tables.indicators())
    level = tables.level(reading.indicator, reading.value)
    if reading.reported is not None and reading.reported.severity > level.severity:
        return reading.reported
    return level


def level_of_open_warning(open_level: Level, reading: Level) -> Level:
    """6.4.2 [assumption]: one lasting breach is one warning. A new reading of an indicator (or a risk's
    priority) whose warning is still raised, not yet acknowledged, updates that warning instead of raising
    another; while it stays open it keeps the worst band it reached, so an amber warning that turns red is
    red (and escalated as red) until someone acknowledges it."""
    return reading if reading.severity > open_level.severity else open_level


def check_register_open(status: RegisterStatus, engagement_id: str) -> None:
    """Ch. 6: a closed register (the engagement ended) takes no more risks."""
    if status is RegisterStatus.CLOSED:
        raise FailedPrecondition(f"the risk register of engagement {engagement_id!r} is closed")


def check_risk_open(status: RiskStatus, risk_id: str) -> None:
    """6.1-6.3: a closed risk is neither assessed, responded to nor closed again."""
    if status is RiskStatus.CLOSED:
        raise FailedPrecondition(f"risk {risk_id!r} is closed")


def status_after_assessment(status: RiskStatus) -> RiskStatus:
    """6.2: a registered risk becomes assessed; reassessing a risk keeps its later status."""
    return RiskStatus.ASSESSED if status is RiskStatus.REGISTERED else status


def check_can_respond(status: RiskStatus, risk_id: str) -> None:
    """6.3 follows 6.2: the matrix suggests a strategy only for an assessed risk."""
    check_risk_open(status, risk_id)
    if status is RiskStatus.REGISTERED:
        raise FailedPrecondition(
            f"risk {risk_id!r} is not assessed yet: assess it (6.2) before choosing a response (6.3)"
        )


def check_response_open(status: ResponseStatus, response_id: str) -> None:
    """6.4.1: a response's measures are carried out once; a rejected plan's never."""
    if status is ResponseStatus.DONE:
        raise FailedPrecondition(f"response {response_id!r} was completed already")
    if status is ResponseStatus.REJECTED:
        raise FailedPrecondition(
            f"response {response_id!r} was rejected: plan the risk again with the prescribed strategy "
            "or another justified one (6.3)"
        )


def check_can_carry_out(status: ResponseStatus, deviation: Deviation, response_id: str) -> None:
    """6.3 [assumption]: a plan that deviates from the prescribed strategy is carried out only once
    management approved it."""
    check_response_open(status, response_id)
    if deviation is Deviation.AWAITING_APPROVAL:
        raise FailedPrecondition(
            f"response {response_id!r} deviates from the prescribed strategy and awaits approval"
        )


def later_stage(current: Stage, found: Stage) -> Stage:
    """[assumption] The register's stage is the latest stage any of its risks was found at."""
    return found if found.order > current.order else current


def is_overdue(due: date | None, done: bool, today: date) -> bool:
    """A measure is overdue when it is not done and its due date has passed."""
    return due is not None and not done and due < today


@dataclass(frozen=True)
class PlacedRisk:
    """An assessed risk as the matrix view shows it."""

    risk_id: str
    engagement_id: str
    description: str
    status: str
    likelihood: str
    impact: str


@dataclass(frozen=True)
class HeatCell:
    """A matrix cell with the risks that sit in it."""

    cell: MatrixCell
    risks: tuple[PlacedRisk, ...]


def heat_map(tables: Tables, risks: list[PlacedRisk]) -> list[HeatCell]:
    """6.2.3: every cell of the matrix, row by row (likelihood) and column by column (impact), each with
    its risks; risks whose likelihood or impact the table no longer names are left out."""
    by_cell: dict[tuple[str, str], list[PlacedRisk]] = {}
    for risk in risks:
        by_cell.setdefault((risk.likelihood, risk.impact), []).append(risk)
    return [
        HeatCell(tables.cell(likelihood, impact), tuple(by_cell.get((likelihood, impact), ())))
        for likelihood in tables.likelihoods()
        for impact in tables.impacts()
    ]
