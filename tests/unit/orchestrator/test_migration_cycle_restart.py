"""A restarted cycle timer keeps what it already started (found by tests/e2e/test_migration_engagements.py:
an engagement migrated while a follow-up revisit was open lost the revisit when the revisit cycle, whose
period the new version changed, was restarted)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
from SpiffWorkflow.util.task import TaskState

from consultflow.orchestrator import engine, migration
from consultflow.orchestrator.migration import MappingRule
from consultflow.orchestrator.records import MoveAction
from consultflow.orchestrator.timer_events import ClockedScriptEngine
from consultflow.platform.clock import ManualClock
from tests.support.bpmn_builder import bpmn

START = datetime(2026, 3, 1, tzinfo=UTC)


def maintained(cycle: str) -> bytes:
    """follow_up's shape: a maintenance period with a non-interrupting revisit cycle on its border; each
    time the cycle fires, a revisit (a user task) starts beside the maintenance."""
    maintenance = (
        '<subProcess id="maintain"><startEvent id="ms"/>'
        '<intermediateCatchEvent id="period"><timerEventDefinition><timeDuration>"P1Y"</timeDuration>'
        '</timerEventDefinition></intermediateCatchEvent><endEvent id="me"/>'
        '<sequenceFlow id="m1" sourceRef="ms" targetRef="period"/>'
        '<sequenceFlow id="m2" sourceRef="period" targetRef="me"/></subProcess>'
    )
    revisit = (
        '<boundaryEvent id="revisit" attachedToRef="maintain" cancelActivity="false">'
        f'<timerEventDefinition><timeCycle>"{cycle}"</timeCycle></timerEventDefinition></boundaryEvent>'
    )
    return bpmn(
        "p",
        f'<startEvent id="s"/>{maintenance}{revisit}'
        '<userTask id="visit"/><endEvent id="visited"/><endEvent id="e"/>',
        "s -> maintain\nmaintain -> e\nrevisit -> visit\nvisit -> visited",
    )


def specs_of(xml: bytes) -> engine.ProcessSpecs:
    return engine.parse_resources({"p.bpmn": xml})["p"]


def open_visits(workflow: BpmnWorkflow) -> list[str]:
    return [str(t.id) for t in workflow.get_tasks(state=TaskState.READY) if t.task_spec.bpmn_id == "visit"]


def test_restarting_a_cycle_keeps_the_revisits_it_already_started() -> None:
    clock = ManualClock(START)
    old, new = specs_of(maintained("R/P30D")), specs_of(maintained("R/P14D"))
    workflow = engine.new_workflow(old, ClockedScriptEngine(clock=clock), {})
    workflow.do_engine_steps()
    clock.advance(timedelta(days=31))
    workflow.refresh_timers()
    workflow.do_engine_steps()
    [visit] = open_visits(workflow)

    assert migration.check(workflow, new, []).problems, "a changed cycle needs restart"
    moves = migration.apply(workflow, new, [MappingRule("", "revisit", "revisit", restart=True)])
    workflow.do_engine_steps()

    actions = {(m.source_element_id, m.action) for m in moves}
    assert {("revisit", MoveAction.RESTARTED), ("visit", MoveAction.CARRIED_OVER)} <= actions, actions
    assert open_visits(workflow) == [visit], "the open revisit carries over"
    current = engine.load_state(engine.dump_state(workflow), new, ClockedScriptEngine(clock=clock))
    assert open_visits(current) == [visit]
    clock.advance(timedelta(days=15))  # the new cycle counts from the migration
    current.refresh_timers()
    current.do_engine_steps()
    assert len(open_visits(current)) == 2
