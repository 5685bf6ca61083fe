"""The 3.4.2 indicator formulas (earned value) and their banding by warning_thresholds.dmn."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from consultflow.delivery import indicators
from consultflow.delivery.adapters import DecisionThresholds
from consultflow.delivery.indicators import TaskFigures, compute, overall_progress, planned_share
from consultflow.platform.decisions import DecisionTables
from consultflow.platform.settings import repository_root

D = Decimal


def task(start: str, end: str, budget: str = "0", cost: str = "0", progress: int = 0) -> TaskFigures:
    return TaskFigures(date.fromisoformat(start), date.fromisoformat(end), D(budget), D(cost), progress)


def test_planned_share_counts_whole_days_up_to_the_end_of_the_status_date() -> None:
    ten_days = task("2025-03-01", "2025-03-10")
    assert planned_share(ten_days, date(2025, 2, 28)) == 0
    assert planned_share(ten_days, date(2025, 3, 1)) == D("0.1")
    assert planned_share(ten_days, date(2025, 3, 5)) == D("0.5")
    assert planned_share(ten_days, date(2025, 3, 10)) == 1
    assert planned_share(ten_days, date(2025, 4, 1)) == 1
    assert planned_share(task("2025-03-01", "2025-03-01"), date(2025, 3, 1)) == 1


def test_budget_weighted_earned_value() -> None:
    """PV = 1000×5/10 + 3000×5/40 = 875; EV = 1000×0.4 = 400; AC = 500."""
    figures = compute(
        [
            task("2025-03-01", "2025-03-10", budget="1000", cost="500", progress=40),
            task("2025-03-01", "2025-04-09", budget="3000"),
        ],
        checks=4,
        passed=3,
        as_of=date(2025, 3, 5),
    )
    assert figures.weighting == "budget"
    assert figures.planned_value == D("875.0000")
    assert figures.earned_value == D("400.0000")
    assert figures.actual_cost == D("500")
    assert figures.budget_at_completion == D("4000")
    assert figures.schedule_deviation_rate == D("0.5429")  # (875 − 400) / 875
    assert figures.cost_overrun_rate == D("0.2500")  # (500 − 400) / 400
    assert figures.quality_pass_rate == D("0.7500")  # 3 of 4 checks passed
    assert figures.rates() == {
        indicators.SCHEDULE: D("0.5429"),
        indicators.COST: D("0.2500"),
        indicators.QUALITY: D("0.7500"),
    }


def test_schedule_deviation_is_negative_ahead_of_plan_and_cost_negative_under_budget() -> None:
    figures = compute(
        [task("2025-03-01", "2025-03-10", budget="1000", cost="300", progress=80)], 0, 0, date(2025, 3, 5)
    )
    assert figures.schedule_deviation_rate == D("-0.6000")  # (500 − 800) / 500
    assert figures.cost_overrun_rate == D("-0.6250")  # (300 − 800) / 800
    assert figures.quality_pass_rate == 1  # nothing checked yet


def test_without_budgets_every_task_weighs_the_same() -> None:
    figures = compute(
        [task("2025-03-01", "2025-03-10", progress=100), task("2025-03-06", "2025-03-15")],
        0,
        0,
        date(2025, 3, 10),
    )
    assert figures.weighting == "equal"
    assert figures.planned_value == D("1.5000")  # 1 + 5/10
    assert figures.earned_value == D("1.0000")
    assert figures.schedule_deviation_rate == D("0.3333")
    assert figures.cost_overrun_rate == 0  # nothing spent, nothing earned in money


def test_zero_denominators_have_documented_values() -> None:
    not_started = compute([task("2025-05-01", "2025-05-31", budget="100")], 0, 0, date(2025, 4, 1))
    assert not_started.schedule_deviation_rate == 0  # PV = 0: nothing can be late yet
    assert not_started.cost_overrun_rate == 0
    spent_for_nothing = compute(
        [task("2025-05-01", "2025-05-31", budget="100", cost="10")], 0, 0, date(2025, 4, 1)
    )
    assert spent_for_nothing.cost_overrun_rate == 1  # AC > 0, EV = 0: a full overrun
    empty = compute([], 0, 0, date(2025, 4, 1))
    assert empty.rates() == {indicators.SCHEDULE: 0, indicators.COST: 0, indicators.QUALITY: 1}


def test_rates_round_half_up_to_four_places() -> None:
    figures = compute([task("2025-03-01", "2025-03-03", budget="3", progress=0)], 3, 2, date(2025, 3, 1))
    assert figures.schedule_deviation_rate == 1
    assert figures.quality_pass_rate == D("0.6667")


def test_passed_checks_cannot_exceed_checks() -> None:
    with pytest.raises(ValueError):
        compute([], 1, 2, date(2025, 1, 1))


def test_overall_progress() -> None:
    assert overall_progress([]) == 0
    assert (
        overall_progress([task("2025-01-01", "2025-01-02", progress=50), task("2025-01-01", "2025-01-02")])
        == 25
    )
    weighted = [
        task("2025-01-01", "2025-01-02", budget="300", progress=100),
        task("2025-01-01", "2025-01-02", budget="100"),
    ]
    assert overall_progress(weighted) == 75


@pytest.mark.parametrize(
    ("indicator", "value", "band"),
    [
        (indicators.SCHEDULE, "0.05", "green"),
        (indicators.SCHEDULE, "0.0501", "amber"),
        (indicators.SCHEDULE, "0.15", "amber"),
        (indicators.SCHEDULE, "0.2", "red"),
        (indicators.SCHEDULE, "-0.3", "green"),
        (indicators.COST, "0.05", "green"),
        (indicators.COST, "0.1", "amber"),
        (indicators.COST, "0.1001", "red"),
        (indicators.QUALITY, "1", "green"),
        (indicators.QUALITY, "0.95", "green"),
        (indicators.QUALITY, "0.9", "amber"),
        (indicators.QUALITY, "0.5", "red"),
    ],
)
def test_bands_come_from_the_warning_threshold_table(indicator: str, value: str, band: str) -> None:
    thresholds = DecisionThresholds(DecisionTables(repository_root() / "bpmn"))
    assert thresholds.band(indicator, D(value)) == band
