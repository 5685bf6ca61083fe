"""Moving running instances to another version of their process, and repairing one instance's path.

A plan maps the waiting elements of the source version to the target (same id unless mapped). Checking
changes nothing; migrating is one step (one transaction): the instance's definition, its workflow
(migration.py), its rows (jobs, user tasks with their claims, timers, subscriptions), history and audit
change together or not at all. Ops only (platform/policy.py).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

from sqlalchemy import Connection, select, update

from consultflow.orchestrator import engine, migration, sizes, state_parts
from consultflow.orchestrator.host import InstanceHost
from consultflow.orchestrator.orm import INSTANCES, JOBS, USER_TASKS, Definition, Instance
from consultflow.orchestrator.records import (
    ActiveElementView,
    InstanceStatus,
    JobStatus,
    MoveAction,
    UserTaskStatus,
    job_key,
    task_of,
)
from consultflow.orchestrator.step import Step, user_task_element
from consultflow.orchestrator.usecases import audit
from consultflow.orchestrator.usecases.audit import Change
from consultflow.orchestrator.usecases.instances import MAX_REASON_LENGTH
from consultflow.platform.errors import FailedPrecondition, InvalidArgument, NotFound
from consultflow.platform.identity import Caller

MAX_MAPPINGS = 1000


@dataclass(frozen=True)
class ElementMapping:
    """An element of `process_id` ("" for the migrated process) that goes to another target element, or
    whose wait starts afresh (`restart`)."""

    process_id: str
    source_element_id: str
    target_element_id: str
    restart: bool = False


@dataclass(frozen=True)
class MigrationPlan:
    """From which version to which, with the mappings that ids alone do not say."""

    source_definition_id: str
    target_definition_id: str
    mappings: tuple[ElementMapping, ...] = ()

    @classmethod
    def parse(
        cls, source_definition_id: str, target_definition_id: str, mappings: Iterable[ElementMapping]
    ) -> MigrationPlan:
        """A plan whose fields are well formed (InvalidArgument naming the field otherwise)."""
        if not source_definition_id:
            raise InvalidArgument("plan.source_definition_id", "is required")
        if not target_definition_id:
            raise InvalidArgument("plan.target_definition_id", "is required")
        if source_definition_id == target_definition_id:
            raise InvalidArgument("plan.target_definition_id", "is the source version")
        found = tuple(mappings)
        if len(found) > MAX_MAPPINGS:
            raise InvalidArgument("plan.mappings", f"has more than {MAX_MAPPINGS} mappings")
        seen: set[tuple[str, str]] = set()
        for index, mapping in enumerate(found):
            where = f"plan.mappings[{index}]"
            if not mapping.source_element_id:
                raise InvalidArgument(f"{where}.source_element_id", "is required")
            if not mapping.target_element_id:
                raise InvalidArgument(f"{where}.target_element_id", "is required")
            key = (mapping.process_id, mapping.source_element_id)
            if key in seen:
                raise InvalidArgument(
                    f"{where}.source_element_id", f"{mapping.source_element_id} is mapped twice"
                )
            seen.add(key)
        return cls(source_definition_id, target_definition_id, found)

    @property
    def process_id(self) -> str:
        return self.source_definition_id.rsplit(":", 1)[0]

    def to_json(self) -> str:
        return json.dumps(
            {
                "source_definition_id": self.source_definition_id,
                "target_definition_id": self.target_definition_id,
                "mappings": [asdict(m) for m in self.mappings],
            },
            sort_keys=True,
        )

    @classmethod
    def from_json(cls, text: str) -> MigrationPlan:
        data = json.loads(text)
        return cls(
            data["source_definition_id"],
            data["target_definition_id"],
            tuple(ElementMapping(**m) for m in data.get("mappings", [])),
        )

    def rules(self) -> list[migration.MappingRule]:
        top = self.process_id
        return [
            migration.MappingRule(
                "" if m.process_id == top else m.process_id,
                m.source_element_id,
                m.target_element_id,
                m.restart,
            )
            for m in self.mappings
        ]


@dataclass(frozen=True)
class MigrationProblem:
    """Why the plan cannot apply: to an instance ("" for the plan itself), at an element."""

    instance_id: str
    process_id: str
    element_id: str
    message: str


@dataclass(frozen=True)
class ElementMove:
    """What happens to one waiting element of one instance."""

    process_id: str
    source_element_id: str
    target_element_id: str
    kind: str
    action: MoveAction
    detail: str = ""


@dataclass(frozen=True)
class InstanceCheck:
    """The dry run of a plan on one instance."""

    instance_id: str
    business_key: str
    problems: tuple[MigrationProblem, ...]
    moves: tuple[ElementMove, ...]

    @property
    def applicable(self) -> bool:
        return not self.problems


class MigrationRefused(FailedPrecondition):
    """The plan cannot apply to an instance; the message names the instance and the element."""

    def __init__(self, problem: MigrationProblem) -> None:
        where = f" at {problem.element_id}" if problem.element_id else ""
        process = f" (process {problem.process_id})" if problem.process_id else ""
        super().__init__(f"instance {problem.instance_id}{where}{process}: {problem.message}")
        self.problem = problem


# ------------------------------------------------------------------------------------------- the plan


def _definition(host: InstanceHost, definition_id: str, field_name: str) -> Definition:
    with host.db.read() as session:
        definition = session.get(Definition, definition_id)
    if definition is None:
        raise NotFound(f"{field_name}: process definition", definition_id)
    return definition


def plan_problems(host: InstanceHost, plan: MigrationPlan) -> list[MigrationProblem]:
    """What is wrong with the plan whatever the instance: versions of different processes, mappings that
    name elements or processes the versions do not have. NotFound when a version does not exist."""
    source = _definition(host, plan.source_definition_id, "plan.source_definition_id")
    target = _definition(host, plan.target_definition_id, "plan.target_definition_id")
    if source.process_id != target.process_id:
        return [
            MigrationProblem(
                "",
                target.process_id,
                "",
                f"{plan.target_definition_id} is a version of {target.process_id}, not {source.process_id}",
            )
        ]
    source_specs = host.specs_for(source.definition_id)
    target_specs = host.specs_for(target.definition_id)
    problems: list[MigrationProblem] = []
    for mapping in plan.mappings:
        process = "" if mapping.process_id in ("", source.process_id) else mapping.process_id
        named = process or source.process_id
        old = source_specs.spec if not process else source_specs.subprocess_specs.get(process)
        new = target_specs.spec if not process else target_specs.subprocess_specs.get(process)
        if old is None:
            problems.append(
                MigrationProblem(
                    "", named, mapping.source_element_id, f"{source.definition_id} has no process {named}"
                )
            )
            continue
        if new is None:
            problems.append(
                MigrationProblem(
                    "", named, mapping.target_element_id, f"{target.definition_id} has no process {named}"
                )
            )
            continue
        if not _has_element(old, mapping.source_element_id):
            problems.append(
                MigrationProblem(
                    "",
                    named,
                    mapping.source_element_id,
                    f"{source.definition_id} has no element {mapping.source_element_id} in {named}",
                )
            )
        if not _has_element(new, mapping.target_element_id):
            problems.append(
                MigrationProblem(
                    "",
                    named,
                    mapping.target_element_id,
                    f"{target.definition_id} has no element {mapping.target_element_id} in {named}",
                )
            )
    return problems


def _has_element(process_spec: Any, element_id: str) -> bool:
    """An element of the diagram: Spiff's internal specs (`Start`, joins) and retired placeholders have no
    `bpmn_id` and are never mapped."""
    spec = process_spec.task_specs.get(element_id)
    return spec is not None and bool(getattr(spec, "bpmn_id", None))


# ------------------------------------------------------------------------------------------ instances


def check_instance(
    host: InstanceHost, plan: MigrationPlan, instance_id: str, *, plan_checked: bool = False
) -> InstanceCheck:
    """The dry run on one instance: loaded afresh from its stored state (never the live cached one, which
    a check must not touch), checked, and dropped. `plan_checked`: the caller found no `plan_problems`
    already (checking a batch, where reading both versions again per instance took 40 % of the time)."""
    with host.db.read() as session:
        row = session.execute(
            select(
                Instance.instance_id,
                Instance.business_key,
                Instance.definition_id,
                Instance.status,
                Instance.state,
            ).where(Instance.instance_id == instance_id)
        ).first()
        parts = state_parts.read(session.connection(), instance_id)  # as the state names them
    if row is None:
        raise NotFound("instance", instance_id)
    business_key = row.business_key or ""
    refusal = _refusal(instance_id, row.definition_id, InstanceStatus(row.status), plan)
    if refusal is not None:
        return InstanceCheck(instance_id, business_key, (refusal,), ())
    problems = [] if plan_checked else [_for(instance_id, p) for p in plan_problems(host, plan)]
    if problems:
        return InstanceCheck(instance_id, business_key, tuple(problems), ())
    specs = host.specs_for(row.definition_id)
    workflow = state_parts.load(row.state, lambda: parts, specs, host.script_engine)
    found = migration.check(workflow, host.specs_for(plan.target_definition_id), plan.rules())
    with host.db.read() as session:
        moves = _described(session.connection(), instance_id, found.moves)
    return _instance_check(instance_id, business_key, found.problems, moves)


def _described(conn: Connection, instance_id: str, moves: Sequence[migration.Move]) -> list[migration.Move]:
    """The moves with what ops want to know of their rows: who claimed a user task, a job's attempt."""
    claims = {
        row.user_task_id: row.assignee
        for row in conn.execute(
            select(USER_TASKS.c.user_task_id, USER_TASKS.c.assignee).where(
                USER_TASKS.c.instance_id == instance_id, USER_TASKS.c.status == UserTaskStatus.OPEN
            )
        )
    }
    attempts = {
        task_of(row.job_key): (row.operation, row.attempt)
        for row in conn.execute(
            select(JOBS.c.job_key, JOBS.c.operation, JOBS.c.attempt).where(
                JOBS.c.instance_id == instance_id, JOBS.c.status == JobStatus.ACTIVATABLE
            )
        )
    }
    described = []
    for move in moves:
        parts = [move.detail] if move.detail.startswith("instance ") else []  # of a multi-instance body
        if move.task_id in claims:
            assignee = claims[move.task_id]
            parts.append(f"claimed by {assignee}" if assignee else "not claimed")
            if move.action == MoveAction.RESTARTED and assignee:
                parts[-1] += " (the new task is not)"
        elif move.task_id in attempts:
            operation, attempt = attempts[move.task_id]
            parts.append(f"job {operation} attempt {attempt}")
            if move.action == MoveAction.RESTARTED:
                parts[-1] += " (cancelled; a new job starts at attempt 1)"
        described.append(replace(move, detail="; ".join(parts) if parts else move.detail))
    return described


def _refusal(
    instance_id: str, definition_id: str, status: InstanceStatus, plan: MigrationPlan
) -> MigrationProblem | None:
    if status != InstanceStatus.ACTIVE:
        return MigrationProblem(instance_id, "", "", f"is {status.lower()}, not active")
    if definition_id != plan.source_definition_id:
        return MigrationProblem(
            instance_id, "", "", f"runs {definition_id}, not the plan's source {plan.source_definition_id}"
        )
    return None


def _for(instance_id: str, problem: MigrationProblem) -> MigrationProblem:
    return MigrationProblem(instance_id, problem.process_id, problem.element_id, problem.message)


def _instance_check(
    instance_id: str,
    business_key: str,
    problems: Iterable[migration.Problem],
    moves: Iterable[migration.Move],
) -> InstanceCheck:
    return InstanceCheck(
        instance_id,
        business_key,
        tuple(MigrationProblem(instance_id, p.process_id, p.element_id, p.message) for p in problems),
        tuple(_move(m) for m in moves),
    )


def _move(move: migration.Move) -> ElementMove:
    return ElementMove(
        move.process_id,
        move.source_element_id,
        move.target_element_id,
        move.kind,
        move.action,
        move.detail,
    )


def migrate_instance(
    host: InstanceHost,
    plan: MigrationPlan,
    instance_id: str,
    actor: Caller | None,
    reason: str,
    *,
    alongside: Callable[[Step], None] | None = None,
) -> InstanceCheck:
    """Migrates one instance in one step (one transaction), or refuses (MigrationRefused) and changes
    nothing. `alongside(step)` runs in the same transaction (a batch marks its item done there)."""
    check_reason(reason)
    plan_refusals = plan_problems(host, plan)
    target = host.specs_for(plan.target_definition_id)

    def action(step: Step) -> InstanceCheck:
        business_key = step.record.business_key
        refusal = _refusal(instance_id, step.record.definition_id, step.status, plan)
        if refusal is not None:
            raise MigrationRefused(refusal)
        if plan_refusals:
            raise MigrationRefused(_for(instance_id, plan_refusals[0]))
        found = migration.check(step.workflow, target, plan.rules())
        if found.problems:
            checked = _instance_check(instance_id, business_key, found.problems, found.moves)
            raise MigrationRefused(checked.problems[0])
        moves = _described(step.conn, instance_id, migration.apply(step.workflow, target, plan.rules()))
        _write_definition(step, plan.target_definition_id)
        _carry_rows(step, moves)
        for move in moves:
            if move.action == MoveAction.RESTARTED:  # its incident went with the replaced task
                step.resolve_incidents(task_id=move.task_id)
        detail = f"from {plan.source_definition_id} to {plan.target_definition_id}: {reason}"
        step.history("instance.migrated", detail=detail)
        for move in moves:
            step.history(
                "element.migrated",
                move.target_element_id,
                move.target_element_id,
                f"{move.process_id}/{move.source_element_id} → {move.target_element_id}: {move.action}",
            )
        change = Change("instance.migrated", instance_id, business_key, plan.target_definition_id, detail)
        audit.record(step.session, actor, change, step.now)
        step.uow.emit(
            "instance.migrated",
            instance_id,
            {**step.summary(), "source_definition_id": plan.source_definition_id, "reason": reason},
            step.record.correlation,
        )
        if alongside is not None:
            alongside(step)
        step.advance()
        return _instance_check(instance_id, business_key, (), moves)

    return host.step(instance_id, action)


def check_reason(reason: str) -> None:
    """A migration's or a modification's reason: required (it goes to the audit and the history)."""
    if not reason.strip():
        raise InvalidArgument("reason", "is required: say why, for the audit and each instance's history")
    if len(reason) > MAX_REASON_LENGTH:
        raise InvalidArgument("reason", f"is longer than {MAX_REASON_LENGTH} characters")


def _write_definition(step: Step, definition_id: str) -> None:
    """The row's version, in the step's transaction (the step's own save writes the state and revision)."""
    step.conn.execute(
        update(INSTANCES)
        .where(INSTANCES.c.instance_id == step.instance_id)
        .values(definition_id=definition_id)
    )
    step.record.definition_id = definition_id


def _carry_rows(step: Step, moves: Sequence[migration.Move]) -> None:
    """Rows of carried-over waits name their new element (a user task keeps its assignee and claim); the
    timer and subscription rows are written again by the step's finish (their element ids may change)."""
    for move in moves:
        if move.action != MoveAction.CARRIED_OVER:
            continue
        task = engine.find_task(step.workflow, move.task_id)
        if task is None:
            continue
        spec = task.task_spec
        if isinstance(spec, engine.HumanTask) and move.task_id in step.waits.user_tasks:
            step.conn.execute(
                update(USER_TASKS)
                .where(USER_TASKS.c.user_task_id == move.task_id)
                .values(**user_task_element(task))
            )
        elif isinstance(spec, engine.JobServiceTask):
            key = job_key(step.instance_id, move.task_id)
            element_id, name, _ = engine.describe(task)
            if key in step.waits.jobs:
                step.conn.execute(
                    update(JOBS)
                    .where(JOBS.c.job_key == key)
                    .values(element_id=element_id, element_name=name, operation=spec.operation_name)
                )
    step.waits.timers = {}
    step.waits.subscriptions = set()


# ---------------------------------------------------------------------------------------------- modify


def modify_instance(
    host: InstanceHost,
    instance_id: str,
    cancel_element_ids: Sequence[str],
    activate_element_id: str,
    process_id: str,
    reason: str,
    variables: Mapping[str, Any],
    actor: Caller | None,
) -> tuple[list[ElementMove], list[ActiveElementView]]:
    """Cancels waiting elements and activates another of the same version, in one step, with a reason.
    Refused (InvalidArgument naming the element) when an element does not wait or cannot be activated."""
    check_reason(reason)
    if not instance_id:
        raise InvalidArgument("instance_id", "is required")
    if not cancel_element_ids and not activate_element_id:
        raise InvalidArgument("activate_element_id", "name an element to activate or elements to cancel")
    sizes.check_input(variables, host.limits, "variables_json")

    def action(step: Step) -> tuple[Step, list[ElementMove]]:
        if step.status != InstanceStatus.ACTIVE:
            raise FailedPrecondition(f"instance {instance_id} is {step.status.lower()}, not active")
        try:
            moves = migration.modify(
                step.workflow, process_id, cancel_element_ids, activate_element_id, variables
            )
        except migration.ModifyError as error:
            field_name = (
                "activate_element_id" if error.element_id == activate_element_id else "cancel_element_ids"
            )
            if error.element_id == process_id:
                field_name = "process_id"
            raise InvalidArgument(field_name, f"instance {instance_id}: {error}") from error
        for move in moves:
            if move.action == MoveAction.CANCELED:  # its incident went with the cancelled task
                step.resolve_incidents(task_id=move.task_id)
        what = ", ".join(f"{m.action} {m.source_element_id or m.target_element_id}" for m in moves)
        detail = f"{what}: {reason}"
        step.history("instance.modified", activate_element_id, activate_element_id, detail)
        change = Change(
            "instance.modified", instance_id, step.record.business_key, step.record.definition_id, detail
        )
        audit.record(step.session, actor, change, step.now)
        step.advance()
        return step, [_move(m) for m in moves]

    step, moves = host.step(instance_id, action)
    return moves, list(step.active or [])
