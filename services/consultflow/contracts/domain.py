"""Contracts rules as plain code: quotations (2.3.1), proposals (2.3.2) and contracts (2.4).

Money (`money.py`) is `Decimal`, never float, and every total is computed here with explicit rounding.
The state machines refuse what the regulation forbids with `FailedPrecondition` naming the clause.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Self

from consultflow.contracts.money import (
    MAX_AMOUNT,
    blank,
    parse_currency,
    parse_decimal,
    parse_money,
    parse_optional_money,
    parse_quantity,
    parse_tax_rate,
    parse_validity_days,
    round_money,
)
from consultflow.platform.errors import FailedPrecondition, InvalidArgument
from consultflow.platform.inputs import (
    choice,
    iso_date,
    lines,
    names,
    optional_date,
    optional_text,
    required_text,
)

TEXT_LIMIT = 20_000
"""Clauses, goals and opinions are long texts; this service allows more than the platform's default."""
NAME_LIMIT = 200
ID_LIMIT = 36


# --- quotations (2.3.1) ----------------------------------------------------------------------------


class Category(StrEnum):
    """2.3.1: a quotation is itemised into consulting fees, travel, accommodation and other costs."""

    CONSULTING_FEE = "consulting_fee"
    TRAVEL = "travel"
    ACCOMMODATION = "accommodation"
    OTHER = "other"


class QuotationStatus(StrEnum):
    DRAFT = "draft"
    SENT = "sent"
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    EXPIRED = "expired"


@dataclass(frozen=True)
class LineItem:
    """One line of a quotation: category, what it is, quantity × unit price."""

    category: Category
    description: str
    quantity: Decimal
    unit_price: Decimal

    def amount(self, currency: str) -> Decimal:
        return round_money(self.quantity * self.unit_price, currency)

    @classmethod
    def parse(
        cls,
        *,
        index: int,
        currency: str,
        category: object,
        description: object,
        quantity: object,
        unit_price: object,
    ) -> Self:
        """A validated line in `currency`; errors name the line (`lines[2].unit_price`)."""
        prefix = f"lines[{index}]"
        return cls(
            category=choice(f"{prefix}.category", category, Category),
            description=optional_text(f"{prefix}.description", description, 500),
            quantity=parse_quantity(f"{prefix}.quantity", quantity),
            unit_price=parse_money(f"{prefix}.unit_price", unit_price, currency),
        )


COSTS = (
    ("consulting_fee", Category.CONSULTING_FEE, "consulting fee"),
    ("travel_cost", Category.TRAVEL, "travel"),
    ("accommodation_cost", Category.ACCOMMODATION, "accommodation"),
    ("other_cost", Category.OTHER, "other costs"),
)
"""A quotation given as one amount per cost category: the input's name, its category, its line's text."""

COST_BASIS = (
    ("consulting_cost_basis", Category.CONSULTING_FEE),
    ("travel_cost_basis", Category.TRAVEL),
    ("accommodation_cost_basis", Category.ACCOMMODATION),
    ("other_cost_basis", Category.OTHER),
)
"""2.3.1 公司成本核算: the input naming the firm's own cost of each category the quotation itemises."""


@dataclass(frozen=True)
class CostAccounting:
    """2.3.1: the company's cost accounting the quotation is based on — the firm's cost per category of the
    quotation (consulting, travel, accommodation, other) and their total."""

    costs: tuple[tuple[Category, Decimal], ...]

    @property
    def total(self) -> Decimal:
        return sum((amount for _, amount in self.costs), Decimal(0))

    @classmethod
    def parse(cls, given: Mapping[str, object], currency: object) -> CostAccounting | None:
        """None when no cost is given (a quotation prepared before the costs were asked); otherwise the
        consulting cost is required and a cost left empty is 0."""
        if all(blank(given.get(name)) for name, _ in COST_BASIS):
            return None
        code = parse_currency("currency", currency)
        if blank(given.get("consulting_cost_basis")):
            raise InvalidArgument(
                "consulting_cost_basis", "2.3.1: the cost accounting states the consulting cost"
            )
        return cls(
            tuple(
                (category, parse_optional_money(name, given.get(name), code)) for name, category in COST_BASIS
            )
        )


@dataclass(frozen=True)
class QuotationTerms:
    """What a quotation version states: its lines, currency, tax and how long it is valid (2.3.1)."""

    currency: str
    tax_rate: Decimal
    validity_days: int
    lines: tuple[LineItem, ...]

    @classmethod
    def parse(
        cls,
        *,
        currency: object,
        tax_rate: object,
        validity_days: object,
        lines: Sequence[Mapping[str, object]],
    ) -> Self:
        """Itemised terms: each line a mapping with category, description, quantity and unit_price."""
        code = parse_currency("currency", currency)
        rate = parse_tax_rate("tax_rate", tax_rate)
        items = tuple(
            LineItem.parse(
                index=index,
                currency=code,
                category=line.get("category"),
                description=line.get("description"),
                quantity=line.get("quantity"),
                unit_price=line.get("unit_price"),
            )
            for index, line in enumerate(lines)
        )
        return cls._checked(code, rate, parse_validity_days("validity_days", validity_days), items)

    @classmethod
    def parse_costs(
        cls,
        *,
        currency: object,
        tax_rate: object,
        validity_days: object,
        consulting_fee: object,
        travel_cost: object = None,
        accommodation_cost: object = None,
        other_cost: object = None,
    ) -> Self:
        """Terms given as one amount per cost category (the job catalogue's shape): a cost left empty or
        0 is no line; errors name the cost (`travel_cost`)."""
        code = parse_currency("currency", currency)
        given = (consulting_fee, travel_cost, accommodation_cost, other_cost)
        amounts = [
            (category, text, parse_optional_money(name, raw, code))
            for (name, category, text), raw in zip(COSTS, given, strict=True)
        ]
        items = tuple(
            LineItem(category, text, Decimal(1), amount) for category, text, amount in amounts if amount > 0
        )
        rate = parse_tax_rate("tax_rate", tax_rate)
        return cls._checked(code, rate, parse_validity_days("validity_days", validity_days), items)

    @classmethod
    def _checked(
        cls, currency: str, tax_rate: Decimal, validity_days: int, lines: tuple[LineItem, ...]
    ) -> Self:
        if not lines:
            raise InvalidArgument("lines", "a quotation needs at least one line item (2.3.1)")
        if not any(line.category is Category.CONSULTING_FEE for line in lines):
            raise InvalidArgument("consulting_fee", "a quotation itemises the consulting fee (2.3.1)")
        if not 1 <= validity_days <= 365:
            raise InvalidArgument("validity_days", "must be between 1 and 365 days")
        terms = cls(currency, tax_rate, validity_days, lines)
        if terms.totals().total <= 0:
            raise InvalidArgument("lines", "the quotation's total must be more than 0")
        return terms

    def totals(self) -> Totals:
        return compute_totals(self.lines, self.currency, self.tax_rate)

    def valid_until(self, today: date) -> date:
        return today + timedelta(days=self.validity_days)


@dataclass(frozen=True)
class Totals:
    """Subtotal per category and overall, tax on the subtotal, and the total due."""

    subtotal: Decimal
    tax: Decimal
    total: Decimal
    by_category: Mapping[Category, Decimal]


def compute_totals(lines: Sequence[LineItem], currency: str, tax_rate: Decimal) -> Totals:
    """Line amounts are rounded to the minor unit, then summed; tax is rounded once, on the subtotal."""
    by_category: dict[Category, Decimal] = {}
    for line in lines:
        by_category[line.category] = by_category.get(line.category, Decimal(0)) + line.amount(currency)
    subtotal = sum(by_category.values(), Decimal(0))
    tax = round_money(subtotal * tax_rate, currency)
    total = subtotal + tax
    if total >= MAX_AMOUNT:
        raise InvalidArgument("lines", f"the total must be less than {MAX_AMOUNT:,}")
    return Totals(round_money(subtotal, currency), tax, round_money(total, currency), by_category)


def check_quotation_revisable(status: QuotationStatus) -> None:
    if status not in (QuotationStatus.DRAFT, QuotationStatus.SENT):
        raise FailedPrecondition(f"2.3.1: a quotation {status.value} is final; prepare a new one")


def check_offer_sendable(
    status: QuotationStatus, valid_until: date, today: date, proposal_approved: bool
) -> None:
    """2.3.1/2.3.2: a draft quotation still valid goes out with a proposal the internal review approved."""
    if status is not QuotationStatus.DRAFT:
        raise FailedPrecondition(f"2.3.1: only a draft quotation is sent; this one is {status.value}")
    if valid_until < today:
        raise FailedPrecondition(f"2.3.1: the quotation was valid until {valid_until}; revise it first")
    if not proposal_approved:
        raise FailedPrecondition(
            "2.3.2: the offer goes out only with a proposal approved by the internal review"
        )


def check_answerable(status: QuotationStatus, valid_until: date, today: date) -> None:
    """The client answers a quotation that was sent and is still valid."""
    if status is not QuotationStatus.SENT:
        raise FailedPrecondition(f"2.3.1: the client answers a sent quotation; this one is {status.value}")
    if today > valid_until:
        raise FailedPrecondition(f"2.3.1: the quotation was valid until {valid_until}")


def check_expirable(status: QuotationStatus) -> None:
    if status is not QuotationStatus.SENT:
        raise FailedPrecondition(f"2.3.1: only a sent quotation expires; this one is {status.value}")


# --- proposals (2.3.2) -----------------------------------------------------------------------------


class ProposalStatus(StrEnum):
    DRAFT = "draft"  # awaiting the internal review
    REVISING = "revising"  # the review asked for a revision
    APPROVED = "approved"


class ReviewVerdict(StrEnum):
    APPROVED = "approved"
    REVISE = "revise"


@dataclass(frozen=True)
class Milestone:
    name: str
    due_date: date


_DATE_IN_LINE = re.compile(r"\b(\d{4}-\d{2}-\d{2})\b")


def parse_schedule(field: str, value: object) -> tuple[Milestone, ...]:
    """Milestones as a list of {"name", "due_date"} or as text, one per line with a date anywhere in it
    (`2025-03-31 field research done`); sorted by date."""
    milestones: list[Milestone] = []
    if isinstance(value, list | tuple):
        for index, item in enumerate(value):
            if not isinstance(item, Mapping):
                raise InvalidArgument(f"{field}[{index}]", "must have a name and a due_date")
            milestones.append(
                Milestone(
                    required_text(f"{field}[{index}].name", str(item.get("name", "")), 300),
                    iso_date(f"{field}[{index}].due_date", item.get("due_date")),
                )
            )
    elif isinstance(value, str):
        for number, raw in enumerate(value.splitlines(), start=1):
            text = raw.strip()
            if not text:
                continue
            found = _DATE_IN_LINE.search(text)
            if found is None:
                raise InvalidArgument(field, f"line {number} ({text!r}) has no date (YYYY-MM-DD)")
            name = (text[: found.start()] + " " + text[found.end() :]).strip(" :-–—\t")
            milestones.append(Milestone(required_text(field, name, 300), iso_date(field, found.group(1))))
    elif value is not None:
        raise InvalidArgument(field, "must be milestones, one per line with a date (YYYY-MM-DD)")
    if not milestones:
        raise InvalidArgument(field, "needs at least one milestone with a date (2.3.2)")
    return tuple(sorted(milestones, key=lambda m: m.due_date))


@dataclass(frozen=True)
class ProposalContent:
    """2.3.2: goals, scope, methods, schedule, expected results, and a team led by a project manager."""

    goals: str
    scope: str
    methods: str
    schedule: tuple[Milestone, ...]
    expected_results: tuple[str, ...]
    project_manager: str
    team_members: tuple[str, ...] = ()

    @classmethod
    def parse(
        cls,
        *,
        goals: object,
        scope: object,
        methods: object,
        schedule: object,
        expected_results: object,
        project_manager: object,
        team_members: object = None,
    ) -> Self:
        """The schedule as `parse_schedule` reads it, results one per line, the team as names; the
        project manager is not listed again among the team members."""
        milestones = parse_schedule("schedule", schedule)
        results = lines("expected_results", expected_results, TEXT_LIMIT)
        team = names("team_members", team_members)
        content = cls(
            goals=required_text("goals", goals, TEXT_LIMIT),
            scope=required_text("scope", scope, TEXT_LIMIT),
            methods=required_text("methods", methods, TEXT_LIMIT),
            schedule=milestones,
            expected_results=results,
            project_manager=required_text("project_manager", project_manager, NAME_LIMIT),
        )
        if not results:
            raise InvalidArgument("expected_results", "is required (one result per line)")
        return replace(content, team_members=tuple(m for m in team if m != content.project_manager))


def check_proposal_revisable(status: ProposalStatus) -> None:
    if status is ProposalStatus.APPROVED:
        raise FailedPrecondition("2.3.2: the proposal is approved; an approved proposal is not revised")


def check_proposal_reviewable(status: ProposalStatus) -> None:
    if status is ProposalStatus.REVISING:
        raise FailedPrecondition("2.3.2: the review asked for a revision; review the revised proposal")
    if status is ProposalStatus.APPROVED:
        raise FailedPrecondition("2.3.2: the proposal is already approved")


def check_review(verdict: ReviewVerdict, comments: str) -> None:
    if verdict is ReviewVerdict.REVISE and not comments.strip():
        raise InvalidArgument("review_comments", "a revise verdict says what to change")


def status_after_proposal_review(verdict: ReviewVerdict) -> ProposalStatus:
    """2.3.2: an approved proposal can go out with the offer; otherwise it is revised first."""
    return ProposalStatus.APPROVED if verdict is ReviewVerdict.APPROVED else ProposalStatus.REVISING


# --- contracts (2.4) -------------------------------------------------------------------------------


class ContractStatus(StrEnum):
    DRAFT = "draft"  # being negotiated (2.4.1)
    IN_LEGAL_REVIEW = "in_legal_review"  # 2.4.2
    REVISING = "revising"  # legal asked for revisions
    APPROVED = "approved"  # legal approved; ready to sign (2.4.3)
    SIGNED_BY_FIRM = "signed_by_firm"
    SIGNED_BY_CLIENT = "signed_by_client"
    SIGNED = "signed"  # both parties
    DISTRIBUTED = "distributed"  # copies with the departments concerned


class Clause(StrEnum):
    """2.4.1: the terms every contract settles."""

    SERVICE_CONTENT = "service_content"
    SERVICE_PERIOD = "service_period"
    PAYMENT_TERMS = "payment_terms"
    CONFIDENTIALITY = "confidentiality"
    BREACH_LIABILITY = "breach_liability"


GENERAL = "general"
"""An opinion about the contract as a whole rather than one clause."""


@dataclass(frozen=True)
class Instalment:
    """One payment: a share of the contract value and when it falls due."""

    percent: Decimal
    due: str


_INSTALMENT_LINE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*%\s*[:\-–—]?\s*(.+?)\s*$")


def parse_instalments(field: str, value: object) -> tuple[Instalment, ...]:
    """Payment terms as instalments: a list of {"percent", "due"} or text lines like `30% on signing`.
    Empty means the clause is not settled yet; given, the shares must add up to exactly 100 %."""
    instalments: list[Instalment] = []
    if blank(value):
        return ()
    if isinstance(value, list | tuple):
        for index, item in enumerate(value):
            if not isinstance(item, Mapping):
                raise InvalidArgument(f"{field}[{index}]", "must have a percent and a due")
            instalments.append(
                Instalment(
                    parse_decimal(f"{field}[{index}].percent", item.get("percent"), 2, "a percentage"),
                    required_text(f"{field}[{index}].due", str(item.get("due", "")), 300),
                )
            )
    elif isinstance(value, str):
        for number, raw in enumerate(value.splitlines(), start=1):
            if not raw.strip():
                continue
            match = _INSTALMENT_LINE.match(raw)
            if match is None:
                raise InvalidArgument(field, f"line {number} ({raw.strip()!r}) is not like '30% on signing'")
            instalments.append(
                Instalment(
                    parse_decimal(field, match.group(1), 2, "a percentage"),
                    required_text(field, match.group(2), 300),
                )
            )
    else:
        raise InvalidArgument(field, "must be instalments, one per line like '30% on signing'")
    if any(i.percent == 0 for i in instalments):
        raise InvalidArgument(field, "an instalment of 0% is not an instalment")
    total = sum((i.percent for i in instalments), Decimal(0))
    if total != 100:
        raise InvalidArgument(field, f"the instalments add up to {total}%, not 100%")
    return tuple(instalments)


def instalment_amounts(instalments: Sequence[Instalment], value: Decimal, currency: str) -> list[Decimal]:
    """Each instalment's amount of the contract value; the last absorbs rounding so they sum exactly."""
    amounts = [round_money(value * i.percent / 100, currency) for i in instalments[:-1]]
    if instalments:
        amounts.append(value - sum(amounts, Decimal(0)))
    return amounts


def render_instalments(instalments: Sequence[Instalment]) -> str:
    return "\n".join(f"{i.percent.normalize():f}% {i.due}" for i in instalments)


@dataclass(frozen=True)
class Clauses:
    """The contract's terms in one version; a clause left empty is not settled yet."""

    service_content: str = ""
    service_start: date | None = None
    service_end: date | None = None
    payment_terms: tuple[Instalment, ...] = ()
    confidentiality: str = ""
    breach_liability: str = ""

    @classmethod
    def parse(
        cls,
        *,
        service_content: object = "",
        service_start: object = "",
        service_end: object = "",
        payment_terms: object = None,
        confidentiality: object = "",
        breach_liability: object = "",
    ) -> Self:
        """Clauses as given (each may be left empty); a service period has both ends, in order."""
        start = optional_date("service_start", service_start)
        end = optional_date("service_end", service_end)
        content = optional_text("service_content", service_content, TEXT_LIMIT)
        instalments = parse_instalments("payment_terms", payment_terms)
        if (start is None) != (end is None):
            missing = "service_end" if end is None else "service_start"
            raise InvalidArgument(missing, "the service period needs both a start and an end (2.4.1)")
        if start and end and end < start:
            raise InvalidArgument("service_end", "is before service_start")
        return cls(
            service_content=content,
            service_start=start,
            service_end=end,
            payment_terms=instalments,
            confidentiality=optional_text("confidentiality", confidentiality, TEXT_LIMIT),
            breach_liability=optional_text("breach_liability", breach_liability, TEXT_LIMIT),
        )

    def missing(self) -> list[Clause]:
        """The required clauses this version does not settle."""
        present = {
            Clause.SERVICE_CONTENT: bool(self.service_content),
            Clause.SERVICE_PERIOD: self.service_start is not None,
            Clause.PAYMENT_TERMS: bool(self.payment_terms),
            Clause.CONFIDENTIALITY: bool(self.confidentiality),
            Clause.BREACH_LIABILITY: bool(self.breach_liability),
        }
        return [clause for clause, ok in present.items() if not ok]

    def revised(self, changes: Clauses) -> Clauses:
        """These clauses with every clause `changes` settles replacing the current one."""
        return replace(
            self,
            service_content=changes.service_content or self.service_content,
            service_start=changes.service_start or self.service_start,
            service_end=changes.service_end or self.service_end,
            payment_terms=changes.payment_terms or self.payment_terms,
            confidentiality=changes.confidentiality or self.confidentiality,
            breach_liability=changes.breach_liability or self.breach_liability,
        )


def incomplete_message(missing: Sequence[Clause]) -> str:
    lacking = ", ".join(c.value for c in missing)
    return f"2.4.2: legal review needs every required clause (2.4.1); the draft lacks {lacking}"


def check_negotiable(status: ContractStatus) -> None:
    """2.4.1: negotiation changes a contract that is a draft, or one legal sent back for revision."""
    if status not in (ContractStatus.DRAFT, ContractStatus.REVISING):
        raise FailedPrecondition(
            f"2.4.1: a contract {status.value.replace('_', ' ')} is not open to negotiation"
        )


def check_submittable(status: ContractStatus, clauses: Clauses) -> None:
    """2.4.2: a complete draft goes to the legal department; a contract legal sent back is revised first."""
    if status is ContractStatus.REVISING:
        raise FailedPrecondition(
            "2.4.3: revise the contract per the legal opinion before it is reviewed again"
        )
    if status is not ContractStatus.DRAFT:
        raise FailedPrecondition(f"2.4.2: only a draft goes to legal review; this contract is {status.value}")
    missing = clauses.missing()
    if missing:
        raise FailedPrecondition(incomplete_message(missing))


def missing_for_review(status: ContractStatus, clauses: Clauses) -> list[Clause]:
    """2.4.2: the clauses a draft still lacks before legal can review it (none for any other status)."""
    return clauses.missing() if status is ContractStatus.DRAFT else []


def check_contract_draftable(
    quotation: QuotationStatus, proposal: ProposalStatus, same_quotation: bool
) -> None:
    """2.4.1: the contract follows the client's acceptance of the quotation, on the approved proposal
    made for that quotation (`same_quotation`)."""
    if quotation is not QuotationStatus.ACCEPTED:
        raise FailedPrecondition(
            f"2.4.1: the contract follows the client's acceptance of the quotation; it is {quotation.value}"
        )
    if not same_quotation:
        raise InvalidArgument("proposal_id", "belongs to another quotation")
    if proposal is not ProposalStatus.APPROVED:
        raise FailedPrecondition("2.3.2: the contract builds on a proposal the internal review approved")


@dataclass(frozen=True)
class DraftContract:
    """2.4.1: what one negotiation round settles."""

    engagement_id: str
    client_id: str
    quotation_id: str
    proposal_id: str
    clauses: Clauses
    negotiation_notes: str = ""

    @classmethod
    def parse(
        cls,
        *,
        engagement_id: object,
        client_id: object,
        quotation_id: object,
        proposal_id: object,
        clauses: Clauses,
        negotiation_notes: object = "",
    ) -> Self:
        """`clauses` as `Clauses.parse` read them (the API and the job name them alike)."""
        return cls(
            engagement_id=optional_text("engagement_id", engagement_id, TEXT_LIMIT),
            client_id=required_text("client_id", client_id, ID_LIMIT),
            quotation_id=required_text("quotation_id", quotation_id, ID_LIMIT),
            proposal_id=required_text("proposal_id", proposal_id, ID_LIMIT),
            clauses=clauses,
            negotiation_notes=optional_text("negotiation_notes", negotiation_notes, TEXT_LIMIT),
        )


def check_reviewable(status: ContractStatus) -> None:
    if status is not ContractStatus.IN_LEGAL_REVIEW:
        raise FailedPrecondition(f"2.4.2: the contract is not under legal review (it is {status.value})")


@dataclass(frozen=True)
class Opinion:
    """A legal opinion on one clause, or on the contract as a whole (`general`)."""

    clause: str
    opinion: str


_CLAUSE_NAMES = (
    {c.value: c.value for c in Clause}
    | {c.value.replace("_", " "): c.value for c in Clause}
    | {"period": Clause.SERVICE_PERIOD.value, "payment": Clause.PAYMENT_TERMS.value, GENERAL: GENERAL}
)


def parse_clause(field: str, value: object) -> str:
    """A clause of 2.4.1 by its name (spaces for underscores, `period`, `payment`), or `general`."""
    text = str(value or "").strip().lower()
    if text in _CLAUSE_NAMES:
        return _CLAUSE_NAMES[text]
    allowed = ", ".join([*(c.value for c in Clause), GENERAL])
    raise InvalidArgument(field, f"{value!r} is not one of {allowed}")


def parse_opinions(field: str, value: object) -> tuple[Opinion, ...]:
    """Opinions as a list of {"clause", "opinion"} or text, one per line: `payment_terms: …` names the
    clause, a line without a clause name is a general opinion."""
    opinions: list[Opinion] = []
    if value is None:
        return ()
    if isinstance(value, list | tuple):
        for index, item in enumerate(value):
            if not isinstance(item, Mapping):
                raise InvalidArgument(f"{field}[{index}]", "must have a clause and an opinion")
            opinions.append(
                Opinion(
                    parse_clause(f"{field}[{index}].clause", item.get("clause") or GENERAL),
                    required_text(f"{field}[{index}].opinion", str(item.get("opinion", "")), TEXT_LIMIT),
                )
            )
        return tuple(opinions)
    if not isinstance(value, str):
        raise InvalidArgument(field, "must be opinions, one per line ('payment_terms: …')")
    for raw in value.splitlines():
        text = raw.strip()
        if not text:
            continue
        head, separator, rest = text.partition(":")
        clause = _CLAUSE_NAMES.get(head.strip().lower()) if separator else None
        if clause is not None and rest.strip():
            opinions.append(Opinion(clause, rest.strip()))
        else:
            opinions.append(Opinion(GENERAL, text))
    return tuple(opinions)


def check_legal_review(
    verdict: ReviewVerdict, opinions: Sequence[Opinion], findings: Sequence[Finding] = ()
) -> None:
    if verdict is ReviewVerdict.REVISE and not opinions and not findings:
        raise InvalidArgument("legal_opinions", "a revise verdict gives the legal opinion to follow (2.4.2)")
    failed = [f.focus.value for f in findings if f.verdict is ReviewVerdict.REVISE]
    if failed and verdict is ReviewVerdict.APPROVED:
        raise InvalidArgument(
            "legal_verdict", f"2.4.2: {', '.join(failed)} need revision, so the contract is not approved"
        )


class LegalFocus(StrEnum):
    """2.4.2: what the legal department checks (重點審核): 完整性、準確性、合法性、風險防範措施."""

    COMPLETENESS = "completeness"
    ACCURACY = "accuracy"
    LEGALITY = "legality"
    RISK_SAFEGUARDS = "risk_safeguards"


@dataclass(frozen=True)
class Finding:
    """2.4.2: the legal department's verdict and opinion on one focus of its review."""

    focus: LegalFocus
    verdict: ReviewVerdict
    opinion: str


def parse_findings(
    verdicts: Mapping[LegalFocus, object], opinions: Mapping[LegalFocus, str]
) -> tuple[Finding, ...]:
    """All four foci or none (a review recorded before the foci were asked); revise needs an opinion."""
    given = [focus for focus, value in verdicts.items() if value not in (None, "")]
    if not given:
        return ()
    findings = []
    for focus in LegalFocus:
        field = f"{focus.value}_verdict"
        value = verdicts.get(focus)
        if value in (None, ""):
            raise InvalidArgument(field, "2.4.2: every focus of the legal review has a verdict")
        try:
            verdict = ReviewVerdict(str(value))
        except ValueError:
            raise InvalidArgument(field, "must be approved or revise") from None
        opinion = optional_text(f"{focus.value}_opinion", opinions.get(focus, ""), TEXT_LIMIT)
        if verdict is ReviewVerdict.REVISE and not opinion:
            raise InvalidArgument(f"{focus.value}_opinion", "2.4.2: a focus that needs revision says why")
        findings.append(Finding(focus, verdict, opinion))
    return tuple(findings)


def status_after_legal_review(verdict: ReviewVerdict) -> ContractStatus:
    """2.4.2/2.4.3: an approved contract is ready to sign; otherwise it is revised per the opinion."""
    return ContractStatus.APPROVED if verdict is ReviewVerdict.APPROVED else ContractStatus.REVISING


def check_revisable(status: ContractStatus) -> None:
    if status is not ContractStatus.REVISING:
        raise FailedPrecondition(
            "2.4.3: a contract is revised per the legal opinion once legal asked for it "
            f"(it is {status.value})"
        )


@dataclass(frozen=True)
class Signatory:
    """Who signs for a party, and in which capacity (2.4.3: the legal or an authorised representative)."""

    name: str
    title: str

    @classmethod
    def parse(cls, *, signatory: object, signatory_title: object) -> Self:
        return cls(
            name=required_text("signatory", signatory, NAME_LIMIT),
            title=required_text("signatory_title", signatory_title, NAME_LIMIT),
        )


def check_firm_can_sign(status: ContractStatus) -> None:
    if status in (ContractStatus.SIGNED_BY_FIRM, ContractStatus.SIGNED, ContractStatus.DISTRIBUTED):
        raise FailedPrecondition("2.4.3: the firm has already signed this contract")
    if status not in (ContractStatus.APPROVED, ContractStatus.SIGNED_BY_CLIENT):
        raise FailedPrecondition(
            "2.4.3: a contract is signed only after the legal department approved it (2.4.2); "
            f"it is {status.value}"
        )


def client_has_signed(status: ContractStatus) -> bool:
    return status in (ContractStatus.SIGNED_BY_CLIENT, ContractStatus.SIGNED, ContractStatus.DISTRIBUTED)


def check_client_can_sign(status: ContractStatus) -> None:
    if status not in (ContractStatus.APPROVED, ContractStatus.SIGNED_BY_FIRM):
        raise FailedPrecondition(
            "2.4.3: the client signs the contract the legal department approved (2.4.2); "
            f"it is {status.value}"
        )


def check_reopenable(status: ContractStatus) -> None:
    """2.4.3/2.4.1: a contract waiting for the client's signature goes back to negotiation when the client
    refuses to sign or the signing period ends; one the client signed does not."""
    if client_has_signed(status):
        raise FailedPrecondition("2.4.3: the client has signed this contract")
    if status not in (ContractStatus.APPROVED, ContractStatus.SIGNED_BY_FIRM):
        raise FailedPrecondition(
            f"2.4.3: only a contract waiting for the client's signature is reopened; it is {status.value}"
        )


def status_after_signature(status: ContractStatus, by_firm: bool) -> ContractStatus:
    """Both signatures make the contract signed; the first one leaves it waiting for the other party."""
    other_signed = client_has_signed(status) if by_firm else status is ContractStatus.SIGNED_BY_FIRM
    if other_signed:
        return ContractStatus.SIGNED
    return ContractStatus.SIGNED_BY_FIRM if by_firm else ContractStatus.SIGNED_BY_CLIENT


DEFAULT_DEPARTMENTS = ("business", "delivery", "finance", "legal")
"""2.4.3: who gets a copy as the basis for execution, unless the caller names others."""


def check_distributable(status: ContractStatus) -> None:
    if status is ContractStatus.DISTRIBUTED:
        raise FailedPrecondition("2.4.3: the contract was already distributed")
    if status is not ContractStatus.SIGNED:
        raise FailedPrecondition(
            f"2.4.3: copies go to the departments once both parties signed; the contract is {status.value}"
        )


def check_acknowledgeable(status: ContractStatus, department: str, distributed_to: Sequence[str]) -> None:
    if status is not ContractStatus.DISTRIBUTED:
        raise FailedPrecondition("2.4.3: the contract has not been distributed yet")
    if department not in distributed_to:
        raise FailedPrecondition(
            f"2.4.3: {department!r} did not receive a copy ({', '.join(distributed_to)})"
        )
