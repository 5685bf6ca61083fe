"""The operation catalogue the services publish, held against the code and the diagrams.

Each service declares its operations' contracts over their handlers (services/consultflow/<service>/
jobs.py). These tests check that every contract is complete, that it says what the handler really reads
and returns, that every diagram (today's in bpmn/ and the frozen older versions a running engagement may
still be on) passes only declared inputs and every required one, that every BPMN error a diagram catches
on a service task is one its operation declares, and that docs/operations.md lists exactly the declared
operations.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import pytest

from consultflow.api.catalog.v1 import catalog_pb2 as pb
from consultflow.platform.catalog import operation_message
from consultflow.platform.jobs import Operations
from consultflow.platform.operation_spec import FIELD_TYPES, OperationSpec
from consultflow.platform.settings import repository_root
from tests.support.bpmn_builder import bpmn, operation

SERVICES = ("crm", "contracts", "delivery", "survey", "risk")
ROOT = repository_root()
DIAGRAMS = sorted((ROOT / "bpmn").glob("*.bpmn")) + sorted((ROOT / "tests" / "fixtures").rglob("*.bpmn"))
BPMN = "http://www.omg.org/spec/BPMN/20100524/MODEL"
SPIFF = "http://spiffworkflow.org/bpmn/schema/1.0/core"


def registry(service: str) -> Operations[object]:
    registry: Operations[object] = importlib.import_module(f"consultflow.{service}.jobs").operations
    return registry


CATALOGUE: dict[str, OperationSpec] = {
    spec.name: spec for service in SERVICES for spec in registry(service).catalogue
}


# --- the contracts themselves ---


def test_every_operation_of_every_service_has_a_complete_contract() -> None:
    incomplete = []
    for service in SERVICES:
        declared = registry(service)
        assert [s.name for s in declared.catalogue] == declared.names, f"{service}: a handler without spec"
        for spec in declared.catalogue:
            incomplete += spec.problems()
            if not spec.clauses and not spec.assumption:
                incomplete.append(f"{spec.name}: names no clause and is not marked an assumption")
            if not spec.outputs:
                incomplete.append(f"{spec.name}: declares no output")
            for clause in spec.clauses:
                if not re.fullmatch(r"[1-6](\.[1-9][0-9]*){0,2}", clause):
                    incomplete.append(f"{spec.name}: {clause!r} is not a clause of the regulation")
            for field in (*spec.inputs, *spec.outputs):
                assert field.type in FIELD_TYPES
    assert incomplete == []
    assert len(CATALOGUE) == sum(len(registry(s).names) for s in SERVICES) > 70


def test_an_unsound_contract_is_reported() -> None:
    from consultflow.platform.operation_spec import optional, text

    spec = OperationSpec(
        "x.y", "x", "Two\nlines", inputs=(text("a"), optional(text("a"))), outputs=(text("Bad-Name"),)
    )
    assert spec.problems() == [
        "x.y: the summary must be one non-empty line",
        "x.y: input 'a' is declared twice",
        "x.y: output 'Bad-Name' is not a variable name",
    ]


# --- the contracts against the handlers' code ---


@dataclass(frozen=True)
class Reads:
    """What a handler's source reads from its job and returns, where the names are literal."""

    required: frozenset[str]
    optional: frozenset[str]
    returned: frozenset[str] | None  # None: not every return is a dict literal


def handler_reads(source: str) -> Reads:
    tree = ast.parse(source)
    required: set[str] = set()
    optional: set[str] = set()
    returned: set[str] = set()
    literal_returns = True
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            target = node.func.value
            on_job = isinstance(target, ast.Name) and target.id == "job"
            on_parameters = isinstance(target, ast.Attribute) and target.attr == "parameters"
            if (on_job or on_parameters) and node.args and isinstance(node.args[0], ast.Constant):
                name = str(node.args[0].value)
                if on_job and node.func.attr in ("text", "flag", "get"):
                    (optional if len(node.args) > 1 else required).add(name)
                elif on_parameters and node.func.attr == "get":
                    optional.add(name)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and len(node.args) == 2:
            # the services' own small readers: `_required_id(job, "survey_id")`, `_parameter(job, "x")`
            first, second = node.args
            if isinstance(first, ast.Name) and first.id == "job" and isinstance(second, ast.Constant):
                reader = node.func.id
                (required if reader == "_required_id" else optional).add(str(second.value))
        if isinstance(node, ast.Return) and node.value is not None:
            if isinstance(node.value, ast.Dict) and all(isinstance(k, ast.Constant) for k in node.value.keys):
                returned.update(str(k.value) for k in node.value.keys if isinstance(k, ast.Constant))
            else:
                literal_returns = False
    return Reads(frozenset(required), frozenset(optional), frozenset(returned) if literal_returns else None)


def handlers() -> Iterator[tuple[OperationSpec, object]]:
    for service in SERVICES:
        module = importlib.import_module(f"consultflow.{service}.jobs")
        by_name = {f"{service}.{name}": function for name, function in _handler_functions(module).items()}
        for spec in registry(service).catalogue:
            yield spec, by_name[spec.name]


def _handler_functions(module: object) -> dict[str, object]:
    """The module's handler functions by operation name, from their `@operations.handler("…")` lines."""
    found: dict[str, object] = {}
    for _, function in inspect.getmembers(module, inspect.isfunction):
        match = re.search(r'@operations\.handler\(\s*"(\w+)"', inspect.getsource(function))
        if match and function.__module__ == getattr(module, "__name__", ""):
            found[match.group(1)] = function
    return found


def test_each_contract_declares_what_its_handler_reads_and_returns() -> None:
    """Every literal input name a handler reads is declared, required when read with no default (one read
    with a default may still be required: the service's rules may refuse it empty), and the keys it returns
    are exactly the declared outputs."""
    wrong = []
    for spec, function in handlers():
        reads = handler_reads(inspect.getsource(function))  # type: ignore[arg-type]
        declared = {f.name: f for f in spec.inputs}
        for name in sorted(reads.required | reads.optional):
            if name not in declared:
                wrong.append(f"{spec.name}: reads {name!r}, which it does not declare")
        for name in sorted(reads.required):
            if name in declared and not declared[name].required:
                wrong.append(f"{spec.name}: refuses a job without {name!r}, declared optional")
        if reads.returned is not None and reads.returned != {f.name for f in spec.outputs}:
            wrong.append(
                f"{spec.name}: returns {sorted(reads.returned)}, declares {[f.name for f in spec.outputs]}"
            )
    assert wrong == []


def test_the_code_check_finds_an_undeclared_read() -> None:
    sample = """
def sample(uow, job, deps):
    return {"a": job.text("x"), "b": job.get("y", None), "c": _parameter(job, "z")}
"""
    reads = handler_reads(sample)
    assert reads == Reads(frozenset({"x"}), frozenset({"y", "z"}), frozenset({"a", "b", "c"}))


# --- the contracts against the diagrams ---


@dataclass(frozen=True)
class ServiceTask:
    where: str  # "<file>#<element id>"
    operation: str
    parameters: frozenset[str]


def service_tasks(root: ET.Element, source: str) -> list[ServiceTask]:
    tasks = []
    for task in root.iter(f"{{{BPMN}}}serviceTask"):
        operator = task.find(f".//{{{SPIFF}}}serviceTaskOperator")
        if operator is None:
            continue
        parameters = frozenset(p.get("id", "") for p in operator.iter(f"{{{SPIFF}}}parameter"))
        tasks.append(ServiceTask(f"{source}#{task.get('id')}", operator.get("id", ""), parameters))
    return tasks


def parameter_problems(task: ServiceTask, catalogue: Mapping[str, OperationSpec]) -> list[str]:
    spec = catalogue.get(task.operation)
    if spec is None:
        return [f"{task.where}: no service declares {task.operation!r}"]
    problems = [
        f"{task.where}: passes {name!r}, not an input of {task.operation}"
        for name in sorted(task.parameters)
        if spec.input(name) is None
    ]
    problems += [
        f"{task.where}: does not pass {f.name!r}, which {task.operation} requires"
        for f in spec.inputs
        if f.required and f.name not in task.parameters
    ]
    return problems


def uncaught_error_problems(
    root: ET.Element, source: str, catalogue: Mapping[str, OperationSpec]
) -> list[str]:
    """Boundary error events on service tasks that catch a code the task's operation never throws."""
    codes = {e.get("id"): e.get("errorCode", "") for e in root.iter(f"{{{BPMN}}}error")}
    operations = {t.where.split("#", 1)[1]: t.operation for t in service_tasks(root, source)}
    problems = []
    for boundary in root.iter(f"{{{BPMN}}}boundaryEvent"):
        attached = boundary.get("attachedToRef", "")
        definition = boundary.find(f"{{{BPMN}}}errorEventDefinition")
        if definition is None or attached not in operations:
            continue
        spec = catalogue.get(operations[attached])
        declared = {e.code for e in spec.errors} if spec else set()
        code = codes.get(definition.get("errorRef"), "")
        if not code:
            problems.append(f"{source}#{boundary.get('id')}: catches any error on {attached}; name a code")
        elif code not in declared:
            problems.append(
                f"{source}#{boundary.get('id')}: catches {code!r}, which {operations[attached]} never throws"
            )
    return problems


def diagrams() -> Iterator[tuple[str, ET.Element]]:
    for path in DIAGRAMS:
        yield str(path.relative_to(ROOT)), ET.parse(path).getroot()


def test_there_are_diagrams_to_check() -> None:
    tasks = [t for source, root in diagrams() for t in service_tasks(root, source)]
    assert len({t.operation for t in tasks}) == len(CATALOGUE), "every operation is used by a diagram"
    assert any("fixtures" in t.where for t in tasks), "the frozen older versions are checked too"


def test_every_service_task_passes_declared_inputs_and_every_required_one() -> None:
    problems = [
        problem
        for source, root in diagrams()
        for task in service_tasks(root, source)
        for problem in parameter_problems(task, CATALOGUE)
    ]
    assert problems == []


def test_every_error_a_diagram_catches_on_a_service_task_is_declared_by_its_operation() -> None:
    problems = [p for source, root in diagrams() for p in uncaught_error_problems(root, source, CATALOGUE)]
    assert problems == []


def _diagram_catching(code: str) -> ET.Element:
    body = (
        '<startEvent id="s"/>'
        f'<serviceTask id="plan">{operation("delivery.plan_online_delivery", project_id="p", platform="p")}'
        "</serviceTask>"
        '<boundaryEvent id="caught" attachedToRef="plan">'
        '<errorEventDefinition errorRef="err"/></boundaryEvent>'
        '<endEvent id="e"/><endEvent id="e2"/>'
    )
    xml = bpmn("p", body, "s -> plan\nplan -> e\ncaught -> e2", f'<error id="err" errorCode="{code}"/>')
    return ET.fromstring(xml)


def test_the_error_check_finds_a_catch_the_operation_never_throws() -> None:
    assert uncaught_error_problems(_diagram_catching("channel_not_tested"), "t.bpmn", CATALOGUE) == []
    assert uncaught_error_problems(_diagram_catching("no_such_error"), "t.bpmn", CATALOGUE) == [
        "t.bpmn#caught: catches 'no_such_error', which delivery.plan_online_delivery never throws"
    ]


def test_the_parameter_check_finds_an_undeclared_and_a_missing_input() -> None:
    task = ServiceTask("t.bpmn#plan", "delivery.plan_online_delivery", frozenset({"project_id", "speed"}))
    assert parameter_problems(task, CATALOGUE) == [
        "t.bpmn#plan: passes 'speed', not an input of delivery.plan_online_delivery",
        "t.bpmn#plan: does not pass 'platform', which delivery.plan_online_delivery requires",
    ]


# --- the human catalogue and the published messages ---


def test_the_documented_table_lists_exactly_the_declared_operations() -> None:
    doc = (ROOT / "docs" / "operations.md").read_text(encoding="utf-8").split("\n## ", 1)[0]
    documented = re.findall(r"^\| `(\w+\.\w+)` \|", doc, re.MULTILINE)
    assert sorted(documented) == sorted(CATALOGUE)
    assert len(documented) == len(set(documented))


def test_a_contract_becomes_the_catalogue_message() -> None:
    spec = CATALOGUE["delivery.plan_online_delivery"]
    message = operation_message(spec)
    assert (message.name, message.service, list(message.clauses)) == (
        "delivery.plan_online_delivery",
        "delivery",
        ["4.2.2"],
    )
    platform = next(f for f in message.inputs if f.name == "platform")
    assert (platform.type, platform.required, list(platform.values)) == (
        "string",
        True,
        ["email", "online_documents", "video_conference"],
    )
    assert [(e.code, bool(e.description)) for e in message.errors] == [("channel_not_tested", True)]
    assumed = operation_message(CATALOGUE["risk.decide_deviation"])
    assert assumed.description.startswith("[assumption]")
    assert isinstance(message, pb.Operation)


@pytest.mark.parametrize("service", SERVICES)
def test_summaries_are_one_readable_line(service: str) -> None:
    long = [s.name for s in registry(service).catalogue if len(s.summary) > 120 or s.summary[-1] not in ".)"]
    assert long == []
