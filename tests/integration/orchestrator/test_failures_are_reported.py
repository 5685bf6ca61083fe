"""What fails is reported, never swallowed: a correlation expression that fails becomes an incident, and a
literal due date that cannot be read is refused at deploy time naming its element."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from consultflow.orchestrator.engine import DeploymentError
from tests.support.bpmn_builder import bpmn, message
from tests.support.orchestrator_harness import Harness


@pytest.fixture
def h(tmp_path: Path) -> Iterator[Harness]:
    harness = Harness.sqlite(tmp_path)
    yield harness
    harness.close()


def waiting_for_report() -> bytes:
    return bpmn(
        "p",
        '<startEvent id="s"/><receiveTask id="await_report" messageRef="m_report"/><endEvent id="e"/>',
        "s -> await_report\nawait_report -> e",
        extra=message("m_report", "report.received", "engagement_id"),
    )


def test_a_failing_correlation_expression_is_an_incident_not_the_empty_key(
    h: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    h.deploy(p=waiting_for_report())
    with caplog.at_level(logging.WARNING):
        instance = h.start("p")  # no engagement_id: the correlation expression raises NameError
    incidents = h.view(instance).incidents
    assert [(i.kind, i.element_id) for i in incidents] == [("CORRELATION_ERROR", "await_report")]
    assert "engagement_id" in incidents[0].message
    assert "correlation expression failed" in caplog.text
    assert h.publish("report.received", "") == "DROPPED"  # it does not wait under the key ""
    assert h.status(instance) == "ACTIVE"


def test_resolving_a_correlation_incident_evaluates_the_expression_again(h: Harness) -> None:
    h.deploy(p=waiting_for_report())
    instance = h.start("p")
    incident = h.view(instance).incidents[0]
    h.orchestrator.resolve_incident(incident.incident_id)
    incidents = h.view(instance).incidents
    assert len(incidents) == 1 and incidents[0].incident_id != incident.incident_id  # still failing
    assert h.history(instance, "incident.resolved") == ["incident.resolved"]


def test_a_correlation_key_that_evaluates_is_waited_on(h: Harness) -> None:
    h.deploy(p=waiting_for_report())
    instance = h.start("p", engagement_id="E1")
    assert h.view(instance).incidents == []
    assert h.publish("report.received", "E1") == "CORRELATED"
    assert h.status(instance) == "COMPLETED"


def test_a_literal_due_date_that_does_not_parse_is_refused_at_deploy(h: Harness) -> None:
    diagram = bpmn(
        "p",
        '<startEvent id="s"/><userTask id="review" camunda:dueDate="P2X"/><endEvent id="e"/>',
        "s -> review\nreview -> e",
    )
    with pytest.raises(DeploymentError, match="review") as refused:
        h.deploy(p=diagram)
    assert "camunda:dueDate" in str(refused.value)


def test_a_due_date_expression_that_fails_leaves_the_task_without_one_and_says_why(
    h: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    h.deploy(
        p=bpmn(
            "p",
            '<startEvent id="s"/><userTask id="review" camunda:dueDate="deadline"/><endEvent id="e"/>',
            "s -> review\nreview -> e",
        )
    )
    with caplog.at_level(logging.WARNING):
        instance = h.start("p")
    assert h.task("review", instance).due_at is None
    assert "user task review has no due date" in caplog.text
