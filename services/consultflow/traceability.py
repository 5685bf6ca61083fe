"""Clause → diagram elements → path-test scenarios: writes docs/traceability.md.

Reads the regulation's clause catalogue (docs/regulation/clauses.tsv), the documentation of every element in
bpmn/*.bpmn and the descriptions in bpmn/*.dmn (an element implements the clauses its documentation begins
with, e.g. `[2.2.2][6.1.1] …`; a line `[assumption] …` marks a rule the text does not state), and the path
tests' record of which scenario reached which element (tests/bpmn/scenario_elements.json).

Per clause it says *how* each element models it, read from the XML: what the element is (a user task, the
operation a service task calls, a timer and its period, a gateway, a decision rule…), who acts (the lane,
the candidate group, the assignee; the client's pool for a message flow) and which data it handles (form
fields, parameters, the message, conditions, a rule's inputs and outputs).

    python -m consultflow.traceability            # write docs/traceability.md
    python -m consultflow.traceability --check    # exit 1 when it is stale or a clause has no element
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import sys
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from lxml import etree

BPMN_NS = "http://www.omg.org/spec/BPMN/20100524/MODEL"
CLAUSES = Path("docs/regulation/clauses.tsv")
DIAGRAMS = Path("bpmn")
SCENARIOS = Path("tests/bpmn/scenario_elements.json")
OPERATIONS = Path("docs/operations.md")
REPORT = Path("docs/traceability.md")
IMPLEMENTED_KINDS = ("step", "rule")
_TAGS = re.compile(r"^((?:\[\d+(?:\.\d+)*\])+)\s*(.*)")
_TAG = re.compile(r"\[(\d+(?:\.\d+)*)\]")
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)


@dataclass(frozen=True)
class Clause:
    id: str
    zh: str
    en: str
    kind: str


@dataclass(frozen=True)
class Element:
    """A documented BPMN element, DMN decision or DMN rule."""

    file: str
    id: str
    name: str
    kind: str
    clauses: tuple[str, ...]
    summary: str
    assumptions: tuple[str, ...]
    how: str = ""  # what the element is, e.g. "service task `crm.record_inquiry`"
    actor: str = ""  # who does it: lane, candidate group, assignee, or who sends the message
    data: str = ""  # form fields, parameters, message, timer, conditions, rule entries


def parse_documentation(text: str) -> tuple[tuple[str, ...], str, tuple[str, ...]]:
    """`[2.2.2][6.1.1] Title — text` plus `[assumption] …` lines → (clause ids, first line, assumptions)."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    if not lines:
        return (), "", ()
    assumptions = tuple(
        line.removeprefix("[assumption]").strip() for line in lines if line.startswith("[assumption]")
    )
    match = _TAGS.match(lines[0])
    if match is None:  # untagged; a first line that is an assumption is summarised without its marker
        return (), lines[0].removeprefix("[assumption]").strip(), assumptions
    return tuple(_TAG.findall(match.group(1))), match.group(2), assumptions


def read_clauses(path: Path) -> list[Clause]:
    with path.open(encoding="utf-8", newline="") as handle:
        return [Clause(r["id"], r["zh"], r["en"], r["kind"]) for r in csv.DictReader(handle, delimiter="\t")]


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _code(items: Iterable[str]) -> str:
    return ", ".join(f"`{item}`" for item in items if item)


def _text(element: etree._Element | None) -> str:
    return " ".join((element.text or "").split()) if element is not None else ""


def _literal(expression: str) -> str:
    """`"R/P14D"` → `R/P14D`: a timer given as one string literal reads better without its quotes."""
    inner = expression[1:-1]
    quoted = len(expression) >= 2 and expression[0] == expression[-1] == '"'
    return inner if quoted and '"' not in inner else expression


_EVENT_KINDS = {
    "startEvent": "start event",
    "endEvent": "end event",
    "intermediateCatchEvent": "intermediate catch event",
    "intermediateThrowEvent": "intermediate throw event",
    "boundaryEvent": "boundary event",
}
_PLAIN_KINDS = {
    "userTask": "user task",
    "businessRuleTask": "business rule task",
    "receiveTask": "receive task",
    "sendTask": "send task",
    "scriptTask": "script task",
    "manualTask": "manual task",
    "task": "task",
    "exclusiveGateway": "exclusive gateway",
    "parallelGateway": "parallel gateway",
    "inclusiveGateway": "inclusive gateway",
    "eventBasedGateway": "event-based gateway",
    "process": "process",
    "sequenceFlow": "sequence flow",
    "lane": "lane",
    "participant": "pool",
}


class _Diagram:
    """One BPMN file's lookups: lanes, messages, errors, message flows and flows, by element id."""

    def __init__(self, root: etree._Element) -> None:
        self.ns = {"bpmn": BPMN_NS}
        self.by_id = {e.get("id"): e for e in root.iter() if isinstance(e.tag, str) and e.get("id")}
        self.lane_of: dict[str, str] = {}
        for lane in root.iter(f"{{{BPMN_NS}}}lane"):
            for ref in lane.iterfind("bpmn:flowNodeRef", self.ns):
                self.lane_of[(ref.text or "").strip()] = lane.get("name", "")
        self.messages = {m.get("id"): m.get("name", "") for m in root.iter(f"{{{BPMN_NS}}}message")}
        self.errors = {
            e.get("id"): e.get("errorCode") or e.get("name", "") for e in root.iter(f"{{{BPMN_NS}}}error")
        }
        pools = {p.get("id"): p.get("name", "") for p in root.iter(f"{{{BPMN_NS}}}participant")}
        self.partners: dict[str, list[str]] = defaultdict(list)  # element id → "from X" / "to X"
        for flow in root.iter(f"{{{BPMN_NS}}}messageFlow"):
            source, target = flow.get("sourceRef", ""), flow.get("targetRef", "")
            if source in pools:
                self.partners[target].append(f"from {pools[source]}")
            if target in pools:
                self.partners[source].append(f"to {pools[target]}")
        self.outgoing: dict[str, list[etree._Element]] = defaultdict(list)
        for flow in root.iter(f"{{{BPMN_NS}}}sequenceFlow"):
            self.outgoing[flow.get("sourceRef", "")].append(flow)

    def lane(self, element: etree._Element) -> str:
        """The lane of the element, of the activity a boundary event is attached to, or of the
        sub-process that holds it."""
        current: etree._Element | None = element
        while current is not None:
            element_id = current.get("id", "")
            if element_id in self.lane_of:
                return self.lane_of[element_id]
            attached = current.get("attachedToRef")
            current = self.by_id.get(attached) if attached else current.getparent()
        return ""

    def how(self, element: etree._Element) -> tuple[str, str, str]:
        """(what the element is, who acts, which data) for a documented BPMN element."""
        kind = _local(element.tag)
        camunda = "{http://camunda.org/schema/1.0/bpmn}"
        actor = [self.lane(element)] if kind not in ("process", "participant", "lane") else []
        data: list[str] = []
        how = _PLAIN_KINDS.get(kind, kind)
        if kind == "userTask":
            for attribute, label in (("candidateGroups", "group"), ("candidateUsers", "users")):
                if element.get(camunda + attribute):
                    actor.append(f"{label} {_code(element.get(camunda + attribute, '').split(','))}")
            if element.get(camunda + "assignee"):
                actor.append(f"assignee `{element.get(camunda + 'assignee')}`")
            fields = [f.get("id", "") for f in element.iter(camunda + "formField")]
            data.append(f"form {_code(fields)}" if fields else "no form")
        elif kind == "serviceTask":
            operator = element.find(".//{*}serviceTaskOperator")
            operation = operator.get("id", "") if operator is not None else ""
            how = f"service task `{operation}`" if operation else how
            if operation:
                actor.append(f"service {operation.split('.')[0]}")
            parameters = [p.get("id", "") for p in element.iter("{*}parameter")]
            data.append(f"parameters {_code(parameters)}" if parameters else "no parameters")
        elif kind == "businessRuleTask":
            decision = _text(element.find(".//{*}calledDecisionId"))
            data.append(f"decision `{decision}`")
        elif kind == "callActivity":
            how = f"call activity → `{element.get('calledElement', '')}`"
        elif kind == "subProcess":
            how = "event sub-process" if element.get("triggeredByEvent") == "true" else "sub-process"
            loop = element.find("bpmn:multiInstanceLoopCharacteristics", self.ns)
            if loop is not None:
                how = f"multi-instance {how}"
                item = loop.find("bpmn:inputDataItem", self.ns)
                collection = _text(loop.find("bpmn:loopDataInputRef", self.ns))
                data.append(f"each `{item.get('id') if item is not None else ''}` of `{collection}`")
        elif kind in _EVENT_KINDS:
            how, event_data = self._event(element, kind)
            data += event_data
        elif kind.endswith("Gateway"):
            data += self._conditions(element)
        elif kind == "sequenceFlow":
            condition = _text(element.find("bpmn:conditionExpression", self.ns))
            data.append(f"when `{condition}`" if condition else "")
        if kind == "receiveTask" and element.get("messageRef"):
            data.append(f"message `{self.messages.get(element.get('messageRef'), '')}`")
        actor += self.partners.get(element.get("id", ""), [])
        return how, "; ".join(a for a in actor if a), "; ".join(d for d in data if d)

    def _event(self, element: etree._Element, kind: str) -> tuple[str, list[str]]:
        definitions = [
            d for d in element if isinstance(d.tag, str) and _local(d.tag).endswith("EventDefinition")
        ]
        trigger = " ".join(_local(d.tag).removesuffix("EventDefinition") for d in definitions)
        how = f"{trigger} {_EVENT_KINDS[kind]}".strip()
        if kind == "boundaryEvent" and element.get("cancelActivity") == "false":
            how += " (non-interrupting)"
        data: list[str] = []
        for definition in definitions:
            trigger = _local(definition.tag)
            if trigger == "messageEventDefinition":
                data.append(f"message `{self.messages.get(definition.get('messageRef'), '')}`")
            elif trigger == "errorEventDefinition":
                code = self.errors.get(definition.get("errorRef"), "")
                data.append(f"error `{code}`" if code else "any error")
            elif trigger == "timerEventDefinition":
                for tag, label in (("timeDuration", "after"), ("timeCycle", "every"), ("timeDate", "at")):
                    expression = _literal(_text(definition.find(f"bpmn:{tag}", self.ns)))
                    if expression:
                        data.append(f"{label} `{expression}`")
        return how, data

    def _conditions(self, gateway: etree._Element) -> list[str]:
        default = gateway.get("default")
        conditions = []
        for flow in self.outgoing.get(gateway.get("id", ""), []):
            condition = _text(flow.find("bpmn:conditionExpression", self.ns))
            if flow.get("id") == default:
                conditions.append("otherwise")
            elif condition:
                conditions.append(f"`{condition}`")
        return [" / ".join(conditions)] if conditions else []


def _dmn_how(owner: etree._Element) -> tuple[str, str]:
    """(what it is, which data) for a DMN decision or rule."""
    table = owner.find("{*}decisionTable") if _local(owner.tag) == "decision" else owner.getparent()
    if table is None:
        return _local(owner.tag), ""
    inputs = [_text(i.find("{*}inputExpression/{*}text")) for i in table.iterfind("{*}input")]
    outputs = [o.get("name", "") for o in table.iterfind("{*}output")]
    if _local(owner.tag) == "decision":
        hit_policy = table.get("hitPolicy", "UNIQUE")
        return f"decision table (hit policy {hit_policy})", f"{_code(inputs)} → {_code(outputs)}"
    entries = [_text(e.find("{*}text")) for e in owner.iterfind("{*}inputEntry")]
    given = [
        f"{name} = {entry}" if entry[:1] in ('"', "[", "(") or entry[:1].isdigit() else f"{name} {entry}"
        for name, entry in zip(inputs, entries, strict=False)
        if entry not in ("", "-")
    ]
    results = [
        f"{name} = {_text(entry.find('{*}text'))}"
        for name, entry in zip(outputs, owner.iterfind("{*}outputEntry"), strict=False)
    ]
    return "decision rule", f"when {_code(given) or 'any'} → {_code(results)}"


def read_elements(folder: Path) -> list[Element]:
    elements: list[Element] = []
    for path in sorted(folder.glob("*.bpmn")):
        root = etree.parse(str(path), _PARSER).getroot()
        diagram = _Diagram(root)
        for doc in root.iter(f"{{{BPMN_NS}}}documentation"):
            owner = doc.getparent()
            clauses, summary, assumptions = parse_documentation(doc.text or "")
            how, actor, data = diagram.how(owner)
            elements.append(
                Element(
                    path.name,
                    owner.get("id", ""),
                    owner.get("name", ""),
                    _local(owner.tag),
                    clauses,
                    summary,
                    assumptions,
                    how,
                    actor,
                    data,
                )
            )
    for path in sorted(folder.glob("*.dmn")):
        root = etree.parse(str(path), _PARSER).getroot()
        for description in root.iter("{*}description"):
            owner = description.getparent()
            kind = _local(owner.tag)
            name = owner.get("name", "") if kind == "decision" else ""
            clauses, summary, assumptions = parse_documentation(description.text or "")
            how, data = _dmn_how(owner)
            elements.append(
                Element(
                    path.name, owner.get("id", ""), name, kind, clauses, summary, assumptions, how, "", data
                )
            )
    return elements


def read_scenarios(path: Path) -> dict[tuple[str, str], list[str]]:
    """(file, element id) → the path-test scenarios whose instances reached that element."""
    record: dict[str, dict[str, list[str]]] = json.loads(path.read_text()) if path.is_file() else {}
    reached: dict[tuple[str, str], list[str]] = defaultdict(list)
    for scenario, files in sorted(record.items()):
        for file, element_ids in files.items():
            for element_id in element_ids:
                reached[(file, element_id)].append(scenario)
    return reached


CONTAINERS = ("process", "callActivity", "subProcess", "participant", "lane")


def unimplemented(clauses: Iterable[Clause], elements: Iterable[Element]) -> list[str]:
    """Step and rule clauses no working element's documentation names: a process, call activity or
    sub-process that names a clause only holds the work, so it alone does not implement it."""
    named = {c for e in elements if e.kind not in CONTAINERS for c in e.clauses}
    return [c.id for c in clauses if c.kind in IMPLEMENTED_KINDS and c.id not in named]


def unknown_clauses(clauses: Iterable[Clause], elements: Iterable[Element]) -> list[str]:
    """Clause ids cited in documentation that the catalogue does not have (typos)."""
    known = {c.id for c in clauses}
    return sorted({f"{e.file} {e.id}: [{c}]" for e in elements for c in e.clauses if c not in known})


def _chapter(clause_id: str) -> str:
    return clause_id.split(".", 1)[0]


CHAPTERS = {
    "1": "1 總則 General provisions",
    "2": "2 業務承接流程 Business intake",
    "3": "3 項目實施流程 Project implementation",
    "4": "4 項目交付流程 Delivery",
    "5": "5 項目後續跟進流程 Follow-up",
    "6": "6 項目風險管理流程 Risk management",
}


def _decision_callers(folder: Path) -> dict[str, list[tuple[str, str]]]:
    """Decision id → (file, element id) of the business rule tasks that evaluate it."""
    callers: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for path in sorted(folder.glob("*.bpmn")):
        root = etree.parse(str(path), _PARSER).getroot()
        for called in root.iter("{*}calledDecisionId"):
            task = called.getparent().getparent()
            callers[(called.text or "").strip()].append((path.name, task.get("id", "")))
    return callers


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render(
    clauses: Sequence[Clause],
    elements: Sequence[Element],
    reached: Mapping[tuple[str, str], list[str]],
    callers: Mapping[str, list[tuple[str, str]]],
) -> str:
    by_clause: dict[str, list[Element]] = defaultdict(list)
    for element in elements:
        for clause_id in element.clauses:
            by_clause[clause_id].append(element)

    def decision_of(element: Element) -> str:
        return element.id if element.kind == "decision" else element.id.split("_rule_")[0]

    def scenarios(element: Element) -> str:
        if element.file.endswith(".dmn"):
            decision = decision_of(element)
            if not callers.get(decision):
                return "read by a service (see operations.md)"
            names = sorted({s for caller in callers[decision] for s in reached.get(caller, [])})
            return "table evaluated in " + (", ".join(names) or "no scenario")
        return ", ".join(reached.get((element.file, element.id), [])) or "—"

    def actor(element: Element) -> str:
        if not element.file.endswith(".dmn"):
            return element.actor
        found = callers.get(decision_of(element), [])
        return "; ".join(f"`{task}` in {file}" for file, task in found) or element.actor or "a service"

    implemented = [c for c in clauses if c.kind in IMPLEMENTED_KINDS]
    missing = unimplemented(clauses, elements)
    assumptions = [e for e in elements if e.assumptions]
    lines = [
        "# Traceability: regulation → diagrams → tests",
        "",
        "Generated by `python -m consultflow.traceability` from `docs/regulation/clauses.tsv`, the "
        "documentation and XML of the elements in `bpmn/*.bpmn`, the descriptions and rules in `bpmn/*.dmn`, "
        "the operations in `docs/operations.md` that read a decision table and the path "
        "tests' record `tests/bpmn/scenario_elements.json` (scenarios in `tests/bpmn/test_paths.py`). "
        "Do not edit by hand: a test fails when this file is stale or a step or rule clause has no element.",
        "",
        f"- {len(implemented)} step and rule clauses, {len(implemented) - len(missing)} implemented by a "
        "task, event, gateway or decision (a process, call activity or sub-process naming a clause does not "
        "count)" + (f"; **missing: {', '.join(missing)}**" if missing else ""),
        f"- {len(elements)} documented elements in {len({e.file for e in elements})} files",
        f"- {sum(len(e.assumptions) for e in assumptions)} assumptions (listed at the end)",
        "",
        "Find a clause below, open the file in a BPMN modeler and search for the element id. Per element: "
        "**how** it models the clause (user task, the operation a service task calls, the kind of event, "
        "gateway, decision table or rule), the **actor** (lane, candidate group or assignee; the pool a "
        "message comes from or goes to; the service; for a decision, the task that evaluates it), the "
        "**data** (form fields, parameters, message, timer, the gateway's conditions, a rule's inputs and "
        "outputs) and the **assumptions** tagged on it.",
    ]
    for chapter, title in CHAPTERS.items():
        lines += ["", f"## {title}"]
        for clause in (c for c in clauses if _chapter(c.id) == chapter):
            found = by_clause.get(clause.id, [])
            lines += ["", f"### {clause.id} {clause.zh} {clause.en} ({clause.kind})", ""]
            if not found:
                principle = clause.kind == "principle"
                lines.append(
                    "_a principle: it shapes the whole model rather than one element_"
                    if principle
                    else "**no element implements this clause**"
                )
                continue
            lines += [
                "| file | element | name | how | actor | data | assumptions | reached by scenarios |",
                "| --- | --- | --- | --- | --- | --- | --- | --- |",
            ]
            for e in found:
                cells = [
                    e.file,
                    f"`{e.id}`",
                    e.name or e.summary,
                    e.how or e.kind,
                    actor(e) or "—",
                    e.data or "—",
                    "; ".join(f"[assumption] {a}" for a in e.assumptions) or "—",
                    scenarios(e),
                ]
                lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    lines += ["", "## Assumptions", "", "Rules the regulation does not state, for its owner to confirm.", ""]
    lines += ["| file | element | assumption |", "| --- | --- | --- |"]
    for e in assumptions:
        for assumption in e.assumptions:
            lines.append(f"| {e.file} | `{e.id}` | {_cell(assumption or e.summary)} |")
    return "\n".join(lines) + "\n"


def dmn_readers(catalogue: Path) -> dict[str, list[str]]:
    """Decision table file → the service operations whose catalogue row names it (they read the table)."""
    readers: dict[str, list[str]] = defaultdict(list)
    if not catalogue.is_file():
        return readers
    for line in catalogue.read_text(encoding="utf-8").splitlines():
        operation = re.match(r"\| `([a-z_]+\.[a-z_]+)` \|", line)
        for file in re.findall(r"`([a-z_]+\.dmn)`", line) if operation else []:
            readers[file].append(operation.group(1) if operation else "")
    return readers


def build(root: Path) -> tuple[str, list[str]]:
    """The report's text and the step/rule clauses without an element."""
    clauses = read_clauses(root / CLAUSES)
    readers = dmn_readers(root / OPERATIONS)
    elements = [
        replace(e, actor="service " + _code(readers[e.file])) if readers.get(e.file) else e
        for e in read_elements(root / DIAGRAMS)
    ]
    text = render(clauses, elements, read_scenarios(root / SCENARIOS), _decision_callers(root / DIAGRAMS))
    return text, unimplemented(clauses, elements)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m consultflow.traceability", description=__doc__)
    parser.add_argument("--root", type=Path, default=Path.cwd(), help="the repository (default: here)")
    parser.add_argument("--check", action="store_true", help="only check that the report is current")
    args = parser.parse_args(argv)
    text, missing = build(args.root)
    report = args.root / REPORT
    if missing:
        print(f"clauses without an element: {', '.join(missing)}", file=sys.stderr)
    if args.check:
        current = report.is_file() and report.read_text(encoding="utf-8") == text
        if not current:
            print(f"{REPORT} is stale: run python -m consultflow.traceability", file=sys.stderr)
        return 0 if current and not missing else 1
    report.write_text(text, encoding="utf-8")
    print(f"wrote {REPORT}")
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
