"""Gateway conditions are checked by the restricted evaluator at deploy time (SpiffWorkflow keeps them as
condition objects, not strings) and route at run time."""

from __future__ import annotations

import pytest

from consultflow.orchestrator import engine

GATEWAY = b"""<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
    xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" id="d" targetNamespace="t">
  <bpmn:process id="p" isExecutable="true">
    <bpmn:startEvent id="s"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:exclusiveGateway id="g" default="f3"><bpmn:incoming>f1</bpmn:incoming>
      <bpmn:outgoing>f2</bpmn:outgoing><bpmn:outgoing>f3</bpmn:outgoing></bpmn:exclusiveGateway>
    <bpmn:endEvent id="yes"><bpmn:incoming>f2</bpmn:incoming></bpmn:endEvent>
    <bpmn:endEvent id="no"><bpmn:incoming>f3</bpmn:incoming></bpmn:endEvent>
    <bpmn:sequenceFlow id="f1" sourceRef="s" targetRef="g" />
    <bpmn:sequenceFlow id="f2" sourceRef="g" targetRef="yes">
      <bpmn:conditionExpression xsi:type="bpmn:tFormalExpression">CONDITION</bpmn:conditionExpression>
    </bpmn:sequenceFlow>
    <bpmn:sequenceFlow id="f3" sourceRef="g" targetRef="no" />
  </bpmn:process>
</bpmn:definitions>
"""


def test_a_gateway_condition_deploys() -> None:
    specs = engine.parse_resources({"p.bpmn": GATEWAY.replace(b"CONDITION", b'verdict == "approved"')})
    assert "p" in specs


def test_a_refused_gateway_condition_is_refused_at_deploy_time() -> None:
    with pytest.raises(engine.DeploymentError, match="refused script"):
        engine.parse_resources({"p.bpmn": GATEWAY.replace(b"CONDITION", b"verdict.__class__")})
