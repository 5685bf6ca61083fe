"""The callers a deploy re-versions: a version packs the files of every process and decision it calls, so a
deploy that changes a called process (or decision table) also makes a new version of each latest process
that packs it, transitively, with the deploy's files in place of the ones they replace. New instances of a
caller then run what was just deployed; running instances keep the version they started with."""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from dataclasses import dataclass

from sqlalchemy.orm import Session

from consultflow.orchestrator import engine
from consultflow.orchestrator.deploy_checks import parse_xml
from consultflow.orchestrator.engine import DeploymentError
from consultflow.orchestrator.orm import Resource
from consultflow.orchestrator.usecases.queries import latest_definitions
from consultflow.platform.errors import shown
from consultflow.platform.limits import Limits


@dataclass(frozen=True)
class CallerVersion:
    """A new version of a caller: its files with the deploy's in place of those they replace."""

    process_id: str
    specs: engine.ProcessSpecs
    resources: dict[str, bytes]
    because_of: tuple[str, ...]  # the process or decision ids it packs that this deploy changes

    def note(self, deploy_note: str) -> str:
        """The note kept beside the caller's new version: why it has one, then the deploy's own note."""
        reason = f"new version because {', '.join(self.because_of)} changed"
        return f"{reason}: {deploy_note}" if deploy_note else reason


def defined_ids(name: str, content: bytes) -> frozenset[str]:
    """The ids of the processes and decisions a BPMN or DMN file defines (what another file can call)."""
    tree = parse_xml(name, content)
    found = tree.xpath("//*[local-name()='process' or local-name()='decision']/@id")
    return frozenset(str(i) for i in found)


def callers_to_reversion(
    session: Session,
    resources: Mapping[str, bytes],
    deployed: Collection[str],
    checks: Limits | None,
) -> tuple[list[CallerVersion], list[DeploymentError]]:
    """Every latest process outside `deployed` whose packed files define an id the deploy's files define,
    rebuilt with the deploy's files; those whose content would change, and the problems found (a caller
    the new files would break, named)."""
    new_ids = {name: defined_ids(name, content) for name, content in resources.items()}
    all_new = frozenset().union(*new_ids.values())
    new_hashes = {engine.content_hash({n: c}) for n, c in resources.items()}
    callers: list[CallerVersion] = []
    problems: list[DeploymentError] = []
    if not all_new:
        return callers, problems
    for latest in latest_definitions(session):
        if latest.process_id in deployed:
            continue
        stored_hashes: dict[str, str] = json.loads(latest.resources)
        stored: dict[str, bytes] = {}
        for name, content_hash in stored_hashes.items():
            row = session.get(Resource, content_hash)
            if row is not None:
                stored[name] = row.content
        replaced: dict[str, frozenset[str]] = {}
        for name, content in stored.items():
            overlap = defined_ids(name, content) & all_new
            if overlap:
                replaced[name] = overlap
        if not replaced or latest.resource_name in replaced:
            continue  # packs nothing deployed; or shares its own file with a deployed process: not a caller
        combined = {n: c for n, c in stored.items() if n not in replaced}
        combined.update(resources)
        parsed, found = engine.checked_resources(combined, checks)
        caller = parsed.get(latest.process_id)
        if found or caller is None:
            problems += [_named(latest.process_id, p) for p in found] or [
                DeploymentError(latest.resource_name, "the caller's own process is missing", rule="caller")
            ]
            continue
        own = {n: combined[n] for n in caller.resource_names}
        if engine.content_hash(own) == latest.content_hash:
            continue
        changed = [ids for n, ids in replaced.items() if stored_hashes[n] not in new_hashes]
        because = frozenset().union(*changed) or frozenset().union(*replaced.values())
        callers.append(CallerVersion(latest.process_id, caller, own, tuple(sorted(because))))
    return callers, problems


def _named(process_id: str, problem: DeploymentError) -> DeploymentError:
    """A problem found while rebuilding a caller, saying which caller the new files would break."""
    return DeploymentError(
        problem.resource,
        f"{shown(process_id, 80)} (which calls it, would get a new version): {problem.text}",
        element=problem.element,
        line=problem.line,
        rule=problem.rule,
    )
