"""Deploying BPMN and DMN resources: a new version of each process whose content changed, and its timer
start events scheduled."""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from consultflow.orchestrator import engine
from consultflow.orchestrator.host import InstanceHost
from consultflow.orchestrator.orm import Definition, Resource, StartTimer
from consultflow.orchestrator.records import definition_id
from consultflow.orchestrator.usecases import audit
from consultflow.orchestrator.usecases.audit import Change
from consultflow.platform.db import UnitOfWork
from consultflow.platform.errors import Conflict, InvalidArgument
from consultflow.platform.identity import Caller

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DeployResult:
    deployment_id: str
    definitions: list[Definition]
    unchanged: list[str]


def deploy(host: InstanceHost, resources: Mapping[str, bytes], actor: Caller | None = None) -> DeployResult:
    """Parses and stores resources; creates a new version of each process whose content changed."""
    if not resources:
        raise InvalidArgument("resources", "at least one .bpmn or .dmn file is required")
    for name in resources:
        if not name or "/" in name or "\\" in name or any(c < " " or "\x7f" <= c <= "\x9f" for c in name):
            raise InvalidArgument("resources.name", f"{name[:120]!r} must be a plain file name")
    parsed = engine.parse_resources(resources, checks=host.limits)
    if not parsed:
        raise InvalidArgument("resources", 'no executable process found (isExecutable="true")')
    deployment_id = str(uuid.uuid4())
    now = host.clock.now()
    created: list[Definition] = []
    unchanged: list[str] = []
    with host.uow_factory() as uow:
        hashes = {name: engine.content_hash({name: content}) for name, content in resources.items()}
        for name, content in resources.items():
            if uow.session.get(Resource, hashes[name]) is None:
                uow.session.add(
                    Resource(content_hash=hashes[name], name=name, content=content, deployed_at=now)
                )
        for process_id, specs in sorted(parsed.items()):
            needed = {n: resources[n] for n in specs.resource_names}
            digest = engine.content_hash(needed)
            latest = _latest(uow, process_id)
            if latest is not None and latest.content_hash == digest:
                unchanged.append(process_id)
                continue
            version = (latest.version if latest else 0) + 1
            definition = Definition(
                definition_id=definition_id(process_id, version),
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
            change = Change(
                "definition.deployed", target=definition.definition_id, detail=specs.resource_name
            )
            audit.record(uow.session, actor, change, now)
            _schedule_start_timers(host, uow, definition, specs, now)
            host.remember_specs(definition.definition_id, specs)
        try:
            uow.commit()
        except IntegrityError as exc:
            raise Conflict("another deployment of the same process committed first; deploy again") from exc
    log.info("deployed %s; unchanged %s", [d.definition_id for d in created], unchanged)
    return DeployResult(deployment_id, created, unchanged)


def _schedule_start_timers(
    host: InstanceHost, uow: UnitOfWork, definition: Definition, specs: engine.ProcessSpecs, now: datetime
) -> None:
    """A new version takes over the timer start events of the process (as in Zeebe)."""
    uow.session.execute(delete(StartTimer).where(StartTimer.process_id == definition.process_id))
    for element_id, expression in specs.start_timers:
        try:
            value = host.script_engine.start_timer(element_id, expression)
            schedule = engine.start_schedule(value, now, host.limits.min_timer_cycle_seconds)
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


def _latest(uow: UnitOfWork, process_id: str) -> Definition | None:
    return uow.session.scalars(
        select(Definition)
        .where(Definition.process_id == process_id)
        .order_by(Definition.version.desc())
        .limit(1)
    ).first()
