"""Every check a deploy makes on its files, collected: what ValidateResources answers and what
DeployResources refuses with (its first problem).

A check that can go on after a problem does (each file is parsed, each process's shape, decisions and
scripts checked on their own), so a modeler sees every marker at once; one that cannot (SpiffWorkflow's
parser only runs on files whose shape passed, as it recurses and dies on hostile shapes) stops there.
Each problem is a `DeploymentError` (engine.py re-exports it) carrying its file, element, line and rule.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from lxml import etree
from SpiffWorkflow.bpmn.parser.ValidationException import ValidationException

from consultflow.orchestrator import structure
from consultflow.platform.decisions import DecisionTableError
from consultflow.platform.errors import InvalidArgument
from consultflow.platform.limits import Limits

MAX_RESOURCE_BYTES = 2 * 1024 * 1024


class DeploymentError(InvalidArgument):
    """A resource does not parse or validate; the message names file, element and line."""

    def __init__(
        self, resource: str, problem: str, element: str = "", line: int = 0, rule: str = "parse"
    ) -> None:
        where = resource + (f", line {line}" if line else "") + (f", element {element!r}" if element else "")
        super().__init__(f"resources[{resource}]", f"{where}: {problem}")
        self.resource = resource
        self.element = element
        self.line = line
        self.rule = rule  # which check refused it: "parse", "limit.max_fan_out", "script.name", …
        self.text = problem  # what is wrong, without the file and element (a Problem's message)


_SAFE_XML = etree.XMLParser(
    resolve_entities=False, no_network=True, load_dtd=False, dtd_validation=False, huge_tree=False
)


def parse_xml(name: str, content: bytes) -> Any:
    """Parses one resource safely: no DOCTYPE (so no entity expansion), no network, bounded size."""
    if len(content) > MAX_RESOURCE_BYTES:
        raise DeploymentError(name, f"larger than {MAX_RESOURCE_BYTES} bytes", rule="limit.resource_bytes")
    try:
        tree = etree.fromstring(content, _SAFE_XML).getroottree()
    except etree.XMLSyntaxError as exc:
        raise DeploymentError(name, f"not well-formed XML: {exc.msg}", line=exc.lineno or 0) from exc
    if tree.docinfo.doctype or tree.docinfo.internalDTD is not None:
        raise DeploymentError(name, "DOCTYPE declarations are not allowed", rule="parse.doctype")
    return tree


@dataclass(frozen=True)
class ParsedProcess:
    """An executable process as the parser read it (engine.py makes its `ProcessSpecs`)."""

    process_id: str
    name: str
    resource_name: str
    spec: Any
    subprocess_specs: Mapping[str, Any]
    resource_names: tuple[str, ...]


@dataclass
class Checked:
    """The executable processes of a set of files, or why they cannot be deployed."""

    processes: list[ParsedProcess] = field(default_factory=list)
    problems: list[DeploymentError] = field(default_factory=list)


def check_resources(
    resources: Mapping[str, bytes],
    checks: Limits | None,
    new_parser: Callable[[], Any],
    element_problem: Callable[[Any], str | None],
) -> Checked:
    """Parses BPMN and DMN resources together with the engine's parser (`new_parser`): every executable
    process with what it calls, or every problem found (then no processes). `checks` None: a stored
    version read again, refused only by parsing. `element_problem` says why a task spec's own settings
    (a user task's due date, assignee) can never be read."""
    checked = Checked()
    problems = checked.problems
    trees: dict[str, Any] = {}
    for name, content in sorted(resources.items()):
        try:
            trees[name] = parse_xml(name, content)
        except DeploymentError as error:
            problems.append(error)
    if checks is not None:
        for shape in structure.problems(trees, checks):
            problems.append(
                DeploymentError(shape.resource, shape.text, shape.element, shape.line, rule=shape.rule)
            )
    if problems:
        return checked
    parser = new_parser()
    failed: set[str] = set()
    for name, tree in trees.items():
        try:
            _add(parser, name, tree)
        except DeploymentError as error:
            problems.append(error)
            failed.add(name)
        except ValidationException as exc:
            problems.append(_deployment_error(exc, name))
            failed.add(name)
    problems.extend(_decision_problems(parser))
    for process_id in parser.get_process_ids():
        process_parser = parser.get_process_parser(process_id)
        resource_name = process_parser.filename or ""
        if resource_name in failed:
            continue
        try:
            spec = parser.get_spec(process_id)
            subprocess_specs = parser.get_subprocess_specs(process_id)
        except ValidationException as exc:
            problems.append(_deployment_error(exc, resource_name))
            continue
        if checks is not None:
            problems.extend(_script_problems(spec, subprocess_specs, resource_name, checks, element_problem))
        used = {resource_name} | {
            parser.get_process_parser(p).filename for p in subprocess_specs if parser.get_process_parser(p)
        }
        used |= {n for n in resources if n.endswith(".dmn")}
        checked.processes.append(
            ParsedProcess(
                process_id,
                process_parser.get_name() or process_id,
                resource_name,
                spec,
                subprocess_specs,
                tuple(sorted(n for n in used if n)),
            )
        )
    if problems:
        checked.processes = []
    return checked


def _add(parser: Any, name: str, tree: Any) -> None:
    if name.endswith(".dmn"):
        if not tree.getroot().findall("{*}decision"):
            raise DeploymentError(name, "a .dmn file holds one decision; this one holds none", rule="dmn")
        for decision in tree.getroot().findall("{*}decision"):
            other = parser.dmn_parsers.get(decision.get("id"))
            if other is not None:
                raise DeploymentError(
                    name,
                    f"decision {decision.get('id')!r} is also defined in {other.filename}",
                    rule="dmn.duplicate",
                )
        parser.add_dmn_xml(tree.getroot(), filename=name)
    elif name.endswith(".bpmn") or name.endswith(".bpmn20.xml"):
        parser.add_bpmn_xml(tree, filename=name)
    else:
        raise DeploymentError(name, "only .bpmn and .dmn files can be deployed", rule="resource.type")


def _decision_problems(parser: Any) -> list[DeploymentError]:
    """Every decision table outside what `platform.decisions` evaluates, whether or not a diagram calls it
    yet (services read the same tables)."""
    found: list[DeploymentError] = []
    for dmn in parser.dmn_parsers.values():
        try:
            parser.decision_table(dmn.bpmn_id)
        except DecisionTableError as exc:
            found.append(DeploymentError(exc.source, exc.detail, exc.element, exc.line, rule="dmn"))
    return found


def _deployment_error(exc: ValidationException, fallback_name: str) -> DeploymentError:
    return DeploymentError(
        exc.file_name or fallback_name,
        str(getattr(exc, "error_msg", None) or exc).splitlines()[0],
        element=getattr(exc, "id", "") or "",
        line=int(getattr(exc, "line_number", 0) or 0),
        rule="bpmn",
    )


def _script_problems(
    spec: Any,
    subprocess_specs: Mapping[str, Any],
    resource: str,
    limits: Limits,
    element_problem: Callable[[Any], str | None],
) -> list[DeploymentError]:
    """A script or condition the restricted evaluator would refuse at run time, and a user task's literal
    due date, assignee or candidate users that do not parse: one problem per element."""
    from consultflow.platform.scripting import ScriptViolation, check

    found: list[DeploymentError] = []
    for process in (spec, *subprocess_specs.values()):
        for task_spec in process.task_specs.values():
            problem = element_problem(task_spec)
            if problem:
                found.append(DeploymentError(resource, problem, element=task_spec.bpmn_id, rule="usertask"))
                continue
            for source, mode in _sources(task_spec):
                try:
                    check(source, mode, limits)
                except ScriptViolation as exc:
                    found.append(
                        DeploymentError(
                            resource,
                            f"refused script: {exc}",
                            element=task_spec.bpmn_id,
                            rule=_script_rule(exc),
                        )
                    )
                    break
    return found


def _sources(task_spec: Any) -> list[tuple[str, str]]:
    """The scripts ("exec") and expressions ("eval") an element carries."""
    sources: list[tuple[str, str]] = []
    for attr in ("script", "prescript", "postscript"):
        value = getattr(task_spec, attr, None)
        if value:
            sources.append((value, "exec"))
    for condition, _target in getattr(task_spec, "cond_task_specs", None) or []:
        expression = getattr(condition, "args", [None])[0] if condition is not None else None
        if expression:
            sources.append((expression, "eval"))
    for param in (getattr(task_spec, "operation_params", None) or {}).values():
        sources.append((param["value"], "eval"))
    # timer, conditional and message payload expressions; multi-instance cardinality and condition
    definition = getattr(task_spec, "event_definition", None)
    for owner, attr in ((definition, "expression"), (task_spec, "cardinality"), (task_spec, "condition")):
        value = getattr(owner, attr, None)
        if isinstance(value, str) and value.strip():
            sources.append((value, "eval"))
    return sources


def _script_rule(violation: Exception) -> str:
    limit = str(getattr(violation, "limit", "") or "")
    if limit:
        return f"limit.{limit}"
    text = str(violation)
    if "does not provide" in text or "name" in text:
        return "script.name"
    if "SyntaxError" in text:
        return "script.syntax"
    return "script"
