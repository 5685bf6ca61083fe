"""Migration batches: many running instances moved from one process version to another, checked first,
then one instance per transaction, resumable after a crash and never twice.

The per-instance rules (what a plan means for one instance, and the move itself) are in migrations.py;
this module selects the instances, refuses or records what cannot move, keeps the batch's items and
counters, and runs the pending items.

Exactly once: an item's state changes in the transaction that moves its instance (`migrate_instance`'s
`alongside`), always guarded by "still PENDING". A crash before that commit leaves the instance untouched
and the item PENDING, so the batch takes it again after a restart; a second runner that reaches an item
the first already moved changes no row (the guard) and rolls its step back.

Where it runs: `run_batches`, called by the orchestrator's migration loop (scheduler.py) in the replica
owning claim partition 0, like the other periodic clean-ups (platform/claims.py). A lease that moves
mid-item only means two runners for a moment; the guard keeps that harmless.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import exists, select, update
from sqlalchemy.engine import Connection

from consultflow.orchestrator.host import InstanceHost
from consultflow.orchestrator.orm import (
    MIGRATION_BATCHES,
    MIGRATION_ITEMS,
    Instance,
    JobRecord,
    MigrationBatch,
    MigrationItem,
    Subscription,
    Timer,
    UserTask,
)
from consultflow.orchestrator.records import (
    InstanceStatus,
    JobStatus,
    MigrationItemState,
    MigrationState,
    UserTaskStatus,
)
from consultflow.orchestrator.step import Step
from consultflow.orchestrator.usecases import audit
from consultflow.orchestrator.usecases.migrations import (
    InstanceCheck,
    MigrationPlan,
    MigrationProblem,
    check_instance,
    check_reason,
    migrate_instance,
    plan_problems,
)
from consultflow.platform.errors import DomainError, FailedPrecondition, InvalidArgument, NotFound
from consultflow.platform.faults import crash_point
from consultflow.platform.identity import Caller
from consultflow.platform.paging import Page

log = logging.getLogger(__name__)

PLAN_PAGE_SIZE = 100
"""Instances checked per PlanMigration answer unless asked otherwise (at most paging.MAX_PAGE_SIZE)."""
ITEMS_PER_ROUND = 50
"""Items one call of `run_batches` takes before returning, so its loop re-checks its lease."""
MAX_SELECTED_IDS = 10_000


@dataclass(frozen=True)
class Selection:
    """Which running instances of the plan's source version a batch takes (all of them when empty)."""

    instance_ids: tuple[str, ...] = ()
    business_key: str = ""
    waiting_at_element_id: str = ""
    with_incidents: bool = False

    def to_json(self) -> str:
        return json.dumps(
            {
                "instance_ids": list(self.instance_ids),
                "business_key": self.business_key,
                "waiting_at_element_id": self.waiting_at_element_id,
                "with_incidents": self.with_incidents,
            },
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, text: str) -> Selection:
        data: dict[str, Any] = json.loads(text or "{}")
        return cls(
            instance_ids=tuple(data.get("instance_ids", ())),
            business_key=str(data.get("business_key", "")),
            waiting_at_element_id=str(data.get("waiting_at_element_id", "")),
            with_incidents=bool(data.get("with_incidents", False)),
        )


@dataclass(frozen=True)
class Selected:
    """What a selection takes: the running instances of the source version (id, business key), oldest
    first, and the named instances it cannot take (not of the source version, ended, unknown)."""

    instances: list[tuple[str, str]]
    foreign: list[MigrationProblem]


@dataclass(frozen=True)
class PlanResult:
    """A dry run: the plan's own problems (and named instances it cannot take), and a page of checks."""

    plan_problems: list[MigrationProblem]
    checks: list[InstanceCheck]
    selected: int
    next_page_token: str


@dataclass(frozen=True)
class BatchView:
    """A batch with its items (GetMigration)."""

    batch: MigrationBatch
    items: list[MigrationItem] = field(default_factory=list)


def _source(plan: MigrationPlan) -> tuple[str, str]:
    """The plan's source definition id and its process id."""
    source: str = plan.source_definition_id
    return source, source.rsplit(":", 1)[0]


def _waiting_at(element_id: str) -> Any:
    """SQL: the instance holds an open row (job, user task, timer, subscription) at `element_id`."""
    iid = Instance.instance_id
    return (
        exists()
        .where(
            JobRecord.instance_id == iid,
            JobRecord.element_id == element_id,
            JobRecord.status.in_([JobStatus.ACTIVATABLE, JobStatus.INCIDENT]),
        )
        .correlate(Instance)
        | exists()
        .where(
            UserTask.instance_id == iid,
            UserTask.element_id == element_id,
            UserTask.status == UserTaskStatus.OPEN,
        )
        .correlate(Instance)
        | exists().where(Timer.instance_id == iid, Timer.element_id == element_id).correlate(Instance)
        | exists()
        .where(Subscription.instance_id == iid, Subscription.element_id == element_id)
        .correlate(Instance)
    )


def select_instances(host: InstanceHost, plan: MigrationPlan, selection: Selection) -> Selected:
    """The running instances of the plan's source version the selection takes. Named instances it cannot
    take are reported as problems, never dropped silently. Waiting at an element: an open job, user task,
    timer or subscription there, or the element among the names the instance waits at."""
    source, process_id = _source(plan)
    if len(selection.instance_ids) > MAX_SELECTED_IDS:
        raise InvalidArgument("selection.instance_ids", f"at most {MAX_SELECTED_IDS} ids")
    query = select(Instance.instance_id, Instance.business_key, Instance.waiting_at).where(
        Instance.process_id == process_id,
        Instance.definition_id == source,
        Instance.status == InstanceStatus.ACTIVE,
    )
    if selection.instance_ids:
        query = query.where(Instance.instance_id.in_(sorted(set(selection.instance_ids))))
    if selection.business_key:
        query = query.where(Instance.business_key == selection.business_key)
    if selection.with_incidents:
        query = query.where(Instance.open_incidents > 0)
    element = selection.waiting_at_element_id
    with host.db.read() as session:
        rows = list(session.execute(query.order_by(Instance.created_at, Instance.instance_id)))
        waiting: set[str] = set()
        if element:
            at = query.where(_waiting_at(element)).with_only_columns(Instance.instance_id)
            waiting = set(session.scalars(at))
        taken = [
            (row.instance_id, row.business_key or "")
            for row in rows
            if not element or row.instance_id in waiting or element in json.loads(row.waiting_at or "[]")
        ]
        foreign: list[MigrationProblem] = []
        found = {row.instance_id for row in rows}
        for instance_id in dict.fromkeys(selection.instance_ids):
            if instance_id in found:
                continue
            instance = session.get(Instance, instance_id)
            if instance is None:
                why = "no such instance"
            elif instance.definition_id != source:
                why = f"runs {instance.definition_id}, not the plan's source {source}"
            elif instance.status != InstanceStatus.ACTIVE:
                why = f"is {instance.status.lower()}"
            else:
                continue  # running the source but left out by the other filters
            foreign.append(
                MigrationProblem(instance_id=instance_id, process_id=process_id, element_id="", message=why)
            )
    return Selected(taken, foreign)


def plan_migration(
    host: InstanceHost, plan: MigrationPlan, selection: Selection, page_size: int = 0, page_token: str = ""
) -> PlanResult:
    """The dry run: the plan's problems and, when it has none, what would happen to each selected instance
    of this page. Changes nothing."""
    page = Page.of(page_size or PLAN_PAGE_SIZE, page_token)
    own = plan_problems(host, plan)
    selected = select_instances(host, plan, selection)
    fetched = selected.instances[page.offset : page.offset + page.fetch]
    checks = [] if own else [check_instance(host, plan, i, plan_checked=True) for i, _ in page.rows(fetched)]
    return PlanResult(own + selected.foreign, checks, len(selected.instances), page.next_token(fetched))


def _first_problem(check: InstanceCheck) -> tuple[str, str]:
    """Where and why the plan does not apply to an instance (its first problem)."""
    problems: Sequence[MigrationProblem] = check.problems
    if not problems:
        return "", "the plan does not apply"
    return problems[0].element_id, problems[0].message


def _item_message(element_id: str, message: str) -> str:
    return f"{element_id}: {message}" if element_id else message


def start_migration(
    host: InstanceHost,
    plan: MigrationPlan,
    selection: Selection,
    reason: str,
    skip_refused: bool,
    actor: Caller | None,
) -> MigrationBatch:
    """Checks every selected instance, then writes the batch and all its items in one transaction; the
    runner moves them. Refused as a whole when the plan cannot apply to some instance, unless
    `skip_refused`: then those items are SKIPPED with the reason and the rest migrate."""
    check_reason(reason)  # before anything is written: every item would fail on it
    source, process_id = _source(plan)
    own = plan_problems(host, plan)
    if own:
        first = own[0]
        where = f" at {first.element_id}" if first.element_id else ""
        more = f" (and {len(own) - 1} more problems)" if len(own) > 1 else ""
        raise FailedPrecondition(f"the plan cannot apply{where}: {first.message}{more}")
    selected = select_instances(host, plan, selection)
    if not selected.instances and not selected.foreign:
        raise FailedPrecondition(f"the selection takes no running instance of {source}")
    refused: dict[str, tuple[str, str]] = {p.instance_id: ("", p.message) for p in selected.foreign}
    keys: dict[str, str] = {p.instance_id: "" for p in selected.foreign}
    for instance_id, business_key in selected.instances:
        keys[instance_id] = business_key
        check = check_instance(host, plan, instance_id, plan_checked=True)
        if not check.applicable:
            refused[instance_id] = _first_problem(check)
    if refused and not skip_refused:
        instance_id, (element_id, why) = next(iter(refused.items()))
        where = f" at {element_id}" if element_id else ""
        more = f" (and to {len(refused) - 1} more of {len(keys)} instances)" if len(refused) > 1 else ""
        raise FailedPrecondition(
            f"the plan cannot apply to instance {instance_id}{where}: {why}{more}; nothing was migrated "
            "(skip_refused migrates the others)"
        )
    batch_id = str(uuid.uuid4())
    now = host.clock.now()
    order = [p.instance_id for p in selected.foreign] + [i for i, _ in selected.instances]
    with host.uow_factory() as uow:
        batch = MigrationBatch(
            batch_id=batch_id,
            process_id=process_id,
            source_definition_id=source,
            target_definition_id=plan.target_definition_id,
            plan=plan.to_json(),
            selection=selection.to_json(),
            reason=reason,
            skip_refused=skip_refused,
            created_by=actor.name if actor is not None else "system",
            created_at=now,
            ended_at=None,
            state=MigrationState.RUNNING,
            total=len(order),
            migrated=0,
            skipped=len(refused),
            failed=0,
        )
        uow.session.add(batch)
        uow.session.add_all(
            MigrationItem(
                batch_id=batch_id,
                instance_id=instance_id,
                position=position,
                business_key=keys[instance_id],
                state=MigrationItemState.SKIPPED if instance_id in refused else MigrationItemState.PENDING,
                message=_item_message(*refused.get(instance_id, ("", "")))[:2000],
                updated_at=now,
            )
            for position, instance_id in enumerate(order)
        )
        detail = f"{source} → {plan.target_definition_id}: {len(order)} instances"
        if refused:
            detail += f", {len(refused)} skipped"
        audit.record(
            uow.session,
            actor,
            audit.Change("migration.started", target=batch_id, detail=f"{detail}; {reason}"),
            now,
        )
        uow.session.flush()
        uow.session.expunge(batch)
        uow.commit()
    log.info("migration %s started: %s", batch_id, detail)
    return batch


class _AlreadySettled(FailedPrecondition):
    """Raised inside a step whose item another runner settled first: rolls the move back (a domain
    error, so the step does not count it as an engine failure)."""

    def __init__(self) -> None:
        super().__init__("the item was settled by another runner")


def _settle(
    conn: Connection,
    batch_id: str,
    instance_id: str,
    state: MigrationItemState,
    message: str,
    now: datetime,
) -> bool:
    """Moves a PENDING item to `state` and counts it; False when it was no longer pending."""
    changed = conn.execute(
        update(MIGRATION_ITEMS)
        .where(
            MIGRATION_ITEMS.c.batch_id == batch_id,
            MIGRATION_ITEMS.c.instance_id == instance_id,
            MIGRATION_ITEMS.c.state == MigrationItemState.PENDING,
        )
        .values(state=state, message=message[:2000], updated_at=now)
    ).rowcount
    if not changed:
        return False
    counter = {
        MigrationItemState.MIGRATED: MIGRATION_BATCHES.c.migrated,
        MigrationItemState.SKIPPED: MIGRATION_BATCHES.c.skipped,
        MigrationItemState.FAILED: MIGRATION_BATCHES.c.failed,
    }[state]
    conn.execute(
        update(MIGRATION_BATCHES)
        .where(MIGRATION_BATCHES.c.batch_id == batch_id)
        .values({counter.name: counter + 1})
    )
    return True


def migrate_item(host: InstanceHost, batch: MigrationBatch, instance_id: str, actor: Caller | None) -> str:
    """Moves one pending item's instance, or records why not; returns the item's new state (or "" when
    another runner had settled it)."""
    plan = MigrationPlan.from_json(batch.plan)
    with host.db.read() as session:
        instance = session.get(Instance, instance_id)
        status = instance.status if instance is not None else ""
        on = instance.definition_id if instance is not None else ""
    if instance is None or status != InstanceStatus.ACTIVE:
        why = "the instance no longer exists" if instance is None else f"the instance is {status.lower()}"
        return _settle_alone(host, batch.batch_id, instance_id, MigrationItemState.SKIPPED, why)
    if on != batch.source_definition_id:
        why = f"the instance runs {on} now, not {batch.source_definition_id}"
        state = MigrationItemState.SKIPPED if on == batch.target_definition_id else MigrationItemState.FAILED
        return _settle_alone(host, batch.batch_id, instance_id, state, why)

    def alongside(step: Step) -> None:
        if not _settle(step.conn, batch.batch_id, instance_id, MigrationItemState.MIGRATED, "", step.now):
            raise _AlreadySettled()
        crash_point("orchestrator.migration.item_before_commit")  # moved and marked, not yet committed

    try:
        check = migrate_instance(host, plan, instance_id, actor, batch.reason, alongside=alongside)
    except _AlreadySettled:
        return ""
    except DomainError as error:
        return _settle_alone(host, batch.batch_id, instance_id, MigrationItemState.FAILED, error.message)
    if not check.applicable:
        why = _item_message(*_first_problem(check))
        return _settle_alone(host, batch.batch_id, instance_id, MigrationItemState.FAILED, why)
    return MigrationItemState.MIGRATED


def _settle_alone(
    host: InstanceHost, batch_id: str, instance_id: str, state: MigrationItemState, message: str
) -> str:
    """An item that did not move, settled in a transaction of its own."""
    with host.uow_factory() as uow:
        conn = uow.session.connection()
        settled = _settle(conn, batch_id, instance_id, state, message, host.clock.now())
        uow.commit()
    return state if settled else ""


def _complete_if_done(host: InstanceHost, batch_id: str) -> bool:
    """Marks a batch COMPLETED (with the audit entry) when none of its items is pending."""
    with host.uow_factory() as uow:
        conn = uow.session.connection()
        pending = conn.execute(
            select(MIGRATION_ITEMS.c.instance_id)
            .where(
                MIGRATION_ITEMS.c.batch_id == batch_id,
                MIGRATION_ITEMS.c.state == MigrationItemState.PENDING,
            )
            .limit(1)
        ).first()
        if pending is not None:
            return False
        now = host.clock.now()
        changed = conn.execute(
            update(MIGRATION_BATCHES)
            .where(
                MIGRATION_BATCHES.c.batch_id == batch_id,
                MIGRATION_BATCHES.c.state == MigrationState.RUNNING,
            )
            .values(state=MigrationState.COMPLETED, ended_at=now)
        ).rowcount
        if changed:
            row = conn.execute(
                select(MIGRATION_BATCHES).where(MIGRATION_BATCHES.c.batch_id == batch_id)
            ).one()
            audit.record(
                uow.session,
                None,
                audit.Change(
                    "migration.completed",
                    target=batch_id,
                    detail=f"{row.source_definition_id} → {row.target_definition_id}: {row.migrated} "
                    f"migrated, {row.skipped} skipped, {row.failed} failed of {row.total}",
                ),
                now,
            )
        uow.commit()
    if changed:
        log.info("migration %s completed", batch_id)
    return bool(changed)


def run_batches(host: InstanceHost, limit: int = ITEMS_PER_ROUND) -> int:
    """Takes up to `limit` pending items of the running batches (oldest batch first, in item order) and
    completes the batches that have none left; returns how many items it settled. Safe to run twice at
    once: an item is settled once (see the module docstring)."""
    with host.db.read() as session:
        batches = list(
            session.scalars(
                select(MigrationBatch)
                .where(MigrationBatch.state == MigrationState.RUNNING)
                .order_by(MigrationBatch.created_at, MigrationBatch.batch_id)
            )
        )
        for batch in batches:
            session.expunge(batch)
    settled = 0
    for batch in batches:
        actor = Caller(name=batch.created_by)
        with host.db.read() as session:
            pending = list(
                session.scalars(
                    select(MigrationItem.instance_id)
                    .where(
                        MigrationItem.batch_id == batch.batch_id,
                        MigrationItem.state == MigrationItemState.PENDING,
                    )
                    .order_by(MigrationItem.position)
                    .limit(limit - settled)
                )
            )
        for instance_id in pending:
            try:
                if migrate_item(host, batch, instance_id, actor):
                    settled += 1
                crash_point("orchestrator.migration.between_items")
            except Exception:
                # An engine failure, not a refusal: the item stays PENDING and is tried in the next round
                # (the step's own failure counting parks an instance that keeps failing; then it FAILS).
                log.exception("migration %s: instance %s", batch.batch_id, instance_id)
        if not pending or len(pending) < limit:
            _complete_if_done(host, batch.batch_id)
        if settled >= limit:
            break
    return settled


def get_migration(host: InstanceHost, batch_id: str) -> BatchView:
    """A batch and its items, in the order the batch takes them."""
    if not batch_id:
        raise InvalidArgument("batch_id", "is required")
    with host.db.read() as session:
        batch = session.get(MigrationBatch, batch_id)
        if batch is None:
            raise NotFound("migration", batch_id)
        items = list(
            session.scalars(
                select(MigrationItem)
                .where(MigrationItem.batch_id == batch_id)
                .order_by(MigrationItem.position)
            )
        )
        session.expunge_all()
    return BatchView(batch, items)


def list_migrations(
    host: InstanceHost, process_id: str = "", page_size: int = 0, page_token: str = ""
) -> tuple[list[MigrationBatch], str]:
    """Batches, newest first (of one process when named)."""
    page = Page.of(page_size, page_token)
    query = select(MigrationBatch).order_by(MigrationBatch.created_at.desc(), MigrationBatch.batch_id)
    if process_id:
        query = query.where(MigrationBatch.process_id == process_id)
    with host.db.read() as session:
        rows = list(session.scalars(query.offset(page.offset).limit(page.fetch)))
        session.expunge_all()
    return list(page.rows(rows)), page.next_token(rows)
