"""The risk rules without a server, over the real decision tables in bpmn/: the matrix against the
regulation, warning bands and when an assessment raises a warning, response and register rules."""

from __future__ import annotations

from datetime import date

import pytest

from consultflow.platform.decisions import DecisionTables
from consultflow.platform.errors import FailedPrecondition, InvalidArgument
from consultflow.platform.settings import repository_root
from consultflow.risk.adapters import RiskTables
from consultflow.risk.domain import (
    Assessment,
    Deviation,
    DeviationDecision,
    Level,
    NewRisk,
    Occurrence,
    PlacedRisk,
    Reading,
    RegisterStatus,
    ResponseChoice,
    ResponseStatus,
    ReviewFindings,
    RiskStatus,
    Stage,
    Strategy,
    assess,
    check_can_carry_out,
    check_can_respond,
    check_deviation_awaits,
    check_register_open,
    check_response_open,
    check_risk_open,
    heat_map,
    is_overdue,
    later_stage,
    level_of_open_warning,
    reading_level,
    status_after_assessment,
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
        ("medium", "major", Strategy.MITIGATE, "assumption"),  # 較高 is not one of the three levels
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


def response(*values: str) -> dict[str, str]:
    return dict(zip(("risk_id", "strategy", "measures", "owner", "due_date"), values, strict=False))


def new_risk(*values: str) -> dict[str, str]:
    fields = ("engagement_id", "description", "stage", "category", "identification_method")
    return dict(zip(fields, values, strict=False))


def test_every_strategy_but_accept_needs_measures_owner_and_due_date() -> None:
    choice = ResponseChoice.parse(
        **response("R-1", "mitigate", "add a senior analyst", "Ms Li", "2025-06-30")
    )
    assert (choice.strategy, choice.due) == (Strategy.MITIGATE, date(2025, 6, 30))
    for field, values in [
        ("measures", ("R-1", "transfer", "", "Ms Li", "2025-06-30")),
        ("owner", ("R-1", "avoid", "decline the project", "", "2025-06-30")),
        ("due_date", ("R-1", "mitigate", "add a senior analyst", "Ms Li", "")),
        ("due_date", ("R-1", "mitigate", "add a senior analyst", "Ms Li", "30/06/2025")),
        ("strategy", ("R-1", "ignore", "", "", "")),
    ]:
        with pytest.raises(InvalidArgument) as caught:
            ResponseChoice.parse(**response(*values))
        assert caught.value.field == field
    accepted = ResponseChoice.parse(**response("R-1", "accept", "", "", ""))  # 6.3.4: no special measures
    assert (accepted.strategy, accepted.measures, accepted.due) == (Strategy.ACCEPT, "", None)


@pytest.mark.parametrize(("likelihood", "impact"), CELLS)
def test_the_matrix_prescribes_the_strategy_and_a_different_one_needs_a_reason(
    likelihood: str, impact: str
) -> None:
    prescribed = assess(TABLES, likelihood, impact).suggested_strategy
    keeps = ResponseChoice.parse(**response("R-1", prescribed.value, "as planned", "Ms Li", "2025-06-30"))
    assert keeps.deviation(prescribed.value) is Deviation.NONE
    for other in Strategy:
        if other is prescribed:
            continue
        bare = ResponseChoice.parse(**response("R-1", other.value, "as planned", "Ms Li", "2025-06-30"))
        with pytest.raises(InvalidArgument, match=f"prescribes '{prescribed.value}'") as caught:
            bare.deviation(prescribed.value)
        assert caught.value.field == "deviation_reason"
        justified = ResponseChoice.parse(
            **response("R-1", other.value, "as planned", "Ms Li", "2025-06-30"),
            deviation_reason="the client insures the data centre itself",
        )
        assert justified.deviation(prescribed.value) is Deviation.AWAITING_APPROVAL


def test_accepting_a_high_severe_risk_is_not_a_free_choice() -> None:
    prescribed = assess(TABLES, "high", "severe").suggested_strategy  # 6.3.1: avoid
    with pytest.raises(InvalidArgument) as caught:
        ResponseChoice.parse(**response("R-1", "accept", "", "", "")).deviation(prescribed.value)
    assert caught.value.field == "deviation_reason"


def test_management_approves_a_deviation_or_rejects_it_with_a_note() -> None:
    approved = DeviationDecision.parse(response_id="P-1", approved="yes", decided_by="Director Wang")
    assert (approved.outcome(), approved.note) == (Deviation.APPROVED, "")
    rejected = DeviationDecision.parse(response_id="P-1", approved=False, note="insurance does not cover it")
    assert rejected.outcome() is Deviation.REJECTED
    for field, values in [
        ("deviation_note", {"response_id": "P-1", "approved": False}),
        ("deviation_approved", {"response_id": "P-1", "approved": "maybe"}),
        ("response_id", {"response_id": "", "approved": True}),
    ]:
        with pytest.raises(InvalidArgument) as caught:
            DeviationDecision.parse(**values)  # type: ignore[arg-type]
        assert caught.value.field == field


def test_only_a_deviation_awaiting_approval_is_decided() -> None:
    check_deviation_awaits(Deviation.AWAITING_APPROVAL, "P-1")
    for settled in (Deviation.NONE, Deviation.APPROVED, Deviation.REJECTED):
        with pytest.raises(FailedPrecondition, match="no deviation awaiting approval"):
            check_deviation_awaits(settled, "P-1")


def test_a_deviating_plan_is_carried_out_only_once_approved() -> None:
    check_can_carry_out(ResponseStatus.PLANNED, Deviation.NONE, "P-1")
    check_can_carry_out(ResponseStatus.PLANNED, Deviation.APPROVED, "P-1")
    with pytest.raises(FailedPrecondition, match="awaits approval"):
        check_can_carry_out(ResponseStatus.PLANNED, Deviation.AWAITING_APPROVAL, "P-1")
    with pytest.raises(FailedPrecondition, match="plan the risk again with the prescribed strategy"):
        check_can_carry_out(ResponseStatus.REJECTED, Deviation.REJECTED, "P-1")


def test_a_risk_that_happened_says_what_happened() -> None:
    happened = Occurrence.parse(
        risk_id="R-1", description=" the room was double-booked ", reported_by="Ms Li"
    )
    assert (happened.description, happened.reported_by) == ("the room was double-booked", "Ms Li")
    with pytest.raises(InvalidArgument) as caught:
        Occurrence.parse(risk_id="R-1", description="")
    assert caught.value.field == "description"


@pytest.mark.parametrize(
    ("open_level", "reading", "kept"),
    [
        (Level.AMBER, Level.RED, Level.RED),  # worse: the open warning turns red
        (Level.RED, Level.AMBER, Level.RED),  # better, but nobody acted yet: it stays red
        (Level.AMBER, Level.AMBER, Level.AMBER),
        (Level.AMBER, Level.GREEN, Level.AMBER),
    ],
)
def test_an_open_warning_keeps_the_worst_band_of_its_lasting_breach(
    open_level: Level, reading: Level, kept: Level
) -> None:
    assert level_of_open_warning(open_level, reading) is kept


def test_a_new_risk_names_its_invalid_field() -> None:
    risk = NewRisk.parse(
        **new_risk("E-1", "key consultant may leave", "implementation", "personnel", "delphi")
    )
    assert (risk.stage, risk.category, risk.identification_method) == (
        Stage.IMPLEMENTATION,
        "personnel",
        "delphi",
    )
    assert (
        NewRisk.parse(**new_risk("E-1", "unclear scope", "intake")).category is None
    )  # classified when assessed
    for field, values in [
        ("engagement_id", ("", "x", "intake")),
        ("description", ("E-1", " ", "intake")),
        ("stage", ("E-1", "x", "closing")),
        ("category", ("E-1", "x", "intake", "weather")),
        ("identification_method", ("E-1", "x", "intake", "market", "guessing")),
    ]:
        with pytest.raises(InvalidArgument) as caught:
            NewRisk.parse(**new_risk(*values))
        assert caught.value.field == field


def test_a_review_that_found_a_risk_describes_it() -> None:
    with pytest.raises(InvalidArgument) as caught:
        ReviewFindings.parse(
            engagement_id="E-1",
            measures_carried_out=True,
            measures_effective=True,
            new_risk_found=True,
            new_risk_description="",
        )
    assert caught.value.field == "new_risk_description"
    quiet = ReviewFindings.parse(
        engagement_id="E-1",
        measures_carried_out="yes",
        measures_effective="no",
        new_risk_found=False,
        new_risk_description="",
    )
    assert (quiet.measures_carried_out, quiet.measures_effective, quiet.new_risk_found) == (
        True,
        False,
        False,
    )


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


def test_a_closed_register_takes_no_more_risks() -> None:
    check_register_open(RegisterStatus.OPEN, "E-1")
    with pytest.raises(FailedPrecondition, match="register of engagement 'E-1' is closed"):
        check_register_open(RegisterStatus.CLOSED, "E-1")


def test_a_risk_is_assessed_then_responded_and_a_closed_one_is_left_alone() -> None:
    assert status_after_assessment(RiskStatus.REGISTERED) is RiskStatus.ASSESSED
    assert status_after_assessment(RiskStatus.ASSESSED) is RiskStatus.ASSESSED
    assert status_after_assessment(RiskStatus.RESPONDED) is RiskStatus.RESPONDED  # a reassessment
    for status in (RiskStatus.REGISTERED, RiskStatus.ASSESSED, RiskStatus.RESPONDED):
        check_risk_open(status, "R-1")
    with pytest.raises(FailedPrecondition, match="risk 'R-1' is closed"):
        check_risk_open(RiskStatus.CLOSED, "R-1")


def test_a_response_is_chosen_only_for_an_assessed_open_risk() -> None:
    check_can_respond(RiskStatus.ASSESSED, "R-1")
    check_can_respond(RiskStatus.RESPONDED, "R-1")  # a new plan replaces the strategy
    with pytest.raises(FailedPrecondition, match=r"not assessed yet: assess it \(6.2\)"):
        check_can_respond(RiskStatus.REGISTERED, "R-1")
    with pytest.raises(FailedPrecondition, match="is closed"):
        check_can_respond(RiskStatus.CLOSED, "R-1")


def test_a_response_is_completed_once() -> None:
    check_response_open(ResponseStatus.PLANNED, "P-1")
    with pytest.raises(FailedPrecondition, match="response 'P-1' was completed already"):
        check_response_open(ResponseStatus.DONE, "P-1")


def test_an_assessment_confirms_or_supplies_the_classification() -> None:
    bare = Assessment.parse(risk_id="R-1", likelihood=" high ", impact="severe")
    assert (bare.likelihood, bare.impact) == ("high", "severe")
    assert bare.classification("market", "delphi") == ("market", "delphi")
    given = Assessment.parse(
        risk_id="R-1",
        likelihood="high",
        impact="severe",
        category="financial",
        identification_method="checklist",
    )
    assert given.classification("market", "delphi") == ("financial", "checklist")
    for category, method, field in [("", "delphi", "category"), ("market", "", "identification_method")]:
        with pytest.raises(InvalidArgument) as caught:
            bare.classification(category, method)
        assert caught.value.field == field


def test_a_reading_names_its_invalid_field() -> None:
    reading = Reading.parse(engagement_id="E-1", indicator="cost_overrun_rate", value="0.07", status="Red")
    assert (reading.value, reading.reported, reading.request_id) == (0.07, Level.RED, "")
    for field, engagement, value, status in [
        ("value", "E-1", "lots", ""),
        ("status", "E-1", 0.5, "purple"),
        ("engagement_id", " ", 0.5, ""),
    ]:
        with pytest.raises(InvalidArgument) as caught:
            Reading.parse(engagement_id=engagement, indicator="cost_overrun_rate", value=value, status=status)
        assert caught.value.field == field
