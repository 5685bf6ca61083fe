"""A process with several start events starts through the one its trigger names: CreateInstance through the
none start, a message through its message start event, a timer through its timer start event.

SpiffWorkflow runs every start event of such a process and lets the first to complete cancel the others, so
without a choice the none start would always win and a message could never start the process.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update

from consultflow.orchestrator.orm import StartTimer, Subscription
from tests.support.bpmn_builder import bpmn, message, service_task
from tests.support.orchestrator_harness import Harness


@pytest.fixture
def h(tmp_path: Path) -> Iterator[Harness]:
    harness = Harness.sqlite(tmp_path)
    yield harness
    harness.close()


def two_starts(extra_start: str = "") -> bytes:
    """An inquiry is received directly (none start) or referred (message start); both record it."""
    return bpmn(
        "p",
        f"""<startEvent id="received"/>
        <startEvent id="referred"><messageEventDefinition messageRef="m_referred"/></startEvent>
        {extra_start}
        <exclusiveGateway id="join"/>
        {service_task("record", "crm.record_inquiry", engagement_id="engagement_id", lead_id="lead_id")}
        <endEvent id="e"/>""",
        "received -> join\nreferred -> join\njoin -> record\nrecord -> e"
        + ("\nmonthly -> join" if extra_start else ""),
        extra=message("m_referred", "inquiry.referred", "engagement_id"),
    )


def subscriptions(h: Harness) -> list[str]:
    with h.db.read() as session:
        return list(session.scalars(select(Subscription.message_name)))


def test_the_deployed_process_lists_its_message_start(h: Harness) -> None:
    h.deploy(p=two_starts())
    definitions = h.orchestrator.list_definitions()
    assert [json.loads(d.start_messages) for d in definitions] == [["inquiry.referred"]]


def test_a_message_starts_the_process_through_its_message_start_event(h: Harness) -> None:
    h.deploy(p=two_starts())
    result = h.orchestrator.publish_message(
        "inquiry.referred", "E7", {"engagement_id": "E7", "lead_id": "L1"}, timedelta(0), ""
    )
    assert result.outcome == "STARTED"
    instance = result.instance_id
    assert h.view(instance).instance.business_key == "E7"
    assert "referred" in h.completed_elements(instance)
    assert "received" not in h.completed_elements(instance)
    assert h.variables(instance)["lead_id"] == "L1"  # the message's payload is the instance's data
    h.complete("crm.record_inquiry", instance)
    assert h.status(instance) == "COMPLETED"


def test_create_instance_starts_through_the_none_start_and_waits_for_no_message(h: Harness) -> None:
    h.deploy(p=two_starts())
    instance = h.start("p", "E8", engagement_id="E8", lead_id="")
    assert "received" in h.completed_elements(instance)
    assert "referred" not in h.completed_elements(instance)
    assert subscriptions(h) == []
    h.complete("crm.record_inquiry", instance)
    assert h.status(instance) == "COMPLETED"
    # the message start event is no receiver of this instance: a message with its key starts no second one
    assert h.publish("inquiry.referred", "E8", engagement_id="E8", lead_id="") == "DROPPED"


def test_a_second_message_with_the_same_key_starts_nothing(h: Harness) -> None:
    h.deploy(p=two_starts())
    assert h.publish("inquiry.referred", "E9", engagement_id="E9", lead_id="") == "STARTED"
    assert h.publish("inquiry.referred", "E9", engagement_id="E9", lead_id="") == "DROPPED"
    assert len(h.orchestrator.list_instances(process_id="p")[0]) == 1


def test_a_timer_starts_the_process_through_its_timer_start_event(h: Harness) -> None:
    monthly = '<startEvent id="monthly"><timerEventDefinition><timeCycle>"R/P30D"</timeCycle></timerEventDefinition></startEvent>'
    h.deploy(p=two_starts(monthly))
    with h.uow() as uow:
        uow.session.execute(update(StartTimer).values(due_at=datetime.now(UTC) - timedelta(seconds=1)))
        uow.commit()
    assert h.orchestrator.fire_start_timers() == 1
    (instance,) = h.orchestrator.list_instances(process_id="p")[0]
    completed = h.completed_elements(instance.instance_id)
    assert "monthly" in completed and "received" not in completed and "referred" not in completed
    assert subscriptions(h) == []


# ------------------------------------------------------------- cancelling what a thrown message started


def engagement_and_risk() -> dict[str, bytes]:
    """An engagement that starts its risk management by a message (same key) and refers a new engagement
    (another key); each waits."""
    engagement = bpmn(
        "engagement",
        """<startEvent id="s"/>
        <intermediateThrowEvent id="start_risk"><messageEventDefinition messageRef="m_started">
          <extensionElements><spiffworkflow:messagePayload>{"engagement_id": engagement_id}</spiffworkflow:messagePayload></extensionElements>
        </messageEventDefinition></intermediateThrowEvent>
        <intermediateThrowEvent id="refer"><messageEventDefinition messageRef="m_referred">
          <extensionElements><spiffworkflow:messagePayload>{"referred_engagement_id": "E-NEW"}</spiffworkflow:messagePayload></extensionElements>
        </messageEventDefinition></intermediateThrowEvent>
        <userTask id="work"/><endEvent id="e"/>""",
        "s -> start_risk\nstart_risk -> refer\nrefer -> work\nwork -> e",
        extra=message("m_started", "engagement.started", "engagement_id")
        + message("m_referred", "inquiry.referred", "referred_engagement_id"),
    )
    risk = bpmn(
        "risk",
        """<startEvent id="rs"><messageEventDefinition messageRef="m_started"/></startEvent>
        <userTask id="review"/><endEvent id="re"/>""",
        "rs -> review\nreview -> re",
        extra=message("m_started", "engagement.started", "engagement_id"),
    )
    referred = bpmn(
        "referred",
        """<startEvent id="ns"><messageEventDefinition messageRef="m_referred"/></startEvent>
        <userTask id="intake"/><endEvent id="ne"/>""",
        "ns -> intake\nintake -> ne",
        extra=message("m_referred", "inquiry.referred", "referred_engagement_id"),
    )
    return {"engagement": engagement, "risk": risk, "referred": referred}


def test_cancelling_an_instance_cancels_what_its_messages_started_for_the_same_key(h: Harness) -> None:
    h.deploy(**engagement_and_risk())
    engagement = h.start("engagement", "E1", engagement_id="E1")
    assert h.deliver_thrown() == 2
    (risk,) = h.orchestrator.list_instances(process_id="risk")[0]
    (referred,) = h.orchestrator.list_instances(process_id="referred")[0]
    assert (risk.business_key, referred.business_key) == ("E1", "E-NEW")
    h.orchestrator.cancel_instance(engagement, "client withdrew")
    assert h.status(engagement) == "CANCELED"
    assert h.status(risk.instance_id) == "CANCELED"
    assert h.status(referred.instance_id) == "ACTIVE", "a referred engagement is a business of its own"


def test_cancelling_a_started_instance_leaves_its_starter(h: Harness) -> None:
    h.deploy(**engagement_and_risk())
    engagement = h.start("engagement", "E2", engagement_id="E2")
    h.deliver_thrown()
    (risk,) = h.orchestrator.list_instances(process_id="risk")[0]
    h.orchestrator.cancel_instance(risk.instance_id, "")
    assert h.status(engagement) == "ACTIVE"


# ------------------------------------------------------------------ an event subprocess's start event


def test_an_event_subprocess_sees_its_process_variables_and_assigns_by_them(h: Harness) -> None:
    """BPMN: an event subprocess sees the variables its process has when the message arrives (Spiff would
    give it only those the process started with), so a task in it can go to the engagement's manager."""
    h.deploy(
        p=bpmn(
            "p",
            f"""<startEvent id="s"/>{service_task("propose", "contracts.propose")}
            <userTask id="main_work"/><endEvent id="e"/>
            <subProcess id="on_change" triggeredByEvent="true">
              <startEvent id="changed" isInterrupting="false"><messageEventDefinition messageRef="m_change"/></startEvent>
              <userTask id="assess" camunda:assignee="${{project_manager}}"/><endEvent id="assessed"/>
              <sequenceFlow id="c1" sourceRef="changed" targetRef="assess"/>
              <sequenceFlow id="c2" sourceRef="assess" targetRef="assessed"/>
            </subProcess>""",
            "s -> propose\npropose -> main_work\nmain_work -> e",
            extra=message("m_change", "client.change_requested"),
        )
    )
    instance = h.start("p", key="E1")
    h.complete("contracts.propose", instance, project_manager="pm.wang")
    assert h.publish("client.change_requested", "E1", change="scope") == "CORRELATED"
    task = h.task("assess", instance)
    assert task.assignee == "pm.wang"
    h.submit("assess", instance, by="pm.wang")
    assert "assessed" in h.completed_elements(instance)


def test_a_process_throwing_its_own_start_message_starts_another_instance_not_itself(h: Harness) -> None:
    """An engagement whose follow-up refers a new engagement throws the very message its own message start
    event catches: the cancelled start event of the running instance does not catch it again."""
    h.deploy(
        p=bpmn(
            "p",
            """<startEvent id="received"/>
            <startEvent id="referred"><messageEventDefinition messageRef="m_referred"/></startEvent>
            <exclusiveGateway id="join"/><exclusiveGateway id="refers"/>
            <intermediateThrowEvent id="refer"><messageEventDefinition messageRef="m_referred">
              <extensionElements><spiffworkflow:messagePayload>{"referred_engagement_id": "E-NEXT", "refer": False}</spiffworkflow:messagePayload></extensionElements>
            </messageEventDefinition></intermediateThrowEvent>
            <userTask id="work"/><endEvent id="e"/>""",
            "received -> join\nreferred -> join\njoin -> refers\nrefers -> refer: refer\n"
            "refers -> work: default\nrefer -> work\nwork -> e",
            extra=message("m_referred", "inquiry.referred", "referred_engagement_id"),
        )
    )
    first = h.start("p", "E-FIRST", refer=True)
    assert h.deliver_thrown() == 1
    rows = {r.business_key: r for r in h.orchestrator.list_instances(process_id="p")[0]}
    assert set(rows) == {"E-FIRST", "E-NEXT"}
    assert "received" in h.completed_elements(first) and "referred" not in h.completed_elements(first)
    assert "referred" in h.completed_elements(rows["E-NEXT"].instance_id)
    assert [t.element_id for t in h.user_tasks(first)] == ["work"]
