"""A cycle timer's finished rounds, dropped from the running state.

A non-interrupting timer with a `timeCycle` (the weekly project monitoring, the fortnightly client
reports and risk reviews) starts a new branch under its waiting task every time it fires, and SpiffWorkflow
keeps each branch there, finished or not, until the timer itself ends: months later, for a monitoring that
runs until delivery. Every step walks and writes the running part of the state, so an engagement's steps
grew slower with every round (786 tasks of monitoring rounds in one engagement of a 100-engagement run,
docs/performance.md), as a finished subprocess did before it was stored apart.

Zeebe keeps no completed element instance in its state at all. Here a step drops a round once every task
in it has COMPLETED or been CANCELLED, with any subprocess it ran (and so that subprocess's stored part).
What a round did stays where people read it: the instance's history, the jobs and the user tasks. A round
is kept while any of its tasks is open or failed (an ERROR task is where its incident points), and while it
holds its workflow's last completed task: the data a person sees (`engine.visible_data`) and a
subprocess hands back when it ends are that task's.

A round dropped is gone from the state, so a reset (`reset_from_task_id`) cannot go back into it.
"""

from __future__ import annotations

from SpiffWorkflow.bpmn.specs.event_definitions.timer import CycleTimerEventDefinition
from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
from SpiffWorkflow.task import Task
from SpiffWorkflow.util.task import TaskState

FINISHED = TaskState.COMPLETED | TaskState.CANCELLED
"""Not ERROR: a failed task keeps its round, where its incident points."""


def drop_finished_rounds(workflow: BpmnWorkflow) -> int:
    """Drops the finished rounds of every cycle timer still cycling; returns how many tasks went."""
    top = workflow.top_workflow
    dropped = 0
    # the event manager holds exactly the waiting catch events, so no walk of the whole tree is needed
    for timer in list(top.event_manager.tasks.values()):
        if not _cycling(timer):
            continue
        for round_start in list(timer.children):
            tasks = _round(round_start)
            if not _finished(tasks):
                continue
            for task in tasks:
                if task.id in top.subprocesses:
                    top.delete_subprocess(task)  # nested ones with it
            round_start.workflow._remove_task(round_start.id)
            dropped += len(tasks)
    return dropped


def _cycling(task: Task) -> bool:
    definition = getattr(task.task_spec, "event_definition", None)
    return task.state == TaskState.WAITING and isinstance(definition, CycleTimerEventDefinition)


def _round(start: Task) -> list[Task]:
    """The round's first task and every task after it: an explicit walk, which no depth limit cuts short
    (a walk that stopped early could miss an open task and drop a round still running)."""
    tasks, pending = [], [start]
    while pending:
        task = pending.pop()
        tasks.append(task)
        pending.extend(task.children)
    return tasks


def _finished(tasks: list[Task]) -> bool:
    last = tasks[0].workflow.last_task
    return all(task.state & FINISHED and task is not last for task in tasks)
