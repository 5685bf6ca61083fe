"""The clocked timer event definitions: parsed in place of Spiff's, fired by the clock, serialized under
Spiff's names."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from SpiffWorkflow.bpmn.specs.event_definitions.timer import (
    CycleTimerEventDefinition,
    DurationTimerEventDefinition,
    TimeDateEventDefinition,
)
from SpiffWorkflow.bpmn.workflow import BpmnWorkflow

from consultflow.orchestrator import engine
from consultflow.orchestrator.timer_events import (
    ClockedCycleTimerEventDefinition,
    ClockedDurationTimerEventDefinition,
    ClockedScriptEngine,
    ClockedTimeDateEventDefinition,
    recurring_interval,
)
from consultflow.platform.clock import ManualClock
from tests.support.bpmn_builder import bpmn

START = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def timer_diagram(definition: str) -> bytes:
    return bpmn(
        "p",
        f'<startEvent id="s"/><intermediateCatchEvent id="wait"><timerEventDefinition>{definition}'
        '</timerEventDefinition></intermediateCatchEvent><endEvent id="e"/>',
        "s -> wait\nwait -> e",
    )


def started(definition: str, clock: ManualClock) -> BpmnWorkflow:
    specs = engine.parse_resources({"p.bpmn": timer_diagram(definition)})["p"]
    workflow = engine.new_workflow(specs, ClockedScriptEngine(clock=clock), {})
    workflow.do_engine_steps()
    return workflow


def run(workflow: BpmnWorkflow) -> None:
    workflow.refresh_timers()
    workflow.do_engine_steps()


def test_the_parser_builds_the_clocked_definitions() -> None:
    diagrams = {
        '<timeDuration>"PT1H"</timeDuration>': ClockedDurationTimerEventDefinition,
        '<timeDate>"2030-01-01T00:00:00+00:00"</timeDate>': ClockedTimeDateEventDefinition,
        '<timeCycle>"R2/PT1H"</timeCycle>': ClockedCycleTimerEventDefinition,
    }
    for definition, expected in diagrams.items():
        spec = engine.parse_resources({"p.bpmn": timer_diagram(definition)})["p"].spec
        assert type(spec.task_specs["wait"].event_definition) is expected


def test_a_duration_timer_is_due_by_the_clock_not_the_wall() -> None:
    clock = ManualClock(START)
    workflow = started('<timeDuration>"P2D"</timeDuration>', clock)
    assert [t.due_at for t in engine.snapshot(workflow).timers] == [START + timedelta(days=2)]
    clock.advance(timedelta(days=2))
    run(workflow)
    assert not workflow.is_completed()  # due is not past yet
    clock.advance(timedelta(seconds=1))
    run(workflow)
    assert workflow.is_completed()


def test_a_date_timer_fires_once_the_clock_passes_it() -> None:
    clock = ManualClock(START)
    workflow = started('<timeDate>"2026-03-05T00:00:00+00:00"</timeDate>', clock)
    run(workflow)
    assert not workflow.is_completed()
    clock.advance_to(datetime(2026, 3, 5, 0, 0, 1, tzinfo=UTC))
    run(workflow)
    assert workflow.is_completed()


def test_a_cycle_starts_from_the_clock_and_counts_down() -> None:
    clock = ManualClock(START)
    workflow = started('<timeCycle>"R2/PT1H"</timeCycle>', clock)
    assert [t.due_at for t in engine.snapshot(workflow).timers] == [START + timedelta(hours=1)]
    clock.advance(timedelta(hours=1, seconds=1))
    run(workflow)
    assert [t.due_at for t in engine.snapshot(workflow).timers] == [START + timedelta(hours=2)]


def test_recurring_interval_reads_the_given_now() -> None:
    assert recurring_interval("R3/PT1H", START) == (3, START + timedelta(hours=1), timedelta(hours=1))
    assert recurring_interval("R/P1D", START)[0] == -1
    cycles, first, interval = recurring_interval("R2/2030-01-01T00:00:00+00:00/PT2H", START)
    assert (cycles, first, interval) == (2, datetime(2030, 1, 1, tzinfo=UTC), timedelta(hours=2))


def test_the_serializer_writes_spiffs_names_and_reads_them_as_clocked() -> None:
    """So state written before the clocked timers loads with them, and state written with them loads with
    Spiff's classes (a rollback)."""
    definition = ClockedDurationTimerEventDefinition("wait", '"PT1H"')
    converted = engine.SERIALIZER.registry.convert(definition)
    assert converted["typename"] == DurationTimerEventDefinition.__name__
    restored = engine.SERIALIZER.registry.restore(json.loads(json.dumps(converted)))
    assert type(restored) is ClockedDurationTimerEventDefinition
    for spiff_class in (TimeDateEventDefinition, CycleTimerEventDefinition):
        dct = {"typename": spiff_class.__name__, "name": "t", "expression": '"x"', "description": None}
        assert type(engine.SERIALIZER.registry.restore(dct)).__name__ == "Clocked" + spiff_class.__name__
