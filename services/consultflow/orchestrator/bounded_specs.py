"""Task specs that hold an instance to the run-time limits (platform/limits.py) where SpiffWorkflow
prepares a task: a multi-instance activity to `max_fan_out`, a call activity to `max_call_depth`; and the
mark a limit leaves on the task it stopped (its incident's message), wherever Spiff prepared it; and
whether a workflow Spiff reports complete really ended (`not_ended`).
"""

from __future__ import annotations

from functools import partial
from typing import Any

from SpiffWorkflow.bpmn.parser.BpmnParser import full_tag
from SpiffWorkflow.bpmn.specs.mixins.events.end_event import EndEvent
from SpiffWorkflow.bpmn.specs.mixins.subworkflow_task import EventSubprocess
from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
from SpiffWorkflow.spiff.parser.task_spec import CallActivityParser
from SpiffWorkflow.spiff.serializer.task_spec import SpiffMultiInstanceConverter, SubWorkflowTaskConverter
from SpiffWorkflow.spiff.specs.defaults import (
    CallActivity,
    ParallelMultiInstanceTask,
    SequentialMultiInstanceTask,
)
from SpiffWorkflow.task import Task
from SpiffWorkflow.util.task import TaskState

from consultflow.orchestrator.timer_events import limits_of

LIMIT_EXCEEDED = "limit_exceeded"
"""Internal data of a task a run-time limit stopped: the incident's message (it names the limit)."""


def exceed(task: Task, limit: str, value: object, what: str) -> None:
    """Stops `task` on a limit: it goes to ERROR (an incident on it, which resolving re-runs) and keeps
    why in its own data, so wherever Spiff prepared it (an engine step, a reset) the incident says so."""
    task._set_internal_data(**{LIMIT_EXCEEDED: f"limit {limit} ({value}) exceeded: {what}"})
    task.error()


def limit_problem(task: Task) -> str | None:
    """Why a limit stopped `task`, or None."""
    problem = task._get_internal_data(LIMIT_EXCEEDED)
    return str(problem) if problem else None


def task_count(workflow: BpmnWorkflow) -> int:
    """Tasks the instance holds, its subprocesses' included (no tree walk: a walk is what may be cut)."""
    top = workflow.top_workflow
    return len(top.tasks) + sum(len(sub.tasks) for sub in top.subprocesses.values())


class _FanOutLimit:
    """Multi-instance mixin: a cardinality or collection above `Limits.max_fan_out`, computed when the
    activity is reached, stops it before Spiff creates a single instance."""

    data_input: Any
    cardinality: Any

    def _update_hook(self, my_task: Task) -> Any:
        if limit_problem(my_task):
            return None  # stopped already; a reset clears the mark and decides again
        size = self._instances_wanted(my_task)
        maximum = limits_of(my_task).max_fan_out
        if size is not None and size > maximum:
            exceed(my_task, "max_fan_out", maximum, f"the activity would start {size} instances")
            return None
        return super()._update_hook(my_task)  # type: ignore[misc]

    def _instances_wanted(self, my_task: Task) -> int | None:
        my_task._inherit_data()  # what Spiff's hook does first: the size is computed on the same data
        try:
            if self.data_input is not None:
                return len(self.data_input.get(my_task)) if self.data_input.exists(my_task) else None
            return int(my_task.workflow.script_engine.evaluate(my_task, self.cardinality))
        except Exception:
            return None  # Spiff reports the failing expression or collection itself


class BoundedParallelMultiInstanceTask(_FanOutLimit, ParallelMultiInstanceTask):  # type: ignore[misc]
    """A parallel multi-instance activity held to `Limits.max_fan_out`."""


class BoundedSequentialMultiInstanceTask(_FanOutLimit, SequentialMultiInstanceTask):  # type: ignore[misc]
    """A sequential multi-instance activity held to `Limits.max_fan_out`."""


class BoundedCallActivity(CallActivity):  # type: ignore[misc]
    """A call activity held to `Limits.max_call_depth`: a process calling itself, directly or through
    others, stops at that depth with an incident instead of growing without end."""

    def _update_hook(self, my_task: Task) -> Any:
        top = my_task.workflow.top_workflow
        if my_task.id not in top.subprocesses:  # about to call: count the call activities above it
            if limit_problem(my_task):
                return None
            depth = call_depth(my_task) + 1
            maximum = limits_of(my_task).max_call_depth
            if depth > maximum:
                exceed(my_task, "max_call_depth", maximum, f"calling {self.spec!r} would nest {depth} calls")
                return None
        return super()._update_hook(my_task)


def call_depth(task: Task) -> int:
    """Call activities `task` runs inside of."""
    depth = 0
    workflow = task.workflow
    top = workflow.top_workflow
    while workflow is not top and workflow.parent_task_id is not None:
        caller = top.get_task_from_id(workflow.parent_task_id)
        if isinstance(caller.task_spec, CallActivity):
            depth += 1
        workflow = caller.workflow
    return depth


def bounded_parser(parser_class: type[Any]) -> type[Any]:
    """A task parser that builds multi-instance activities held to `Limits.max_fan_out`."""
    if not hasattr(parser_class, "PARALLEL_MI_CLASS"):
        return parser_class
    attributes = {
        "PARALLEL_MI_CLASS": BoundedParallelMultiInstanceTask,
        "SEQUENTIAL_MI_CLASS": BoundedSequentialMultiInstanceTask,
    }
    return type(parser_class.__name__, (parser_class,), attributes)


def bounded_parsers(
    classes: dict[str, tuple[type[Any], type[Any]]],
) -> dict[str, tuple[type[Any], type[Any]]]:
    """A parser's (parser class, spec class) by tag, with multi-instance activities and call activities
    held to their limits."""
    bounded = {tag: (bounded_parser(parser_class), spec) for tag, (parser_class, spec) in classes.items()}
    bounded[full_tag("callActivity")] = (bounded_parser(CallActivityParser), BoundedCallActivity)
    return bounded


def register_bounded_converters(config: dict[type[Any], Any]) -> None:
    """Adds the bounded specs to a serializer config under Spiff's type names, like the clocked timers:
    state and specs read the same either way."""
    config[BoundedCallActivity] = partial(SubWorkflowTaskConverter, typename="CallActivity")
    for bounded, spiff in (
        (BoundedParallelMultiInstanceTask, ParallelMultiInstanceTask),
        (BoundedSequentialMultiInstanceTask, SequentialMultiInstanceTask),
    ):
        config[bounded] = partial(SpiffMultiInstanceConverter, typename=spiff.__name__)


# ------------------------------------------------------------------------------------- completion


def not_ended(workflow: BpmnWorkflow) -> tuple[Task | None, str] | None:
    """Why a workflow Spiff reports completed has not ended, or None when it has: (the task at fault or
    None, the reason). Spiff's `is_completed` is a tree walk, and a walk cut short (as its depth limit did)
    reports a workflow complete whose end was never reached; the task dictionary is read instead."""
    top = workflow.top_workflow
    open_states = TaskState.NOT_FINISHED_MASK | TaskState.ERROR
    for task in top.tasks.values():
        if task.state & open_states and task.task_spec.bpmn_id is not None:
            state = TaskState.get_name(task.state)
            return task, f"the process is reported complete while {task.task_spec.bpmn_id} is {state}"
    triggered = set(getattr(top.spec.start, "trigger_specs", None) or ())
    for task in top.tasks.values():
        spec = task.task_spec
        if task.state == TaskState.COMPLETED and (
            isinstance(spec, (EndEvent, EventSubprocess)) or getattr(spec, "spec", None) in triggered
        ):
            return None  # an end event, or an (interrupting) event subprocess that ended its process
    return None, "the process is reported complete but none of its end events was reached"
