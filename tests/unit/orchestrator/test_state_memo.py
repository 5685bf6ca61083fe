"""A memoised write of an instance's state (state_memo.py) must be what Spiff itself writes, step after
step, whatever changed in place: it only saves the work of writing unchanged parts again."""

from __future__ import annotations

import json
from typing import Any

from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
from SpiffWorkflow.util.task import TaskState

from consultflow.orchestrator import engine, state_memo
from consultflow.orchestrator.timer_events import ClockedScriptEngine
from tests.support.bpmn_builder import bpmn, definitions, process_xml

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


def _inner_subprocess(workflow: BpmnWorkflow) -> Any:
    (subprocess,) = workflow.subprocesses.values()
    return subprocess


def test_a_finished_subprocess_is_kept_whole_and_a_reset_into_it_is_written() -> None:
    workflow = engine.new_workflow(SPECS, ClockedScriptEngine(), {"facts": {"nested": [1, 2]}})
    engine.choose_start(workflow, engine.plain_start)
    workflow.do_engine_steps()
    complete(workflow, "first", {"a": 1})
    complete(workflow, "inside", {"b": [1, 2, 3]})
    inner = _inner_subprocess(workflow)
    assert inner.completed
    assert written(workflow) == spiffs_own(workflow)
    memo = getattr(workflow, state_memo.MEMO_ATTRIBUTE)
    assert ("subprocess", inner.parent_task_id) in memo, "kept whole"
    assert not any(str(task_id) in memo for task_id in inner.tasks), "its tasks are not kept one by one"
    inside = next(t for t in inner.tasks.values() if t.task_spec.name == "inside")
    inside.data = {**inside.data, "b": "replaced"}  # a new dict: the fingerprint holds the old one
    assert written(workflow) == spiffs_own(workflow)
    inside.data = {**inside.data, "b": "and again"}  # twice between writes: no id to be reused
    inside.data = {**inside.data, "b": "and again, twice"}
    assert written(workflow) == spiffs_own(workflow)
    renamed = inside.task_spec
    inside.task_spec = inner.spec.task_specs["ie"]  # a new spec, as an instance migration may give it
    assert (
        written(workflow)["subprocesses"][str(inner.parent_task_id)]["tasks"][str(inside.id)]["task_spec"]
        == "ie"
    )
    assert written(workflow) == spiffs_own(workflow)
    inside.task_spec = renamed
    workflow.reset_from_task_id(inside.id)  # back into the finished subprocess
    assert written(workflow) == spiffs_own(workflow)
    complete(workflow, "inside", {"b": "again"})
    assert written(workflow) == spiffs_own(workflow)


CALLED = process_xml(
    "called",
    '<startEvent id="cs"/><scriptTask id="work"><script>seen = len(facts["nested"])</script></scriptTask>'
    '<endEvent id="ce"/>',
    "cs -> work\nwork -> ce",
)
CALLER = process_xml(
    "caller",
    '<startEvent id="s"/><callActivity id="call" calledElement="called"/><userTask id="last"/>'
    '<endEvent id="e"/>',
    "s -> call\ncall -> last\nlast -> e",
)
CALLER_SPECS = engine.parse_resources({"c.bpmn": definitions(CALLER + CALLED)})["caller"]


def test_a_finished_call_activity_shares_no_data_with_its_caller_once_kept_whole() -> None:
    """A call activity's data shares nested values with its caller's earlier tasks; kept whole, it gets
    its own copy (as loading its state gives), so a later change in place reaches neither it nor the
    written state's copy of it, and the write stays Spiff's own."""
    workflow = engine.new_workflow(CALLER_SPECS, ClockedScriptEngine(), {"facts": {"nested": [1, 2]}})
    engine.choose_start(workflow, engine.plain_start)
    workflow.do_engine_steps()
    called = _inner_subprocess(workflow)
    assert called.completed
    before = written(workflow)
    assert before == spiffs_own(workflow)
    for task in workflow.tasks.values():  # every task of the caller, finished or not
        task.data.get("facts", {}).get("nested", []).append(99)
    after = written(workflow)
    assert after == spiffs_own(workflow)
    key = str(called.parent_task_id)
    assert after["subprocesses"][key] == before["subprocesses"][key]
    reloaded = engine.load_state(engine.dump_state(workflow), CALLER_SPECS, ClockedScriptEngine())
    assert spiffs_own(reloaded) == spiffs_own(workflow)
