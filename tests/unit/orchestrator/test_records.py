"""The typed records: statuses, job rows, what an instance waits for, and the id formats."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest

from consultflow.orchestrator.records import (
    JobRow,
    JobStatus,
    Waits,
    correlation,
    definition_id,
    instance_of,
    job_key,
    task_of,
    version_of,
)
from consultflow.orchestrator.usecases.jobs import MAX_BACKOFF_SECONDS, retry_backoff

NAIVE = datetime(2026, 1, 2, 3, 4, 5)  # as SQLite hands datetimes back


def test_a_job_row_reads_a_database_row_with_its_status_and_utc_instants() -> None:
    row = SimpleNamespace(
        job_key="i.t",
        task_id="t",
        status="INCIDENT",
        element_id="work",
        element_name="Work",
        operation="crm.do",
        instance_id="i",
        attempt=2,
        retries=1,
        backoff_base=3,
        deliveries=1,
        deadline=NAIVE,
        activated_at=NAIVE,
        error_message="boom",
        created_at=NAIVE,
        updated_at=NAIVE.replace(tzinfo=UTC),
    )
    job = JobRow.from_row(row)
    assert job.status is JobStatus.INCIDENT
    assert job.deadline == job.activated_at == NAIVE.replace(tzinfo=UTC)
    assert job.status == "INCIDENT"  # StrEnum: compares with the stored string


def test_statuses_that_still_accept_a_reply() -> None:
    assert {s for s in JobStatus if s.waits_for_reply} == {JobStatus.ACTIVATABLE, JobStatus.INCIDENT}
    with pytest.raises(ValueError):
        JobStatus("DONE")


def test_waits_survive_their_json_form() -> None:
    waits = Waits(
        jobs={"i.a"},
        user_tasks={"u"},
        timers={"t": "2026-01-01T00:00:00+00:00"},
        subscriptions={("t2", "m", "k")},
        incidents={"x": ("t3", ""), "y": ("", "i.a")},
    )
    assert Waits.loads(waits.dumps()) == waits
    assert waits.incident_for(job_key="i.a") == "y"
    assert waits.incident_for(task_id="t3") == "x"
    assert Waits.loads("") == Waits()


def test_id_formats() -> None:
    assert definition_id("risk", 3) == "risk:3"
    assert version_of("risk:management:12") == 12
    key = job_key("instance", "task")
    assert (instance_of(key), task_of(key)) == ("instance", "task")
    assert task_of("no-dot") is None


def test_correlation_names_the_engagement_when_there_is_a_business_key() -> None:
    assert correlation("i", "p", "E1") == {
        "instance_id": "i",
        "process_id": "p",
        "business_key": "E1",
        "engagement_id": "E1",
    }
    assert correlation("i", "p", None) == {"instance_id": "i", "process_id": "p"}


def test_retry_backoff_doubles_per_attempt_unless_the_worker_names_one() -> None:
    assert retry_backoff(250, 5, 3) == timedelta(milliseconds=250)
    assert [retry_backoff(0, 2, attempt) for attempt in (1, 2, 3)] == [
        timedelta(seconds=2),
        timedelta(seconds=4),
        timedelta(seconds=8),
    ]
    assert retry_backoff(0, 100, 10) == timedelta(seconds=MAX_BACKOFF_SECONDS)
