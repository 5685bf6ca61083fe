"""What engagements running on an older diagram version still need from the services, read from the frozen
diagrams (tests/fixtures/diagrams_v1) and the catalogue they were written against (its operations.md).

An instance keeps the version it started on, so until it ends the services must keep serving every
operation that version calls, with the inputs it passes, returning the outputs it reads, the status
events it waits for must still become its messages, and the groups its user tasks are offered to must still
be actors someone can sign in as. What a release stops serving is listed under
"Retired operations, messages and groups" in docs/operations.md, with what happens to an old instance
reaching it.
"""

from __future__ import annotations

import importlib
import re
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from unittest import mock

import pytest

from consultflow import SERVICES
from consultflow.platform.jobs import Operations
from tests.support import catalogue
from tests.support.catalogue import BPMN_DIR, NS, OPERATIONS, MessageSpec, Operation, parse

V1 = Path(__file__).resolve().parents[1] / "fixtures" / "diagrams_v1"
VERSIONS = {"v1": V1}
RETIRED_SECTION = "## Retired operations, messages and groups"
_WORD = re.compile(r"\b[a-z_][a-z0-9_]*\b")


@dataclass(frozen=True)
class Call:
    """A service task of an old diagram: the operation it calls with the parameters it passes."""

    where: str
    operation: str
    parameters: dict[str, str]  # id → expression


def served() -> set[str]:
    """Every operation a service's worker takes (`<service>.<name>`)."""
    names: set[str] = set()
    for service in SERVICES:
        operations = importlib.import_module(f"consultflow.{service}.jobs").operations
        assert isinstance(operations, Operations)
        names |= set(operations.names)
    return names


def retired(text: str | None = None) -> set[str]:
    """Operation and message names listed as retired (second column of the section's table)."""
    text = OPERATIONS.read_text(encoding="utf-8") if text is None else text
    if RETIRED_SECTION not in text:
        return set()
    names = set()
    for line in text[text.index(RETIRED_SECTION) :].splitlines()[1:]:
        if line.startswith("## "):
            break
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("|") and len(cells) > 1 and cells[1].startswith("`"):
            names.add(cells[1].strip("`"))
    return names


def old_catalogue(folder: Path) -> tuple[dict[str, Operation], dict[str, MessageSpec]]:
    """The operation and message catalogue frozen with an old version."""
    with mock.patch.object(catalogue, "OPERATIONS", folder / "operations.md"):
        return catalogue.operations(), catalogue.messages()


def calls(folder: Path) -> Iterator[Call]:
    for path in sorted(folder.glob("*.bpmn")):
        for operator in parse(path).iterfind(".//spiffworkflow:serviceTaskOperator", NS):
            task = operator.getparent().getparent()
            parameters = {
                p.get("id", ""): p.get("value", "")
                for p in operator.iterfind("spiffworkflow:parameters/spiffworkflow:parameter", NS)
            }
            yield Call(f"{folder.name}/{path.name} {task.get('id')}", operator.get("id", ""), parameters)


def words_read(folder: Path) -> set[str]:
    """Every name a diagram's expressions mention: conditions, parameters, scripts, payloads, timers."""
    words: set[str] = set()
    for path in sorted(folder.glob("*.bpmn")):
        root = parse(path)
        for element in root.iter():
            if not isinstance(element.tag, str) or element.tag.endswith("}documentation"):
                continue
            if element.tag.endswith(("Expression", "Script", "script", "messagePayload", "time", "Cycle")):
                words |= set(_WORD.findall(element.text or ""))
            for attribute in ("value", "collection", "elementVariable"):
                words |= set(_WORD.findall(element.get(attribute) or ""))
    return words


def mappings(folder: Path) -> dict[str, set[str]]:
    """Message name → the correlation fields status-messages.toml keys it by."""
    data = tomllib.loads((folder / "status-messages.toml").read_text(encoding="utf-8"))
    found: dict[str, set[str]] = {}
    for entry in data.get("map", []):
        found.setdefault(entry["message"], set()).add(entry["correlation"])
    return found


def waited_for(folder: Path) -> set[str]:
    """Names of the messages an old diagram's receive tasks and catch events wait for."""
    names: set[str] = set()
    for path in sorted(folder.glob("*.bpmn")):
        root = parse(path)
        by_id = {m.get("id"): m.get("name", "") for m in root.iterfind(".//bpmn:message", NS)}
        refs = [r.get("messageRef") for r in root.iterfind(".//bpmn:receiveTask", NS)]
        for tag in ("startEvent", "intermediateCatchEvent", "boundaryEvent"):
            for event in root.iterfind(f".//bpmn:{tag}", NS):
                refs += [d.get("messageRef") for d in event.iterfind("bpmn:messageEventDefinition", NS)]
        names |= {by_id[r] for r in refs if r}
    return names


@pytest.mark.parametrize("version", VERSIONS)
def test_every_operation_an_old_diagram_calls_is_served_or_retired(version: str) -> None:
    available, gone = served(), retired()
    missing = sorted(
        f"{c.operation} ({c.where})" for c in calls(VERSIONS[version]) if c.operation not in available | gone
    )
    assert not missing, (
        "operations running instances still call: serve them, or list them under "
        f"{RETIRED_SECTION!r} in docs/operations.md:\n" + "\n".join(missing)
    )


@pytest.mark.parametrize("version", VERSIONS)
def test_served_operations_accept_what_an_old_diagram_passes_and_return_what_it_reads(version: str) -> None:
    folder = VERSIONS[version]
    current, old = catalogue.operations(), old_catalogue(folder)[0]
    reads, gone = words_read(folder), retired()
    problems: list[str] = []
    for call in calls(folder):
        if call.operation in gone:
            continue
        now = current.get(call.operation)
        if now is None:
            problems.append(f"{call.where}: {call.operation} is served but no longer in the catalogue")
            continue
        if needed := sorted(set(now.inputs) - set(call.parameters)):
            problems.append(f"{call.where}: {call.operation} now requires {needed}, which it does not pass")
        for name, expression in call.parameters.items():
            accepted = now.values.get(name)
            if accepted is None:
                continue
            offered = set(old[call.operation].values.get(name, ()))
            if expression.startswith('"'):
                offered = {expression.strip('"')}
            if lost := sorted(offered - set(accepted)):
                problems.append(f"{call.where}: {call.operation}.{name} no longer accepts {lost}")
        if call.operation in old:
            dropped = set(old[call.operation].outputs) - set(now.outputs)
            if read := sorted(dropped & reads):
                problems.append(
                    f"{call.where}: {call.operation} no longer returns {read}, which {version} reads"
                )
    assert problems == []


@pytest.mark.parametrize("version", VERSIONS)
def test_status_events_an_old_diagram_waits_for_still_become_its_messages(version: str) -> None:
    folder = VERSIONS[version]
    then, now, gone = mappings(folder), mappings(BPMN_DIR), retired()
    old_messages, current_messages = old_catalogue(folder)[1], catalogue.messages()
    problems: list[str] = []
    for message in sorted(waited_for(folder) & set(then)):
        if message in gone:
            continue
        if not then[message] <= now.get(message, set()):
            problems.append(
                f"{message}: keyed by {sorted(then[message])} in {version}, now {now.get(message)}"
            )
        carried_then = set(old_messages[message].carries) if message in old_messages else set()
        carried_now = set(current_messages[message].carries) if message in current_messages else set()
        if lost := sorted(carried_then - carried_now):
            problems.append(f"{message}: no longer carries {lost}")
    assert not problems, "a status event running instances wait for no longer reaches them:\n" + "\n".join(
        problems
    )


def candidate_groups(folder: Path) -> dict[str, str]:
    """Candidate group → the first user task of an old diagram that offers its tasks to that group."""
    groups: dict[str, str] = {}
    for path in sorted(folder.glob("*.bpmn")):
        for task in parse(path).iterfind(".//bpmn:userTask", NS):
            for group in (task.get(f"{catalogue.CAMUNDA}candidateGroups") or "").split(","):
                if group.strip():
                    groups.setdefault(group.strip(), f"{path.name} {task.get('id')}")
    return groups


@pytest.mark.parametrize("version", VERSIONS)
def test_the_groups_an_old_diagram_offers_tasks_to_are_still_actors(version: str) -> None:
    """Identity lets only the actors of bpmn/actors.toml claim tasks: a group dropped from it strands the
    old instances' tasks for that group."""
    actors = tomllib.loads((BPMN_DIR / "actors.toml").read_text(encoding="utf-8"))["actor"]
    known, gone = {a["id"] for a in actors}, retired()
    stranded = [
        f"{g} ({where})" for g, where in candidate_groups(VERSIONS[version]).items() if g not in known | gone
    ]
    assert not stranded, "groups whose open tasks nobody could claim:\n" + "\n".join(stranded)


def test_the_retired_list_is_read() -> None:
    text = (
        "# Operation catalogue\n\n"
        f"{RETIRED_SECTION}\n\n| retired by | operation or message | an old instance reaching it |\n"
        "| --- | --- | --- |\n| v2 | `crm.record_revisit` | its job fails: resolve the incident |\n\n"
        "## Next\n"
        "| v2 | `crm.other` | |\n"
    )
    assert retired(text) == {"crm.record_revisit"}
    assert retired("# Operation catalogue\n") == set()
