"""Placeholders for elements a migration left behind: finished tasks of a migrated instance may name an
element the new version no longer has, and a stored state names each task's spec, so without a spec of
that name the state would not load. Apart from migration.py so that engine.py can use it without a cycle."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from SpiffWorkflow.bpmn.specs.bpmn_task_spec import BpmnTaskSpec
from SpiffWorkflow.util.task import TaskState


class RetiredElement(BpmnTaskSpec):  # type: ignore[misc]
    """Stands for a removed element in finished tasks: never reached (no inputs, no outputs), only named."""

    def __init__(self, wf_spec: Any, name: str) -> None:
        # no bpmn_id: it is no element of the diagram (statistics, modify and deploy checks skip it)
        super().__init__(wf_spec, name)
        self.bpmn_name = f"{name} (retired)"
        self.manual = False


def retired_spec(process_spec: Any, name: str) -> Any:
    """The process's spec of that name, or its placeholder, added once (the same for every instance)."""
    existing = process_spec.task_specs.get(name)
    if existing is not None:
        return existing
    return RetiredElement(process_spec, name)


def retire_missing(dct: dict[str, Any], spec: Any, subprocess_specs: Mapping[str, Any]) -> None:
    """Adds a placeholder to the version's specs for every element the finished tasks of a stored state (as
    a dict, before Spiff restores it) name that the version does not have, in the top workflow and every
    subworkflow."""
    tasks: Mapping[str, Any] = dct.get("tasks", {})
    _retire_tasks(tasks, spec)
    owners: dict[str, Any] = dict.fromkeys(tasks, spec)  # task id → the process spec its workflow runs
    spec_names: dict[str, str] = {task_id: task["task_spec"] for task_id, task in tasks.items()}
    pending: dict[str, Any] = dict(dct.get("subprocesses", {}))
    while pending:  # parents before children: a subworkflow's caller is a task of an earlier one
        ready = [sub_id for sub_id in pending if sub_id in owners]
        if not ready:
            return  # callers Spiff will not restore either
        for sub_id in ready:
            sub = pending.pop(sub_id)
            caller = owners[sub_id].task_specs.get(spec_names.get(sub_id, ""))
            called = getattr(caller, "spec", None)
            process = subprocess_specs.get(called) if isinstance(called, str) else None
            if process is None:
                continue
            sub_tasks: Mapping[str, Any] = sub.get("tasks", {})
            _retire_tasks(sub_tasks, process)
            for task_id, task in sub_tasks.items():
                owners[task_id] = process
                spec_names[task_id] = task["task_spec"]


def _retire_tasks(tasks: Mapping[str, Any], process_spec: Any) -> None:
    """Only completed and cancelled tasks: an unfinished task naming a missing element is a state this
    version cannot run, and loading it must fail loudly rather than leave the instance waiting forever."""
    for task in tasks.values():
        name = task.get("task_spec")
        finished = int(task.get("state", 0)) & (TaskState.COMPLETED | TaskState.CANCELLED)
        if finished and isinstance(name, str) and name not in process_spec.task_specs:
            retired_spec(process_spec, name)
