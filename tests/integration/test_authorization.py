"""The policy table as callers meet it on the running components: for every RPC of every server, no token
is UNAUTHENTICATED, a role the table does not name is PERMISSION_DENIED, and every role it names gets past
authorization (to whatever the empty request then deserves). And the conditions that need data: a client
cannot touch another engagement, a service cannot finish another's job."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import grpc
import pytest

from consultflow.api.orchestrator.v1 import orchestrator_pb2 as pb
from consultflow.api.orchestrator.v1 import orchestrator_pb2_grpc as pb_grpc
from consultflow.platform.policy import POLICY, Role
from tests.support.bpmn_builder import Task, bpmn, bpmn_folder, line
from tests.support.identity import anonymous_channel, signed_channel
from tests.support.system import InProcessSystem, in_process_system

REFUSALS = {grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED}
COMPONENT_OF = {
    "OrchestratorService": "orchestrator",
    "CrmService": "crm",
    "ContractsService": "contracts",
    "DeliveryService": "delivery",
    "SurveyService": "survey",
    "RiskService": "risk",
    "OperationCatalog": "crm",  # every service serves it; tests/integration/test_catalog.py calls all five
}
STREAMS = {"/consultflow.api.orchestrator.v1.OrchestratorService/WatchInstance"}
# a caller per role (the component role as crm, the client for engagement E-1)
CALLERS: dict[Role, dict[str, object]] = {
    Role.ANALYST: {"as_": "ana"},
    Role.STAFF: {"as_": "bella"},
    Role.OPS: {"as_": "otto"},
    Role.CLIENT: {"as_": "client-e1", "roles": ["client"], "engagement": "E-1"},
    Role.COMPONENT: {"as_": "crm", "roles": ["component"]},
}


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory, nats_session_url: str) -> Iterator[InProcessSystem]:
    folder = tmp_path_factory.mktemp("authorization")
    # an operation no running service takes, so its job stays open for the test
    diagrams = bpmn_folder(folder, {"p": line("p", [Task("invoice", "billing.send_invoice")])})
    services = ("crm", "contracts", "delivery", "survey", "risk")
    with in_process_system(folder, nats_session_url, services, bpmn_dir=diagrams) as running:
        yield running


def call(channel: grpc.Channel, method: str) -> grpc.StatusCode:
    """Calls `method` with an empty request (raw bytes: every request message's default); its status."""
    empty: Any = b""
    try:
        if method in STREAMS:
            for _ in channel.unary_stream(method)(empty, timeout=5):
                break
        else:
            channel.unary_unary(method)(empty, timeout=5)
    except grpc.RpcError as error:
        assert isinstance(error, grpc.Call)
        return error.code()
    return grpc.StatusCode.OK


def methods() -> list[str]:
    return sorted(m for m, rule in POLICY.items() if not rule.public)


def test_every_rpc_refuses_the_roles_the_table_does_not_name_and_lets_the_others_through(
    system: InProcessSystem,
) -> None:
    channels: dict[tuple[str, Role | None], grpc.Channel] = {}

    def channel(component: str, role: Role | None) -> grpc.Channel:
        if (component, role) not in channels:
            address = system.components[component].address
            channels[component, role] = (
                anonymous_channel(address) if role is None else signed_channel(address, **CALLERS[role])  # type: ignore[arg-type]
            )
        return channels[component, role]

    wrong: list[str] = []
    for method in methods():
        component = COMPONENT_OF[method.split("/")[1].rsplit(".", 1)[1]]
        rule = POLICY[method]
        if call(channel(component, None), method) != grpc.StatusCode.UNAUTHENTICATED:
            wrong.append(f"{method}: answered without a token")
        for role in CALLERS:
            code = call(channel(component, role), method)
            if role in rule.roles and code in REFUSALS:
                wrong.append(f"{method}: {role} refused ({code.name})")
            if role not in rule.roles and code != grpc.StatusCode.PERMISSION_DENIED:
                wrong.append(f"{method}: {role} not refused ({code.name})")
    for opened in channels.values():
        opened.close()
    assert wrong == []


def test_a_service_cannot_finish_another_services_job(system: InProcessSystem) -> None:
    ops = pb_grpc.OrchestratorServiceStub(system.channel("orchestrator"))
    created = ops.CreateInstance(
        pb.CreateInstanceRequest(process_id="p", business_key="E-2", variables_json=json.dumps({"n": 1}))
    )
    instance = system.wait_for(created.instance_id, lambda i: bool(i.jobs))
    job_key = instance.jobs[0].job_key  # a billing.send_invoice job
    address = system.components["orchestrator"].address
    as_crm = pb_grpc.OrchestratorServiceStub(signed_channel(address, "crm", roles=["component"]))
    with pytest.raises(grpc.RpcError) as refused:
        as_crm.CompleteJob(pb.CompleteJobRequest(job_key=job_key, variables_json="{}"))
    assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "crm may not finish jobs of operation 'billing.send_invoice'" in (refused.value.details() or "")
    with pytest.raises(grpc.RpcError) as failing:
        as_crm.FailJob(pb.FailJobRequest(job_key=job_key, retries=0, error_message="sabotage"))
    assert failing.value.code() == grpc.StatusCode.PERMISSION_DENIED
    after = ops.GetInstance(pb.GetInstanceRequest(instance_id=created.instance_id))
    assert [j.job_key for j in after.jobs] == [job_key] and not after.incidents, "nothing changed"


def test_staff_see_only_the_tasks_offered_to_them(system: InProcessSystem) -> None:
    address = system.components["orchestrator"].address
    ops = pb_grpc.OrchestratorServiceStub(system.channel("orchestrator"))
    legal_task = bpmn(
        "legal_only",
        '<startEvent id="s"/><userTask id="review" camunda:candidateGroups="legal"/><endEvent id="e"/>',
        "s -> review\nreview -> e",
    )
    admin = pb_grpc.OrchestratorServiceStub(signed_channel(address, "root"))
    admin.DeployResources(
        pb.DeployResourcesRequest(resources=[pb.Resource(name="l.bpmn", content=legal_task)])
    )
    created = ops.CreateInstance(pb.CreateInstanceRequest(process_id="legal_only", business_key="E-3"))
    system.wait_for(created.instance_id, lambda i: any(a.element_id == "review" for a in i.active_elements))
    bella = pb_grpc.OrchestratorServiceStub(signed_channel(address, "bella"))  # business staff
    lea = pb_grpc.OrchestratorServiceStub(signed_channel(address, "lea"))  # legal
    mine = [
        t.element_id
        for t in lea.ListUserTasks(pb.ListUserTasksRequest(instance_id=created.instance_id)).user_tasks
    ]
    theirs = bella.ListUserTasks(pb.ListUserTasksRequest(instance_id=created.instance_id)).user_tasks
    assert (mine, list(theirs)) == (["review"], []), "lists are filtered, not refused"
    task_id = (
        lea.ListUserTasks(pb.ListUserTasksRequest(instance_id=created.instance_id)).user_tasks[0].user_task_id
    )
    with pytest.raises(grpc.RpcError) as unseen:
        bella.GetUserTask(pb.GetUserTaskRequest(user_task_id=task_id))
    assert unseen.value.code() == grpc.StatusCode.PERMISSION_DENIED
    with pytest.raises(grpc.RpcError) as unclaimed:
        bella.ClaimUserTask(pb.ClaimUserTaskRequest(user_task_id=task_id))
    assert unclaimed.value.code() == grpc.StatusCode.PERMISSION_DENIED
    with pytest.raises(grpc.RpcError) as impostor:
        lea.ClaimUserTask(pb.ClaimUserTaskRequest(user_task_id=task_id, assignee="bella"))
    assert "nobody may act as 'bella'" in (impostor.value.details() or "")
    lea.ClaimUserTask(pb.ClaimUserTaskRequest(user_task_id=task_id))
    lea.CompleteUserTask(pb.CompleteUserTaskRequest(user_task_id=task_id))
    done = ops.GetUserTask(pb.GetUserTaskRequest(user_task_id=task_id))
    assert (done.assignee, done.completed_by) == ("lea", "lea"), "the token's name, nobody else's"


def test_the_engagements_named_people_narrow_the_roles_group(system: InProcessSystem) -> None:
    address = system.components["orchestrator"].address
    ops = pb_grpc.OrchestratorServiceStub(system.channel("orchestrator"))
    team_task = bpmn(
        "team_only",
        '<startEvent id="s"/><userTask id="work" camunda:candidateGroups="team" '
        'camunda:candidateUsers="${team}"/><endEvent id="e"/>',
        "s -> work\nwork -> e",
    )
    admin = pb_grpc.OrchestratorServiceStub(signed_channel(address, "root"))
    admin.DeployResources(
        pb.DeployResourcesRequest(resources=[pb.Resource(name="t.bpmn", content=team_task)])
    )
    created = ops.CreateInstance(
        pb.CreateInstanceRequest(
            process_id="team_only",
            business_key="E-4",
            variables_json=json.dumps({"team": "Li Ming,Zhao Lei"}),
        )
    )
    system.wait_for(created.instance_id, lambda i: any(a.element_id == "work" for a in i.active_elements))
    member = pb_grpc.OrchestratorServiceStub(
        signed_channel(address, "Li Ming", roles=["staff"], groups=["team"])
    )
    outsider = pb_grpc.OrchestratorServiceStub(
        signed_channel(address, "tom")
    )  # team, but another engagement's
    request = pb.ListUserTasksRequest(instance_id=created.instance_id)
    assert [t.element_id for t in member.ListUserTasks(request).user_tasks] == ["work"]
    assert list(outsider.ListUserTasks(request).user_tasks) == [], "not this engagement's team"


def test_every_change_names_who_made_it_and_the_audit_answers_per_engagement_and_person(
    system: InProcessSystem,
) -> None:
    address = system.components["orchestrator"].address
    ana = pb_grpc.OrchestratorServiceStub(signed_channel(address, "ana"))
    otto = pb_grpc.OrchestratorServiceStub(signed_channel(address, "otto"))
    lea = pb_grpc.OrchestratorServiceStub(signed_channel(address, "lea"))
    review = bpmn(
        "audited",
        '<startEvent id="s"/><userTask id="review" camunda:candidateGroups="legal"/><endEvent id="e"/>',
        "s -> review\nreview -> e",
    )
    ana.DeployResources(pb.DeployResourcesRequest(resources=[pb.Resource(name="a.bpmn", content=review)]))
    done = otto.CreateInstance(pb.CreateInstanceRequest(process_id="audited", business_key="E-5"))
    dropped = otto.CreateInstance(pb.CreateInstanceRequest(process_id="audited", business_key="E-6"))
    system.wait_for(done.instance_id, lambda i: any(a.element_id == "review" for a in i.active_elements))
    task = lea.ListUserTasks(pb.ListUserTasksRequest(instance_id=done.instance_id)).user_tasks[0]
    lea.ClaimUserTask(pb.ClaimUserTaskRequest(user_task_id=task.user_task_id))
    lea.CompleteUserTask(pb.CompleteUserTaskRequest(user_task_id=task.user_task_id))
    otto.CancelInstance(pb.CancelInstanceRequest(instance_id=dropped.instance_id, reason="client withdrew"))
    otto.PublishMessage(
        pb.PublishMessageRequest(name="client.reply", correlation_key="E-5", message_id="m-1")
    )

    def entries(**query: str) -> list[tuple[str, str, str]]:
        response = otto.ListAuditEntries(pb.ListAuditEntriesRequest(**query))  # type: ignore[arg-type]
        return [(e.actor, e.action, e.target) for e in response.entries]

    assert entries(business_key="E-5") == [
        ("otto", "instance.created", f"{done.definition_id}"),
        ("lea", "usertask.claimed", "review"),
        ("lea", "usertask.completed", "review"),
        ("otto", "message.published", "client.reply"),
    ]
    assert entries(business_key="E-6")[-1][:2] == ("otto", "instance.canceled")
    assert ("ana", "definition.deployed", "audited:1") in entries(actor="ana")
    with pytest.raises(grpc.RpcError) as staff_reads:
        lea.ListAuditEntries(pb.ListAuditEntriesRequest(actor="lea"))
    assert staff_reads.value.code() == grpc.StatusCode.PERMISSION_DENIED
