"""BPMN conformance: one small diagram per element, run by the real orchestrator on a real database.

docs/bpmn-coverage.md lists each element as supported (naming its test here) or not.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from consultflow.platform.clock import ManualClock
from consultflow.platform.errors import FailedPrecondition, InvalidArgument, NotFound, PermissionDenied
from tests.support.bpmn_builder import (
    bpmn,
    definitions,
    field,
    form,
    message,
    operation,
    process_xml,
    service_task,
)
from tests.support.identity import TESTER, person
from tests.support.orchestrator_harness import Harness


@pytest.fixture
def h(tmp_path: Path) -> Iterator[Harness]:
    harness = Harness.sqlite(tmp_path)
    yield harness
    harness.close()


# ------------------------------------------------------------------------------------------ sequence


def test_sequence_of_service_and_user_task(h: Harness) -> None:
    h.deploy(
        p=bpmn(
            "p",
            f"""<startEvent id="s"/>
            {service_task("work", "crm.do_work", who="name")}
            <userTask id="approve">{form(field("ok", "boolean", required=True))}</userTask>
            <endEvent id="e"/>""",
            "s -> work\nwork -> approve\napprove -> e",
        )
    )
    instance = h.start("p", name="Li")
    job = h.job("crm.do_work", instance)
    assert h.job_messages() == ["jobs.crm.do_work"]
    assert h.status(instance) == "ACTIVE"
    h.orchestrator.complete_job(job.job_key, {"done": 1})
    h.orchestrator.complete_job(job.job_key, {"done": 2})  # a repeated reply changes nothing
    h.submit("approve", instance, ok="true")
    assert h.status(instance) == "COMPLETED"
    assert h.variables(instance)["done"] == 1
    assert h.variables(instance)["ok"] is True
    assert h.completed_elements(instance) == ["s", "work", "approve", "e"]


def test_job_parameters_and_result_variable(h: Harness) -> None:
    h.deploy(
        p=bpmn(
            "p",
            f"""<startEvent id="s"/>
            <serviceTask id="t">{operation("crm.op", result_variable="answer", total="a + b")}</serviceTask>
            <endEvent id="e"/>""",
            "s -> t\nt -> e",
        )
    )
    instance = h.start("p", a=2, b=3)
    with h.db.read() as session:
        from sqlalchemy import select

        from consultflow.api.events.v1 import events_pb2
        from consultflow.platform.tables import outbox

        payload = session.scalars(select(outbox.c.payload).where(outbox.c.subject == "jobs.crm.op")).one()
    activated = events_pb2.JobActivated.FromString(payload)
    assert activated.parameters_json == '{"total":5}'
    h.complete("crm.op", instance, x=1)
    assert h.variables(instance)["answer"] == {"x": 1}


# ------------------------------------------------------------------------------------------ gateways


def exclusive() -> bytes:
    return bpmn(
        "p",
        """<startEvent id="s"/><exclusiveGateway id="g"/>
        <task id="big"/><task id="small"/><task id="other"/><endEvent id="e"/>""",
        """s -> g
        g -> big: amount > 100
        g -> small: amount > 10
        g -> other: default
        big -> e
        small -> e
        other -> e""",
    )


@pytest.mark.parametrize(("amount", "taken"), [(500, "big"), (50, "small"), (1, "other")])
def test_exclusive_gateway_takes_first_true_condition_else_default(
    h: Harness, amount: int, taken: str
) -> None:
    h.deploy(p=exclusive())
    instance = h.start("p", amount=amount)
    assert h.status(instance) == "COMPLETED"
    assert [e for e in h.completed_elements(instance) if e in ("big", "small", "other")] == [taken]


def test_parallel_gateway_joins_branches_completed_in_any_order(h: Harness) -> None:
    h.deploy(
        p=bpmn(
            "p",
            f"""<startEvent id="s"/><parallelGateway id="split"/>
            {service_task("a", "crm.a")}{service_task("b", "contracts.b")}
            <parallelGateway id="join"/><endEvent id="e"/>""",
            "s -> split\nsplit -> a\nsplit -> b\na -> join\nb -> join\njoin -> e",
        )
    )
    instance = h.start("p")
    assert sorted(j.operation for j in h.jobs(instance)) == ["contracts.b", "crm.a"]
    h.complete("contracts.b", instance)
    assert h.status(instance) == "ACTIVE"
    h.complete("crm.a", instance)
    assert h.status(instance) == "COMPLETED"


def test_inclusive_gateway_runs_every_true_branch(h: Harness) -> None:
    h.deploy(
        p=bpmn(
            "p",
            f"""<startEvent id="s"/><inclusiveGateway id="split"/>
            {service_task("legal", "contracts.legal")}{service_task("finance", "crm.finance")}
            {service_task("hr", "crm.hr")}<inclusiveGateway id="join"/><endEvent id="e"/>""",
            """s -> split
            split -> legal: needs_legal
            split -> finance: needs_finance
            split -> hr: needs_hr
            legal -> join
            finance -> join
            hr -> join
            join -> e""",
        )
    )
    instance = h.start("p", needs_legal=True, needs_finance=True, needs_hr=False)
    assert sorted(j.operation for j in h.jobs(instance)) == ["contracts.legal", "crm.finance"]
    h.complete("contracts.legal", instance)
    h.complete("crm.finance", instance)
    assert h.status(instance) == "COMPLETED"


def event_based() -> bytes:
    return bpmn(
        "p",
        """<startEvent id="s"/><eventBasedGateway id="g"/>
        <intermediateCatchEvent id="answer"><messageEventDefinition messageRef="m_answer"/></intermediateCatchEvent>
        <intermediateCatchEvent id="deadline"><timerEventDefinition><timeDuration>"P3D"</timeDuration></timerEventDefinition></intermediateCatchEvent>
        <endEvent id="answered"/><endEvent id="expired"/>""",
        "s -> g\ng -> answer\ng -> deadline\nanswer -> answered\ndeadline -> expired",
        extra=message("m_answer", "client.answer"),
    )


def test_event_based_gateway_message_wins(h: Harness) -> None:
    h.deploy(p=event_based())
    instance = h.start("p", key="E1")
    assert h.publish("client.answer", "E1", verdict="yes") == "CORRELATED"
    assert h.status(instance) == "COMPLETED"
    assert "answered" in h.completed_elements(instance)
    assert h.view(instance).instance.variables.count("verdict") == 1


def test_event_based_gateway_timer_wins(h: Harness) -> None:
    h.deploy(p=event_based())
    instance = h.start("p", key="E1")
    h.fast_forward(instance, "deadline")
    assert h.status(instance) == "COMPLETED"
    assert "expired" in h.completed_elements(instance)
    assert h.publish("client.answer", "E1") == "DROPPED"  # nobody waits any more


# --------------------------------------------------------------------------------------- subprocesses


def test_call_activity_passes_data_in_and_out(h: Harness) -> None:
    child = bpmn(
        "child",
        f'<startEvent id="cs"/>{service_task("ct", "crm.child_work", n="n")}<endEvent id="ce"/>',
        "cs -> ct\nct -> ce",
    )
    parent = bpmn(
        "parent",
        '<startEvent id="s"/><callActivity id="call" calledElement="child"/><endEvent id="e"/>',
        "s -> call\ncall -> e",
    )
    h.deploy(parent=parent, child=child)
    instance = h.start("parent", n=7)
    job = h.job("crm.child_work", instance)
    assert job.element_id == "ct"
    h.complete("crm.child_work", instance, result=49)
    assert h.status(instance) == "COMPLETED"
    assert h.variables(instance)["result"] == 49


def test_embedded_subprocess(h: Harness) -> None:
    h.deploy(
        p=bpmn(
            "p",
            f"""<startEvent id="s"/>
            <subProcess id="sp"><startEvent id="ss"/>{service_task("inner", "crm.inner")}<endEvent id="se"/>
              <sequenceFlow id="g1" sourceRef="ss" targetRef="inner"/><sequenceFlow id="g2" sourceRef="inner" targetRef="se"/>
            </subProcess><endEvent id="e"/>""",
            "s -> sp\nsp -> e",
        )
    )
    instance = h.start("p")
    h.complete("crm.inner", instance)
    assert h.status(instance) == "COMPLETED"
    assert h.completed_elements(instance)[-2:] == ["sp", "e"]


def event_subprocess(interrupting: bool) -> bytes:
    return bpmn(
        "p",
        f"""<startEvent id="s"/>{service_task("main_work", "crm.main")}<endEvent id="e"/>
        <subProcess id="on_warning" triggeredByEvent="true">
          <startEvent id="warned" isInterrupting="{"true" if interrupting else "false"}"><messageEventDefinition messageRef="m_warn"/></startEvent>
          {service_task("handle", "risk.handle", level="level")}<endEvent id="handled"/>
          <sequenceFlow id="w1" sourceRef="warned" targetRef="handle"/><sequenceFlow id="w2" sourceRef="handle" targetRef="handled"/>
        </subProcess>""",
        "s -> main_work\nmain_work -> e",
        extra=message("m_warn", "risk.warning"),
    )


def test_non_interrupting_event_subprocess_runs_for_each_message(h: Harness) -> None:
    h.deploy(p=event_subprocess(interrupting=False))
    instance = h.start("p", key="E1")
    assert h.publish("risk.warning", "E1", level="amber") == "CORRELATED"
    assert h.publish("risk.warning", "E1", level="red") == "CORRELATED"
    assert h.publish("risk.warning", "E2", level="red") == "DROPPED"  # another engagement's key
    handles = h.jobs(instance, "risk.handle")
    assert len(handles) == 2
    h.complete("crm.main", instance)
    assert h.status(instance) == "ACTIVE"  # the event subprocesses still run
    for job in handles:
        h.orchestrator.complete_job(job.job_key, {})
    assert h.status(instance) == "COMPLETED"


def test_interrupting_event_subprocess_cancels_the_main_flow(h: Harness) -> None:
    h.deploy(p=event_subprocess(interrupting=True))
    instance = h.start("p", key="E1")
    main_job = h.job("crm.main", instance)
    assert h.publish("risk.warning", "E1", level="red") == "CORRELATED"
    assert h.jobs(instance, "crm.main") == []
    with pytest.raises(FailedPrecondition):
        h.orchestrator.complete_job(main_job.job_key, {})
    h.complete("risk.handle", instance)
    assert h.status(instance) == "COMPLETED"


def test_parallel_multi_instance(h: Harness) -> None:
    h.deploy(
        p=bpmn(
            "p",
            """<startEvent id="s"/><serviceTask id="each">"""
            + operation("crm.notify", who="reviewer")
            + """<multiInstanceLoopCharacteristics isSequential="false">
                <loopDataInputRef>reviewers</loopDataInputRef><inputDataItem id="reviewer" name="reviewer"/>
              </multiInstanceLoopCharacteristics></serviceTask><endEvent id="e"/>""",
            "s -> each\neach -> e",
        )
    )
    instance = h.start("p", reviewers=["wang", "li", "chen"])
    jobs = h.jobs(instance, "crm.notify")
    assert len(jobs) == 3
    for job in reversed(jobs):
        h.orchestrator.complete_job(job.job_key, {})
    assert h.status(instance) == "COMPLETED"


def test_sequential_multi_instance(h: Harness) -> None:
    h.deploy(
        p=bpmn(
            "p",
            """<startEvent id="s"/><serviceTask id="each">"""
            + operation("crm.notify", who="reviewer")
            + """<multiInstanceLoopCharacteristics isSequential="true">
                <loopDataInputRef>reviewers</loopDataInputRef>
                <loopDataOutputRef>answers</loopDataOutputRef>
                <inputDataItem id="reviewer" name="reviewer"/><outputDataItem id="answer" name="answer"/>
              </multiInstanceLoopCharacteristics></serviceTask><endEvent id="e"/>""",
            "s -> each\neach -> e",
        )
    )
    instance = h.start("p", reviewers=["wang", "li"], answers=[])
    for expected in ("wang", "li"):
        jobs = h.jobs(instance, "crm.notify")
        assert len(jobs) == 1  # one at a time
        h.orchestrator.complete_job(jobs[0].job_key, {"answer": f"ok from {expected}"})
    assert h.status(instance) == "COMPLETED"
    assert h.variables(instance)["answers"] == ["ok from wang", "ok from li"]


# ----------------------------------------------------------------------------------------------- timers


def timer_process(definition: str) -> bytes:
    return bpmn(
        "p",
        f'<startEvent id="s"/><intermediateCatchEvent id="wait">{definition}</intermediateCatchEvent><endEvent id="e"/>',
        "s -> wait\nwait -> e",
    )


def test_duration_timer_waits_then_fires(h: Harness) -> None:
    h.deploy(
        p=timer_process('<timerEventDefinition><timeDuration>"P2D"</timeDuration></timerEventDefinition>')
    )
    instance = h.start("p")
    assert h.orchestrator.fire_due_timers() == 0
    assert h.status(instance) == "ACTIVE"
    due = h.orchestrator.next_timer_due()
    assert due is not None and timedelta(days=1, hours=23) < due - datetime.now(UTC) <= timedelta(days=2)
    h.fast_forward(instance)
    assert h.status(instance) == "COMPLETED"
    assert "timer.fired wait" in h.history(instance)


def test_date_timer_in_the_past_fires_at_once(h: Harness) -> None:
    h.deploy(
        p=timer_process(
            '<timerEventDefinition><timeDate>"2020-01-01T00:00:00+00:00"</timeDate></timerEventDefinition>'
        )
    )
    instance = h.start("p")
    assert h.status(instance) == "COMPLETED"


def test_date_timer_from_a_variable(h: Harness) -> None:
    h.deploy(
        p=timer_process("<timerEventDefinition><timeDate>follow_up_on</timeDate></timerEventDefinition>")
    )
    later = (datetime.now(UTC) + timedelta(days=30)).isoformat()
    instance = h.start("p", follow_up_on=later)
    assert h.status(instance) == "ACTIVE"
    assert h.orchestrator.next_timer_due() == datetime.fromisoformat(later)


def test_time_scale_shortens_timers(tmp_path: Path) -> None:
    harness = Harness.sqlite(tmp_path, time_scale=1 / (24 * 3600))  # a day becomes a second
    harness.deploy(
        p=timer_process('<timerEventDefinition><timeDuration>"P1D"</timeDuration></timerEventDefinition>')
    )
    harness.start("p")
    due = harness.orchestrator.next_timer_due()
    assert due is not None and due - datetime.now(UTC) < timedelta(seconds=2)
    harness.close()


def boundary_on_user_task(cancel: bool, timer: str) -> bytes:
    return bpmn(
        "p",
        f"""<startEvent id="s"/><userTask id="approve"/>
        <boundaryEvent id="reminder" attachedToRef="approve" cancelActivity="{"true" if cancel else "false"}">
          <timerEventDefinition>{timer}</timerEventDefinition></boundaryEvent>
        {service_task("remind", "crm.remind")}<endEvent id="reminded"/><endEvent id="e"/>""",
        "s -> approve\napprove -> e\nreminder -> remind\nremind -> reminded",
    )


def test_non_interrupting_cycle_timer_fires_each_cycle(h: Harness) -> None:
    h.deploy(p=boundary_on_user_task(False, '<timeCycle>"R3/PT1H"</timeCycle>'))
    instance = h.start("p")
    h.fast_forward(instance, "reminder")
    h.fast_forward(instance, "reminder")
    assert len(h.jobs(instance, "crm.remind")) == 2
    assert h.task("approve", instance).status == "OPEN"  # the task is still there
    h.submit("approve", instance)
    for job in h.jobs(instance, "crm.remind"):
        h.orchestrator.complete_job(job.job_key, {})
    assert h.status(instance) == "COMPLETED"


def test_cycle_timer_catches_up_missed_cycles(tmp_path: Path) -> None:
    clock = ManualClock()
    h = Harness.sqlite(tmp_path, clock=clock)
    h.deploy(p=boundary_on_user_task(False, '<timeCycle>"R5/PT1S"</timeCycle>'))
    instance = h.start("p")
    clock.advance(timedelta(seconds=3.5))
    h.orchestrator.fire_due_timers()
    assert len(h.jobs(instance, "crm.remind")) == 3  # due 2.5 s, 1.5 s and 0.5 s ago
    h.close()


def test_interrupting_boundary_timer_cancels_the_task(h: Harness) -> None:
    h.deploy(p=boundary_on_user_task(True, '<timeDuration>"P5D"</timeDuration>'))
    instance = h.start("p")
    task_id = h.task("approve", instance).user_task_id
    h.fast_forward(instance, "reminder")
    assert h.orchestrator.get_user_task(task_id)[0].status == "CANCELED"
    with pytest.raises(FailedPrecondition):
        h.orchestrator.complete_user_task(task_id, {}, TESTER)
    h.complete("crm.remind", instance)
    assert "reminded" in h.completed_elements(instance)


def test_a_reply_for_a_job_a_timer_cancelled_is_refused(h: Harness) -> None:
    h.deploy(
        p=bpmn(
            "p",
            f"""<startEvent id="s"/>{service_task("slow", "crm.slow")}
            <boundaryEvent id="too_late" attachedToRef="slow"><timerEventDefinition><timeDuration>"PT1H"</timeDuration></timerEventDefinition></boundaryEvent>
            <endEvent id="e"/><endEvent id="timed_out"/>""",
            "s -> slow\nslow -> e\ntoo_late -> timed_out",
        )
    )
    instance = h.start("p")
    job = h.job("crm.slow", instance)
    h.fast_forward(instance, "too_late")
    assert h.jobs(instance, status="CANCELED")[0].job_key == job.job_key
    with pytest.raises(FailedPrecondition, match="no longer waits"):
        h.orchestrator.complete_job(job.job_key, {})
    assert "timed_out" in h.completed_elements(instance)


def test_timer_start_event_starts_a_new_instance_each_cycle(h: Harness) -> None:
    h.deploy(
        p=bpmn(
            "p",
            f"""<startEvent id="monthly"><timerEventDefinition><timeCycle>"R/P30D"</timeCycle></timerEventDefinition></startEvent>
            {service_task("research", "crm.research")}<endEvent id="e"/>""",
            "monthly -> research\nresearch -> e",
        )
    )
    assert h.orchestrator.fire_start_timers() == 0
    from sqlalchemy import update

    from consultflow.orchestrator.orm import StartTimer

    for _ in range(2):
        with h.uow() as uow:
            uow.session.execute(update(StartTimer).values(due_at=datetime.now(UTC) - timedelta(seconds=1)))
            uow.commit()
        assert h.orchestrator.fire_start_timers() == 1
    assert len(h.jobs(operation="crm.research")) == 2
    due = h.orchestrator.next_timer_due()
    assert due is not None and due > datetime.now(UTC) + timedelta(days=29)


# --------------------------------------------------------------------------------------------- messages


def waiting_for_reply() -> bytes:
    return bpmn(
        "p",
        """<startEvent id="s"/><intermediateCatchEvent id="reply"><messageEventDefinition messageRef="m_reply"/></intermediateCatchEvent><endEvent id="e"/>""",
        "s -> reply\nreply -> e",
        extra=message("m_reply", "client.reply", "engagement_id"),
    )


def test_message_correlates_by_key(h: Harness) -> None:
    h.deploy(p=waiting_for_reply())
    first = h.start("p", engagement_id="E1")
    second = h.start("p", engagement_id="E2")
    assert h.publish("client.reply", "E2", answer="yes") == "CORRELATED"
    assert h.status(second) == "COMPLETED" and h.status(first) == "ACTIVE"
    assert h.variables(second)["answer"] == "yes"


def test_message_is_buffered_until_a_receiver_waits(h: Harness) -> None:
    h.deploy(p=waiting_for_reply())
    assert h.publish("client.reply", "E1", ttl_seconds=60, answer="early") == "BUFFERED"
    instance = h.start("p", engagement_id="E1")
    assert h.status(instance) == "COMPLETED"
    assert h.variables(instance)["answer"] == "early"


def test_message_without_receiver_and_ttl_is_dropped_and_expired_buffers_are_not_delivered(
    h: Harness,
) -> None:
    h.deploy(p=waiting_for_reply())
    assert h.publish("client.reply", "E1") == "DROPPED"
    assert h.publish("client.reply", "E1", ttl_seconds=0.001) == "BUFFERED"
    h.clock.advance(timedelta(seconds=0.01))
    assert h.orchestrator.expire_messages() == 1
    instance = h.start("p", engagement_id="E1")
    assert h.status(instance) == "ACTIVE"


def test_duplicate_message_id_is_dropped(h: Harness) -> None:
    h.deploy(p=waiting_for_reply())
    h.start("p", engagement_id="E1")
    h.start("p", engagement_id="E1")
    assert h.publish("client.reply", "E1", message_id="m-1") == "CORRELATED"
    assert h.publish("client.reply", "E1", message_id="m-1") == "DUPLICATE"
    assert len([i for i in h.orchestrator.list_instances(status="ACTIVE")[0]]) == 1


def test_message_start_event_and_throw_between_instances(h: Harness) -> None:
    starter = bpmn(
        "engagement",
        """<startEvent id="s"/>
        <intermediateThrowEvent id="tell"><messageEventDefinition messageRef="m_started">
          <extensionElements><spiffworkflow:messagePayload>{"engagement_id": engagement_id, "client": client}</spiffworkflow:messagePayload></extensionElements>
        </messageEventDefinition></intermediateThrowEvent>
        <intermediateCatchEvent id="wait_closed"><messageEventDefinition messageRef="m_done"/></intermediateCatchEvent>
        <endEvent id="e"/>""",
        "s -> tell\ntell -> wait_closed\nwait_closed -> e",
        extra=message("m_started", "engagement.started", "engagement_id")
        + message("m_done", "risk.done", "engagement_id"),
    )
    follower = definitions(
        message("m_started2", "engagement.started", "engagement_id")
        + message("m_done2", "risk.done", "engagement_id")
        + process_xml(
            "risk",
            """<startEvent id="rs"><messageEventDefinition messageRef="m_started2"/></startEvent>
            <endEvent id="re"><messageEventDefinition messageRef="m_done2">
              <extensionElements><spiffworkflow:messagePayload>{"engagement_id": engagement_id}</spiffworkflow:messagePayload></extensionElements>
            </messageEventDefinition></endEvent>""",
            "rs -> re",
        )
    )
    h.deploy(engagement=starter, risk=follower)
    instance = h.start("engagement", engagement_id="E9", client="ACME")
    assert h.deliver_thrown() == 1  # engagement.started → a new risk instance
    risk_instances = h.orchestrator.list_instances(process_id="risk")[0]
    assert len(risk_instances) == 1 and risk_instances[0].status == "COMPLETED"
    assert h.variables(risk_instances[0].instance_id)["client"] == "ACME"
    assert h.deliver_thrown() == 1  # risk.done → back to the engagement
    assert h.status(instance) == "COMPLETED"


def test_publish_message_starts_a_process_with_a_message_start_event(h: Harness) -> None:
    h.deploy(
        p=bpmn(
            "p",
            f"""<startEvent id="s"><messageEventDefinition messageRef="m_in"/></startEvent>
            {service_task("t", "crm.t")}<endEvent id="e"/>""",
            "s -> t\nt -> e",
            extra=message("m_in", "inquiry.received", "engagement_id"),
        )
    )
    result = h.orchestrator.publish_message("inquiry.received", "E1", {"question": "q"}, timedelta(0), "")
    assert result.outcome == "STARTED"
    assert h.variables(result.instance_id)["question"] == "q"
    assert h.view(result.instance_id).instance.business_key == "E1"
    again = h.orchestrator.publish_message("inquiry.received", "E1", {}, timedelta(0), "")
    assert again.outcome == "DROPPED"  # one instance per key


# ----------------------------------------------------------------------------------------------- errors


def error_process(boundary_code: str | None) -> bytes:
    ref = ' errorRef="err_incomplete"' if boundary_code else ""
    return bpmn(
        "p",
        f"""<startEvent id="s"/>{service_task("review", "contracts.review")}
        <boundaryEvent id="incomplete" attachedToRef="review"><errorEventDefinition{ref}/></boundaryEvent>
        <endEvent id="e"/><endEvent id="sent_back"/>""",
        "s -> review\nreview -> e\nincomplete -> sent_back",
        extra='<error id="err_incomplete" name="incomplete" errorCode="contract_incomplete"/>'
        if boundary_code
        else "",
    )


def test_worker_bpmn_error_is_caught_by_its_boundary_event(h: Harness) -> None:
    h.deploy(p=error_process("contract_incomplete"))
    instance = h.start("p")
    job = h.job("contracts.review", instance)
    h.orchestrator.throw_error(
        job.job_key, "contract_incomplete", "clause missing", {"missing": "breach_liability"}
    )
    assert h.status(instance) == "COMPLETED"
    assert "sent_back" in h.completed_elements(instance)
    assert h.variables(instance)["missing"] == "breach_liability"


def test_uncaught_bpmn_error_raises_an_incident_and_resolving_retries(h: Harness) -> None:
    h.deploy(p=error_process("contract_incomplete"))
    instance = h.start("p")
    job = h.job("contracts.review", instance)
    h.orchestrator.throw_error(job.job_key, "another_code", "surprise", {})
    incidents = h.view(instance).incidents
    assert [i.kind for i in incidents] == ["UNHANDLED_ERROR"]
    h.orchestrator.resolve_incident(incidents[0].incident_id)
    retried = h.job("contracts.review", instance)
    assert retried.attempt == 2
    h.orchestrator.complete_job(retried.job_key, {})
    assert h.status(instance) == "COMPLETED"


def test_catch_all_error_boundary(h: Harness) -> None:
    h.deploy(p=error_process(None))
    instance = h.start("p")
    h.orchestrator.throw_error(h.job("contracts.review", instance).job_key, "anything", "", {})
    assert "sent_back" in h.completed_elements(instance)


def test_retries_back_off_then_incident_then_resolve(h: Harness) -> None:
    h.deploy(
        p=bpmn(
            "p",
            f'<startEvent id="s"/><serviceTask id="t">{operation("crm.flaky", retries=2, backoff=10)}</serviceTask><endEvent id="e"/>',
            "s -> t\nt -> e",
        )
    )
    instance = h.start("p")
    job = h.job("crm.flaky", instance)
    assert job.retries == 2
    h.orchestrator.fail_job(job.job_key, job.retries, 0, "timeout")
    job = h.job("crm.flaky", instance)
    assert (job.attempt, job.retries) == (2, 1)
    from sqlalchemy import select

    from consultflow.platform.tables import outbox

    with h.db.read() as session:
        not_before = session.scalars(select(outbox.c.not_before).order_by(outbox.c.seq.desc()).limit(1)).one()
    delay = not_before.replace(tzinfo=UTC) - datetime.now(UTC)
    assert timedelta(seconds=8) < delay <= timedelta(seconds=10)  # the diagram's back-off base
    h.orchestrator.fail_job(job.job_key, job.retries, 0, "timeout")
    h.orchestrator.fail_job(job.job_key, 0, 0, "still down")
    assert h.jobs(instance, status="INCIDENT")
    incident = h.view(instance).incidents[0]
    assert incident.kind == "JOB_NO_RETRIES" and "still down" in incident.message
    h.orchestrator.resolve_incident(incident.incident_id, retries=3)
    job = h.job("crm.flaky", instance)
    assert job.retries == 2
    h.orchestrator.complete_job(job.job_key, {})
    assert h.status(instance) == "COMPLETED"
    assert h.view(instance).incidents == []


def test_escalation_from_a_subprocess(h: Harness) -> None:
    h.deploy(
        p=bpmn(
            "p",
            """<startEvent id="s"/>
            <subProcess id="work"><startEvent id="ws"/>
              <intermediateThrowEvent id="raise"><escalationEventDefinition escalationRef="esc"/></intermediateThrowEvent>
              <endEvent id="we"/>
              <sequenceFlow id="w1" sourceRef="ws" targetRef="raise"/><sequenceFlow id="w2" sourceRef="raise" targetRef="we"/>
            </subProcess>
            <boundaryEvent id="escalated" attachedToRef="work" cancelActivity="false"><escalationEventDefinition escalationRef="esc"/></boundaryEvent>
            <endEvent id="e"/><endEvent id="told_management"/>""",
            "s -> work\nwork -> e\nescalated -> told_management",
            extra='<escalation id="esc" name="late" escalationCode="late"/>',
        )
    )
    instance = h.start("p")
    assert h.status(instance) == "COMPLETED"
    assert {"told_management", "e"} <= set(h.completed_elements(instance))


def test_signal_within_an_instance(h: Harness) -> None:
    h.deploy(
        p=bpmn(
            "p",
            """<startEvent id="s"/><parallelGateway id="split"/>
            <intermediateCatchEvent id="wait"><signalEventDefinition signalRef="sig"/></intermediateCatchEvent>
            <userTask id="decide"/>
            <intermediateThrowEvent id="announce"><signalEventDefinition signalRef="sig"/></intermediateThrowEvent>
            <parallelGateway id="join"/><endEvent id="e"/>""",
            "s -> split\nsplit -> wait\nsplit -> decide\ndecide -> announce\nannounce -> join\nwait -> join\njoin -> e",
            extra='<signal id="sig" name="go"/>',
        )
    )
    instance = h.start("p")
    h.submit("decide", instance)
    assert h.status(instance) == "COMPLETED"


def test_terminate_end_event_ends_every_branch(h: Harness) -> None:
    h.deploy(
        p=bpmn(
            "p",
            f"""<startEvent id="s"/><parallelGateway id="split"/>{service_task("long", "crm.long")}
            <endEvent id="normal"/><endEvent id="stop"><terminateEventDefinition/></endEvent>""",
            "s -> split\nsplit -> long\nsplit -> stop\nlong -> normal",
        )
    )
    instance = h.start("p")
    assert h.status(instance) == "COMPLETED"
    assert h.jobs(instance) == []


def test_cancel_end_event_in_a_transaction(h: Harness) -> None:
    h.deploy(
        p=bpmn(
            "p",
            """<startEvent id="s"/>
            <transaction id="tx"><startEvent id="ts"/><endEvent id="abort"><cancelEventDefinition/></endEvent>
              <sequenceFlow id="t1" sourceRef="ts" targetRef="abort"/></transaction>
            <boundaryEvent id="cancelled" attachedToRef="tx"><cancelEventDefinition/></boundaryEvent>
            <endEvent id="e"/><endEvent id="rolled_back"/>""",
            "s -> tx\ntx -> e\ncancelled -> rolled_back",
        )
    )
    instance = h.start("p")
    assert h.status(instance) == "COMPLETED"
    assert "rolled_back" in h.completed_elements(instance)


def test_script_that_escapes_is_refused_at_deploy(h: Harness) -> None:
    with pytest.raises(InvalidArgument, match="element 'bad'"):
        h.deploy(
            p=bpmn(
                "p",
                '<startEvent id="s"/><scriptTask id="bad"><script>import os</script></scriptTask><endEvent id="e"/>',
                "s -> bad\nbad -> e",
            )
        )


def test_script_failure_at_run_time_is_an_incident(h: Harness) -> None:
    h.deploy(
        p=bpmn(
            "p",
            '<startEvent id="s"/><scriptTask id="loop"><script>while True:\n    x = 1</script></scriptTask><endEvent id="e"/>',
            "s -> loop\nloop -> e",
        )
    )
    instance = h.start("p")
    incidents = h.view(instance).incidents
    assert [i.kind for i in incidents] == ["SCRIPT_ERROR"]
    # the CPU budget, or on a machine too busy to give the script its CPU, the wall bound beside it
    assert "(limit script_cpu_ms)" in incidents[0].message, incidents[0].message
    assert h.status(instance) == "ACTIVE"


# --------------------------------------------------------------------------------------------- user tasks


def test_user_task_form_validation_names_the_field(h: Harness) -> None:
    h.deploy(
        p=bpmn(
            "p",
            f"""<startEvent id="s"/>
            <userTask id="review" camunda:candidateGroups="legal" camunda:dueDate="P2D">{
                form(
                    field("verdict", "enum", required=True, values=("approved", "revise")),
                    field("rounds", "long"),
                    field("fee", "decimal"),
                    field("signed_on", "date"),
                )
            }</userTask><endEvent id="e"/>""",
            "s -> review\nreview -> e",
        )
    )
    instance = h.start("p")
    task = h.task("review", instance)
    assert task.candidate_groups == ",legal,"
    assert task.due_at is not None
    cases = [
        ({}, "verdict"),
        ({"verdict": "maybe"}, "verdict"),
        ({"verdict": "approved", "rounds": "two"}, "rounds"),
        ({"verdict": "approved", "fee": "1,5"}, "fee"),
        ({"verdict": "approved", "signed_on": "31/12/2026"}, "signed_on"),
        ({"verdict": "approved", "colour": "red"}, "colour"),
    ]
    h.orchestrator.claim_user_task(task.user_task_id, TESTER)
    for values, bad_field in cases:
        with pytest.raises(InvalidArgument) as raised:
            h.orchestrator.complete_user_task(task.user_task_id, values, TESTER)
        assert raised.value.field == bad_field
    assert h.status(instance) == "ACTIVE"  # nothing was written
    h.orchestrator.complete_user_task(
        task.user_task_id, {"verdict": "approved", "rounds": "2", "fee": "12.50"}, TESTER
    )
    variables = h.variables(instance)
    assert (variables["verdict"], variables["rounds"], variables["fee"]) == ("approved", 2, "12.50")


def test_claiming(h: Harness) -> None:
    task_xml = '<userTask id="u" camunda:candidateGroups="team"/>'
    h.deploy(p=bpmn("p", f'<startEvent id="s"/>{task_xml}<endEvent id="e"/>', "s -> u\nu -> e"))
    instance = h.start("p")
    task_id = h.task("u", instance).user_task_id
    wang, li, lea = person("wang", "team"), person("li", "team"), person("lea", "legal")
    with pytest.raises(PermissionDenied, match="not a candidate"):
        h.orchestrator.claim_user_task(task_id, lea)
    with pytest.raises(PermissionDenied, match="not claimed"):
        h.orchestrator.complete_user_task(task_id, {}, wang)
    h.orchestrator.claim_user_task(task_id, wang)
    with pytest.raises(FailedPrecondition, match="claimed by 'wang'"):
        h.orchestrator.claim_user_task(task_id, li)
    with pytest.raises(PermissionDenied, match="only an admin"):
        h.orchestrator.claim_user_task(task_id, li, force=True)
    with pytest.raises(PermissionDenied, match="claimed by 'wang'"):
        h.orchestrator.complete_user_task(task_id, {}, li)
    h.orchestrator.claim_user_task(task_id, TESTER, force=True)  # an admin takes it over
    with pytest.raises(PermissionDenied):
        h.orchestrator.complete_user_task(task_id, {}, wang)
    h.orchestrator.complete_user_task(task_id, {}, TESTER)
    assert h.orchestrator.get_user_task(task_id)[0].completed_by == "tester"


# ------------------------------------------------------------------------------------- instance control


def test_cancel_instance_cancels_jobs_and_tasks(h: Harness) -> None:
    h.deploy(
        p=bpmn(
            "p",
            f'<startEvent id="s"/><parallelGateway id="g"/>{service_task("t", "crm.t")}<userTask id="u"/><endEvent id="e1"/><endEvent id="e2"/>',
            "s -> g\ng -> t\ng -> u\nt -> e1\nu -> e2",
        )
    )
    instance = h.start("p")
    job = h.job("crm.t", instance)
    h.orchestrator.cancel_instance(instance, "client withdrew")
    assert h.status(instance) == "CANCELED"
    assert h.jobs(instance) == [] and h.user_tasks(instance) == []
    with pytest.raises(FailedPrecondition):
        h.orchestrator.complete_job(job.job_key, {})
    with pytest.raises(FailedPrecondition):
        h.orchestrator.cancel_instance(instance)


def test_versions_never_change_running_instances(h: Harness) -> None:
    v1 = bpmn(
        "p", f'<startEvent id="s"/>{service_task("old", "crm.old")}<endEvent id="e"/>', "s -> old\nold -> e"
    )
    v2 = bpmn(
        "p", f'<startEvent id="s"/>{service_task("new", "crm.new")}<endEvent id="e"/>', "s -> new\nnew -> e"
    )
    h.deploy(p=v1)
    h.deploy(p=v1)  # unchanged: no new version
    first = h.start("p")
    h.deploy(p=v2)
    second = h.start("p")
    assert [d.version for d in h.orchestrator.list_definitions("p")] == [1, 2]
    assert h.view(first).instance.definition_id == "p:1"
    h.complete("crm.old", first)
    h.complete("crm.new", second)
    assert h.status(first) == h.status(second) == "COMPLETED"
    pinned = h.orchestrator.create_instance("p", 1, {}, "").instance_id
    assert h.job("crm.old", pinned)


def test_business_key_makes_starting_idempotent(h: Harness) -> None:
    h.deploy(p=bpmn("p", '<startEvent id="s"/><userTask id="u"/><endEvent id="e"/>', "s -> u\nu -> e"))
    first = h.orchestrator.create_instance("p", 0, {}, "E-1")
    again = h.orchestrator.create_instance("p", 0, {"other": 1}, "E-1")
    assert first.created and not again.created and again.instance_id == first.instance_id
    with pytest.raises(NotFound):
        h.orchestrator.create_instance("missing", 0, {}, "")


# ------------------------------------------------------------------------------- more tasks and events


def test_business_rule_task_reads_a_decision_table(h: Harness) -> None:
    from pathlib import Path as _Path

    matrix = (_Path(__file__).resolve().parents[3] / "bpmn" / "risk_matrix.dmn").read_bytes()
    h.deploy(
        p=bpmn(
            "p",
            """<startEvent id="s"/>
            <businessRuleTask id="assess"><extensionElements><spiffworkflow:calledDecisionId>risk_matrix</spiffworkflow:calledDecisionId></extensionElements></businessRuleTask>
            <endEvent id="e"/>""",
            "s -> assess\nassess -> e",
        ),
        risk_matrix_dmn=matrix,
    )
    instance = h.start("p", likelihood="high", impact="severe")
    assert h.variables(instance)["suggested_strategy"] == "avoid"


def test_receive_task_with_boundary_timer(h: Harness) -> None:
    h.deploy(
        p=bpmn(
            "p",
            f"""<startEvent id="s"/><receiveTask id="await_report" messageRef="m_report"/>
            <boundaryEvent id="remind" attachedToRef="await_report" cancelActivity="false"><timerEventDefinition><timeDuration>"P7D"</timeDuration></timerEventDefinition></boundaryEvent>
            {service_task("send_reminder", "delivery.remind")}<endEvent id="reminded"/><endEvent id="e"/>""",
            "s -> await_report\nawait_report -> e\nremind -> send_reminder\nsend_reminder -> reminded",
            extra=message("m_report", "acceptance.reported", "engagement_id"),
        )
    )
    instance = h.start("p", engagement_id="E1")
    h.fast_forward(instance, "remind")
    h.complete("delivery.remind", instance)
    assert h.publish("acceptance.reported", "E1", acceptance_conclusion="passed") == "CORRELATED"
    assert h.status(instance) == "COMPLETED"
    assert h.variables(instance)["acceptance_conclusion"] == "passed"


def test_interrupting_message_boundary_on_a_call_activity(h: Harness) -> None:
    child = bpmn(
        "child",
        '<startEvent id="cs"/><userTask id="long_work"/><endEvent id="ce"/>',
        "cs -> long_work\nlong_work -> ce",
    )
    parent = bpmn(
        "parent",
        """<startEvent id="s"/><callActivity id="call" calledElement="child"/>
        <boundaryEvent id="stop_it" attachedToRef="call"><messageEventDefinition messageRef="m_stop"/></boundaryEvent>
        <endEvent id="e"/><endEvent id="stopped"/>""",
        "s -> call\ncall -> e\nstop_it -> stopped",
        extra=message("m_stop", "engagement.avoid_risk", "engagement_id"),
    )
    h.deploy(parent=parent, child=child)
    instance = h.start("parent", engagement_id="E5")
    task = h.task("long_work", instance)
    assert h.publish("engagement.avoid_risk", "E5") == "CORRELATED"
    assert h.status(instance) == "COMPLETED"
    assert "stopped" in h.completed_elements(instance)
    assert h.orchestrator.get_user_task(task.user_task_id)[0].status == "CANCELED"


def test_error_end_event_caught_on_its_subprocess(h: Harness) -> None:
    h.deploy(
        p=bpmn(
            "p",
            """<startEvent id="s"/>
            <subProcess id="check"><startEvent id="cs"/><endEvent id="fail"><errorEventDefinition errorRef="err"/></endEvent>
              <sequenceFlow id="c1" sourceRef="cs" targetRef="fail"/></subProcess>
            <boundaryEvent id="failed" attachedToRef="check"><errorEventDefinition errorRef="err"/></boundaryEvent>
            <endEvent id="e"/><endEvent id="handled"/>""",
            "s -> check\ncheck -> e\nfailed -> handled",
            extra='<error id="err" name="invalid" errorCode="invalid"/>',
        )
    )
    instance = h.start("p")
    assert "handled" in h.completed_elements(instance)


def test_a_repeated_message_updates_the_variables_it_carries(h: Harness) -> None:
    h.deploy(
        p=bpmn(
            "p",
            """<startEvent id="s"/><exclusiveGateway id="again"/>
            <receiveTask id="report" messageRef="m_report"/><exclusiveGateway id="verdict"/><endEvent id="e"/>""",
            """s -> again
            again -> report
            report -> verdict
            verdict -> e: acceptance_conclusion == "passed"
            verdict -> again: default""",
            extra=message("m_report", "acceptance.reported", "engagement_id"),
        )
    )
    instance = h.start("p", engagement_id="E1")
    assert h.publish("acceptance.reported", "E1", acceptance_conclusion="failed") == "CORRELATED"
    assert h.status(instance) == "ACTIVE"
    assert h.publish("acceptance.reported", "E1", acceptance_conclusion="passed") == "CORRELATED"
    assert h.status(instance) == "COMPLETED"


def test_timer_overrides_replace_chosen_timers(tmp_path: Path) -> None:
    harness = Harness.sqlite(tmp_path, timer_overrides={"wait": "PT1S"}, time_scale=1000.0)
    harness.deploy(
        p=timer_process('<timerEventDefinition><timeDuration>"P30D"</timeDuration></timerEventDefinition>')
    )
    harness.start("p")
    due = harness.orchestrator.next_timer_due()
    assert due is not None and due - datetime.now(UTC) < timedelta(seconds=2)  # the override, not P30D × 1000
    harness.close()
