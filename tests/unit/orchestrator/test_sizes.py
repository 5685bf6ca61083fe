"""Size limits on what an instance stores: measured without encoding what is plainly small, named without
echoing the value."""

from __future__ import annotations

from decimal import Decimal

import pytest

from consultflow.orchestrator.records import Waits
from consultflow.orchestrator.sizes import StateTooLarge, check_input, check_step, shown, utf8_size
from consultflow.platform import jsonutil
from consultflow.platform.errors import InvalidArgument
from consultflow.platform.limits import Limits

LIMITS = Limits(max_variable_bytes=100, max_instance_state_bytes=1000)


def test_sizes_are_utf8_bytes_once_they_may_matter() -> None:
    assert utf8_size("é" * 10, 1000) == 10, "far under the limit: characters suffice"
    assert utf8_size("é" * 100, 150) == 200, "near it: bytes"


def test_input_within_the_limits_passes() -> None:
    check_input({"a": "x" * 90, "b": Decimal("1.5"), "c": [1, 2]}, LIMITS, "variables_json")


def test_an_oversize_variable_is_named_with_the_limit_and_not_echoed() -> None:
    with pytest.raises(InvalidArgument) as refused:
        check_input({"small": 1, "notes": "secret" * 50}, LIMITS, "variables_json")
    assert refused.value.field == "variables_json"
    assert "'notes'" in refused.value.problem and "max_variable_bytes = 100" in refused.value.problem
    assert "CONSULTFLOW_LIMIT_MAX_VARIABLE_BYTES" in refused.value.problem
    assert "secret" not in refused.value.message


def test_multibyte_text_is_measured_in_bytes() -> None:
    with pytest.raises(InvalidArgument, match="'name' is 120 bytes"):
        check_input({"name": "é" * 59}, LIMITS, "variables_json")  # 59 characters, 118 bytes + quotes


def test_a_form_names_the_field_itself() -> None:
    with pytest.raises(InvalidArgument) as refused:
        check_input({"comment": "c" * 200}, LIMITS)
    assert refused.value.field == "comment"


def test_a_huge_name_is_shown_cut_short() -> None:
    name = "n" * 10_000
    with pytest.raises(InvalidArgument) as refused:
        check_input({name: "v" * 200}, LIMITS, "variables_json")
    assert len(refused.value.message) < 400
    assert shown(name).endswith("…'")


def test_many_small_variables_past_the_state_limit_are_refused() -> None:
    with pytest.raises(InvalidArgument, match="together, over the limit max_instance_state_bytes"):
        check_input({f"v{i}": "x" * 80 for i in range(20)}, LIMITS, "variables_json")


@pytest.mark.parametrize(
    ("value", "reason"),
    [(10**5000, "ValueError"), (object(), "TypeError")],
    ids=["a 5,000-digit integer", "an object"],
)
def test_a_value_json_cannot_hold_is_refused_naming_it(value: object, reason: str) -> None:
    with pytest.raises(InvalidArgument, match=f"'bad' cannot be stored as JSON \\({reason}\\)"):
        check_input({"ok": 1, "bad": value}, LIMITS, "variables_json")


def test_a_step_over_the_state_limit_is_stopped_naming_limit_and_size() -> None:
    with pytest.raises(StateTooLarge) as stopped:
        check_step("s" * 1001, "{}", {}, LIMITS)
    assert stopped.value.size == 1001 and stopped.value.limit_name == "max_instance_state_bytes"
    assert "1,001 bytes" in stopped.value.message


def test_a_step_counts_the_parts_stored_apart_with_its_state() -> None:
    check_step("s" * 400, "{}", {}, LIMITS, parts_bytes=600)
    with pytest.raises(StateTooLarge) as stopped:
        check_step("s" * 401, "{}", {}, LIMITS, parts_bytes=600)
    assert stopped.value.size == 1001, "the running part and its parts together"
    with pytest.raises(StateTooLarge):
        check_step("é" * 100, "{}", {}, LIMITS, parts_bytes=850)  # 200 bytes in UTF-8, though 100 characters


def test_a_step_with_an_oversize_variable_is_stopped_naming_it() -> None:
    variables = {"ok": 1, "summary": "z" * 150}
    with pytest.raises(StateTooLarge, match="variable 'summary' would be 152 bytes"):
        check_step("{}", jsonutil.dumps(variables), variables, LIMITS)


def test_a_step_within_the_limits_passes() -> None:
    variables = {"a": "x" * 50}
    check_step("s" * 1000, jsonutil.dumps(variables), variables, LIMITS)


def test_waits_keep_the_failure_count_and_the_parking_incident() -> None:
    waits = Waits(failures=2, parked="i-1")
    assert Waits.loads(waits.dumps()) == waits
    assert "failures" not in Waits().dumps(), "an ordinary row's summary is unchanged"
    assert Waits.loads('{"jobs": []}') == Waits()
