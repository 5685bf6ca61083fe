"""Process data comes back from the database exactly as it went in, whatever a caller or a script puts in it.

SpiffWorkflow marks its own objects in the stored JSON with a `typename` key. Found by trying: a client's
variable named `typename` (CreateInstance, a form, a worker's result) made the instance unloadable at its
next step, `{"typename": "datetime", ...}` came back as a datetime, and a script's bytes, frozenset or
tuple-keyed dict failed the step that wrote them (CreateInstance answered INTERNAL). Every test here
reloads the instance from the database (a second orchestrator on the same file) before looking, so the
live workflow cached in memory cannot hide what was stored.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import pytest

from consultflow.orchestrator import engine
from tests.support.bpmn_builder import bpmn
from tests.support.orchestrator_harness import Harness

WAIT_THEN_CHECK = """<startEvent id="s"/><scriptTask id="make"><script>{make}</script></scriptTask>
<userTask id="wait"/><scriptTask id="check"><script>{check}</script></scriptTask>
<userTask id="after"/><endEvent id="e"/>"""
FLOWS = "s -> make\nmake -> wait\nwait -> check\ncheck -> after\nafter -> e"

# (script that makes the value, an expression true only when it came back with its type and contents)
VALUES = {
    "bytes": ("v = 'é'.encode()", "v.decode() == 'é'"),
    "tuple": ("v = (1, ('a', 2))", "v == (1, ('a', 2))"),
    "set": ("v = {1, 2}", "isinstance(v, set) and v == {1, 2}"),
    "frozenset": ("v = frozenset([(1, 2), 3])", "isinstance(v, frozenset) and (1, 2) in v"),
    "tuple_keys": ("v = {(1, 2): 'x', 3: 'y'}", "v[(1, 2)] == 'x' and v[3] == 'y'"),
    "a_key_named_typename": (
        "v = {'typename': 'UUID', 'value': 'zz'}",
        "v == {'typename': 'UUID', 'value': 'zz'}",
    ),
    "spiffs_own_shape": (
        "v = [{'typename': 'datetime', 'value': '2020-01-01T00:00:00'}]",
        "isinstance(v[0], dict) and v[0]['value'] == '2020-01-01T00:00:00'",
    ),
    "our_own_wrapper_shape": (
        "v = {'typename': 'consultflow.dict', 'items': [['a', 1]]}",
        "v == {'typename': 'consultflow.dict', 'items': [['a', 1]]}",
    ),
}
# a loop is not trivially safe, so the same script runs in a sandbox process and its values cross back
IN_A_SANDBOX = "for _ in range(2):\n    pass\n"


@pytest.fixture(scope="module")
def path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return Path(tmp_path_factory.mktemp("stored-values"))


@pytest.fixture()
def h(path: Path) -> Iterator[Harness]:
    harness = Harness.sqlite(path)
    yield harness
    harness.close()


def reloaded(path: Path) -> Harness:
    """A second orchestrator on the same database: it knows nothing but what was stored."""
    return Harness.sqlite(path)


@pytest.mark.parametrize("sandboxed", [False, True], ids=["in_process", "sandbox"])
@pytest.mark.parametrize("name", sorted(VALUES))
def test_a_scripts_value_comes_back_as_it_was_made(
    h: Harness, path: Path, name: str, sandboxed: bool
) -> None:
    make, check = VALUES[name]
    process_id = f"made_{name}_{'sandbox' if sandboxed else 'in_process'}"
    script = (IN_A_SANDBOX if sandboxed else "") + make
    h.deploy(
        **{
            process_id: bpmn(
                process_id,
                WAIT_THEN_CHECK.format(make=escape(script), check=escape(f"same = {check}\ndel v")),
                FLOWS,
            )
        }
    )
    instance_id = h.start(process_id)
    assert h.status(instance_id) == "ACTIVE"
    assert not h.view(instance_id).incidents
    again = reloaded(path)
    try:
        again.submit("wait", instance_id)
        view = again.view(instance_id)
        assert not view.incidents, view.incidents
        assert again.variables(instance_id)["same"] is True
        assert [e.element_id for e in view.active] == ["after"]
    finally:
        again.close()


INPUTS: dict[str, dict[str, Any]] = {
    "a_variable_named_typename": {"typename": "x"},
    "spiffs_uuid_shape": {"client": {"typename": "UUID", "value": "not a uuid"}},
    "spiffs_datetime_shape": {"when": [{"typename": "datetime", "value": "2020-01-01T00:00:00"}]},
}


@pytest.mark.parametrize("name", sorted(INPUTS))
def test_a_callers_variables_come_back_as_sent(h: Harness, path: Path, name: str) -> None:
    h.deploy(
        callers=bpmn(
            "callers",
            '<startEvent id="s"/><userTask id="wait"/><userTask id="after"/><endEvent id="e"/>',
            "s -> wait\nwait -> after\nafter -> e",
        )
    )
    sent = INPUTS[name]
    instance_id = h.start("callers", **sent)
    again = reloaded(path)
    try:
        again.submit("wait", instance_id, note=sent)  # a form's value of the same shape, too
        variables = again.variables(instance_id)
        assert {k: variables[k] for k in sent} == sent
        assert variables["note"] == sent
        assert again.status(instance_id) == "ACTIVE"
    finally:
        again.close()


def test_plain_data_is_stored_as_plain_json() -> None:
    """Only what needs it is wrapped: ordinary data reads the same in the stored state as before."""
    plain = {"client": {"name": "甲", "tags": ["a", "b"], "score": 1.5, "ok": True, "none": None}}
    registry = engine.SERIALIZER.registry
    assert registry.clean(plain) is not None
    assert registry.clean(plain) == plain
    assert registry.restore(registry.convert(plain)) == plain
