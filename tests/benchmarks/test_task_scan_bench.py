"""What a step pays to find an instance's open tasks (`make bench`): Spiff's filtered tree walk against
`engine.tasks_in`, which reads each workflow's task dictionary. Prints figures; asserts only that both
find the same tasks.

The instance is a running one as an engagement's is late in its life: a user task waiting after 200
finished tasks in a subprocess and 200 in the process itself.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from SpiffWorkflow.util.task import TaskState

from consultflow.orchestrator import engine, state_parts
from consultflow.orchestrator.orm import Instance
from tests.support.bpmn_builder import bpmn
from tests.support.orchestrator_harness import Harness

pytestmark = pytest.mark.benchmark

OPEN = TaskState.READY | TaskState.STARTED | TaskState.WAITING | TaskState.ERROR
CHAIN = 200


def chained(prefix: str) -> tuple[str, str]:
    nodes = "".join(
        f'<scriptTask id="{prefix}{n}"><script>n = {n}</script></scriptTask>' for n in range(CHAIN)
    )
    flows = "\n".join(f"{prefix}{n} -> {prefix}{n + 1}" for n in range(CHAIN - 1))
    return nodes, flows


def test_open_tasks_walked_against_read_from_the_task_dictionaries(tmp_path: Path) -> None:
    inner_nodes, inner_flows = chained("i")
    outer_nodes, outer_flows = chained("o")
    inner_sequence = "".join(
        f'<sequenceFlow id="is{n}" sourceRef="{a}" targetRef="{b}"/>'
        for n, (a, _, b) in enumerate(line.partition(" -> ") for line in inner_flows.splitlines())
    )
    harness = Harness.sqlite(tmp_path)
    harness.deploy(
        p=bpmn(
            "p",
            f'<startEvent id="s"/>{outer_nodes}<subProcess id="sub"><startEvent id="ss"/>{inner_nodes}'
            f'<endEvent id="se"/><sequenceFlow id="is_start" sourceRef="ss" targetRef="i0"/>{inner_sequence}'
            f'<sequenceFlow id="is_end" sourceRef="i{CHAIN - 1}" targetRef="se"/></subProcess>'
            '<userTask id="waits"/><endEvent id="e"/>',
            f"s -> o0\n{outer_flows}\no{CHAIN - 1} -> sub\nsub -> waits\nwaits -> e",
        )
    )
    instance_id = harness.start("p")
    while harness.status(instance_id) == "ACTIVE" and not harness.user_tasks(instance_id):
        harness.orchestrator.fire_due_timers()  # continuation rows: the chain runs in bounded steps
    with harness.db.read() as session:
        row = session.get(Instance, instance_id)
        assert row is not None
        workflow = state_parts.load_stored(
            session.connection(),
            instance_id,
            row.state,
            harness.orchestrator.specs_for(row.definition_id),
            harness.orchestrator.script_engine,
        )
    walked = list(workflow.get_tasks(state=OPEN))
    assert {t.id for t in engine.tasks_in(workflow, OPEN)} == {t.id for t in walked} and walked

    finders: dict[str, Callable[[], list[Any]]] = {
        "Spiff's walk (get_tasks)": lambda: list(workflow.get_tasks(state=OPEN)),
        "task dictionaries (tasks_in)": lambda: engine.tasks_in(workflow, OPEN),
    }
    figures = {}
    for name, find in finders.items():
        rounds, started = 0, time.perf_counter()
        while time.perf_counter() - started < 1.0:
            find()
            rounds += 1
        figures[name] = (time.perf_counter() - started) / rounds * 1e6
    total = len(workflow.tasks) + sum(len(sp.tasks) for sp in workflow.subprocesses.values())
    print(f"\nopen tasks of an instance of {total} tasks ({len(walked)} open):")
    for name, micros in figures.items():
        print(f"  {name:32} {micros:8.1f} µs")
    harness.close()
