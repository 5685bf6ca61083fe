"""docs/limits.md names every limit: its setting and its default, as `platform/limits.py` has them."""

from dataclasses import fields
from pathlib import Path

import pytest

from consultflow.platform.limits import DEFAULT_LIMITS, Limits, env_name

DOC = (Path(__file__).resolve().parents[2] / "docs" / "limits.md").read_text(encoding="utf-8")


def shown(value: object) -> set[str]:
    """How a default may be written in the doc: as is, or with thousands separators."""
    forms = {str(value)}
    if isinstance(value, int):
        forms.add(f"{value:,}")
    if isinstance(value, float) and value.is_integer():
        forms |= {str(int(value)), f"{int(value):,}"}
    return forms


@pytest.mark.parametrize("name", [f.name for f in fields(Limits)])
def test_every_limit_is_in_the_doc_with_its_setting_and_default(name: str) -> None:
    rows = [line for line in DOC.splitlines() if line.startswith("|") and f"`{name}`" in line]
    assert rows, f"docs/limits.md has no table row for `{name}`"
    default = getattr(DEFAULT_LIMITS, name)
    assert any(env_name(name) in row for row in rows), f"its row does not name {env_name(name)}"
    assert any(form in row for row in rows for form in shown(default)), f"its row does not give {default}"


def test_limits_are_read_from_the_environment() -> None:
    limits = Limits.from_env({env_name("max_fan_out"): "7", env_name("min_timer_cycle_seconds"): "2.5"})
    assert (limits.max_fan_out, limits.min_timer_cycle_seconds) == (7, 2.5)
    assert limits.script_cpu_ms == DEFAULT_LIMITS.script_cpu_ms
