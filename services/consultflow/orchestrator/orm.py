"""The orchestrator's tables (SQLAlchemy ORM). What is due or waiting is a row with an index, never a scan
of instances. Statuses are the StrEnums of records.py; the Core `Table` handles at the end serve the hot
path, which writes with SQLAlchemy Core statements."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    Float,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from consultflow.platform.slots import keyed_slot


class Base(DeclarativeBase):
    pass


class Resource(Base):
    """A deployed BPMN or DMN file, stored once per content."""

    __tablename__ = "resources"
    content_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(300))
    content: Mapped[bytes] = mapped_column(LargeBinary)
    deployed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Definition(Base):
    """One version of a process: the resources it needs (its own file, what it calls, the decisions)."""

    __tablename__ = "definitions"
    definition_id: Mapped[str] = mapped_column(String(300), primary_key=True)  # "<process_id>:<version>"
    process_id: Mapped[str] = mapped_column(String(255))
    version: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(500))
    content_hash: Mapped[str] = mapped_column(String(64))
    resource_name: Mapped[str] = mapped_column(String(300))
    resources: Mapped[str] = mapped_column(Text)  # JSON {name: content_hash}
    start_messages: Mapped[str] = mapped_column(Text)  # JSON list
    deployment_id: Mapped[str] = mapped_column(String(36))
    deployed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    note: Mapped[str] = mapped_column(Text, default="", server_default="")  # why it was deployed
    deployed_by: Mapped[str] = mapped_column(String(255), default="", server_default="")  # "": at start
    __table_args__ = (
        UniqueConstraint("process_id", "version", name="uq_definitions_version"),
        Index("ix_definitions_hash", "process_id", "content_hash"),
    )


class Instance(Base):
    """A running or finished process instance; `state` is SpiffWorkflow's serialization without the spec
    and without the finished subprocesses it names (their JSON is in `InstancePart`, state_parts.py)."""

    __tablename__ = "instances"
    instance_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    definition_id: Mapped[str] = mapped_column(String(300))
    process_id: Mapped[str] = mapped_column(String(255))
    business_key: Mapped[str | None] = mapped_column(String(255), nullable=True)
    status: Mapped[str] = mapped_column(String(20))  # records.InstanceStatus
    revision: Mapped[int] = mapped_column(BigInteger)
    state: Mapped[str] = mapped_column(Text)
    parts_bytes: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")  # its parts' JSON
    variables: Mapped[str] = mapped_column(Text)  # JSON: what GetInstance shows
    waiting_at: Mapped[str] = mapped_column(Text, default="[]")  # JSON list of element names
    waits: Mapped[str] = mapped_column(Text, default="{}")  # JSON summary of its open rows (step.Waits)
    open_incidents: Mapped[int] = mapped_column(Integer, default=0)
    history_seq: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    # the instance whose thrown message started this one (its message start event); cancelling that
    # instance cancels this one too
    started_by: Mapped[str | None] = mapped_column(String(36), nullable=True, index=True)
    __table_args__ = (
        UniqueConstraint("process_id", "business_key", name="uq_instances_business_key"),
        Index("ix_instances_list", "status", "created_at"),
        Index("ix_instances_process", "process_id", "created_at"),
        # what GetProcessStatistics counts: the running instances of a process (or of one version), with
        # the columns its counts and joins read, so they never read the rows (each carries its state)
        Index(
            "ix_instances_running", "process_id", "status", "instance_id", "definition_id", "open_incidents"
        ),
    )


class InstancePart(Base):
    """A finished subprocess of an instance, as JSON: written once when it ends (again only if a reset or
    a migration changes it), so that a step writes only the running part of the state."""

    __tablename__ = "instance_parts"
    instance_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    part_id: Mapped[str] = mapped_column(String(36), primary_key=True)  # the subprocess's id
    content: Mapped[str] = mapped_column(Text)


class JobRecord(Base):
    """A service task handed to a worker, as stored (the worker's view is `platform.jobs.Job`)."""

    __tablename__ = "jobs"
    job_key: Mapped[str] = mapped_column(String(100), primary_key=True)
    instance_id: Mapped[str] = mapped_column(String(36), index=True)
    task_id: Mapped[str] = mapped_column(String(36))
    element_id: Mapped[str] = mapped_column(String(255))
    element_name: Mapped[str] = mapped_column(String(500))
    operation: Mapped[str] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(20))  # records.JobStatus
    attempt: Mapped[int] = mapped_column(Integer)
    retries: Mapped[int] = mapped_column(Integer)  # attempts left after the current one fails
    backoff_base: Mapped[int] = mapped_column(Integer)  # seconds
    deliveries: Mapped[int] = mapped_column(Integer, default=1)
    deadline: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    activated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))  # the current delivery began
    error_message: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    claim_slot: Mapped[int] = mapped_column(Integer, default=keyed_slot("instance_id"), server_default="0")
    """Which replica scans it (platform/claims.py): every row of one instance shares its slot."""
    __table_args__ = (Index("ix_jobs_due", "status", "deadline"),)


class UserTask(Base):
    """A human task waiting for (or done by) a person."""

    __tablename__ = "user_tasks"
    user_task_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    instance_id: Mapped[str] = mapped_column(String(36), index=True)
    process_id: Mapped[str] = mapped_column(String(255))
    business_key: Mapped[str] = mapped_column(String(255), default="")
    element_id: Mapped[str] = mapped_column(String(255))
    name: Mapped[str] = mapped_column(String(500))
    documentation: Mapped[str] = mapped_column(Text, default="")
    candidate_groups: Mapped[str] = mapped_column(String(500))  # ",group1,group2,"
    assignee: Mapped[str] = mapped_column(String(255), default="")
    candidate_users: Mapped[str] = mapped_column(Text, default="", server_default="")  # ",user1,user2,"
    due_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    form_fields: Mapped[str] = mapped_column(Text)  # JSON
    status: Mapped[str] = mapped_column(String(20))  # records.UserTaskStatus
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    completed_by: Mapped[str] = mapped_column(String(255), default="")
    __table_args__ = (
        Index("ix_user_tasks_open", "status", "created_at"),
        # GetProcessStatistics: the open tasks of running instances, read from the index alone
        Index("ix_user_tasks_by_instance", "instance_id", "status", "element_id"),
    )


class Timer(Base):
    """A timer an instance waits on; the scheduler wakes the instance when `due_at` passes."""

    __tablename__ = "timers"
    instance_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    task_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    element_id: Mapped[str] = mapped_column(String(255))
    due_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    claim_slot: Mapped[int] = mapped_column(Integer, default=keyed_slot("instance_id"), server_default="0")
    """Which replica scans it (platform/claims.py): every row of one instance shares its slot."""


class StartTimer(Base):
    """A timer start event of the latest version of a process: when due, a new instance starts."""

    __tablename__ = "start_timers"
    definition_id: Mapped[str] = mapped_column(String(300), primary_key=True)
    element_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    process_id: Mapped[str] = mapped_column(String(255))
    due_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    interval_seconds: Mapped[float] = mapped_column(Float)
    remaining: Mapped[int] = mapped_column(Integer)  # -1: unbounded
    claim_slot: Mapped[int] = mapped_column(Integer, default=keyed_slot("process_id"), server_default="0")
    """Which replica fires it (platform/claims.py), by process."""


class Subscription(Base):
    """A message an instance waits for, by name and correlation key."""

    __tablename__ = "subscriptions"
    instance_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    # A waiting task's id, or "trigger:<subprocess>" for an event subprocess's message start event.
    task_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    element_id: Mapped[str] = mapped_column(String(255))
    message_name: Mapped[str] = mapped_column(String(255))
    correlation_key: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    __table_args__ = (Index("ix_subscriptions_lookup", "message_name", "correlation_key"),)


class Message(Base):
    """A published message: correlated at once, or buffered until a subscriber appears or its TTL ends."""

    __tablename__ = "messages"
    message_key: Mapped[str] = mapped_column(String(36), primary_key=True)
    message_id: Mapped[str | None] = mapped_column(String(255), nullable=True, unique=True)
    name: Mapped[str] = mapped_column(String(255))
    correlation_key: Mapped[str] = mapped_column(String(255))
    variables: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(20))  # records.MessageStatus
    instance_id: Mapped[str] = mapped_column(String(36), default="")
    sender_instance_id: Mapped[str] = mapped_column(String(36), default="")  # an instance that threw it
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    claim_slot: Mapped[int] = mapped_column(
        Integer, default=keyed_slot("name", "correlation_key"), server_default="0"
    )
    """Which replica delivers it while buffered (platform/claims.py): one key's messages go in order."""
    retry_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    """Set when the instance it would start failed to start: not tried again before (parking.py)."""
    __table_args__ = (Index("ix_messages_pending", "status", "name", "correlation_key"),)


class Incident(Base):
    """Something an instance cannot get past by itself; resolving it retries."""

    __tablename__ = "incidents"
    incident_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    instance_id: Mapped[str] = mapped_column(String(36), index=True)
    process_id: Mapped[str] = mapped_column(String(255))
    task_id: Mapped[str] = mapped_column(String(36))
    element_id: Mapped[str] = mapped_column(String(255))
    kind: Mapped[str] = mapped_column(String(40))  # records.IncidentKind
    message: Mapped[str] = mapped_column(Text)
    job_key: Mapped[str] = mapped_column(String(100), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    __table_args__ = (Index("ix_incidents_open", "resolved_at", "created_at"),)


class HistoryEvent(Base):
    """An instance's timeline, one gap-free sequence per instance."""

    __tablename__ = "history"
    instance_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    sequence: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    time: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    type: Mapped[str] = mapped_column(String(60))
    element_id: Mapped[str] = mapped_column(String(255), default="")
    element_name: Mapped[str] = mapped_column(String(500), default="")
    detail: Mapped[str] = mapped_column(Text, default="")


class AuditEntry(Base):
    """Who changed what, written in the same transaction as the change: claims, completions, starts,
    cancellations, deployments and incident resolutions made by a person or a system over the API."""

    __tablename__ = "audit"
    entry_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    time: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    actor: Mapped[str] = mapped_column(String(255))
    action: Mapped[str] = mapped_column(String(60))
    instance_id: Mapped[str] = mapped_column(String(36), default="")
    business_key: Mapped[str] = mapped_column(String(255), default="")
    target: Mapped[str] = mapped_column(String(255), default="")  # the task, incident or definition acted on
    detail: Mapped[str] = mapped_column(Text, default="")
    __table_args__ = (
        Index("ix_audit_business_key", "business_key", "time"),
        Index("ix_audit_instance", "instance_id", "time"),
        Index("ix_audit_actor", "actor", "time"),
    )


class MigrationBatch(Base):
    """A migration of running instances from one version of a process to another (usecases/
    migration_batches.py): the plan and selection as asked, and counters kept with each item's change."""

    __tablename__ = "migration_batches"
    batch_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    process_id: Mapped[str] = mapped_column(String(255))
    source_definition_id: Mapped[str] = mapped_column(String(300))
    target_definition_id: Mapped[str] = mapped_column(String(300))
    plan: Mapped[str] = mapped_column(Text)  # JSON (usecases/migrations.MigrationPlan.to_json)
    selection: Mapped[str] = mapped_column(Text)  # JSON (usecases/migration_batches.Selection)
    reason: Mapped[str] = mapped_column(Text)
    skip_refused: Mapped[bool] = mapped_column(Boolean, default=False)
    created_by: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    state: Mapped[str] = mapped_column(String(20))  # records.MigrationState
    total: Mapped[int] = mapped_column(Integer, default=0)
    migrated: Mapped[int] = mapped_column(Integer, default=0)
    skipped: Mapped[int] = mapped_column(Integer, default=0)
    failed: Mapped[int] = mapped_column(Integer, default=0)
    __table_args__ = (
        Index("ix_migration_batches_state", "state", "created_at"),
        Index("ix_migration_batches_process", "process_id", "created_at"),
    )


class MigrationItem(Base):
    """One instance of a batch; its state changes in the same transaction as the instance it names, so an
    item is MIGRATED exactly when its instance moved."""

    __tablename__ = "migration_items"
    batch_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    instance_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    position: Mapped[int] = mapped_column(Integer)  # the order the batch takes them in
    business_key: Mapped[str] = mapped_column(String(255), default="")
    state: Mapped[str] = mapped_column(String(20))  # records.MigrationItemState
    message: Mapped[str] = mapped_column(Text, default="")
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    __table_args__ = (Index("ix_migration_items_pending", "batch_id", "state", "position"),)


def _table(model: type[Base]) -> Table:
    table = model.__table__
    assert isinstance(table, Table)
    return table


INSTANCES = _table(Instance)
INSTANCE_PARTS = _table(InstancePart)
JOBS = _table(JobRecord)
USER_TASKS = _table(UserTask)
TIMERS = _table(Timer)
SUBSCRIPTIONS = _table(Subscription)
INCIDENTS = _table(Incident)
HISTORY = _table(HistoryEvent)
MESSAGES = _table(Message)
MIGRATION_BATCHES = _table(MigrationBatch)
MIGRATION_ITEMS = _table(MigrationItem)
