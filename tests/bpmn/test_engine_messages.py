"""A message's variables reach the process even when the process already holds an older value of the same
variable (e.g. a second acceptance report after a failed one)."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

from consultflow.orchestrator.runtime import Orchestrator
from consultflow.platform.db import Database, UnitOfWork, migrate

RECEIVE = b"""<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="d" targetNamespace="t">
  <bpmn:message id="m_report" name="report" />
  <bpmn:correlationProperty id="cp_key" name="key">
    <bpmn:correlationPropertyRetrievalExpression messageRef="m_report">
      <bpmn:formalExpression>key</bpmn:formalExpression>
    </bpmn:correlationPropertyRetrievalExpression>
  </bpmn:correlationProperty>
  <bpmn:process id="p" isExecutable="true">
    <bpmn:startEvent id="s"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:receiveTask id="wait" messageRef="m_report">
      <bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>f2</bpmn:outgoing></bpmn:receiveTask>
    <bpmn:endEvent id="e"><bpmn:incoming>f2</bpmn:incoming></bpmn:endEvent>
    <bpmn:sequenceFlow id="f1" sourceRef="s" targetRef="wait" />
    <bpmn:sequenceFlow id="f2" sourceRef="wait" targetRef="e" />
  </bpmn:process>
</bpmn:definitions>
"""


def test_a_message_variable_replaces_an_older_value(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'o.db'}")
    migrate(db, "orchestrator")
    orchestrator = Orchestrator(db, lambda: UnitOfWork(db, "orchestrator"))
    orchestrator.deploy({"p.bpmn": RECEIVE})
    instance_id = orchestrator.create_instance("p", 0, {"key": "K-1", "conclusion": "failed"}).instance_id
    outcome = orchestrator.publish_message("report", "K-1", {"conclusion": "passed"}, timedelta(0))
    assert outcome.outcome == "CORRELATED"
    view = orchestrator.get_instance(instance_id)
    assert view.instance.status == "COMPLETED"
    assert json.loads(view.instance.variables)["conclusion"] == "passed"
    db.dispose()
