"""A state written in parts (state_parts.py) loads as the whole state Spiff writes, and a step writes a
finished subprocess's part only when it is new, changed, or gone."""

from __future__ import annotations

import json

from SpiffWorkflow.bpmn.workflow import BpmnWorkflow

from consultflow.orchestrator import engine, state_memo, state_parts
from consultflow.orchestrator.timer_events import ClockedScriptEngine
from tests.unit.orchestrator.test_state_memo import SPECS, complete, spiffs_own  # the memo's diagram


def at_last() -> BpmnWorkflow:
    """The workflow waiting at `last`, its subprocess `inner` finished."""
    workflow = engine.new_workflow(SPECS, ClockedScriptEngine(), {"facts": {"nested": [1, 2]}})
    engine.choose_start(workflow, engine.plain_start)
    workflow.do_engine_steps()
    complete(workflow, "first", {"a": 1})
    complete(workflow, "inside", {"b": [1, 2, 3]})
    return workflow


def inner_id(workflow: BpmnWorkflow) -> str:
    (key,) = workflow.subprocesses
    return str(key)


def test_a_finished_subprocess_is_named_in_the_state_and_written_once() -> None:
    workflow = at_last()
    part_id = inner_id(workflow)
    first = state_parts.dump(workflow)
    assert json.loads(first.state)["subprocesses"] == {part_id: state_memo.STORED_APART}
    assert list(first.written) == [part_id] and not first.replaced and not first.dropped
    assert json.loads(first.written[part_id]) == spiffs_own(workflow)["subprocesses"][part_id]
    assert first.parts_bytes == len(first.written[part_id])
    again = state_parts.dump(workflow)
    assert (again.written, again.replaced, again.dropped) == ({}, [], []), "unchanged: nothing to write"
    assert again.parts_bytes == first.parts_bytes


def test_the_state_and_its_parts_load_as_the_whole_state() -> None:
    workflow = at_last()
    dumped = state_parts.dump(workflow)
    reloaded = state_parts.load(dumped.state, lambda: dumped.written, SPECS, ClockedScriptEngine())
    assert spiffs_own(reloaded) == spiffs_own(workflow)
    assert state_parts.dump(reloaded).written == {}, "a loaded part is known stored: not written again"
    complete(reloaded, "last", {"c": "x"})
    assert reloaded.is_completed()


def test_a_loaded_part_is_written_from_its_stored_json_not_serialized_again() -> None:
    workflow = at_last()
    dumped = state_parts.dump(workflow)
    reloaded = state_parts.load(dumped.state, lambda: dumped.written, SPECS, ClockedScriptEngine())
    memo = getattr(reloaded, state_memo.MEMO_ATTRIBUTE)
    (text,) = dumped.written.values()
    assert [known for _, known in memo.values()] == [text]
    assert engine.dump_state_apart(reloaded).apart[inner_id(workflow)] is text


def test_a_state_with_its_subprocesses_inline_loads_and_its_next_write_moves_them_out() -> None:
    """States written before the parts existed hold every subprocess inline."""
    workflow = at_last()
    whole = engine.SERIALIZER.serialize_json(workflow)
    loaded = state_parts.load(whole, lambda: {"not": "read"}, SPECS, ClockedScriptEngine())
    assert spiffs_own(loaded) == spiffs_own(workflow)
    dumped = state_parts.dump(loaded)
    assert list(dumped.written) == [inner_id(workflow)]


def test_a_reset_to_before_a_finished_subprocess_drops_its_part() -> None:
    workflow = at_last()
    part_id = inner_id(workflow)
    state_parts.dump(workflow)
    first = next(t for t in workflow.get_tasks() if t.task_spec.name == "first")
    workflow.reset_from_task_id(first.id)
    dumped = state_parts.dump(workflow)
    assert dumped.dropped == [part_id] and dumped.written == {} and dumped.parts_bytes == 0
    assert json.loads(dumped.state)["subprocesses"] == {}
    complete(workflow, "first", {"a": 2})
    complete(workflow, "inside", {"b": []})
    again = state_parts.dump(workflow)
    assert list(again.written) == [inner_id(workflow)] != [part_id], "run again: a new part"


def test_a_finished_subprocess_given_new_data_is_written_again() -> None:
    workflow = at_last()
    part_id = inner_id(workflow)
    state_parts.dump(workflow)
    (inner,) = workflow.subprocesses.values()
    inner.data = {**inner.data, "corrected": True}
    dumped = state_parts.dump(workflow)
    assert list(dumped.written) == [part_id] and dumped.replaced == [part_id]
    assert json.loads(dumped.written[part_id])["data"]["corrected"] is True


def test_a_state_naming_a_part_that_is_not_there_does_not_load() -> None:
    dumped = state_parts.dump(at_last())
    try:
        state_parts.load(dumped.state, dict, SPECS, ClockedScriptEngine())
    except ValueError as error:
        assert "stored part is missing" in str(error)
    else:
        raise AssertionError("loaded without its part")
