"""Moving a live workflow to another version of its process, and repairing its path: the engine part of
instance migration and modification, with no database.

Alignment is by element id (a spec's name), unless a mapping names another target. Waiting tasks keep
their Task objects (ids, data, internal data), so their job, timer due time, user task (and claim) and
subscription rows carry over; only predictions (LIKELY/MAYBE/FUTURE subtrees below unfinished tasks) are
dropped and predicted again from the new spec. A mapping with `restart` replaces its task by a new one
(new id), so its wait starts afresh. Spiff's own `migrate_workflow` resets every READY/WAITING task's
branch (data and internal data too), which would restart timers and lose claims: hence this module.

Finished tasks whose element is gone get a "retired element" placeholder spec (retired.py), so the stored
state still loads; the version's shared parsed specs are never changed.
"""

from __future__ import annotations

import ast
import builtins
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from SpiffWorkflow.bpmn.specs.control import BoundaryEventSplit
from SpiffWorkflow.bpmn.specs.event_definitions.message import MessageEventDefinition
from SpiffWorkflow.bpmn.specs.event_definitions.timer import TimerEventDefinition
from SpiffWorkflow.bpmn.specs.mixins.events.event_types import CatchingEvent
from SpiffWorkflow.bpmn.specs.mixins.events.intermediate_event import BoundaryEvent
from SpiffWorkflow.bpmn.specs.mixins.events.start_event import StartEvent
from SpiffWorkflow.bpmn.specs.mixins.multiinstance_task import LoopTask
from SpiffWorkflow.bpmn.specs.mixins.subworkflow_task import SubWorkflowTask
from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
from SpiffWorkflow.task import Task
from SpiffWorkflow.util.task import TaskState

from consultflow.orchestrator import engine
from consultflow.orchestrator.records import MoveAction
from consultflow.orchestrator.retired import RetiredElement, placeholder

WAITING_MASK = TaskState.READY | TaskState.STARTED | TaskState.WAITING | TaskState.ERROR
PREDICTION_MASK = TaskState.PREDICTED_MASK | TaskState.FUTURE


@dataclass(frozen=True)
class MappingRule:
    """Where one element of one process goes (the use case's ElementMapping, without its types)."""

    process_id: str  # "" for the top process
    source_element_id: str
    target_element_id: str
    restart: bool = False


@dataclass(frozen=True)
class Problem:
    """Why a waiting element cannot move: the process and element it names, and what is wrong."""

    process_id: str
    element_id: str
    message: str


@dataclass(frozen=True)
class Move:
    """What happens to one waiting element."""

    process_id: str
    source_element_id: str
    target_element_id: str
    kind: str
    action: MoveAction
    detail: str = ""
    task_id: str = ""


@dataclass
class Check:
    """A workflow checked against a target version: its problems and the move of each waiting element."""

    problems: list[Problem] = field(default_factory=list)
    moves: list[Move] = field(default_factory=list)


# -------------------------------------------------------------------------------------------- alignment


class Alignment:
    """Which target spec each source spec of one (sub)workflow becomes."""

    def __init__(self, source: Any, target: Any, mappings: Mapping[str, MappingRule]) -> None:
        self.source = source
        self.target = target
        self.mappings = mappings  # source element id → mapping, for this process

    def target_name(self, spec: Any) -> str:
        """The target spec name of a source spec: its element's mapping, else the same name. Spiff's
        internal specs named after an element (`X.BoundaryEventSplit`, `X [child]` of a multi-instance)
        follow their element's mapping; an element is never mapped by another element's prefix."""
        name = str(spec.name)
        mapping = self.mappings.get(name)
        if mapping is not None:
            return mapping.target_element_id
        if getattr(spec, "bpmn_id", None):
            return name
        for source_id, found in self.mappings.items():
            for separator in (".", " "):
                if name.startswith(source_id + separator):
                    return found.target_element_id + name[len(source_id) :]
        return name

    def spec_for(self, spec: Any) -> Any | None:
        """The aligned target spec, or None when the target version has none."""
        return self.target.task_specs.get(self.target_name(spec))

    def restart(self, spec: Any) -> bool:
        mapping = self.mappings.get(spec.name)
        return mapping is not None and mapping.restart


def _mappings_by_process(
    top_process: str, mappings: Iterable[MappingRule]
) -> dict[str, dict[str, MappingRule]]:
    found: dict[str, dict[str, MappingRule]] = {}
    for mapping in mappings:
        process = "" if mapping.process_id in ("", top_process) else mapping.process_id
        found.setdefault(process, {})[mapping.source_element_id] = mapping
    return found


def _workflows(workflow: BpmnWorkflow) -> Iterator[BpmnWorkflow]:
    """The top workflow, then its subworkflows (call activities, event subprocesses) parents first."""
    yield workflow
    yield from sorted(workflow.subprocesses.values(), key=lambda sub: sub.depth)


def _process_key(workflow: BpmnWorkflow) -> str:
    return "" if workflow is workflow.top_workflow else str(workflow.spec.name)


def _alignments(
    workflow: BpmnWorkflow, target: engine.ProcessSpecs, mappings: Iterable[MappingRule]
) -> tuple[dict[int, Alignment], list[Problem]]:
    """An alignment per workflow (by id()), and the subworkflows the target version cannot hold."""
    by_process = _mappings_by_process(target.process_id, mappings)
    result: dict[int, Alignment] = {}
    problems: list[Problem] = []
    for sub in _workflows(workflow):
        key = _process_key(sub)
        target_spec = target.spec if not key else target.subprocess_specs.get(key)
        if target_spec is None:
            if not sub.completed:
                caller = workflow.get_task_from_id(sub.parent_task_id)
                problems.append(
                    Problem(
                        engine.task_process_id(caller),
                        engine.describe(caller)[0],
                        f"calls process {key}, which the target version does not hold: its running "
                        "subprocess would be orphaned",
                    )
                )
            continue
        result[id(sub)] = Alignment(sub.spec, target_spec, by_process.get(key, {}))
    return result, problems


# ------------------------------------------------------------------------------------------------ check


def waiting_tasks(workflow: BpmnWorkflow) -> list[Task]:
    """Every task of the workflow and its subworkflows that was reached and is not finished (READY,
    STARTED, WAITING or ERROR): what a migration must place in the target version."""
    return list(workflow.get_tasks(state=WAITING_MASK))


def check(workflow: BpmnWorkflow, target: engine.ProcessSpecs, mappings: Iterable[MappingRule]) -> Check:
    """What migrating `workflow` to `target` would do, and why it cannot (changes nothing)."""
    mappings = list(mappings)
    alignments, problems = _alignments(workflow, target, mappings)
    result = Check(problems=problems)
    for task in waiting_tasks(workflow):
        alignment = alignments.get(id(task.workflow))
        if alignment is None:
            continue  # its whole subworkflow is orphaned: reported above
        _check_task(task, alignment, result)
    for task in workflow.get_tasks(state=TaskState.FUTURE):
        # Reached next for certain (its parent finished): dropping it as a prediction would lose the path.
        alignment = alignments.get(id(task.workflow))
        parent = task.parent
        if alignment is None or parent is None or not parent.has_state(TaskState.FINISHED_MASK):
            continue
        if alignment.spec_for(task.task_spec) is None:
            element_id = engine.describe(task)[0]
            message = f"is about to run {element_id}, which the target version does not have: map it"
            result.problems.append(Problem(engine.task_process_id(task), element_id, message))
    return result


def _check_task(task: Task, alignment: Alignment, result: Check) -> None:
    spec = task.task_spec
    process_id = engine.task_process_id(task)
    element_id, _, kind = engine.describe(task)
    new = alignment.spec_for(spec)
    if new is None:
        if not getattr(spec, "bpmn_id", None):
            element_id = spec.name
        result.problems.append(
            Problem(
                process_id,
                element_id,
                f"waits at {element_id}, which the target version does not have: map it to an element",
            )
        )
        return
    restart = alignment.restart(spec)
    target_id = new.bpmn_id or new.name
    why = _cannot_carry(spec, new)
    if why and not restart:
        result.problems.append(Problem(process_id, element_id, f"{why}: map it with restart"))
        return
    if restart and isinstance(spec, SubWorkflowTask):
        result.problems.append(
            Problem(process_id, element_id, "a running call activity cannot restart: map it without restart")
        )
        return
    for name in _missing_variables(new, task.data, restart):
        result.problems.append(
            Problem(
                process_id, element_id, f"the target {target_id} needs variable {name!r}, which is not set"
            )
        )
    if getattr(spec, "bpmn_id", None):
        result.moves.append(
            Move(
                process_id,
                element_id,
                target_id,
                kind,
                MoveAction.RESTARTED if restart else MoveAction.CARRIED_OVER,
                _detail(task),
                str(task.id),
            )
        )


def _cannot_carry(old: Any, new: Any) -> str | None:
    """Why a wait at `old` cannot go on at `new` unchanged, or None."""
    if type(old) is not type(new):
        return f"{old.bpmn_id or old.name} is a {type(old).__name__} but its target is a {type(new).__name__}"
    if isinstance(old, engine.JobServiceTask) and old.operation_name != new.operation_name:
        return f"operation changed from {old.operation_name} to {new.operation_name}"
    old_event: Any = getattr(old, "event_definition", None)
    new_event: Any = getattr(new, "event_definition", None)
    if isinstance(old, CatchingEvent):
        if type(old_event) is not type(new_event):
            return "its event changed kind"
        if isinstance(old_event, TimerEventDefinition) and old_event.expression != new_event.expression:
            return f"timer changed from {old_event.expression} to {new_event.expression}"
        if isinstance(old_event, MessageEventDefinition) and old_event.name != new_event.name:
            return f"message changed from {old_event.name} to {new_event.name}"
    if isinstance(old, SubWorkflowTask) and old.spec != new.spec:
        return f"calls {new.spec} instead of {old.spec}"
    return None


def _missing_variables(spec: Any, data: Mapping[str, Any], restart: bool) -> list[str]:
    """Variables the target element reads that the task's data lacks: the expressions evaluated when
    the wait goes on (a message's correlation key each step) or starts again (a job's parameters, a
    timer's expression). Names only, read from the expressions' syntax: conservative and cheap."""
    expressions: list[str] = []
    event = getattr(spec, "event_definition", None)
    if isinstance(event, MessageEventDefinition):
        expressions.extend(p.retrieval_expression for p in event.correlation_properties)
    if restart:
        if isinstance(spec, engine.JobServiceTask):
            expressions.extend(str(p.get("value", "")) for p in (spec.operation_params or {}).values())
        if isinstance(event, TimerEventDefinition):
            expressions.append(event.expression)
    missing: list[str] = []
    for expression in expressions:
        for name in _names(expression):
            if name not in data and not hasattr(builtins, name) and name not in missing:
                missing.append(name)
    return missing


def _names(expression: str) -> list[str]:
    try:
        tree = ast.parse(expression.strip(), mode="eval")
    except SyntaxError:
        return []
    bound = {
        n.id
        for n in ast.walk(tree)
        if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)  # comprehension variables
    }
    return [
        n.id
        for n in ast.walk(tree)
        if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load) and n.id not in bound
    ]


def _detail(task: Task) -> str:
    """What ops recognise a wait by: the job's operation, the timer's due time, the message, or which
    instance of a multi-instance body it is."""
    spec = task.task_spec
    parent = task.parent
    if (
        parent is not None
        and isinstance(parent.task_spec, LoopTask)
        and parent.task_spec.task_spec == spec.name
    ):
        body = [child for child in parent.children if child.task_spec is spec]
        return f"instance {body.index(task) + 1} of {len(body)}"
    if isinstance(spec, engine.JobServiceTask):
        return f"job {spec.operation_name}"
    definition = getattr(spec, "event_definition", None)
    if isinstance(definition, TimerEventDefinition):
        due = engine.timer_due(task, definition)
        return f"timer due {due.isoformat()}" if due is not None else "timer"
    if isinstance(definition, MessageEventDefinition):
        return f"message {definition.name}"
    return ""


# ------------------------------------------------------------------------------------------------ apply


def apply(workflow: BpmnWorkflow, target: engine.ProcessSpecs, mappings: Iterable[MappingRule]) -> list[Move]:
    """Moves `workflow` to `target` in place; call only when `check` found no problem.

    Every task gets its aligned target spec (a finished one whose element is gone: a retired placeholder);
    predictions below unfinished tasks are dropped and predicted again; a restarted wait is replaced by a
    new task (a new id: a new job, timer, user task or subscription)."""
    mappings = list(mappings)
    found = check(workflow, target, mappings)
    if found.problems:
        first = found.problems[0]
        raise ValueError(f"{first.element_id}: {first.message}")
    alignments, _ = _alignments(workflow, target, mappings)
    restarts: list[Task] = []
    for sub in list(_workflows(workflow)):
        alignment = alignments.get(id(sub))
        if alignment is None:
            continue  # a finished subworkflow of a process the target does not call: left as it was
        for task in list(sub.tasks.values()):
            if task.id not in sub.tasks:
                continue
            new = alignment.spec_for(task.task_spec)
            if new is None:
                if task.has_state(TaskState.FINISHED_MASK):
                    new = placeholder(alignment.target, task.task_spec.name)
                else:
                    _remove(sub, task)  # a prediction of an element that is gone: predicted again below
                    continue
            if task.has_state(WAITING_MASK) and alignment.restart(task.task_spec):
                restarts.append(task)
            task.task_spec = new
        sub.spec = alignment.target
    workflow.subprocess_specs = dict(target.subprocess_specs)
    for sub in _workflows(workflow):
        if id(sub) in alignments:
            _predict_again(sub)
    moves = {move.task_id: move for move in found.moves}
    for task in restarts:
        _restart(task)
        old = moves.get(str(task.id))
        if old is not None:  # the move keeps the replaced task's id: its rows are the ones closed
            moves[str(task.id)] = replace(old, action=MoveAction.RESTARTED)
    return list(moves.values())


def _remove(workflow: BpmnWorkflow, task: Task) -> None:
    """Removes a task and its descendants from the tree and from Spiff's index of waiting catch events
    (which `refresh_timers` walks: a removed timer must never fire)."""
    if task.id not in workflow.tasks or task.parent is None:
        return
    events = workflow.top_workflow.event_manager
    for removed in list(task):
        events.remove_task(removed)
    workflow._remove_task(task.id)


def _only_predicted(task: Task) -> bool:
    return all(t.has_state(PREDICTION_MASK) for t in task)


def _predict_again(workflow: BpmnWorkflow) -> None:
    """Drops the predicted subtrees below unfinished tasks and predicts them again from their new specs.

    A task with definite children too (a multi-instance body running) keeps those; its missing outputs
    are added as FUTURE children (its own `_predict_hook` would refuse the definite ones)."""
    for task in list(workflow.get_tasks(state=TaskState.DEFINITE_MASK)):
        if task.id not in workflow.tasks:
            continue
        if (
            task.has_state(TaskState.FUTURE)
            and task.parent is not None
            and task.parent.has_state(PREDICTION_MASK)
        ):
            continue  # inside a prediction: predicted again from its root
        children = list(task.children)
        predicted = [child for child in children if _only_predicted(child)]
        for child in predicted:
            _remove(workflow, child)
        if len(predicted) == len(children):
            task.task_spec._predict(task, mask=PREDICTION_MASK | task.state)
            continue
        present = {child.task_spec for child in task.children}
        for output in task.task_spec.outputs:
            if output not in present:
                child = task._add_child(output, TaskState.FUTURE)
                child.task_spec._predict(child, mask=PREDICTION_MASK)


def _restart(task: Task) -> Task:
    """Replaces a waiting task by a new one of the same spec, which starts its wait afresh. What the wait
    already started stays: a cycle timer adds a branch below itself each time it fires (a non-interrupting
    boundary cycle's revisit, say), and those branches move under the new task instead of going with the
    old one; only predictions are dropped."""
    parent = task.parent
    spec = task.task_spec
    started = [child for child in task.children if not _only_predicted(child)]
    for child in started:
        task._children.remove(child.id)
    _remove(task.workflow, task)
    fresh = parent._add_child(spec, TaskState.FUTURE)
    fresh.task_spec._predict(fresh, mask=PREDICTION_MASK)
    fresh.task_spec._update(fresh)
    for child in started:
        child.parent = fresh
        fresh._children.append(child.id)
    return fresh


# ----------------------------------------------------------------------------------------------- modify


class ModifyError(Exception):
    """A modification that cannot be made: `element_id` names what is wrong."""

    def __init__(self, element_id: str, message: str) -> None:
        super().__init__(f"{element_id}: {message}")
        self.element_id = element_id
        self.message = message


def subworkflow_of(workflow: BpmnWorkflow, process_id: str) -> BpmnWorkflow:
    """The workflow holding elements of `process_id`: the top one for "" or its own id, else the one
    running subworkflow of that process."""
    if process_id in ("", workflow.spec.name):
        return workflow
    running = [
        sub for sub in workflow.subprocesses.values() if sub.spec.name == process_id and not sub.completed
    ]
    if not running:
        raise ModifyError(process_id, "no subprocess of this process is running in the instance")
    if len(running) > 1:
        raise ModifyError(
            process_id, f"{len(running)} subprocesses of this process run: modify cannot choose"
        )
    return running[0]


def modify(
    workflow: BpmnWorkflow,
    process_id: str,
    cancel_element_ids: Sequence[str],
    activate_element_id: str,
    variables: Mapping[str, Any],
) -> list[Move]:
    """Cancels the waiting tasks of elements and activates an element of the same (sub)workflow, whose new
    task is READY or waiting next time the engine runs. Raises ModifyError naming the element."""
    target = subworkflow_of(workflow, process_id)
    process = str(target.spec.name)
    to_cancel: list[Task] = []
    for element_id in cancel_element_ids:
        found = [
            t
            for t in target.get_tasks(state=WAITING_MASK, skip_subprocesses=True)
            if _element(t) == element_id
        ]
        if not found:
            raise ModifyError(element_id, f"nothing waits at {element_id} in process {process}")
        to_cancel.extend(t for t in found if t not in to_cancel)
    for task in list(to_cancel):  # an activity's boundary events go with it
        parent = task.parent
        if parent is not None and isinstance(parent.task_spec, BoundaryEventSplit):
            to_cancel.extend(
                sibling
                for sibling in parent.children
                if sibling not in to_cancel
                and sibling.has_state(WAITING_MASK)
                and isinstance(sibling.task_spec, BoundaryEvent)
            )
    activate = _activatable(target, activate_element_id) if activate_element_id else None
    moves: list[Move] = []
    base = dict(to_cancel[0].data) if to_cancel else engine.visible_data(target)
    for task in to_cancel:
        element_id, _, kind = engine.describe(task)
        moves.append(Move(process, element_id, "", kind, MoveAction.CANCELED, "", str(task.id)))
        _cancel(task)
    if activate is not None:
        parent = to_cancel[0].parent if to_cancel else target.task_tree
        fresh = parent._add_child(activate, TaskState.FUTURE)
        fresh.data = {**base, **variables}
        fresh.task_spec._predict(fresh, mask=PREDICTION_MASK)
        fresh.task_spec._update(fresh)
        fresh.data.update({**base, **variables})  # after _update, which may inherit the parent's data
        element_id, _, kind = engine.describe(fresh)
        moves.append(Move(process, "", element_id, kind, MoveAction.ACTIVATED, "", str(fresh.id)))
    elif variables:
        for task in target.get_tasks(state=WAITING_MASK, skip_subprocesses=True):
            task.data.update(variables)
    return moves


def _cancel(task: Task) -> None:
    """Cancels a waiting task; Spiff's `cancel` leaves a task in ERROR as it is (ERROR counts as finished
    there), so a failed task is put back to READY first and then cancelled like any other."""
    if task.state == TaskState.ERROR:
        task._set_state(TaskState.READY)
    task.cancel()


def _element(task: Task) -> str:
    return str(getattr(task.task_spec, "bpmn_id", None) or task.task_spec.name)


def _activatable(workflow: BpmnWorkflow, element_id: str) -> Any:
    spec = workflow.spec.task_specs.get(element_id)
    process = workflow.spec.name
    if spec is None or not getattr(spec, "bpmn_id", None) or isinstance(spec, RetiredElement):
        raise ModifyError(element_id, f"process {process} has no element {element_id}")
    if isinstance(spec, StartEvent):
        raise ModifyError(element_id, "a start event cannot be activated: activate the element after it")
    if isinstance(spec, BoundaryEvent):
        raise ModifyError(element_id, "a boundary event cannot be activated alone: activate its task")
    for other in workflow.spec.task_specs.values():
        if isinstance(other, LoopTask) and other.task_spec == spec.name:
            raise ModifyError(
                element_id, f"is the body of multi-instance {other.bpmn_id}: activate {other.bpmn_id}"
            )
    if not spec.inputs:
        raise ModifyError(element_id, "nothing leads to it in the process: it cannot be activated")
    return spec
