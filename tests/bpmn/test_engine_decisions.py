"""Business rule tasks evaluate decision tables with `platform.decisions` (FEEL cells, hit policies), and
a deploy refuses a table outside the supported subset, naming the file, the decision, the rule and the
column."""

from __future__ import annotations

from typing import Any

import pytest
from SpiffWorkflow.exceptions import SpiffWorkflowException

from consultflow.orchestrator import engine
from consultflow.platform.decisions import TableEngine
from consultflow.platform.scripting import ScriptEngine
from tests.support.bpmn_builder import bpmn
from tests.support.catalogue import ROOT
from tests.support.dmn_builder import dmn

MODE = dmn(
    "mode",
    [("Preference", "preference", "string"), ("Demo", "needs_demo", "boolean"), ("Size", "size", "number")],
    [("mode", "string")],
    [
        (['"onsite"', "-", "-"], ['"onsite"']),
        (['not("onsite")', "true", "-"], ['"onsite"']),
        (['not("onsite")', "false", "[1..5]"], ['"online"']),
        (['not("onsite")', "false", "> 5"], ['"hybrid"']),
    ],
    input_values={0: '"onsite","online","none"'},
)


def diagram(decision_id: str = "mode") -> bytes:
    return bpmn(
        "p",
        f"""<startEvent id="s"/>
        <businessRuleTask id="decide"><extensionElements>
          <spiffworkflow:calledDecisionId>{decision_id}</spiffworkflow:calledDecisionId>
        </extensionElements></businessRuleTask>
        <endEvent id="e"/>""",
        "s -> decide\ndecide -> e",
    )


def run(resources: dict[str, bytes], **variables: Any) -> dict[str, Any]:
    specs = engine.parse_resources(resources)["p"]
    workflow = engine.new_workflow(specs, ScriptEngine(), variables)
    workflow.do_engine_steps()
    assert workflow.is_completed()
    return dict(workflow.last_task.data)


def test_a_business_rule_task_runs_the_projects_evaluator() -> None:
    specs = engine.parse_resources({"p.bpmn": diagram(), "mode.dmn": MODE})["p"]
    assert isinstance(specs.spec.task_specs["decide"].dmnEngine, TableEngine)


@pytest.mark.parametrize(
    ("preference", "needs_demo", "size", "mode"),
    [
        ("onsite", False, 3, "onsite"),
        ("online", True, 3, "onsite"),  # dmn-js's `true` matches a Python True
        ("online", False, 1, "online"),  # range ends are closed
        ("none", False, 5, "online"),
        ("none", False, 5.5, "hybrid"),
    ],
)
def test_feel_cells_decide_in_a_running_process(
    preference: str, needs_demo: bool, size: float, mode: str
) -> None:
    data = run(
        {"p.bpmn": diagram(), "mode.dmn": MODE}, preference=preference, needs_demo=needs_demo, size=size
    )
    assert data["mode"] == mode


def test_two_matching_rules_of_a_unique_table_stop_the_task_naming_them() -> None:
    overlapping = dmn(
        "mode", [("Size", "size", "number")], [("mode", "string")], [(["< 5"], ['"a"']), (["< 3"], ['"b"'])]
    )
    specs = engine.parse_resources({"p.bpmn": diagram(), "mode.dmn": overlapping})["p"]
    workflow = engine.new_workflow(specs, ScriptEngine(), {"size": 1})
    with pytest.raises(SpiffWorkflowException) as caught:
        workflow.do_engine_steps()
    assert "hit policy UNIQUE, but rule 1 (mode_rule_1), rule 2 (mode_rule_2) all match" in str(caught.value)


def test_a_task_whose_input_is_missing_fails_naming_the_column() -> None:
    specs = engine.parse_resources({"p.bpmn": diagram(), "mode.dmn": MODE})["p"]
    workflow = engine.new_workflow(specs, ScriptEngine(), {"preference": "none"})
    with pytest.raises(SpiffWorkflowException, match="input 'Demo': cannot evaluate 'needs_demo'"):
        workflow.do_engine_steps()


def test_a_deploy_refuses_a_cell_outside_the_subset_naming_file_decision_rule_and_column() -> None:
    bad = MODE.replace(b"<text>true</text>", b"<text>True</text>")
    with pytest.raises(engine.DeploymentError) as caught:
        engine.parse_resources({"p.bpmn": diagram(), "mode.dmn": bad})
    error = caught.value
    assert error.resource == "mode.dmn" and error.element == "r2_in_1" and error.line > 0
    assert "decision 'mode', rule 2 (mode_rule_2), input 'Demo': cannot read 'True'" in str(error)
    assert str(error).startswith("resources[mode.dmn]: mode.dmn, line")


def test_a_deploy_refuses_a_bad_table_no_diagram_calls_yet() -> None:
    bad = MODE.replace(b'<text>"onsite"</text></outputEntry>', b"<text>onsite</text></outputEntry>", 1)
    with pytest.raises(
        engine.DeploymentError, match=r"rule 1 \(mode_rule_1\), output 'Mode': cannot read 'onsite'"
    ):
        engine.parse_resources({"mode.dmn": bad})


def test_a_deploy_refuses_a_value_outside_the_columns_input_values() -> None:
    bad = MODE.replace(
        b'<text>not("onsite")</text></inputEntry>', b'<text>not("ofsite")</text></inputEntry>', 1
    )
    with pytest.raises(engine.DeploymentError, match='"ofsite" is not one of the column\'s allowed values'):
        engine.parse_resources({"p.bpmn": diagram(), "mode.dmn": bad})


def test_a_deploy_refuses_an_unsupported_hit_policy() -> None:
    bad = MODE.replace(b'hitPolicy="UNIQUE"', b'hitPolicy="PRIORITY"')
    with pytest.raises(engine.DeploymentError, match="decision 'mode': hit policy PRIORITY is not supported"):
        engine.parse_resources({"p.bpmn": diagram(), "mode.dmn": bad})


def test_a_deploy_refuses_one_decision_in_two_files() -> None:
    with pytest.raises(engine.DeploymentError, match=r"decision 'mode' is also defined in a\.dmn"):
        engine.parse_resources({"a.dmn": MODE, "b.dmn": MODE})


def test_the_regulations_tables_deploy_with_the_diagrams() -> None:
    resources = {
        p.name: p.read_bytes() for p in sorted((ROOT / "bpmn").iterdir()) if p.suffix in (".bpmn", ".dmn")
    }
    specs = engine.parse_resources(resources)
    engines = [
        task.dmnEngine
        for process in specs.values()
        for spec in (process.spec, *process.subprocess_specs.values())
        for task in spec.task_specs.values()
        if hasattr(task, "dmnEngine")
    ]
    assert engines and all(isinstance(e, TableEngine) for e in engines)
    assert {e.table.decision_id for e in engines} == {"delivery_mode", "satisfaction_followup"}
