"""Typed views of what the orchestrator stores: the statuses its rows hold, a job as a step reads it, what an
instance waits for, and what a committed step should wake.

Statuses are StrEnums, so they are written to and compared with the database's plain strings as they are.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from consultflow.platform.timeutil import aware


@dataclass(frozen=True)
class ActiveElementView:
    """Where an instance is: one of its active tasks, as GetInstance shows it."""

    element_id: str
    name: str
    type: str
    state: str
    process_id: str


class InstanceStatus(StrEnum):
    ACTIVE = "ACTIVE"
    COMPLETED = "COMPLETED"
    CANCELED = "CANCELED"


class JobStatus(StrEnum):
    ACTIVATABLE = "ACTIVATABLE"  # waits for a worker's reply
    COMPLETED = "COMPLETED"
    ERROR_THROWN = "ERROR_THROWN"  # the worker threw a BPMN error a boundary event caught
    INCIDENT = "INCIDENT"  # waits for a person to resolve its incident
    CANCELED = "CANCELED"  # its task stopped waiting (a boundary event, a cancellation)

    @property
    def waits_for_reply(self) -> bool:
        """A reply is still accepted (an incident's job may still be completed by a late worker)."""
        return self in (JobStatus.ACTIVATABLE, JobStatus.INCIDENT)


class UserTaskStatus(StrEnum):
    OPEN = "OPEN"
    COMPLETED = "COMPLETED"
    CANCELED = "CANCELED"


class MigrationState(StrEnum):
    RUNNING = "RUNNING"  # items are pending; the runner (usecases/migration_batches.py) takes them
    COMPLETED = "COMPLETED"  # every item migrated, skipped or failed


class MigrationItemState(StrEnum):
    PENDING = "PENDING"
    MIGRATED = "MIGRATED"
    SKIPPED = "SKIPPED"  # the plan did not apply when the batch started (skip_refused), or it had ended
    FAILED = "FAILED"  # the plan applied at the start but not when its turn came


class MoveAction(StrEnum):
    """What a migration or a modification does to a waiting element."""

    CARRIED_OVER = "carried_over"
    RESTARTED = "restarted"
    CANCELED = "canceled"
    ACTIVATED = "activated"


class MessageStatus(StrEnum):
    PENDING = "PENDING"  # buffered until a receiver waits or it expires
    CORRELATED = "CORRELATED"
    EXPIRED = "EXPIRED"
    DROPPED = "DROPPED"


class PublishOutcome(StrEnum):
    """What publishing a message did."""

    CORRELATED = "CORRELATED"
    STARTED = "STARTED"
    BUFFERED = "BUFFERED"
    DUPLICATE = "DUPLICATE"
    DROPPED = "DROPPED"


class IncidentKind(StrEnum):
    JOB_NO_RETRIES = "JOB_NO_RETRIES"
    UNHANDLED_ERROR = "UNHANDLED_ERROR"  # a worker's BPMN error nothing catches
    JOB_PARAMETERS = "JOB_PARAMETERS"  # a service task's parameter expression failed
    SCRIPT_ERROR = "SCRIPT_ERROR"
    TASK_ERROR = "TASK_ERROR"
    ENGINE_ERROR = "ENGINE_ERROR"
    LIMIT_EXCEEDED = "LIMIT_EXCEEDED"  # a run-time limit (platform/limits.py) stopped a task; names it
    CORRELATION_ERROR = "CORRELATION_ERROR"  # a message's correlation expression failed
    ASSIGNMENT = "ASSIGNMENT"  # a user task's assignee or candidate-users expression failed or named no one
    STEP_FAILED = "STEP_FAILED"  # the instance's steps kept failing (an engine error): it is parked
    STATE_TOO_LARGE = "STATE_TOO_LARGE"  # a step would have stored more than a size limit allows: parked


PARKING_KINDS = (IncidentKind.STEP_FAILED, IncidentKind.STATE_TOO_LARGE)
"""Incidents that park their instance: while one is open, no timer, message or job redelivery touches it."""


@dataclass(frozen=True)
class OpenJob:
    """What answering a job needs; an open job is described from the instance's state, without a read."""

    job_key: str
    task_id: str
    status: JobStatus
    element_id: str
    element_name: str
    operation: str


@dataclass(frozen=True)
class JobRow(OpenJob):
    """A job as its row holds it."""

    instance_id: str
    attempt: int
    retries: int
    backoff_base: int
    deliveries: int
    deadline: datetime
    activated_at: datetime
    """When the current delivery began: extensions of its deadline count from here."""
    error_message: str
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_row(cls, row: Any) -> JobRow:
        """From a `jobs` row (SQLAlchemy Core); SQLite's naive datetimes are read as UTC."""
        return cls(
            job_key=row.job_key,
            task_id=row.task_id,
            status=JobStatus(row.status),
            element_id=row.element_id,
            element_name=row.element_name,
            operation=row.operation,
            instance_id=row.instance_id,
            attempt=row.attempt,
            retries=row.retries,
            backoff_base=row.backoff_base,
            deliveries=row.deliveries,
            deadline=_instant(row.deadline),
            activated_at=_instant(row.activated_at),
            error_message=row.error_message,
            created_at=_instant(row.created_at),
            updated_at=_instant(row.updated_at),
        )


def _instant(value: datetime) -> datetime:
    result = aware(value)
    assert result is not None
    return result


def definition_id(process_id: str, version: int) -> str:
    """A process version's id: `<process id>:<version>`."""
    return f"{process_id}:{version}"


def version_of(definition_id: str) -> int:
    """The version a definition id names."""
    return int(definition_id.rsplit(":", 1)[1])


def job_key(instance_id: str, task_id: str) -> str:
    """A job's key names its instance, so a reply is routed without a lookup."""
    return f"{instance_id}.{task_id}"


def instance_of(key: str) -> str:
    """The instance a job key names."""
    return key.split(".", 1)[0]


def task_of(key: str) -> str | None:
    """The task a job key names (None for a malformed key)."""
    return key.split(".", 1)[1] if "." in key else None


@dataclass
class Waits:
    """What the database holds open for an instance; kept in its row so a step can diff without reading."""

    jobs: set[str] = field(default_factory=set)
    user_tasks: set[str] = field(default_factory=set)
    timers: dict[str, str] = field(default_factory=dict)  # task id → due (ISO)
    subscriptions: set[tuple[str, str, str]] = field(default_factory=set)  # (task id, message, key)
    incidents: dict[str, tuple[str, str]] = field(default_factory=dict)  # incident id → (task id, job key)
    # Steps that failed in a row (an engine error, not a refused request), counted in a transaction of their
    # own; a step that succeeds resets it with the rest of this summary, so counting costs the hot path no
    # statement. `parked`: the open incident (STEP_FAILED, STATE_TOO_LARGE) that parks the instance.
    failures: int = 0
    parked: str = ""

    @classmethod
    def loads(cls, text: str) -> Waits:
        data = json.loads(text or "{}")
        return cls(
            jobs=set(data.get("jobs", [])),
            user_tasks=set(data.get("user_tasks", [])),
            timers=dict(data.get("timers", {})),
            subscriptions={(s[0], s[1], s[2]) for s in data.get("subscriptions", [])},
            incidents={k: (v[0], v[1]) for k, v in data.get("incidents", {}).items()},
            failures=int(data.get("failures", 0)),
            parked=str(data.get("parked", "")),
        )

    def dumps(self) -> str:
        data: dict[str, Any] = {
            "jobs": sorted(self.jobs),
            "user_tasks": sorted(self.user_tasks),
            "timers": self.timers,
            "subscriptions": sorted(self.subscriptions),
            "incidents": self.incidents,
        }
        if self.failures:
            data["failures"] = self.failures
        if self.parked:
            data["parked"] = self.parked
        return json.dumps(data, separators=(",", ":"))

    def incident_for(self, task_id: str = "", job_key: str = "") -> str | None:
        for incident_id, (incident_task, incident_job) in self.incidents.items():
            if (job_key and incident_job == job_key) or (not job_key and incident_task == task_id):
                return incident_id
        return None


@dataclass
class Effects:
    """What a committed step should wake: watchers, the timer scheduler, the message dispatcher."""

    instances: set[str] = field(default_factory=set)
    timers_changed: bool = False
    messages_pending: bool = False


def correlation(instance_id: str, process_id: str, business_key: str | None) -> dict[str, str]:
    """The correlation headers of an instance's status events (the engagement is its business key)."""
    keys = {"instance_id": instance_id, "process_id": process_id}
    if business_key:
        keys["business_key"] = business_key
        keys["engagement_id"] = business_key
    return keys
