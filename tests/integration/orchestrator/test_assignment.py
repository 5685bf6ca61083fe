"""The engagement's own people on user tasks: `camunda:assignee` and `camunda:candidateUsers` as
`${expression}`s on the task's data, evaluated when the task becomes ready; plain names stay literal."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from consultflow.orchestrator.engine import DeploymentError
from consultflow.orchestrator.servicer import user_task_message
from consultflow.platform.errors import FailedPrecondition
from tests.support.bpmn_builder import bpmn
from tests.support.identity import person
from tests.support.orchestrator_harness import Harness


@pytest.fixture
def h(tmp_path: Path) -> Iterator[Harness]:
    harness = Harness.sqlite(tmp_path)
    yield harness
    harness.close()


def one_task(attributes: str, lane: str = "") -> bytes:
    """start → user task `u` (with these attributes) → end; in a lane named `lane` when given."""
    lanes = (
        f'<laneSet id="ls"><lane id="l" name="{lane}"><flowNodeRef>s</flowNodeRef>'
        "<flowNodeRef>u</flowNodeRef><flowNodeRef>e</flowNodeRef></lane></laneSet>"
        if lane
        else ""
    )
    return bpmn(
        "p", f'{lanes}<startEvent id="s"/><userTask id="u" {attributes}/><endEvent id="e"/>', "s -> u\nu -> e"
    )


TEAM = {"project_manager": "wang", "consultants": "li, zhang", "analysts": "", "assistants": "chen"}


def test_the_assignee_is_the_engagements_project_manager(h: Harness) -> None:
    h.deploy(p=one_task('camunda:candidateGroups="project_manager" camunda:assignee="${project_manager}"'))
    instance = h.start("p", **TEAM)
    task = h.task("u", instance)
    assert (task.assignee, task.candidate_groups, task.candidate_users) == ("wang", ",project_manager,", "")
    mine, _ = h.orchestrator.list_user_tasks(assignee="wang")
    assert [t.user_task_id for t in mine] == [task.user_task_id]
    mine, _ = h.orchestrator.list_user_tasks(candidate_user="wang")
    assert [t.user_task_id for t in mine] == [task.user_task_id]
    assert h.orchestrator.list_user_tasks(candidate_user="li")[0] == []
    with pytest.raises(FailedPrecondition, match="claimed by 'wang'"):
        h.orchestrator.claim_user_task(task.user_task_id, person("li", "project_manager"))
    h.submit("u", instance, by="wang")
    assert h.status(instance) == "COMPLETED"


def test_candidate_users_are_the_team_recorded_for_the_engagement(h: Harness) -> None:
    users = "${[project_manager] + consultants.split(',') + analysts.split(',') + assistants.split(',')}"
    h.deploy(p=one_task(f'camunda:candidateUsers="{users}"', lane="項目團隊 Project team"))
    instance = h.start("p", **TEAM)
    task = h.task("u", instance)
    assert task.candidate_users == ",wang,li,zhang,chen,"
    assert (task.assignee, task.candidate_groups) == ("", "")  # named people only: not the lane's group
    assert [t.user_task_id for t in h.orchestrator.list_user_tasks(candidate_user="zhang")[0]] == [
        task.user_task_id
    ]
    assert h.orchestrator.list_user_tasks(candidate_user="zhao")[0] == []
    assert h.orchestrator.list_user_tasks(candidate_user="li_")[0] == []  # no LIKE wildcards
    message = user_task_message(task, None)
    assert list(message.candidate_users) == ["wang", "li", "zhang", "chen"]
    h.orchestrator.claim_user_task(task.user_task_id, person("li"))
    h.submit("u", instance, by="li")
    assert h.status(instance) == "COMPLETED"


def test_a_comma_separated_string_and_mixed_entries(h: Harness) -> None:
    h.deploy(p=one_task('camunda:candidateUsers="zhao, ${consultants}, ${project_manager}"'))
    instance = h.start("p", **TEAM)
    assert h.task("u", instance).candidate_users == ",zhao,li,zhang,wang,"


def test_a_group_and_a_person_list_what_either_may_take(h: Harness) -> None:
    h.deploy(
        p=bpmn(
            "p",
            '<startEvent id="s"/><parallelGateway id="fork"/>'
            '<userTask id="group_task" camunda:candidateGroups="team"/>'
            '<userTask id="own_task" camunda:candidateUsers="${consultants}"/>'
            '<userTask id="other_task" camunda:candidateGroups="legal"/>'
            '<parallelGateway id="join"/><endEvent id="e"/>',
            "s -> fork\nfork -> group_task\nfork -> own_task\nfork -> other_task\n"
            "group_task -> join\nown_task -> join\nother_task -> join\njoin -> e",
        )
    )
    h.start("p", **TEAM)
    listed, _ = h.orchestrator.list_user_tasks(candidate_group="team", candidate_user="li")
    assert sorted(t.element_id for t in listed) == ["group_task", "own_task"]
    listed, _ = h.orchestrator.list_user_tasks(candidate_group="team")
    assert [t.element_id for t in listed] == ["group_task"]


@pytest.mark.parametrize("nobody", ["", "  ", None])
def test_an_assignee_not_known_yet_leaves_the_task_to_its_group(h: Harness, nobody: str | None) -> None:
    """A project manager not named yet (risk management during the intake, before 2.3.2): the expression
    yields no name, so the task stays with its candidate group, unassigned, and any of it may take it."""
    h.deploy(p=one_task('camunda:candidateGroups="project_manager" camunda:assignee="${project_manager}"'))
    instance = h.start("p", project_manager=nobody)
    task = h.task("u", instance)
    assert (task.assignee, task.candidate_groups, task.candidate_users) == ("", ",project_manager,", "")
    assert h.view(instance).incidents == []
    h.submit("u", instance, by="li")  # claims it first
    assert h.status(instance) == "COMPLETED"


def test_plain_names_stay_literal(h: Harness) -> None:
    h.deploy(
        p=one_task(
            'camunda:candidateGroups="legal" camunda:assignee="project_manager" camunda:candidateUsers="wang,li"'
        )
    )
    instance = h.start("p", **TEAM)
    task = h.task("u", instance)
    assert (task.assignee, task.candidate_users, task.candidate_groups) == (
        "project_manager",
        ",wang,li,",
        ",legal,",
    )


def test_a_task_without_people_keeps_its_lanes_group(h: Harness) -> None:
    h.deploy(p=one_task("", lane="legal"))
    task = h.task("u", h.start("p"))
    assert (task.candidate_groups, task.assignee, task.candidate_users) == (",legal,", "", "")


@pytest.mark.parametrize(
    ("attributes", "variables", "reason"),
    [
        ('camunda:assignee="${project_manager}"', {}, "project_manager"),
        ('camunda:assignee="${project_manager}"', {"project_manager": ""}, "named no one"),  # nobody else
        ('camunda:assignee="${project_manager}"', {"project_manager": None}, "yielded a NoneType"),
        ('camunda:assignee="${project_manager}"', {"project_manager": 7}, "yielded a int"),
        ('camunda:assignee="${consultants}"', {"consultants": "li, zhang"}, "named 2 people, not one"),
        ('camunda:candidateUsers="${consultants}"', {"consultants": " , "}, "named no one"),
        ('camunda:candidateUsers="${consultants}"', {"consultants": ["li", 3]}, "not a name or a list"),
    ],
)
def test_a_failing_expression_is_an_incident_not_an_empty_assignee(
    h: Harness, attributes: str, variables: dict[str, Any], reason: str
) -> None:
    h.deploy(p=one_task(attributes))
    instance = h.start("p", **variables)
    assert h.user_tasks(instance) == []
    incidents = h.view(instance).incidents
    assert [(i.kind, i.element_id) for i in incidents] == [("ASSIGNMENT", "u")]
    assert reason in incidents[0].message
    assert h.status(instance) == "ACTIVE"
    # Resolving evaluates again; the data has not changed, so it fails again, and says so again.
    h.orchestrator.resolve_incident(incidents[0].incident_id)
    again = h.view(instance).incidents
    assert len(again) == 1 and again[0].incident_id != incidents[0].incident_id
    assert again[0].kind == "ASSIGNMENT"
    assert h.user_tasks(instance) == []


@pytest.mark.parametrize(
    ("attributes", "problem"),
    [
        ("camunda:assignee=\"${__import__('os')}\"", "refused expression"),
        ('camunda:assignee="${project_manager +}"', "refused expression"),
        ('camunda:assignee="${}"', "empty expression"),
        ('camunda:candidateUsers="li, ${_secret}"', "refused expression"),
        ('camunda:candidateUsers="li, ${project_manager"', "neither a name nor one ${expression}"),
    ],
)
def test_an_expression_that_cannot_compile_is_refused_at_deploy_naming_the_element(
    h: Harness, attributes: str, problem: str
) -> None:
    with pytest.raises(DeploymentError) as raised:
        h.deploy(p=one_task(attributes))
    assert raised.value.element == "u"
    assert problem in str(raised.value)
