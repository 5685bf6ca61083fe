"""A process with a cycle timer start event (`R/P1M`) starts a new instance that does its work on every
firing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import update

from consultflow.orchestrator.orm import StartTimer
from consultflow.orchestrator.runtime import Orchestrator
from consultflow.platform.db import Database, UnitOfWork, migrate
from tests.support.identity import TESTER

MONTHLY = b"""<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
    xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" id="d" targetNamespace="t">
  <bpmn:process id="monthly" isExecutable="true">
    <bpmn:startEvent id="s"><bpmn:outgoing>f1</bpmn:outgoing>
      <bpmn:timerEventDefinition>
        <bpmn:timeCycle xsi:type="bpmn:tFormalExpression">"R/P1M"</bpmn:timeCycle>
      </bpmn:timerEventDefinition>
    </bpmn:startEvent>
    <bpmn:userTask id="work">
      <bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>f2</bpmn:outgoing></bpmn:userTask>
    <bpmn:endEvent id="e"><bpmn:incoming>f2</bpmn:incoming></bpmn:endEvent>
    <bpmn:sequenceFlow id="f1" sourceRef="s" targetRef="work" />
    <bpmn:sequenceFlow id="f2" sourceRef="work" targetRef="e" />
  </bpmn:process>
</bpmn:definitions>
"""


def test_each_firing_of_a_cycle_start_timer_starts_the_work(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'o.db'}")
    migrate(db, "orchestrator")
    orchestrator = Orchestrator(db, lambda: UnitOfWork(db, "orchestrator"))
    orchestrator.deploy({"monthly.bpmn": MONTHLY})
    for firing in (1, 2):
        with db.session() as session:
            past = datetime.now(UTC) - timedelta(seconds=1)
            session.execute(update(StartTimer).values(due_at=past))
            session.commit()
        assert orchestrator.fire_start_timers() == 1
        tasks, _ = orchestrator.list_user_tasks()
        assert [t.element_id for t in tasks] == ["work"], f"firing {firing}"
        orchestrator.claim_user_task(tasks[0].user_task_id, TESTER)
        orchestrator.complete_user_task(tasks[0].user_task_id, {}, TESTER)
    instances, _ = orchestrator.list_instances(process_id="monthly")
    assert [i.status for i in instances] == ["COMPLETED", "COMPLETED"]
    db.dispose()
