"""A form's date field takes a day or a moment, as Camunda's date type does (forms.py)."""

from __future__ import annotations

import pytest

from consultflow.orchestrator.forms import FormField, validate_form
from consultflow.platform.errors import InvalidArgument

WHEN = FormField(id="delivery_time", label="交付時間 Time", type="date", required=True)


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        ("2030-06-01", "2030-06-01"),
        ("2030-06-01T10:00:00+08:00", "2030-06-01T10:00:00+08:00"),
        ("2030-06-01T10:00", "2030-06-01T10:00:00"),
        ("2030-06-01T02:00:00Z", "2030-06-01T02:00:00+00:00"),
    ],
)
def test_a_date_field_keeps_a_day_or_a_moment(given: str, kept: str) -> None:
    assert validate_form([WHEN], {"delivery_time": given}) == {"delivery_time": kept}


@pytest.mark.parametrize("given", ["10:00 on the agreed day", "2030-13-01", "tomorrow"])
def test_anything_else_is_refused_naming_the_field(given: str) -> None:
    with pytest.raises(InvalidArgument) as refused:
        validate_form([WHEN], {"delivery_time": given})
    assert refused.value.field == "delivery_time"
