"""SpiffWorkflow's timer events, reading the orchestrator's clock instead of the wall clock.

Spiff's timer event definitions call `datetime.now` themselves, so a clock given only to the scheduler
would find timers due that the engine then refuses to fire. These subclasses ask the clock of the script
engine the workflow runs with (the one object Spiff hands every task and never serializes). They are
registered with the parser and with the serializer under Spiff's own type names, so instance state
written before them loads unchanged, and state written with them still reads with Spiff's classes.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from SpiffWorkflow.bpmn.parser.BpmnParser import full_tag
from SpiffWorkflow.bpmn.serializer.default.event_definition import TimerConditionalEventDefinitionConverter
from SpiffWorkflow.bpmn.specs.defaults import BoundaryEvent, IntermediateCatchEvent
from SpiffWorkflow.bpmn.specs.event_definitions.timer import (
    CycleTimerEventDefinition,
    DurationTimerEventDefinition,
    TimeDateEventDefinition,
    TimerEventDefinition,
)
from SpiffWorkflow.spiff.parser.event_parsers import (
    SpiffBoundaryEventParser,
    SpiffIntermediateCatchEventParser,
)
from SpiffWorkflow.task import Task

from consultflow.platform.clock import WALL_CLOCK, Clock
from consultflow.platform.limits import DEFAULT_LIMITS, Limits
from consultflow.platform.scripting import ScriptEngine


class ClockedScriptEngine(ScriptEngine):
    """The script engine, carrying the clock the workflow's timers read."""

    def __init__(
        self,
        limits: Limits = DEFAULT_LIMITS,
        time_scale: float = 1.0,
        timer_overrides: Mapping[str, str] | None = None,
        clock: Clock = WALL_CLOCK,
    ) -> None:
        super().__init__(limits, time_scale, timer_overrides)
        self.clock = clock


def clock_of(task: Task) -> Clock:
    """The clock of the workflow `task` belongs to (the wall clock for an engine without one)."""
    clock: Clock = getattr(task.workflow.script_engine, "clock", WALL_CLOCK)
    return clock


def recurring_interval(expression: str, now: datetime) -> tuple[int, datetime, timedelta]:
    """(cycles, first due time, interval) of an ISO recurring interval; `R3/PT1H` starts from `now`.

    Spiff's `parse_iso_recurring_interval` reads the wall clock for that one form; the others name
    their start or end and do not depend on now.
    """
    components = expression.upper().replace("--", "/").strip("R").split("/")
    if len(components) == 2 and components[1].startswith("P"):
        cycles = int(components[0]) if components[0] else -1
        parsed = TimerEventDefinition.parse_iso_duration(components[1])
        duration = TimerEventDefinition.get_timedelta_from_start(parsed, now)
        return cycles, now + duration, duration
    cycles, start, duration = TimerEventDefinition.parse_iso_recurring_interval(expression)
    return int(cycles), start, duration


class ClockedTimeDateEventDefinition(TimeDateEventDefinition):  # type: ignore[misc]
    """A `timeDate` timer: fires once its date has passed on the clock."""

    def has_fired(self, my_task: Task) -> bool:
        event_value = my_task._get_internal_data("event_value")
        if event_value is None:
            event_value = my_task.workflow.script_engine.evaluate(my_task, self.expression)
            my_task._set_internal_data(event_value=event_value)
        if TimerEventDefinition.parse_time_or_duration(event_value) < clock_of(my_task).now():
            my_task._set_internal_data(event_fired=True)
        return bool(my_task._get_internal_data("event_fired", False))


class ClockedDurationTimerEventDefinition(DurationTimerEventDefinition):  # type: ignore[misc]
    """A `timeDuration` timer: due the duration after the clock's time when it began to wait."""

    def has_fired(self, my_task: Task) -> bool:
        now = clock_of(my_task).now()
        event_value = my_task._get_internal_data("event_value")
        if event_value is None:
            expression = my_task.workflow.script_engine.evaluate(my_task, self.expression)
            parsed = TimerEventDefinition.parse_iso_duration(expression)
            event_value = (now + TimerEventDefinition.get_timedelta_from_start(parsed, now)).isoformat()
            my_task._set_internal_data(event_value=event_value)
        if TimerEventDefinition.get_datetime(event_value) < now:
            my_task._set_internal_data(event_fired=True)
        return bool(my_task._get_internal_data("event_fired", False))


class ClockedCycleTimerEventDefinition(CycleTimerEventDefinition):  # type: ignore[misc]
    """A `timeCycle` timer: one cycle completes each time its next due time has passed on the clock."""

    def cycle_complete(self, my_task: Task) -> bool:
        now = clock_of(my_task).now()
        event_value = my_task._get_internal_data("event_value")
        if event_value is None:
            expression = my_task.workflow.script_engine.evaluate(my_task, self.expression)
            cycles, start, duration = recurring_interval(expression, now)
            event_value = {"cycles": cycles, "next": start.isoformat(), "duration": duration.total_seconds()}
        ready = False
        if event_value["cycles"] != 0:
            next_event = datetime.fromisoformat(event_value["next"])
            if next_event < now:
                event_value["next"] = (next_event + timedelta(seconds=event_value["duration"])).isoformat()
                event_value["cycles"] -= 1
                ready = True
        else:
            my_task.internal_data.pop("event_value", None)
            my_task.internal_data["event_fired"] = True
        my_task._set_internal_data(event_value=event_value)
        return ready


def bring_forward(task: Task, due: datetime) -> None:
    """Makes the waiting timer of `task` come due at `due` (its next cycle, for a cycle timer).

    For a test or an operator who needs one timer to fire while the others keep their times, which
    moving the clock cannot express. The stored time is this module's own, so it is changed here only.
    """
    value = task._get_internal_data("event_value")
    if isinstance(value, dict):  # a cycle: {"cycles", "next", "duration"}
        task._set_internal_data(event_value={**value, "next": due.isoformat()})
    else:
        task._set_internal_data(event_value=due.isoformat())


CLOCKED_TIMERS: dict[type[Any], type[Any]] = {
    TimeDateEventDefinition: ClockedTimeDateEventDefinition,
    DurationTimerEventDefinition: ClockedDurationTimerEventDefinition,
    CycleTimerEventDefinition: ClockedCycleTimerEventDefinition,
}
"""Spiff's timer definition classes and the clocked class that replaces each."""


class ClockedTimerParsing:
    """Parser mixin: a timer event definition is built as its clocked subclass."""

    def parse_timer_event(self, event: Any) -> TimerEventDefinition:
        parsed: TimerEventDefinition = super().parse_timer_event(event)  # type: ignore[misc]
        clocked = CLOCKED_TIMERS.get(type(parsed))
        if clocked is None:
            return parsed
        result: TimerEventDefinition = clocked(parsed.name, parsed.expression, description=parsed.description)
        return result


class ClockedIntermediateCatchEventParser(ClockedTimerParsing, SpiffIntermediateCatchEventParser):  # type: ignore[misc]
    pass


class ClockedBoundaryEventParser(ClockedTimerParsing, SpiffBoundaryEventParser):  # type: ignore[misc]
    pass


TIMER_PARSER_CLASSES: dict[str, tuple[type[Any], type[Any]]] = {
    full_tag("intermediateCatchEvent"): (ClockedIntermediateCatchEventParser, IntermediateCatchEvent),
    full_tag("boundaryEvent"): (ClockedBoundaryEventParser, BoundaryEvent),
}
"""Parser overrides for the catching events that may hold a timer (start events: see engine.py)."""


def register_timer_converters(config: dict[type[Any], Any]) -> None:
    """Adds the clocked timers to a serializer config, under Spiff's type names (see the module doc)."""
    for spiff_class, clocked in CLOCKED_TIMERS.items():
        config[clocked] = partial(TimerConditionalEventDefinitionConverter, typename=spiff_class.__name__)
