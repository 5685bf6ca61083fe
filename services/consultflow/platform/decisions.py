"""Decision tables (DMN in bpmn/) evaluated by services, with the same engine and restrictions the
orchestrator uses, so a rule lives in exactly one place: the table analysts edit."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from lxml import etree
from SpiffWorkflow.spiff.parser.process import VALIDATOR, SpiffBpmnParser

from consultflow.platform.errors import FailedPrecondition
from consultflow.platform.scripting import ScriptEngine

_SAFE_XML = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)


class DecisionTables:
    """Every `.dmn` file in a folder, parsed once, evaluated by decision id."""

    def __init__(self, folder: Path) -> None:
        self._parser = SpiffBpmnParser(validator=VALIDATOR)
        self._engine = ScriptEngine()
        self._lock = threading.Lock()
        for path in sorted(folder.glob("*.dmn")):
            root = etree.fromstring(path.read_bytes(), _SAFE_XML)
            self._parser.add_dmn_xml(root, filename=path.name)

    def decide(self, decision_id: str, inputs: Mapping[str, Any]) -> dict[str, Any]:
        """The outputs of the first (or only) matching rule; {} when no rule matches."""
        with self._lock:  # Spiff's DMN engine objects are shared; evaluation is quick
            try:
                engine = self._parser.get_engine(decision_id, None)
            except Exception as exc:
                raise FailedPrecondition(f"decision table {decision_id!r} is not deployed") from exc
            task = SimpleNamespace(data=dict(inputs), workflow=SimpleNamespace(script_engine=self._engine))
            return dict(engine.result(task))

    def rules(self, decision_id: str) -> list[tuple[list[str | None], dict[str, str]]]:
        """Each rule's input entries and output expressions, e.g. to draw the risk matrix."""
        engine = self._parser.get_engine(decision_id, None)
        result = []
        for rule in engine.decision_table.rules:
            inputs = [entry.lhs[0] if entry.lhs else None for entry in rule.inputEntries]
            outputs = {entry.output.name: entry.text for entry in rule.outputEntries}
            result.append((inputs, outputs))
        return result
