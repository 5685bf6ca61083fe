"""Decision tables: read whole and refused with table, rule and column named; hit policies; evaluation."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from lxml import etree

from consultflow.platform.decisions import (
    DecisionError,
    DecisionTable,
    DecisionTableError,
    DecisionTables,
    read_decision,
)
from consultflow.platform.errors import FailedPrecondition
from tests.support.catalogue import ROOT
from tests.support.dmn_builder import dmn

BANDS = dmn(
    "bands",
    [("Indicator", "indicator", "string"), ("Value", "value", "number")],
    [("status", "string")],
    [
        (['"rate"', "<= 0.05"], ['"green"']),
        (['"rate"', "]0.05..0.15]"], ['"amber"']),
        (['"rate"', "> 0.15"], ['"red"']),
    ],
)


def read(content: bytes) -> DecisionTable:
    return read_decision(etree.fromstring(content), "t.dmn")


def decide(table: DecisionTable, **data: Any) -> dict[str, Any]:
    return table.evaluate(lambda expression: data[expression])


def test_a_table_reads_and_decides() -> None:
    table = read(BANDS)
    assert (table.decision_id, table.hit_policy, table.source) == ("bands", "UNIQUE", "t.dmn")
    assert [decide(table, indicator="rate", value=v)["status"] for v in (0, 0.05, 0.0501, 0.15, 0.16)] == [
        "green",
        "green",
        "amber",
        "amber",
        "red",
    ]
    assert decide(table, indicator="other", value=0.1) == {}


def test_the_hit_policy_defaults_to_unique() -> None:
    assert read(BANDS.replace(b' hitPolicy="UNIQUE"', b"")).hit_policy == "UNIQUE"


def overlapping(policy: str) -> DecisionTable:
    return read(
        dmn(
            "overlap",
            [("Score", "score", "number")],
            [("verdict", "string"), ("weight", "integer")],
            [(["< 80"], ['"low"', "1"]), (["< 50"], ['"very low"', "2"]), ([">= 80"], ['"fine"', "3"])],
            hit_policy=policy,
        )
    )


def test_unique_refuses_two_matching_rules_naming_the_table_and_the_rules() -> None:
    table = overlapping("UNIQUE")
    assert decide(table, score=60) == {"verdict": "low", "weight": 1}
    with pytest.raises(DecisionError) as caught:
        decide(table, score=40)
    message = str(caught.value)
    assert "decision 'overlap' (t.dmn)" in message
    assert "rule 1 (overlap_rule_1), rule 2 (overlap_rule_2)" in message


def test_first_takes_the_first_matching_rule_in_table_order() -> None:
    table = overlapping("FIRST")
    assert decide(table, score=40) == {"verdict": "low", "weight": 1}
    assert [r.number for r in table.matching(lambda _: 40)] == [1]


def test_collect_lists_every_matching_rules_outputs_in_order() -> None:
    table = overlapping("COLLECT")
    assert decide(table, score=40) == {"verdict": ["low", "very low"], "weight": [1, 2]}
    assert decide(table, score=90) == {"verdict": ["fine"], "weight": [3]}


def test_any_needs_every_matching_rule_to_agree() -> None:
    table = overlapping("ANY")
    assert decide(table, score=90) == {"verdict": "fine", "weight": 3}
    with pytest.raises(DecisionError, match="hit policy ANY"):
        decide(table, score=40)


@pytest.mark.parametrize("policy", ["PRIORITY", "OUTPUT ORDER", "RULE ORDER", "SOMETHING"])
def test_an_unsupported_hit_policy_is_refused(policy: str) -> None:
    with pytest.raises(DecisionTableError, match=f"hit policy {policy} is not supported"):
        overlapping(policy)


def test_collect_with_an_aggregation_is_refused() -> None:
    content = dmn(
        "c",
        [("X", "x", "number")],
        [("n", "integer")],
        [(["-"], ["1"])],
        "COLLECT",
        None,
        ' aggregation="SUM"',
    )
    with pytest.raises(DecisionTableError, match="aggregation SUM"):
        read(content)


def test_input_expressions_are_read_only_when_a_cell_needs_them() -> None:
    table = read(
        dmn(
            "lazy",
            [("A", "a", "string"), ("B", "b", "boolean")],
            [("out", "string")],
            [(['"x"', "true"], ['"1"']), (['"y"', "-"], ['"2"'])],
            hit_policy="FIRST",
        )
    )
    read_expressions: list[str] = []

    def reader(expression: str) -> object:
        read_expressions.append(expression)
        return {"a": "y"}[expression]

    assert table.evaluate(reader) == {"out": "2"}
    assert read_expressions == ["a"]  # once, and `b` never


def test_an_input_that_cannot_be_read_names_the_column() -> None:
    def reader(expression: str) -> object:
        raise NameError(f"name {expression!r} is not defined")

    with pytest.raises(DecisionError, match="input 'Value': cannot evaluate 'value'"):
        read(BANDS).evaluate(lambda e: "rate" if e == "indicator" else reader(e))


def test_a_value_a_cell_cannot_compare_names_rule_and_column() -> None:
    with pytest.raises(DecisionError) as caught:
        decide(read(BANDS), indicator="rate", value=None)
    assert "rule 1 (bands_rule_1), input 'Value': <= 0.05 needs a number, not null" in str(caught.value)


def cells(cell: str, type_ref: str = "string", allowed: str | None = None, output: str = '"ok"') -> bytes:
    return dmn(
        "tbl",
        [("Level", "level", type_ref), ("Other", "other", "number")],
        [("result", "string")],
        [(['"high"' if type_ref == "string" else "-", "-"], ['"a"']), ([cell, "< 3"], [output])],
        input_values={0: allowed} if allowed is not None else None,
    )


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (cells("True", "boolean"), "cannot read 'True': 'True' at column 1 is a name"),
        (cells("high"), "cannot read 'high'"),
        (cells("'high'"), "cannot read \"'high'\""),
        (cells('level == "high"'), "cannot read"),
        (cells("5", "string"), "the column's type is string but the cell names 5"),
        (cells('"x"', "number"), 'the column\'s type is number but the cell names "x"'),
        (cells("true", "number"), "the column's type is number but the cell names true"),
        (
            cells('"hihg"', allowed='"high","medium","low"'),
            '"hihg" is not one of the column\'s allowed values',
        ),
        (cells('not("hihg")', allowed='"high","low"'), '"hihg" is not one of the column\'s allowed values'),
    ],
)
def test_a_cell_outside_the_subset_names_table_rule_and_input_column(content: bytes, problem: str) -> None:
    with pytest.raises(DecisionTableError) as caught:
        read(content)
    message = str(caught.value)
    assert message.startswith("t.dmn: decision 'tbl', rule 2 (tbl_rule_2), input 'Level': "), message
    assert problem in message
    assert caught.value.element == "r2_in_0" and caught.value.line > 0


@pytest.mark.parametrize(
    ("output", "problem"),
    [
        ("True", "cannot read 'True'"),
        ("'ok'", "cannot read \"'ok'\""),
        ("ok", "cannot read 'ok'"),
        ('"a" + "b"', "cannot read"),
        ("1", "the column's type is string but the cell names 1"),
    ],
)
def test_an_output_outside_the_subset_names_table_rule_and_output_column(output: str, problem: str) -> None:
    with pytest.raises(DecisionTableError) as caught:
        read(cells('"high"', output=output))
    message = str(caught.value)
    assert message.startswith("t.dmn: decision 'tbl', rule 2 (tbl_rule_2), output 'Result': "), message
    assert problem in message


def test_output_values_and_integer_columns_are_checked() -> None:
    content = dmn("o", [("X", "x", "number")], [("p", "integer")], [(["-"], ["1.5"])])
    with pytest.raises(DecisionTableError, match=r"rule 1 .*output 'P': the column's type is integer"):
        read(content)
    allowed = content.replace(
        b'typeRef="integer" />',
        b'typeRef="integer"><outputValues><text>[1..4]</text></outputValues></output>',
    )
    with pytest.raises(DecisionTableError, match="5 is not one of the column's allowed values"):
        read(allowed.replace(b"<text>1.5</text></outputEntry>", b"<text>5</text></outputEntry>"))


def test_outputs_are_typed_literals() -> None:
    table = read(
        dmn(
            "types",
            [("X", "x", "number")],
            [("s", "string"), ("n", "integer"), ("d", "double"), ("b", "boolean"), ("z", "string")],
            [(["-"], ['"text"', "2", "0.25", "false", "null"])],
        )
    )
    result = decide(table, x=1)
    assert result == {"s": "text", "n": 2, "d": Decimal("0.25"), "b": False, "z": None}
    assert type(result["n"]) is int


def test_an_input_expression_the_script_engine_would_refuse_is_refused() -> None:
    content = BANDS.replace(b"<text>value</text>", b"<text>value.__class__</text>")
    with pytest.raises(DecisionTableError, match="input 'Value': refused input expression"):
        read(content)


def test_a_cell_in_another_expression_language_is_refused() -> None:
    content = BANDS.replace(
        b'<inputEntry id="r2_in_1">', b'<inputEntry id="r2_in_1" expressionLanguage="python">'
    )
    with pytest.raises(DecisionTableError, match=r"rule 2 .* expression language 'python'"):
        read(content)


def test_a_rule_with_a_missing_cell_is_refused() -> None:
    content = BANDS.replace(b'<inputEntry id="r3_in_1"><text>&gt; 0.15</text></inputEntry>', b"")
    with pytest.raises(DecisionTableError, match=r"rule 3 .*1 input and 1 output entries"):
        read(content)


def test_a_file_with_two_decisions_or_no_table_is_refused() -> None:
    two = BANDS.replace(b"</definitions>", b'<decision id="second"/></definitions>')
    with pytest.raises(DecisionTableError, match="exactly one decision"):
        read(two)
    literal = BANDS.split(b"<decisionTable")[0] + b"</decision></definitions>"
    with pytest.raises(DecisionTableError, match="exactly one decision table"):
        read(literal)


# ------------------------------------------------------------------------------- DecisionTables (services)


def test_services_refuse_a_bad_table_at_start(tmp_path: Path) -> None:
    (tmp_path / "good.dmn").write_bytes(BANDS)
    (tmp_path / "bad.dmn").write_bytes(cells("True", "boolean"))
    with pytest.raises(
        DecisionTableError, match=r"bad.dmn: decision 'tbl', rule 2 \(tbl_rule_2\), input 'Level'"
    ):
        DecisionTables(tmp_path)


def test_services_decide_with_the_restricted_engine(tmp_path: Path) -> None:
    (tmp_path / "bands.dmn").write_bytes(BANDS)
    tables = DecisionTables(tmp_path)
    assert tables.decide("bands", {"indicator": "rate", "value": 0.15}) == {"status": "amber"}
    assert tables.rules("bands")[1] == (['"rate"', "]0.05..0.15]"], {"status": '"amber"'})
    with pytest.raises(FailedPrecondition, match="cannot evaluate 'value'"):
        tables.decide("bands", {"indicator": "rate"})
    with pytest.raises(FailedPrecondition, match="not deployed"):
        tables.decide("missing", {})


def test_the_repositorys_tables_all_read() -> None:
    tables = DecisionTables(ROOT / "bpmn")
    for decision_id in ("risk_matrix", "warning_thresholds", "delivery_mode", "satisfaction_followup"):
        assert tables.table(decision_id).rules
    assert tables.table("warning_thresholds").hit_policy == "UNIQUE"
