"""The risk rules without a server, over the real decision tables in bpmn/: the matrix against the
regulation, warning bands and when an assessment raises a warning, response and register rules."""

from __future__ import annotations

from datetime import date

import pytest

from consultflow.platform.decisions import DecisionTables
from consultflow.platform.errors import InvalidArgument
from consultflow.platform.settings import repository_root
from consultflow.risk.adapters import RiskTables
from consultflow.risk.domain import (
    Level,
    NewRisk,
    PlacedRisk,
    Reading,
    ResponseChoice,
    ReviewFindings,
    Stage,
    Strategy,
    assess,
    heat_map,
    is_overdue,
    later_stage,
    reading_level,
    warning_for_new_priority,
)

BPMN = repository_root() / "bpmn"
TABLES = RiskTables(BPMN)
CELLS = [
    (likelihood, impact)
    for likelihood in ("high", "medium", "low")
    for impact in ("severe", "major", "moderate", "minor")
]


def test_the_axes_are_the_regulations_scales_read_from_the_table() -> None:
    assert TABLES.likelihoods() == ["high", "medium", "low"]  # 6.2.1
    assert TABLES.impacts() == ["severe", "major", "moderate", "minor"]  # 6.2.2
    assert TABLES.indicators() == [
        "schedule_deviation_rate",
        "cost_overrun_rate",
        "quality_pass_rate",
        "risk_priority",
    ]


@pytest.mark.parametrize(("likelihood", "impact"), CELLS)
def test_every_cell_is_what_the_decision_table_says(likelihood: str, impact: str) -> None:
    expected = DecisionTables(BPMN).decide("risk_matrix", {"likelihood": likelihood, "impact": impact})
    cell = assess(TABLES, likelihood, impact)
    assert (cell.level, cell.priority, cell.suggested_strategy.value, cell.strategy_basis) == (
        expected["risk_level"],
        expected["risk_priority"],
        expected["suggested_strategy"],
        expected["strategy_basis"],
    )


@pytest.mark.parametrize(
    ("likelihood", "impact", "strategy", "clause"),
    [
        ("high", "severe", Strategy.AVOID, "6.3.1"),  # high likelihood and severe impact
        ("high", "major", Strategy.MITIGATE, "6.3.2"),  # higher likelihood with major impact
        ("medium", "major", Strategy.MITIGATE, "6.3.2"),  # higher (than low) likelihood with major impact
        ("low", "minor", Strategy.ACCEPT, "6.3.4"),  # low likelihood and minor impact
    ],
)
def test_the_cells_the_regulation_names_follow_the_regulation(
    likelihood: str, impact: str, strategy: Strategy, clause: str
) -> None:
    cell = assess(TABLES, likelihood, impact)
    assert (cell.suggested_strategy, cell.strategy_basis) == (strategy, clause)


def test_high_severe_is_the_first_priority_of_all() -> None:
    priorities = {cell: assess(TABLES, *cell).priority for cell in CELLS}
    assert priorities[("high", "severe")] == min(priorities.values()) == 1
    assert priorities[("low", "minor")] == max(priorities.values())


@pytest.mark.parametrize(
    ("field", "likelihood", "impact"),
    [("likelihood", "certain", "major"), ("likelihood", "", "major"), ("impact", "high", "catastrophic")],
)
def test_values_outside_the_table_name_their_field(field: str, likelihood: str, impact: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        assess(TABLES, likelihood, impact)
    assert caught.value.field == field


@pytest.mark.parametrize(
    ("previous", "current", "warning"),
    [
        (None, 1, Level.RED),
        (None, 2, Level.AMBER),
        (None, 3, None),
        (None, 4, None),
        (2, 1, Level.RED),
        (3, 2, Level.AMBER),
        (4, 1, Level.RED),
        (2, 2, None),  # the same band again: nothing new to warn about
        (1, 2, None),  # better
        (1, 1, None),
    ],
)
def test_an_assessment_warns_when_its_priority_crosses_into_a_worse_band(
    previous: int | None, current: int, warning: Level | None
) -> None:
    assert warning_for_new_priority(TABLES, previous, current) == warning


@pytest.mark.parametrize(
    ("indicator", "value", "level"),
    [
        ("schedule_deviation_rate", 0.05, Level.GREEN),
        ("schedule_deviation_rate", 0.10, Level.AMBER),
        ("schedule_deviation_rate", 0.16, Level.RED),
        ("cost_overrun_rate", 0.07, Level.AMBER),
        ("cost_overrun_rate", 0.11, Level.RED),
        ("quality_pass_rate", 0.97, Level.GREEN),
        ("quality_pass_rate", 0.90, Level.AMBER),
        ("quality_pass_rate", 0.80, Level.RED),
    ],
)
def test_a_reading_takes_the_band_of_the_thresholds_table(indicator: str, value: float, level: Level) -> None:
    expected = DecisionTables(BPMN).decide("warning_thresholds", {"indicator": indicator, "value": value})
    assert reading_level(TABLES, Reading("E-1", indicator, value)) == level == Level(expected["status"])


def test_a_reporter_who_saw_worse_is_not_overruled() -> None:
    assert reading_level(TABLES, Reading("E-1", "cost_overrun_rate", 0.07, Level.RED)) == Level.RED
    assert reading_level(TABLES, Reading("E-1", "cost_overrun_rate", 0.20, Level.GREEN)) == Level.RED


def test_an_unknown_indicator_names_the_field() -> None:
    with pytest.raises(InvalidArgument) as caught:
        reading_level(TABLES, Reading("E-1", "happiness", 0.5))
    assert caught.value.field == "indicator"


def test_every_strategy_but_accept_needs_measures_owner_and_due_date() -> None:
    choice = ResponseChoice.parse("R-1", "mitigate", "add a senior analyst", "Ms Li", "2025-06-30")
    assert (choice.strategy, choice.due) == (Strategy.MITIGATE, date(2025, 6, 30))
    for field, values in [
        ("measures", ("R-1", "transfer", "", "Ms Li", "2025-06-30")),
        ("owner", ("R-1", "avoid", "decline the project", "", "2025-06-30")),
        ("due_date", ("R-1", "mitigate", "add a senior analyst", "Ms Li", "")),
        ("due_date", ("R-1", "mitigate", "add a senior analyst", "Ms Li", "30/06/2025")),
        ("strategy", ("R-1", "ignore", "", "", "")),
    ]:
        with pytest.raises(InvalidArgument) as caught:
            ResponseChoice.parse(*values)
        assert caught.value.field == field
    accepted = ResponseChoice.parse("R-1", "accept", "", "", "")  # 6.3.4: no special measures
    assert (accepted.strategy, accepted.measures, accepted.due) == (Strategy.ACCEPT, "", None)


def test_a_new_risk_names_its_invalid_field() -> None:
    risk = NewRisk.parse("E-1", "key consultant may leave", "implementation", "personnel", "delphi")
    assert (risk.stage, risk.category, risk.identification_method) == (
        Stage.IMPLEMENTATION,
        "personnel",
        "delphi",
    )
    assert NewRisk.parse("E-1", "unclear scope", "intake").category is None  # classified when assessed
    for field, values in [
        ("engagement_id", ("", "x", "intake")),
        ("description", ("E-1", " ", "intake")),
        ("stage", ("E-1", "x", "closing")),
        ("category", ("E-1", "x", "intake", "weather")),
        ("identification_method", ("E-1", "x", "intake", "market", "guessing")),
    ]:
        with pytest.raises(InvalidArgument) as caught:
            NewRisk.parse(*values)
        assert caught.value.field == field


def test_a_review_that_found_a_risk_describes_it() -> None:
    with pytest.raises(InvalidArgument) as caught:
        ReviewFindings.parse("E-1", True, True, True, "")
    assert caught.value.field == "new_risk_description"
    ReviewFindings.parse("E-1", True, False, False, "")


def test_the_heat_map_places_each_risk_in_its_cell() -> None:
    risks = [
        PlacedRisk("r1", "E-1", "a", "assessed", "high", "severe"),
        PlacedRisk("r2", "E-1", "b", "assessed", "high", "severe"),
        PlacedRisk("r3", "E-2", "c", "responded", "low", "minor"),
        PlacedRisk("r4", "E-2", "d", "assessed", "unheard-of", "minor"),
    ]
    cells = heat_map(TABLES, risks)
    assert [(c.cell.likelihood, c.cell.impact) for c in cells] == CELLS
    counts = {(c.cell.likelihood, c.cell.impact): [r.risk_id for r in c.risks] for c in cells}
    assert counts[("high", "severe")] == ["r1", "r2"]
    assert counts[("low", "minor")] == ["r3"]
    assert sum(len(c.risks) for c in cells) == 3


def test_the_register_stage_only_moves_forward() -> None:
    assert later_stage(Stage.INTAKE, Stage.DELIVERY) == Stage.DELIVERY
    assert later_stage(Stage.DELIVERY, Stage.IMPLEMENTATION) == Stage.DELIVERY


def test_a_measure_is_overdue_when_planned_past_its_due_date() -> None:
    assert is_overdue(date(2025, 1, 1), False, date(2025, 1, 2))
    assert not is_overdue(date(2025, 1, 1), True, date(2025, 1, 2))
    assert not is_overdue(None, False, date(2025, 1, 2))
    assert not is_overdue(date(2025, 1, 2), False, date(2025, 1, 2))
