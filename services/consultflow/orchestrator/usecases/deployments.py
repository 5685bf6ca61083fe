"""Deploying BPMN and DMN resources: a new version of each process whose content changed, and its timer
start events scheduled; checking files without deploying them; and the start-up deploy of bpmn/."""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Container, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from consultflow.orchestrator import engine
from consultflow.orchestrator.engine import DeploymentError
from consultflow.orchestrator.host import InstanceHost
from consultflow.orchestrator.orm import Definition, Resource, StartTimer
from consultflow.orchestrator.records import definition_id
from consultflow.orchestrator.usecases import audit
from consultflow.orchestrator.usecases.audit import Change
from consultflow.orchestrator.usecases.callers import CallerVersion, callers_to_reversion
from consultflow.platform.db import UnitOfWork
from consultflow.platform.errors import Conflict, InvalidArgument, NotFound, shown
from consultflow.platform.identity import Caller

log = logging.getLogger(__name__)

MAX_NOTE_CHARACTERS = 1000
"""The longest deploy note kept beside a version (a sentence or two: why this deploy)."""
MAX_PROBLEMS = 100
"""The most problems one validation answers (a hostile file may have thousands; the first are enough)."""
START_MODES = ("new", "changed")
"""What the start-up deploy of bpmn/ deploys: processes never deployed, or also those that changed."""


@dataclass(frozen=True)
class DeployResult:
    deployment_id: str
    definitions: list[Definition]
    unchanged: list[str]
    callers: list[str] = field(default_factory=list)  # among definitions: new because what they call changed


@dataclass(frozen=True)
class Validation:
    """What a deploy of some files would refuse (every problem found), and which processes it would leave
    at their latest version."""

    problems: list[DeploymentError]
    unchanged: list[str]
    callers: list[str] = field(default_factory=list)  # processes a deploy would also make new versions of


def deploy(
    host: InstanceHost,
    resources: Mapping[str, bytes],
    actor: Caller | None = None,
    note: str = "",
) -> DeployResult:
    """Parses and stores resources; creates a new version of each process whose content changed, and of
    each latest process that packs one of them (callers.py). A caller (`actor`) is recorded as the one who
    deployed; None is the start-up deploy of bpmn/."""
    check_note(note)
    problems = _name_problems(resources)
    if problems:
        raise problems[0]
    specs, found = engine.checked_resources(resources, host.limits)
    if found:
        raise found[0]
    return _store(host, resources, specs, actor, note, only=None, with_callers=True)


def validate(host: InstanceHost, resources: Mapping[str, bytes]) -> Validation:
    """Every check `deploy` makes, writing nothing: the problems (several where the checks can go on), and
    the processes a deploy would leave unchanged."""
    problems = _name_problems(resources)
    valid = {n: c for n, c in resources.items() if _plain_name(n)}
    parsed, found = engine.checked_resources(valid, host.limits)
    problems += found
    callers: list[CallerVersion] = []
    if not problems:
        with host.db.read() as session:
            callers, found = callers_to_reversion(session, valid, parsed, host.limits)
        problems += found
    if not problems and not parsed and not callers:
        no_process = 'no executable process found (isExecutable="true")'
        problems.append(DeploymentError("", no_process, rule="resources.no_process"))
    now = host.clock.now()
    for specs in [*parsed.values(), *(c.specs for c in callers)]:
        try:
            _start_schedules(host, specs, now)
        except DeploymentError as error:
            problems.append(error)
    unchanged: list[str] = []
    if not problems:
        with host.db.read() as session:
            for process_id, specs in sorted(parsed.items()):
                latest = _latest_of(session, process_id)
                if latest is not None and latest.content_hash == _digest(resources, specs):
                    unchanged.append(process_id)
    return Validation(problems[:MAX_PROBLEMS], unchanged, [c.process_id for c in callers])


def deploy_at_start(host: InstanceHost, resources: Mapping[str, bytes], mode: str = "new") -> DeployResult:
    """The start-up deploy of the repository's bpmn/: `new` deploys only the processes never deployed, so an
    analyst's deploy from the console is never undone by a restart; `changed` also deploys those whose
    latest version differs (for flows that edit bpmn/ between restarts). Either way it remembers the
    repository's hashes, and a process whose latest version differs is named once in the log."""
    if mode not in START_MODES:
        raise InvalidArgument("CONSULTFLOW_DEPLOY_AT_START", f"must be one of {', '.join(START_MODES)}")
    parsed, found = engine.checked_resources(resources, host.limits)
    if found:
        raise found[0]
    if not parsed:
        raise _no_process()
    host.repository_hashes = {p: _digest(resources, s) for p, s in parsed.items()}
    only: set[str] | None = None
    if mode == "new":
        with host.db.read() as session:
            only = set()
            for process_id in sorted(parsed):
                latest = _latest_of(session, process_id)
                if latest is None:
                    only.add(process_id)
                elif latest.content_hash != host.repository_hashes[process_id]:
                    log.warning(
                        "%s: the deployed version %s differs from the repository's %s; left as deployed "
                        "(deploy the file, or export the version and commit it)",
                        process_id,
                        latest.definition_id,
                        parsed[process_id].resource_name,
                    )
    return _store(host, resources, parsed, None, "", only)


def check_note(note: str) -> None:
    """A note is a short text shown beside a version: bounded, without control characters."""
    if len(note) > MAX_NOTE_CHARACTERS:
        raise InvalidArgument("note", f"at most {MAX_NOTE_CHARACTERS} characters ({len(note)} given)")
    if any((c < " " and c != "\n") or "\x7f" <= c <= "\x9f" for c in note):
        raise InvalidArgument("note", "may not contain control characters (a line feed is fine)")


def differing(host: InstanceHost, definitions: Iterable[Definition]) -> set[str]:
    """The definition ids among `definitions` that are the latest version of their process (the highest
    version given: callers list every version of a process, or its latest) and differ from the
    repository's files."""
    latest: dict[str, Definition] = {}
    for definition in definitions:
        if definition.version > getattr(latest.get(definition.process_id), "version", 0):
            latest[definition.process_id] = definition
    return {
        d.definition_id
        for d in latest.values()
        if host.repository_hashes.get(d.process_id, d.content_hash) != d.content_hash
    }


@dataclass(frozen=True)
class DefinitionFiles:
    definition: Definition
    resources: list[tuple[str, bytes]]  # the process's own file first
    latest: bool


def get_definition(host: InstanceHost, definition_id: str) -> DefinitionFiles:
    """The files a deployed version was made from, as stored at its deploy."""
    if not definition_id:
        raise InvalidArgument("definition_id", "is required")
    with host.db.read() as session:
        definition = session.get(Definition, definition_id)
        if definition is None:
            raise NotFound("definition", definition_id)
        hashes: dict[str, str] = json.loads(definition.resources)
        files: list[tuple[str, bytes]] = []
        for name in sorted(hashes, key=lambda n: (n != definition.resource_name, n)):
            resource = session.get(Resource, hashes[name])
            if resource is None:
                raise NotFound("resource", f"{name} of {definition_id}")
            files.append((name, resource.content))
        latest = _latest_of(session, definition.process_id)
    is_latest = latest is not None and latest.definition_id == definition.definition_id
    return DefinitionFiles(definition, files, is_latest)


def _name_problems(resources: Mapping[str, bytes]) -> list[DeploymentError]:
    if not resources:
        raise InvalidArgument("resources", "at least one .bpmn or .dmn file is required")
    return [  # named by its repr: a hostile name's control characters are never echoed
        DeploymentError(shown(name, 120), "must be a plain file name", rule="resource.name")
        for name in resources
        if not _plain_name(name)
    ]


def _plain_name(name: str) -> bool:
    return bool(name) and not any(c in "/\\" or c < " " or "\x7f" <= c <= "\x9f" for c in name)


def _no_process() -> InvalidArgument:
    return InvalidArgument("resources", 'no executable process found (isExecutable="true")')


def _digest(resources: Mapping[str, bytes], specs: engine.ProcessSpecs) -> str:
    """The version key of a process: the hash of its files (its own, what it calls, the decisions)."""
    return engine.content_hash({n: resources[n] for n in specs.resource_names})


def _store(
    host: InstanceHost,
    resources: Mapping[str, bytes],
    parsed: Mapping[str, engine.ProcessSpecs],
    actor: Caller | None,
    note: str,
    only: Container[str] | None,
    with_callers: bool = False,
) -> DeployResult:
    """A new version of each process (of `only`, when given) whose files changed, and (`with_callers`) of
    each latest process that packs a changed one, in one transaction."""
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
        callers: list[CallerVersion] = []
        if with_callers:
            callers, problems = callers_to_reversion(uow.session, resources, parsed, host.limits)
            if problems:
                raise problems[0]
        if not parsed and not callers:
            raise _no_process()
        versions = [(specs, resources, note) for _, specs in sorted(parsed.items())]
        versions += [(c.specs, c.resources, c.note(note)) for c in callers]
        for specs, files, why in versions:
            process_id = specs.process_id
            digest = _digest(files, specs)
            latest = _latest_of(uow.session, process_id)
            if (latest is not None and latest.content_hash == digest) or (
                only is not None and process_id not in only
            ):
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
                resources=json.dumps({n: engine.content_hash({n: files[n]}) for n in specs.resource_names}),
                start_messages=json.dumps(list(specs.start_messages)),
                deployment_id=deployment_id,
                deployed_at=now,
                note=why,
                deployed_by=actor.name if actor is not None else "",
            )
            uow.session.add(definition)
            created.append(definition)
            change = Change(
                "definition.deployed", target=definition.definition_id, detail=why or specs.resource_name
            )
            audit.record(uow.session, actor, change, now)
            _schedule_start_timers(host, uow, definition, specs, now)
            host.remember_specs(definition.definition_id, specs)
        try:
            uow.commit()
        except IntegrityError as exc:
            raise Conflict("another deployment of the same process committed first; deploy again") from exc
    log.info("deployed %s; unchanged %s", [d.definition_id for d in created], unchanged)
    return DeployResult(deployment_id, created, unchanged, [c.process_id for c in callers])


def _start_schedules(
    host: InstanceHost, specs: engine.ProcessSpecs, now: datetime
) -> list[tuple[str, engine.StartSchedule]]:
    """When each timer start event of a process first fires; a DeploymentError naming the event when its
    expression cannot be read."""
    schedules: list[tuple[str, engine.StartSchedule]] = []
    for element_id, expression in specs.start_timers:
        try:
            value = host.script_engine.start_timer(element_id, expression)
            schedule = engine.start_schedule(value, now, host.limits.min_timer_cycle_seconds)
        except Exception as exc:
            raise DeploymentError(
                specs.resource_name,
                f"timer start event: {engine.error_text(exc)}",
                element=element_id,
                rule="timer.start",
            ) from exc
        schedules.append((element_id, schedule))
    return schedules


def _schedule_start_timers(
    host: InstanceHost, uow: UnitOfWork, definition: Definition, specs: engine.ProcessSpecs, now: datetime
) -> None:
    """A new version takes over the timer start events of the process (as in Zeebe)."""
    uow.session.execute(delete(StartTimer).where(StartTimer.process_id == definition.process_id))
    for element_id, schedule in _start_schedules(host, specs, now):
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


def _latest_of(session: Session, process_id: str) -> Definition | None:
    return session.scalars(
        select(Definition)
        .where(Definition.process_id == process_id)
        .order_by(Definition.version.desc())
        .limit(1)
    ).first()
