"""`json_size_within` measures a value as compact JSON without writing it out, and stops past its limit."""

from datetime import date
from decimal import Decimal
from typing import Any

import pytest

from consultflow.platform.jsonutil import dumps, json_size_within

VALUES: list[Any] = [
    {"a": [1, 2.5, None, True, "x", 'héllo\n"q"'], "b": {}},
    [],
    {},
    "",
    [[]],
    {"k": Decimal("1.5"), "d": date(2026, 1, 1), "s": {1, 2}},
    (1, 2),
    10**30,
    {"é": "ü" * 10, "中文": ["客户", "电话"]},
]


@pytest.mark.parametrize("value", VALUES)
def test_within_the_limit_it_is_the_exact_size(value: Any) -> None:
    assert json_size_within(value, 10**9) == len(dumps(value).encode())


def test_a_value_that_shares_one_part_many_times_is_measured_only_up_to_the_limit() -> None:
    shared: Any = "a" * 900_000
    for _ in range(30):  # 2**30 copies as JSON: about a petabyte
        shared = [shared, shared]
    # Writing it out would never end (the test would hang): measuring stops just past the limit.
    assert json_size_within(shared, 1_048_576) > 1_048_576


def test_a_value_that_contains_itself_is_over_any_limit() -> None:
    loop: list[Any] = []
    loop.append(loop)
    assert json_size_within(loop, 10_000) > 10_000
