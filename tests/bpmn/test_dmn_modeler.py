"""A decision table saved again by a modeler (dmn-moddle, the model layer of dmn-js and Camunda Modeler's
DMN editor) still reads, deploys and decides exactly as the table in bpmn/."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from consultflow.orchestrator import engine
from consultflow.platform.decisions import DecisionTables
from tests.bpmn.modeler_tools import node_and_modules
from tests.bpmn.test_decision_tables_unchanged import GRIDS
from tests.support.catalogue import ROOT

BPMN = ROOT / "bpmn"


def resave(out: Path) -> list[Path]:
    node, modules = node_and_modules()
    tables = sorted(BPMN.glob("*.dmn"))
    result = subprocess.run(
        [node, str(Path(__file__).with_name("resave_dmn.cjs")), str(out), *map(str, tables)],
        env={**os.environ, "NODE_PATH": str(modules)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return tables


def test_a_table_saved_by_a_modeler_decides_as_before(tmp_path: Path) -> None:
    tables = resave(tmp_path)
    assert {p.name for p in tmp_path.glob("*.dmn")} == {p.name for p in tables}
    before, after = DecisionTables(BPMN), DecisionTables(tmp_path)
    for decision_id, grid in GRIDS.items():
        assert after.rules(decision_id) == before.rules(decision_id), decision_id
        assert after.table(decision_id).hit_policy == before.table(decision_id).hit_policy
        for inputs in grid():
            assert after.decide(decision_id, inputs) == before.decide(decision_id, inputs), inputs


def test_tables_saved_by_a_modeler_deploy_with_the_diagrams(tmp_path: Path) -> None:
    resave(tmp_path)
    resources = {p.name: p.read_bytes() for p in sorted(BPMN.glob("*.bpmn"))}
    resources |= {p.name: p.read_bytes() for p in sorted(tmp_path.glob("*.dmn"))}
    assert set(engine.parse_resources(resources)) == set(
        engine.parse_resources({**resources, **{p.name: p.read_bytes() for p in BPMN.glob("*.dmn")}})
    )
