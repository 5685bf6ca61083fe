"""The FEEL subset of decision table cells: every form dmn-js writes, its exact boundaries, and refusals."""

from __future__ import annotations

import math
from decimal import Decimal

import pytest

from consultflow.platform.feel import FeelError, parse_output, parse_unary_tests


def holds(cell: str, value: object) -> bool:
    return parse_unary_tests(cell).matches(value)


@pytest.mark.parametrize("cell", ["-", "", "   ", " - "])
def test_dash_or_empty_matches_anything(cell: str) -> None:
    tests = parse_unary_tests(cell)
    assert tests.is_any
    assert all(tests.matches(v) for v in (None, 0, "x", True, 1.5, Decimal("-3")))


@pytest.mark.parametrize(
    ("cell", "value", "expected"),
    [
        ('"onsite"', "onsite", True),
        ('"onsite"', "online", False),
        ('"onsite"', "Onsite", False),
        ('""', "", True),
        ('"a \\"quoted\\" word"', 'a "quoted" word', True),
        ('"back\\\\slash"', "back\\slash", True),
        ('"\\u9ad8"', "高", True),
        ('"高"', "高", True),
        ("42", 42, True),
        ("42", 42.0, True),
        ("42", Decimal("42.00"), True),
        ("42", 41, False),
        ("-0.5", -0.5, True),
        ("0.1", 0.1, True),
        ("0.3", 0.1 + 0.2, False),  # 0.30000000000000004, as its decimal text says
        ("true", True, True),
        ("true", False, False),
        ("false", False, True),
        ("false", None, False),
        ("true", 1, False),  # a FEEL boolean is not a number (Python's True == 1 does not hold)
        ("1", True, False),
        ('"1"', 1, False),
        ("1", "1", False),
        ('"x"', None, False),
    ],
)
def test_literals_match_equal_values_of_their_own_type(cell: str, value: object, expected: bool) -> None:
    assert holds(cell, value) is expected


@pytest.mark.parametrize(
    ("cell", "below", "at", "above"),
    [
        ("< 80", True, False, False),
        ("<80", True, False, False),
        ("<= 80", True, True, False),
        ("> 80", False, False, True),
        (">= 80", False, True, True),
    ],
)
def test_comparisons_at_their_exact_boundary(cell: str, below: bool, at: bool, above: bool) -> None:
    assert (holds(cell, 79.99), holds(cell, 80), holds(cell, 80.01)) == (below, at, above)
    assert holds(cell, 80.0) is at and holds(cell, Decimal("80.000")) is at
    assert holds(cell, math.nextafter(80.0, 0)) is below
    assert holds(cell, math.nextafter(80.0, 100)) is above


def test_a_float_sits_where_its_decimal_text_says() -> None:
    # 0.05 as a float is 0.05000000000000000277…; it still equals the literal 0.05
    assert holds("<= 0.05", 0.05) and not holds("> 0.05", 0.05)
    assert holds("<= 0.15", 0.15)  # 0.1499999999999999944… as a float
    assert holds(">= 0.95", 0.95)  # 0.9499999999999999555…
    assert not holds("<= 0.15", 0.1 + 0.05)  # 0.15000000000000002


def test_comparisons_with_strings_order_strings() -> None:
    assert holds('< "m"', "apple") and not holds('< "m"', "zebra")


@pytest.mark.parametrize(
    ("cell", "low_in", "high_in"),
    [
        ("[1..5]", True, True),
        ("]1..5]", False, True),
        ("(1..5]", False, True),
        ("[1..5[", True, False),
        ("[1..5)", True, False),
        ("]1..5[", False, False),
        ("(1..5)", False, False),
        ("[ 1 .. 5 ]", True, True),
    ],
)
def test_ranges_open_and_closed_ends(cell: str, low_in: bool, high_in: bool) -> None:
    assert holds(cell, 1) is low_in
    assert holds(cell, 5) is high_in
    assert holds(cell, 3) and holds(cell, 1.0000001) and holds(cell, 4.9999999)
    assert not holds(cell, 0.9999999) and not holds(cell, 5.0000001)


def test_a_decimal_range_at_its_boundaries() -> None:
    assert holds("]0.05..0.15]", 0.15) and holds("]0.05..0.15]", Decimal("0.15"))
    assert not holds("]0.05..0.15]", 0.05) and holds("]0.05..0.15]", 0.0501)
    assert holds("[0.85..0.95[", 0.85) and not holds("[0.85..0.95[", 0.95)
    assert holds("[-1..-0.5]", -0.75)


def test_string_ranges() -> None:
    assert holds('["a".."c"]', "b") and not holds('["a".."c"]', "d")


def test_lists_match_any_of_their_members() -> None:
    cell = '"onsite", "online"'
    assert holds(cell, "onsite") and holds(cell, "online") and not holds(cell, "none")
    mixed = '< 0, [10..20], 42, "n/a"'
    assert [holds(mixed, v) for v in (-1, 0, 10, 15, 20, 21, 42, "n/a")] == [
        True,
        False,
        True,
        True,
        True,
        False,
        True,
        True,
    ]


def test_not_negates_a_test_or_a_list() -> None:
    assert holds('not("onsite")', "online") and not holds('not("onsite")', "onsite")
    assert holds('not("a", "b")', "c") and not holds('not("a","b")', "b")
    assert holds("not([1..5])", 6) and not holds("not( [1..5] )", 5)
    assert holds("not(< 3)", 3) and not holds("not(< 3)", 2)
    assert holds("not(true)", False)


@pytest.mark.parametrize(
    ("cell", "value"),
    [
        ("< 80", None),
        ("< 80", "79"),
        ("[1..5]", "3"),
        ('< "m"', 3),
        ("< 1", True),
        ("not(< 3)", None),
        ('"a", < 3', "b"),  # no member matches, and one could not be applied
    ],
)
def test_ordering_a_value_of_another_type_is_an_error_not_a_quiet_miss(cell: str, value: object) -> None:
    with pytest.raises(FeelError, match="needs a"):
        holds(cell, value)


@pytest.mark.parametrize("value", [math.nan, math.inf, Decimal("NaN")])
def test_numbers_feel_cannot_compare_are_errors(value: object) -> None:
    with pytest.raises(FeelError):
        holds("< 1", value)


@pytest.mark.parametrize(
    ("cell", "message"),
    [
        ("True", "is a name"),  # the Python literal these tables used to hold
        ("False", "is a name"),
        ("None", "is a name"),
        ("high", "is a name"),  # a string without quotes
        ("'high'", "unexpected"),  # Python quotes
        ('"high" == x', "unexpected"),
        ("== 5", "unexpected"),
        ("!= 5", "unexpected"),
        ("= 5", "unexpected"),
        ("x > 5", "is a name"),
        ("? > 5", "unexpected"),
        ("[5..1]", "empty"),
        ('[1.."z"]', "different types"),
        ("[1..]", "expected a literal"),
        ("[1..5", "ends too early"),
        ("[1,5]", "expected '..'"),
        ("[true..false]", "number or a string"),
        ("< true", "number or a string"),
        ("<", "ends too early"),
        ("1 2", "unexpected"),
        ("1,", "ends too early"),
        ("not(-)", "unexpected"),
        ("not(not(1))", "is a name"),
        ("not 1", "expected '\\('"),
        ("not(1", "ends too early"),
        ('"unterminated', "unexpected"),
        ('"bad \\q escape"', "unknown escape"),
        ("1e5", "unexpected"),
        ('date("2024-01-01")', "is a name"),
        ("null", "is a name"),
        ("- 5", "unexpected"),
        ("--", "unexpected"),
    ],
)
def test_cells_outside_the_subset_are_refused(cell: str, message: str) -> None:
    with pytest.raises(FeelError, match=message):
        parse_unary_tests(cell)


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ('"avoid"', "avoid"),
        ('"6.3.1"', "6.3.1"),
        ('"a \\"b\\""', 'a "b"'),
        ("1", 1),
        ("-3", -3),
        ("0.5", Decimal("0.5")),
        ("true", True),
        ("false", False),
        ("null", None),
        ("", None),
        ("  ", None),
        (None, None),
    ],
)
def test_outputs_are_literals(text: str | None, value: object) -> None:
    result = parse_output(text)
    assert result == value and type(result) is type(value)


@pytest.mark.parametrize(
    "text", ["True", "False", "None", "avoid", "'avoid'", "1 + 1", '"a", "b"', "[1..2]", "-", "< 3", "x"]
)
def test_outputs_other_than_literals_are_refused(text: str) -> None:
    with pytest.raises(FeelError):
        parse_output(text)


def test_literals_of_a_cell_are_listed() -> None:
    assert parse_unary_tests('"a", [1..5], < 9').literals() == (
        "a",
        Decimal(1),
        Decimal(5),
        Decimal(9),
    )
