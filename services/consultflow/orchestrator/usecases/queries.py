"""What clients read: definitions, instances with what they wait for, history, user tasks, incidents."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, and_, bindparam, func, or_, select
from sqlalchemy.orm import Session, defer

from consultflow.orchestrator import engine
from consultflow.orchestrator.host import InstanceHost
from consultflow.orchestrator.job_messages import json_safe
from consultflow.orchestrator.orm import Definition, HistoryEvent, Incident, Instance, JobRecord, UserTask
from consultflow.orchestrator.records import (
    ActiveElementView,
    InstanceStatus,
    JobStatus,
    UserTaskStatus,
    Waits,
    definition_id,
)
from consultflow.orchestrator.step import active_elements
from consultflow.platform import policy
from consultflow.platform.errors import InvalidArgument, NotFound, PermissionDenied
from consultflow.platform.identity import Caller
from consultflow.platform.paging import Page
from consultflow.platform.policy import Role

log = logging.getLogger(__name__)

MAX_HISTORY_PER_READ = 500
MAX_QUERY_CHARACTERS = 255
"""The longest search prefix (a business key or an instance id is shorter)."""


@dataclass(frozen=True)
class InstanceView:
    instance: Instance
    active: list[ActiveElementView]
    jobs: list[JobRecord]
    user_tasks: list[UserTask]
    incidents: list[Incident]
    history: list[HistoryEvent]


def list_definitions(host: InstanceHost, process_id: str = "", latest_only: bool = False) -> list[Definition]:
    with host.db.read() as session:
        if latest_only:
            return latest_definitions(session, process_id)
        query = select(Definition).order_by(Definition.process_id, Definition.version)
        if process_id:
            query = query.where(Definition.process_id == process_id)
        return list(session.scalars(query))


def latest_definitions(session: Session, process_id: str = "") -> list[Definition]:
    """The latest version of each process (of `process_id`, when given), by process id; chosen in SQL, so
    a process with many versions costs one row."""
    newest = select(Definition.process_id, func.max(Definition.version).label("version")).group_by(
        Definition.process_id
    )
    if process_id:
        newest = newest.where(Definition.process_id == process_id)
    latest = newest.subquery()
    return list(
        session.scalars(
            select(Definition)
            .join(
                latest,
                (Definition.process_id == latest.c.process_id) & (Definition.version == latest.c.version),
            )
            .order_by(Definition.process_id)
        )
    )


# GetInstance's statements, built once: the driver and the console poll it, and building a statement
# costs more than SQLAlchemy's compiled cache then saves (docs/performance.md).
OPEN_JOBS = (
    select(JobRecord)
    .where(
        JobRecord.instance_id == bindparam("p_instance_id"),
        JobRecord.status.in_((JobStatus.ACTIVATABLE, JobStatus.INCIDENT)),
    )
    .order_by(JobRecord.created_at)
)
OPEN_USER_TASKS = (
    select(UserTask)
    .where(UserTask.instance_id == bindparam("p_instance_id"), UserTask.status == UserTaskStatus.OPEN)
    .order_by(UserTask.created_at)
)
OPEN_INCIDENTS = (
    select(Incident)
    .where(Incident.instance_id == bindparam("p_instance_id"), Incident.resolved_at.is_(None))
    .order_by(Incident.created_at)
)
HISTORY_AFTER = (
    select(HistoryEvent)
    .where(
        HistoryEvent.instance_id == bindparam("p_instance_id"),
        HistoryEvent.sequence > bindparam("p_after"),
    )
    .order_by(HistoryEvent.sequence)
)


def get_instance(host: InstanceHost, instance_id: str, history_limit: int = 0) -> InstanceView:
    """An instance with its open jobs, user tasks and incidents, its history, and where it is now."""
    with host.db.read() as session:
        # Not its state: the active elements of each revision are kept when its step commits.
        row = session.get(Instance, instance_id, options=[defer(Instance.state)])
        if row is None:
            raise NotFound("instance", instance_id)
        ids = {"p_instance_id": instance_id}
        jobs = list(session.scalars(OPEN_JOBS, ids))
        tasks = list(session.scalars(OPEN_USER_TASKS, ids))
        incidents = list(session.scalars(OPEN_INCIDENTS, ids))
        after = row.history_seq - history_limit if history_limit > 0 else -1
        history = list(session.scalars(HISTORY_AFTER, {**ids, "p_after": after}))
        if row.status != InstanceStatus.ACTIVE:
            return InstanceView(row, [], jobs, tasks, incidents, history)
        kept = host.active_elements(row.instance_id, row.revision)
        if kept is not None:
            return InstanceView(row, kept, jobs, tasks, incidents, history)
        # not kept (another process stepped it, or it was dropped): loaded now, in this transaction
        active: list[ActiveElementView] = []
        size = len(row.state) + row.parts_bytes
        if Waits.loads(row.waits).parked or size > host.limits.max_instance_state_bytes:
            # a parked one may be poison; one over the size limit is not loaded at all
            return InstanceView(row, active, jobs, tasks, incidents, history)
        try:
            workflow = host.workflow_for(
                session.connection(), row.instance_id, row.revision, row.state, row.definition_id
            )
        except Exception as exc:  # its steps fail too, and park it: the rest of the view still answers
            log.warning("instance %s: its workflow does not load (%s)", row.instance_id, type(exc).__name__)
            return InstanceView(row, active, jobs, tasks, incidents, history)
    active = active_elements(engine.snapshot(workflow).active)
    return InstanceView(row, active, jobs, tasks, incidents, history)


def history_after(host: InstanceHost, instance_id: str, after: int) -> tuple[list[HistoryEvent], str]:
    """History events after a sequence number, and the instance's status (for WatchInstance)."""
    with host.db.read() as session:
        row = session.get(Instance, instance_id)
        if row is None:
            raise NotFound("instance", instance_id)
        events = list(
            session.scalars(
                select(HistoryEvent)
                .where(HistoryEvent.instance_id == instance_id, HistoryEvent.sequence > after)
                .order_by(HistoryEvent.sequence)
                .limit(MAX_HISTORY_PER_READ)
            )
        )
        return events, row.status


def list_instances(
    host: InstanceHost,
    process_id: str = "",
    status: str = "",
    business_key: str = "",
    with_incidents: bool = False,
    page_size: int = 50,
    page_token: str = "",
    query: str = "",
    version: int = 0,
    parent_instance_id: str = "",
) -> tuple[list[Instance], str]:
    """A page of instances, newest first. `query` is a prefix of the business key or of the instance id;
    `version` (with `process_id`) one version; `parent_instance_id` the instances that one started."""
    page = Page.of(page_size, page_token)
    where = _instance_filter(
        process_id, status, business_key, with_incidents, query, version, parent_instance_id
    )
    ordered = select(Instance).where(*where).order_by(Instance.created_at.desc(), Instance.instance_id)
    with host.db.read() as session:
        rows = list(session.scalars(ordered.offset(page.offset).limit(page.fetch)))
    return list(page.rows(rows)), page.next_token(rows)


def count_instances(
    host: InstanceHost,
    process_id: str = "",
    status: str = "",
    business_key: str = "",
    with_incidents: bool = False,
    query: str = "",
    version: int = 0,
    parent_instance_id: str = "",
) -> int:
    """How many instances `list_instances` finds over all its pages."""
    where = _instance_filter(
        process_id, status, business_key, with_incidents, query, version, parent_instance_id
    )
    with host.db.read() as session:
        return int(session.scalar(select(func.count()).select_from(Instance).where(*where)) or 0)


def _instance_filter(
    process_id: str,
    status: str,
    business_key: str,
    with_incidents: bool,
    query: str,
    version: int,
    parent_instance_id: str,
) -> list[ColumnElement[bool]]:
    if version < 0:
        raise InvalidArgument("version", "must be 0 (any) or a version number")
    if version and not process_id:
        raise InvalidArgument("version", "needs process_id")
    if len(query) > MAX_QUERY_CHARACTERS:
        raise InvalidArgument("query", f"at most {MAX_QUERY_CHARACTERS} characters")
    where: list[ColumnElement[bool]] = []
    if process_id:
        where.append(Instance.process_id == process_id)
    if version:
        where.append(Instance.definition_id == definition_id(process_id, version))
    if status:
        where.append(Instance.status == status)
    if business_key:
        where.append(Instance.business_key == business_key)
    if with_incidents:
        where.append(Instance.open_incidents > 0)
    if query:
        where.append(
            or_(
                Instance.business_key.startswith(query, autoescape=True),
                Instance.instance_id.startswith(query, autoescape=True),
            )
        )
    if parent_instance_id:
        where.append(Instance.started_by == parent_instance_id)
    return where


def list_user_tasks(
    host: InstanceHost,
    candidate_group: str = "",
    assignee: str = "",
    instance_id: str = "",
    include_closed: bool = False,
    page_size: int = 50,
    page_token: str = "",
    candidate_user: str = "",
    visible_to: Caller | None = None,
    due_first: bool = False,
) -> tuple[list[UserTask], str]:
    """Open (or all) user tasks. `candidate_group` and `candidate_user` together select what either may
    take: a task of the group, one naming the user among its candidate users, or one assigned to the user.
    `visible_to` narrows the list to what that caller may see (staff: their own candidacies). `due_first`
    orders by due date (overdue first), tasks without one last."""
    page = Page.of(page_size, page_token)
    if due_first:  # a due date first, earliest (so overdue) first; then those without one; then oldest
        order = (UserTask.due_at.is_(None), UserTask.due_at, UserTask.created_at, UserTask.user_task_id)
        query = select(UserTask).order_by(*order)
    else:
        query = select(UserTask).order_by(UserTask.created_at, UserTask.user_task_id)
    if not include_closed:
        query = query.where(UserTask.status == UserTaskStatus.OPEN)
    who: list[ColumnElement[bool]] = []
    if candidate_group:
        who.append(UserTask.candidate_groups.contains(f",{candidate_group},", autoescape=True))
    if candidate_user:
        who.append(UserTask.candidate_users.contains(f",{candidate_user},", autoescape=True))
        who.append(UserTask.assignee == candidate_user)
    if who:
        query = query.where(or_(*who))
    if assignee:
        query = query.where(UserTask.assignee == assignee)
    if visible_to is not None and not visible_to.has_role(Role.ADMIN, Role.OPS):
        # the same rule as policy.is_candidate: named users narrow the groups
        own = [UserTask.assignee == visible_to.name]
        own.append(UserTask.candidate_users.contains(f",{visible_to.name},", autoescape=True))
        own += [
            and_(
                UserTask.candidate_users == "", UserTask.candidate_groups.contains(f",{g},", autoescape=True)
            )
            for g in sorted(visible_to.groups)
        ]
        query = query.where(or_(*own))
    if instance_id:
        query = query.where(UserTask.instance_id == instance_id)
    with host.db.read() as session:
        rows = list(session.scalars(query.offset(page.offset).limit(page.fetch)))
    return list(page.rows(rows)), page.next_token(rows)


def get_user_task(
    host: InstanceHost, user_task_id: str, actor: Caller | None = None
) -> tuple[UserTask, dict[str, Any]]:
    """The task and the data it sees; a caller who may not see it is refused (`actor` None: in-process)."""
    if not user_task_id:
        raise InvalidArgument("user_task_id", "is required")
    with host.db.read() as session:
        row = session.get(UserTask, user_task_id)
        instance = session.get(Instance, row.instance_id) if row else None
        if row is None or instance is None:
            raise NotFound("user task", user_task_id)
        if actor is not None and not policy.sees_task(
            actor, row.assignee, row.candidate_groups, row.candidate_users
        ):
            raise PermissionDenied(f"{actor.name} is not a candidate for user task {user_task_id}")
        if row.status != UserTaskStatus.OPEN or instance.status != InstanceStatus.ACTIVE:
            return row, {}
        workflow = host.workflow_for(
            session.connection(),
            instance.instance_id,
            instance.revision,
            instance.state,
            instance.definition_id,
        )
    task = engine.find_task(workflow, user_task_id)
    return row, json_safe(task.data) if task is not None else {}


def list_incidents(
    host: InstanceHost, instance_id: str = "", include_resolved: bool = False, page_size: int = 100
) -> list[Incident]:
    query = select(Incident).order_by(Incident.created_at.desc())
    if instance_id:
        query = query.where(Incident.instance_id == instance_id)
    if not include_resolved:
        query = query.where(Incident.resolved_at.is_(None))
    with host.db.read() as session:
        return list(session.scalars(query.limit(Page.of(page_size, "").size)))
