"""Instance state stored before the orchestrator had a clock still loads, and its timers fire by the clock.

`fixtures/timer_state.json` was written by the orchestrator of commit 28756e0 (see record_timer_state.py):
an instance waiting on a duration, a date, a cycle boundary and an interrupting boundary timer.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from consultflow.orchestrator import engine
from consultflow.orchestrator.orm import Instance
from consultflow.orchestrator.timer_events import (
    ClockedCycleTimerEventDefinition,
    ClockedDurationTimerEventDefinition,
    ClockedScriptEngine,
    ClockedTimeDateEventDefinition,
)
from consultflow.platform.clock import ManualClock
from tests.support.orchestrator_harness import Harness

FIXTURES = Path(__file__).parent / "fixtures"
STORED: dict[str, Any] = json.loads((FIXTURES / "timer_state.json").read_text())
RECORDED_AT = datetime.fromisoformat(STORED["recorded_at"])
DUE = {element: datetime.fromisoformat(due) for element, due in STORED["timers_due"].items()}
DIAGRAM = (FIXTURES / "timers.bpmn").read_bytes()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(RECORDED_AT)


@pytest.fixture
def h(tmp_path: Path, clock: ManualClock) -> Iterator[Harness]:
    harness = Harness.sqlite(tmp_path, clock=clock)
    harness.deploy(timers=DIAGRAM)
    yield harness
    harness.close()


def test_stored_state_loads_with_the_clocked_timer_definitions(clock: ManualClock) -> None:
    specs = engine.parse_resources({"timers.bpmn": DIAGRAM})["timers"]
    workflow = engine.load_state(json.dumps(STORED["state"]), specs, ClockedScriptEngine(clock=clock))
    kinds = {
        engine.describe(task)[0]: type(task.task_spec.event_definition)
        for task in engine.snapshot(workflow).active
        if engine.describe(task)[2] in ("timer", "boundaryEvent")
    }
    assert kinds == {
        "wait_two_days": ClockedDurationTimerEventDefinition,
        "wait_for_date": ClockedTimeDateEventDefinition,
        "remind_hourly": ClockedCycleTimerEventDefinition,
        "work_too_late": ClockedDurationTimerEventDefinition,
    }
    assert {t.element_id: t.due_at for t in engine.snapshot(workflow).timers} == DUE
    state = engine.dump_state(workflow)
    assert "ClockedDurationTimerEventDefinition" not in state  # written under Spiff's names, as before


def adopt(h: Harness, state: dict[str, Any]) -> str:
    """Stores `state` as an instance of the deployed fixture process, as an older release left it."""
    definition = h.orchestrator.list_definitions("timers", latest_only=True)[0]
    instance_id = "00000000-0000-4000-8000-000000000001"
    with h.db.session() as session:
        session.add(
            Instance(
                instance_id=instance_id,
                definition_id=definition.definition_id,
                process_id="timers",
                business_key=None,
                status="ACTIVE",
                revision=1,
                state=json.dumps(state),
                variables="{}",
                created_at=RECORDED_AT,
                updated_at=RECORDED_AT,
            )
        )
        session.commit()
    h.orchestrator.step(instance_id, lambda step: None)  # writes the rows of what it waits for
    return instance_id


def fired(h: Harness, instance_id: str) -> list[str]:
    return h.history(instance_id, "timer.fired")


def test_stored_timers_fire_when_the_clock_reaches_them(h: Harness, clock: ManualClock) -> None:
    instance = adopt(h, STORED["state"])
    assert h.orchestrator.next_timer_due() == min(DUE.values())
    assert h.orchestrator.fire_due_timers() == 0
    job = h.job("crm.slow", instance)

    clock.advance_to(DUE["remind_hourly"] + timedelta(seconds=1))
    h.orchestrator.fire_due_timers()
    assert fired(h, instance) == ["timer.fired remind_hourly"]

    clock.advance_to(DUE["work_too_late"] + timedelta(seconds=1))
    h.orchestrator.fire_due_timers()
    assert "timer.fired work_too_late" in fired(h, instance)
    # R3: the cycles it missed are caught up
    assert h.completed_elements(instance).count("reminded") == 3
    assert h.jobs(instance, status="CANCELED")[0].job_key == job.job_key
    assert "timed_out" in h.completed_elements(instance)

    clock.advance_to(DUE["wait_two_days"] + timedelta(seconds=1))
    h.orchestrator.fire_due_timers()
    assert "waited" in h.completed_elements(instance)
    assert "dated" not in h.completed_elements(instance)

    clock.advance_to(DUE["wait_for_date"] + timedelta(seconds=1))
    h.orchestrator.fire_due_timers()
    assert "dated" in h.completed_elements(instance)
    h.submit("approve", instance)
    assert h.status(instance) == "COMPLETED"
