"""The orchestrator's use cases: deploy, run and observe instances durably.

Every change to an instance is one *step*: take the instance's lock, load its workflow (from a bounded
in-memory cache, else from its stored state), apply the change, let the engine run, then write in ONE
transaction the new state (guarded by an optimistic revision), the jobs, user tasks, timers, message
subscriptions and incidents it now has, its history, and the outbox rows for the jobs and status events
it caused. A crash at any point leaves either the old state with none of its effects or the new state with
all of them.
"""

from __future__ import annotations

import json
import logging
import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from google.protobuf.timestamp_pb2 import Timestamp
from SpiffWorkflow.bpmn.specs.event_definitions.message import MessageEventDefinition
from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
from SpiffWorkflow.task import Task
from SpiffWorkflow.util.task import TaskState
from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError

from consultflow.api.events.v1 import events_pb2
from consultflow.orchestrator import engine
from consultflow.orchestrator.forms import due_date, validate_form
from consultflow.orchestrator.models import (
    Definition,
    HistoryEvent,
    Incident,
    Instance,
    Job,
    Message,
    Resource,
    StartTimer,
    Subscription,
    Timer,
    UserTask,
)
from consultflow.platform import jsonutil, paging
from consultflow.platform.db import Database, UnitOfWork
from consultflow.platform.errors import (
    Conflict,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
)
from consultflow.platform.faults import crash_point
from consultflow.platform.messaging import job_subject
from consultflow.platform.scripting import ScriptEngine, scale_timer_expression
from consultflow.platform.timeutil import aware

log = logging.getLogger(__name__)

T = TypeVar("T")

THROWN_MESSAGE_TTL = timedelta(days=1)
"""How long a message one instance throws waits for a receiver (e.g. the risk process of an engagement)."""
MESSAGE_ID_RETENTION = timedelta(days=1)
"""How long a message id is remembered for de-duplication after it was correlated."""
MAX_STEP_RETRIES = 5
MAX_BUFFERED_DELIVERIES_PER_STEP = 50
MAX_BACKOFF_SECONDS = 300


def now_utc() -> datetime:
    return datetime.now(UTC)


# ---------------------------------------------------------------------------------------------- results


@dataclass(frozen=True)
class DeployResult:
    deployment_id: str
    definitions: list[Definition]
    unchanged: list[str]


@dataclass(frozen=True)
class CreateResult:
    instance_id: str
    definition_id: str
    created: bool


@dataclass(frozen=True)
class PublishResult:
    outcome: str  # CORRELATED, STARTED, BUFFERED, DUPLICATE, DROPPED
    instance_id: str = ""
    message_key: str = ""


@dataclass(frozen=True)
class ActiveElementView:
    element_id: str
    name: str
    type: str
    state: str
    process_id: str


@dataclass(frozen=True)
class InstanceView:
    instance: Instance
    active: list[ActiveElementView]
    jobs: list[Job]
    user_tasks: list[UserTask]
    incidents: list[Incident]
    history: list[HistoryEvent]


# ------------------------------------------------------------------------------------------------ cache


class _InstanceCache:
    """Live workflows by instance id, least recently used dropped first; keyed by revision."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._items: OrderedDict[str, tuple[int, BpmnWorkflow]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, instance_id: str, revision: int) -> BpmnWorkflow | None:
        with self._lock:
            item = self._items.get(instance_id)
            if item is None or item[0] != revision:
                return None
            self._items.move_to_end(instance_id)
            return item[1]

    def put(self, instance_id: str, revision: int, workflow: BpmnWorkflow) -> None:
        if self._size <= 0:
            return
        with self._lock:
            self._items[instance_id] = (revision, workflow)
            self._items.move_to_end(instance_id)
            while len(self._items) > self._size:
                self._items.popitem(last=False)

    def drop(self, instance_id: str) -> None:
        with self._lock:
            self._items.pop(instance_id, None)

    def __len__(self) -> int:
        return len(self._items)


# ------------------------------------------------------------------------------------------------- step


@dataclass
class _Effects:
    """What a committed step should wake: watchers, the timer scheduler, the message dispatcher."""

    instances: set[str] = field(default_factory=set)
    timers_changed: bool = False
    messages_pending: bool = False


class Step:
    """One change to one instance inside one transaction (see the module docstring)."""

    def __init__(
        self, orchestrator: Orchestrator, uow: UnitOfWork, row: Instance, workflow: BpmnWorkflow
    ) -> None:
        self.o = orchestrator
        self.uow = uow
        self.session = uow.session
        self.row = row
        self.wf = workflow
        self.now = now_utc()
        self._history: list[tuple[str, str, str, str]] = []
        self._errors: dict[str, str] = {}
        self.effects = _Effects(instances={row.instance_id})

    # -- engine

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
                    log.warning("instance %s: %s", self.row.instance_id, engine.error_text(exc))
                    break
                self._errors[task_id] = engine.error_text(exc)
        self._route_thrown_events()

    def record_completed(self, task: Task) -> None:
        """History entry for a task a worker or a person completed (the engine's own are recorded as run)."""
        self._completed(task)

    def _completed(self, task: Task) -> None:
        spec = task.task_spec
        if (
            task.state == TaskState.COMPLETED
            and getattr(spec, "bpmn_id", None)
            and not type(spec).__name__.endswith(("Split", "Join"))
        ):
            element_id, name, kind = engine.describe(task)
            if kind not in ("ExclusiveGateway", "ParallelGateway", "InclusiveGateway"):
                self.history("element.completed", element_id, name)

    def history(self, kind: str, element_id: str = "", name: str = "", detail: str = "") -> None:
        self._history.append((kind, element_id, name, detail))

    def _route_thrown_events(self) -> None:
        """Messages an instance throws that nothing inside it catches go to the message table, durably."""
        for event in self.wf.get_events():
            definition = event.event_definition
            if not isinstance(definition, MessageEventDefinition):
                self.history("event.thrown", detail=f"{type(definition).__name__} {definition.name}")
                continue
            payload = event.payload if isinstance(event.payload, dict) else {}
            key = _thrown_correlation_key(event.correlations, definition, payload)
            self.session.add(
                Message(
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

    # -- sync rows with what the workflow now waits for

    def finish(self) -> None:
        for _ in range(MAX_BUFFERED_DELIVERIES_PER_STEP):
            snap = engine.snapshot(self.wf)
            if not self._deliver_buffered(snap):
                break
            self.advance()
        snap = engine.snapshot(self.wf)
        self._sync_jobs(snap)
        self._sync_user_tasks(snap)
        self._sync_timers(snap)
        self._sync_subscriptions(snap)
        self._sync_incidents(snap)
        self._save(snap)

    def deliver(self, subscription_id: str, name: str, key: str, variables: Mapping[str, Any]) -> bool:
        """Delivers a message to what a subscription names: a waiting task or an event subprocess trigger."""
        if subscription_id.startswith(engine.TRIGGER_PREFIX):
            return engine.deliver_trigger(self.wf, subscription_id, key, variables)
        task = engine.find_task(self.wf, subscription_id)
        if task is None or task.state != TaskState.WAITING:
            return False
        engine.deliver_message(task, name, key, variables)
        return True

    def _deliver_buffered(self, snap: engine.Snapshot) -> bool:
        """Delivers a buffered message to a subscription that just appeared; True if one was delivered."""
        for waiting in snap.messages:
            message = self.session.scalars(
                select(Message)
                .where(
                    Message.status == "PENDING",
                    Message.name == waiting.message_name,
                    Message.correlation_key == waiting.correlation_key,
                    Message.expires_at > self.now,
                )
                .order_by(Message.created_at)
                .limit(1)
            ).first()
            if message is None:
                continue
            if not self.deliver(
                waiting.task_id, message.name, message.correlation_key, json.loads(message.variables)
            ):
                continue
            message.status = "CORRELATED"
            message.instance_id = self.row.instance_id
            self.history(
                "message.correlated",
                waiting.element_id,
                message.name,
                f"buffered [{message.correlation_key}]",
            )
            return True
        return False

    def _sync_jobs(self, snap: engine.Snapshot) -> None:
        open_jobs = {
            job.job_key: job
            for job in self.session.scalars(
                select(Job).where(
                    Job.instance_id == self.row.instance_id, Job.status.in_(("ACTIVATABLE", "INCIDENT"))
                )
            )
        }
        for task_id, open_task in snap.service_tasks.items():
            if task_id in open_jobs or task_id in self._errors:
                continue
            if self.session.get(Job, task_id) is not None:
                continue  # finished job whose task is STARTED again only if reset: handled by resolve
            self._create_job(open_task)
        for key, job in open_jobs.items():
            if key not in snap.service_tasks:
                job.status = "CANCELED"
                job.updated_at = self.now
                self.history("job.canceled", job.element_id, job.element_name, job.operation)
                self._resolve_incidents(job_key=key)

    def _create_job(self, open_task: engine.OpenServiceTask) -> None:
        task, spec = open_task.task, open_task.spec
        element_id, name, _ = engine.describe(task)
        if self._open_incident_exists(str(task.id)):
            return
        try:
            parameters = {k: v["value"] for k, v in spec.evaluate_params(task).items()}
        except Exception as exc:
            self._add_incident(
                task, "JOB_PARAMETERS", f"parameters of {spec.operation_name}: {engine.error_text(exc)}"
            )
            return
        retries, backoff = spec.retry_policy
        job = Job(
            job_key=str(task.id),
            instance_id=self.row.instance_id,
            task_id=str(task.id),
            element_id=element_id,
            element_name=name,
            operation=spec.operation_name,
            status="ACTIVATABLE",
            attempt=1,
            retries=retries,
            backoff_base=backoff,
            deliveries=1,
            deadline=self.now + self.o.job_deadline,
            error_message="",
            created_at=self.now,
            updated_at=self.now,
        )
        self.session.add(job)
        self.o.publish_job(self.uow, job, parameters, dict(task.data), self.row)
        self.history("job.created", element_id, name, spec.operation_name)

    def _sync_user_tasks(self, snap: engine.Snapshot) -> None:
        open_rows = {
            ut.user_task_id: ut
            for ut in self.session.scalars(
                select(UserTask).where(
                    UserTask.instance_id == self.row.instance_id, UserTask.status == "OPEN"
                )
            )
        }
        for task_id, task in snap.user_tasks.items():
            if task_id in open_rows or self.session.get(UserTask, task_id) is not None:
                continue
            spec: engine.HumanTask = task.task_spec
            element_id, name, _ = engine.describe(task)
            row = UserTask(
                user_task_id=task_id,
                instance_id=self.row.instance_id,
                process_id=engine.task_process_id(task),
                business_key=self.row.business_key or "",
                element_id=element_id,
                name=name,
                documentation=spec.documentation or "",
                candidate_groups="," + ",".join(spec.candidate_groups) + "," if spec.candidate_groups else "",
                assignee=spec.assignee or "",
                due_at=due_date(spec.due, task, self.o.script_engine, self.now),
                form_fields=jsonutil.dumps([_field_json(f) for f in spec.form_fields]),
                status="OPEN",
                created_at=self.now,
                completed_at=None,
                completed_by="",
            )
            self.session.add(row)
            self.history("usertask.created", element_id, name, ",".join(spec.candidate_groups))
            self.uow.emit(
                "usertask.created",
                task_id,
                {"name": name, "element_id": element_id, "candidate_groups": list(spec.candidate_groups)},
                self.o.correlation(self.row),
            )
        for task_id, row in open_rows.items():
            if task_id not in snap.user_tasks:
                row.status = "CANCELED"
                row.completed_at = self.now
                self.history("usertask.canceled", row.element_id, row.name)

    def _sync_timers(self, snap: engine.Snapshot) -> None:
        current = {(t.task_id, t.due_at) for t in snap.timers}
        stored = {
            (t.task_id, aware(t.due_at))
            for t in self.session.scalars(select(Timer).where(Timer.instance_id == self.row.instance_id))
        }
        if current == stored:
            return
        self.session.execute(delete(Timer).where(Timer.instance_id == self.row.instance_id))
        for timer in snap.timers:
            self.session.add(
                Timer(
                    instance_id=self.row.instance_id,
                    task_id=timer.task_id,
                    element_id=timer.element_id,
                    due_at=timer.due_at,
                )
            )
        self.effects.timers_changed = True

    def _sync_subscriptions(self, snap: engine.Snapshot) -> None:
        current = {(m.task_id, m.message_name, m.correlation_key) for m in snap.messages}
        stored_rows = list(
            self.session.scalars(select(Subscription).where(Subscription.instance_id == self.row.instance_id))
        )
        stored = {(s.task_id, s.message_name, s.correlation_key) for s in stored_rows}
        if current == stored:
            return
        created = {s.task_id: aware(s.created_at) for s in stored_rows}
        self.session.execute(delete(Subscription).where(Subscription.instance_id == self.row.instance_id))
        for waiting in snap.messages:
            self.session.add(
                Subscription(
                    instance_id=self.row.instance_id,
                    task_id=waiting.task_id,
                    element_id=waiting.element_id,
                    message_name=waiting.message_name,
                    correlation_key=waiting.correlation_key,
                    created_at=created.get(waiting.task_id) or self.now,
                )
            )

    def _sync_incidents(self, snap: engine.Snapshot) -> None:
        for task_id, task in snap.errors.items():
            if not self._open_incident_exists(task_id):
                message = self._errors.get(task_id, "the task failed")
                kind = "SCRIPT_ERROR" if task_id in self._errors else "TASK_ERROR"
                self._add_incident(task, kind, message)
        if "engine" in self._errors and not self._open_incident_exists(""):
            self._add_incident(None, "ENGINE_ERROR", self._errors["engine"])

    def _open_incident_exists(self, task_id: str) -> bool:
        return (
            self.session.scalars(
                select(Incident.incident_id).where(
                    Incident.instance_id == self.row.instance_id,
                    Incident.task_id == task_id,
                    Incident.resolved_at.is_(None),
                )
            ).first()
            is not None
        )

    def _add_incident(self, task: Task | None, kind: str, message: str, job_key: str = "") -> Incident:
        element_id, name = ("", "")
        if task is not None:
            element_id, name, _ = engine.describe(task)
        incident = Incident(
            incident_id=str(uuid.uuid4()),
            instance_id=self.row.instance_id,
            process_id=self.row.process_id,
            task_id=str(task.id) if task is not None else "",
            element_id=element_id,
            kind=kind,
            message=message[:4000],
            job_key=job_key,
            created_at=self.now,
            resolved_at=None,
        )
        self.session.add(incident)
        self.session.flush()
        self.history("incident.created", element_id, name, f"{kind}: {message[:500]}")
        self.uow.emit(
            "incident.created",
            incident.incident_id,
            {"kind": kind, "message": message[:4000], "element_id": element_id, "job_key": job_key},
            self.o.correlation(self.row),
        )
        return incident

    def _resolve_incidents(self, job_key: str = "", task_id: str = "") -> None:
        condition = Incident.job_key == job_key if job_key else Incident.task_id == task_id
        for incident in self.session.scalars(
            select(Incident).where(
                Incident.instance_id == self.row.instance_id, Incident.resolved_at.is_(None), condition
            )
        ):
            incident.resolved_at = self.now
            self.history("incident.resolved", incident.element_id, detail=incident.kind)

    def _save(self, snap: engine.Snapshot) -> None:
        completed = self.wf.is_completed()
        status = self.row.status
        if status == "ACTIVE" and completed:
            status = "COMPLETED"
            self.history("instance.completed")
            self.uow.emit(
                "instance.completed",
                self.row.instance_id,
                self._summary("COMPLETED"),
                self.o.correlation(self.row),
            )
        seq = self.row.history_seq
        for kind, element_id, name, detail in self._history:
            seq += 1
            self.session.add(
                HistoryEvent(
                    instance_id=self.row.instance_id,
                    sequence=seq,
                    time=self.now,
                    type=kind,
                    element_id=element_id,
                    element_name=name,
                    detail=detail[:2000],
                )
            )
        self.session.flush()
        open_incidents = self.session.scalar(
            select(func.count()).where(
                Incident.instance_id == self.row.instance_id, Incident.resolved_at.is_(None)
            )
        )
        waiting = sorted({engine.describe(t)[1] for t in snap.active})
        result = self.session.execute(
            update(Instance)
            .where(Instance.instance_id == self.row.instance_id, Instance.revision == self.row.revision)
            .values(
                revision=self.row.revision + 1,
                state=engine.dump_state(self.wf),
                variables=jsonutil.dumps(_json_safe(engine.visible_data(self.wf))),
                status=status,
                waiting_at=jsonutil.dumps(waiting),
                open_incidents=open_incidents or 0,
                history_seq=seq,
                updated_at=self.now,
                ended_at=self.now if status != "ACTIVE" else None,
            )
            .execution_options(synchronize_session=False)
        )
        if _rowcount(result) != 1:
            raise Conflict(f"instance {self.row.instance_id} changed concurrently")
        self.new_revision = self.row.revision + 1

    def _summary(self, status: str) -> dict[str, Any]:
        return {
            "instance_id": self.row.instance_id,
            "process_id": self.row.process_id,
            "definition_id": self.row.definition_id,
            "business_key": self.row.business_key or "",
            "status": status,
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


def _rowcount(result: Any) -> int:
    """Rows an UPDATE touched (CursorResult.rowcount, which the Result type does not declare)."""
    return int(result.rowcount)


def _json_safe(data: Mapping[str, Any]) -> dict[str, Any]:
    """Task data as plain JSON values."""
    safe: dict[str, Any] = json.loads(jsonutil.dumps({k: v for k, v in data.items() if not callable(v)}))
    return safe


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


# ------------------------------------------------------------------------------------------ orchestrator


class Orchestrator:
    """The engine host. Methods are blocking; the gRPC servicer runs them on worker threads."""

    def __init__(
        self,
        db: Database,
        uow_factory: Callable[[], UnitOfWork],
        *,
        time_scale: float = 1.0,
        script_time_limit_ms: int = 1000,
        job_timeout: timedelta = timedelta(seconds=60),
        cache_size: int = 1000,
    ) -> None:
        self._db = db
        self._uow_factory = uow_factory
        self.script_engine = ScriptEngine(script_time_limit_ms, time_scale)
        self.time_scale = time_scale
        self.job_timeout = job_timeout
        self.job_deadline = job_timeout * 3
        self._cache = _InstanceCache(cache_size)
        self._specs: dict[str, engine.ProcessSpecs] = {}
        self._specs_lock = threading.Lock()
        self._locks = [threading.RLock() for _ in range(256)]
        self._listeners: list[Callable[[_Effects], None]] = []

    def add_listener(self, listener: Callable[[_Effects], None]) -> None:
        """Called after every committed step (wakes watchers, the scheduler and the dispatcher)."""
        self._listeners.append(listener)

    @property
    def cached_instances(self) -> int:
        return len(self._cache)

    def correlation(self, row: Instance) -> dict[str, str]:
        keys = {"instance_id": row.instance_id, "process_id": row.process_id}
        if row.business_key:
            keys["business_key"] = row.business_key
            keys["engagement_id"] = row.business_key
        return keys

    # ------------------------------------------------------------------------------------ deployments

    def deploy(self, resources: Mapping[str, bytes]) -> DeployResult:
        """Parses and stores resources; creates a new version of each process whose content changed."""
        if not resources:
            raise InvalidArgument("resources", "at least one .bpmn or .dmn file is required")
        for name in resources:
            if not name or "/" in name or "\\" in name:
                raise InvalidArgument("resources.name", f"{name!r} must be a plain file name")
        parsed = engine.parse_resources(resources)
        if not parsed:
            raise InvalidArgument("resources", 'no executable process found (isExecutable="true")')
        deployment_id = str(uuid.uuid4())
        now = now_utc()
        created: list[Definition] = []
        unchanged: list[str] = []
        with self._uow_factory() as uow:
            hashes = {name: engine.content_hash({name: content}) for name, content in resources.items()}
            for name, content in resources.items():
                if uow.session.get(Resource, hashes[name]) is None:
                    uow.session.add(
                        Resource(content_hash=hashes[name], name=name, content=content, deployed_at=now)
                    )
            for process_id, specs in sorted(parsed.items()):
                needed = {n: resources[n] for n in specs.resource_names}
                digest = engine.content_hash(needed)
                latest = self._latest(uow, process_id)
                if latest is not None and latest.content_hash == digest:
                    unchanged.append(process_id)
                    continue
                version = (latest.version if latest else 0) + 1
                definition = Definition(
                    definition_id=f"{process_id}:{version}",
                    process_id=process_id,
                    version=version,
                    name=specs.name,
                    content_hash=digest,
                    resource_name=specs.resource_name,
                    resources=json.dumps({n: hashes[n] for n in specs.resource_names}),
                    start_messages=json.dumps(list(specs.start_messages)),
                    deployment_id=deployment_id,
                    deployed_at=now,
                )
                uow.session.add(definition)
                created.append(definition)
                self._schedule_start_timers(uow, definition, specs, now)
                with self._specs_lock:
                    self._specs[definition.definition_id] = specs
            try:
                uow.commit()
            except IntegrityError as exc:
                raise Conflict(
                    "another deployment of the same process committed first; deploy again"
                ) from exc
        log.info("deployed %s; unchanged %s", [d.definition_id for d in created], unchanged)
        return DeployResult(deployment_id, created, unchanged)

    def _schedule_start_timers(
        self, uow: UnitOfWork, definition: Definition, specs: engine.ProcessSpecs, now: datetime
    ) -> None:
        """A new version takes over the timer start events of the process (as in Zeebe)."""
        uow.session.execute(delete(StartTimer).where(StartTimer.process_id == definition.process_id))
        for element_id, expression in specs.start_timers:
            try:
                value = str(self.script_engine.environment.evaluate(expression, {}))
                if self.time_scale != 1.0:
                    value = scale_timer_expression(value, self.time_scale)
                schedule = engine.start_schedule(value, now)
            except Exception as exc:
                raise engine.DeploymentError(
                    specs.resource_name, f"timer start event: {engine.error_text(exc)}", element=element_id
                ) from exc
            uow.session.add(
                StartTimer(
                    definition_id=definition.definition_id,
                    element_id=element_id,
                    process_id=definition.process_id,
                    due_at=schedule.due_at,
                    interval_seconds=schedule.interval_seconds,
                    remaining=schedule.remaining,
                )
            )

    def _latest(self, uow: UnitOfWork, process_id: str) -> Definition | None:
        return uow.session.scalars(
            select(Definition)
            .where(Definition.process_id == process_id)
            .order_by(Definition.version.desc())
            .limit(1)
        ).first()

    def list_definitions(self, process_id: str = "", latest_only: bool = False) -> list[Definition]:
        with self._db.read() as session:
            query = select(Definition).order_by(Definition.process_id, Definition.version)
            if process_id:
                query = query.where(Definition.process_id == process_id)
            rows = list(session.scalars(query))
        if latest_only:
            latest: dict[str, Definition] = {}
            for row in rows:
                latest[row.process_id] = row
            rows = list(latest.values())
        return rows

    def specs_for(self, definition_id: str) -> engine.ProcessSpecs:
        """Parsed specs of a version, cached; parsed from the stored resources on first use."""
        with self._specs_lock:
            cached = self._specs.get(definition_id)
        if cached is not None:
            return cached
        with self._db.read() as session:
            definition = session.get(Definition, definition_id)
            if definition is None:
                raise NotFound("definition", definition_id)
            hashes: dict[str, str] = json.loads(definition.resources)
            resources = {name: session.get(Resource, h).content for name, h in hashes.items()}  # type: ignore[union-attr]
        specs = engine.parse_resources(resources)[definition.process_id]
        with self._specs_lock:
            self._specs[definition_id] = specs
        return specs

    # -------------------------------------------------------------------------------------- instances

    def create_instance(
        self, process_id: str, version: int, variables: Mapping[str, Any], business_key: str = ""
    ) -> CreateResult:
        if not process_id:
            raise InvalidArgument("process_id", "is required")
        if version < 0:
            raise InvalidArgument("version", "must be 0 (latest) or a positive version")
        definition = self._definition(process_id, version)
        if business_key:
            existing = self._instance_by_key(process_id, business_key)
            if existing is not None:
                return CreateResult(existing.instance_id, existing.definition_id, created=False)
        try:
            instance_id = self._start(definition, variables, business_key)
        except IntegrityError:
            existing = self._instance_by_key(process_id, business_key)
            if existing is None:
                raise
            return CreateResult(existing.instance_id, existing.definition_id, created=False)
        return CreateResult(instance_id, definition.definition_id, created=True)

    def _definition(self, process_id: str, version: int) -> Definition:
        with self._db.read() as session:
            query = select(Definition).where(Definition.process_id == process_id)
            if version:
                query = query.where(Definition.version == version)
            definition = session.scalars(query.order_by(Definition.version.desc()).limit(1)).first()
        if definition is None:
            what = f"{process_id} version {version}" if version else process_id
            raise NotFound("process definition", what)
        return definition

    def _instance_by_key(self, process_id: str, business_key: str) -> Instance | None:
        with self._db.read() as session:
            return session.scalars(
                select(Instance).where(
                    Instance.process_id == process_id, Instance.business_key == business_key
                )
            ).first()

    def _start(
        self,
        definition: Definition,
        variables: Mapping[str, Any],
        business_key: str,
        first_action: Callable[[Step], None] | None = None,
    ) -> str:
        """Creates an instance and runs it until it waits, all in one transaction."""
        specs = self.specs_for(definition.definition_id)
        instance_id = str(uuid.uuid4())
        workflow = engine.new_workflow(specs, self.script_engine, variables)
        now = now_utc()
        with self._lock(instance_id), self._uow_factory() as uow:
            row = Instance(
                instance_id=instance_id,
                definition_id=definition.definition_id,
                process_id=definition.process_id,
                business_key=business_key or None,
                status="ACTIVE",
                revision=0,
                state="",
                variables="{}",
                waiting_at="[]",
                open_incidents=0,
                history_seq=0,
                created_at=now,
                updated_at=now,
                ended_at=None,
            )
            uow.session.add(row)
            uow.session.flush()
            step = Step(self, uow, row, workflow)
            step.history("instance.created", detail=definition.definition_id)
            uow.emit("instance.created", instance_id, step._summary("ACTIVE"), self.correlation(row))
            step.advance()
            if first_action is not None:
                first_action(step)
            step.finish()
            uow.commit()
            self._cache.put(instance_id, step.new_revision, workflow)
        self._notify(step.effects)
        return instance_id

    @contextmanager
    def _lock(self, instance_id: str) -> Iterator[None]:
        lock = self._locks[hash(instance_id) % len(self._locks)]
        with lock:
            yield

    def step(self, instance_id: str, action: Callable[[Step], T]) -> T:
        """Applies `action` to an instance as one durable step; retried on a concurrent change."""
        for attempt in range(MAX_STEP_RETRIES):
            with self._lock(instance_id):
                try:
                    with self._uow_factory() as uow:
                        # FOR UPDATE: another orchestrator's step on this instance waits for ours
                        # (PostgreSQL); SQLite's BEGIN IMMEDIATE already serializes writers.
                        row = uow.session.get(Instance, instance_id, with_for_update=True)
                        if row is None:
                            raise NotFound("instance", instance_id)
                        workflow = self._workflow(row)
                        step = Step(self, uow, row, workflow)
                        result = action(step)
                        step.finish()
                        crash_point("orchestrator.step.before_commit")
                        uow.commit()
                    crash_point("orchestrator.step.after_commit")
                    self._cache.put(instance_id, step.new_revision, workflow)
                except (Conflict, IntegrityError) as error:
                    self._cache.drop(instance_id)
                    if attempt == MAX_STEP_RETRIES - 1:
                        raise Conflict(f"instance {instance_id} kept changing concurrently") from error
                    continue
                except BaseException:
                    self._cache.drop(instance_id)
                    raise
            self._notify(step.effects)
            return result
        raise Conflict(f"instance {instance_id} kept changing concurrently")

    def _workflow(self, row: Instance) -> BpmnWorkflow:
        cached = self._cache.get(row.instance_id, row.revision)
        if cached is not None:
            return cached
        return engine.load_state(row.state, self.specs_for(row.definition_id), self.script_engine)

    def _notify(self, effects: _Effects) -> None:
        for listener in self._listeners:
            try:
                listener(effects)
            except Exception:
                log.exception("listener failed")

    def get_instance(self, instance_id: str, history_limit: int = 0) -> InstanceView:
        with self._db.read() as session:
            row = session.get(Instance, instance_id)
            if row is None:
                raise NotFound("instance", instance_id)
            jobs = list(
                session.scalars(
                    select(Job)
                    .where(Job.instance_id == instance_id, Job.status.in_(("ACTIVATABLE", "INCIDENT")))
                    .order_by(Job.created_at)
                )
            )
            tasks = list(
                session.scalars(
                    select(UserTask)
                    .where(UserTask.instance_id == instance_id, UserTask.status == "OPEN")
                    .order_by(UserTask.created_at)
                )
            )
            incidents = list(
                session.scalars(
                    select(Incident)
                    .where(Incident.instance_id == instance_id, Incident.resolved_at.is_(None))
                    .order_by(Incident.created_at)
                )
            )
            query = select(HistoryEvent).where(HistoryEvent.instance_id == instance_id)
            if history_limit > 0:
                query = query.where(HistoryEvent.sequence > row.history_seq - history_limit)
            history = list(session.scalars(query.order_by(HistoryEvent.sequence)))
        active: list[ActiveElementView] = []
        if row.status == "ACTIVE":
            workflow = self._workflow(row)
            for task in engine.snapshot(workflow).active:
                element_id, name, kind = engine.describe(task)
                active.append(
                    ActiveElementView(
                        element_id, name, kind, TaskState.get_name(task.state), engine.task_process_id(task)
                    )
                )
        return InstanceView(row, active, jobs, tasks, incidents, history)

    def history_after(self, instance_id: str, after: int) -> tuple[list[HistoryEvent], str]:
        """History events after a sequence number, and the instance's status (for WatchInstance)."""
        with self._db.read() as session:
            row = session.get(Instance, instance_id)
            if row is None:
                raise NotFound("instance", instance_id)
            events = list(
                session.scalars(
                    select(HistoryEvent)
                    .where(HistoryEvent.instance_id == instance_id, HistoryEvent.sequence > after)
                    .order_by(HistoryEvent.sequence)
                    .limit(500)
                )
            )
            return events, row.status

    def list_instances(
        self,
        process_id: str = "",
        status: str = "",
        business_key: str = "",
        with_incidents: bool = False,
        page_size: int = 50,
        page_token: str = "",
    ) -> tuple[list[Instance], str]:
        page_size = paging.page_size(page_size)
        offset = paging.page_offset(page_token)
        query = select(Instance).order_by(Instance.created_at.desc(), Instance.instance_id)
        if process_id:
            query = query.where(Instance.process_id == process_id)
        if status:
            query = query.where(Instance.status == status)
        if business_key:
            query = query.where(Instance.business_key == business_key)
        if with_incidents:
            query = query.where(Instance.open_incidents > 0)
        with self._db.read() as session:
            rows = list(session.scalars(query.offset(offset).limit(page_size + 1)))
        next_token = str(offset + page_size) if len(rows) > page_size else ""
        return rows[:page_size], next_token

    def cancel_instance(self, instance_id: str, reason: str = "") -> None:
        def cancel(step: Step) -> None:
            if step.row.status != "ACTIVE":
                raise FailedPrecondition(f"instance {instance_id} is {step.row.status.lower()}, not active")
            step.wf.cancel()
            step.row.status = "CANCELED"
            step.history("instance.canceled", detail=reason)
            step.uow.emit(
                "instance.canceled",
                instance_id,
                {**step._summary("CANCELED"), "reason": reason},
                self.correlation(step.row),
            )
            for incident in step.session.scalars(
                select(Incident).where(Incident.instance_id == instance_id, Incident.resolved_at.is_(None))
            ):
                incident.resolved_at = step.now

        self.step(instance_id, cancel)

    # ------------------------------------------------------------------------------------------- jobs

    def publish_job(
        self,
        uow: UnitOfWork,
        job: Job,
        parameters: Mapping[str, Any],
        variables: Mapping[str, Any],
        row: Instance,
    ) -> None:
        """Queues the job's message on the outbox (called in the transaction that created or retried it)."""
        deadline = Timestamp()
        deadline.FromDatetime(job.deadline.astimezone(UTC).replace(tzinfo=None))
        message = events_pb2.JobActivated(
            job_key=job.job_key,
            instance_id=job.instance_id,
            process_id=row.process_id,
            element_id=job.element_id,
            element_name=job.element_name,
            operation=job.operation,
            parameters_json=jsonutil.dumps(_json_safe(parameters)),
            variables_json=jsonutil.dumps(_json_safe(variables)),
            attempt=job.attempt,
            retries=job.retries,
            deadline=deadline,
            business_key=row.business_key or "",
        )
        not_before = None
        if job.attempt > 1 and job.updated_at > now_utc():
            not_before = job.updated_at
        uow.publish(
            job_subject(job.operation),
            f"{job.job_key}:{job.attempt}:{job.deliveries}",
            message.SerializeToString(),
            headers={"Content-Type": "application/protobuf; type=consultflow.api.events.v1.JobActivated"},
            not_before=not_before,
        )

    def _job(self, job_key: str) -> Job:
        if not job_key:
            raise InvalidArgument("job_key", "is required")
        with self._db.read() as session:
            job = session.get(Job, job_key)
        if job is None:
            raise NotFound("job", job_key)
        return job

    def complete_job(self, job_key: str, variables: Mapping[str, Any]) -> None:
        job = self._job(job_key)
        if job.status == "COMPLETED":
            return  # a repeated reply: nothing changes

        def complete(step: Step) -> None:
            current = step.session.get(Job, job_key)
            assert current is not None
            if current.status == "COMPLETED":
                return
            if current.status not in ("ACTIVATABLE", "INCIDENT"):
                raise FailedPrecondition(
                    f"job {job_key} is {current.status.lower()}: its task no longer waits"
                )
            task = engine.find_task(step.wf, current.task_id)
            if not engine.is_waiting_service_task(task):
                raise FailedPrecondition(f"job {job_key}: its task no longer waits for a reply")
            assert task is not None
            spec: engine.JobServiceTask = task.task_spec
            if spec.merges_result:
                task.data.update(variables)
            else:
                task.data[spec.result_variable] = dict(variables)
            current.status = "COMPLETED"
            current.updated_at = step.now
            step._resolve_incidents(job_key=job_key)
            step.history("job.completed", current.element_id, current.element_name, current.operation)
            task.complete()
            step.record_completed(task)
            step.advance()

        self.step(job.instance_id, complete)

    def fail_job(self, job_key: str, retries: int, backoff_ms: int, message: str) -> None:
        if retries < 0:
            raise InvalidArgument("retries", "must not be negative")
        if backoff_ms < 0:
            raise InvalidArgument("retry_backoff_ms", "must not be negative")
        job = self._job(job_key)

        def fail(step: Step) -> None:
            current = step.session.get(Job, job_key)
            assert current is not None
            if current.status != "ACTIVATABLE":
                if current.status in ("COMPLETED", "INCIDENT"):
                    return  # a late or repeated failure report changes nothing
                raise FailedPrecondition(
                    f"job {job_key} is {current.status.lower()}: its task no longer waits"
                )
            task = engine.find_task(step.wf, current.task_id)
            current.error_message = message[:4000]
            current.updated_at = step.now
            if retries > 0:
                backoff = (
                    timedelta(milliseconds=backoff_ms)
                    if backoff_ms
                    else timedelta(
                        seconds=min(current.backoff_base * 2 ** (current.attempt - 1), MAX_BACKOFF_SECONDS)
                    )
                )
                current.attempt += 1
                current.retries = retries - 1
                current.deliveries = 1
                current.updated_at = step.now + backoff
                current.deadline = current.updated_at + self.job_deadline
                step.history(
                    "job.failed", current.element_id, current.element_name, f"retry in {backoff}: {message}"
                )
                self.publish_job(
                    step.uow, current, self._params(task), dict(task.data) if task else {}, step.row
                )
            else:
                current.status = "INCIDENT"
                step.history(
                    "job.failed", current.element_id, current.element_name, f"no retries left: {message}"
                )
                step._add_incident(task, "JOB_NO_RETRIES", f"{current.operation}: {message}", job_key=job_key)

        self.step(job.instance_id, fail)

    def _params(self, task: Task | None) -> dict[str, Any]:
        if task is None:
            return {}
        try:
            return {k: v["value"] for k, v in task.task_spec.evaluate_params(task).items()}
        except Exception:
            return {}

    def throw_error(self, job_key: str, code: str, message: str, variables: Mapping[str, Any]) -> None:
        if not code:
            raise InvalidArgument("error_code", "is required")
        job = self._job(job_key)

        def throw(step: Step) -> None:
            current = step.session.get(Job, job_key)
            assert current is not None
            if current.status == "ERROR_THROWN":
                return
            if current.status not in ("ACTIVATABLE", "INCIDENT"):
                raise FailedPrecondition(
                    f"job {job_key} is {current.status.lower()}: its task no longer waits"
                )
            task = engine.find_task(step.wf, current.task_id)
            if not engine.is_waiting_service_task(task):
                raise FailedPrecondition(f"job {job_key}: its task no longer waits for a reply")
            assert task is not None
            current.updated_at = step.now
            if engine.catch_error(task, code, message, variables):
                current.status = "ERROR_THROWN"
                step.history("job.error", current.element_id, current.element_name, f"{code}: {message}")
                step._resolve_incidents(job_key=job_key)
                step.advance()
            elif current.status != "INCIDENT":
                current.status = "INCIDENT"
                current.error_message = f"{code}: {message}"
                step._add_incident(
                    task, "UNHANDLED_ERROR", f"no boundary event catches error {code!r}: {message}", job_key
                )

        self.step(job.instance_id, throw)

    def redeliver_overdue_jobs(self, limit: int = 200) -> int:
        """Republishes jobs no worker answered before their deadline (JetStream redelivers too; this
        covers a message that left the stream without a reply)."""
        now = now_utc()
        with self._db.read() as session:
            keys = list(
                session.execute(
                    select(Job.job_key, Job.instance_id)
                    .where(Job.status == "ACTIVATABLE", Job.deadline < now)
                    .order_by(Job.deadline)
                    .limit(limit)
                )
            )
        for job_key, instance_id in keys:

            def redeliver(step: Step, job_key: str = job_key) -> None:
                current = step.session.get(Job, job_key)
                if current is None or current.status != "ACTIVATABLE" or aware(current.deadline) >= step.now:  # type: ignore[operator]
                    return
                task = engine.find_task(step.wf, current.task_id)
                current.deliveries += 1
                current.deadline = step.now + self.job_deadline * min(current.deliveries, 10)
                step.history(
                    "job.redelivered",
                    current.element_id,
                    current.element_name,
                    f"delivery {current.deliveries}",
                )
                self.publish_job(
                    step.uow, current, self._params(task), dict(task.data) if task else {}, step.row
                )

            try:
                self.step(instance_id, redeliver)
            except Exception:
                log.exception("redelivering job %s failed", job_key)
        return len(keys)

    # ------------------------------------------------------------------------------------- user tasks

    def list_user_tasks(
        self,
        candidate_group: str = "",
        assignee: str = "",
        instance_id: str = "",
        include_closed: bool = False,
        page_size: int = 50,
        page_token: str = "",
    ) -> tuple[list[UserTask], str]:
        page_size = paging.page_size(page_size)
        offset = paging.page_offset(page_token)
        query = select(UserTask).order_by(UserTask.created_at, UserTask.user_task_id)
        if not include_closed:
            query = query.where(UserTask.status == "OPEN")
        if candidate_group:
            query = query.where(UserTask.candidate_groups.like(f"%,{candidate_group},%"))
        if assignee:
            query = query.where(UserTask.assignee == assignee)
        if instance_id:
            query = query.where(UserTask.instance_id == instance_id)
        with self._db.read() as session:
            rows = list(session.scalars(query.offset(offset).limit(page_size + 1)))
        return rows[:page_size], (str(offset + page_size) if len(rows) > page_size else "")

    def get_user_task(self, user_task_id: str) -> tuple[UserTask, dict[str, Any]]:
        """The task and the data it sees."""
        if not user_task_id:
            raise InvalidArgument("user_task_id", "is required")
        with self._db.read() as session:
            row = session.get(UserTask, user_task_id)
            instance = session.get(Instance, row.instance_id) if row else None
        if row is None or instance is None:
            raise NotFound("user task", user_task_id)
        data: dict[str, Any] = {}
        if row.status == "OPEN" and instance.status == "ACTIVE":
            task = engine.find_task(self._workflow(instance), user_task_id)
            if task is not None:
                data = _json_safe(task.data)
        return row, data

    def claim_user_task(self, user_task_id: str, assignee: str, force: bool = False) -> UserTask:
        if not assignee:
            raise InvalidArgument("assignee", "is required")
        with self._uow_factory() as uow:
            row = uow.session.get(UserTask, user_task_id) if user_task_id else None
            if row is None:
                raise NotFound("user task", user_task_id)
            if row.status != "OPEN":
                raise FailedPrecondition(f"user task {user_task_id} is {row.status.lower()}")
            if row.assignee and row.assignee != assignee and not force:
                raise FailedPrecondition(
                    f"user task {user_task_id} is claimed by {row.assignee!r}; use force"
                )
            row.assignee = assignee
            instance_id = row.instance_id
            uow.commit()
        self._notify(_Effects(instances={instance_id}))
        return row

    def complete_user_task(
        self, user_task_id: str, values: Mapping[str, Any], completed_by: str = ""
    ) -> None:
        if not user_task_id:
            raise InvalidArgument("user_task_id", "is required")
        with self._db.read() as session:
            row = session.get(UserTask, user_task_id)
        if row is None:
            raise NotFound("user task", user_task_id)

        def complete(step: Step) -> None:
            current = step.session.get(UserTask, user_task_id)
            assert current is not None
            if current.status != "OPEN":
                raise FailedPrecondition(f"user task {user_task_id} is {current.status.lower()}")
            if current.assignee and completed_by and current.assignee != completed_by:
                raise FailedPrecondition(f"user task {user_task_id} is claimed by {current.assignee!r}")
            task = engine.find_task(step.wf, user_task_id)
            if task is None or task.state != TaskState.READY:
                raise FailedPrecondition(f"user task {user_task_id} no longer waits")
            spec: engine.HumanTask = task.task_spec
            data = validate_form(spec.form_fields, values)
            spec.add_data_from_form(task, data)
            task.run()
            step.record_completed(task)
            current.status = "COMPLETED"
            current.completed_at = step.now
            current.completed_by = completed_by or current.assignee
            step.history("usertask.completed", current.element_id, current.name, completed_by)
            step.uow.emit(
                "usertask.completed",
                user_task_id,
                {
                    "name": current.name,
                    "element_id": current.element_id,
                    "completed_by": current.completed_by,
                    "values": data,
                },
                self.correlation(step.row),
            )
            step.advance()

        self.step(row.instance_id, complete)

    # --------------------------------------------------------------------------------------- messages

    def publish_message(
        self,
        name: str,
        correlation_key: str,
        variables: Mapping[str, Any],
        ttl: timedelta = timedelta(0),
        message_id: str = "",
    ) -> PublishResult:
        """Correlates a message now, starts an instance with it, buffers it for `ttl`, or drops it."""
        if not name:
            raise InvalidArgument("name", "is required")
        if ttl < timedelta(0):
            raise InvalidArgument("ttl_seconds", "must not be negative")
        now = now_utc()
        key = str(uuid.uuid4())
        with self._uow_factory() as uow:
            if (
                message_id
                and uow.session.scalars(
                    select(Message.message_key).where(Message.message_id == message_id)
                ).first()
            ):
                return PublishResult("DUPLICATE")
            uow.session.add(
                Message(
                    message_key=key,
                    message_id=message_id or None,
                    name=name,
                    correlation_key=correlation_key,
                    variables=jsonutil.dumps(dict(variables)),
                    status="PENDING",
                    instance_id="",
                    created_at=now,
                    # A message nobody may wait for is kept only to remember its id.
                    expires_at=now + (ttl if ttl > timedelta(0) else timedelta(0)),
                )
            )
            try:
                uow.commit()
            except IntegrityError:
                return PublishResult("DUPLICATE")
        outcome, instance_id = self._correlate(key)
        if outcome == "PENDING":
            if ttl > timedelta(0):
                return PublishResult("BUFFERED", message_key=key)
            self._mark_message(key, "DROPPED")
            return PublishResult("DROPPED", message_key=key)
        return PublishResult(outcome, instance_id, key)

    def _mark_message(self, message_key: str, status: str) -> None:
        with self._uow_factory() as uow:
            uow.session.execute(
                update(Message)
                .where(Message.message_key == message_key, Message.status == "PENDING")
                .values(status=status)
            )
            uow.commit()

    def _correlate(self, message_key: str) -> tuple[str, str]:
        """Tries to deliver one pending message: to a waiting subscription, else to a message start event."""
        with self._db.read() as session:
            message = session.get(Message, message_key)
            if message is None or message.status != "PENDING":
                return (message.status if message else "DROPPED"), ""
            candidates = list(
                session.execute(
                    select(Subscription.instance_id, Subscription.task_id, Subscription.element_id)
                    .where(
                        Subscription.message_name == message.name,
                        Subscription.correlation_key == message.correlation_key,
                    )
                    .order_by(Subscription.created_at)
                    .limit(20)
                )
            )
        variables = json.loads(message.variables)
        for instance_id, task_id, element_id in candidates:

            def deliver(step: Step, task_id: str = task_id, element_id: str = element_id) -> bool:
                claimed = step.session.execute(
                    update(Message)
                    .where(Message.message_key == message_key, Message.status == "PENDING")
                    .values(status="CORRELATED", instance_id=step.row.instance_id)
                    .execution_options(synchronize_session=False)
                )
                if _rowcount(claimed) != 1:
                    return False
                if not step.deliver(task_id, message.name, message.correlation_key, variables):
                    raise _NotWaiting()
                step.history("message.correlated", element_id, message.name, f"[{message.correlation_key}]")
                step.advance()
                return True

            try:
                if self.step(instance_id, deliver):
                    crash_point("orchestrator.message.correlated")
                    return "CORRELATED", instance_id
                return "DUPLICATE", ""
            except (_NotWaiting, NotFound):
                continue
        return self._start_by_message(message_key, message.name, message.correlation_key, variables)

    def _start_by_message(
        self, message_key: str, name: str, key: str, variables: dict[str, Any]
    ) -> tuple[str, str]:
        definitions = [
            d for d in self.list_definitions(latest_only=True) if name in json.loads(d.start_messages)
        ]
        if not definitions:
            return "PENDING", ""
        definition = definitions[0]

        def first(step: Step) -> None:
            claimed = step.session.execute(
                update(Message)
                .where(Message.message_key == message_key, Message.status == "PENDING")
                .values(status="CORRELATED", instance_id=step.row.instance_id)
                .execution_options(synchronize_session=False)
            )
            if _rowcount(claimed) != 1:
                raise _AlreadyTaken()
            for waiting in engine.snapshot(step.wf).messages:
                if waiting.message_name == name and step.deliver(waiting.task_id, name, key, variables):
                    step.history("message.correlated", waiting.element_id, name, f"started by {name} [{key}]")
                    step.advance()
                    return
            raise FailedPrecondition(f"{definition.definition_id} does not wait for {name!r} at its start")

        try:
            instance_id = self._start(definition, {}, "", first)
        except _AlreadyTaken:
            return "DUPLICATE", ""
        return "STARTED", instance_id

    def correlate_pending(self, limit: int = 200) -> int:
        """Delivers buffered messages whose receiver now waits or whose process can start; the
        dispatcher calls this after steps that threw messages, and periodically."""
        now = now_utc()
        with self._db.read() as session:
            keys = list(
                session.scalars(
                    select(Message.message_key)
                    .where(Message.status == "PENDING", Message.expires_at > now)
                    .order_by(Message.created_at)
                    .limit(limit)
                )
            )
        delivered = 0
        for key in keys:
            try:
                outcome, _ = self._correlate(key)
            except Exception:
                log.exception("correlating message %s failed", key)
                continue
            delivered += outcome in ("CORRELATED", "STARTED")
        return delivered

    def expire_messages(self) -> int:
        now = now_utc()
        with self._uow_factory() as uow:
            expired = uow.session.execute(
                update(Message)
                .where(Message.status == "PENDING", Message.expires_at <= now)
                .values(status="EXPIRED")
            )
            uow.session.execute(
                delete(Message).where(
                    Message.status != "PENDING", Message.created_at < now - MESSAGE_ID_RETENTION
                )
            )
            uow.commit()
        return _rowcount(expired)

    # ----------------------------------------------------------------------------------------- timers

    def next_timer_due(self) -> datetime | None:
        with self._db.read() as session:
            candidates = [
                aware(session.scalar(select(func.min(Timer.due_at)))),
                aware(session.scalar(select(func.min(StartTimer.due_at)))),
            ]
        due = [c for c in candidates if c is not None]
        return min(due) if due else None

    def fire_start_timers(self) -> int:
        """Starts an instance for every due timer start event and schedules its next firing."""
        now = now_utc()
        with self._db.read() as session:
            due = list(session.scalars(select(StartTimer).where(StartTimer.due_at <= now).limit(100)))
        started = 0
        for timer in due:
            definition = self._definition_by_id(timer.definition_id)

            def first(step: Step, timer: StartTimer = timer) -> None:
                this_firing = (
                    StartTimer.definition_id == timer.definition_id,
                    StartTimer.element_id == timer.element_id,
                    StartTimer.due_at == timer.due_at,
                )
                if timer.remaining == 0 or timer.interval_seconds <= 0:
                    claimed = step.session.execute(delete(StartTimer).where(*this_firing))
                else:
                    next_due = aware(timer.due_at) + timedelta(seconds=timer.interval_seconds)  # type: ignore[operator]
                    claimed = step.session.execute(
                        update(StartTimer)
                        .where(*this_firing)
                        .values(due_at=next_due, remaining=timer.remaining - 1 if timer.remaining > 0 else -1)
                        .execution_options(synchronize_session=False)
                    )
                if _rowcount(claimed) != 1:
                    raise _AlreadyTaken()
                engine.fire_start_timers(step.wf)
                step.history("timer.fired", timer.element_id, detail=f"start event due {aware(timer.due_at)}")
                step.advance()

            try:
                self._start(definition, {}, "", first)
                started += 1
            except _AlreadyTaken:
                continue
            except Exception:
                log.exception("starting %s by its timer failed", timer.definition_id)
        return started

    def _definition_by_id(self, definition_id: str) -> Definition:
        with self._db.read() as session:
            definition = session.get(Definition, definition_id)
        if definition is None:
            raise NotFound("definition", definition_id)
        return definition

    def fire_due_timers(self, limit: int = 500) -> int:
        """Wakes instances whose timers are due; cycle timers that fell behind catch up one cycle each."""
        now = now_utc()
        with self._db.read() as session:
            instance_ids = list(
                session.scalars(
                    select(Timer.instance_id)
                    .where(Timer.due_at <= now)
                    .group_by(Timer.instance_id)
                    .limit(limit)
                )
            )
        fired = 0
        for instance_id in instance_ids:

            def wake(step: Step) -> None:
                for _ in range(100):
                    due = [t for t in engine.snapshot(step.wf).timers if t.due_at <= now_utc()]
                    if not due:
                        return
                    for timer in due:
                        step.history("timer.fired", timer.element_id, detail=timer.due_at.isoformat())
                    step.advance()

            try:
                self.step(instance_id, wake)
                crash_point("orchestrator.timer.fired")
                fired += 1
            except Exception:
                log.exception("firing timers of %s failed", instance_id)
        return fired

    # -------------------------------------------------------------------------------------- incidents

    def list_incidents(
        self, instance_id: str = "", include_resolved: bool = False, page_size: int = 100
    ) -> list[Incident]:
        query = select(Incident).order_by(Incident.created_at.desc())
        if instance_id:
            query = query.where(Incident.instance_id == instance_id)
        if not include_resolved:
            query = query.where(Incident.resolved_at.is_(None))
        with self._db.read() as session:
            return list(session.scalars(query.limit(paging.page_size(page_size))))

    def resolve_incident(self, incident_id: str, retries: int = 1) -> None:
        """Retries what failed: a job gets `retries` attempts again; a failed script runs again."""
        if not incident_id:
            raise InvalidArgument("incident_id", "is required")
        if retries < 0:
            raise InvalidArgument("retries", "must not be negative")
        with self._db.read() as session:
            incident = session.get(Incident, incident_id)
        if incident is None:
            raise NotFound("incident", incident_id)
        if incident.resolved_at is not None:
            raise FailedPrecondition(f"incident {incident_id} is already resolved")

        def resolve(step: Step) -> None:
            current = step.session.get(Incident, incident_id)
            assert current is not None
            if current.resolved_at is not None:
                return
            current.resolved_at = step.now
            step.history("incident.resolved", current.element_id, detail=current.kind)
            step.uow.emit(
                "incident.resolved", incident_id, {"kind": current.kind}, self.correlation(step.row)
            )
            if current.job_key:
                job = step.session.get(Job, current.job_key)
                task = engine.find_task(step.wf, job.task_id) if job else None
                if job is not None and engine.is_waiting_service_task(task):
                    job.status = "ACTIVATABLE"
                    job.attempt += 1
                    job.retries = max(retries, 1) - 1
                    job.deliveries = 1
                    job.updated_at = step.now
                    job.deadline = step.now + self.job_deadline
                    step.history("job.retried", job.element_id, job.element_name, f"attempt {job.attempt}")
                    self.publish_job(
                        step.uow, job, self._params(task), dict(task.data) if task else {}, step.row
                    )
            elif current.task_id:
                task = engine.find_task(step.wf, current.task_id)
                if task is not None and task.state == TaskState.ERROR:
                    step.wf.reset_from_task_id(task.id)
                step.advance()
            else:
                step.advance()

        self.step(incident.instance_id, resolve)


class _NotWaiting(Exception):
    """The subscription's task stopped waiting between lookup and delivery."""


class _AlreadyTaken(Exception):
    """Another delivery claimed the message first."""


__all__ = [
    "CreateResult",
    "DeployResult",
    "InstanceView",
    "Orchestrator",
    "PublishResult",
    "Step",
]
