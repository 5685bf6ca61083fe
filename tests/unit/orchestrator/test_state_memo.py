"""A memoised write of an instance's state (state_memo.py) must be what Spiff itself writes, step after
step, whatever changed in place: it only saves the work of writing unchanged parts again."""

from __future__ import annotations

import json
from typing import Any

from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
from SpiffWorkflow.util.task import TaskState

from consultflow.orchestrator import engine, state_memo
from consultflow.orchestrator.timer_events import ClockedScriptEngine
from tests.support.bpmn_builder import bpmn

INNER = (
    '<subProcess id="inner"><startEvent id="is"/><userTask id="inside"/><endEvent id="ie"/>'
    '<sequenceFlow id="if1" sourceRef="is" targetRef="inside"/>'
    '<sequenceFlow id="if2" sourceRef="inside" targetRef="ie"/></subProcess>'
)
DIAGRAM = bpmn(
    "p",
    '<startEvent id="s"/><userTask id="first"/>' + INNER + '<userTask id="last"/><endEvent id="e"/>',
    "s -> first\nfirst -> inner\ninner -> last\nlast -> e",
)
SPECS = engine.parse_resources({"p.bpmn": DIAGRAM})["p"]


def written(workflow: BpmnWorkflow) -> Any:
    return json.loads(engine.dump_state(workflow))


def spiffs_own(workflow: BpmnWorkflow) -> Any:
    return json.loads(engine.SERIALIZER.serialize_json(workflow))


def complete(workflow: BpmnWorkflow, element: str, data: dict[str, Any]) -> None:
    task = next(t for t in workflow.get_tasks(state=TaskState.READY) if t.task_spec.name == element)
    task.data.update(data)
    task.run()
    workflow.do_engine_steps()


def test_every_write_is_what_spiff_writes_and_loads_back_the_same() -> None:
    workflow = engine.new_workflow(SPECS, ClockedScriptEngine(), {"facts": {"nested": [1, 2]}})
    engine.choose_start(workflow, engine.plain_start)
    workflow.do_engine_steps()
    assert written(workflow) == spiffs_own(workflow)
    steps: list[tuple[str, dict[str, Any]]] = [
        ("first", {"a": 1}),
        ("inside", {"b": [1, 2, 3]}),
        ("last", {"c": "x"}),
    ]
    for element, data in steps:
        complete(workflow, element, data)
        assert written(workflow) == spiffs_own(workflow), f"after {element}"
        assert written(workflow) == spiffs_own(workflow), f"written twice after {element}"
    assert workflow.is_completed()
    reloaded = engine.load_state(engine.dump_state(workflow), SPECS, ClockedScriptEngine())
    assert spiffs_own(reloaded) == spiffs_own(workflow)
    assert getattr(workflow, state_memo.MEMO_ATTRIBUTE), "the live workflow keeps its memo"


def test_a_change_in_place_to_a_finished_tasks_data_is_written() -> None:
    """Spiff copies data between tasks shallowly: a nested value changed later may be a finished task's
    too. The memo compares against a frozen copy, so the change is not lost."""
    workflow = engine.new_workflow(SPECS, ClockedScriptEngine(), {"facts": {"nested": [1, 2]}})
    engine.choose_start(workflow, engine.plain_start)
    workflow.do_engine_steps()
    complete(workflow, "first", {"a": 1})
    engine.dump_state(workflow)
    finished = [t for t in workflow.get_tasks(state=TaskState.COMPLETED) if "facts" in t.data]
    assert finished
    finished[0].data["facts"]["nested"].append(3)  # in place, as a shared list would be
    finished[0].data["a"] = 1.0  # equal, though of another type: Python's equality keeps the first JSON
    assert written(workflow) == spiffs_own(workflow)
