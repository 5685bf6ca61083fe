"""The RPCs the console needs, over a real socket (SQLite, and PostgreSQL when configured): a deployed
version's files, validation that names elements, counts per element, unclaim, instance search, tasks due
first, deploy notes, and a start-up deploy that never undoes an analyst's deploy."""

from __future__ import annotations

import json
from dataclasses import replace
from functools import partial
from pathlib import Path

import grpc
import pytest
from sqlalchemy import func, select

from consultflow.api.orchestrator.v1 import orchestrator_pb2 as pb
from consultflow.api.orchestrator.v1 import orchestrator_pb2_grpc as pb_grpc
from consultflow.cli.main import main as cli_main
from consultflow.orchestrator.app import build
from consultflow.orchestrator.orm import Definition, Instance, Resource
from consultflow.platform.db import Database
from consultflow.platform.grpcerrors import field_violations
from consultflow.platform.tables import outbox
from tests.support.bpmn_builder import bpmn, field, form, service_task
from tests.support.components import ComponentThread, component_settings
from tests.support.identity import local_identity, signed_channel, token
from tests.support.rpc import refused

CODE = grpc.StatusCode
Stub = pb_grpc.OrchestratorServiceStub

WORK = bpmn(
    "work",
    f"""<startEvent id="s"/>{service_task("fetch", "crm.fetch")}
    <userTask id="approve" camunda:candidateGroups="legal">{form(field("verdict"))}</userTask>
    <endEvent id="e"/>""",
    "s -> fetch\nfetch -> approve\napprove -> e",
)
CALLER = bpmn(
    "caller",
    '<startEvent id="s"/><callActivity id="call" calledElement="work"/><endEvent id="e"/>',
    "s -> call\ncall -> e",
)


def resource(name: str, content: bytes) -> pb.Resource:
    return pb.Resource(name=name, content=content)


def due_task(process_id: str, due: str) -> bytes:
    attribute = f' camunda:dueDate="{due}"' if due else ""
    return bpmn(
        process_id,
        f'<startEvent id="s"/><userTask id="t" camunda:candidateGroups="legal"{attribute}/><endEvent id="e"/>',
        "s -> t\nt -> e",
    )


def as_person(component: ComponentThread, name: str, roles: list[str], groups: tuple[str, ...] = ()) -> Stub:
    return Stub(signed_channel(component.address, name, roles=roles, groups=list(groups)))


def start(stub: Stub, process_id: str, key: str = "") -> str:
    request = pb.CreateInstanceRequest(process_id=process_id, business_key=key)
    return str(stub.CreateInstance(request).instance_id)


def test_get_definition_gives_the_files_as_deployed_with_the_note(stub: Stub) -> None:
    deployed = stub.DeployResources(
        pb.DeployResourcesRequest(
            resources=[resource("caller.bpmn", CALLER), resource("work.bpmn", WORK)], note="5.1.1: first"
        )
    )
    assert {(d.definition_id, d.note, d.deployed_by) for d in deployed.definitions} == {
        ("caller:1", "5.1.1: first", "root"),
        ("work:1", "5.1.1: first", "root"),
    }
    found = stub.GetDefinition(pb.GetDefinitionRequest(definition_id="caller:1"))
    assert [(r.name, r.content) for r in found.resources] == [("caller.bpmn", CALLER), ("work.bpmn", WORK)]
    assert (found.definition.process_id, found.definition.note) == ("caller", "5.1.1: first")
    assert not found.definition.differs_from_repository
    listed = stub.ListDefinitions(pb.ListDefinitionsRequest(process_id="work")).definitions
    assert [(d.version, d.note, d.deployed_by) for d in listed] == [(1, "5.1.1: first", "root")]
    refused(
        lambda: stub.GetDefinition(pb.GetDefinitionRequest(definition_id="nope:3")), CODE.NOT_FOUND, "nope:3"
    )
    refused(lambda: stub.GetDefinition(pb.GetDefinitionRequest()), CODE.INVALID_ARGUMENT, "definition_id")
    changed = WORK.replace(b'id="e"/>', b'id="e" name="done"/>')
    for note, why in (("a\x07b", "control character"), ("x" * 1001, "at most 1000")):
        request = pb.DeployResourcesRequest(resources=[resource("work.bpmn", changed)], note=note)
        refused(partial(stub.DeployResources, request), CODE.INVALID_ARGUMENT, "note", why)
    assert [
        d.version for d in stub.ListDefinitions(pb.ListDefinitionsRequest(process_id="work")).definitions
    ] == [1]


SCRIPT = bpmn(
    "script",
    '<startEvent id="s"/><scriptTask id="evil"><script>x = open("f")</script></scriptTask>',
    "s -> evil",
)
FAN_OUT = bpmn(
    "fanout",
    """<startEvent id="s"/><userTask id="many"><multiInstanceLoopCharacteristics>
    <loopCardinality>100000</loopCardinality></multiInstanceLoopCharacteristics></userTask><endEvent id="e"/>""",
    "s -> many\nmany -> e",
)
SPIN = bpmn("spin", '<startEvent id="s"/><task id="a"/><task id="b"/>', "s -> a\na -> b\nb -> a")
TICK = bpmn(
    "tick",
    """<startEvent id="s"/><intermediateCatchEvent id="tick"><timerEventDefinition>
    <timeCycle>"R/PT0.1S"</timeCycle></timerEventDefinition></intermediateCatchEvent><endEvent id="e"/>""",
    "s -> tick\ntick -> e",
)


def test_validate_names_the_element_of_every_problem_and_writes_nothing(
    stub: Stub, component: ComponentThread
) -> None:
    db = Database(component.settings.database_url)

    def rows() -> tuple[int, ...]:
        with db.read() as session:
            return tuple(
                int(session.scalar(select(func.count()).select_from(m)) or 0) for m in (Resource, Definition)
            )

    before = rows()
    files = [
        resource("fanout.bpmn", FAN_OUT),
        resource("spin.bpmn", SPIN),
        resource("tick.bpmn", TICK),
        resource("broken.bpmn", b"<definitions"),
    ]
    problems = stub.ValidateResources(pb.ValidateResourcesRequest(resources=files)).problems
    found = {(p.resource_name, p.element_id, p.rule) for p in problems}
    assert found == {
        ("fanout.bpmn", "many", "limit.max_fan_out"),
        ("spin.bpmn", "a", "loop.no_wait_state"),
        ("tick.bpmn", "tick", "limit.min_timer_cycle_seconds"),
        ("broken.bpmn", "", "parse"),
    }, problems
    assert all(p.message for p in problems)
    (script,) = stub.ValidateResources(
        pb.ValidateResourcesRequest(resources=[resource("script.bpmn", SCRIPT)])
    ).problems
    assert (script.element_id, script.rule) == ("evil", "script.name") and "open" in script.message
    assert rows() == before

    stub.DeployResources(pb.DeployResourcesRequest(resources=[resource("work.bpmn", WORK)]))
    clean = stub.ValidateResources(pb.ValidateResourcesRequest(resources=[resource("work.bpmn", WORK)]))
    assert (list(clean.problems), list(clean.unchanged)) == ([], ["work"])

    with pytest.raises(grpc.RpcError) as raised:
        stub.DeployResources(pb.DeployResourcesRequest(resources=[resource("fanout.bpmn", FAN_OUT)]))
    assert raised.value.code() == CODE.INVALID_ARGUMENT
    assert "element 'many'" in str(raised.value.details())
    ((violated, description),) = field_violations(raised.value)
    assert violated == "resources[fanout.bpmn]" and "element 'many'" in description
    refused(lambda: stub.ValidateResources(pb.ValidateResourcesRequest()), CODE.INVALID_ARGUMENT, "resources")
    db.dispose()


def test_statistics_count_instances_and_incidents_per_element(stub: Stub) -> None:
    stub.DeployResources(pb.DeployResourcesRequest(resources=[resource("work.bpmn", WORK)]))
    waiting, failing, approving, done = (start(stub, "work") for _ in range(4))

    def job_of(instance_id: str) -> str:
        return str(stub.GetInstance(pb.GetInstanceRequest(instance_id=instance_id)).jobs[0].job_key)

    stub.FailJob(pb.FailJobRequest(job_key=job_of(failing), retries=0, error_message="crm is down"))
    stub.CompleteJob(pb.CompleteJobRequest(job_key=job_of(approving)))
    stub.CancelInstance(pb.CancelInstanceRequest(instance_id=done))
    for version in (0, 1):
        stats = stub.GetProcessStatistics(pb.GetProcessStatisticsRequest(process_id="work", version=version))
        assert {e.element_id: (e.active, e.incidents) for e in stats.elements} == {
            "fetch": (1, 1),
            "approve": (1, 0),
        }
        assert (stats.running_instances, stats.instances_with_incidents) == (3, 1)
    assert waiting
    refused(
        lambda: stub.GetProcessStatistics(pb.GetProcessStatisticsRequest(process_id="work", version=2)),
        CODE.NOT_FOUND,
        "work:2",
    )
    refused(
        lambda: stub.GetProcessStatistics(pb.GetProcessStatisticsRequest(process_id="nope")),
        CODE.NOT_FOUND,
        "nope",
    )
    refused(
        lambda: stub.GetProcessStatistics(pb.GetProcessStatisticsRequest()),
        CODE.INVALID_ARGUMENT,
        "process_id",
    )


def test_statistics_count_a_called_process_at_its_call_activity(stub: Stub) -> None:
    stub.DeployResources(
        pb.DeployResourcesRequest(resources=[resource("caller.bpmn", CALLER), resource("work.bpmn", WORK)])
    )
    start(stub, "caller")
    stats = stub.GetProcessStatistics(pb.GetProcessStatisticsRequest(process_id="caller"))
    assert {e.element_id: (e.active, e.incidents) for e in stats.elements} == {"call": (1, 0)}


def test_unclaim_by_the_holder_or_ops_audited_and_announced(stub: Stub, component: ComponentThread) -> None:
    stub.DeployResources(pb.DeployResourcesRequest(resources=[resource("work.bpmn", WORK)]))
    instance = start(stub, "work", "E1")
    job = stub.GetInstance(pb.GetInstanceRequest(instance_id=instance)).jobs[0].job_key
    stub.CompleteJob(pb.CompleteJobRequest(job_key=job))
    task_id = stub.GetInstance(pb.GetInstanceRequest(instance_id=instance)).user_tasks[0].user_task_id
    chen = as_person(component, "chen", ["staff"], ("legal",))
    li = as_person(component, "li", ["staff"], ("legal",))
    ops = as_person(component, "olga", ["ops"])
    unclaim = pb.UnclaimUserTaskRequest(user_task_id=task_id)

    refused(lambda: chen.UnclaimUserTask(unclaim), CODE.FAILED_PRECONDITION, "not claimed")
    chen.ClaimUserTask(pb.ClaimUserTaskRequest(user_task_id=task_id))
    refused(lambda: li.UnclaimUserTask(unclaim), CODE.PERMISSION_DENIED, "chen")
    assert chen.UnclaimUserTask(unclaim).assignee == ""
    li.ClaimUserTask(pb.ClaimUserTaskRequest(user_task_id=task_id))
    assert ops.UnclaimUserTask(unclaim).assignee == ""
    refused(lambda: chen.UnclaimUserTask(pb.UnclaimUserTaskRequest()), CODE.INVALID_ARGUMENT, "user_task_id")
    refused(
        lambda: chen.UnclaimUserTask(pb.UnclaimUserTaskRequest(user_task_id="missing")),
        CODE.NOT_FOUND,
        "missing",
    )
    entries = stub.ListAuditEntries(pb.ListAuditEntriesRequest(instance_id=instance)).entries
    unclaims = [(e.actor, e.detail) for e in entries if e.action == "usertask.unclaimed"]
    assert sorted(unclaims) == [("chen", ""), ("olga", "given back for li")]
    db = Database(component.settings.database_url)
    with db.read() as session:
        subjects = list(session.scalars(select(outbox.c.subject)))
    db.dispose()
    assert subjects.count("status.orchestrator.usertask.unclaimed") == 2
    stub.CancelInstance(pb.CancelInstanceRequest(instance_id=instance))
    refused(lambda: ops.UnclaimUserTask(unclaim), CODE.FAILED_PRECONDITION, "canceled")


def test_instance_search_total_version_and_tasks_due_first(stub: Stub) -> None:
    stub.DeployResources(pb.DeployResourcesRequest(resources=[resource("work.bpmn", WORK)]))
    ids = {key: start(stub, "work", key) for key in ("ACME-1", "ACME-2", "BETA-1")}
    changed = WORK.replace(b'id="e"/>', b'id="e" name="done"/>')
    stub.DeployResources(pb.DeployResourcesRequest(resources=[resource("work.bpmn", changed)]))
    ids["ACME-3"] = start(stub, "work", "ACME-3")

    def search(**fields: object) -> pb.ListInstancesResponse:
        return stub.ListInstances(pb.ListInstancesRequest(**fields))  # type: ignore[arg-type]

    found = search(query="ACME")
    assert ({i.business_key for i in found.instances}, found.total) == ({"ACME-1", "ACME-2", "ACME-3"}, 3)
    page = search(query="ACME", page_size=1)
    assert (len(page.instances), page.total, bool(page.next_page_token)) == (1, 3, True)
    by_id = search(query=ids["BETA-1"][:8])
    assert [i.business_key for i in by_id.instances] == ["BETA-1"]
    assert search(query="%").total == 0, "a LIKE wildcard is searched for as itself"
    assert search(process_id="work", version=1).total == 3
    assert [i.business_key for i in search(process_id="work", version=2).instances] == ["ACME-3"]
    assert search(parent_instance_id=ids["ACME-1"]).total == 0
    refused(lambda: search(version=1), CODE.INVALID_ARGUMENT, "version")
    refused(lambda: search(query="x" * 300), CODE.INVALID_ARGUMENT, "query")

    files = [("none.bpmn", due_task("none", "")), ("soon.bpmn", due_task("soon", "P2D"))]
    files.append(("late.bpmn", due_task("late", "2020-01-01T00:00:00+00:00")))
    stub.DeployResources(pb.DeployResourcesRequest(resources=[resource(n, c) for n, c in files]))
    for process_id in ("none", "soon", "late"):
        start(stub, process_id)
    created = stub.ListUserTasks(pb.ListUserTasksRequest(candidate_group="legal")).user_tasks
    due = stub.ListUserTasks(pb.ListUserTasksRequest(candidate_group="legal", due_first=True)).user_tasks
    assert [t.process_id for t in created if t.element_id == "t"] == ["none", "soon", "late"]
    assert [t.process_id for t in due] == ["late", "soon", "none"], "overdue first, no due date last"


def test_deploy_at_start_leaves_an_analysts_deploy_and_says_it_differs(
    tmp_path: Path, nats_url: str, database_url: str
) -> None:
    folder = tmp_path / "bpmn"
    folder.mkdir()
    (folder / "work.bpmn").write_bytes(WORK)
    settings = component_settings("orchestrator", tmp_path, nats_url, database_url, bpmn_dir=folder)

    def running(deploy_at_start: str) -> tuple[ComponentThread, Stub]:
        thread = ComponentThread(replace(settings, deploy_at_start=deploy_at_start), build).start()
        return thread, Stub(signed_channel(thread.address))

    first, stub = running("new")
    listed = stub.ListDefinitions(pb.ListDefinitionsRequest(process_id="work")).definitions
    assert [(d.version, d.deployed_by, d.differs_from_repository) for d in listed] == [(1, "", False)]
    analysts = WORK.replace(b'id="e"/>', b'id="e" name="analyst"/>')
    request = pb.DeployResourcesRequest(resources=[resource("work.bpmn", analysts)], note="from the console")
    stub.DeployResources(request)
    first.stop()

    second, stub = running("new")
    listed = stub.ListDefinitions(pb.ListDefinitionsRequest(process_id="work")).definitions
    assert [(d.version, d.differs_from_repository) for d in listed] == [(1, False), (2, True)]
    latest = stub.ListDefinitions(pb.ListDefinitionsRequest(latest_only=True)).definitions
    assert [(d.definition_id, d.differs_from_repository) for d in latest] == [("work:2", True)]
    shown = stub.GetDefinition(pb.GetDefinitionRequest(definition_id="work:2"))
    assert shown.definition.differs_from_repository and shown.resources[0].content == analysts
    assert not stub.GetDefinition(
        pb.GetDefinitionRequest(definition_id="work:1")
    ).definition.differs_from_repository
    (folder / "other.bpmn").write_bytes(due_task("other", ""))
    second.stop()

    third, stub = running("new")
    latest = stub.ListDefinitions(pb.ListDefinitionsRequest(latest_only=True)).definitions
    assert [(d.definition_id, d.differs_from_repository) for d in latest] == [
        ("other:1", False),
        ("work:2", True),
    ], "a process never deployed is deployed at start"
    third.stop()

    fourth, stub = running("changed")
    latest = stub.ListDefinitions(pb.ListDefinitionsRequest(latest_only=True)).definitions
    assert [(d.definition_id, d.differs_from_repository) for d in latest] == [
        ("other:1", False),
        ("work:3", False),
    ]
    fourth.stop()
    with Database(settings.database_url).read() as session:
        assert session.scalar(select(func.count()).select_from(Instance)) == 0


def consultflow(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    """The CLI in this process (its exit code and what it printed)."""
    with pytest.raises(SystemExit) as exited:
        cli_main(list(argv))
    return int(exited.value.code or 0), capsys.readouterr().out


def test_the_cli_validates_deploys_with_a_note_searches_and_unclaims(
    component: ComponentThread,
    stub: Stub,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("CONSULTFLOW_ORCHESTRATOR_ADDRESS", component.address)
    monkeypatch.setenv("CONSULTFLOW_CA_FILE", str(local_identity().ca))
    monkeypatch.setenv("CONSULTFLOW_TOKEN", token("ann", roles=["analyst", "ops"]))
    (tmp_path / "fanout.bpmn").write_bytes(FAN_OUT)
    (tmp_path / "work.bpmn").write_bytes(WORK)
    code, printed = consultflow(capsys, "deploy", "--validate", str(tmp_path / "fanout.bpmn"))
    assert code == 4 and "many" in printed and "limit.max_fan_out" in printed
    assert consultflow(capsys, "deploy", "--validate", str(tmp_path / "work.bpmn"))[0] == 0
    assert stub.ListDefinitions(pb.ListDefinitionsRequest()).definitions == []
    assert consultflow(capsys, "deploy", "--note", "first", str(tmp_path / "work.bpmn"))[0] == 0
    (definition,) = stub.ListDefinitions(pb.ListDefinitionsRequest()).definitions
    assert (definition.note, definition.deployed_by) == ("first", "ann")

    start(stub, "work", "ACME-1")
    start(stub, "work", "BETA-1")
    code, printed = consultflow(capsys, "instances", "--query", "ACME", "--json")
    assert code == 0 and [i["business_key"] for i in json.loads(printed)] == ["ACME-1"]

    instance = start(stub, "work", "ACME-2")
    job = stub.GetInstance(pb.GetInstanceRequest(instance_id=instance)).jobs[0].job_key
    stub.CompleteJob(pb.CompleteJobRequest(job_key=job))
    task_id = stub.GetInstance(pb.GetInstanceRequest(instance_id=instance)).user_tasks[0].user_task_id
    monkeypatch.setenv("CONSULTFLOW_TOKEN", token("chen", roles=["staff"], groups=["legal"]))
    assert consultflow(capsys, "task", "claim", task_id)[0] == 0
    code, printed = consultflow(capsys, "task", "unclaim", task_id)
    assert code == 0 and "back with its candidates" in printed
    assert consultflow(capsys, "task", "unclaim", task_id)[0] == 4, "not claimed: refused"
    assert stub.GetUserTask(pb.GetUserTaskRequest(user_task_id=task_id)).assignee == ""
