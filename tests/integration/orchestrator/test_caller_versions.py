"""A deploy of a called process takes effect for new instances of its callers, over a real socket: the
deploy makes new versions of every latest process that packs it (transitively), says so, and running
instances keep the version they started with."""

from __future__ import annotations

import json
from functools import partial
from pathlib import Path

import grpc
import pytest

from consultflow.api.orchestrator.v1 import orchestrator_pb2 as pb
from consultflow.api.orchestrator.v1 import orchestrator_pb2_grpc as pb_grpc
from consultflow.cli.main import main as cli_main
from tests.support.bpmn_builder import bpmn, field, form
from tests.support.components import ComponentThread
from tests.support.identity import local_identity, token
from tests.support.rpc import refused

Stub = pb_grpc.OrchestratorServiceStub


def intake(*fields: str) -> bytes:
    return bpmn(
        "intake",
        f"""<startEvent id="s"/><userTask id="fill" camunda:candidateGroups="legal">
        {form(*(field(f) for f in fields))}</userTask><endEvent id="e"/>""",
        "s -> fill\nfill -> e",
    )


def calling(process_id: str, called: str) -> bytes:
    return bpmn(
        process_id,
        f'<startEvent id="s"/><callActivity id="call" calledElement="{called}"/><endEvent id="e"/>',
        "s -> call\ncall -> e",
    )


ENGAGEMENT = calling("engagement", "intake")
PORTFOLIO = calling("portfolio", "engagement")  # packs intake through engagement
OTHER = bpmn("other", '<startEvent id="s"/><endEvent id="e"/>', "s -> e")


def files(**named: bytes) -> list[pb.Resource]:
    return [pb.Resource(name=f"{name}.bpmn", content=content) for name, content in named.items()]


def form_of_new(stub: Stub, process_id: str) -> tuple[str, list[str]]:
    """Starts an instance of `process_id`; its open intake task's form field ids."""
    instance_id = stub.CreateInstance(pb.CreateInstanceRequest(process_id=process_id)).instance_id
    return instance_id, form_of(stub, instance_id)


def form_of(stub: Stub, instance_id: str) -> list[str]:
    tree = {instance_id}
    for _ in range(3):  # the intake task lives in a called instance (one or two levels down)
        for parent in list(tree):
            children = stub.ListInstances(pb.ListInstancesRequest(parent_instance_id=parent)).instances
            tree |= {c.instance_id for c in children}
    tasks = [
        t
        for i in sorted(tree)
        for t in stub.ListUserTasks(pb.ListUserTasksRequest(instance_id=i)).user_tasks
        if t.state == "OPEN"
    ]
    assert len(tasks) == 1, tasks
    return [f.id for f in tasks[0].form_fields]


def test_a_deploy_of_a_called_process_reaches_new_instances_of_its_callers(stub: Stub) -> None:
    first = stub.DeployResources(
        pb.DeployResourcesRequest(
            resources=files(engagement=ENGAGEMENT, intake=intake("name"), portfolio=PORTFOLIO, other=OTHER)
        )
    )
    assert sorted(d.definition_id for d in first.definitions) == [
        "engagement:1",
        "intake:1",
        "other:1",
        "portfolio:1",
    ]
    assert list(first.callers) == []
    running, before = form_of_new(stub, "engagement")
    assert before == ["name"]

    changed = files(intake=intake("name", "budget"))
    validated = stub.ValidateResources(pb.ValidateResourcesRequest(resources=changed))
    assert (list(validated.problems), list(validated.callers)) == ([], ["engagement", "portfolio"])
    assert [d.version for d in stub.ListDefinitions(pb.ListDefinitionsRequest()).definitions].count(2) == 0

    deployed = stub.DeployResources(pb.DeployResourcesRequest(resources=changed, note="budget asked"))
    assert {(d.definition_id, d.note) for d in deployed.definitions} == {
        ("intake:2", "budget asked"),
        ("engagement:2", "new version because intake changed: budget asked"),
        ("portfolio:2", "new version because intake changed: budget asked"),
    }
    assert sorted(deployed.callers) == ["engagement", "portfolio"]
    assert form_of_new(stub, "engagement")[1] == ["name", "budget"]
    assert form_of_new(stub, "portfolio")[1] == ["name", "budget"]
    assert form_of(stub, running) == ["name"]  # a running instance keeps the version it started with
    assert stub.GetInstance(pb.GetInstanceRequest(instance_id=running)).definition_id == "engagement:1"

    # the new caller version packs exactly its own file and the new intake, as GetDefinition shows
    files_of = stub.GetDefinition(pb.GetDefinitionRequest(definition_id="portfolio:2")).resources
    assert [(r.name, r.content) for r in files_of] == [
        ("portfolio.bpmn", PORTFOLIO),
        ("engagement.bpmn", ENGAGEMENT),
        ("intake.bpmn", intake("name", "budget")),
    ]

    again = stub.DeployResources(pb.DeployResourcesRequest(resources=changed))
    assert (list(again.definitions), list(again.unchanged), list(again.callers)) == ([], ["intake"], [])
    assert list(stub.ValidateResources(pb.ValidateResourcesRequest(resources=changed)).callers) == []


def test_a_caller_the_new_file_would_break_is_named_and_nothing_is_deployed(stub: Stub) -> None:
    # intake.bpmn first holds two processes, intake and helper; engagement calls both
    helper = b'<process id="helper" isExecutable="true"><startEvent id="h"/></process></definitions>'
    both = intake("a").replace(b"</definitions>", helper)
    twice = bpmn(
        "engagement",
        """<startEvent id="s"/><callActivity id="call" calledElement="intake"/>
        <callActivity id="more" calledElement="helper"/><endEvent id="e"/>""",
        "s -> call\ncall -> more\nmore -> e",
    )
    stub.DeployResources(pb.DeployResourcesRequest(resources=files(engagement=twice, intake=both)))
    alone = files(intake=intake("a", "b"))  # the new intake.bpmn drops helper, which engagement calls
    problems = stub.ValidateResources(pb.ValidateResourcesRequest(resources=alone)).problems
    (problem,) = problems
    assert "'engagement' (which calls it, would get a new version)" in problem.message
    assert "helper" in problem.message
    deploy = partial(stub.DeployResources, pb.DeployResourcesRequest(resources=alone))
    refused(deploy, grpc.StatusCode.INVALID_ARGUMENT, "engagement")
    versions = [d.definition_id for d in stub.ListDefinitions(pb.ListDefinitionsRequest()).definitions]
    assert sorted(versions) == ["engagement:1", "helper:1", "intake:1"]


def test_a_decision_table_alone_re_versions_the_processes_that_use_it(stub: Stub) -> None:
    table = decision_table("tier", "small")
    using = bpmn(
        "pricing",
        """<startEvent id="s"/><businessRuleTask id="rate"><extensionElements>
        <spiffworkflow:calledDecisionId>tier</spiffworkflow:calledDecisionId></extensionElements>
        </businessRuleTask><userTask id="look" camunda:candidateGroups="legal"/><endEvent id="e"/>""",
        "s -> rate\nrate -> look\nlook -> e",
    )
    stub.DeployResources(
        pb.DeployResourcesRequest(
            resources=[
                pb.Resource(name="pricing.bpmn", content=using),
                pb.Resource(name="tier.dmn", content=table),
            ]
        )
    )
    changed = [pb.Resource(name="tier.dmn", content=decision_table("tier", "large"))]
    assert list(stub.ValidateResources(pb.ValidateResourcesRequest(resources=changed)).callers) == ["pricing"]
    deployed = stub.DeployResources(pb.DeployResourcesRequest(resources=changed))
    assert [(d.definition_id, d.note) for d in deployed.definitions] == [
        ("pricing:2", "new version because tier changed")
    ]
    instance_id = stub.CreateInstance(pb.CreateInstanceRequest(process_id="pricing")).instance_id
    instance = stub.GetInstance(pb.GetInstanceRequest(instance_id=instance_id))
    assert (instance.definition_id, json.loads(instance.variables_json)["tier"]) == ("pricing:2", "large")
    unused = [pb.Resource(name="spare.dmn", content=decision_table("spare", "x"))]
    refused(
        partial(stub.DeployResources, pb.DeployResourcesRequest(resources=unused)),
        grpc.StatusCode.INVALID_ARGUMENT,
        "no executable process",
    )


def decision_table(decision_id: str, output: str) -> bytes:
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<definitions xmlns="https://www.omg.org/spec/DMN/20191111/MODEL/" id="d_{decision_id}" name="d"
  namespace="http://camunda.org/schema/1.0/dmn">
  <decision id="{decision_id}" name="{decision_id}">
    <decisionTable id="t_{decision_id}">
      <input id="i_{decision_id}"><inputExpression id="x_{decision_id}" typeRef="string">
        <text>"any"</text></inputExpression></input>
      <output id="o_{decision_id}" name="tier" typeRef="string"/>
      <rule id="r_{decision_id}"><inputEntry id="n_{decision_id}"><text>-</text></inputEntry><outputEntry id="e_{decision_id}"><text>"{output}"</text></outputEntry></rule>
    </decisionTable>
  </decision>
</definitions>
""".encode()


def test_the_cli_says_which_callers_a_deploy_re_versions(
    component: ComponentThread,
    stub: Stub,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("CONSULTFLOW_ORCHESTRATOR_ADDRESS", component.address)
    monkeypatch.setenv("CONSULTFLOW_CA_FILE", str(local_identity().ca))
    monkeypatch.setenv("CONSULTFLOW_TOKEN", token("ann", roles=["analyst"]))
    stub.DeployResources(
        pb.DeployResourcesRequest(resources=files(engagement=ENGAGEMENT, intake=intake("a")))
    )
    changed = tmp_path / "intake.bpmn"
    changed.write_bytes(intake("a", "b"))

    def consultflow(*argv: str) -> str:
        with pytest.raises(SystemExit) as exited:
            cli_main(list(argv))
        assert exited.value.code in (0, None)
        return capsys.readouterr().out

    assert "a deploy also makes new versions of: engagement" in consultflow(
        "deploy", "--validate", str(changed)
    )
    printed = consultflow("deploy", "--note", "b too", str(changed))
    assert "deployed intake:2" in printed
    assert "deployed engagement:2" in printed and "(new version because intake changed: b too)" in printed
