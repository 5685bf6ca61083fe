"""The one input module: field first, loose values in, typed values or a field-naming error out."""

from __future__ import annotations

from datetime import UTC, date, datetime
from enum import StrEnum

import pytest

from consultflow.platform import inputs
from consultflow.platform.errors import InvalidArgument


class Colour(StrEnum):
    RED = "red"
    DARK_BLUE = "dark_blue"


@pytest.mark.parametrize(
    ("call", "field", "problem"),
    [
        (lambda: inputs.required_text("name", "  "), "name", "is required"),
        (lambda: inputs.required_text("name", "abc", 2), "name", "is longer than 2 characters"),
        (lambda: inputs.optional_text("note", "abc", 2), "note", "is longer than 2 characters"),
        (lambda: inputs.choice("colour", "", Colour), "colour", "is required: one of red, dark_blue"),
        (lambda: inputs.choice("colour", "green", Colour), "colour", "'green' is not one of red, dark_blue"),
        (lambda: inputs.iso_date("due", "tomorrow"), "due", "'tomorrow' is not a date (YYYY-MM-DD)"),
        (lambda: inputs.iso_date("due", None), "due", "is required (YYYY-MM-DD)"),
        (lambda: inputs.iso_datetime("at", "noon"), "at", "'noon' is not an ISO 8601 date-time"),
        (lambda: inputs.number("value", ""), "value", "is required: a number"),
        (lambda: inputs.number("value", "many"), "value", "'many' is not a number"),
        (lambda: inputs.number("value", "inf"), "value", "must be a finite number"),
        (lambda: inputs.number("value", True), "value", "is required: a number"),
        (lambda: inputs.yes_no("ok", "maybe"), "ok", "'maybe' is not a yes/no value"),
        (lambda: inputs.names("team", 42), "team", "must be a list or text with one item per line"),
        (lambda: inputs.names("team", ["x" * 201]), "team", f"{'x' * 40!r}… is longer than 200 characters"),
    ],
)
def test_every_refusal_names_its_field(call: object, field: str, problem: str) -> None:
    assert callable(call)
    with pytest.raises(InvalidArgument) as error:
        call()
    assert (error.value.field, error.value.problem) == (field, problem)
    assert error.value.message == f"{field}: {problem}"


def test_loose_values_become_typed_values() -> None:
    assert inputs.required_text("name", "  Li Lei ") == "Li Lei"
    assert inputs.optional_text("note", None) == ""
    assert inputs.optional_text("count", 3) == "3"
    assert inputs.choice("colour", " Dark_Blue ", Colour) is Colour.DARK_BLUE
    assert inputs.optional_choice("colour", " ", Colour) is None
    assert inputs.iso_date("due", "2026-12-06") == date(2026, 12, 6)
    assert inputs.iso_date("due", datetime(2026, 12, 6, 9, tzinfo=UTC)) == date(2026, 12, 6)
    assert inputs.optional_date("due", "") is None
    assert inputs.iso_datetime("at", "2026-12-06T09:00:00") == datetime(2026, 12, 6, 9, tzinfo=UTC)
    assert inputs.iso_datetime("at", "2026-12-06T09:00:00Z") == datetime(2026, 12, 6, 9, tzinfo=UTC)
    assert inputs.number("value", "2.5") == 2.5
    assert [inputs.yes_no("ok", v) for v in (True, "Yes", "y", 1, "false", "N", 0)] == [
        True, True, True, True, False, False, False,
    ]  # fmt: skip


def test_names_and_lines_split_text_drop_blanks_and_keep_repeats_once() -> None:
    assert inputs.names("team", "Li Lei, Han Meimei;\nLi Lei,, ") == ("Li Lei", "Han Meimei")
    assert inputs.names("team", ["Li Lei", " ", "Li Lei"]) == ("Li Lei",)
    assert inputs.lines("steps", "one, still one\n\ntwo\r\n") == ("one, still one", "two")
    assert inputs.lines("steps", None) == ()


def test_renamed_fields_reports_the_callers_name_and_leaves_others_alone() -> None:
    with pytest.raises(InvalidArgument) as renamed, inputs.renamed_fields(description="risk_description"):
        inputs.required_text("description", "")
    assert renamed.value.message == "risk_description: is required"
    with pytest.raises(InvalidArgument) as kept, inputs.renamed_fields(description="risk_description"):
        inputs.required_text("stage", "")
    assert kept.value.field == "stage"
