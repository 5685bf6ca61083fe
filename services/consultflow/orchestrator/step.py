"""One durable step of one instance: the transaction that keeps workflow state and its rows in agreement.

A step loads the instance row (locked), applies a change to the live workflow, lets the engine run, and
then writes — in the same transaction — the new state (guarded by the optimistic revision), the jobs,
user tasks, timers, subscriptions and incidents the instance now has, its history, and the outbox rows of
the jobs and status events it caused.

What the rows hold for an instance is also summarised in the instance row (`Waits`), so a step writes only
what changed without reading those tables first: the hot path is one SELECT, one UPDATE and the inserts.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

from SpiffWorkflow.bpmn.specs.event_definitions.message import MessageEventDefinition
from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
from SpiffWorkflow.task import Task
from SpiffWorkflow.util.task import TaskState
from sqlalchemy import Connection, Table, bindparam, delete, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite

from consultflow.orchestrator import engine
from consultflow.orchestrator.forms import due_date
from consultflow.orchestrator.models import (
    HistoryEvent,
    Incident,
    Instance,
    Job,
    Message,
    Subscription,
    Timer,
    UserTask,
)
from consultflow.platform import jsonutil
from consultflow.platform.db import UnitOfWork
from consultflow.platform.errors import Conflict

if TYPE_CHECKING:
    from consultflow.orchestrator.runtime import Orchestrator

log = logging.getLogger(__name__)

THROWN_MESSAGE_TTL = timedelta(days=1)
"""How long a message one instance throws waits for a receiver (e.g. the risk process of an engagement)."""
MAX_BUFFERED_DELIVERIES_PER_STEP = 50

INSTANCES: Table = Instance.__table__  # type: ignore[assignment]
JOBS: Table = Job.__table__  # type: ignore[assignment]
USER_TASKS: Table = UserTask.__table__  # type: ignore[assignment]
TIMERS: Table = Timer.__table__  # type: ignore[assignment]
SUBSCRIPTIONS: Table = Subscription.__table__  # type: ignore[assignment]
INCIDENTS: Table = Incident.__table__  # type: ignore[assignment]
HISTORY: Table = HistoryEvent.__table__  # type: ignore[assignment]
MESSAGES: Table = Message.__table__  # type: ignore[assignment]

# The statements every step runs, built once: SQLAlchemy then reuses their cache keys and compiled forms,
# which costs a fraction of building a statement per call on this hot path.
LOAD_INSTANCE = (
    select(
        INSTANCES.c.instance_id,
        INSTANCES.c.definition_id,
        INSTANCES.c.process_id,
        INSTANCES.c.business_key,
        INSTANCES.c.status,
        INSTANCES.c.revision,
        INSTANCES.c.history_seq,
        INSTANCES.c.state,
        INSTANCES.c.waits,
    )
    .where(INSTANCES.c.instance_id == bindparam("p_instance_id"))
    .with_for_update()
)
SAVE_INSTANCE = (
    update(INSTANCES)
    .where(
        INSTANCES.c.instance_id == bindparam("p_instance_id"), INSTANCES.c.revision == bindparam("p_revision")
    )
    .values(
        revision=bindparam("p_new_revision"),
        state=bindparam("p_state"),
        variables=bindparam("p_variables"),
        status=bindparam("p_status"),
        waiting_at=bindparam("p_waiting_at"),
        waits=bindparam("p_waits"),
        open_incidents=bindparam("p_open_incidents"),
        history_seq=bindparam("p_history_seq"),
        updated_at=bindparam("p_updated_at"),
        ended_at=bindparam("p_ended_at"),
    )
)
INSERT_HISTORY = insert(HISTORY)
INSERT_TIMERS = insert(TIMERS)
DELETE_TIMERS = delete(TIMERS).where(TIMERS.c.instance_id == bindparam("p_instance_id"))
INSERT_SUBSCRIPTIONS = insert(SUBSCRIPTIONS)
DELETE_SUBSCRIPTIONS = delete(SUBSCRIPTIONS).where(SUBSCRIPTIONS.c.instance_id == bindparam("p_instance_id"))
CLOSE_JOB = (
    update(JOBS)
    .where(JOBS.c.job_key == bindparam("p_job_key"))
    .values(status=bindparam("p_status"), updated_at=bindparam("p_now"))
)
BUFFERED_MESSAGE = (
    select(MESSAGES.c.message_key, MESSAGES.c.variables)
    .where(
        MESSAGES.c.status == "PENDING",
        MESSAGES.c.name == bindparam("p_name"),
        MESSAGES.c.correlation_key == bindparam("p_key"),
        MESSAGES.c.expires_at > bindparam("p_now"),
    )
    .order_by(MESSAGES.c.created_at)
    .limit(1)
)


@dataclass
class Waits:
    """What the database holds open for an instance; kept in its row so a step can diff without reading."""

    jobs: set[str] = field(default_factory=set)
    user_tasks: set[str] = field(default_factory=set)
    timers: dict[str, str] = field(default_factory=dict)  # task id → due (ISO)
    subscriptions: set[tuple[str, str, str]] = field(default_factory=set)  # (task id, message, key)
    incidents: dict[str, tuple[str, str]] = field(default_factory=dict)  # incident id → (task id, job key)

    @classmethod
    def loads(cls, text: str) -> Waits:
        data = json.loads(text or "{}")
        return cls(
            jobs=set(data.get("jobs", [])),
            user_tasks=set(data.get("user_tasks", [])),
            timers=dict(data.get("timers", {})),
            subscriptions={(s[0], s[1], s[2]) for s in data.get("subscriptions", [])},
            incidents={k: (v[0], v[1]) for k, v in data.get("incidents", {}).items()},
        )

    def dumps(self) -> str:
        return json.dumps(
            {
                "jobs": sorted(self.jobs),
                "user_tasks": sorted(self.user_tasks),
                "timers": self.timers,
                "subscriptions": sorted(self.subscriptions),
                "incidents": self.incidents,
            },
            separators=(",", ":"),
        )

    def incident_for(self, task_id: str = "", job_key: str = "") -> str | None:
        for incident_id, (incident_task, incident_job) in self.incidents.items():
            if (job_key and incident_job == job_key) or (not job_key and incident_task == task_id):
                return incident_id
        return None


@dataclass
class InstanceRecord:
    """The instance row as a step sees it."""

    instance_id: str
    definition_id: str
    process_id: str
    business_key: str
    status: str
    revision: int
    history_seq: int
    state: str
    waits: Waits

    @classmethod
    def load(cls, conn: Connection, instance_id: str) -> InstanceRecord | None:
        row = conn.execute(LOAD_INSTANCE, {"p_instance_id": instance_id}).first()
        if row is None:
            return None
        return cls(
            instance_id=row.instance_id,
            definition_id=row.definition_id,
            process_id=row.process_id,
            business_key=row.business_key or "",
            status=row.status,
            revision=row.revision,
            history_seq=row.history_seq,
            state=row.state,
            waits=Waits.loads(row.waits),
        )


@dataclass
class Effects:
    """What a committed step should wake: watchers, the timer scheduler, the message dispatcher."""

    instances: set[str] = field(default_factory=set)
    timers_changed: bool = False
    messages_pending: bool = False


def job_key(instance_id: str, task_id: str) -> str:
    """A job's key names its instance, so a reply is routed without a lookup."""
    return f"{instance_id}.{task_id}"


def instance_of(key: str) -> str:
    return key.split(".", 1)[0]


_INSERT_NEW: dict[tuple[str, str], Any] = {}


def insert_new(conn: Connection, table: Table, values: Mapping[str, Any]) -> bool:
    """INSERT unless the primary key exists (ON CONFLICT DO NOTHING); True when a row was written."""
    dialect = conn.dialect.name
    statement = _INSERT_NEW.get((dialect, table.name))
    if statement is None:  # built once per table, so SQLAlchemy's compiled cache applies
        if dialect == "postgresql":
            statement = postgresql.insert(table).on_conflict_do_nothing()
        elif dialect == "sqlite":
            statement = sqlite.insert(table).on_conflict_do_nothing()
        else:
            statement = insert(table)
        _INSERT_NEW[(dialect, table.name)] = statement
    return bool(rowcount(conn.execute(statement, dict(values))))


def rowcount(result: Any) -> int:
    """Rows a statement touched (CursorResult.rowcount, which the Result type does not declare)."""
    return int(result.rowcount)


def json_safe(data: Mapping[str, Any]) -> dict[str, Any]:
    """Task data as plain JSON values."""
    safe: dict[str, Any] = json.loads(jsonutil.dumps({k: v for k, v in data.items() if not callable(v)}))
    return safe


class Step:
    """One change to one instance inside one transaction (see the module docstring)."""

    def __init__(
        self, orchestrator: Orchestrator, uow: UnitOfWork, record: InstanceRecord, workflow: BpmnWorkflow
    ) -> None:
        self.o = orchestrator
        self.uow = uow
        self.session = uow.session
        # Core statements go straight to the connection: the ORM's execution layer costs more than the
        # statements themselves on this hot path.
        self.conn = uow.session.connection()
        self.record = record
        self.waits = record.waits
        self.wf = workflow
        self.now = orchestrator.clock.now()
        self.status = record.status
        self.effects = Effects(instances={record.instance_id})
        self.new_revision = record.revision
        self._history: list[tuple[str, str, str, str]] = []
        self._errors: dict[str, str] = {}
        self._old_subscriptions = set(record.waits.subscriptions)
        self.skipped = False

    def skip(self) -> None:
        """Nothing to change (a repeated reply, a claim another step won): write nothing at all."""
        self.skipped = True

    @property
    def instance_id(self) -> str:
        return self.record.instance_id

    # -------------------------------------------------------------------------------------- engine

    def advance(self) -> None:
        """Runs the engine until it waits; timers are refreshed first so due ones fire in this step."""
        for _ in range(5):
            try:
                self.wf.refresh_timers()
                self.wf.do_engine_steps(did_complete_task=self._completed)
                break
            except Exception as exc:  # a script, condition or decision failed: its task is now in ERROR
                task = getattr(exc, "task", None)
                task_id = str(task.id) if task is not None else ""
                if task_id in self._errors or not task_id:
                    self._errors[task_id or "engine"] = engine.error_text(exc)
                    log.warning("instance %s: %s", self.instance_id, engine.error_text(exc))
                    break
                self._errors[task_id] = engine.error_text(exc)
        self._route_thrown_events()

    def record_completed(self, task: Task) -> None:
        """History entry for a task a worker or a person completed (the engine's own are recorded as run)."""
        self._completed(task)

    def _completed(self, task: Task) -> None:
        spec = task.task_spec
        if task.state != TaskState.COMPLETED or not getattr(spec, "bpmn_id", None):
            return
        element_id, name, kind = engine.describe(task)
        if not kind.endswith(("Gateway", "Split", "Join")):
            self.history("element.completed", element_id, name)

    def history(self, kind: str, element_id: str = "", name: str = "", detail: str = "") -> None:
        self._history.append((kind, element_id, name, detail))

    def _route_thrown_events(self) -> None:
        """Messages the instance throws that nothing inside it catches go to the message table, durably."""
        for event in self.wf.get_events():
            definition = event.event_definition
            if not isinstance(definition, MessageEventDefinition):
                self.history("event.thrown", detail=f"{type(definition).__name__} {definition.name}")
                continue
            payload = event.payload if isinstance(event.payload, dict) else {}
            key = _thrown_correlation_key(event.correlations, definition, payload)
            self.conn.execute(
                insert(MESSAGES).values(
                    message_key=str(uuid.uuid4()),
                    message_id=None,
                    name=definition.name,
                    correlation_key=key,
                    variables=jsonutil.dumps(payload),
                    status="PENDING",
                    instance_id="",
                    created_at=self.now,
                    expires_at=self.now + THROWN_MESSAGE_TTL,
                )
            )
            self.history("message.thrown", detail=f"{definition.name} [{key}]")
            self.effects.messages_pending = True

    def deliver(self, subscription_id: str, name: str, key: str, variables: Mapping[str, Any]) -> bool:
        """Delivers a message to what a subscription names: a waiting task or an event subprocess trigger."""
        if subscription_id.startswith(engine.TRIGGER_PREFIX):
            return engine.deliver_trigger(self.wf, subscription_id, key, variables)
        task = engine.find_task(self.wf, subscription_id)
        if task is None or task.state != TaskState.WAITING:
            return False
        engine.deliver_message(task, name, key, variables)
        return True

    # ------------------------------------------------------------------------------ rows a step reads

    def job(self, key: str) -> Any:
        """The job row (or None)."""
        return self.conn.execute(select(JOBS).where(JOBS.c.job_key == key)).first()

    def open_job(self, key: str) -> SimpleNamespace | None:
        """An open job as the workflow describes it: what completing or failing it needs, without a read."""
        task = engine.find_task(self.wf, key.split(".", 1)[1]) if "." in key else None
        if task is None or not isinstance(task.task_spec, engine.JobServiceTask):
            return None
        element_id, name, _ = engine.describe(task)
        incident = self.waits.incident_for(job_key=key)
        return SimpleNamespace(
            job_key=key,
            task_id=str(task.id),
            status="INCIDENT" if incident else "ACTIVATABLE",
            element_id=element_id,
            element_name=name,
            operation=task.task_spec.operation_name,
        )

    def update_job(self, key: str, **values: Any) -> None:
        self.conn.execute(
            update(JOBS).where(JOBS.c.job_key == key).values(**{"updated_at": self.now, **values})
        )

    def close_job(self, key: str, status: str) -> None:
        """A job that no longer waits for a worker (completed, error thrown, canceled)."""
        self.conn.execute(CLOSE_JOB, {"p_job_key": key, "p_status": status, "p_now": self.now})
        self.waits.jobs.discard(key)
        self.resolve_incidents(job_key=key)

    # ------------------------------------------------------------------------------------ incidents

    def add_incident(self, task: Task | None, kind: str, message: str, job: str = "") -> str:
        element_id, name = ("", "")
        if task is not None:
            element_id, name, _ = engine.describe(task)
        incident_id = str(uuid.uuid4())
        task_id = str(task.id) if task is not None else ""
        self.conn.execute(
            insert(INCIDENTS).values(
                incident_id=incident_id,
                instance_id=self.instance_id,
                process_id=self.record.process_id,
                task_id=task_id,
                element_id=element_id,
                kind=kind,
                message=message[:4000],
                job_key=job,
                created_at=self.now,
                resolved_at=None,
            )
        )
        self.waits.incidents[incident_id] = (task_id, job)
        self.history("incident.created", element_id, name, f"{kind}: {message[:500]}")
        self.uow.emit(
            "incident.created",
            incident_id,
            {"kind": kind, "message": message[:4000], "element_id": element_id, "job_key": job},
            self.o.correlation(self.record),
        )
        return incident_id

    def resolve_incidents(self, job_key: str = "", task_id: str = "", incident_id: str = "") -> None:
        for key in [incident_id] if incident_id else list(self.waits.incidents):
            if key not in self.waits.incidents:
                continue
            incident_task, incident_job = self.waits.incidents[key]
            if incident_id or (job_key and incident_job == job_key) or (task_id and incident_task == task_id):
                self.conn.execute(
                    update(INCIDENTS).where(INCIDENTS.c.incident_id == key).values(resolved_at=self.now)
                )
                del self.waits.incidents[key]
                self.history("incident.resolved", detail=key)
                self.uow.emit(
                    "incident.resolved",
                    key,
                    {"instance_id": self.instance_id},
                    self.o.correlation(self.record),
                )

    # ------------------------------------------------------------------------------------ user tasks

    def close_user_task(self, user_task_id: str, status: str, completed_by: str = "") -> None:
        self.conn.execute(
            update(USER_TASKS)
            .where(USER_TASKS.c.user_task_id == user_task_id)
            .values(status=status, completed_at=self.now, completed_by=completed_by)
        )
        self.waits.user_tasks.discard(user_task_id)

    # ---------------------------------------------------------------- sync rows with what it waits for

    def finish(self) -> None:
        """Delivers what was buffered for new subscriptions, then writes what the instance now waits for.

        A snapshot walks every task, so one is taken again only after the workflow may have changed.
        """
        snap = engine.snapshot(self.wf)
        for _ in range(MAX_BUFFERED_DELIVERIES_PER_STEP):
            delivered, tried = self._deliver_buffered(snap)
            if delivered:
                self.advance()
            if tried:  # even a refused delivery may have changed it (an event subprocess begun)
                snap = engine.snapshot(self.wf)
            if not delivered:
                break
        self._sync_jobs(snap)
        self._sync_user_tasks(snap)
        self._sync_timers(snap)
        self._sync_subscriptions(snap)
        self._sync_incidents(snap)
        self._save(snap)

    def _deliver_buffered(self, snap: engine.Snapshot) -> tuple[bool, bool]:
        """Delivers a buffered message to a subscription that appeared in this step.

        Returns (delivered, tried): whether one was delivered, and whether a delivery was attempted at all.
        """
        tried = False
        for waiting in snap.messages:
            if (waiting.task_id, waiting.message_name, waiting.correlation_key) in self._old_subscriptions:
                continue  # it was waiting before: a buffered match would have been delivered then
            message = self.conn.execute(
                BUFFERED_MESSAGE,
                {"p_name": waiting.message_name, "p_key": waiting.correlation_key, "p_now": self.now},
            ).first()
            if message is None:
                continue
            tried = True
            if not self.deliver(
                waiting.task_id, waiting.message_name, waiting.correlation_key, json.loads(message.variables)
            ):
                continue
            self.conn.execute(
                update(MESSAGES)
                .where(MESSAGES.c.message_key == message.message_key)
                .values(status="CORRELATED", instance_id=self.instance_id)
            )
            self.history(
                "message.correlated",
                waiting.element_id,
                waiting.message_name,
                f"buffered [{waiting.correlation_key}]",
            )
            return True, True
        return False, tried

    def _sync_jobs(self, snap: engine.Snapshot) -> None:
        waiting = {
            job_key(self.instance_id, task_id): open_task for task_id, open_task in snap.service_tasks.items()
        }
        for key, open_task in waiting.items():
            if key not in self.waits.jobs and str(open_task.task.id) not in self._errors:
                self._create_job(key, open_task)
        for key in sorted(self.waits.jobs - set(waiting)):
            self.close_job(key, "CANCELED")
            self.history("job.canceled", detail=key)

    def _create_job(self, key: str, open_task: engine.OpenServiceTask) -> None:
        task, spec = open_task.task, open_task.spec
        task_id = str(task.id)
        if self.waits.incident_for(task_id=task_id) is not None:
            return  # waits for its incident (e.g. bad parameters) to be resolved
        try:
            parameters = engine.job_parameters(task)
        except Exception as exc:
            self.add_incident(
                task, "JOB_PARAMETERS", f"parameters of {spec.operation_name}: {engine.error_text(exc)}"
            )
            return
        element_id, name, _ = engine.describe(task)
        retries, backoff = spec.retry_policy
        values = {
            "job_key": key,
            "instance_id": self.instance_id,
            "task_id": task_id,
            "element_id": element_id,
            "element_name": name,
            "operation": spec.operation_name,
            "status": "ACTIVATABLE",
            "attempt": 1,
            "retries": retries,
            "backoff_base": backoff,
            "deliveries": 1,
            "deadline": self.now + self.o.job_deadline,
            "error_message": "",
            "created_at": self.now,
            "updated_at": self.now,
        }
        if not insert_new(self.conn, JOBS, values):
            # The task runs again after a reset (an incident was resolved): its job starts a new attempt.
            previous = self.job(key)
            values.update(attempt=previous.attempt + 1, created_at=previous.created_at)
            self.update_job(key, **{k: v for k, v in values.items() if k not in ("job_key", "updated_at")})
        self.waits.jobs.add(key)
        self.o.publish_job(self.uow, SimpleNamespace(**values), parameters, task.data, self.record)
        self.history("job.created", element_id, name, spec.operation_name)

    def _sync_user_tasks(self, snap: engine.Snapshot) -> None:
        for task_id, task in snap.user_tasks.items():
            if task_id in self.waits.user_tasks:
                continue
            spec: engine.HumanTask = task.task_spec
            element_id, name, _ = engine.describe(task)
            values = {
                "user_task_id": task_id,
                "instance_id": self.instance_id,
                "process_id": engine.task_process_id(task),
                "business_key": self.record.business_key,
                "element_id": element_id,
                "name": name,
                "documentation": spec.documentation or "",
                "candidate_groups": "," + ",".join(spec.candidate_groups) + ","
                if spec.candidate_groups
                else "",
                "assignee": spec.assignee or "",
                "due_at": due_date(spec.due, task, self.o.script_engine, self.now),
                "form_fields": jsonutil.dumps([_field_json(f) for f in spec.form_fields]),
                "status": "OPEN",
                "created_at": self.now,
                "completed_at": None,
                "completed_by": "",
            }
            if not insert_new(self.conn, USER_TASKS, values):
                self.conn.execute(
                    update(USER_TASKS)
                    .where(USER_TASKS.c.user_task_id == task_id)
                    .values(status="OPEN", completed_at=None)
                )
            self.waits.user_tasks.add(task_id)
            self.history("usertask.created", element_id, name, ",".join(spec.candidate_groups))
            self.uow.emit(
                "usertask.created",
                task_id,
                {"name": name, "element_id": element_id, "candidate_groups": list(spec.candidate_groups)},
                self.o.correlation(self.record),
            )
        for task_id in sorted(self.waits.user_tasks - set(snap.user_tasks)):
            self.close_user_task(task_id, "CANCELED")
            self.history("usertask.canceled", detail=task_id)

    def _sync_timers(self, snap: engine.Snapshot) -> None:
        current = {t.task_id: t.due_at.isoformat() for t in snap.timers}
        if current == self.waits.timers:
            return
        self.conn.execute(DELETE_TIMERS, {"p_instance_id": self.instance_id})
        if snap.timers:
            self.conn.execute(
                INSERT_TIMERS,
                [
                    {
                        "instance_id": self.instance_id,
                        "task_id": t.task_id,
                        "element_id": t.element_id,
                        "due_at": t.due_at,
                    }
                    for t in {t.task_id: t for t in snap.timers}.values()
                ],
            )
        self.waits.timers = current
        self.effects.timers_changed = True

    def _sync_subscriptions(self, snap: engine.Snapshot) -> None:
        current = {(m.task_id, m.message_name, m.correlation_key) for m in snap.messages}
        if current == self.waits.subscriptions:
            return
        self.conn.execute(DELETE_SUBSCRIPTIONS, {"p_instance_id": self.instance_id})
        rows = {}
        for waiting in snap.messages:
            rows[waiting.task_id] = {
                "instance_id": self.instance_id,
                "task_id": waiting.task_id,
                "element_id": waiting.element_id,
                "message_name": waiting.message_name,
                "correlation_key": waiting.correlation_key,
                "created_at": self.now,
            }
        if rows:
            self.conn.execute(INSERT_SUBSCRIPTIONS, list(rows.values()))
        self.waits.subscriptions = current

    def _sync_incidents(self, snap: engine.Snapshot) -> None:
        for task_id, task in snap.errors.items():
            if self.waits.incident_for(task_id=task_id) is None:
                message = self._errors.get(task_id, "the task failed")
                kind = "SCRIPT_ERROR" if task_id in self._errors else "TASK_ERROR"
                self.add_incident(task, kind, message)
        if "engine" in self._errors and self.waits.incident_for(task_id="") is None:
            self.add_incident(None, "ENGINE_ERROR", self._errors["engine"])

    def _save(self, snap: engine.Snapshot) -> None:
        if self.status == "ACTIVE" and self.wf.is_completed():
            self.status = "COMPLETED"
            self.history("instance.completed")
            self.uow.emit(
                "instance.completed", self.instance_id, self.summary(), self.o.correlation(self.record)
            )
        seq = self.record.history_seq
        if self._history:
            rows = []
            for kind, element_id, name, detail in self._history:
                seq += 1
                rows.append(
                    {
                        "instance_id": self.instance_id,
                        "sequence": seq,
                        "time": self.now,
                        "type": kind,
                        "element_id": element_id,
                        "element_name": name,
                        "detail": detail[:2000],
                    }
                )
            self.conn.execute(INSERT_HISTORY, rows)
        waiting = sorted({engine.describe(t)[1] for t in snap.active})
        result = self.conn.execute(
            SAVE_INSTANCE,
            {
                "p_instance_id": self.instance_id,
                "p_revision": self.record.revision,
                "p_new_revision": self.record.revision + 1,
                "p_state": engine.dump_state(self.wf),
                "p_variables": jsonutil.dumps(
                    {k: v for k, v in engine.visible_data(self.wf).items() if not callable(v)}
                ),
                "p_status": self.status,
                "p_waiting_at": jsonutil.dumps(waiting),
                "p_waits": self.waits.dumps(),
                "p_open_incidents": len(self.waits.incidents),
                "p_history_seq": seq,
                "p_updated_at": self.now,
                "p_ended_at": self.now if self.status != "ACTIVE" else None,
            },
        )
        if rowcount(result) != 1:
            raise Conflict(f"instance {self.instance_id} changed concurrently")
        self.new_revision = self.record.revision + 1

    def summary(self) -> dict[str, Any]:
        return {
            "instance_id": self.instance_id,
            "process_id": self.record.process_id,
            "definition_id": self.record.definition_id,
            "business_key": self.record.business_key,
            "status": self.status,
        }


def _field_json(f: engine.FormField) -> dict[str, Any]:
    return {
        "id": f.id,
        "label": f.label,
        "type": f.type,
        "required": f.required,
        "values": [{"id": i, "name": n} for i, n in f.values],
        "default": f.default,
    }


def _thrown_correlation_key(
    correlations: Mapping[str, Any], definition: MessageEventDefinition, payload: Mapping[str, Any]
) -> str:
    for values in correlations.values():
        if isinstance(values, dict):
            for value in values.values():
                return str(value)
    variable = engine.correlation_variable(definition)
    if variable and variable in payload:
        return str(payload[variable])
    return ""
