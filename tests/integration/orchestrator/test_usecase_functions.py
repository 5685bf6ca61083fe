"""The use cases' step functions, applied one at a time to an instance through `host.step`."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from functools import partial
from pathlib import Path

import pytest

from consultflow.orchestrator.records import JobRow, JobStatus
from consultflow.orchestrator.step import Step
from consultflow.orchestrator.usecases import instances, jobs, timers
from consultflow.platform.clock import ManualClock
from consultflow.platform.errors import FailedPrecondition
from tests.support.bpmn_builder import bpmn, service_task
from tests.support.orchestrator_harness import Harness


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def h(tmp_path: Path, clock: ManualClock) -> Iterator[Harness]:
    harness = Harness.sqlite(tmp_path, clock=clock)
    harness.deploy(
        p=bpmn(
            "p",
            f"""<startEvent id="s"/>{service_task("work", "crm.work")}
            <boundaryEvent id="late" attachedToRef="work"><timerEventDefinition><timeDuration>"PT1H"</timeDuration></timerEventDefinition></boundaryEvent>
            <endEvent id="done"/><endEvent id="too_late"/>""",
            "s -> work\nwork -> done\nlate -> too_late",
        )
    )
    yield harness
    harness.close()


def job_row(h: Harness, step_of: str, key: str) -> JobRow:
    def read(step: Step) -> JobRow:
        step.skip()
        row = step.job(key)
        assert row is not None
        return row

    return h.orchestrator.step(step_of, read)


def test_complete_applied_to_an_open_job(h: Harness) -> None:
    instance = h.start("p")
    key = h.job("crm.work", instance).job_key

    def open_job(step: Step) -> None:
        job = step.open_job(key)
        assert job is not None and job.status is JobStatus.ACTIVATABLE
        jobs.complete(step, job, {"result": 1})

    h.orchestrator.step(instance, open_job)
    assert h.status(instance) == "COMPLETED"
    assert h.variables(instance)["result"] == 1


def test_fail_with_retries_schedules_the_next_attempt_by_the_clock(h: Harness, clock: ManualClock) -> None:
    instance = h.start("p")
    key = h.job("crm.work", instance).job_key
    job = job_row(h, instance, key)
    h.orchestrator.step(instance, partial(jobs.fail, job=job, retries=2, backoff_ms=0, message="busy"))
    retried = job_row(h, instance, key)
    assert (retried.attempt, retried.retries) == (2, 1)
    assert retried.deadline == clock.now() + timedelta(seconds=1) + h.orchestrator.job_deadline


def test_redeliver_skips_a_job_that_is_not_overdue_yet(h: Harness) -> None:
    instance = h.start("p")
    job = job_row(h, instance, h.job("crm.work", instance).job_key)
    h.orchestrator.step(instance, partial(jobs.redeliver, job=job))
    assert job_row(h, instance, job.job_key).deliveries == 1


def test_wake_fires_what_the_clock_says_is_due(h: Harness, clock: ManualClock) -> None:
    instance = h.start("p")
    h.orchestrator.step(instance, timers.wake)
    assert "too_late" not in h.completed_elements(instance)
    clock.advance(timedelta(hours=1, seconds=1))
    h.orchestrator.step(instance, timers.wake)
    assert "too_late" in h.completed_elements(instance)
    assert h.jobs(instance, status="CANCELED")


def test_cancel_refuses_an_instance_that_is_not_active(h: Harness) -> None:
    instance = h.start("p")
    h.orchestrator.step(instance, partial(instances.cancel, reason="client withdrew"))
    assert h.status(instance) == "CANCELED"
    with pytest.raises(FailedPrecondition, match="canceled, not active"):
        h.orchestrator.step(instance, partial(instances.cancel, reason="again"))
