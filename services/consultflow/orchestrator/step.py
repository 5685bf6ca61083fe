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
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from SpiffWorkflow.bpmn.specs.event_definitions.message import MessageEventDefinition
from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
from SpiffWorkflow.task import Task
from SpiffWorkflow.util.task import TaskState
from sqlalchemy import Connection, Insert, Table, bindparam, delete, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite

from consultflow.orchestrator import assignment, bounded_specs, engine, observability, sizes, state_parts
from consultflow.orchestrator.cycle_rounds import drop_finished_rounds
from consultflow.orchestrator.forms import FormField, due_date
from consultflow.orchestrator.job_messages import publish_job
from consultflow.orchestrator.orm import (
    HISTORY,
    INCIDENTS,
    INSTANCES,
    JOBS,
    MESSAGES,
    SUBSCRIPTIONS,
    TIMERS,
    USER_TASKS,
)
from consultflow.orchestrator.records import (
    ActiveElementView,
    Effects,
    IncidentKind,
    InstanceStatus,
    JobRow,
    JobStatus,
    MessageStatus,
    OpenJob,
    UserTaskStatus,
    Waits,
    correlation,
    job_key,
    task_of,
)
from consultflow.orchestrator.timer_events import ClockedScriptEngine
from consultflow.platform import jsonutil
from consultflow.platform.clock import Clock
from consultflow.platform.db import UnitOfWork
from consultflow.platform.errors import Conflict
from consultflow.platform.limits import DEFAULT_LIMITS, Limits

log = logging.getLogger(__name__)

THROWN_MESSAGE_TTL = timedelta(days=1)
"""How long a message one instance throws waits for a receiver (e.g. the risk process of an engagement)."""
MAX_BUFFERED_DELIVERIES_PER_STEP = 50
MAX_ENGINE_ROUNDS = 5
"""How often the engine is run again after a task failed, so the rest of a parallel flow still advances."""
ENGINE_ERROR = "engine"
"""The key of an error no task owns, among a step's errors by task id."""
CONTINUATION = "continue"
"""The timer row (in place of a task id) of an instance whose engine work continues in a later
transaction: due after `CONTINUATION_PAUSE`, fired by the scheduler's timer loop like any due timer."""
CONTINUATION_PAUSE = timedelta(milliseconds=100)
"""The least time after its yield an instance's engine work continues; it waits at least as long as its
engine just worked. A continuation due at once would starve other writers: SQLite's busy handler polls
a waiting writer only every 100 ms (and gives up after `Limits.db_busy_timeout_ms`), so the pauses must
be longer than that. A long run thus holds the write lock at most about half the time."""


class _Yield(Exception):
    """This transaction's share of engine work is spent: the next task stays READY for a later one."""


class _Halt(Exception):
    """A limit stopped the engine for this instance (an incident says which); nothing continues."""


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
        INSTANCES.c.parts_bytes,
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
        parts_bytes=bindparam("p_parts_bytes"),
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
        MESSAGES.c.status == MessageStatus.PENDING,
        MESSAGES.c.name == bindparam("p_name"),
        MESSAGES.c.correlation_key == bindparam("p_key"),
        MESSAGES.c.expires_at > bindparam("p_now"),
    )
    .order_by(MESSAGES.c.created_at)
    .limit(1)
)


@dataclass(frozen=True)
class StepEnv:
    """What a step needs from the orchestrator that runs it, and nothing more."""

    clock: Clock
    script_engine: ClockedScriptEngine
    job_deadline: timedelta
    """How long a worker has to answer a job before it is delivered again."""
    limits: Limits = DEFAULT_LIMITS


@dataclass
class InstanceRecord:
    """The instance row as a step sees it."""

    instance_id: str
    definition_id: str
    process_id: str
    business_key: str
    status: InstanceStatus
    revision: int
    history_seq: int
    state: str  # the running part; the finished subprocesses it names are apart (state_parts.py)
    waits: Waits
    parts_bytes: int = 0

    @property
    def state_bytes(self) -> int:  # the whole state's: the running part and the parts it names
        return len(self.state) + self.parts_bytes

    @property
    def correlation(self) -> dict[str, str]:
        return correlation(self.instance_id, self.process_id, self.business_key)

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
            status=InstanceStatus(row.status),
            revision=row.revision,
            history_seq=row.history_seq,
            state=row.state,
            waits=Waits.loads(row.waits),
            parts_bytes=row.parts_bytes,
        )


_INSERT_NEW: dict[tuple[str, str], Insert] = {}


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


def rowcount(result: object) -> int:
    """Rows a statement touched (CursorResult.rowcount, which the Result type does not declare)."""
    return int(getattr(result, "rowcount"))  # noqa: B009


class Step:
    """One change to one instance inside one transaction (see the module docstring)."""

    def __init__(self, env: StepEnv, uow: UnitOfWork, record: InstanceRecord, workflow: BpmnWorkflow) -> None:
        self.env = env
        self.uow = uow
        self.session = uow.session
        # Core statements go straight to the connection: the ORM's execution layer costs more than the
        # statements themselves on this hot path.
        self.conn = uow.session.connection()
        self.record = record
        self.waits = record.waits
        self.workflow = workflow
        self.now: datetime = env.clock.now()
        self.status = record.status
        self.effects = Effects(instances={record.instance_id})
        self.new_revision = record.revision
        self._history: list[tuple[str, str, str, str]] = []
        self._errors: dict[str, str] = {}
        self._old_subscriptions = set(record.waits.subscriptions)
        self.skipped = False
        self.continues = False
        """The engine yielded with work left: a continuation row makes the scheduler run it next."""
        self._halted = False
        self._tasks_run = 0
        self._engine_seconds = 0.0
        self._advance_started = 0.0
        self.active: list[ActiveElementView] | None = None
        """Where the instance is once the step is written (GetInstance answers from it, host.py)."""
        observability.step_began(self)  # its span, log fields and metrics (observability.py)

    def skip(self) -> None:
        """Nothing to change (a repeated reply, a claim another step won): write nothing at all."""
        self.skipped = True

    @property
    def instance_id(self) -> str:
        return self.record.instance_id

    # -------------------------------------------------------------------------------------- engine

    def advance(self) -> None:
        """Runs the engine until it waits, or until this transaction's share of engine work is spent
        (`Limits.max_tasks_per_step` tasks or `max_step_engine_ms`): then the next task stays READY and the
        step leaves a continuation row, so the rest runs in later transactions and the write lock is held
        for a bounded time whatever the diagram. Timers are refreshed first so due ones fire in this step."""
        if self.continues or self._halted:
            return
        if self.held_by_size():
            self._halted = True  # another pass would only stop another task with another incident
            return
        self._advance_started = time.perf_counter()
        work_left: bool | None = None  # known after a round without error: every check walks all tasks
        try:
            for _ in range(MAX_ENGINE_ROUNDS):
                work_left = None
                try:
                    self.workflow.refresh_timers()
                    self.workflow.do_engine_steps(
                        will_complete_task=self._before_task, did_complete_task=self._completed
                    )
                    work_left = self._engine_work_left()
                    if not work_left:
                        break
                    # A timer came due during Spiff's closing refresh_timers: its task is READY now.
                except _Yield:
                    self.continues = True
                    break
                except _Halt:
                    self._halted = True
                    break
                except Exception as exc:  # a script, condition or decision failed, or Spiff itself did
                    if not self._failed(exc):
                        break
        finally:
            self._engine_seconds += time.perf_counter() - self._advance_started
        if work_left is None and not self._halted and not self.continues:
            work_left = self._engine_work_left()
        if not self._halted and not self.continues and work_left:
            self.continues = True  # never left READY with nothing to run it: a later step will
        self._route_thrown_events()

    def held_by_size(self) -> bool:
        """Whether `max_instance_tasks` holds the instance: over the limit, with that incident open.

        While held, the engine does not run for it (a timer, a message or a reply would each stop one more
        task with one more incident) and it has no timer or subscription rows (an overdue timer it cannot
        fire would wake the scheduler without pause; a message waits in the buffer instead). Resolving the
        incident runs the engine again; cancelling works whatever its size.
        """
        if bounded_specs.task_count(self.workflow) <= self.env.limits.max_instance_tasks:
            return False
        for task_id, _ in self.waits.incidents.values():
            task = engine.find_task(self.workflow, task_id) if task_id else None
            problem = bounded_specs.limit_problem(task) if task is not None else None
            if (
                task is not None
                and task.state == TaskState.ERROR
                and "limit max_instance_tasks " in (problem or "")
            ):
                return True
        return False

    def _engine_work_left(self) -> bool:
        """Whether a task the engine runs itself is READY (user tasks wait for a person)."""
        return any(not task.task_spec.manual for task in engine.tasks_in(self.workflow, TaskState.READY))

    def _failed(self, exc: Exception) -> bool:
        """Records an engine error for an incident; True when the engine should try the rest again.

        The error belongs to its task when that task can still hold it (in ERROR, resolvable); one Spiff
        raised while preparing a task it then left unfinished (not in ERROR) is put in ERROR here; one with
        no task, or a finished one, becomes an incident on the instance.
        """
        text = engine.error_text(exc)
        task = getattr(exc, "task", None)
        if (
            isinstance(task, Task)
            and task.state != TaskState.ERROR
            and not task.has_state(TaskState.FINISHED_MASK)
        ):
            task.error()
        # The error text may quote the instance's data: it goes to the incident, and to DEBUG.
        log.warning("instance %s: a task failed (%s)", self.instance_id, type(exc).__name__)
        log.debug("instance %s: %s", self.instance_id, text)
        if not isinstance(task, Task) or task.state != TaskState.ERROR:
            self._errors.setdefault(ENGINE_ERROR, text)
            return False
        again = str(task.id) not in self._errors  # the same task failing twice: stop trying this step
        self._errors[str(task.id)] = text
        return again

    def _before_task(self, task: Task) -> None:
        """Called before the engine runs each task: spends this transaction's budget and holds the
        instance to its size (`Limits.max_instance_tasks`) before the task may add to it."""
        limits = self.env.limits
        spent = self._engine_seconds + time.perf_counter() - self._advance_started
        spent_all = self._tasks_run >= limits.max_tasks_per_step or spent * 1000 >= limits.max_step_engine_ms
        if spent_all and self._tasks_run:  # a transaction runs at least one task: every instance progresses
            raise _Yield()
        size = bounded_specs.task_count(self.workflow)
        if size > limits.max_instance_tasks:
            bounded_specs.exceed(
                task, "max_instance_tasks", limits.max_instance_tasks, f"the instance holds {size} tasks"
            )
            raise _Halt()
        self._tasks_run += 1

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
        for event in self.workflow.get_events():
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
                    status=MessageStatus.PENDING,
                    instance_id="",
                    sender_instance_id=self.instance_id,
                    created_at=self.now,
                    expires_at=self.now + THROWN_MESSAGE_TTL,
                )
            )
            self.history("message.thrown", detail=f"{definition.name} [{key}]")
            self.effects.messages_pending = True

    def deliver(self, subscription_id: str, name: str, key: str, variables: Mapping[str, Any]) -> bool:
        """Delivers a message to what a subscription names: a waiting task or an event subprocess trigger."""
        if subscription_id.startswith(engine.TRIGGER_PREFIX):
            return engine.deliver_trigger(self.workflow, subscription_id, key, variables)
        task = engine.find_task(self.workflow, subscription_id)
        if task is None or task.state != TaskState.WAITING:
            return False
        engine.deliver_message(task, name, key, variables)
        return True

    # ------------------------------------------------------------------------------ rows a step reads

    def job(self, key: str) -> JobRow | None:
        """The job's row, if it has one."""
        row = self.conn.execute(select(JOBS).where(JOBS.c.job_key == key)).first()
        return JobRow.from_row(row) if row is not None else None

    def open_job(self, key: str) -> OpenJob | None:
        """An open job as the workflow describes it: what completing or failing it needs, without a read."""
        task_id = task_of(key)
        task = engine.find_task(self.workflow, task_id) if task_id else None
        if task is None or not isinstance(task.task_spec, engine.JobServiceTask):
            return None
        element_id, name, _ = engine.describe(task)
        incident = self.waits.incident_for(job_key=key)
        return OpenJob(
            job_key=key,
            task_id=str(task.id),
            status=JobStatus.INCIDENT if incident else JobStatus.ACTIVATABLE,
            element_id=element_id,
            element_name=name,
            operation=task.task_spec.operation_name,
        )

    def update_job(self, key: str, **values: object) -> None:
        """Changes columns of a job's row (`updated_at` is now unless given)."""
        self.conn.execute(
            update(JOBS).where(JOBS.c.job_key == key).values(**{"updated_at": self.now, **values})
        )

    def close_job(self, key: str, status: JobStatus) -> None:
        """A job that no longer waits for a worker (completed, error thrown, canceled)."""
        self.conn.execute(CLOSE_JOB, {"p_job_key": key, "p_status": status, "p_now": self.now})
        self.waits.jobs.discard(key)
        self.resolve_incidents(job_key=key)

    # ------------------------------------------------------------------------------------ incidents

    def add_incident(self, task: Task | None, kind: IncidentKind, message: str, job: str = "") -> str:
        """Opens an incident on `task` (or on the instance when None); returns its id."""
        element_id, name = ("", "")
        if task is not None:
            element_id, name, _ = engine.describe(task)
        return self.open_incident(
            str(task.id) if task is not None else "", element_id, name, kind, message, job
        )

    def open_incident(
        self, task_id: str, element_id: str, name: str, kind: IncidentKind, message: str, job: str = ""
    ) -> str:
        """Opens an incident on what `task_id` names (a task, an event subprocess trigger, or nothing)."""
        incident_id = str(uuid.uuid4())
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
            {"kind": str(kind), "message": message[:4000], "element_id": element_id, "job_key": job},
            self.record.correlation,
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
                    self.record.correlation,
                )

    # ------------------------------------------------------------------------------------ user tasks

    def close_user_task(self, user_task_id: str, status: UserTaskStatus, completed_by: str = "") -> None:
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
        waiting = engine.snapshot(self.workflow)
        for _ in range(MAX_BUFFERED_DELIVERIES_PER_STEP if not self._halted else 0):
            delivered, tried = self._deliver_buffered(waiting)
            if delivered:
                self.advance()
            if tried:  # even a refused delivery may have changed it (an event subprocess begun)
                waiting = engine.snapshot(self.workflow)
            if not delivered or self.continues or self._halted:
                break  # this transaction's engine work is spent: the dispatcher delivers the rest later
        self._sync_jobs(waiting)
        self._sync_user_tasks(waiting)
        self._sync_incidents(waiting)
        if self._halted or self.held_by_size():  # see held_by_size: no timer or subscription rows
            waiting = replace(waiting, timers=[], messages=[])
        self._sync_timers(waiting)
        self._sync_subscriptions(waiting)
        self._save(waiting)

    def _deliver_buffered(self, waiting_for: engine.Snapshot) -> tuple[bool, bool]:
        """Delivers a buffered message to a subscription that appeared in this step.

        Returns (delivered, tried): whether one was delivered, and whether a delivery was attempted at all.
        """
        tried = False
        for waiting in waiting_for.messages:
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
                .values(status=MessageStatus.CORRELATED, instance_id=self.instance_id)
            )
            self.history(
                "message.correlated",
                waiting.element_id,
                waiting.message_name,
                f"buffered [{waiting.correlation_key}]",
            )
            return True, True
        return False, tried

    def _sync_jobs(self, waiting_for: engine.Snapshot) -> None:
        waiting = {
            job_key(self.instance_id, task_id): open_task
            for task_id, open_task in waiting_for.service_tasks.items()
        }
        for key, open_task in waiting.items():
            if key not in self.waits.jobs and str(open_task.task.id) not in self._errors:
                self._create_job(key, open_task)
        for key in sorted(self.waits.jobs - set(waiting)):
            self.close_job(key, JobStatus.CANCELED)
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
                task,
                IncidentKind.JOB_PARAMETERS,
                f"parameters of {spec.operation_name}: {engine.error_text(exc)}",
            )
            return
        element_id, name, _ = engine.describe(task)
        retries, backoff = spec.retry_policy
        job = JobRow(
            job_key=key,
            task_id=task_id,
            status=JobStatus.ACTIVATABLE,
            element_id=element_id,
            element_name=name,
            operation=spec.operation_name,
            instance_id=self.instance_id,
            attempt=1,
            retries=retries,
            backoff_base=backoff,
            deliveries=1,
            deadline=self.now + self.env.job_deadline,
            activated_at=self.now,
            error_message="",
            created_at=self.now,
            updated_at=self.now,
        )
        if not insert_new(self.conn, JOBS, asdict(job)):
            # The task runs again after a reset (an incident was resolved): its job starts a new attempt.
            previous = self.job(key)
            assert previous is not None
            job = replace(job, attempt=previous.attempt + 1, created_at=previous.created_at)
            values = {k: v for k, v in asdict(job).items() if k not in ("job_key", "updated_at")}
            self.update_job(key, **values)
        self.waits.jobs.add(key)
        publish_job(self.uow, job, parameters, task.data, self.record.process_id, self.record.business_key)
        self.history("job.created", element_id, name, spec.operation_name)

    def _sync_user_tasks(self, waiting_for: engine.Snapshot) -> None:
        for task_id, task in waiting_for.user_tasks.items():
            if task_id in self.waits.user_tasks:
                continue
            if self.waits.incident_for(task_id=task_id) is not None:
                continue  # waits for its incident (e.g. a failed assignee expression) to be resolved
            spec: engine.HumanTask = task.task_spec
            try:
                who = assignment.assign(
                    spec.assignee, spec.candidate_users, task, self.env.script_engine, spec.candidate_groups
                )
            except assignment.AssignmentError as exc:
                self.add_incident(task, IncidentKind.ASSIGNMENT, str(exc))
                continue
            described = user_task_element(task)
            element_id, name = described["element_id"], described["name"]
            values = {
                "user_task_id": task_id,
                "instance_id": self.instance_id,
                "business_key": self.record.business_key,
                **described,
                "assignee": who.assignee,
                "candidate_users": "," + ",".join(who.candidate_users) + "," if who.candidate_users else "",
                "due_at": due_date(spec.due, task, self.env.script_engine, self.now),
                "status": UserTaskStatus.OPEN,
                "created_at": self.now,
                "completed_at": None,
                "completed_by": "",
            }
            if not insert_new(self.conn, USER_TASKS, values):
                self.conn.execute(
                    update(USER_TASKS)
                    .where(USER_TASKS.c.user_task_id == task_id)
                    .values(status=UserTaskStatus.OPEN, completed_at=None)
                )
            self.waits.user_tasks.add(task_id)
            self.history("usertask.created", element_id, name, ",".join(spec.candidate_groups))
            self.uow.emit(
                "usertask.created",
                task_id,
                {"name": name, "element_id": element_id, "candidate_groups": list(spec.candidate_groups)},
                self.record.correlation,
            )
        for task_id in sorted(self.waits.user_tasks - set(waiting_for.user_tasks)):
            self.close_user_task(task_id, UserTaskStatus.CANCELED)
            self.history("usertask.canceled", detail=task_id)

    def _sync_timers(self, waiting_for: engine.Snapshot) -> None:
        timers = list(waiting_for.timers)
        if self.continues:  # the engine yielded: the rest is due at once (see CONTINUATION)
            # From now, not from the step's start (`self.now`): the pause must follow the commit.
            pause = max(CONTINUATION_PAUSE, timedelta(seconds=self._engine_seconds))
            timers.append(engine.WaitingTimer(CONTINUATION, "", self.env.clock.now() + pause))
            self.history("engine.yielded", detail=f"{self._tasks_run} tasks; continues in a later step")
        current = {t.task_id: t.due_at.isoformat() for t in timers}
        if current == self.waits.timers:
            return
        self.conn.execute(DELETE_TIMERS, {"p_instance_id": self.instance_id})
        if timers:
            self.conn.execute(
                INSERT_TIMERS,
                [
                    {
                        "instance_id": self.instance_id,
                        "task_id": t.task_id,
                        "element_id": t.element_id,
                        "due_at": t.due_at,
                    }
                    for t in {t.task_id: t for t in timers}.values()
                ],
            )
        self.waits.timers = current
        self.effects.timers_changed = True

    def _sync_subscriptions(self, waiting_for: engine.Snapshot) -> None:
        current = {(m.task_id, m.message_name, m.correlation_key) for m in waiting_for.messages}
        if current == self.waits.subscriptions:
            return
        self.conn.execute(DELETE_SUBSCRIPTIONS, {"p_instance_id": self.instance_id})
        rows = {}
        for waiting in waiting_for.messages:
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

    def _sync_incidents(self, waiting_for: engine.Snapshot) -> None:
        for task_id, task in waiting_for.errors.items():
            if self.waits.incident_for(task_id=task_id) is None:
                limit = bounded_specs.limit_problem(task)
                message = limit or self._errors.get(task_id, "the task failed")
                kind = IncidentKind.SCRIPT_ERROR if task_id in self._errors else IncidentKind.TASK_ERROR
                self.add_incident(task, IncidentKind.LIMIT_EXCEEDED if limit else kind, message)
        for failure in waiting_for.correlation_failures:
            if self.waits.incident_for(task_id=failure.subscription_id) is None:
                # It would otherwise wait under the key "" and receive messages meant for no one.
                log.warning(
                    "instance %s: %s does not wait for %r: its correlation expression failed",
                    self.instance_id,
                    failure.element_id,
                    failure.message_name,
                )
                log.debug("instance %s: correlation expression failed: %s", self.instance_id, failure.error)
                self.open_incident(
                    failure.subscription_id,
                    failure.element_id,
                    failure.element_id,
                    IncidentKind.CORRELATION_ERROR,
                    f"correlation key of message {failure.message_name!r}: {failure.error}",
                )
        if ENGINE_ERROR in self._errors and self.waits.incident_for(task_id="") is None:
            self.add_incident(None, IncidentKind.ENGINE_ERROR, self._errors[ENGINE_ERROR])

    def _save(self, waiting_for: engine.Snapshot) -> None:
        if self.status == InstanceStatus.ACTIVE and self.workflow.is_completed():
            self._complete_if_ended()
        seq = append_history(self.conn, self.instance_id, self.record.history_seq, self.now, self._history)
        self.active = active_elements(waiting_for.active)
        waiting = sorted({element.name for element in self.active})
        drop_finished_rounds(self.workflow)  # history and rows keep what they did
        dumped = state_parts.dump(self.workflow)
        variables = {k: v for k, v in engine.visible_data(self.workflow).items() if not callable(v)}
        variables_json = jsonutil.dumps(variables)
        # never a giant row
        sizes.check_step(dumped.state, variables_json, variables, self.env.limits, dumped.parts_bytes)
        state_parts.write(self.conn, self.instance_id, dumped)
        result = self.conn.execute(
            SAVE_INSTANCE,
            {
                "p_instance_id": self.instance_id,
                "p_revision": self.record.revision,
                "p_new_revision": self.record.revision + 1,
                "p_state": dumped.state,
                "p_parts_bytes": dumped.parts_bytes,
                "p_variables": variables_json,
                "p_status": self.status,
                "p_waiting_at": jsonutil.dumps(waiting),
                "p_waits": self.waits.dumps(),
                "p_open_incidents": len(self.waits.incidents),
                "p_history_seq": seq,
                "p_updated_at": self.now,
                "p_ended_at": self.now if self.status != InstanceStatus.ACTIVE else None,
            },
        )
        if rowcount(result) != 1:
            raise Conflict(f"instance {self.instance_id} changed concurrently")
        self.new_revision = self.record.revision + 1

    def _complete_if_ended(self) -> None:
        """COMPLETED only when an end event was reached: a workflow Spiff reports complete without one
        (a walk cut short) stays ACTIVE with an incident naming the problem (on the task left open)."""
        problem = bounded_specs.not_ended(self.workflow)
        if problem is None:
            self.status = InstanceStatus.COMPLETED
            self.history("instance.completed")
            self.uow.emit("instance.completed", self.instance_id, self.summary(), self.record.correlation)
            return
        task, reason = problem
        task_id = str(task.id) if task is not None else ""
        if self.waits.incident_for(task_id=task_id) is None:
            log.warning("instance %s: %s", self.instance_id, reason)
            self.add_incident(task, IncidentKind.ENGINE_ERROR, reason)

    def summary(self) -> dict[str, Any]:
        return {
            "instance_id": self.instance_id,
            "process_id": self.record.process_id,
            "definition_id": self.record.definition_id,
            "business_key": self.record.business_key,
            "status": str(self.status),
        }


def active_elements(tasks: Iterable[Task]) -> list[ActiveElementView]:
    """Where an instance is, as GetInstance shows it: its active tasks."""
    views = []
    for task in tasks:
        element_id, name, kind = engine.describe(task)
        state = TaskState.get_name(task.state)
        views.append(ActiveElementView(element_id, name, kind, state, engine.task_process_id(task)))
    return views


def append_history(
    conn: Connection,
    instance_id: str,
    after: int,
    now: datetime,
    entries: Sequence[tuple[str, str, str, str]],
) -> int:
    """Writes (kind, element id, element name, detail) entries after sequence `after` of an instance's
    history; returns the last sequence written (`after` when there is nothing to write)."""
    rows = [
        {
            "instance_id": instance_id,
            "sequence": after + number,
            "time": now,
            "type": kind,
            "element_id": element_id,
            "element_name": name,
            "detail": detail[:2000],
        }
        for number, (kind, element_id, name, detail) in enumerate(entries, start=1)
    ]
    if rows:
        conn.execute(INSERT_HISTORY, rows)
    return after + len(rows)


def user_task_element(task: Task) -> dict[str, Any]:
    """A user task row's columns that its element decides (where it is, what it asks, who may take it):
    written when the task opens, and again when a migration moves an open task to another element."""
    spec: engine.HumanTask = task.task_spec
    element_id, name, _ = engine.describe(task)
    return {
        "process_id": engine.task_process_id(task),
        "element_id": element_id,
        "name": name,
        "documentation": spec.documentation or "",
        "candidate_groups": "," + ",".join(spec.candidate_groups) + "," if spec.candidate_groups else "",
        "form_fields": jsonutil.dumps([_field_json(f) for f in spec.form_fields]),
    }


def _field_json(f: FormField) -> dict[str, Any]:
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
