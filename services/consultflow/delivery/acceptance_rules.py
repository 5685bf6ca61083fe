"""Acceptance rules as plain code (regulation 4.4): the rounds of an acceptance, the client's report on
each criterion, rectification items after a failed report, and when the next round may start. A domain
module beside `domain.py` (which holds the vocabulary and the rules of chapters 3 to 4.3)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from typing import Self

from consultflow.delivery.domain import NAME_LIMIT, TEXT_LIMIT, split_fields
from consultflow.platform.errors import FailedPrecondition, InvalidArgument
from consultflow.platform.inputs import (
    choice,
    iso_date,
    lines,
    optional_text,
    renamed_fields,
    required_text,
    yes_no,
)


class Conclusion(StrEnum):
    PASSED = "passed"
    FAILED = "failed"


class AcceptanceStatus(StrEnum):
    """4.4: a round is requested, reported (passed or failed); a failed round is rectifying until its
    last item is closed (rectified); a passed round closes acceptance."""

    REQUESTED = "requested"
    PASSED = Conclusion.PASSED.value
    FAILED = Conclusion.FAILED.value
    RECTIFYING = "rectifying"
    RECTIFIED = "rectified"
    CLOSED = "closed"


class ItemStatus(StrEnum):
    """4.4.3: a rectification item is open until closed with notes."""

    OPEN = "open"
    CLOSED = "closed"


def check_reportable(status: str, round_number: int, conclusion: str | None) -> None:
    """4.4.2: a round is reported once."""
    if status != AcceptanceStatus.REQUESTED:
        raise FailedPrecondition(f"acceptance round {round_number} was already reported ({conclusion})")


def check_rectifiable(status: str, round_number: int) -> None:
    """4.4.3: rectification items follow a failed report (more may be added while rectifying)."""
    if status not in (AcceptanceStatus.FAILED, AcceptanceStatus.RECTIFYING):
        raise FailedPrecondition(
            f"acceptance round {round_number} is {status}: rectification follows a failed report"
        )


def check_items_closable(status: str, round_number: int) -> None:
    """4.4.3: a round's items are closed once they were recorded."""
    if status not in (AcceptanceStatus.RECTIFYING, AcceptanceStatus.RECTIFIED):
        raise FailedPrecondition(
            f"acceptance round {round_number} is {status}: record its rectification items first"
        )


def check_item_open(status: str) -> None:
    if status != ItemStatus.OPEN:
        raise FailedPrecondition("the rectification item is already closed")


def rectified(status: str, open_items: int) -> bool:
    """4.4.3: a rectifying round is rectified once its last item is closed."""
    return status == AcceptanceStatus.RECTIFYING and open_items == 0


def check_closable(status: str, round_number: int) -> None:
    """4.4.3: only a passed report closes acceptance."""
    if status != AcceptanceStatus.PASSED:
        raise FailedPrecondition(
            f"acceptance round {round_number} is {status}: only a passed report closes acceptance"
        )


# --- commands and checks ---------------------------------------------------------------------------


def acceptance_criteria(field: str, value: object) -> tuple[str, ...]:
    """4.4.1: acceptance criteria, one per line (or a list); at least one."""
    result = lines(field, value, TEXT_LIMIT)
    if not result:
        raise InvalidArgument(field, "name at least one criterion")
    return result


@dataclass(frozen=True)
class AcceptanceRequest:
    """4.4.1: an acceptance request: when, what is to be accepted, by which criteria."""

    acceptance_date: date
    content: str
    criteria: tuple[str, ...]

    @classmethod
    def parse(cls, *, acceptance_date: object, content: object, criteria: object) -> Self:
        return cls(
            acceptance_date=iso_date("acceptance_date", acceptance_date),
            criteria=acceptance_criteria("acceptance_criteria", criteria),
            content=required_text("acceptance_content", content, TEXT_LIMIT),
        )


@dataclass(frozen=True)
class CriterionResult:
    """4.4.2: the client's result for one acceptance criterion."""

    criterion: str
    passed: bool
    comment: str = ""

    @classmethod
    def parse(cls, *, criterion: object, passed: object, comment: object = "") -> Self:
        return cls(
            criterion=optional_text("criterion", criterion, TEXT_LIMIT),
            passed=yes_no("passed", passed),
            comment=optional_text("comment", comment, TEXT_LIMIT),
        )


@dataclass(frozen=True)
class AcceptanceReport:
    """4.4.2: the client's report: a result per criterion, the conclusion, comments, who reported."""

    results: tuple[CriterionResult, ...]
    conclusion: Conclusion
    comments: str
    reported_by: str

    @classmethod
    def parse(
        cls,
        *,
        results: Iterable[tuple[object, object, object]],
        conclusion: object,
        comments: object,
        reported_by: object,
    ) -> Self:
        """`results` as (criterion, passed, comment) entries; the reporter is the client unless named."""
        verdict = choice("conclusion", conclusion, Conclusion)
        return cls(
            results=tuple(
                CriterionResult.parse(criterion=criterion, passed=passed, comment=comment)
                for criterion, passed, comment in results
            ),
            conclusion=verdict,
            comments=optional_text("comments", comments, TEXT_LIMIT),
            reported_by=optional_text("reported_by", reported_by, NAME_LIMIT) or "client",
        )


def check_report(
    criteria: Sequence[str], results: Sequence[CriterionResult], conclusion: Conclusion, comments: str
) -> None:
    """4.4.2-4.4.3: one result per criterion of the request; a pass needs every criterion passed, a
    failure a failed criterion or comments saying why."""
    expected = {c.lower(): c for c in criteria}
    given: dict[str, CriterionResult] = {}
    for result in results:
        key = result.criterion.strip().lower()
        if key not in expected:
            raise InvalidArgument(
                "results", f"{result.criterion!r} is not a criterion of this acceptance request"
            )
        if key in given:
            raise InvalidArgument("results", f"{result.criterion!r} has two results")
        given[key] = result
    missing = [c for k, c in expected.items() if k not in given]
    if missing:
        raise InvalidArgument("results", f"no result for {', '.join(repr(m) for m in missing)}")
    failed = [r.criterion for r in given.values() if not r.passed]
    if conclusion is Conclusion.PASSED and failed:
        raise InvalidArgument("conclusion", f"passed although {', '.join(repr(f) for f in failed)} failed")
    if conclusion is Conclusion.FAILED and not failed and not comments.strip():
        raise InvalidArgument("comments", "a failed acceptance with every criterion passed must say why")


@dataclass(frozen=True)
class RectificationItem:
    """4.4.3: what to rectify, who, until when."""

    description: str
    owner: str
    due: date

    @classmethod
    def parse(cls, *, description: object, owner: object, due_date: object) -> Self:
        return cls(
            description=required_text("description", description, TEXT_LIMIT),
            owner=required_text("owner", owner, NAME_LIMIT),
            due=iso_date("due_date", due_date),
        )


def rectification_items(
    value: object, default_owner: str, default_due: date | None
) -> list[RectificationItem]:
    """4.4.3 from a diagram: one item per line, `what | who | until when` (who and when default to the
    given owner and due date); `check_rectification` checks them against the report."""
    items = []
    for line in lines("rectification_items", value, TEXT_LIMIT):
        what, who, until = split_fields(line, 3)
        owner = optional_text("rectification_owner", who, NAME_LIMIT) or default_owner
        due = iso_date("rectification_due", until) if until else default_due
        if not owner:
            raise InvalidArgument("rectification_owner", "is required")
        if due is None:
            raise InvalidArgument("rectification_due", "is required (YYYY-MM-DD)")
        with renamed_fields(
            description="rectification_items", owner="rectification_owner", due_date="rectification_due"
        ):
            items.append(RectificationItem.parse(description=what, owner=owner, due_date=due))
    return items


def check_rectification(items: Sequence[RectificationItem], reported: date) -> list[RectificationItem]:
    """At least one item; no deadline lies before the report it answers."""
    if not items:
        raise InvalidArgument("rectification_items", "name at least one item")
    for item in items:
        if item.due < reported:
            raise InvalidArgument(
                "rectification_due", f"{item.due} is before the acceptance report ({reported})"
            )
    return list(items)


def next_round(last_status: str | None, last_round: int, open_items: int) -> int:
    """4.4.3: the number of a new acceptance round, allowed only as the first round or after the last one
    failed and every rectification item of it is closed; never while a round awaits its report or after a
    pass."""
    if open_items:
        raise FailedPrecondition(
            f"{open_items} rectification item(s) are still open: close them before the next acceptance round"
        )
    if last_status is None or last_status == AcceptanceStatus.RECTIFIED:
        return last_round + 1
    if last_status == AcceptanceStatus.REQUESTED:
        raise FailedPrecondition("the last acceptance round still awaits the client's report")
    if last_status == AcceptanceStatus.FAILED:
        raise FailedPrecondition("the last acceptance round failed: record its rectification items first")
    raise FailedPrecondition(f"the last acceptance round {last_status}: no new round is needed")
