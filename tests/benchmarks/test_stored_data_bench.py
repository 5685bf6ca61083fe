"""What storing process data exactly costs (orchestrator/stored_data.py): the same workflow serialized by
Spiff's plain registry and by ours, alternating in one process so machine load falls on both alike.
Prints figures, asserts nothing about speed (`make bench`)."""

from __future__ import annotations

import time
from typing import Any

import pytest
from SpiffWorkflow.bpmn.serializer.default.workflow import TaskConverter

from consultflow.orchestrator import engine
from consultflow.platform.scripting import ScriptEngine
from tests.support.bpmn_builder import bpmn

pytestmark = pytest.mark.benchmark

TASKS = 120
ROUNDS = 5
REPEATS = 30


def data_heavy_workflow() -> Any:
    """A chain of script tasks, each adding a nested variable: every task has data changes to write."""
    scripts = "".join(
        f'<scriptTask id="t{i}"><script>v{i} = {{"name": "client {i}", "items": '
        f'[{{"a": {i}, "b": [1, 2, 3], "c": {{"d": "x"}}}} for _ in range(3)], "ok": True}}</script></scriptTask>'
        for i in range(TASKS)
    )
    flows = (
        "s -> t0\n" + "".join(f"t{i} -> t{i + 1}\n" for i in range(TASKS - 1)) + f"t{TASKS - 1} -> w\nw -> e"
    )
    specs = engine.parse_resources(
        {
            "heavy.bpmn": bpmn(
                "heavy", f'<startEvent id="s"/>{scripts}<userTask id="w"/><endEvent id="e"/>', flows
            )
        }
    )["heavy"]
    workflow = engine.new_workflow(specs, ScriptEngine(), {})
    workflow.do_engine_steps()
    return workflow


def plain_serializer(monkeypatch: pytest.MonkeyPatch) -> Any:
    """The serializer as it was before stored_data.py: Spiff's registry and task converter."""
    monkeypatch.setattr(engine, "StoredDataRegistry", lambda: None)
    monkeypatch.setattr(engine, "StoredDataTaskConverter", TaskConverter)
    serializer = engine._make_serializer()
    monkeypatch.undo()
    return serializer


def test_exact_storage_beside_plain(monkeypatch: pytest.MonkeyPatch) -> None:
    workflow = data_heavy_workflow()
    plain, exact = plain_serializer(monkeypatch), engine.SERIALIZER
    size = len(exact.serialize_json(workflow))
    print(f"\nstored data: {len(workflow.tasks)} tasks, state {size:,} bytes; ms per serialization")
    for round_ in range(ROUNDS):
        figures = []
        for name, serializer in (("plain", plain), ("exact", exact)):
            began = time.perf_counter()
            for _ in range(REPEATS):
                serializer.serialize_json(workflow)
            figures.append(f"{name} {(time.perf_counter() - began) / REPEATS * 1000:6.2f}")
        print(f"  round {round_ + 1}: " + "  ".join(figures))
