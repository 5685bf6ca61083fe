"""Placeholders for elements a migration left behind: finished tasks of a migrated instance may name an
element the new version no longer has, and a stored state names each task's spec, so without a spec of
that name the state would not load. Apart from migration.py so that engine.py can use it without a cycle.

The parsed specs of a version are shared by every instance and thread (host.py caches them): they are
never changed. A workflow that needs placeholders gets its own shallow copy of a process spec that holds
them beside the version's specs.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from SpiffWorkflow.bpmn.specs.bpmn_task_spec import BpmnTaskSpec
from SpiffWorkflow.util.task import TaskState

FINISHED = TaskState.COMPLETED | TaskState.CANCELLED


class _Unregistered:
    """Takes the place of a process spec while a placeholder is made, so that it is added to none."""

    def __init__(self) -> None:
        self.task_specs: dict[str, Any] = {}

    def _add_notify(self, task_spec: Any) -> None:
        self.task_specs[task_spec.name] = task_spec


class RetiredElement(BpmnTaskSpec):  # type: ignore[misc]
    """Stands for a removed element in finished tasks: never reached (no inputs, no outputs), only named.
    It has no bpmn_id: it is no element of the diagram (statistics, mappings and modify skip it)."""

    def __init__(self, wf_spec: Any, name: str) -> None:
        super().__init__(_Unregistered(), name)
        self._wf_spec = wf_spec
        self.bpmn_name = f"{name} (retired)"


def placeholder(process_spec: Any, name: str) -> Any:
    """The process's spec of that name, else a new placeholder for it (added to no spec)."""
    existing = process_spec.task_specs.get(name)
    return existing if existing is not None else RetiredElement(process_spec, name)


def specs_for_state(
    dct: Mapping[str, Any], spec: Any, subprocess_specs: Mapping[str, Any]
) -> tuple[Any, dict[str, Any]]:
    """The specs to restore a stored state (as a dict, before Spiff restores it) with: the version's own,
    except that a process whose finished tasks name elements it lacks is replaced by a copy holding
    placeholders for them. Unfinished tasks are left alone: a wait nothing could continue must fail to
    load rather than leave the instance waiting forever."""
    subprocesses = dict(subprocess_specs)
    tasks: Mapping[str, Any] = dct.get("tasks", {})
    top = _with_placeholders(spec, tasks)
    owners: dict[str, Any] = dict.fromkeys(tasks, top)  # task id → the process spec its workflow runs
    spec_names: dict[str, str] = {task_id: task["task_spec"] for task_id, task in tasks.items()}
    pending: dict[str, Any] = dict(dct.get("subprocesses", {}))
    while pending:  # parents before children: a subworkflow's caller is a task of an earlier one
        ready = [sub_id for sub_id in pending if sub_id in owners]
        if not ready:
            break  # callers Spiff will not restore either
        for sub_id in ready:
            sub_tasks: Mapping[str, Any] = pending.pop(sub_id).get("tasks", {})
            caller = owners[sub_id].task_specs.get(spec_names.get(sub_id, ""))
            called = getattr(caller, "spec", None)
            process = subprocesses.get(called) if isinstance(called, str) else None
            if process is None:
                continue
            process = _with_placeholders(process, sub_tasks)
            subprocesses[str(called)] = process
            for task_id, task in sub_tasks.items():
                owners[task_id] = process
                spec_names[task_id] = task["task_spec"]
    return top, subprocesses


def _with_placeholders(process_spec: Any, tasks: Mapping[str, Any]) -> Any:
    missing = {
        name
        for task in tasks.values()
        if int(task.get("state", 0)) & FINISHED
        and isinstance(name := task.get("task_spec"), str)
        and name not in process_spec.task_specs
    }
    if not missing:
        return process_spec
    own = copy.copy(process_spec)
    own.task_specs = dict(process_spec.task_specs)
    for name in sorted(missing):
        own.task_specs[name] = RetiredElement(own, name)
    return own
