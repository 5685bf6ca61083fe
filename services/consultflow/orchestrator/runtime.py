"""The orchestrator's use cases: deploy, run and observe instances durably.

Every change to an instance is one `Step` (see step.py): lock the instance, load its workflow (from a
bounded in-memory cache, else from its stored state), apply the change, let the engine run, write
everything in one transaction. A crash at any point leaves either the old state with none of its effects
or the new state with all of them.
"""

from __future__ import annotations

import json
import logging
import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, NamedTuple, TypeVar

from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
from SpiffWorkflow.task import Task
from SpiffWorkflow.util.task import TaskState
from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from consultflow.api.events.v1 import events_pb2
from consultflow.orchestrator import engine
from consultflow.orchestrator.forms import validate_form
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
from consultflow.orchestrator.step import (
    INSTANCES,
    MESSAGES,
    Effects,
    InstanceRecord,
    Step,
    Waits,
    instance_of,
    json_safe,
    rowcount,
)
from consultflow.orchestrator.timer_events import ClockedScriptEngine
from consultflow.platform import jsonutil, paging
from consultflow.platform.clock import WALL_CLOCK, Clock
from consultflow.platform.db import Database, UnitOfWork
from consultflow.platform.errors import Conflict, FailedPrecondition, InvalidArgument, NotFound
from consultflow.platform.faults import crash_point
from consultflow.platform.messaging import job_subject
from consultflow.platform.timeutil import aware, timestamp

log = logging.getLogger(__name__)

T = TypeVar("T")

MESSAGE_ID_RETENTION = timedelta(days=1)
"""How long a message id is remembered for de-duplication after it was correlated."""
MAX_STEP_RETRIES = 5
MAX_BACKOFF_SECONDS = 300


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


class DefinitionRef(NamedTuple):
    """What starting an instance needs to know of its definition."""

    definition_id: str
    process_id: str


class ExistingInstance(NamedTuple):
    instance_id: str
    definition_id: str


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


class _NotWaiting(Exception):
    """The subscription's task stopped waiting between lookup and delivery."""


class _AlreadyTaken(Exception):
    """Another delivery claimed the message first."""


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
        timer_overrides: Mapping[str, str] | None = None,
        clock: Clock = WALL_CLOCK,
    ) -> None:
        self._db = db
        self._uow_factory = uow_factory
        self.clock = clock
        self.script_engine = ClockedScriptEngine(script_time_limit_ms, time_scale, timer_overrides, clock)
        self.time_scale = time_scale
        self.job_timeout = job_timeout
        self.job_deadline = job_timeout * 3
        self._cache = _InstanceCache(cache_size)
        self._specs: dict[str, engine.ProcessSpecs] = {}
        self._specs_lock = threading.Lock()
        self._locks = [threading.RLock() for _ in range(256)]
        self._listeners: list[Callable[[Effects], None]] = []

    def add_listener(self, listener: Callable[[Effects], None]) -> None:
        """Called after every committed step (wakes watchers, the scheduler and the dispatcher)."""
        self._listeners.append(listener)

    @property
    def cached_instances(self) -> int:
        return len(self._cache)

    def correlation(self, record: Instance | InstanceRecord) -> dict[str, str]:
        keys = {"instance_id": record.instance_id, "process_id": record.process_id}
        if record.business_key:
            keys["business_key"] = record.business_key
            keys["engagement_id"] = record.business_key
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
        now = self.clock.now()
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
                value = self.script_engine.start_timer(element_id, expression)
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
        if len(business_key) > 255:
            raise InvalidArgument("business_key", "is longer than 255 characters")
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

    def _definition(self, process_id: str, version: int) -> DefinitionRef:
        """The version to start (the latest when `version` is 0): two columns, read without the ORM,
        because every CreateInstance asks."""
        query = select(Definition.definition_id, Definition.process_id).where(
            Definition.process_id == process_id
        )
        if version:
            query = query.where(Definition.version == version)
        with self._db.read() as session:
            row = session.execute(query.order_by(Definition.version.desc()).limit(1)).first()
        if row is None:
            what = f"{process_id} version {version}" if version else process_id
            raise NotFound("process definition", what)
        return DefinitionRef(row.definition_id, row.process_id)

    def _definition_by_id(self, definition_id: str) -> Definition:
        with self._db.read() as session:
            definition = session.get(Definition, definition_id)
        if definition is None:
            raise NotFound("definition", definition_id)
        return definition

    def _instance_by_key(self, process_id: str, business_key: str) -> ExistingInstance | None:
        """The instance already started for this business key, if any."""
        with self._db.read() as session:
            row = session.execute(
                select(Instance.instance_id, Instance.definition_id).where(
                    Instance.process_id == process_id, Instance.business_key == business_key
                )
            ).first()
        return None if row is None else ExistingInstance(row.instance_id, row.definition_id)

    def _start(
        self,
        definition: Definition | DefinitionRef,
        variables: Mapping[str, Any],
        business_key: str,
        first_action: Callable[[Step], None] | None = None,
    ) -> str:
        """Creates an instance and runs it until it waits, all in one transaction."""
        specs = self.specs_for(definition.definition_id)
        instance_id = str(uuid.uuid4())
        workflow = engine.new_workflow(specs, self.script_engine, variables)
        now = self.clock.now()
        with self._lock(instance_id), self._uow_factory() as uow:
            uow.session.connection().execute(
                insert(INSTANCES).values(
                    instance_id=instance_id,
                    definition_id=definition.definition_id,
                    process_id=definition.process_id,
                    business_key=business_key or None,
                    status="ACTIVE",
                    revision=0,
                    state="",
                    variables="{}",
                    waiting_at="[]",
                    waits="{}",
                    open_incidents=0,
                    history_seq=0,
                    created_at=now,
                    updated_at=now,
                    ended_at=None,
                )
            )
            record = InstanceRecord(
                instance_id,
                definition.definition_id,
                definition.process_id,
                business_key,
                "ACTIVE",
                0,
                0,
                "",
                Waits(),
            )
            step = Step(self, uow, record, workflow)
            step.history("instance.created", detail=definition.definition_id)
            uow.emit("instance.created", instance_id, step.summary(), self.correlation(record))
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
                        record = InstanceRecord.load(uow.session.connection(), instance_id)
                        if record is None:
                            raise NotFound("instance", instance_id)
                        workflow = self._workflow(
                            record.instance_id, record.revision, record.state, record.definition_id
                        )
                        step = Step(self, uow, record, workflow)
                        result = action(step)
                        if step.skipped:
                            self._cache.drop(instance_id)  # the action may have touched the live workflow
                            return result
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

    def _workflow(self, instance_id: str, revision: int, state: str, definition_id: str) -> BpmnWorkflow:
        cached = self._cache.get(instance_id, revision)
        if cached is not None:
            return cached
        return engine.load_state(state, self.specs_for(definition_id), self.script_engine)

    def _notify(self, effects: Effects) -> None:
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
            workflow = self._workflow(row.instance_id, row.revision, row.state, row.definition_id)
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
        size = paging.page_size(page_size)
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
            rows = list(session.scalars(query.offset(offset).limit(size + 1)))
        return rows[:size], paging.next_token(offset, size, len(rows))

    def cancel_instance(self, instance_id: str, reason: str = "") -> None:
        def cancel(step: Step) -> None:
            if step.status != "ACTIVE":
                raise FailedPrecondition(f"instance {instance_id} is {step.status.lower()}, not active")
            step.wf.cancel()
            step.status = "CANCELED"
            step.history("instance.canceled", detail=reason)
            step.uow.emit(
                "instance.canceled",
                instance_id,
                {**step.summary(), "reason": reason},
                self.correlation(step.record),
            )
            for incident_id in list(step.waits.incidents):
                step.resolve_incidents(incident_id=incident_id)

        self.step(instance_id, cancel)

    # ------------------------------------------------------------------------------------------- jobs

    def publish_job(
        self,
        uow: UnitOfWork,
        job: Any,
        parameters: Mapping[str, Any],
        variables: Mapping[str, Any],
        record: InstanceRecord,
        not_before: datetime | None = None,
    ) -> None:
        """Queues the job's message on the outbox (called in the transaction that created or retried it)."""
        message = events_pb2.JobActivated(
            job_key=job.job_key,
            instance_id=job.instance_id,
            process_id=record.process_id,
            element_id=job.element_id,
            element_name=job.element_name,
            operation=job.operation,
            parameters_json=jsonutil.dumps(json_safe(parameters)),
            variables_json=jsonutil.dumps(json_safe(variables)),
            attempt=job.attempt,
            retries=job.retries,
            deadline=timestamp(job.deadline),
            business_key=record.business_key,
            created_at=timestamp(job.created_at),
        )
        uow.publish(
            job_subject(job.operation),
            f"{job.job_key}:{job.attempt}:{job.deliveries}",
            message.SerializeToString(),
            headers={"Content-Type": "application/protobuf; type=consultflow.api.events.v1.JobActivated"},
            not_before=not_before,
        )

    def _job_step(self, job_key: str, action: Callable[[Step, Any], None], read_row: bool = False) -> None:
        """Runs `action(step, job)` in a step of the job's instance; unknown keys are NOT_FOUND.

        An open job is described from the instance's own state (no read); only a job that is no longer
        open (a late or repeated reply) is read from its row.
        """
        if not job_key:
            raise InvalidArgument("job_key", "is required")
        instance_id = instance_of(job_key)

        def with_job(step: Step) -> None:
            job = step.open_job(job_key) if not read_row and job_key in step.waits.jobs else None
            if job is None:
                job = step.job(job_key)
            if job is None:
                raise NotFound("job", job_key)
            action(step, job)

        try:
            self.step(instance_id, with_job)
        except NotFound as error:
            raise NotFound("job", job_key) from error

    def _waiting_task(self, step: Step, job: Any) -> Task:
        task = engine.find_task(step.wf, job.task_id)
        if not engine.is_waiting_service_task(task):
            raise FailedPrecondition(f"job {job.job_key}: its task no longer waits for a reply")
        assert task is not None
        return task

    def complete_job(self, job_key: str, variables: Mapping[str, Any]) -> None:
        def complete(step: Step, job: Any) -> None:
            if job.status == "COMPLETED":
                return step.skip()  # a repeated reply: nothing changes
            if job.status not in ("ACTIVATABLE", "INCIDENT"):
                raise FailedPrecondition(f"job {job_key} is {job.status.lower()}: its task no longer waits")
            task = self._waiting_task(step, job)
            spec: engine.JobServiceTask = task.task_spec
            if spec.merges_result:
                task.data.update(variables)
            else:
                task.data[spec.result_variable] = dict(variables)
            step.close_job(job_key, "COMPLETED")
            step.history("job.completed", job.element_id, job.element_name, job.operation)
            task.complete()
            step.record_completed(task)
            step.advance()

        self._job_step(job_key, complete)

    def fail_job(self, job_key: str, retries: int, backoff_ms: int, message: str) -> None:
        if retries < 0:
            raise InvalidArgument("retries", "must not be negative")
        if backoff_ms < 0:
            raise InvalidArgument("retry_backoff_ms", "must not be negative")

        def fail(step: Step, job: Any) -> None:
            if job.status in ("COMPLETED", "INCIDENT", "ERROR_THROWN"):
                return step.skip()  # a late or repeated failure report changes nothing
            if job.status != "ACTIVATABLE":
                raise FailedPrecondition(f"job {job_key} is {job.status.lower()}: its task no longer waits")
            task = engine.find_task(step.wf, job.task_id)
            if retries > 0:
                backoff = (
                    timedelta(milliseconds=backoff_ms)
                    if backoff_ms
                    else timedelta(
                        seconds=min(job.backoff_base * 2 ** (job.attempt - 1), MAX_BACKOFF_SECONDS)
                    )
                )
                retry_at = step.now + backoff
                step.update_job(
                    job_key,
                    attempt=job.attempt + 1,
                    retries=retries - 1,
                    deliveries=1,
                    error_message=message[:4000],
                    deadline=retry_at + self.job_deadline,
                )
                step.history("job.failed", job.element_id, job.element_name, f"retry in {backoff}: {message}")
                self._republish_job(step, job_key, task, retry_at)
            else:
                step.update_job(job_key, status="INCIDENT", error_message=message[:4000])
                step.history("job.failed", job.element_id, job.element_name, f"no retries left: {message}")
                step.add_incident(task, "JOB_NO_RETRIES", f"{job.operation}: {message}", job=job_key)

        self._job_step(job_key, fail, read_row=True)

    def _republish_job(
        self, step: Step, job_key: str, task: Task | None, not_before: datetime | None = None
    ) -> None:
        """Queues a job's message again, from its row as this step just updated it (a retry, a redelivery)."""
        self.publish_job(
            step.uow,
            step.job(job_key),
            self._params(task),
            task.data if task else {},
            step.record,
            not_before,
        )

    def _params(self, task: Task | None) -> dict[str, Any]:
        if task is None:
            return {}
        try:
            return engine.job_parameters(task)
        except Exception:
            return {}

    def throw_error(self, job_key: str, code: str, message: str, variables: Mapping[str, Any]) -> None:
        if not code:
            raise InvalidArgument("error_code", "is required")

        def throw(step: Step, job: Any) -> None:
            if job.status == "ERROR_THROWN":
                return step.skip()
            if job.status not in ("ACTIVATABLE", "INCIDENT"):
                raise FailedPrecondition(f"job {job_key} is {job.status.lower()}: its task no longer waits")
            task = self._waiting_task(step, job)
            if engine.catch_error(task, code, message, variables):
                step.close_job(job_key, "ERROR_THROWN")
                step.history("job.error", job.element_id, job.element_name, f"{code}: {message}")
                step.advance()
            elif job.status != "INCIDENT":
                step.update_job(job_key, status="INCIDENT", error_message=f"{code}: {message}"[:4000])
                step.add_incident(
                    task,
                    "UNHANDLED_ERROR",
                    f"no boundary event catches error {code!r}: {message}",
                    job=job_key,
                )

        self._job_step(job_key, throw)

    def redeliver_overdue_jobs(self, limit: int = 200) -> int:
        """Republishes jobs no worker answered before their deadline (JetStream redelivers too; this
        covers a message that left the stream without a reply)."""
        now = self.clock.now()
        with self._db.read() as session:
            keys = list(
                session.scalars(
                    select(Job.job_key)
                    .where(Job.status == "ACTIVATABLE", Job.deadline < now)
                    .order_by(Job.deadline)
                    .limit(limit)
                )
            )
        for key in keys:

            def redeliver(step: Step, job: Any) -> None:
                if job.status != "ACTIVATABLE" or aware(job.deadline) >= step.now:  # type: ignore[operator]
                    return step.skip()
                task = engine.find_task(step.wf, job.task_id)
                deliveries = job.deliveries + 1
                step.update_job(
                    job.job_key,
                    deliveries=deliveries,
                    deadline=step.now + self.job_deadline * min(deliveries, 10),
                )
                step.history("job.redelivered", job.element_id, job.element_name, f"delivery {deliveries}")
                self._republish_job(step, job.job_key, task)

            try:
                self._job_step(key, redeliver, read_row=True)
            except Exception:
                log.exception("redelivering job %s failed", key)
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
        size = paging.page_size(page_size)
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
            rows = list(session.scalars(query.offset(offset).limit(size + 1)))
        return rows[:size], paging.next_token(offset, size, len(rows))

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
            workflow = self._workflow(
                instance.instance_id, instance.revision, instance.state, instance.definition_id
            )
            task = engine.find_task(workflow, user_task_id)
            if task is not None:
                data = json_safe(task.data)
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
        self._notify(Effects(instances={instance_id}))
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
            done_by = completed_by or current.assignee
            step.close_user_task(user_task_id, "COMPLETED", done_by)
            step.history("usertask.completed", current.element_id, current.name, done_by)
            step.uow.emit(
                "usertask.completed",
                user_task_id,
                {
                    "name": current.name,
                    "element_id": current.element_id,
                    "completed_by": done_by,
                    "values": data,
                },
                self.correlation(step.record),
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
        now = self.clock.now()
        key = str(uuid.uuid4())
        with self._uow_factory() as uow:
            if (
                message_id
                and uow.session.scalars(
                    select(Message.message_key).where(Message.message_id == message_id)
                ).first()
            ):
                return PublishResult("DUPLICATE")
            uow.session.execute(
                insert(MESSAGES).values(
                    message_key=key,
                    message_id=message_id or None,
                    name=name,
                    correlation_key=correlation_key,
                    variables=jsonutil.dumps(dict(variables)),
                    status="PENDING",
                    instance_id="",
                    created_at=now,
                    # A message nobody may wait for is kept only to remember its id.
                    expires_at=now + max(ttl, timedelta(0)),
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
                if not self._claim_message(step, message_key):
                    step.skip()
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

    def _claim_message(self, step: Step, message_key: str) -> bool:
        claimed = step.conn.execute(
            update(MESSAGES)
            .where(MESSAGES.c.message_key == message_key, MESSAGES.c.status == "PENDING")
            .values(status="CORRELATED", instance_id=step.instance_id)
        )
        return rowcount(claimed) == 1

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
            if not self._claim_message(step, message_key):
                raise _AlreadyTaken()
            for waiting in engine.snapshot(step.wf).messages:
                if waiting.message_name == name and step.deliver(waiting.task_id, name, key, variables):
                    step.history("message.correlated", waiting.element_id, name, f"started by {name} [{key}]")
                    step.advance()
                    return
            raise FailedPrecondition(f"{definition.definition_id} does not wait for {name!r} at its start")

        try:
            # The message's key becomes the new instance's business key (one risk process per engagement).
            instance_id = self._start(definition, {}, key, first)
        except _AlreadyTaken:
            return "DUPLICATE", ""
        except IntegrityError:
            return "PENDING", ""  # an instance with this key exists already and does not wait for it
        return "STARTED", instance_id

    def correlate_pending(self, limit: int = 200) -> int:
        """Delivers buffered messages whose receiver now waits or whose process can start; the
        dispatcher calls this after steps that threw messages, and periodically."""
        now = self.clock.now()
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
        now = self.clock.now()
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
        return rowcount(expired)

    # ----------------------------------------------------------------------------------------- timers

    def next_timer_due(self) -> datetime | None:
        with self._db.read() as session:
            candidates = [
                aware(session.scalar(select(func.min(Timer.due_at)))),
                aware(session.scalar(select(func.min(StartTimer.due_at)))),
            ]
        due = [c for c in candidates if c is not None]
        return min(due) if due else None

    def fire_due_timers(self, limit: int = 500) -> int:
        """Wakes instances whose timers are due; cycle timers that fell behind catch up one cycle each."""
        now = self.clock.now()
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
                    due = [t for t in engine.snapshot(step.wf).timers if t.due_at <= self.clock.now()]
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

    def fire_start_timers(self) -> int:
        """Starts an instance for every due timer start event and schedules its next firing."""
        now = self.clock.now()
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
                if rowcount(claimed) != 1:
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
            if incident_id not in step.waits.incidents:
                return step.skip()
            task_id, job_key = step.waits.incidents[incident_id]
            step.resolve_incidents(incident_id=incident_id)
            if job_key:
                job = step.job(job_key)
                task = engine.find_task(step.wf, job.task_id) if job else None
                if job is not None and engine.is_waiting_service_task(task):
                    step.update_job(
                        job_key,
                        status="ACTIVATABLE",
                        attempt=job.attempt + 1,
                        retries=max(retries, 1) - 1,
                        deliveries=1,
                        deadline=step.now + self.job_deadline,
                    )
                    step.waits.jobs.add(job_key)
                    step.history(
                        "job.retried", job.element_id, job.element_name, f"attempt {job.attempt + 1}"
                    )
                    self._republish_job(step, job_key, task)
            elif task_id:
                task = engine.find_task(step.wf, task_id)
                if task is not None and task.state == TaskState.ERROR:
                    step.wf.reset_from_task_id(task.id)
                step.advance()
            else:
                step.advance()

        self.step(incident.instance_id, resolve)
