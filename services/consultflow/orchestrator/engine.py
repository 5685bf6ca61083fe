"""SpiffWorkflow, adapted to run durably: parsing, the waiting service task, forms, state serialization,
and a one-pass view of what an instance waits for.

Nothing here touches the database; a `Step` (step.py) stores what this module computes.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, ClassVar
from uuid import UUID

from SpiffWorkflow.bpmn.parser.BpmnParser import full_tag
from SpiffWorkflow.bpmn.serializer.default.workflow import (
    BpmnSubWorkflowConverter,
    BpmnWorkflowConverter,
    WorkflowConverter,
)
from SpiffWorkflow.bpmn.serializer.workflow import BpmnWorkflowSerializer
from SpiffWorkflow.bpmn.specs.control import BoundaryEventSplit, StartEventSplit
from SpiffWorkflow.bpmn.specs.defaults import StartEvent as StartEventSpec
from SpiffWorkflow.bpmn.specs.event_definitions.message import MessageEventDefinition
from SpiffWorkflow.bpmn.specs.event_definitions.multiple import MultipleEventDefinition
from SpiffWorkflow.bpmn.specs.event_definitions.simple import NoneEventDefinition
from SpiffWorkflow.bpmn.specs.event_definitions.timer import (
    CycleTimerEventDefinition,
    TimerEventDefinition,
)
from SpiffWorkflow.bpmn.specs.mixins.events.event_types import CatchingEvent
from SpiffWorkflow.bpmn.specs.mixins.events.intermediate_event import BoundaryEvent, EventBasedGateway
from SpiffWorkflow.bpmn.specs.mixins.events.start_event import StartEvent
from SpiffWorkflow.bpmn.util import BpmnEvent
from SpiffWorkflow.bpmn.util.subworkflow import BpmnSubWorkflow
from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
from SpiffWorkflow.exceptions import SpiffWorkflowException, TaskNotFoundException
from SpiffWorkflow.spiff.parser.event_parsers import SpiffStartEventParser
from SpiffWorkflow.spiff.parser.process import VALIDATOR, SpiffBpmnParser
from SpiffWorkflow.spiff.parser.task_spec import ServiceTaskParser, SpiffTaskParser, UserTaskParser
from SpiffWorkflow.spiff.serializer.config import SPIFF_CONFIG
from SpiffWorkflow.spiff.serializer.task_spec import (
    ServiceTaskConverter,
    SpiffBpmnTaskConverter,
    UserTaskConverter,
)
from SpiffWorkflow.spiff.specs.defaults import ManualTask, NoneTask, ServiceTask, UserTask
from SpiffWorkflow.spiff.specs.event_definitions import ErrorEventDefinition
from SpiffWorkflow.task import Task
from SpiffWorkflow.util.task import TaskState

from consultflow.orchestrator import assignment, bounded_specs, deep_walks, retired, state_memo
from consultflow.orchestrator.deploy_checks import MAX_RESOURCE_BYTES as MAX_RESOURCE_BYTES
from consultflow.orchestrator.deploy_checks import DeploymentError as DeploymentError
from consultflow.orchestrator.deploy_checks import check_resources
from consultflow.orchestrator.deploy_checks import parse_xml as parse_xml
from consultflow.orchestrator.forms import FormField, due_date_problem
from consultflow.orchestrator.shared_specs import merge_loop_children, trigger_without_changing_the_spec
from consultflow.orchestrator.stored_data import StoredDataRegistry, StoredDataTaskConverter
from consultflow.orchestrator.timer_events import (
    TIMER_PARSER_CLASSES,
    ClockedTimerParsing,
    recurring_interval,
    register_timer_converters,
)
from consultflow.platform.decisions import DecisionTable, TableEngine, read_decision
from consultflow.platform.limits import DEFAULT_LIMITS, Limits

deep_walks.install()  # Spiff walks any depth; deep diagrams parse and start (see deep_walks.py)
CAMUNDA_NS = "http://camunda.org/schema/1.0/bpmn"
DEFAULT_RETRIES = 3
DEFAULT_BACKOFF_SECONDS = 1

# ------------------------------------------------------------------------------------------ task specs


class JobServiceTask(ServiceTask):  # type: ignore[misc]
    """A service task whose work a worker does: running it leaves the task STARTED until a reply arrives."""

    def _execute(self, task: Task) -> None:
        return None

    @property
    def service(self) -> str:
        return str(self.operation_name).split(".", 1)[0]

    @property
    def merges_result(self) -> bool:
        """Without an explicit resultVariable the worker's variables merge into the task's data."""
        return str(self.result_variable).startswith("spiff__")

    @property
    def retry_policy(self) -> tuple[int, int]:
        """(retries, back-off base in seconds) from the diagram's `spiffworkflow:retry`, else defaults."""
        retries = self.retries if self.retries is not None else DEFAULT_RETRIES
        backoff = self.retry_backoff_base if self.retry_backoff_base is not None else DEFAULT_BACKOFF_SECONDS
        return int(retries), int(backoff)


class HumanTask(UserTask):  # type: ignore[misc]
    """A user task with who may do it, by when, and which fields its form has."""

    def __init__(
        self,
        wf_spec: Any,
        bpmn_id: str,
        form_fields: tuple[FormField, ...] = (),
        candidate_groups: tuple[str, ...] = (),
        assignee: str | None = None,
        due: str | None = None,
        candidate_users: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(wf_spec, bpmn_id, **kwargs)
        self.form_fields = form_fields
        self.candidate_groups = candidate_groups
        self.assignee = assignee  # a name, or `${expression}` (assignment.py)
        self.candidate_users = candidate_users  # names and `${expression}`s, as written
        self.due = due


class HumanTaskParser(UserTaskParser):  # type: ignore[misc]
    """Reads `camunda:formData`, `camunda:candidateGroups`, `camunda:candidateUsers`, `camunda:assignee`
    and `camunda:dueDate`; the lane is the candidate group when the task names neither groups nor users."""

    def create_task(self) -> HumanTask:
        extensions = self.parse_extensions()
        fields = tuple(self._form_fields())
        groups_attr = self.node.get(f"{{{CAMUNDA_NS}}}candidateGroups") or ""
        groups = tuple(g.strip() for g in groups_attr.split(",") if g.strip())
        users = self.node.get(f"{{{CAMUNDA_NS}}}candidateUsers")
        if not groups and not (users or "").strip() and self.lane:
            groups = (self.lane,)
        human = HumanTask(
            self.spec,
            self.bpmn_id,
            form_fields=fields,
            candidate_groups=groups,
            assignee=self.node.get(f"{{{CAMUNDA_NS}}}assignee"),
            due=self.node.get(f"{{{CAMUNDA_NS}}}dueDate"),
            candidate_users=users,
            variable=extensions.get("variableName"),
            prescript=extensions.get("preScript"),
            postscript=extensions.get("postScript"),
            **self.bpmn_attributes,
        )
        return human

    def _form_fields(self) -> Iterable[FormField]:
        ns = {"camunda": CAMUNDA_NS, "bpmn": "http://www.omg.org/spec/BPMN/20100524/MODEL"}
        for node in self.node.xpath(
            "./bpmn:extensionElements/camunda:formData/camunda:formField", namespaces=ns
        ):
            values = tuple(
                (v.get("id", ""), v.get("name", v.get("id", "")))
                for v in node.xpath("./camunda:value", namespaces=ns)
            )
            required = bool(
                node.xpath("./camunda:validation/camunda:constraint[@name='required']", namespaces=ns)
            )
            yield FormField(
                id=node.get("id", ""),
                label=node.get("label", node.get("id", "")),
                type=node.get("type", "string"),
                required=required,
                values=values,
                default=node.get("defaultValue", ""),
            )


class PassThroughTask(NoneTask):  # type: ignore[misc]
    """An abstract `bpmn:task` passes through, as in Zeebe (Spiff would wait for someone to run it)."""

    def __init__(self, wf_spec: Any, bpmn_id: str, **kwargs: Any) -> None:
        super().__init__(wf_spec, bpmn_id, **kwargs)
        self.manual = False


class PassThroughManualTask(ManualTask):  # type: ignore[misc]
    """A `bpmn:manualTask` is done outside the system: the engine records it and moves on."""

    def __init__(self, wf_spec: Any, bpmn_id: str, **kwargs: Any) -> None:
        super().__init__(wf_spec, bpmn_id, **kwargs)
        self.manual = False


class InterruptingAwareStartEventParser(ClockedTimerParsing, SpiffStartEventParser):  # type: ignore[misc]
    """Remembers `isInterrupting` (Spiff 3.2 ignores it; the host interrupts, see `deliver_trigger`);
    its timer reads the orchestrator's clock."""

    def create_task(self) -> Any:
        task = super().create_task()
        task.interrupting = (self.node.get("isInterrupting") or "true").lower() == "true"
        return task


class WorkflowParser(SpiffBpmnParser):  # type: ignore[misc]
    """The Spiff dialect with our service and user tasks, and timers that read the orchestrator's clock."""

    OVERRIDE_PARSER_CLASSES: ClassVar[dict[str, Any]] = bounded_specs.bounded_parsers(
        {
            **SpiffBpmnParser.OVERRIDE_PARSER_CLASSES,
            **TIMER_PARSER_CLASSES,
            full_tag("startEvent"): (InterruptingAwareStartEventParser, StartEventSpec),
            full_tag("task"): (SpiffTaskParser, PassThroughTask),
            full_tag("manualTask"): (SpiffTaskParser, PassThroughManualTask),
            full_tag("serviceTask"): (ServiceTaskParser, JobServiceTask),
            full_tag("userTask"): (HumanTaskParser, HumanTask),
        }
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._decision_tables: dict[str, DecisionTable] = {}

    def decision_table(self, decision_id: str) -> DecisionTable:
        """The decision's table read by `platform.decisions` (DecisionTableError when outside the subset)."""
        if decision_id not in self._decision_tables:
            dmn = self.dmn_parsers[decision_id]
            self._decision_tables[decision_id] = read_decision(dmn.node, dmn.filename or f"{decision_id}.dmn")
        return self._decision_tables[decision_id]

    def get_engine(self, decision_ref: str, node: Any) -> TableEngine:
        """A business rule task's engine: Spiff's, evaluating with the project's decision tables."""
        spiff_engine = super().get_engine(decision_ref, node)  # names the missing decision, if it is
        return TableEngine(spiff_engine.decision_table, self.decision_table(decision_ref))


# ---------------------------------------------------------------------------------------------- parsing


@dataclass(frozen=True)
class ProcessSpecs:
    """A parsed process: its spec, the specs of every process it calls, and what starts it."""

    process_id: str
    name: str
    resource_name: str
    spec: Any
    subprocess_specs: Mapping[str, Any]
    start_messages: tuple[str, ...]
    resource_names: tuple[str, ...]
    start_timers: tuple[tuple[str, str], ...] = ()  # (element id, timer expression) of timer start events


def parse_resources(
    resources: Mapping[str, bytes], checks: Limits | None = DEFAULT_LIMITS
) -> dict[str, ProcessSpecs]:
    """Parses BPMN and DMN resources together and returns every executable process with what it calls.

    `checks` (a deploy) checks every process's shape (structure.py) and scripts; None (a stored version
    read again) refuses nothing deployed before because a limit or the sandbox changed since.
    Raises DeploymentError naming the resource, element and line of the first problem.
    """
    specs, problems = checked_resources(resources, checks)
    if problems:
        raise problems[0]
    return specs


def checked_resources(
    resources: Mapping[str, bytes], checks: Limits | None = DEFAULT_LIMITS
) -> tuple[dict[str, ProcessSpecs], list[DeploymentError]]:
    """The executable processes of `resources`, or every problem a deploy would refuse them for
    (deploy_checks.py; then no processes)."""
    checked = check_resources(
        resources, checks, lambda: WorkflowParser(validator=VALIDATOR), _element_problem
    )
    if checked.problems:
        return {}, checked.problems
    result: dict[str, ProcessSpecs] = {}
    for found in checked.processes:
        for shared in (found.spec, *found.subprocess_specs.values()):
            trigger_without_changing_the_spec(shared)
            merge_loop_children(shared)
        result[found.process_id] = ProcessSpecs(
            process_id=found.process_id,
            name=found.name,
            resource_name=found.resource_name,
            spec=found.spec,
            subprocess_specs=found.subprocess_specs,
            start_messages=tuple(start_messages_of(found.spec)),
            resource_names=found.resource_names,
            start_timers=tuple(start_timers_of(found.spec)),
        )
    return result, []


def _element_problem(task_spec: Any) -> str | None:
    return human_task_problem(task_spec) if isinstance(task_spec, HumanTask) else None


def start_messages_of(spec: Any) -> Iterable[str]:
    for task_spec in spec.task_specs.values():
        definition = getattr(task_spec, "event_definition", None)
        if isinstance(task_spec, StartEvent) and isinstance(definition, MessageEventDefinition):
            yield definition.name


def start_timers_of(spec: Any) -> Iterable[tuple[str, str]]:
    for task_spec in spec.task_specs.values():
        if isinstance(task_spec, StartEvent) and isinstance(task_spec.event_definition, TimerEventDefinition):
            yield task_spec.bpmn_id, task_spec.event_definition.expression


@dataclass(frozen=True)
class StartSchedule:
    """When a timer start event next creates an instance, and how it repeats."""

    due_at: datetime
    interval_seconds: float  # 0: once
    remaining: int  # further firings after this one; -1 unbounded


def start_schedule(value: str, now: datetime, minimum_cycle_seconds: float = 0.0) -> StartSchedule:
    """Reads a timer start event's evaluated expression: a date, a duration from now, or a cycle (held)."""
    text = value.strip()
    upper = text.upper()
    if upper.startswith("R"):
        cycles, start, duration = recurring_interval(text, now, minimum_cycle_seconds)
        return StartSchedule(start, duration.total_seconds(), -1 if cycles < 0 else max(cycles - 1, 0))
    if upper.startswith("P"):
        parsed = TimerEventDefinition.parse_iso_duration(text)
        return StartSchedule(now + TimerEventDefinition.get_timedelta_from_start(parsed, now), 0, 0)
    return StartSchedule(TimerEventDefinition.get_datetime(text), 0, 0)


def fire_start_timers(workflow: BpmnWorkflow) -> None:
    """Lets a timer start event pass at once: the scheduler creates the instance when the timer is due."""
    for task in tasks_in(workflow, TaskState.WAITING):
        spec = task.task_spec
        if isinstance(spec, StartEvent) and isinstance(spec.event_definition, TimerEventDefinition):
            if isinstance(spec.event_definition, CycleTimerEventDefinition):
                # A cycle grows its branch only when a cycle completes: grow it once, then let it pass.
                for output in spec.outputs:
                    child = task._add_child(output, TaskState.FUTURE)
                    child.task_spec._predict(child, mask=TaskState.NOT_FINISHED_MASK)
            task._set_internal_data(event_fired=True)
            spec._update(task)


def human_task_problem(spec: HumanTask) -> str | None:
    """Why a user task's due date, assignee or candidate users can never be read, or None."""
    due = due_date_problem(spec.due)
    if due:
        return f"camunda:dueDate: {due}"
    return assignment.problem("assignee", spec.assignee) or assignment.problem(
        "candidateUsers", spec.candidate_users
    )


def content_hash(resources: Mapping[str, bytes]) -> str:
    """A stable hash of named contents (the version key of a process and what it needs)."""
    digest = hashlib.sha256()
    for name in sorted(resources):
        digest.update(name.encode() + b"\0" + hashlib.sha256(resources[name]).digest())
    return digest.hexdigest()


# ---------------------------------------------------------------------------------------- serialization


class _StateOnlyConverter(BpmnWorkflowConverter):  # type: ignore[misc]
    """Serializes an instance without its spec; the spec is stored once per version and handed back."""

    def to_dict(self, workflow: BpmnWorkflow) -> dict[str, Any]:
        dct = _workflow_fields(self, workflow)
        dump = state_memo.current()
        if dump is None:
            dct["subprocesses"] = self.mapping_to_dict(workflow.subprocesses)
        else:
            dct["subprocesses"] = {
                str(key): self._subprocess(dump, key, sub) for key, sub in workflow.subprocesses.items()
            }
        dct["bpmn_events"] = self.registry.convert(workflow.bpmn_events)
        return dct

    def _subprocess(self, dump: state_memo.Dump, key: Any, subprocess: BpmnSubWorkflow) -> Any:
        """A finished subprocess is kept whole (state_memo.py); a running one memoises its parts."""
        if not state_memo.is_finished(subprocess):
            return self.registry.convert(subprocess)
        return dump.finished(("subprocess", key), subprocess, lambda: self.registry.convert(subprocess))


class _SubWorkflowConverter(BpmnSubWorkflowConverter):  # type: ignore[misc]
    """Spiff's, with the tasks and data a `dump_state` in progress has memoised (state_memo.py)."""

    def to_dict(self, workflow: BpmnSubWorkflow) -> dict[str, Any]:
        dct = _workflow_fields(self, workflow)
        dct["parent_task_id"] = str(workflow.parent_task_id)
        dct["spec"] = workflow.spec.name
        return dct


def _workflow_fields(converter: WorkflowConverter, workflow: BpmnWorkflow) -> dict[str, Any]:
    """WorkflowConverter.to_dict, with markers for the data and tasks when a memoised write runs."""
    dump = state_memo.current()
    if dump is None:
        return dict(WorkflowConverter.to_dict(converter, workflow))
    registry = converter.registry

    def task_dict(task: Task) -> Any:
        return lambda: registry.convert(task)

    return {
        "data": dump.fragment(
            ("data", workflow.parent_task_id),
            (workflow.data,),
            lambda: registry.convert(registry.clean(workflow.data)),
        ),
        "correlations": workflow.correlations,
        "last_task": str(workflow.last_task.id) if workflow.last_task is not None else None,
        "success": workflow.success,
        "completed": workflow.completed,
        "tasks": {
            key: dump.fragment(key, state_memo.task_fingerprint(task), task_dict(task))
            for key, task in ((str(task_id), task) for task_id, task in workflow.tasks.items())
        },
        "root": str(workflow.task_tree.id),
    }


def _make_serializer() -> BpmnWorkflowSerializer:
    config = dict(SPIFF_CONFIG)
    config[JobServiceTask] = ServiceTaskConverter
    config[HumanTask] = UserTaskConverter
    config[PassThroughTask] = SpiffBpmnTaskConverter
    config[PassThroughManualTask] = SpiffBpmnTaskConverter
    config[BpmnWorkflow] = _StateOnlyConverter
    config[Task] = StoredDataTaskConverter
    config[BpmnSubWorkflow] = _SubWorkflowConverter
    bounded_specs.register_bounded_converters(config)
    register_timer_converters(config)
    registry = BpmnWorkflowSerializer.configure(config, StoredDataRegistry())
    registry.register(Decimal, lambda v: {"value": str(v)}, lambda v: Decimal(v["value"]))
    registry.register(date, lambda v: {"value": v.isoformat()}, lambda v: date.fromisoformat(v["value"]))
    return BpmnWorkflowSerializer(registry)


SERIALIZER = _make_serializer()


def dump_state(workflow: BpmnWorkflow) -> str:
    """The instance's state as JSON, without the spec; what did not change since this live workflow's
    previous write is not serialized again (state_memo.py)."""
    return state_memo.dump(workflow, lambda: str(SERIALIZER.serialize_json(workflow)), _encode).state


def dump_state_apart(workflow: BpmnWorkflow) -> state_memo.Written:
    """`dump_state`, with each finished subprocess named in the state and its JSON returned beside it
    (`load_state` takes them back as `parts`)."""
    return state_memo.dump(workflow, lambda: str(SERIALIZER.serialize_json(workflow)), _encode, apart=True)


def _encode(value: Any) -> str:
    return json.dumps(value, cls=SERIALIZER._encoder_cls)


def load_state(
    state: str, specs: ProcessSpecs, script_engine: Any, parts: Mapping[str, str] | None = None
) -> BpmnWorkflow:
    """Rebuilds an instance from its state and its version's specs; `parts`: the JSON of the finished
    subprocesses the state names instead of holding (`dump_state_apart`), by subprocess id."""
    dct = json.loads(state, cls=SERIALIZER.json_decoder_cls)
    parts = parts or {}
    subprocesses = dct.get("subprocesses", {})
    for key, value in subprocesses.items():
        if value == state_memo.STORED_APART:
            if key not in parts:
                raise ValueError(f"the state names subprocess {key}, whose stored part is missing")
            subprocesses[key] = json.loads(parts[key], cls=SERIALIZER.json_decoder_cls)
    # parts written by another serializer version are migrated with the rest, and not reused as written
    current = dct.get(SERIALIZER.VERSION_KEY) == SERIALIZER.VERSION
    SERIALIZER.migrate(dct)
    # the version's specs, with placeholders for what a migration left behind (retired.py)
    dct["spec"], dct["subprocess_specs"] = retired.specs_for_state(dct, specs.spec, specs.subprocess_specs)
    workflow: BpmnWorkflow = SERIALIZER.from_dict(dct)
    workflow.script_engine = script_engine
    state_memo.loaded(workflow, parts if current else {})
    return workflow


def new_workflow(specs: ProcessSpecs, script_engine: Any, variables: Mapping[str, Any]) -> BpmnWorkflow:
    workflow = BpmnWorkflow(specs.spec, dict(specs.subprocess_specs), script_engine=script_engine)
    start = workflow.task_tree
    start.data.update(variables)
    for child in start.children:
        child.data.update(variables)
    return workflow


StartChoice = Callable[[Any], bool]
"""Which start events of a process may start an instance (a predicate on the start event's spec)."""


def plain_start(spec: Any) -> bool:
    """CreateInstance starts a process through its none start events."""
    return isinstance(spec.event_definition, NoneEventDefinition)


def message_start(name: str) -> StartChoice:
    """A message starts a process through the start events that catch that message."""

    def chosen(spec: Any) -> bool:
        return any(
            isinstance(d, MessageEventDefinition) and d.name == name
            for d in event_definitions(spec.event_definition)
        )

    return chosen


def timer_start(element_id: str) -> StartChoice:
    """A timer start event's firing starts a process through that start event."""

    def chosen(spec: Any) -> bool:
        return bool(spec.bpmn_id == element_id)

    return chosen


def choose_start(workflow: BpmnWorkflow, chosen: StartChoice) -> None:
    """Cancels the top process's other start events before its first engine step.

    Spiff runs every start event of a process that has several (StartEventSplit) and lets the first one
    to complete cancel the rest (StartEventJoin): beside a none start, a message or timer start event
    would be cancelled before its message could arrive. When no start event is chosen, all stay (a
    process with only message start events created directly keeps waiting for its message).
    """
    split = next((t for t in workflow.task_tree.children if isinstance(t.task_spec, StartEventSplit)), None)
    if split is None:
        return  # a single start event: nothing to choose
    starts = [task for task in split.children if isinstance(task.task_spec, StartEvent)]
    if not any(chosen(task.task_spec) for task in starts):
        return
    for task in starts:
        if not chosen(task.task_spec):
            task.cancel()


# ----------------------------------------------------------------------------------- what it waits for


@dataclass(frozen=True)
class WaitingTimer:
    task_id: str
    element_id: str
    due_at: datetime


@dataclass(frozen=True)
class WaitingMessage:
    task_id: str
    element_id: str
    message_name: str
    correlation_key: str


@dataclass(frozen=True)
class OpenServiceTask:
    task: Task
    spec: JobServiceTask


@dataclass(frozen=True)
class CorrelationFailure:
    """A message a task would wait for, but whose correlation expression failed: it waits for nothing
    (rather than under the key "", where it would receive messages meant for no one)."""

    subscription_id: str
    element_id: str
    message_name: str
    error: str


class CorrelationError(Exception):
    """A message's correlation expression failed on the data it was evaluated with."""


@dataclass
class Snapshot:
    """Everything an instance waits for after an engine step, gathered in one walk of its tasks."""

    service_tasks: dict[str, OpenServiceTask] = field(default_factory=dict)
    user_tasks: dict[str, Task] = field(default_factory=dict)
    timers: list[WaitingTimer] = field(default_factory=list)
    messages: list[WaitingMessage] = field(default_factory=list)
    errors: dict[str, Task] = field(default_factory=dict)
    active: list[Task] = field(default_factory=list)
    correlation_failures: list[CorrelationFailure] = field(default_factory=list)


def tasks_in(workflow: BpmnWorkflow, states: int) -> list[Task]:
    """The instance's tasks in any of `states`, in every process and subprocess: the tasks Spiff's
    `get_tasks(state=...)` finds, read from each workflow's task dictionary instead of walked through the
    tree. The walk costs about forty times as much (441 against 11 µs on a running engagement of 200
    tasks, docs/performance.md) and a step asks several times. The order is the order the tasks were made
    in, not the tree's."""
    found = [task for task in workflow.tasks.values() if task.state & states]
    for subprocess in workflow.subprocesses.values():
        found.extend(task for task in subprocess.tasks.values() if task.state & states)
    return found


def snapshot(workflow: BpmnWorkflow) -> Snapshot:
    """What the instance waits for now (one pass over its tasks)."""
    found = Snapshot()
    mask = TaskState.READY | TaskState.STARTED | TaskState.WAITING | TaskState.ERROR
    for task in tasks_in(workflow, mask):
        spec = task.task_spec
        task_id = str(task.id)
        if task.state == TaskState.ERROR:
            found.errors[task_id] = task
            found.active.append(task)
        elif isinstance(spec, JobServiceTask) and task.state == TaskState.STARTED:
            found.service_tasks[task_id] = OpenServiceTask(task, spec)
            found.active.append(task)
        elif isinstance(spec, HumanTask) and task.state == TaskState.READY:
            found.user_tasks[task_id] = task
            found.active.append(task)
        elif task.state == TaskState.WAITING and isinstance(spec, CatchingEvent):
            waits = False
            for index, definition in enumerate(event_definitions(spec.event_definition)):
                # An event-based gateway waits for its following events: name them, not the gateway.
                element = spec.outputs[index] if isinstance(spec, EventBasedGateway) else spec
                element_id = element.bpmn_id or element.name
                if isinstance(definition, TimerEventDefinition):
                    due = timer_due(task, definition)
                    if due is not None:
                        found.timers.append(WaitingTimer(task_id, element_id, due))
                        waits = True
                elif isinstance(definition, MessageEventDefinition) and isinstance(spec, StartEvent):
                    # A message start event is matched by name when its message starts the instance:
                    # the instance has no data yet for a correlation expression to read.
                    found.messages.append(WaitingMessage(task_id, element_id, definition.name, ""))
                    waits = True
                elif isinstance(definition, MessageEventDefinition):
                    try:
                        key = correlation_key(task, definition)
                    except CorrelationError as exc:
                        failure = CorrelationFailure(task_id, element_id, definition.name, str(exc))
                        found.correlation_failures.append(failure)
                    else:
                        found.messages.append(WaitingMessage(task_id, element_id, definition.name, key))
                    waits = True
            if waits:
                found.active.append(task)
    if not workflow.is_completed():
        _add_event_subprocess_triggers(workflow, found)
    return found


TRIGGER_PREFIX = "trigger:"


def _add_event_subprocess_triggers(workflow: BpmnWorkflow, found: Snapshot) -> None:
    """Message start events of the top process's event subprocesses: Spiff creates such a subprocess only
    when its message arrives, so they wait without a task; their subscription id names the subprocess."""
    data = _process_data(workflow)
    for name in workflow.spec.start.trigger_specs:
        for start in workflow.subprocess_specs[name].bpmn_start_events:
            definition = start.event_definition
            if isinstance(definition, MessageEventDefinition):
                subscription_id, element_id = f"{TRIGGER_PREFIX}{name}", start.bpmn_id or start.name
                try:
                    key = _evaluate_key(workflow.script_engine, definition, data)
                except CorrelationError as exc:
                    failure = CorrelationFailure(subscription_id, element_id, definition.name, str(exc))
                    found.correlation_failures.append(failure)
                    continue
                found.messages.append(WaitingMessage(subscription_id, element_id, definition.name, key))


def _process_data(workflow: BpmnWorkflow) -> dict[str, Any]:
    last = workflow.last_task
    return dict(last.data) if last is not None else dict(workflow.task_tree.data)


def _evaluate_key(script_engine: Any, definition: MessageEventDefinition, data: Mapping[str, Any]) -> str:
    """The message's key: its first correlation property evaluated on `data` ("" without one).

    Raises CorrelationError when the expression fails (e.g. it names a variable the data lacks).
    """
    for prop in definition.correlation_properties:
        try:
            value = script_engine.environment.evaluate(prop.retrieval_expression, dict(data))
        except Exception as exc:
            raise CorrelationError(f"{prop.retrieval_expression!r}: {error_text(exc)}") from exc
        return "" if value is None else str(value)
    return ""


def deliver_trigger(
    workflow: BpmnWorkflow, subscription_id: str, correlation_key_value: str, variables: Mapping[str, Any]
) -> bool:
    """Starts an event subprocess by its message; its variables land in the subprocess's start event."""
    name = subscription_id.removeprefix(TRIGGER_PREFIX)
    spec = workflow.subprocess_specs.get(name)
    if spec is None or workflow.is_completed():
        return False
    for start in spec.bpmn_start_events:
        definition = start.event_definition
        if not isinstance(definition, MessageEventDefinition):
            continue
        payload = _message_payload(definition, correlation_key_value, variables)
        correlations = definition.calculate_correlations(
            workflow.script_engine, definition.correlation_properties, payload
        )
        before = set(workflow.subprocesses)
        try:
            workflow.send_event(BpmnEvent(definition, payload=payload, correlations=correlations))
        except SpiffWorkflowException:
            return False
        # BPMN: an event subprocess sees its process's variables (Spiff would give it only the data the
        # process started with), then the message's.
        context = _process_data(workflow)
        for task in tasks_in(workflow, TaskState.READY):
            if task.task_spec is start:
                task.data.update({**context, **payload})
        if getattr(start, "interrupting", True):
            for task_id in set(workflow.subprocesses) - before:
                _interrupt_siblings(workflow.get_task_from_id(task_id))
        return True
    return False


def _interrupt_siblings(trigger: Task) -> None:
    """An interrupting event subprocess cancels everything else its process is doing."""
    for sibling in list(trigger.parent.children):
        if sibling is not trigger:
            sibling.cancel()  # cancels what is unfinished below it, including called subprocesses


def event_definitions(definition: Any) -> list[Any]:
    """The definitions a catching event waits for: several for an event-based gateway."""
    if isinstance(definition, MultipleEventDefinition):
        return list(definition.event_definitions)
    return [definition]


def timer_due(task: Task, definition: TimerEventDefinition) -> datetime | None:
    """When a waiting timer fires next, read from the value Spiff stored when it started waiting."""
    value = task._get_internal_data("event_value")
    if value is None:
        return None
    if isinstance(definition, CycleTimerEventDefinition):
        if not isinstance(value, dict) or value.get("cycles") == 0:
            return None
        value = value["next"]
    due = datetime.fromisoformat(str(value))
    return due if due.tzinfo else due.replace(tzinfo=UTC)


def correlation_key(task: Task, definition: MessageEventDefinition) -> str:
    """The key a waiting message task expects: its message's correlation property evaluated on its data.

    Convention: a message's `bpmn:correlationProperty` retrieval expression names the process variable
    that holds the key (e.g. `engagement_id`); a message without one correlates on the empty key.
    Raises CorrelationError when the expression fails.
    """
    return _evaluate_key(task.workflow.script_engine, definition, task.data)


def correlation_variable(definition: MessageEventDefinition) -> str | None:
    """The variable a message's correlation property reads, when it is a plain name."""
    for prop in definition.correlation_properties:
        expression = prop.retrieval_expression.strip()
        if expression.isidentifier():
            return str(expression)
    return None


def _message_payload(
    definition: MessageEventDefinition, correlation_key_value: str, variables: Mapping[str, Any]
) -> dict[str, Any]:
    """A delivered message's variables, plus its key under the variable its correlation property reads
    (unless the variables name it already), so the receiver holds the key it was matched on."""
    payload = dict(variables)
    key_variable = correlation_variable(definition)
    if key_variable and correlation_key_value:
        payload.setdefault(key_variable, correlation_key_value)
    return payload


def deliver_message(task: Task, name: str, correlation_key_value: str, variables: Mapping[str, Any]) -> None:
    """Delivers a message to one waiting task; its variables merge into the task's data."""
    definition = next(
        d
        for d in event_definitions(task.task_spec.event_definition)
        if isinstance(d, MessageEventDefinition) and d.name == name
    )
    payload = _message_payload(definition, correlation_key_value, variables)
    task.task_spec.catch(task, BpmnEvent(definition, payload=payload))
    task.task_spec._update(task)
    # After _update, which re-inherits the parent's data: a second message of the same name must win.
    task.data.update(payload)


def catch_error(task: Task, code: str, message: str, variables: Mapping[str, Any]) -> bool:
    """Routes a worker's BPMN error to the error boundary events attached to `task`.

    Coded catches are preferred over catch-all ones. Returns False when nothing catches it.
    """
    parent = task.parent
    if parent is None or not isinstance(parent.task_spec, BoundaryEventSplit):
        return False
    definition = ErrorEventDefinition(code, code=code)
    event = BpmnEvent(definition, payload={"code": code, "message": message, **variables})
    candidates = [
        sibling
        for sibling in parent.children
        if sibling is not task
        and sibling.state == TaskState.WAITING
        and isinstance(getattr(sibling.task_spec, "event_definition", None), ErrorEventDefinition)
        and sibling.task_spec.catches(sibling, event)
    ]
    if not candidates:
        return False
    coded = [c for c in candidates if c.task_spec.event_definition.code]
    target = (coded or candidates)[0]
    target.task_spec.catch(target, event)
    target.task_spec._update(target)
    target.data.update(variables)  # after _update, which re-inherits the parent's data
    return True


def is_waiting_service_task(task: Task | None) -> bool:
    return task is not None and isinstance(task.task_spec, JobServiceTask) and task.state == TaskState.STARTED


def job_parameters(task: Task) -> dict[str, Any]:
    """A service task's parameters evaluated on its data; raises what a failing expression raises."""
    return {k: v["value"] for k, v in task.task_spec.evaluate_params(task).items()}


def find_task(workflow: BpmnWorkflow, task_id: str) -> Task | None:
    """The task an id names; None when the id is no task's (a stale reply, a malformed key)."""
    try:
        result: Task | None = workflow.get_task_from_id(UUID(task_id))
    except (ValueError, TaskNotFoundException):
        return None
    return result


def describe(task: Task) -> tuple[str, str, str]:
    """(element id, display name, element type) of a task for history and views."""
    spec = task.task_spec
    element_id = spec.bpmn_id or spec.name
    name = spec.bpmn_name or element_id
    kind = type(spec).__name__
    if isinstance(spec, BoundaryEvent):
        kind = "boundaryEvent"
    elif isinstance(spec, CatchingEvent):
        definition = spec.event_definition
        if isinstance(definition, TimerEventDefinition):
            kind = "timer"
        elif isinstance(definition, MessageEventDefinition):
            kind = "message"
    elif isinstance(spec, JobServiceTask):
        kind = "serviceTask"
    elif isinstance(spec, HumanTask):
        kind = "userTask"
    return element_id, name, kind


def task_process_id(task: Task) -> str:
    return str(task.workflow.spec.name)


def error_text(exc: BaseException) -> str:
    """A readable one-line reason for an incident."""
    if isinstance(exc, SpiffWorkflowException):
        notes = "; ".join(getattr(exc, "notes", []) or [])
        base = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return f"{base}{' — ' + notes if notes else ''}"
    return f"{type(exc).__name__}: {exc}"


def visible_data(workflow: BpmnWorkflow) -> dict[str, Any]:
    """The variables a person looking at the instance cares about: the latest task's data."""
    if workflow.is_completed():
        data = dict(workflow.data)
        last = workflow.last_task
        if last is not None:
            data = {**last.data, **data}
        return data
    last = workflow.last_task
    return dict(last.data) if last is not None else dict(workflow.data)
