"""Writes a live workflow's state as JSON, reusing the JSON of every part that did not change since the
previous write of the same live workflow.

Every step stores the whole state (engine.dump_state), and most of it is history: finished tasks and
ended subprocesses, each holding a copy of the engagement's data. Serializing all of it again was the
orchestrator's largest cost per step (docs/performance.md). Here each task and each (sub)workflow's data
keeps the JSON it was last written as, with a frozen copy of everything that JSON was made from (its
state, children, data, its parent's data, ...); a part whose copy still equals the live values is written
from its JSON, the rest as Spiff writes it. The result loads exactly as Spiff's own serialization does:
only the work of producing it is saved. Equality is Python's (`==`), so a value replaced in place by an
equal one of another type (1 by 1.0) keeps the JSON of the first — the same number either way.

A finished subprocess (most of an engagement's state: intake, implementation, ... done long ago) is kept
whole instead, under a fingerprint of its tasks' states and the very objects they hold, so that a step does
not compare its data beyond identity (`Dump.finished`). That is sound because nothing outside it reaches
its data any more: an embedded (or event) subprocess got a deep copy of its caller's data and handed a deep
copy back; a call activity shares nested values with its caller's earlier data, so its data is detached
(deep-copied) when it is first kept whole. That detached copy is what loading the state gives anyway:
each (sub)workflow's root restores its data on its own.

A finished subprocess can also be written apart (`dump(..., apart=True)`): the state then names it by
its id in place of its JSON (`STORED_APART`), and the JSON comes back beside the state, so that the
orchestrator stores it once in a row of its own (state_parts.py) instead of in every step's write.

The memo lives on the live workflow (the host's cache keeps it between steps); a workflow loaded from its
state starts with none and builds it on its first write, except for the finished subprocesses loaded from
parts, whose JSON is known already (`loaded`).
"""

from __future__ import annotations

import copy
import re
import threading
import uuid
import weakref
from collections.abc import Callable, Mapping
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any, NamedTuple

from SpiffWorkflow.bpmn.specs.mixins.subworkflow_task import SubWorkflowTask
from SpiffWorkflow.bpmn.util.subworkflow import BpmnSubWorkflow
from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
from SpiffWorkflow.task import Task

MEMO_ATTRIBUTE = "_consultflow_json_memo"
LOADED_ATTRIBUTE = "_consultflow_loaded_finished"
"""The finished subprocesses (objects, not ids: a reset may make a new one under the same id) a workflow
had when it was loaded: their data is their own already."""

STORED_APART = "instance_parts"
"""What the state holds in place of a finished subprocess written apart: the table its JSON is in (under
the instance's id and the subprocess's id, the key it stands under)."""

_Fingerprint = tuple[Any, ...]
_Memo = dict[Any, tuple[_Fingerprint, str]]


class Written(NamedTuple):
    """A write's result: the state, and the finished subprocesses it names instead of holding (by id)."""

    state: str
    apart: dict[str, str]


class Dump:
    """One write in progress: the memo it reads and refreshes, and the JSON its markers stand for."""

    def __init__(self, memo: _Memo, encode: Callable[[Any], str]) -> None:
        self.memo = memo
        self.encode = encode
        self.token = _TOKEN
        self.fragments: list[str] = []
        self.seen: set[Any] = set()
        self.copies: dict[int, Any] = {}
        """Frozen copies made in this write, by the id of what they copy (alive until it ends)."""
        self.finished_ids: dict[int, str] = {}
        """The fragments that are finished subprocesses: the subprocess id of each, by fragment number."""

    def fragment(self, key: Any, fingerprint: _Fingerprint, produce: Callable[[], Any]) -> str:
        """A marker for the JSON of one part: its earlier JSON if `fingerprint` is unchanged, else new."""
        self.seen.add(key)
        known = self.memo.get(key)
        if known is not None and known[0] == fingerprint:
            text = known[1]
        else:
            text = self.encode(produce())
            try:
                self.memo[key] = (_copy(fingerprint, self.copies), text)
            except _Uncopyable:
                self.memo.pop(key, None)
        self.fragments.append(text)
        return f"{self.token}{len(self.fragments) - 1}"

    def finished(self, key: Any, workflow: BpmnSubWorkflow, produce: Callable[[], Any]) -> str:
        """A marker for the whole JSON of a finished subprocess: its earlier JSON while none of its tasks
        changed state, spec or data dict (a reset would), else detached from shared data and written anew;
        `produce` runs without the memo, so its JSON holds no markers."""
        self.seen.add(key)
        known = self.memo.get(key)
        if known is not None and known[0] == finished_fingerprint(workflow):
            text = known[1]
        else:
            loaded_finished = getattr(workflow.top_workflow, LOADED_ATTRIBUTE, ())
            if _shares_data(workflow) and workflow not in loaded_finished:
                _detach(workflow)
            _current.dump = None
            try:
                text = self.encode(produce())
            finally:
                _current.dump = self
            self.memo[key] = (finished_fingerprint(workflow), text)
        self.finished_ids[len(self.fragments)] = str(key[-1])
        self.fragments.append(text)
        return f"{self.token}{len(self.fragments) - 1}"

    def splice(self, text: str, apart: bool) -> Written:
        """The JSON with every marker (a JSON string) replaced by the JSON it stands for, or by
        `STORED_APART` for a finished subprocess when `apart`."""
        if not apart:
            return Written(_MARKER.sub(lambda m: self.fragments[int(m.group(1))], text), {})
        reference = f'"{STORED_APART}"'
        fragments, finished_ids = self.fragments, self.finished_ids

        def replace(match: re.Match[str]) -> str:
            number = int(match.group(1))
            return reference if number in finished_ids else fragments[number]

        state = _MARKER.sub(replace, text)
        return Written(state, {part_id: fragments[n] for n, part_id in finished_ids.items()})

    def forget_unseen(self) -> None:
        """Drops the memo of parts the workflow no longer has (a reset removed them)."""
        for key in [key for key in self.memo if key not in self.seen]:
            del self.memo[key]


_TOKEN = f"@cf-{uuid.uuid4().hex}-"
"""Markers name their piece after this (random per process, so no data can hold it); one token, so that
the pattern is compiled once, not on every write."""
_MARKER = re.compile('"' + re.escape(_TOKEN) + r'(\d+)"')

_current = threading.local()


def current() -> Dump | None:
    """The write in progress on this thread, if it uses a memo (the converters consult it)."""
    return getattr(_current, "dump", None)


def dump(
    workflow: BpmnWorkflow, serialize: Callable[[], str], encode: Callable[[Any], str], apart: bool = False
) -> Written:
    """What `serialize()` writes, where the converters (engine.py) put markers for the parts they memoised
    (`encode` writes those parts, as `serialize` would); with `apart`, finished subprocesses beside it."""
    memo: _Memo | None = getattr(workflow, MEMO_ATTRIBUTE, None)
    if memo is None:
        memo = {}
        setattr(workflow, MEMO_ATTRIBUTE, memo)
    state = Dump(memo, encode)
    _current.dump = state
    try:
        text = serialize()
    finally:
        _current.dump = None
    state.forget_unseen()
    return state.splice(text, apart)


def task_fingerprint(task: Task) -> _Fingerprint:
    """Everything Spiff writes of a task comes from these (its data as a delta to its parent's)."""
    parent = task.parent
    return (
        task.task_spec.name,
        task._parent,
        task.state,
        task.last_state_change,
        task.triggered,
        tuple(task._children),
        task.internal_data,
        task.data,
        parent.data if parent is not None else None,
    )


def is_finished(workflow: BpmnSubWorkflow) -> bool:
    """A subprocess that ended (completed or cancelled): Spiff runs none of its tasks again."""
    return bool(workflow.completed)


def finished_fingerprint(workflow: BpmnSubWorkflow) -> _Fingerprint:
    """States and the objects themselves, compared by identity first (C speed; an object replaced by an
    equal one compares equal, and writes the same): a finished subprocess changes only by a reset, by
    replacing its data or by a new spec (a migration), and each shows here. The objects, not their ids:
    an id may be reused once the object is gone."""
    return (
        workflow.spec,
        workflow.completed,
        workflow.success,
        workflow.data,
        len(workflow.correlations),
        tuple(
            (
                key,
                task.task_spec,
                task.state,
                task.last_state_change,
                task.triggered,
                len(task._children),
                task.data,
                task.internal_data,
            )
            for key, task in workflow.tasks.items()
        ),
    )


def loaded(workflow: BpmnWorkflow, known: Mapping[str, str]) -> None:
    """Notes that `workflow` was just loaded from its state, where no subprocess shares data; `known`: the
    JSON of finished subprocesses as this serializer writes them, by id, so their first write is free."""
    finished = weakref.WeakSet(sub for sub in workflow.subprocesses.values() if is_finished(sub))
    setattr(workflow, LOADED_ATTRIBUTE, finished)
    if not known:
        return
    memo: _Memo = {}
    for key, sub in workflow.subprocesses.items():
        text = known.get(str(key))
        if text is not None and is_finished(sub):
            memo[("subprocess", key)] = (finished_fingerprint(sub), text)
    setattr(workflow, MEMO_ATTRIBUTE, memo)


def _shares_data(workflow: BpmnSubWorkflow) -> bool:
    """Whether a subprocess may share nested values with its caller: all but those whose caller hands
    them a deep copy (embedded and event subprocesses; a call activity passes its data as it is)."""
    caller = workflow.top_workflow.get_task_from_id(workflow.parent_task_id)
    spec = caller.task_spec if caller is not None else None
    return not (isinstance(spec, SubWorkflowTask) and type(spec).copy_data is SubWorkflowTask.copy_data)


def _detach(workflow: BpmnSubWorkflow) -> None:
    """Gives a finished subprocess data of its own (one deep copy, keeping what its tasks share with each
    other), so that a later change in place elsewhere cannot reach it: what loading its state gives."""
    memo: dict[int, Any] = {}
    workflow.data = copy.deepcopy(workflow.data, memo)
    for task in workflow.tasks.values():
        task.data = copy.deepcopy(task.data, memo)


_ATOMS = frozenset({str, int, float, bool, type(None), uuid.UUID, Decimal, date, datetime, timedelta})
"""Types whose values never change in place: a frozen copy shares them."""


class _Uncopyable(Exception):
    pass


def _copy(value: Any, copies: dict[int, Any]) -> Any:
    """A copy that later changes to `value` in place do not reach; `copies` (by id, for one write) lets
    the data a parent and its children share be copied once."""
    kind = type(value)
    if kind in _ATOMS:
        return value
    if kind is tuple:  # the fingerprint itself, made for this part alone: never kept by id
        return tuple(v if type(v) in _ATOMS else _copy(v, copies) for v in value)
    # A dict or list here belongs to the workflow, alive until the write ends: its id stays its own.
    made: Any = copies.get(id(value))
    if made is not None:
        return made
    if kind is dict:
        made = {k: v if type(v) in _ATOMS else _copy(v, copies) for k, v in value.items()}
    elif kind is list:
        made = [v if type(v) in _ATOMS else _copy(v, copies) for v in value]
    else:
        try:
            return copy.deepcopy(value)
        except Exception as error:
            raise _Uncopyable() from error
    copies[id(value)] = made
    return made
