"""One deployed version's spec, shared by all its instances: what SpiffWorkflow would change in it at run
time is wired once when the spec is parsed (`trigger_without_changing_the_spec`, `merge_loop_children`)."""

from __future__ import annotations

from typing import Any

from SpiffWorkflow.bpmn.specs.mixins.multiinstance_task import LoopTask
from SpiffWorkflow.task import Task
from SpiffWorkflow.util.task import TaskState


def trigger_without_changing_the_spec(spec: Any) -> None:
    """Starts a message-triggered event subprocess in one workflow without wiring it into the spec.

    SpiffWorkflow's `BpmnStartTask.trigger_wf` connects the process's Start to the event subprocess at the
    moment it is triggered, for good. Spiff normally gives every workflow its own copy of the spec; the
    orchestrator shares one spec per deployed version between all its instances (and stores no spec with
    an instance's state), so that connection made every instance created afterwards start the event
    subprocess at once (waiting for a message keyed by nothing, never completing), while an instance
    reloaded by a restarted orchestrator found no connection at all. So the subprocess's own links — Start
    as its input (Spiff requires one) and the End as its output — are wired once, here, for every
    message-triggered event subprocess; Start never lists it among its outputs; and a trigger only adds
    the subprocess to the triggered workflow's task tree."""
    start = getattr(spec, "start", None)
    if start is None or not hasattr(start, "trigger_wf"):
        return
    for name in start.trigger_specs:
        subprocess_spec = start._wf_spec.task_specs[name]
        if start not in subprocess_spec.inputs:
            subprocess_spec._connect_notify(start)
        if start._wf_spec.end not in subprocess_spec.outputs:
            subprocess_spec.connect(start._wf_spec.end)

    def trigger_wf(my_task: Task, spec_name: str) -> Any:
        child = my_task._add_child(start._wf_spec.task_specs[spec_name], TaskState.FUTURE)
        child.triggered = True
        child.task_spec._update(child)
        return child.id

    start.trigger_wf = trigger_wf


def merge_loop_children(spec: Any) -> None:
    """Wires every loop or multi-instance task of the spec to hear its children complete.

    SpiffWorkflow connects a loop task's `merge_child` to its child spec's `completed_event` only when a
    workflow creates a child (`create_child`) or when it deserializes a spec; the orchestrator parses its
    specs and loads states without them. So a replica (or a restarted orchestrator) that had not itself
    created a child of that task since it parsed the spec completed the child without merging it: a
    multi-instance task whose last child completed there stayed STARTED for good, its instance ACTIVE
    with nothing to wait for. Wired once here, every replica merges every child, whoever created it (and
    two threads creating the first children at once cannot wire it twice)."""
    for task_spec in list(getattr(spec, "task_specs", {}).values()):
        if isinstance(task_spec, LoopTask):
            child_spec = spec.task_specs[task_spec.task_spec]
            if not child_spec.completed_event.is_connected(task_spec.merge_child):
                child_spec.completed_event.connect(task_spec.merge_child)
