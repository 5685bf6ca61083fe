"""A cycle timer's finished rounds leave the running state (cycle_rounds.py): the state stays the size of
what is still open however often the timer fires, while the history, the jobs and the data a person sees
keep what every round did; a round still open, or failed, stays and runs on after a restart."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import func, select

from consultflow.orchestrator.orm import Instance, InstancePart
from tests.support.bpmn_builder import bpmn, service_task
from tests.support.orchestrator_harness import Harness

CYCLE = '<timerEventDefinition><timeCycle>"R/PT1H"</timeCycle></timerEventDefinition>'


def reminding(round_body: str, round_flows: str) -> bytes:
    """`approve` waits for a person while a non-interrupting hourly timer starts a round at `reminder`."""
    return bpmn(
        "p",
        '<startEvent id="s"/><userTask id="approve"/><endEvent id="e"/>'
        f'<boundaryEvent id="reminder" attachedToRef="approve" cancelActivity="false">{CYCLE}</boundaryEvent>'
        + round_body,
        "s -> approve\napprove -> e\n" + round_flows,
    )


ROUND_WITH_A_JOB_AND_A_SUBPROCESS = reminding(
    service_task("remind", "crm.remind") + '<subProcess id="follow"><startEvent id="fs"/><endEvent id="fe"/>'
    '<sequenceFlow id="ff" sourceRef="fs" targetRef="fe"/></subProcess><endEvent id="reminded"/>',
    "reminder -> remind\nremind -> follow\nfollow -> reminded",
)
ROUND_THAT_FAILS = reminding(
    '<scriptTask id="boom"><script>x = 1 / 0</script></scriptTask><endEvent id="boomed"/>',
    "reminder -> boom\nboom -> boomed",
)


@pytest.fixture
def h(database_url: str) -> Iterator[Harness]:
    harness = Harness(database_url)
    yield harness
    harness.close()


def stored_tasks(h: Harness, instance_id: str, spec: str) -> list[dict[str, Any]]:
    """The tasks of element `spec` in the instance's stored running state."""
    with h.db.read() as session:
        row = session.get(Instance, instance_id)
        assert row is not None
        state = json.loads(row.state)
    return [task for task in state["tasks"].values() if task["task_spec"] == spec]


def stored_parts(h: Harness, instance_id: str) -> int:
    with h.db.read() as session:
        return int(session.scalar(select(func.count()).where(InstancePart.instance_id == instance_id)) or 0)


def test_finished_rounds_leave_the_state_and_their_history_stays(h: Harness, database_url: str) -> None:
    h.deploy(p=ROUND_WITH_A_JOB_AND_A_SUBPROCESS)
    instance_id = h.start("p")
    for number in range(5):
        h.fast_forward(instance_id, "reminder")
        h.complete("crm.remind", instance_id, round=number)

    assert len(stored_tasks(h, instance_id, "remind")) == 1, "only the last round (the data shown is its)"
    assert stored_parts(h, instance_id) == 1, "a dropped round's subprocess leaves its stored part too"
    assert h.completed_elements(instance_id).count("remind") == 5
    assert h.variables(instance_id)["round"] == 4

    h.fast_forward(instance_id, "reminder")  # a sixth round, whose job is still open, stays
    assert len(stored_tasks(h, instance_id, "remind")) == 2
    other = Harness(database_url)  # a restarted orchestrator: the state is loaded as stored
    try:
        other.complete("crm.remind", instance_id, round=5)
        assert other.variables(instance_id)["round"] == 5
        other.submit("approve", instance_id)
        assert other.status(instance_id) == "COMPLETED"
        assert other.completed_elements(instance_id).count("reminded") == 6
    finally:
        other.close()


def test_a_failed_round_stays_where_its_incident_points(h: Harness) -> None:
    h.deploy(p=ROUND_THAT_FAILS)
    instance_id = h.start("p")
    for _ in range(3):
        h.fast_forward(instance_id, "reminder")
    failed = stored_tasks(h, instance_id, "boom")
    assert [task["state"] for task in failed] == [failed[0]["state"]] * 3 and len(failed) == 3
    incidents = h.view(instance_id).incidents
    assert len(incidents) == 3 and {i.element_id for i in incidents} == {"boom"}
