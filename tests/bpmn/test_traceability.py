"""Every step and rule clause of the regulation has an element, documentation cites real clauses, and
docs/traceability.md is what `python -m consultflow.traceability` writes now."""

from __future__ import annotations

from consultflow import traceability
from consultflow.traceability import Clause, Element
from tests.support.catalogue import BPMN_DIR, NS, ROOT, diagram_files, parse

CLAUSES = traceability.read_clauses(ROOT / traceability.CLAUSES)
ELEMENTS = traceability.read_elements(BPMN_DIR)


def test_every_step_and_rule_clause_has_an_element() -> None:
    assert len([c for c in CLAUSES if c.kind in ("step", "rule")]) == 49
    assert traceability.unimplemented(CLAUSES, ELEMENTS) == []


def test_documentation_cites_only_catalogued_clauses() -> None:
    assert traceability.unknown_clauses(CLAUSES, ELEMENTS) == []


def test_every_named_flow_node_begins_its_documentation_with_a_clause() -> None:
    undocumented = []
    for path in diagram_files():
        root = parse(path)
        for element in root.iter():
            if not isinstance(element.tag, str) or not element.get("name"):
                continue
            if element.tag.endswith(
                ("}lane", "}participant", "}message", "}error", "}correlationKey", "}correlationProperty")
            ):
                continue
            if element.tag.endswith("}sequenceFlow") or "BPMN/20100524/MODEL" not in element.tag:
                continue
            documentation = element.find("bpmn:documentation", NS)
            clauses, _, _ = traceability.parse_documentation(
                documentation.text or "" if documentation is not None else ""
            )
            if not clauses:
                undocumented.append(f"{path.name} {element.get('id')}")
    assert undocumented == []


def test_the_report_is_current() -> None:
    text, missing = traceability.build(ROOT)
    assert missing == []
    assert (ROOT / traceability.REPORT).read_text(encoding="utf-8") == text, (
        "docs/traceability.md is stale: run `make docs` and commit it"
    )


def test_a_clause_that_loses_its_element_is_reported() -> None:
    clauses = [
        Clause("2.2.2", "項目可行性評估", "Feasibility assessment", "step"),
        Clause("1.1", "", "", "principle"),
    ]
    element = Element("intake.bpmn", "assess", "評估 Assess", "userTask", ("2.2.2",), "Feasibility", ())
    assert traceability.unimplemented(clauses, [element]) == []
    assert traceability.unimplemented(clauses, []) == ["2.2.2"]
    text = traceability.render(clauses, [], {}, {})
    assert "**no element implements this clause**" in text and "missing: 2.2.2" in text


def test_documentation_is_read_as_clauses_summary_and_assumptions() -> None:
    clauses, summary, assumptions = traceability.parse_documentation(
        "[3.4.1][3.5.1] Execution — regular meetings.\n[assumption] Every 14 days: no period is given."
    )
    assert clauses == ("3.4.1", "3.5.1")
    assert summary == "Execution — regular meetings."
    assert assumptions == ("Every 14 days: no period is given.",)
    assert traceability.parse_documentation("no clause here") == ((), "no clause here", ())
