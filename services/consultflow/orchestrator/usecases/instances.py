"""Starting and cancelling instances."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any, NamedTuple

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from consultflow.orchestrator.host import DefinitionRef, InstanceHost
from consultflow.orchestrator.orm import Definition, Instance
from consultflow.orchestrator.records import InstanceStatus
from consultflow.orchestrator.step import Step
from consultflow.orchestrator.usecases import audit
from consultflow.orchestrator.usecases.audit import Change
from consultflow.platform.errors import FailedPrecondition, InvalidArgument, NotFound
from consultflow.platform.identity import Caller

MAX_BUSINESS_KEY_LENGTH = 255


@dataclass(frozen=True)
class CreateResult:
    instance_id: str
    definition_id: str
    created: bool


class ExistingInstance(NamedTuple):
    instance_id: str
    definition_id: str


def create_instance(
    host: InstanceHost,
    process_id: str,
    version: int,
    variables: Mapping[str, Any],
    business_key: str = "",
    actor: Caller | None = None,
) -> CreateResult:
    """Starts an instance of a version (the latest when `version` is 0); one per business key."""
    if not process_id:
        raise InvalidArgument("process_id", "is required")
    if version < 0:
        raise InvalidArgument("version", "must be 0 (latest) or a positive version")
    if len(business_key) > MAX_BUSINESS_KEY_LENGTH:
        raise InvalidArgument("business_key", f"is longer than {MAX_BUSINESS_KEY_LENGTH} characters")
    definition = definition_ref(host, process_id, version)
    if business_key:
        existing = instance_by_key(host, process_id, business_key)
        if existing is not None:
            return CreateResult(existing.instance_id, existing.definition_id, created=False)
    try:
        instance_id = host.start(definition, variables, business_key, partial(_audit_created, actor=actor))
    except IntegrityError:
        existing = instance_by_key(host, process_id, business_key)
        if existing is None:
            raise
        return CreateResult(existing.instance_id, existing.definition_id, created=False)
    return CreateResult(instance_id, definition.definition_id, created=True)


def _audit_created(step: Step, actor: Caller | None) -> None:
    change = Change("instance.created", step.instance_id, step.record.business_key, step.record.definition_id)
    audit.record(step.session, actor, change, step.now)


def definition_ref(host: InstanceHost, process_id: str, version: int) -> DefinitionRef:
    """The version to start (the latest when `version` is 0): two columns, read without the ORM,
    because every CreateInstance asks."""
    query = select(Definition.definition_id, Definition.process_id).where(Definition.process_id == process_id)
    if version:
        query = query.where(Definition.version == version)
    with host.db.read() as session:
        row = session.execute(query.order_by(Definition.version.desc()).limit(1)).first()
    if row is None:
        what = f"{process_id} version {version}" if version else process_id
        raise NotFound("process definition", what)
    return DefinitionRef(row.definition_id, row.process_id)


def instance_by_key(host: InstanceHost, process_id: str, business_key: str) -> ExistingInstance | None:
    """The instance already started for this business key, if any."""
    with host.db.read() as session:
        row = session.execute(
            select(Instance.instance_id, Instance.definition_id).where(
                Instance.process_id == process_id, Instance.business_key == business_key
            )
        ).first()
    return None if row is None else ExistingInstance(row.instance_id, row.definition_id)


MAX_CASCADE = 100
"""Instances cancelled with one request at most (an instance and those its messages started, in turn)."""


def cancel_instance(
    host: InstanceHost, instance_id: str, reason: str = "", actor: Caller | None = None
) -> None:
    """Cancels an instance, then every active instance of the same business key that its thrown messages
    started, and theirs in turn: an engagement's risk management would otherwise run on after the
    engagement was cancelled. An instance started for another key (a new engagement a referral started)
    is a business of its own and stays."""
    host.step(instance_id, partial(cancel, reason=reason, actor=actor))
    pending, seen = [instance_id], {instance_id}
    while pending and len(seen) <= MAX_CASCADE:
        parent = pending.pop(0)
        with host.db.read() as session:
            key = session.scalar(select(Instance.business_key).where(Instance.instance_id == parent))
            children = (
                list(
                    session.scalars(
                        select(Instance.instance_id).where(
                            Instance.started_by == parent,
                            Instance.business_key == key,
                            Instance.status == InstanceStatus.ACTIVE,
                        )
                    )
                )
                if key
                else []
            )
        for child in children:
            if child in seen:
                continue
            seen.add(child)
            try:
                cause = f"{parent} was cancelled: {reason}".rstrip(": ")
                host.step(child, partial(cancel, reason=cause, actor=actor))
            except FailedPrecondition:
                continue  # it ended meanwhile
            pending.append(child)


def cancel(step: Step, reason: str, actor: Caller | None = None) -> None:
    """Cancels everything the instance does; its open incidents are resolved with it."""
    if step.status != InstanceStatus.ACTIVE:
        raise FailedPrecondition(f"instance {step.instance_id} is {step.status.lower()}, not active")
    change = Change("instance.canceled", step.instance_id, step.record.business_key, detail=reason)
    audit.record(step.session, actor, change, step.now)
    step.workflow.cancel()
    step.status = InstanceStatus.CANCELED
    step.history("instance.canceled", detail=reason)
    step.uow.emit(
        "instance.canceled", step.instance_id, {**step.summary(), "reason": reason}, step.record.correlation
    )
    for incident_id in list(step.waits.incidents):
        step.resolve_incidents(incident_id=incident_id)
