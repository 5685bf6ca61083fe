"""What docs/operations.md promises, read from its tables, and the diagrams' XML, for the diagram tests."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from lxml import etree

ROOT = Path(__file__).resolve().parents[2]
BPMN_DIR = ROOT / "bpmn"
OPERATIONS = ROOT / "docs" / "operations.md"
NS = {
    "bpmn": "http://www.omg.org/spec/BPMN/20100524/MODEL",
    "bpmndi": "http://www.omg.org/spec/BPMN/20100524/DI",
    "dc": "http://www.omg.org/spec/DD/20100524/DC",
    "di": "http://www.omg.org/spec/DD/20100524/DI",
    "camunda": "http://camunda.org/schema/1.0/bpmn",
    "spiffworkflow": "http://spiffworkflow.org/bpmn/schema/1.0/core",
}
CAMUNDA = "{" + NS["camunda"] + "}"


def diagram_files() -> list[Path]:
    return sorted(BPMN_DIR.glob("*.bpmn"))


def parse(path: Path) -> etree._Element:
    return etree.parse(str(path)).getroot()


def _names(cell: str) -> list[str]:
    """`a, b (x, y), c ("v")` → [a, b, c]: names without the value lists in parentheses."""
    cell = re.sub(r"\([^)]*\)", "", cell)
    return [n.strip().strip("`") for n in cell.split(",") if n.strip() and n.strip() != "—"]


def _table_rows(section: str) -> list[list[str]]:
    text = OPERATIONS.read_text()
    start = text.index(section)
    rows = []
    for line in text[start:].splitlines()[1:]:
        if line.startswith("## "):
            break
        if line.startswith("|") and not line.startswith("| ---"):
            rows.append([c.strip() for c in line.strip().strip("|").split("|")])
    return rows[1:]  # without the header


_VALUE_LIST = re.compile(r"(\w+) \(([a-z_]+(?:, [a-z_]+)+)\)")


@dataclass(frozen=True)
class Operation:
    name: str
    clauses: str
    inputs: tuple[str, ...]  # required
    optional: tuple[str, ...]  # `; optional a, b`
    outputs: tuple[str, ...]
    values: dict[str, tuple[str, ...]]  # input -> the values it accepts, where the catalogue lists them


def operations() -> dict[str, Operation]:
    result = {}
    for row in _table_rows("# Operation catalogue"):
        if not row[0].startswith("`"):
            continue  # a service's heading row
        name = row[0].strip("`")
        required, _, optional = row[2].partition("; optional")
        values = {m.group(1): tuple(m.group(2).split(", ")) for m in _VALUE_LIST.finditer(row[2])}
        result[name] = Operation(
            name, row[1], tuple(_names(required)), tuple(_names(optional)), tuple(_names(row[3])), values
        )
    return result


@dataclass(frozen=True)
class MessageSpec:
    name: str
    key: str
    carries: tuple[str, ...]


def messages() -> dict[str, MessageSpec]:
    result = {}
    for row in _table_rows("## Messages"):
        name = row[0].strip("`")
        result[name] = MessageSpec(name, row[1], tuple(_names(row[2])))
    return result


def lane_groups() -> dict[str, str]:
    """Lane label → candidate group."""
    return {row[1]: row[0].strip("`") for row in _table_rows("## Candidate groups")}
