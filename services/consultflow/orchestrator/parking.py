"""Parking: an instance whose steps keep failing is no longer touched by automatic work.

A step that fails with an engine error (not a refused request) is counted in a transaction of its own, so
the count survives the step's rollback and a restart. At `limits.step_failures_before_parking` failures in
a row — at once when a step would pass a size limit — the instance is parked: an incident (STEP_FAILED,
STATE_TOO_LARGE) names the failure and the count, and the timer, message and job-redelivery loops skip it
(`not_parked`), so a restarted orchestrator never resumes a poison instance into a lock. Requests on it are
refused until the incident is resolved (which un-parks it and tries again) or the instance is cancelled
(which works without the engine). A step that succeeds resets the count.

A start that fails (a timer's or a message's start event) leaves no instance to park: what would start it
steps back by START_RETRY_DELAY instead, unless the failure is the database's, for now.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, exists, insert, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import InstrumentedAttribute

from consultflow.orchestrator.orm import INCIDENTS, INSTANCES
from consultflow.orchestrator.records import PARKING_KINDS, IncidentKind, InstanceStatus
from consultflow.orchestrator.step import InstanceRecord, append_history
from consultflow.platform import metrics
from consultflow.platform.db import UnitOfWork, busy_error
from consultflow.platform.errors import DomainError, FailedPrecondition, Unavailable
from consultflow.platform.limits import Limits, env_name

log = logging.getLogger(__name__)

MAX_REASON = 1000
"""Characters of a failure's text kept in its incident and history (an error may quote a huge value)."""


class Parked(FailedPrecondition):
    """A request on a parked instance: its incident must be resolved, or the instance cancelled, first."""

    def __init__(self, instance_id: str, incident_id: str, detail: str = "") -> None:
        super().__init__(
            f"instance {instance_id} is parked{': ' + detail if detail else ''}; resolve incident "
            f"{incident_id} to try again, or cancel the instance"
        )
        self.instance_id = instance_id
        self.incident_id = incident_id


class LoadFailed(Exception):
    """An instance's workflow does not load (its stored state, or its process's stored definition): an
    engine failure whatever the cause, never the fault of the request that needed it."""


def not_parked(instance_id: ColumnElement[Any] | InstrumentedAttribute[Any]) -> ColumnElement[bool]:
    """SQL: the instance `instance_id` names has no open parking incident (what automatic work selects)."""
    return ~exists().where(
        INCIDENTS.c.instance_id == instance_id,
        INCIDENTS.c.kind.in_(PARKING_KINDS),
        INCIDENTS.c.resolved_at.is_(None),
    )


def counts_as_failure(error: BaseException) -> bool:
    """An engine error counts; a refused request (a domain error) and a busy or lost database do not."""
    return isinstance(error, Exception) and not isinstance(error, DomainError | OperationalError)


START_RETRY_DELAY = timedelta(minutes=1)
"""How long a timer or message start event whose start failed waits before it is tried again: no instance
exists to hold an incident, so it must not be tried on every round of its loop."""


def start_failed_for_good(event: str, error: Exception) -> bool:
    """Whether a start that failed steps back START_RETRY_DELAY (counted, by `event`: timer or message).
    Not on a busy or unreachable database, which the next round may not meet."""
    if isinstance(error, Unavailable) or busy_error(error) is not None:
        return False
    metrics.STARTS_FAILED.labels(event).inc()
    return True


@dataclass(frozen=True)
class Failure:
    """What counting a failed step found: failures in a row, and the incident that parks the instance."""

    failures: int
    incident_id: str  # "" while the instance is not parked
    newly_parked: bool


def record_failure(
    uow: UnitOfWork, instance_id: str, now: datetime, limits: Limits, kind: IncidentKind, reason: str
) -> Failure | None:
    """Counts a failed step of an active instance and parks it when due (the caller commits); None when
    the instance is gone or no longer active (nothing would run on it again)."""
    conn = uow.session.connection()
    record = InstanceRecord.load(conn, instance_id)
    if record is None or record.status != InstanceStatus.ACTIVE:
        return None
    reason = reason[:MAX_REASON]
    waits = record.waits
    waits.failures += 1
    history = [("step.failed", f"failure {waits.failures} in a row: {reason}")]
    limit = limits.step_failures_before_parking
    newly_parked = False
    if not waits.parked and (kind == IncidentKind.STATE_TOO_LARGE or waits.failures >= limit):
        if kind == IncidentKind.STATE_TOO_LARGE:
            message = f"{reason}; the step was not written"
        else:
            message = (
                f"its steps failed {waits.failures} times in a row (step_failures_before_parking = {limit}, "
                f"{env_name('step_failures_before_parking')}); the last: {reason}"
            )
        message += (
            "; parked: no timer, message or job redelivery touches it until this incident is resolved "
            "(which tries again) or the instance is cancelled"
        )
        incident_id = str(uuid.uuid4())
        conn.execute(
            insert(INCIDENTS).values(
                incident_id=incident_id,
                instance_id=instance_id,
                process_id=record.process_id,
                task_id="",
                element_id="",
                kind=kind,
                message=message,
                job_key="",
                created_at=now,
                resolved_at=None,
            )
        )
        waits.incidents[incident_id] = ("", "")
        waits.parked = incident_id
        newly_parked = True
        history += [("incident.created", f"{kind}: {message[:500]}"), ("instance.parked", incident_id)]
        uow.emit(
            "incident.created",
            incident_id,
            {"kind": str(kind), "message": message, "element_id": "", "job_key": ""},
            record.correlation,
        )
    seq = append_history(conn, instance_id, record.history_seq, now, [(e, "", "", d) for e, d in history])
    conn.execute(
        update(INSTANCES)
        .where(INSTANCES.c.instance_id == instance_id)
        .values(
            waits=waits.dumps(),
            open_incidents=len(waits.incidents),
            history_seq=seq,
            revision=INSTANCES.c.revision + 1,
            updated_at=now,
        )
    )
    return Failure(waits.failures, waits.parked, newly_parked)
