"""The orchestrator's gRPC API over a real socket: every RPC answers bad input with a precise status code
and a message naming the field, and writes nothing; the happy paths a client relies on work."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import grpc
import pytest
from sqlalchemy import func, select

from consultflow.api.orchestrator.v1 import orchestrator_pb2 as pb
from consultflow.api.orchestrator.v1 import orchestrator_pb2_grpc as pb_grpc
from consultflow.orchestrator.app import build
from consultflow.orchestrator.orm import Definition, Instance, Message, Resource
from consultflow.platform.db import Database
from tests.support.bpmn_builder import bpmn, field, form, message, service_task
from tests.support.components import ComponentThread, component_settings
from tests.support.identity import signed_channel
from tests.support.rpc import refused

CODE = grpc.StatusCode

PROCESS = bpmn(
    "p",
    f"""<startEvent id="s"/>{service_task("work", "crm.work")}
    <userTask id="approve" camunda:candidateGroups="legal">{form(field("verdict", "enum", True, ("yes", "no")))}</userTask>
    <intermediateCatchEvent id="reply"><messageEventDefinition messageRef="m_reply"/></intermediateCatchEvent>
    <endEvent id="e"/>""",
    "s -> work\nwork -> approve\napprove -> reply\nreply -> e",
    extra=message("m_reply", "client.reply", "engagement_id"),
)


@pytest.fixture
def component(tmp_path: Path, nats_url: str) -> Iterator[ComponentThread]:
    empty = tmp_path / "bpmn"
    empty.mkdir()
    settings = component_settings("orchestrator", tmp_path, nats_url, bpmn_dir=empty)
    component = ComponentThread(settings, build).start()
    yield component
    component.stop()


@pytest.fixture
def api(component: ComponentThread) -> Iterator[tuple[pb_grpc.OrchestratorServiceStub, Database]]:
    settings = component.settings
    channel = signed_channel(component.address)
    stub = pb_grpc.OrchestratorServiceStub(channel)
    stub.DeployResources(pb.DeployResourcesRequest(resources=[pb.Resource(name="p.bpmn", content=PROCESS)]))
    db = Database(settings.database_url)
    try:
        yield stub, db
    finally:
        channel.close()
        db.dispose()


def counts(db: Database) -> tuple[int, ...]:
    with db.read() as session:
        return tuple(
            int(session.scalar(select(func.count()).select_from(model)) or 0)
            for model in (Resource, Definition, Instance, Message)
        )


XXE = b"""<?xml version="1.0"?><!DOCTYPE d [<!ENTITY x SYSTEM "file:///etc/passwd">]>
<definitions xmlns="http://www.omg.org/spec/BPMN/20100524/MODEL" id="d"><process id="x">&x;</process></definitions>"""
BILLION_LAUGHS = b"""<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;">]>
<definitions xmlns="http://www.omg.org/spec/BPMN/20100524/MODEL" id="d">&lol2;</definitions>"""


def test_deploy_refuses_bad_resources_and_writes_nothing(
    api: tuple[pb_grpc.OrchestratorServiceStub, Database],
) -> None:
    stub, db = api
    before = counts(db)

    def deploy(*resources: pb.Resource) -> Callable[[], Any]:
        return lambda: stub.DeployResources(pb.DeployResourcesRequest(resources=list(resources)))

    refused(deploy(), CODE.INVALID_ARGUMENT, "resources")
    refused(deploy(pb.Resource(name="x.txt", content=b"<a/>")), CODE.INVALID_ARGUMENT, "only .bpmn and .dmn")
    refused(deploy(pb.Resource(name="../x.bpmn", content=PROCESS)), CODE.INVALID_ARGUMENT, "plain file name")
    refused(
        deploy(pb.Resource(name="x.bpmn", content=b"<definitions")), CODE.INVALID_ARGUMENT, "not well-formed"
    )
    refused(deploy(pb.Resource(name="x.bpmn", content=XXE)), CODE.INVALID_ARGUMENT, "DOCTYPE")
    refused(deploy(pb.Resource(name="x.bpmn", content=BILLION_LAUGHS)), CODE.INVALID_ARGUMENT, "DOCTYPE")
    refused(
        deploy(pb.Resource(name="x.bpmn", content=b" " * (3 * 1024 * 1024))),
        CODE.INVALID_ARGUMENT,
        "larger than",
    )
    invalid = PROCESS.replace(b'<endEvent id="e"/>', b'<endEvent id="e"/><bogusElement id="b"/>')
    refused(deploy(pb.Resource(name="x.bpmn", content=invalid)), CODE.INVALID_ARGUMENT, "x.bpmn, line")
    escaping = bpmn(
        "q",
        '<startEvent id="s"/><scriptTask id="evil"><script>x = ().__class__</script></scriptTask>',
        "s -> evil",
    )
    refused(deploy(pb.Resource(name="q.bpmn", content=escaping)), CODE.INVALID_ARGUMENT, "element 'evil'")
    condition = bpmn(
        "q",
        '<startEvent id="s"/><exclusiveGateway id="g"/><endEvent id="a"/><endEvent id="b"/>',
        "s -> g\ng -> a: __import__('os').system('true')\ng -> b: default",
    )
    refused(deploy(pb.Resource(name="q.bpmn", content=condition)), CODE.INVALID_ARGUMENT, "refused script")
    missing_call = bpmn("q", '<startEvent id="s"/><callActivity id="c" calledElement="nowhere"/>', "s -> c")
    refused(deploy(pb.Resource(name="q.bpmn", content=missing_call)), CODE.INVALID_ARGUMENT, "nowhere")
    duplicate = pb.Resource(name="p.bpmn", content=PROCESS)
    refused(deploy(duplicate, duplicate), CODE.INVALID_ARGUMENT, "appears twice")
    assert counts(db) == before


def test_instance_rpcs_refuse_bad_input(api: tuple[pb_grpc.OrchestratorServiceStub, Database]) -> None:
    stub, db = api
    before = counts(db)
    refused(lambda: stub.CreateInstance(pb.CreateInstanceRequest()), CODE.INVALID_ARGUMENT, "process_id")
    refused(lambda: stub.CreateInstance(pb.CreateInstanceRequest(process_id="nope")), CODE.NOT_FOUND, "nope")
    refused(
        lambda: stub.CreateInstance(pb.CreateInstanceRequest(process_id="p", version=9)),
        CODE.NOT_FOUND,
        "version 9",
    )
    refused(
        lambda: stub.CreateInstance(pb.CreateInstanceRequest(process_id="p", version=-1)),
        CODE.INVALID_ARGUMENT,
        "version",
    )
    for bad, why in (
        ("{", "not valid JSON"),
        ("[1]", "JSON object"),
        ('"x' + "y" * 2_000_000 + '"', "larger than"),
        ('{"a": ' + "[" * 100_000 + "]" * 100_000 + "}", "nested too deeply"),
        ('{"a": ' + "9" * 5_000 + "}", "not valid JSON"),
        ('{"a": NaN}', "NaN is not a JSON number"),
        ('{"a": [-Infinity]}', "Infinity is not a JSON number"),
        ('{"a": 1e999}', "too large for a number"),
    ):
        request = pb.CreateInstanceRequest(process_id="p", variables_json=bad)
        refused(partial(stub.CreateInstance, request), CODE.INVALID_ARGUMENT, why)
    refused(lambda: stub.GetInstance(pb.GetInstanceRequest()), CODE.INVALID_ARGUMENT, "instance_id")
    refused(lambda: stub.GetInstance(pb.GetInstanceRequest(instance_id="missing")), CODE.NOT_FOUND, "missing")
    refused(
        lambda: stub.CancelInstance(pb.CancelInstanceRequest(instance_id="missing")),
        CODE.NOT_FOUND,
        "missing",
    )
    refused(
        lambda: stub.ListInstances(pb.ListInstancesRequest(page_token="abc")),
        CODE.INVALID_ARGUMENT,
        "page_token",
    )
    refused(
        lambda: stub.ListInstances(pb.ListInstancesRequest(page_size=-1)), CODE.INVALID_ARGUMENT, "page_size"
    )
    watch = stub.WatchInstance(pb.WatchInstanceRequest(instance_id="missing"))
    refused(lambda: list(watch), CODE.NOT_FOUND, "missing")
    assert counts(db) == before


def test_job_task_message_and_incident_rpcs_refuse_bad_input(
    api: tuple[pb_grpc.OrchestratorServiceStub, Database],
) -> None:
    stub, db = api
    created = stub.CreateInstance(
        pb.CreateInstanceRequest(process_id="p", variables_json='{"engagement_id": "E1"}')
    )
    before = counts(db)
    for call in (
        lambda: stub.CompleteJob(pb.CompleteJobRequest()),
        lambda: stub.FailJob(pb.FailJobRequest()),
        lambda: stub.ThrowError(pb.ThrowErrorRequest(error_code="x")),
    ):
        refused(call, CODE.INVALID_ARGUMENT, "job_key")
    refused(lambda: stub.CompleteJob(pb.CompleteJobRequest(job_key="missing")), CODE.NOT_FOUND, "missing")
    refused(
        lambda: stub.FailJob(pb.FailJobRequest(job_key="missing", retries=-1)),
        CODE.INVALID_ARGUMENT,
        "retries",
    )
    refused(
        lambda: stub.ThrowError(pb.ThrowErrorRequest(job_key="missing")), CODE.INVALID_ARGUMENT, "error_code"
    )
    job_key = stub.GetInstance(pb.GetInstanceRequest(instance_id=created.instance_id)).jobs[0].job_key
    refused(
        lambda: stub.CompleteJob(pb.CompleteJobRequest(job_key=job_key, variables_json="{oops")),
        CODE.INVALID_ARGUMENT,
        "variables_json",
    )
    refused(lambda: stub.GetUserTask(pb.GetUserTaskRequest()), CODE.INVALID_ARGUMENT, "user_task_id")
    refused(
        lambda: stub.GetUserTask(pb.GetUserTaskRequest(user_task_id="missing")), CODE.NOT_FOUND, "missing"
    )
    refused(lambda: stub.ClaimUserTask(pb.ClaimUserTaskRequest(user_task_id="x")), CODE.NOT_FOUND, "'x'")
    refused(
        lambda: stub.ClaimUserTask(pb.ClaimUserTaskRequest(user_task_id="missing", assignee="li")),
        CODE.PERMISSION_DENIED,
        "nobody may act as 'li'",
    )
    refused(
        lambda: stub.CompleteUserTask(pb.CompleteUserTaskRequest()), CODE.INVALID_ARGUMENT, "user_task_id"
    )
    refused(lambda: stub.PublishMessage(pb.PublishMessageRequest()), CODE.INVALID_ARGUMENT, "name")
    refused(
        lambda: stub.PublishMessage(pb.PublishMessageRequest(name="m", ttl_seconds=-5)),
        CODE.INVALID_ARGUMENT,
        "ttl_seconds",
    )
    refused(
        lambda: stub.PublishMessage(pb.PublishMessageRequest(name="m", variables_json="[]")),
        CODE.INVALID_ARGUMENT,
        "variables_json",
    )
    refused(lambda: stub.ResolveIncident(pb.ResolveIncidentRequest()), CODE.INVALID_ARGUMENT, "incident_id")
    refused(
        lambda: stub.ResolveIncident(pb.ResolveIncidentRequest(incident_id="missing")),
        CODE.NOT_FOUND,
        "missing",
    )
    assert counts(db) == before


def test_a_client_drives_an_instance_and_watches_it(
    component: ComponentThread,
    api: tuple[pb_grpc.OrchestratorServiceStub, Database],
) -> None:
    stub, _ = api
    created = stub.CreateInstance(
        pb.CreateInstanceRequest(process_id="p", variables_json='{"engagement_id": "E7"}', business_key="E7")
    )
    seen: list[pb.InstanceEvent] = []

    def watch() -> None:
        for event in stub.WatchInstance(pb.WatchInstanceRequest(instance_id=created.instance_id), timeout=30):
            seen.append(event)

    watcher = threading.Thread(target=watch)
    watcher.start()
    instance = stub.GetInstance(pb.GetInstanceRequest(instance_id=created.instance_id))
    assert [a.element_id for a in instance.active_elements] == ["work"]
    assert [j.operation for j in instance.jobs] == ["crm.work"]
    stub.CompleteJob(
        pb.CompleteJobRequest(job_key=instance.jobs[0].job_key, variables_json='{"worked": true}')
    )

    tasks = stub.ListUserTasks(pb.ListUserTasksRequest(candidate_group="legal")).user_tasks
    assert [t.element_id for t in tasks] == ["approve"]
    assert stub.ListUserTasks(pb.ListUserTasksRequest(candidate_group="marketing")).user_tasks == []
    task = stub.GetUserTask(pb.GetUserTaskRequest(user_task_id=tasks[0].user_task_id))
    assert json.loads(task.variables_json)["worked"] is True
    assert [(f.id, f.required, [v.id for v in f.values]) for f in task.form_fields] == [
        ("verdict", True, ["yes", "no"])
    ]
    as_chen = signed_channel(component.address, "chen", roles=["staff"], groups=["legal"])
    chen = pb_grpc.OrchestratorServiceStub(as_chen)
    chen.ClaimUserTask(pb.ClaimUserTaskRequest(user_task_id=task.user_task_id))
    assert stub.ListUserTasks(pb.ListUserTasksRequest(assignee="chen")).user_tasks[0].assignee == "chen"
    refused(
        lambda: chen.CompleteUserTask(
            pb.CompleteUserTaskRequest(user_task_id=task.user_task_id, variables_json='{"verdict": "maybe"}')
        ),
        CODE.INVALID_ARGUMENT,
        "verdict",
    )
    chen.CompleteUserTask(
        pb.CompleteUserTaskRequest(user_task_id=task.user_task_id, variables_json='{"verdict": "yes"}')
    )

    first = stub.PublishMessage(
        pb.PublishMessageRequest(name="client.reply", correlation_key="E7", message_id="r1")
    )
    again = stub.PublishMessage(
        pb.PublishMessageRequest(name="client.reply", correlation_key="E7", message_id="r1")
    )
    assert (first.outcome, again.outcome) == (pb.MESSAGE_OUTCOME_CORRELATED, pb.MESSAGE_OUTCOME_DUPLICATE)
    watcher.join(timeout=30)
    assert not watcher.is_alive(), "the watch stream did not end with the instance"
    types = [e.type for e in seen]
    assert types[0] == "instance.created" and types[-1] == "instance.completed"
    assert [e.sequence for e in seen] == list(range(1, len(seen) + 1))
    summaries = stub.ListInstances(pb.ListInstancesRequest(business_key="E7")).instances
    assert [s.state for s in summaries] == [pb.INSTANCE_STATE_COMPLETED]


def test_paging_and_filters(api: tuple[pb_grpc.OrchestratorServiceStub, Database]) -> None:
    stub, _ = api
    for n in range(5):
        stub.CreateInstance(
            pb.CreateInstanceRequest(process_id="p", variables_json=json.dumps({"engagement_id": f"E{n}"}))
        )
    page = stub.ListInstances(pb.ListInstancesRequest(process_id="p", page_size=2))
    ids = [i.instance_id for i in page.instances]
    while page.next_page_token:
        page = stub.ListInstances(
            pb.ListInstancesRequest(process_id="p", page_size=2, page_token=page.next_page_token)
        )
        ids += [i.instance_id for i in page.instances]
    assert len(ids) == len(set(ids)) == 5
    active = stub.ListInstances(pb.ListInstancesRequest(state=pb.INSTANCE_STATE_ACTIVE)).instances
    assert all(s.waiting_at == ["work"] for s in active)
    definitions = stub.ListDefinitions(pb.ListDefinitionsRequest(latest_only=True)).definitions
    assert [(d.process_id, d.version) for d in definitions] == [("p", 1)]


def test_incidents_over_the_api(api: tuple[pb_grpc.OrchestratorServiceStub, Database]) -> None:
    stub, _ = api
    created = stub.CreateInstance(
        pb.CreateInstanceRequest(process_id="p", variables_json='{"engagement_id": "E1"}')
    )
    job = stub.GetInstance(pb.GetInstanceRequest(instance_id=created.instance_id)).jobs[0]
    stub.FailJob(pb.FailJobRequest(job_key=job.job_key, retries=0, error_message="crm is down"))
    incidents = stub.ListIncidents(pb.ListIncidentsRequest()).incidents
    assert [(i.kind, i.instance_id) for i in incidents] == [("JOB_NO_RETRIES", created.instance_id)]
    assert "crm is down" in incidents[0].message
    summaries = stub.ListInstances(pb.ListInstancesRequest(with_incidents=True)).instances
    assert [s.instance_id for s in summaries] == [created.instance_id]
    stub.ResolveIncident(pb.ResolveIncidentRequest(incident_id=incidents[0].incident_id, retries=2))
    refused(
        lambda: stub.ResolveIncident(pb.ResolveIncidentRequest(incident_id=incidents[0].incident_id)),
        CODE.FAILED_PRECONDITION,
        "already resolved",
    )
    instance = stub.GetInstance(pb.GetInstanceRequest(instance_id=created.instance_id))
    assert (instance.jobs[0].attempt, instance.jobs[0].retries, list(instance.incidents)) == (2, 1, [])
