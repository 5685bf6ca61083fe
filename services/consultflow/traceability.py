"""Clause → diagram elements → path-test scenarios: writes docs/traceability.md.

Reads the regulation's clause catalogue (docs/regulation/clauses.tsv), the documentation of every element in
bpmn/*.bpmn and the descriptions in bpmn/*.dmn (an element implements the clauses its documentation begins
with, e.g. `[2.2.2][6.1.1] …`; a line `[assumption] …` marks a rule the text does not state), and the path
tests' record of which scenario reached which element (tests/bpmn/scenario_elements.json).

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
from dataclasses import dataclass
from pathlib import Path

from lxml import etree

BPMN_NS = "http://www.omg.org/spec/BPMN/20100524/MODEL"
CLAUSES = Path("docs/regulation/clauses.tsv")
DIAGRAMS = Path("bpmn")
SCENARIOS = Path("tests/bpmn/scenario_elements.json")
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


def read_elements(folder: Path) -> list[Element]:
    elements: list[Element] = []
    for path in sorted(folder.glob("*.bpmn")):
        root = etree.parse(str(path), _PARSER).getroot()
        for doc in root.iter(f"{{{BPMN_NS}}}documentation"):
            owner = doc.getparent()
            clauses, summary, assumptions = parse_documentation(doc.text or "")
            elements.append(
                Element(
                    path.name,
                    owner.get("id", ""),
                    owner.get("name", ""),
                    _local(owner.tag),
                    clauses,
                    summary,
                    assumptions,
                )
            )
    for path in sorted(folder.glob("*.dmn")):
        root = etree.parse(str(path), _PARSER).getroot()
        for description in root.iter("{*}description"):
            owner = description.getparent()
            kind = _local(owner.tag)
            name = owner.get("name", "") if kind == "decision" else ""
            clauses, summary, assumptions = parse_documentation(description.text or "")
            elements.append(
                Element(path.name, owner.get("id", ""), name, kind, clauses, summary, assumptions)
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


def unimplemented(clauses: Iterable[Clause], elements: Iterable[Element]) -> list[str]:
    """Step and rule clauses no element's documentation names."""
    named = {c for e in elements for c in e.clauses}
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

    def scenarios(element: Element) -> str:
        if element.file.endswith(".dmn"):
            decision = element.id if element.kind == "decision" else element.id.split("_rule_")[0]
            if not callers.get(decision):
                return "read by a service (see operations.md)"
            names = sorted({s for caller in callers[decision] for s in reached.get(caller, [])})
            return "table evaluated in " + (", ".join(names) or "no scenario")
        return ", ".join(reached.get((element.file, element.id), [])) or "—"

    implemented = [c for c in clauses if c.kind in IMPLEMENTED_KINDS]
    missing = unimplemented(clauses, elements)
    assumptions = [e for e in elements if e.assumptions]
    lines = [
        "# Traceability: regulation → diagrams → tests",
        "",
        "Generated by `python -m consultflow.traceability` from `docs/regulation/clauses.tsv`, the "
        "documentation of the elements in `bpmn/*.bpmn`, the descriptions in `bpmn/*.dmn` and the path "
        "tests' record `tests/bpmn/scenario_elements.json` (scenarios in `tests/bpmn/test_paths.py`). "
        "Do not edit by hand: a test fails when this file is stale or a step or rule clause has no element.",
        "",
        f"- {len(implemented)} step and rule clauses, {len(implemented) - len(missing)} implemented"
        + (f"; **missing: {', '.join(missing)}**" if missing else ""),
        f"- {len(elements)} documented elements in {len({e.file for e in elements})} files",
        f"- {sum(len(e.assumptions) for e in assumptions)} assumptions (listed at the end)",
        "",
        "Find a clause below, open the file in a BPMN modeler and search for the element id.",
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
            lines += ["| file | element | name | reached by scenarios |", "| --- | --- | --- | --- |"]
            for e in found:
                label = e.name or e.summary
                lines.append(f"| {e.file} | `{e.id}` ({e.kind}) | {_cell(label)} | {_cell(scenarios(e))} |")
    lines += ["", "## Assumptions", "", "Rules the regulation does not state, for its owner to confirm.", ""]
    lines += ["| file | element | assumption |", "| --- | --- | --- |"]
    for e in assumptions:
        for assumption in e.assumptions:
            lines.append(f"| {e.file} | `{e.id}` | {_cell(assumption or e.summary)} |")
    return "\n".join(lines) + "\n"


def build(root: Path) -> tuple[str, list[str]]:
    """The report's text and the step/rule clauses without an element."""
    clauses = read_clauses(root / CLAUSES)
    elements = read_elements(root / DIAGRAMS)
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
