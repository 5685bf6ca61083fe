"""Runs durable steps on instances: the per-instance locks, the live-workflow cache, the parsed specs of each
process version, and the listeners told about every committed step.

Every change to an instance is one `Step` (see step.py): lock the instance, load its workflow (from a
bounded in-memory cache, else from its stored state), apply the change, let the engine run, write
everything in one transaction. A crash at any point leaves either the old state with none of its effects
or the new state with all of them. The use cases (usecases/) are functions of an `InstanceHost`.
"""

from __future__ import annotations

import json
import logging
import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any, Generic, NamedTuple, TypeVar

from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
from sqlalchemy import Connection, insert
from sqlalchemy.exc import IntegrityError

from consultflow.orchestrator import deep_walks, engine, parking, state_parts
from consultflow.orchestrator.observability import observed_step
from consultflow.orchestrator.orm import INSTANCES, Definition, Resource
from consultflow.orchestrator.parking import Parked
from consultflow.orchestrator.records import ActiveElementView, Effects, IncidentKind, InstanceStatus, Waits
from consultflow.orchestrator.sizes import StateTooLarge
from consultflow.orchestrator.step import InstanceRecord, Step, StepEnv
from consultflow.orchestrator.timer_events import ClockedScriptEngine
from consultflow.platform.clock import WALL_CLOCK, Clock
from consultflow.platform.db import Database, UnitOfWork
from consultflow.platform.errors import Conflict, FailedPrecondition, NotFound, ResourceExhausted
from consultflow.platform.faults import crash_point
from consultflow.platform.limits import DEFAULT_LIMITS, Limits
from consultflow.platform.security import operation_owners as parse_operation_owners

log = logging.getLogger(__name__)

T = TypeVar("T")
V = TypeVar("V")

MAX_STEP_RETRIES = 5
INSTANCE_LOCKS = 256
"""Striped locks: steps of one instance in this process take turns; the database guards across processes."""


class DefinitionRef(NamedTuple):
    """What starting an instance needs to know of its definition."""

    definition_id: str
    process_id: str


class InstanceCache(Generic[V]):
    """Live workflows (or what else is kept of an instance) by instance id, least recently used dropped
    first; keyed by revision."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._items: OrderedDict[str, tuple[int, V]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, instance_id: str, revision: int) -> V | None:
        with self._lock:
            item = self._items.get(instance_id)
            if item is None or item[0] != revision:
                return None
            self._items.move_to_end(instance_id)
            return item[1]

    def put(self, instance_id: str, revision: int, workflow: V) -> None:
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


class InstanceHost:
    """Owns what every use case shares; its methods are blocking (the gRPC servicer runs them on threads)."""

    def __init__(
        self,
        db: Database,
        uow_factory: Callable[[], UnitOfWork],
        *,
        time_scale: float = 1.0,
        limits: Limits = DEFAULT_LIMITS,
        job_timeout: timedelta = timedelta(seconds=60),
        cache_size: int = 1000,
        timer_overrides: Mapping[str, str] | None = None,
        clock: Clock = WALL_CLOCK,
        operation_owners: Mapping[str, tuple[str, ...]] | None = None,
    ) -> None:
        self.db = db
        self.limits = limits
        # who may finish which operations' jobs over gRPC (platform/security.py, CONSULTFLOW_OPERATION_OWNERS)
        self.operation_owners = dict(operation_owners or parse_operation_owners(""))
        self.uow_factory = uow_factory
        self.clock = clock
        deep_walks.install(limits.max_path_length)
        self.script_engine = ClockedScriptEngine(limits, time_scale, timer_overrides, clock)
        self.time_scale = time_scale
        self.job_timeout = job_timeout
        self.job_deadline = job_timeout * 3
        self.env = StepEnv(
            clock=clock, script_engine=self.script_engine, job_deadline=self.job_deadline, limits=limits
        )
        self._cache: InstanceCache[BpmnWorkflow] = InstanceCache(cache_size)
        self._active: InstanceCache[list[ActiveElementView]] = InstanceCache(cache_size)
        """Where each instance is at its latest revision written here: GetInstance reads no workflow."""
        self._specs: dict[str, engine.ProcessSpecs] = {}
        self._specs_lock = threading.Lock()
        self._locks = [threading.RLock() for _ in range(INSTANCE_LOCKS)]
        self._listeners: list[Callable[[Effects], None]] = []
        self.message_cursor: tuple[datetime, str] | None = None
        """Where the last round of buffered-message delivery stopped (usecases/messages.py)."""
        self.repository_hashes: dict[str, str] = {}
        """Process id → content hash of its files in the repository folder (bpmn/), as read at start: a
        latest version with another hash differs from the repository (usecases/deployments.py)."""

    def add_listener(self, listener: Callable[[Effects], None]) -> None:
        """Called after every committed step (wakes watchers, the scheduler and the dispatcher)."""
        self._listeners.append(listener)

    @property
    def cached_instances(self) -> int:
        return len(self._cache)

    # ------------------------------------------------------------------------------------------ specs

    def remember_specs(self, definition_id: str, specs: engine.ProcessSpecs) -> None:
        with self._specs_lock:
            self._specs[definition_id] = specs

    def specs_for(self, definition_id: str) -> engine.ProcessSpecs:
        """Parsed specs of a version, cached; parsed from the stored resources on first use."""
        with self._specs_lock:
            cached = self._specs.get(definition_id)
        if cached is not None:
            return cached
        with self.db.read() as session:
            definition = session.get(Definition, definition_id)
            if definition is None:
                raise NotFound("definition", definition_id)
            hashes: dict[str, str] = json.loads(definition.resources)
            resources: dict[str, bytes] = {}
            for name, content_hash in hashes.items():
                resource = session.get(Resource, content_hash)
                if resource is None:
                    raise NotFound("resource", f"{name} ({content_hash}) of {definition_id}")
                resources[name] = resource.content
        specs = engine.parse_resources(resources, checks=None)[definition.process_id]
        self.remember_specs(definition_id, specs)
        return specs

    def workflow_for(
        self, conn: Connection, instance_id: str, revision: int, state: str, definition_id: str
    ) -> BpmnWorkflow:
        """The live workflow of an instance at `revision`: cached, else loaded from its state and the parts
        it names (read on `conn`, the transaction that read `state`)."""
        cached = self._cache.get(instance_id, revision)
        if cached is not None:
            return cached
        specs = self.specs_for(definition_id)
        return state_parts.load_stored(conn, instance_id, state, specs, self.script_engine)

    def active_elements(self, instance_id: str, revision: int) -> list[ActiveElementView] | None:
        """Where an instance is at `revision`, if a step of this process wrote that revision."""
        return self._active.get(instance_id, revision)

    def _committed(self, instance_id: str, step: Step) -> None:
        self._cache.put(instance_id, step.new_revision, step.workflow)
        if step.active is not None:
            self._active.put(instance_id, step.new_revision, step.active)

    # ------------------------------------------------------------------------------------------ steps

    @contextmanager
    def _lock(self, instance_id: str) -> Iterator[None]:
        lock = self._locks[hash(instance_id) % len(self._locks)]
        with lock:
            yield

    @observed_step
    def step(self, instance_id: str, action: Callable[[Step], T], *, even_if_parked: bool = False) -> T:
        """Applies `action` to an instance as one durable step; retried on a concurrent change.

        An engine error (not a refused request) is counted durably and parks the instance when it keeps
        failing (parking.py); a parked instance refuses steps (`Parked`) unless `even_if_parked` (resolving
        its incident, cancelling it).
        """
        for attempt in range(MAX_STEP_RETRIES):
            with self._lock(instance_id):
                try:
                    with self.uow_factory() as uow:
                        # FOR UPDATE: another orchestrator's step on this instance waits for ours
                        # (PostgreSQL); SQLite's BEGIN IMMEDIATE already serializes writers.
                        record = InstanceRecord.load(uow.session.connection(), instance_id)
                        if record is None:
                            raise NotFound("instance", instance_id)
                        if record.waits.parked and not even_if_parked:
                            raise Parked(instance_id, record.waits.parked)
                        workflow = self._workflow_of(record, uow.session.connection())
                        step = Step(self.env, uow, record, workflow)
                        result = action(step)
                        if step.skipped:
                            self._cache.drop(instance_id)  # the action may have touched the live workflow
                            return result
                        step.waits.failures = 0  # it succeeds: saved with the row, no statement of its own
                        step.finish()
                        crash_point("orchestrator.step.before_commit")
                        uow.commit()
                    crash_point("orchestrator.step.after_commit")
                    self._committed(instance_id, step)
                except (Conflict, IntegrityError) as error:
                    self._cache.drop(instance_id)
                    if attempt == MAX_STEP_RETRIES - 1:
                        raise Conflict(f"instance {instance_id} kept changing concurrently") from error
                    continue
                except StateTooLarge as error:
                    self._cache.drop(instance_id)
                    failure = self._count_failure(instance_id, IncidentKind.STATE_TOO_LARGE, error.message)
                    if failure is None or not failure.incident_id:
                        raise
                    raise ResourceExhausted(
                        f"instance {instance_id}: {error.message}; the step was not written and the instance "
                        f"is parked (incident {failure.incident_id})"
                    ) from error
                except BaseException as error:
                    self._cache.drop(instance_id)
                    if not parking.counts_as_failure(error):
                        raise
                    failure = self._count_failure(
                        instance_id, IncidentKind.STEP_FAILED, engine.error_text(error)
                    )
                    if failure is None or not failure.incident_id:
                        raise  # the caller sees the engine's error; the next attempt may park it
                    detail = f"{failure.failures} steps failed in a row, the last with {type(error).__name__}"
                    raise Parked(instance_id, failure.incident_id, detail) from error
            self.notify(step.effects)
            return result
        raise Conflict(f"instance {instance_id} kept changing concurrently")

    def _workflow_of(self, record: InstanceRecord, conn: Connection) -> BpmnWorkflow:
        """The live workflow of the instance a step loaded; a stored state over the size limit (stored
        before the limit, or the limit lowered since) is not loaded at all."""
        limit = self.limits.max_instance_state_bytes
        if record.state_bytes > limit:
            raise StateTooLarge("max_instance_state_bytes", limit, record.state_bytes, "the stored state")
        try:
            return self.workflow_for(
                conn, record.instance_id, record.revision, record.state, record.definition_id
            )
        except Exception as error:
            if record.status != InstanceStatus.ACTIVE:
                # A late reply to an instance that ended (cancelled without the engine, perhaps because
                # its state does not load): nothing would change, so the request is refused, not failed.
                status = record.status.lower()
                raise FailedPrecondition(f"instance {record.instance_id} is {status}") from error
            raise parking.LoadFailed(f"its workflow does not load: {engine.error_text(error)}") from error

    def _count_failure(self, instance_id: str, kind: IncidentKind, reason: str) -> parking.Failure | None:
        """Counts a failed step in a transaction of its own (the step's own was rolled back)."""
        try:
            with self.uow_factory() as uow:
                failure = parking.record_failure(
                    uow, instance_id, self.clock.now(), self.limits, kind, reason
                )
                uow.commit()
        except Exception:
            log.exception("instance %s: counting its failed step failed", instance_id)
            return None
        if failure is not None:
            log.warning(
                "instance %s: step failed (%d in a row)%s",
                instance_id,
                failure.failures,
                f"; parked with incident {failure.incident_id}" if failure.newly_parked else "",
            )
            if failure.newly_parked:
                self.notify(Effects(instances={instance_id}))
        return failure

    @contextmanager
    def without_engine(self, instance_id: str) -> Iterator[UnitOfWork]:
        """A change to an instance's rows that bypasses its workflow (cancelling one the engine cannot
        load or step): under the instance's lock, with its cached workflow dropped."""
        with self._lock(instance_id):
            self._cache.drop(instance_id)
            self._active.drop(instance_id)
            try:
                with self.uow_factory() as uow:
                    yield uow
            finally:
                self._cache.drop(instance_id)
                self._active.drop(instance_id)

    @observed_step
    def start(
        self,
        definition: DefinitionRef,
        variables: Mapping[str, Any],
        business_key: str,
        first_action: Callable[[Step], None] | None = None,
        start: engine.StartChoice = engine.plain_start,
        started_by: str = "",
    ) -> str:
        """Creates an instance and runs it until it waits (then `first_action`), all in one transaction.

        `start` chooses the start events it starts through (see `engine.choose_start`): the none start
        for CreateInstance, the message's or the timer's start event for `first_action` to trigger.
        `started_by`: the instance whose thrown message starts this one (cancelling it cancels this one).
        """
        specs = self.specs_for(definition.definition_id)
        instance_id = str(uuid.uuid4())
        workflow = engine.new_workflow(specs, self.script_engine, variables)
        engine.choose_start(workflow, start)
        now = self.clock.now()
        with self._lock(instance_id), self.uow_factory() as uow:
            uow.session.connection().execute(
                insert(INSTANCES).values(
                    instance_id=instance_id,
                    definition_id=definition.definition_id,
                    process_id=definition.process_id,
                    business_key=business_key or None,
                    status=InstanceStatus.ACTIVE,
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
                    started_by=started_by or None,
                )
            )
            record = InstanceRecord(
                instance_id,
                definition.definition_id,
                definition.process_id,
                business_key,
                InstanceStatus.ACTIVE,
                0,
                0,
                "",
                Waits(),
            )
            step = Step(self.env, uow, record, workflow)
            step.history("instance.created", detail=definition.definition_id)
            uow.emit("instance.created", instance_id, step.summary(), record.correlation)
            step.advance()
            if first_action is not None:
                first_action(step)
            step.finish()
            uow.commit()
            self._committed(instance_id, step)
        self.notify(step.effects)
        return instance_id

    def notify(self, effects: Effects) -> None:
        """Tells the listeners what a committed change should wake; a failing listener is logged."""
        for listener in self._listeners:
            try:
                listener(effects)
            except Exception:
                log.exception("listener failed")
