"""The 3.4.2 monitoring indicators, computed by earned value management over the work plan.

Measured at the end of the status date `as_of`:

    weight_i  = budget_i; when no task has a budget, every task weighs 1 ("equal" weighting)
    planned_i = share of task i's planned days (planned_start..planned_end, both inclusive) elapsed by as_of
    PV  = Σ weight_i × planned_i               planned value
    EV  = Σ weight_i × progress_i / 100        earned value
    AC  = Σ actual_cost_i                      actual cost;   BAC = Σ budget_i
    EVm = Σ budget_i × progress_i / 100        earned value in money (= EV under budget weighting)

    schedule_deviation_rate = (PV − EV) / PV      = 1 − SPI; > 0 behind, < 0 ahead; 0 while PV = 0
    cost_overrun_rate       = (AC − EVm) / EVm    = 1/CPI − 1; > 0 over budget, < 0 under;
                              0 when AC = EVm = 0; 1 (a full overrun) when AC > 0 but EVm = 0
    quality_pass_rate       = passed checks / all checks (task quality checks and internal reviews of
                              deliverables, every check counts); 1 while nothing was checked

Rates are fractions (0.05 = 5 %), rounded half-up to four places; `warning_thresholds.dmn` bands them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal

SCHEDULE = "schedule_deviation_rate"
COST = "cost_overrun_rate"
QUALITY = "quality_pass_rate"
NAMES = (SCHEDULE, COST, QUALITY)

_PLACES = Decimal("0.0001")
_ZERO = Decimal(0)
_ONE = Decimal(1)


@dataclass(frozen=True)
class TaskFigures:
    """What the indicators read from one task of the work plan."""

    planned_start: date
    planned_end: date
    budget: Decimal
    actual_cost: Decimal
    progress: int


@dataclass(frozen=True)
class Indicators:
    as_of: date
    weighting: str
    planned_value: Decimal
    earned_value: Decimal
    actual_cost: Decimal
    budget_at_completion: Decimal
    quality_checks: int
    quality_checks_passed: int
    schedule_deviation_rate: Decimal
    cost_overrun_rate: Decimal
    quality_pass_rate: Decimal

    def rates(self) -> dict[str, Decimal]:
        return {
            SCHEDULE: self.schedule_deviation_rate,
            COST: self.cost_overrun_rate,
            QUALITY: self.quality_pass_rate,
        }


def planned_share(task: TaskFigures, as_of: date) -> Decimal:
    """How much of the task should be done by the end of `as_of`: elapsed planned days / planned days."""
    days = (task.planned_end - task.planned_start).days + 1
    elapsed = (as_of - task.planned_start).days + 1
    return Decimal(min(max(elapsed, 0), days)) / Decimal(days)


def compute(tasks: Sequence[TaskFigures], checks: int, passed: int, as_of: date) -> Indicators:
    """The indicators of a work plan on `as_of` (see the module docstring for the formulas)."""
    if not 0 <= passed <= checks:
        raise ValueError("passed checks must be between 0 and the number of checks")
    budget_at_completion = sum((t.budget for t in tasks), _ZERO)
    by_budget = budget_at_completion > 0
    planned = earned = earned_money = actual = _ZERO
    for task in tasks:
        weight = task.budget if by_budget else _ONE
        done = Decimal(task.progress) / 100
        planned += weight * planned_share(task, as_of)
        earned += weight * done
        earned_money += task.budget * done
        actual += task.actual_cost
    schedule = (planned - earned) / planned if planned > 0 else _ZERO
    # Spending with nothing earned has no finite rate: it counts as a full (100 %) overrun.
    unearned = _ONE if actual > 0 else _ZERO
    cost = (actual - earned_money) / earned_money if earned_money > 0 else unearned
    quality = Decimal(passed) / Decimal(checks) if checks else _ONE
    return Indicators(
        as_of=as_of,
        weighting="budget" if by_budget else "equal",
        planned_value=_round(planned),
        earned_value=_round(earned),
        actual_cost=actual,
        budget_at_completion=budget_at_completion,
        quality_checks=checks,
        quality_checks_passed=passed,
        schedule_deviation_rate=_round(schedule),
        cost_overrun_rate=_round(cost),
        quality_pass_rate=_round(quality),
    )


def overall_progress(tasks: Sequence[TaskFigures]) -> int:
    """Percent of the plan done: budget-weighted progress (equal weights without budgets)."""
    if not tasks:
        return 0
    total = sum((t.budget for t in tasks), _ZERO)
    if total > 0:
        share = sum((t.budget * t.progress for t in tasks), _ZERO) / total
    else:
        share = Decimal(sum(t.progress for t in tasks)) / len(tasks)
    return int(share.quantize(_ONE, rounding=ROUND_HALF_UP))


def _round(value: Decimal) -> Decimal:
    return value.quantize(_PLACES, rounding=ROUND_HALF_UP)
