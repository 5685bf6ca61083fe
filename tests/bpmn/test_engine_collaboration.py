"""A collaboration deploys its executable processes only: a black-box pool (the client) and message flows
to and from it are drawing, not code, so diagrams can show who talks to whom without the engine running
the other side."""

from __future__ import annotations

from consultflow.orchestrator import engine
from tests.support.bpmn_builder import definitions, process_xml

COLLABORATION = (
    '<message id="reply" name="client.reply"/>'
    '<collaboration id="talk">'
    '<participant id="firm" name="Firm" processRef="firm_process"/>'
    '<participant id="client" name="Client"/>'
    '<participant id="client_as_process" name="Client (drawn as a process)" processRef="client_process"/>'
    '<messageFlow id="asked" sourceRef="ask" targetRef="client"/>'
    '<messageFlow id="answered" sourceRef="client" targetRef="wait" messageRef="reply"/>'
    "</collaboration>"
    + process_xml(
        "firm_process",
        '<startEvent id="s"/><intermediateThrowEvent id="ask"/><receiveTask id="wait" messageRef="reply"/>'
        '<endEvent id="e"/>',
        "s -> ask\nask -> wait\nwait -> e",
    )
    + process_xml("client_process", '<startEvent id="cs"/><endEvent id="ce"/>', "cs -> ce", executable=False)
)


def test_only_the_firms_executable_process_is_deployed() -> None:
    specs = engine.parse_resources({"talk.bpmn": definitions(COLLABORATION)})
    assert sorted(specs) == ["firm_process"]
    assert "wait" in specs["firm_process"].spec.task_specs
