"""The one-walk view of what an instance waits for, including a correlation that fails."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from consultflow.orchestrator import engine
from consultflow.orchestrator.timer_events import ClockedScriptEngine
from consultflow.platform.clock import ManualClock
from tests.support.bpmn_builder import bpmn, message, service_task

START = datetime(2026, 3, 1, tzinfo=UTC)


def diagram() -> bytes:
    return bpmn(
        "p",
        f"""<startEvent id="s"/><parallelGateway id="split"/>
        {service_task("work", "crm.work")}
        <userTask id="approve"/>
        <intermediateCatchEvent id="wait">
          <timerEventDefinition><timeDuration>"PT5M"</timeDuration></timerEventDefinition>
        </intermediateCatchEvent>
        <receiveTask id="reply" messageRef="m_reply"/>
        <endEvent id="e1"/><endEvent id="e2"/><endEvent id="e3"/><endEvent id="e4"/>""",
        "s -> split\nsplit -> work\nsplit -> approve\nsplit -> wait\nsplit -> reply\n"
        "work -> e1\napprove -> e2\nwait -> e3\nreply -> e4",
        extra=message("m_reply", "client.reply", "engagement_id"),
    )


def test_a_snapshot_names_each_kind_of_wait() -> None:
    specs = engine.parse_resources({"p.bpmn": diagram()})["p"]
    workflow = engine.new_workflow(
        specs, ClockedScriptEngine(clock=ManualClock(START)), {"engagement_id": "E7"}
    )
    workflow.do_engine_steps()
    waiting = engine.snapshot(workflow)
    assert [t.task.task_spec.bpmn_id for t in waiting.service_tasks.values()] == ["work"]
    assert [t.task_spec.bpmn_id for t in waiting.user_tasks.values()] == ["approve"]
    assert [(t.element_id, t.due_at) for t in waiting.timers] == [("wait", START + timedelta(minutes=5))]
    assert [(m.element_id, m.message_name, m.correlation_key) for m in waiting.messages] == [
        ("reply", "client.reply", "E7")
    ]
    assert waiting.correlation_failures == [] and waiting.errors == {}


def test_a_failing_correlation_expression_is_a_failure_not_the_empty_key() -> None:
    specs = engine.parse_resources({"p.bpmn": diagram()})["p"]
    workflow = engine.new_workflow(specs, ClockedScriptEngine(clock=ManualClock(START)), {})
    workflow.do_engine_steps()
    waiting = engine.snapshot(workflow)
    assert waiting.messages == []
    [failure] = waiting.correlation_failures
    assert (failure.element_id, failure.message_name) == ("reply", "client.reply")
    assert "engagement_id" in failure.error
