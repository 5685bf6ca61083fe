"""One deployed version's spec is shared by all its instances: starting an event subprocess in one instance
must not start it in every instance created afterwards (SpiffWorkflow wires it into the spec for good)."""

from __future__ import annotations

from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
from SpiffWorkflow.util.task import TaskState

from consultflow.orchestrator import engine
from consultflow.orchestrator.timer_events import ClockedScriptEngine
from tests.support.bpmn_builder import bpmn, message

EVENT_SUBPROCESS = (
    '<subProcess id="poked" triggeredByEvent="true">'
    '<startEvent id="poke_start"><messageEventDefinition messageRef="m_poke"/></startEvent>'
    '<userTask id="answer"/><endEvent id="answered"/>'
    '<sequenceFlow id="pf1" sourceRef="poke_start" targetRef="answer"/>'
    '<sequenceFlow id="pf2" sourceRef="answer" targetRef="answered"/>'
    "</subProcess>"
)
DIAGRAM = bpmn(
    "p",
    '<startEvent id="s"/><userTask id="work"/><endEvent id="e"/>' + EVENT_SUBPROCESS,
    "s -> work\nwork -> e",
    message("m_poke", "poke", "key"),
)
SPECS = engine.parse_resources({"p.bpmn": DIAGRAM})["p"]


def started(key: str) -> BpmnWorkflow:
    workflow = engine.new_workflow(SPECS, ClockedScriptEngine(), {"key": key})
    engine.choose_start(workflow, engine.plain_start)
    workflow.do_engine_steps()
    return workflow


def finish(workflow: BpmnWorkflow, element: str) -> None:
    task = next(t for t in workflow.get_tasks(state=TaskState.READY) if t.task_spec.name == element)
    task.run()
    workflow.do_engine_steps()


def elements(workflow: BpmnWorkflow, state: TaskState) -> list[str]:
    return sorted(t.task_spec.name for t in workflow.get_tasks(state=state))


def test_an_event_subprocess_started_in_one_instance_stays_in_that_instance() -> None:
    poked = started("A")
    assert engine.deliver_trigger(poked, f"{engine.TRIGGER_PREFIX}poked", "A", {})
    poked.do_engine_steps()
    assert "answer" in elements(poked, TaskState.READY)

    later = started("B")  # created from the same shared spec afterwards
    assert "poked" not in [t.task_spec.name for t in later.get_tasks()], "no phantom event subprocess"
    finish(later, "work")
    assert later.is_completed()

    finish(poked, "answer")  # an interrupting event subprocess: the work was cancelled when it started
    assert poked.is_completed(), "the triggered instance still finds its way to the end"


def test_a_triggered_event_subprocess_goes_on_after_the_instance_is_reloaded() -> None:
    """The orchestrator stores an instance's state without its spec: a restarted orchestrator parses the
    diagram again and must still run a subprocess triggered before the restart."""
    poked = started("C")
    assert engine.deliver_trigger(poked, f"{engine.TRIGGER_PREFIX}poked", "C", {})
    state = engine.dump_state(poked)
    fresh = engine.parse_resources({"p.bpmn": DIAGRAM})["p"]  # parsed again, as after a restart
    reloaded = engine.load_state(state, fresh, ClockedScriptEngine())
    reloaded.do_engine_steps()
    finish(reloaded, "answer")
    assert reloaded.is_completed()
