"""Moving running instances to a new version and repairing one instance's path, on a real orchestrator
over gRPC: waits carry over with their rows (the same job key, the user task with its claim, the timer's
due time, the subscription), a bad plan is refused with nothing changed, a called process moves with its
caller, history and audit say what happened, and the instance runs on to its end, both from the live
cache and after a restart."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from sqlalchemy import select

from consultflow.api.orchestrator.v1 import orchestrator_pb2 as pb
from consultflow.api.orchestrator.v1 import orchestrator_pb2_grpc as pb_grpc
from consultflow.orchestrator.app import build
from consultflow.orchestrator.orm import INSTANCES, JOBS, SUBSCRIPTIONS, TIMERS, USER_TASKS
from consultflow.orchestrator.records import MoveAction
from consultflow.orchestrator.runtime import Orchestrator
from consultflow.orchestrator.usecases.migrations import (
    ElementMapping,
    MigrationPlan,
    MigrationRefused,
)
from consultflow.platform.bootstrap import Context, Parts
from consultflow.platform.errors import NotFound
from consultflow.platform.identity import Caller
from consultflow.platform.settings import Settings
from tests.support.bpmn_builder import bpmn, definitions, field, form, message, process_xml, service_task
from tests.support.components import ComponentThread, component_settings
from tests.support.identity import signed_channel
from tests.support.regulation_world import FlowIndex, World, resources
from tests.support.rpc import refused

INQUIRY = {
    "channel": "email",
    "client_name": "Shenzhen Lighting",
    "client_industry": "manufacturing",
    "contact_name": "Ms Chen",
    "contact_email": "chen@example.cn",
    "contact_phone": "",
    "question": "Can you help us enter the European market?",
}
ALL_FEASIBLE = {"technical_feasible": True, "economic_feasible": True, "time_feasible": True, "take_on": True}

Stub = pb_grpc.OrchestratorServiceStub
OTTO = Caller("otto", roles=frozenset({"ops"}))
CODE = grpc.StatusCode


class Running:
    """An orchestrator component, its stub as root, and its `Orchestrator` (migration has no RPC of this
    part: the batch runner calls `migrate_instance`)."""

    def __init__(self, settings: Settings) -> None:
        self.orchestrator: Orchestrator | None = None
        self.stopped = False

        def capturing(context: Context) -> Parts:
            parts = build(context)
            self.orchestrator = parts.registrations[0].servicer._orchestrator  # type: ignore[attr-defined]
            return parts

        self.component = ComponentThread(settings, capturing).start()
        self.channel = signed_channel(self.component.address)
        self.stub = Stub(self.channel)

    @property
    def host(self) -> Orchestrator:
        assert self.orchestrator is not None
        return self.orchestrator

    def as_person(self, name: str, *roles: str, groups: tuple[str, ...] = ()) -> Stub:
        return Stub(signed_channel(self.component.address, name, roles=list(roles), groups=list(groups)))

    def stop(self) -> None:
        if self.stopped:
            return
        self.stopped = True
        self.channel.close()
        self.component.stop()


@pytest.fixture
def settings(tmp_path: Path, nats_url: str, database_url: str) -> Settings:
    empty = tmp_path / "bpmn"
    empty.mkdir()
    return component_settings("orchestrator", tmp_path, nats_url, database_url, bpmn_dir=empty)


@pytest.fixture
def running(settings: Settings) -> Iterator[Running]:
    orchestrator = Running(settings)
    yield orchestrator
    orchestrator.stop()


def timer(element_id: str, duration: str) -> str:
    return (
        f'<intermediateCatchEvent id="{element_id}">'
        f'<timerEventDefinition><timeDuration>"{duration}"</timeDuration></timerEventDefinition>'
        "</intermediateCatchEvent>"
    )


def engagement(version: int, duration: str = "PT1H") -> bytes:
    """v1: an intake task, then four waits at once (a job, a user task, a timer, a message).
    v2: no intake (removed), the user task renamed `approve_v2` with a new form field, a review after
    the job. v3: the job removed."""
    approve = "approve" if version == 1 else "approve_v2"
    fields = form(field("verdict")) if version == 1 else form(field("verdict"), field("risk"))
    intro = '<userTask id="intake" camunda:candidateGroups="legal"/>' if version == 1 else ""
    work = service_task("work", "crm.work") if version != 3 else '<userTask id="work_by_hand"/>'
    review = '<userTask id="review" camunda:candidateGroups="legal"/>' if version == 2 else ""
    first = "s -> intake\nintake -> split" if version == 1 else "s -> split"
    work_id = "work" if version != 3 else "work_by_hand"
    work_flows = f"{work_id} -> review\nreview -> e1" if version == 2 else f"{work_id} -> e1"
    return bpmn(
        "engagement",
        f"""<startEvent id="s"/>{intro}<parallelGateway id="split"/>{work}{review}
        <userTask id="{approve}" name="Approve" camunda:candidateGroups="legal">{fields}</userTask>
        {timer("wait", duration)}
        <receiveTask id="reply" messageRef="m_reply"/>
        <endEvent id="e1"/><endEvent id="e2"/><endEvent id="e3"/><endEvent id="e4"/>""",
        f"{first}\nsplit -> {work_id}\nsplit -> {approve}\nsplit -> wait\nsplit -> reply\n"
        f"{work_flows}\n{approve} -> e2\nwait -> e3\nreply -> e4",
        extra=message("m_reply", "client.reply", "engagement_id"),
    )


def deploy(stub: Stub, name: str, content: bytes) -> str:
    response = stub.DeployResources(
        pb.DeployResourcesRequest(resources=[pb.Resource(name=f"{name}.bpmn", content=content)])
    )
    [definition] = [d for d in response.definitions if d.process_id == name]
    return definition.definition_id


def rows(host: Orchestrator, instance_id: str) -> dict[str, Any]:
    """What the database holds for an instance: its row and its open waits."""
    with host.db.read() as session:
        instance = session.execute(select(INSTANCES).where(INSTANCES.c.instance_id == instance_id)).one()
        jobs = session.execute(select(JOBS).where(JOBS.c.instance_id == instance_id)).all()
        tasks = session.execute(select(USER_TASKS).where(USER_TASKS.c.instance_id == instance_id)).all()
        timers = session.execute(select(TIMERS).where(TIMERS.c.instance_id == instance_id)).all()
        subscriptions = session.execute(
            select(SUBSCRIPTIONS).where(SUBSCRIPTIONS.c.instance_id == instance_id)
        ).all()
    return {
        "revision": instance.revision,
        "definition_id": instance.definition_id,
        "state": instance.state,
        "jobs": sorted((j.job_key, j.status, j.element_id, j.attempt) for j in jobs),
        "user_tasks": sorted((t.user_task_id, t.element_id, t.status, t.assignee) for t in tasks),
        "timers": sorted((t.task_id, t.element_id, t.due_at) for t in timers),
        "subscriptions": sorted(
            (s.task_id, s.element_id, s.message_name, s.correlation_key) for s in subscriptions
        ),
    }


def open_task(stub: Stub, instance_id: str, element_id: str) -> pb.UserTask:
    tasks = stub.ListUserTasks(pb.ListUserTasksRequest(instance_id=instance_id)).user_tasks
    [task] = [t for t in tasks if t.element_id == element_id and t.state == "OPEN"]
    return task


def complete_task(stub: Stub, instance_id: str, element_id: str, **values: Any) -> None:
    task = open_task(stub, instance_id, element_id)
    if not task.assignee:
        stub.ClaimUserTask(pb.ClaimUserTaskRequest(user_task_id=task.user_task_id))
    stub.CompleteUserTask(
        pb.CompleteUserTaskRequest(user_task_id=task.user_task_id, variables_json=json.dumps(values))
    )


def history(stub: Stub, instance_id: str) -> list[tuple[str, str, str]]:
    instance = stub.GetInstance(pb.GetInstanceRequest(instance_id=instance_id, history_limit=1000))
    return [(e.type, e.element_id, e.detail) for e in instance.history]


def plan(source: str, target: str, *mappings: ElementMapping) -> MigrationPlan:
    return MigrationPlan.parse(source, target, mappings)


def test_waits_carry_over_and_the_instance_runs_to_its_end_from_the_cache_and_after_a_restart(
    running: Running, settings: Settings
) -> None:
    stub, host = running.stub, running.host
    v1 = deploy(stub, "engagement", engagement(1))
    instance_id = stub.CreateInstance(
        pb.CreateInstanceRequest(
            process_id="engagement", variables_json='{"engagement_id": "E7"}', business_key="E7"
        )
    ).instance_id
    complete_task(stub, instance_id, "intake")
    chen = running.as_person("chen", "staff", groups=("legal",))
    approve = open_task(stub, instance_id, "approve")
    chen.ClaimUserTask(pb.ClaimUserTaskRequest(user_task_id=approve.user_task_id))
    before = rows(host, instance_id)
    [job_key] = [key for key, *_ in before["jobs"]]
    v2 = deploy(stub, "engagement", engagement(2))
    migration = plan(v1, v2, ElementMapping("", "approve", "approve_v2"))

    check = host.check_migration(migration, instance_id)
    assert check.applicable, check.problems
    assert sorted((m.source_element_id, m.target_element_id, m.action) for m in check.moves) == [
        ("approve", "approve_v2", MoveAction.CARRIED_OVER),
        ("reply", "reply", MoveAction.CARRIED_OVER),
        ("wait", "wait", MoveAction.CARRIED_OVER),
        ("work", "work", MoveAction.CARRIED_OVER),
    ]
    details = {m.source_element_id: m.detail for m in check.moves}
    assert (details["approve"], details["work"]) == ("claimed by chen", "job crm.work attempt 1")
    assert rows(host, instance_id) == before  # the dry run changed nothing

    host.migrate_instance(migration, instance_id, OTTO, "approval renamed")
    after = rows(host, instance_id)
    with host.db.read() as session:  # the live cache: no state needed
        cached = host.workflow_for(session.connection(), instance_id, after["revision"], "", "")
    assert cached.spec is host.specs_for(v2).spec
    assert after["definition_id"] == v2 and after["revision"] == before["revision"] + 1
    assert after["jobs"] == before["jobs"]  # the same job, same attempt
    [(task_id, element_id, status, assignee)] = [t for t in after["user_tasks"] if t[2] == "OPEN"]
    assert (task_id, element_id, status, assignee) == (approve.user_task_id, "approve_v2", "OPEN", "chen")
    assert [f.id for f in open_task(stub, instance_id, "approve_v2").form_fields] == ["verdict", "risk"]
    assert after["timers"] == before["timers"]  # the same due time
    assert after["subscriptions"] == before["subscriptions"]
    events = history(stub, instance_id)
    assert ("instance.migrated", "", f"from {v1} to {v2}: approval renamed") in events
    assert ("instance.created", "", v1) in events
    audit = stub.ListAuditEntries(pb.ListAuditEntriesRequest(instance_id=instance_id)).entries
    [entry] = [e for e in audit if e.action == "instance.migrated"]
    assert (
        entry.actor == "otto"
        and v1 in entry.detail
        and v2 in entry.detail
        and "approval renamed" in entry.detail
    )

    # from the live cache: the same job key completes, and the new version's review follows
    stub.CompleteJob(pb.CompleteJobRequest(job_key=job_key, variables_json='{"worked": true}'))
    open_task(stub, instance_id, "review")
    chen.CompleteUserTask(
        pb.CompleteUserTaskRequest(user_task_id=approve.user_task_id, variables_json='{"verdict": "yes"}')
    )

    # after a restart: a new orchestrator loads the stored state with the new version's specs
    running.stop()
    again = Running(settings)
    try:
        stub = again.stub
        complete_task(stub, instance_id, "review")
        reply = stub.PublishMessage(pb.PublishMessageRequest(name="client.reply", correlation_key="E7"))
        assert reply.outcome == pb.MESSAGE_OUTCOME_CORRELATED
        moved = stub.ModifyInstance(
            pb.ModifyInstanceRequest(
                instance_id=instance_id,
                cancel_element_ids=["wait"],
                activate_element_id="e3",
                reason="no wait",
            )
        )
        assert [(m.action, m.source_element_id or m.target_element_id) for m in moved.moves] == [
            (pb.MOVE_ACTION_CANCELED, "wait"),
            (pb.MOVE_ACTION_ACTIVATED, "e3"),
        ]
        instance = stub.GetInstance(pb.GetInstanceRequest(instance_id=instance_id))
        assert instance.state == pb.INSTANCE_STATE_COMPLETED
        assert instance.definition_id == v2
    finally:
        again.stop()


def test_a_plan_that_cannot_apply_is_refused_naming_instance_and_element_and_changes_nothing(
    running: Running,
) -> None:
    stub, host = running.stub, running.host
    v1 = deploy(stub, "engagement", engagement(1))
    instance_id = stub.CreateInstance(
        pb.CreateInstanceRequest(process_id="engagement", variables_json='{"engagement_id": "E8"}')
    ).instance_id
    complete_task(stub, instance_id, "intake")
    deploy(stub, "engagement", engagement(2))
    v3 = deploy(stub, "engagement", engagement(3))
    before = rows(host, instance_id)
    migration = plan(v1, v3, ElementMapping("", "approve", "approve_v2"))

    check = host.check_migration(migration, instance_id)
    assert not check.applicable
    assert [(p.instance_id, p.element_id) for p in check.problems] == [(instance_id, "work")]
    with pytest.raises(MigrationRefused, match=f"instance {instance_id} at work"):
        host.migrate_instance(migration, instance_id, OTTO, "try")
    assert rows(host, instance_id) == before
    assert "instance.migrated" not in [kind for kind, _, _ in history(stub, instance_id)]

    bad = plan(v1, v3, ElementMapping("", "nope", "approve_v2"))
    [problem] = host.migration_plan_problems(bad)
    assert problem.element_id == "nope" and v1 in problem.message
    deploy(stub, "other", bpmn("other", '<startEvent id="s"/><endEvent id="e"/>', "s -> e"))
    [other] = host.migration_plan_problems(plan(v1, "other:1"))
    assert other.message == "other:1 is a version of other, not engagement"
    with pytest.raises(NotFound, match="engagement:9"):
        host.migration_plan_problems(plan(v1, "engagement:9"))
    assert rows(host, instance_id) == before


def test_restarted_waits_start_afresh_a_job_a_user_task_without_its_claim_and_a_timer(
    running: Running,
) -> None:
    stub, host = running.stub, running.host
    v1 = deploy(stub, "engagement", engagement(1))
    instance_id = stub.CreateInstance(
        pb.CreateInstanceRequest(process_id="engagement", variables_json='{"engagement_id": "E9"}')
    ).instance_id
    complete_task(stub, instance_id, "intake")
    approve = open_task(stub, instance_id, "approve")
    stub.ClaimUserTask(pb.ClaimUserTaskRequest(user_task_id=approve.user_task_id))
    v2 = deploy(stub, "engagement", engagement(2, duration="PT2H"))
    before = rows(host, instance_id)
    carried = plan(v1, v2, ElementMapping("", "approve", "approve_v2"))
    [problem] = host.check_migration(carried, instance_id).problems
    assert problem.element_id == "wait" and "restart" in problem.message

    restarted = plan(
        v1,
        v2,
        ElementMapping("", "approve", "approve_v2", restart=True),
        ElementMapping("", "wait", "wait", restart=True),
        ElementMapping("", "work", "work", restart=True),
    )
    result = host.migrate_instance(restarted, instance_id, OTTO, "start the waits again")
    assert {(m.source_element_id, m.action) for m in result.moves} == {
        ("approve", MoveAction.RESTARTED),
        ("wait", MoveAction.RESTARTED),
        ("work", MoveAction.RESTARTED),
        ("reply", MoveAction.CARRIED_OVER),
    }
    after = rows(host, instance_id)
    [(old_task, _, old_due)] = before["timers"]
    [(new_task, element_id, new_due)] = after["timers"]
    assert element_id == "wait" and new_task != old_task
    assert new_due > old_due  # counted again from the migration, for two hours
    [(old_key, *_)] = before["jobs"]
    assert [(key, status) for key, status, *_ in after["jobs"]] == sorted(
        [(old_key, "CANCELED"), (next(k for k, *_ in after["jobs"] if k != old_key), "ACTIVATABLE")]
    )
    tasks = {
        element: (task_id, status, assignee) for task_id, element, status, assignee in after["user_tasks"]
    }
    assert tasks["approve"] == (approve.user_task_id, "CANCELED", "root")
    new_id, status, assignee = tasks["approve_v2"]
    assert new_id != approve.user_task_id and (status, assignee) == ("OPEN", "")
    assert after["subscriptions"] == before["subscriptions"]


def calling(task_id: str) -> bytes:
    return definitions(
        process_xml(
            "parent",
            '<startEvent id="s"/><callActivity id="call" calledElement="child"/><endEvent id="e"/>',
            "s -> call\ncall -> e",
        )
        + process_xml(
            "child",
            f'<startEvent id="cs"/><userTask id="{task_id}" camunda:candidateGroups="legal"/><endEvent id="ce"/>',
            f"cs -> {task_id}\n{task_id} -> ce",
        )
    )


def test_a_called_process_moves_with_its_caller(running: Running) -> None:
    stub, host = running.stub, running.host
    v1 = deploy(stub, "parent", calling("check"))
    instance_id = stub.CreateInstance(pb.CreateInstanceRequest(process_id="parent")).instance_id
    checked = open_task(stub, instance_id, "check")
    v2 = deploy(stub, "parent", calling("verify"))
    [problem] = host.check_migration(plan(v1, v2), instance_id).problems
    assert (problem.process_id, problem.element_id) == ("child", "check")

    host.migrate_instance(
        plan(v1, v2, ElementMapping("child", "check", "verify")), instance_id, OTTO, "renamed"
    )
    verify = open_task(stub, instance_id, "verify")
    assert verify.user_task_id == checked.user_task_id
    complete_task(stub, instance_id, "verify")
    assert (
        stub.GetInstance(pb.GetInstanceRequest(instance_id=instance_id)).state == pb.INSTANCE_STATE_COMPLETED
    )


def test_modify_goes_back_and_forward_with_a_reason_and_only_ops_may(running: Running) -> None:
    stub = running.stub
    deploy(
        stub,
        "line",
        bpmn(
            "line",
            '<startEvent id="s"/><userTask id="a"/><userTask id="b"/><userTask id="c"/><endEvent id="e"/>',
            "s -> a\na -> b\nb -> c\nc -> e",
        ),
    )
    instance_id = stub.CreateInstance(pb.CreateInstanceRequest(process_id="line")).instance_id
    complete_task(stub, instance_id, "a", first=1)
    request = pb.ModifyInstanceRequest(
        instance_id=instance_id, cancel_element_ids=["b"], activate_element_id="a", reason="a was wrong"
    )
    for person in (running.as_person("chen", "staff"), running.as_person("ann", "analyst")):
        refused(lambda p=person: p.ModifyInstance(request), CODE.PERMISSION_DENIED)  # type: ignore[misc]
    refused(
        lambda: stub.ModifyInstance(
            pb.ModifyInstanceRequest(instance_id=instance_id, activate_element_id="a")
        ),
        CODE.INVALID_ARGUMENT,
        "reason",
    )
    refused(
        lambda: stub.ModifyInstance(
            pb.ModifyInstanceRequest(instance_id=instance_id, activate_element_id="s", reason="r")
        ),
        CODE.INVALID_ARGUMENT,
        "activate_element_id",
        "start event",
    )

    back = stub.ModifyInstance(request)
    assert [a.element_id for a in back.active_elements] == ["a"]
    complete_task(stub, instance_id, "a")
    forward = stub.ModifyInstance(
        pb.ModifyInstanceRequest(
            instance_id=instance_id,
            cancel_element_ids=["b"],
            activate_element_id="c",
            reason="b does not apply",
            variables_json='{"skipped": true}',
        )
    )
    assert [a.element_id for a in forward.active_elements] == ["c"]
    task_c = stub.GetUserTask(
        pb.GetUserTaskRequest(user_task_id=open_task(stub, instance_id, "c").user_task_id)
    )
    assert json.loads(task_c.variables_json)["skipped"] is True  # the modification's variables reach it
    complete_task(stub, instance_id, "c")
    instance = stub.GetInstance(pb.GetInstanceRequest(instance_id=instance_id, history_limit=1000))
    assert instance.state == pb.INSTANCE_STATE_COMPLETED
    modified = [e.detail for e in instance.history if e.type == "instance.modified"]
    assert modified == ["canceled b, activated a: a was wrong", "canceled b, activated c: b does not apply"]
    audit = stub.ListAuditEntries(pb.ListAuditEntriesRequest(instance_id=instance_id)).entries
    assert [e.actor for e in audit if e.action == "instance.modified"] == ["root", "root"]


def test_modify_repairs_a_failed_task_and_its_incident_is_resolved(running: Running) -> None:
    stub = running.stub
    deploy(
        stub,
        "fragile",
        bpmn(
            "fragile",
            '<startEvent id="s"/><scriptTask id="bad"><script>x = 1 / 0</script></scriptTask>'
            '<userTask id="after"/><endEvent id="e"/>',
            "s -> bad\nbad -> after\nafter -> e",
        ),
    )
    instance_id = stub.CreateInstance(pb.CreateInstanceRequest(process_id="fragile")).instance_id
    [incident] = stub.ListIncidents(pb.ListIncidentsRequest(instance_id=instance_id)).incidents
    assert incident.element_id == "bad"

    stub.ModifyInstance(
        pb.ModifyInstanceRequest(
            instance_id=instance_id,
            cancel_element_ids=["bad"],
            activate_element_id="after",
            reason="the division is done by hand",
            variables_json='{"x": 0}',
        )
    )
    assert stub.ListIncidents(pb.ListIncidentsRequest(instance_id=instance_id)).incidents == []
    complete_task(stub, instance_id, "after")
    instance = stub.GetInstance(pb.GetInstanceRequest(instance_id=instance_id))
    assert instance.state == pb.INSTANCE_STATE_COMPLETED and json.loads(instance.variables_json)["x"] == 0


def test_a_real_engagement_moves_to_a_version_whose_intake_renamed_its_waiting_task(tmp_path: Path) -> None:
    """bpmn/ as shipped, then intake.bpmn with `understand_needs` renamed: the engagement waiting there
    (inside its intake call activity) moves with a mapping for the called process and goes on."""
    world = World(tmp_path, FlowIndex.load())
    try:
        host = world.orchestrator
        instance_id = world.start("engagement", "E-1", engagement_id="E-1", **INQUIRY)
        [task] = world.user_tasks("understand_needs")
        others = sorted(t.user_task_id for t in world.user_tasks() if t.element_id != "understand_needs")
        source = world.instance("engagement").definition_id
        intake = resources()["intake.bpmn"].decode()
        renamed = intake.replace('"understand_needs"', '"understand_client_needs"').replace(
            ">understand_needs<", ">understand_client_needs<"
        )
        deployed = host.deploy({"intake.bpmn": renamed.encode()}, note="understand_needs renamed")
        [target] = [d.definition_id for d in deployed.definitions if d.process_id == "engagement"]

        plan = MigrationPlan.parse(
            source, target, [ElementMapping("intake", "understand_needs", "understand_client_needs")]
        )
        assert host.check_migration(plan, instance_id).applicable
        host.migrate_instance(plan, instance_id, OTTO, "intake renamed its first task")
        [moved] = world.user_tasks("understand_client_needs")
        assert moved.user_task_id == task.user_task_id and world.user_tasks("understand_needs") == []
        assert (
            sorted(t.user_task_id for t in world.user_tasks() if t.element_id != moved.element_id) == others
        )
        world.submit("understand_client_needs", communication_mode="phone")
        world.submit("assess_feasibility", **ALL_FEASIBLE, risk_noted=False)
        assert world.user_tasks("prepare_quotation_form")
        assert world.instance("engagement").definition_id == target
        assert world.incidents() == []
    finally:
        world.close()
