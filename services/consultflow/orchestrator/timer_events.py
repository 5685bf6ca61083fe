"""SpiffWorkflow's timer events, reading the orchestrator's clock instead of the wall clock.

Spiff's timer event definitions call `datetime.now` themselves, so a clock given only to the scheduler
would find timers due that the engine then refuses to fire. These subclasses ask the clock of the script
engine the workflow runs with (the one object Spiff hands every task and never serializes). They are
registered with the parser and with the serializer under Spiff's own type names, so instance state
written before them loads unchanged, and state written with them still reads with Spiff's classes.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from SpiffWorkflow.bpmn.exceptions import WorkflowTaskException
from SpiffWorkflow.bpmn.parser.BpmnParser import full_tag
from SpiffWorkflow.bpmn.serializer.default.event_definition import TimerConditionalEventDefinitionConverter
from SpiffWorkflow.bpmn.specs.control import BoundaryEventSplit
from SpiffWorkflow.bpmn.specs.defaults import BoundaryEvent, IntermediateCatchEvent
from SpiffWorkflow.bpmn.specs.event_definitions.timer import (
    CycleTimerEventDefinition,
    DurationTimerEventDefinition,
    TimeDateEventDefinition,
    TimerEventDefinition,
)
from SpiffWorkflow.exceptions import SpiffWorkflowException
from SpiffWorkflow.spiff.parser.event_parsers import (
    SpiffBoundaryEventParser,
    SpiffIntermediateCatchEventParser,
)
from SpiffWorkflow.task import Task

from consultflow.platform.clock import WALL_CLOCK, Clock
from consultflow.platform.limits import DEFAULT_LIMITS, Limits
from consultflow.platform.scripting import ScriptEngine


class ClockedScriptEngine(ScriptEngine):
    """The script engine, carrying the clock the workflow's timers read and the limits its task specs
    enforce at run time (the one object Spiff hands every task)."""

    def __init__(
        self,
        limits: Limits = DEFAULT_LIMITS,
        time_scale: float = 1.0,
        timer_overrides: Mapping[str, str] | None = None,
        clock: Clock = WALL_CLOCK,
    ) -> None:
        super().__init__(limits, time_scale, timer_overrides)
        self.clock = clock
        self.limits = limits


def clock_of(task: Task) -> Clock:
    """The clock of the workflow `task` belongs to (the wall clock for an engine without one)."""
    clock: Clock = getattr(task.workflow.script_engine, "clock", WALL_CLOCK)
    return clock


def limits_of(task: Task) -> Limits:
    """The limits of the engine `task`'s workflow runs with (the defaults for an engine without any)."""
    limits: Limits = getattr(task.workflow.script_engine, "limits", DEFAULT_LIMITS)
    return limits


def recurring_interval(
    expression: str, now: datetime, minimum_seconds: float = 0.0
) -> tuple[int, datetime, timedelta]:
    """(cycles, first due time, interval) of an ISO recurring interval; `R3/PT1H` starts from `now`.

    Spiff's `parse_iso_recurring_interval` reads the wall clock for that one form; the others name
    their start or end and do not depend on now. An interval shorter than `minimum_seconds` is held to
    it (`Limits.min_timer_cycle_seconds`: a cycle computed at run time, by an expression, an override or
    the time scale, fires no more often than a literal one may).
    """
    minimum = timedelta(seconds=minimum_seconds)
    count = expression.strip().upper().removeprefix("R").split("/", 1)[0]
    if count and not count.isdigit():
        raise ValueError(f"{expression!r}: the repeat count after R must be a whole number (R3/…) or none")
    components = expression.upper().replace("--", "/").strip("R").split("/")
    if len(components) == 2 and components[1].startswith("P"):
        cycles = int(components[0]) if components[0] else -1
        parsed = TimerEventDefinition.parse_iso_duration(components[1])
        duration = max(TimerEventDefinition.get_timedelta_from_start(parsed, now), minimum)
        return cycles, now + duration, duration
    cycles, start, duration = TimerEventDefinition.parse_iso_recurring_interval(expression)
    return int(cycles), start, max(duration, minimum)


def repeats(task: Task) -> bool:
    """Whether the timer event of `task` was reached before in this instance: a loop passes it again.

    A timer in a loop repeats like a cycle, so such a pass waits at least `min_timer_cycle_seconds`
    (a literal short duration there is refused at deploy; a computed one is held here). A boundary
    event's own task is new each pass, so its split (the attached activity's start) is what repeats; a
    timer inside a sub-process or called process is new each pass too (a new sub-workflow), so the
    activities that run it are looked for among their own ancestors as well.
    """
    specs = {task.task_spec}
    if task.parent is not None and isinstance(task.parent.task_spec, BoundaryEventSplit):
        specs.add(task.parent.task_spec)
    ancestor = task.parent.parent if task.parent is not None else None
    workflow = task.workflow
    top = workflow.top_workflow
    while True:
        while ancestor is not None:
            if ancestor.task_spec in specs:
                return True
            ancestor = ancestor.parent
        if workflow is top or workflow.parent_task_id is None:
            return False
        caller = top.get_task_from_id(workflow.parent_task_id)  # the activity that runs this sub-workflow
        specs.add(caller.task_spec)
        ancestor, workflow = caller.parent, caller.workflow


def held_due(task: Task, due: datetime, now: datetime) -> datetime:
    """`due`, or later: no sooner than the minimum cycle from now when the timer repeats in a loop."""
    earliest = now + timedelta(seconds=limits_of(task).min_timer_cycle_seconds)
    return earliest if due < earliest and repeats(task) else due


def skip_missed(due: datetime, interval_seconds: float, now: datetime, keep: int) -> tuple[datetime, int]:
    """(the due time to catch up from, the firings skipped) of a cycle that fell behind (the orchestrator
    was down, the instance parked): at most `keep` missed firings are caught up (`Limits.max_timer_catch_up`),
    the older ones are skipped. Catching up all of them would grow an instance by a branch a firing (an
    hour behind on a one-second cycle: 3,600 branches, past `max_instance_tasks`) or start instances in a
    tight loop."""
    interval = timedelta(seconds=interval_seconds)
    if interval <= timedelta(0) or due > now:
        return due, 0
    missed = int((now - due) / interval) + 1
    skipped = max(missed - max(keep, 1), 0)
    return due + skipped * interval, skipped


@contextmanager
def read_on(task: Task) -> Iterator[None]:
    """Reading a timer's value: what does not parse (`PT-5S`, `R/garbage`, ten thousand years) fails on
    the timer's own task, so its incident names the element, not just the instance."""
    try:
        yield
    except SpiffWorkflowException:
        raise
    except Exception as exc:
        element = task.task_spec.bpmn_id or task.task_spec.name
        raise WorkflowTaskException(
            f"timer {element}: {type(exc).__name__}: {exc}", task=task, exception=exc
        ) from exc


class ClockedTimeDateEventDefinition(TimeDateEventDefinition):  # type: ignore[misc]
    """A `timeDate` timer: fires once its date has passed on the clock."""

    def has_fired(self, my_task: Task) -> bool:
        event_value = my_task._get_internal_data("event_value")
        if event_value is None:
            event_value = my_task.workflow.script_engine.evaluate(my_task, self.expression)
            with read_on(my_task):
                due = TimerEventDefinition.parse_time_or_duration(event_value)
                if isinstance(due, datetime) and due.tzinfo is not None:
                    held = held_due(my_task, due, clock_of(my_task).now())
                    event_value = held.isoformat() if held != due else event_value
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
            with read_on(my_task):
                parsed = TimerEventDefinition.parse_iso_duration(expression)
                due = now + TimerEventDefinition.get_timedelta_from_start(parsed, now)
                event_value = held_due(my_task, due, now).isoformat()
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
            minimum = limits_of(my_task).min_timer_cycle_seconds
            with read_on(my_task):
                cycles, start, duration = recurring_interval(expression, now, minimum)
            event_value = {"cycles": cycles, "next": start.isoformat(), "duration": duration.total_seconds()}
        ready = False
        if event_value["cycles"] != 0:
            next_event = datetime.fromisoformat(event_value["next"])
            if next_event < now:
                # Held again here: state written before the minimum (or under a lower one) obeys it too.
                interval = max(float(event_value["duration"]), limits_of(my_task).min_timer_cycle_seconds)
                keep = limits_of(my_task).max_timer_catch_up
                next_event, skipped = skip_missed(next_event, interval, now, keep)
                cycles = int(event_value["cycles"])
                if 0 <= cycles <= skipped:  # its last firing is among those skipped: it fires once, now
                    skipped = max(cycles - 1, 0)
                    next_event = now
                event_value["next"] = (next_event + timedelta(seconds=interval)).isoformat()
                event_value["cycles"] = cycles if cycles < 0 else cycles - skipped - 1
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
