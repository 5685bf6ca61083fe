"""Every step and rule clause of the regulation has an element, documentation cites real clauses, and
docs/traceability.md is what `python -m consultflow.traceability` writes now."""

from __future__ import annotations

from pathlib import Path

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
    chapter = Element("engagement.bpmn", "intake", "承接 Intake", "callActivity", ("2.2.2",), "Intake", ())
    assert traceability.unimplemented(clauses, [chapter]) == ["2.2.2"], "a call activity only holds the work"
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


HOW_BPMN = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
    xmlns:camunda="http://camunda.org/schema/1.0/bpmn"
    xmlns:spiffworkflow="http://spiffworkflow.org/bpmn/schema/1.0/core" id="d">
  <bpmn:collaboration id="c">
    <bpmn:participant id="Participant_p" name="Firm" processRef="p" />
    <bpmn:participant id="Participant_p_client" name="客戶 Client" />
    <bpmn:messageFlow id="mf" sourceRef="Participant_p_client" targetRef="wait" />
  </bpmn:collaboration>
  <bpmn:message id="Message_answer" name="quotation.accepted" />
  <bpmn:error id="Error_x" errorCode="channel_not_tested" />
  <bpmn:process id="p" isExecutable="true">
    <bpmn:laneSet id="ls">
      <bpmn:lane id="Lane_pm" name="項目經理 Project manager">
        <bpmn:flowNodeRef>decide</bpmn:flowNodeRef>
        <bpmn:flowNodeRef>record</bpmn:flowNodeRef>
        <bpmn:flowNodeRef>gw</bpmn:flowNodeRef>
        <bpmn:flowNodeRef>wait</bpmn:flowNodeRef>
      </bpmn:lane>
    </bpmn:laneSet>
    <bpmn:userTask id="decide" name="Decide" camunda:candidateGroups="project_manager"
        camunda:assignee="${project_manager}">
      <bpmn:documentation>[2.2.2] Decide.
[assumption] Only the manager decides: the text names no one.</bpmn:documentation>
      <bpmn:extensionElements><camunda:formData>
        <camunda:formField id="feasible" type="boolean" /><camunda:formField id="reason" type="string" />
      </camunda:formData></bpmn:extensionElements>
    </bpmn:userTask>
    <bpmn:serviceTask id="record" name="Record">
      <bpmn:documentation>[2.2.2] Record.</bpmn:documentation>
      <bpmn:extensionElements>
        <spiffworkflow:serviceTaskOperator id="crm.record_feasibility"><spiffworkflow:parameters>
          <spiffworkflow:parameter id="feasible" value="feasible" />
        </spiffworkflow:parameters></spiffworkflow:serviceTaskOperator>
      </bpmn:extensionElements>
    </bpmn:serviceTask>
    <bpmn:boundaryEvent id="untested" attachedToRef="record">
      <bpmn:documentation>[2.2.2] Refused.</bpmn:documentation>
      <bpmn:errorEventDefinition id="ed" errorRef="Error_x" />
    </bpmn:boundaryEvent>
    <bpmn:exclusiveGateway id="gw" name="Go?" default="f_no">
      <bpmn:documentation>[2.2.2] Go?</bpmn:documentation>
    </bpmn:exclusiveGateway>
    <bpmn:sequenceFlow id="f_yes" sourceRef="gw" targetRef="wait">
      <bpmn:conditionExpression>feasible</bpmn:conditionExpression>
    </bpmn:sequenceFlow>
    <bpmn:sequenceFlow id="f_no" sourceRef="gw" targetRef="decide" />
    <bpmn:receiveTask id="wait" name="Wait for the answer" messageRef="Message_answer">
      <bpmn:documentation>[2.3.1] Wait.</bpmn:documentation>
    </bpmn:receiveTask>
    <bpmn:boundaryEvent id="reminder" attachedToRef="wait" cancelActivity="false">
      <bpmn:documentation>[2.3.1] Remind.</bpmn:documentation>
      <bpmn:timerEventDefinition id="td"><bpmn:timeCycle>"R/P7D"</bpmn:timeCycle></bpmn:timerEventDefinition>
    </bpmn:boundaryEvent>
  </bpmn:process>
</bpmn:definitions>
"""

HOW_DMN = """<?xml version="1.0" encoding="UTF-8"?>
<definitions xmlns="https://www.omg.org/spec/DMN/20191111/MODEL/" id="t" name="t" namespace="x">
  <decision id="matrix" name="Matrix">
    <description>[6.2.3] Matrix.</description>
    <decisionTable id="matrix_table" hitPolicy="FIRST">
      <input id="i1"><inputExpression id="e1"><text>likelihood</text></inputExpression></input>
      <input id="i2"><inputExpression id="e2"><text>score</text></inputExpression></input>
      <output id="o1" name="strategy" />
      <rule id="matrix_rule_1">
        <description>[6.3.1] Avoid.</description>
        <inputEntry id="r1"><text>"high"</text></inputEntry>
        <inputEntry id="r2"><text>&lt; 80</text></inputEntry>
        <outputEntry id="r3"><text>"avoid"</text></outputEntry>
      </rule>
      <rule id="matrix_rule_2">
        <description>[6.3.4] Accept.</description>
        <inputEntry id="r4"><text>-</text></inputEntry>
        <inputEntry id="r5"><text></text></inputEntry>
        <outputEntry id="r6"><text>"accept"</text></outputEntry>
      </rule>
    </decisionTable>
  </decision>
</definitions>
"""


def test_each_element_says_how_it_models_its_clause(tmp_path: Path) -> None:
    """What the element is, who acts and which data it handles, read from the XML."""
    (tmp_path / "p.bpmn").write_text(HOW_BPMN, encoding="utf-8")
    (tmp_path / "t.dmn").write_text(HOW_DMN, encoding="utf-8")
    found = {e.id: (e.how, e.actor, e.data) for e in traceability.read_elements(tmp_path)}
    pm = "項目經理 Project manager"
    assert found["decide"] == (
        "user task",
        f"{pm}; group `project_manager`; assignee `${{project_manager}}`",
        "form `feasible`, `reason`",
    )
    assert found["record"] == (
        "service task `crm.record_feasibility`",
        f"{pm}; service crm",
        "parameters `feasible`",
    )
    assert found["untested"] == ("error boundary event", pm, "error `channel_not_tested`")
    assert found["gw"] == ("exclusive gateway", pm, "`feasible` / otherwise")
    assert found["wait"] == ("receive task", f"{pm}; from 客戶 Client", "message `quotation.accepted`")
    assert found["reminder"] == ("timer boundary event (non-interrupting)", pm, "every `R/P7D`")
    assert found["matrix"] == ("decision table (hit policy FIRST)", "", "`likelihood`, `score` → `strategy`")
    assert found["matrix_rule_1"][2] == 'when `likelihood = "high"`, `score < 80` → `strategy = "avoid"`'
    assert found["matrix_rule_2"][2] == 'when any → `strategy = "accept"`'

    decide = next(e for e in traceability.read_elements(tmp_path) if e.id == "decide")
    text = traceability.render([Clause("2.2.2", "評估", "Assess", "step")], [decide], {}, {})
    row = next(line for line in text.splitlines() if "`decide`" in line)
    assert row.split(" | ")[3:7] == [
        "user task",
        f"{pm}; group `project_manager`; assignee `${{project_manager}}`",
        "form `feasible`, `reason`",
        "[assumption] Only the manager decides: the text names no one.",
    ]


def test_a_decision_table_read_by_a_service_names_the_operation(tmp_path: Path) -> None:
    catalogue = tmp_path / "operations.md"
    catalogue.write_text(
        "| operation | clause | inputs | outputs | notes |\n| --- | --- | --- | --- | --- |\n"
        "| `risk.assess_risk` | 6.2 | risk_id | risk_level | read from `risk_matrix.dmn` |\n"
        "| v2 | `risk.gone` | read from `risk_matrix.dmn` |\n",
        encoding="utf-8",
    )
    assert traceability.dmn_readers(catalogue) == {"risk_matrix.dmn": ["risk.assess_risk"]}
    assert traceability.dmn_readers(tmp_path / "missing.md") == {}


def test_every_documented_element_in_the_diagrams_says_how() -> None:
    assert [f"{e.file} {e.id}" for e in ELEMENTS if not e.how] == []
    lanes_missing = [
        f"{e.file} {e.id}"
        for e in ELEMENTS
        if e.kind in ("userTask", "serviceTask", "receiveTask") and not e.actor
    ]
    assert lanes_missing == [], "a task outside every lane has no actor"
