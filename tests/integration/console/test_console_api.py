"""The console's sign-in and JSON API against the real orchestrator: who gets in, what /api/me offers
each role, a task claimed and completed (a validation error first), and the refusals."""

from __future__ import annotations

import json
from typing import Any

import grpc
import httpx
import pytest

from consultflow.api.catalog.v1 import catalog_pb2, catalog_pb2_grpc
from consultflow.api.orchestrator.v1 import orchestrator_pb2 as pb
from consultflow.orchestrator.servicer import OrchestratorServicer
from tests.integration.console.conftest import Console
from tests.support.identity import local_identity
from tests.support.polling import eventually


def serves(method: str) -> bool:
    """Whether the orchestrator of this checkout implements `method` (the console's new RPCs land with
    another part of the same change; until then the routes that need them are skipped, not faked)."""
    return method in vars(OrchestratorServicer)


def open_tasks(browser: httpx.Client, **params: str) -> list[dict[str, Any]]:
    tasks: list[dict[str, Any]] = browser.get("/api/tasks", params=params).json()["user_tasks"]
    return tasks


def tasks_of(console: Console, instance_id: str) -> list[pb.UserTask]:
    request = pb.ListUserTasksRequest(instance_id=instance_id)
    return list(console.system.orchestrator.ListUserTasks(request).user_tasks)


def start(console: Console, process_id: str, key: str) -> str:
    reply = console.system.orchestrator.CreateInstance(
        pb.CreateInstanceRequest(process_id=process_id, business_key=key)
    )
    return reply.instance_id


def test_a_sign_in_link_works_once(console: Console) -> None:
    browser = console.browser()
    link = console.link("ana")
    first = browser.get(link)
    assert first.status_code == 303 and first.headers["location"] == "/"
    cookie = first.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie
    assert browser.get("/api/me").json()["name"] == "ana"
    replay = console.browser().get(link)
    assert replay.status_code == 403
    assert 'data-testid="signin-refused"' in replay.text.replace("'", '"')
    assert "used already" in replay.text


def test_a_client_or_a_person_without_roles_is_refused(console: Console) -> None:
    for roles in (["client"], []):
        browser = console.browser()
        response = browser.get(console.link("carla", roles))
        assert response.status_code == 403
        assert "signin-refused" in response.text
        assert "set-cookie" not in response.headers
        assert browser.get("/api/me").status_code == 401


def test_a_bearer_token_is_no_sign_in_ticket(console: Console) -> None:
    token = local_identity().token_of("otto")
    response = console.browser().get(f"/signin?ticket={token}")
    assert response.status_code == 403 and "signin-refused" in response.text


def test_me_offers_what_each_role_may_do(console: Console) -> None:
    can = {name: console.signed_in(name).get("/api/me").json() for name in ("ana", "bella", "otto")}
    assert can["ana"]["can"] == {
        "model": True, "deploy": True, "tasks": False, "operate": True,
        "cancel": False, "retry": False, "publish": False, "start": False,
        "migrate": False, "modify": False,
    }  # fmt: skip
    assert can["bella"]["can"] == {
        "model": False, "deploy": False, "tasks": True, "operate": False,
        "cancel": False, "retry": False, "publish": False, "start": True,
        "migrate": False, "modify": False,
    }  # fmt: skip
    assert can["otto"]["can"] == {
        "model": False, "deploy": False, "tasks": True, "operate": True,
        "cancel": True, "retry": True, "publish": True, "start": True,
        "migrate": True, "modify": True,
    }  # fmt: skip
    assert can["bella"]["groups"] == ["business"] and can["bella"]["roles"] == ["staff"]
    assert can["bella"]["csrf_token"] and can["bella"]["csrf_token"] != can["otto"]["csrf_token"]


def test_staff_get_403_from_definitions_and_analysts_read_them(console: Console) -> None:
    refused = console.signed_in("bella").get("/api/definitions")
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "PERMISSION_DENIED"
    listed = console.signed_in("ana").get("/api/definitions", params={"latest_only": "true"})
    assert listed.status_code == 200
    assert {d["process_id"] for d in listed.json()["definitions"]} >= {"needs", "legal_review"}
    definitions = listed.json()["definitions"]
    definition_id = next(d["definition_id"] for d in definitions if d["process_id"] == "needs")
    if not serves("GetDefinition"):
        pytest.skip("the orchestrator on this branch does not serve GetDefinition yet")
    detail = console.signed_in("ana").get(f"/api/definitions/{definition_id}")
    assert "<userTask" in detail.json()["resources"][0]["content"]


def test_bad_query_parameters_name_the_field(console: Console) -> None:
    otto = console.signed_in("otto")
    for params, name in (({"state": "RUNNING"}, "state"), ({"page_size": "many"}, "page_size")):
        response = otto.get("/api/instances", params=params)
        assert response.status_code == 400
        assert response.json()["error"]["field_violations"][0]["field"] == name


def test_a_task_claimed_then_completed_after_a_validation_error(console: Console) -> None:
    instance_id = start(console, "needs", "E-console-1")
    bella = console.signed_in("bella")
    csrf = {"X-CSRF-Token": bella.get("/api/me").json()["csrf_token"]}
    task = eventually(
        lambda: next((t for t in open_tasks(bella) if t["instance_id"] == instance_id), None),
        "the instance's task in bella's list",
    )
    path = f"/api/tasks/{task['user_task_id']}"
    assert task["element_id"] == "understand"

    no_csrf = bella.post(f"{path}/claim")
    assert no_csrf.status_code == 403 and "CSRF" in no_csrf.json()["error"]["message"]
    claimed = bella.post(f"{path}/claim", headers=csrf)
    assert claimed.status_code == 200 and claimed.json()["assignee"] == "bella"
    assert [t["user_task_id"] for t in open_tasks(bella, scope="mine")] == [task["user_task_id"]]

    if serves("UnclaimUserTask"):
        unclaimed = bella.post(f"{path}/unclaim", headers=csrf)
        assert unclaimed.status_code == 200 and not unclaimed.json().get("assignee")
        assert bella.post(f"{path}/claim", headers=csrf).status_code == 200

    invalid = bella.post(f"{path}/complete", headers=csrf, json={"variables": {}})
    assert invalid.status_code == 400
    error = invalid.json()["error"]
    assert error["code"] == "INVALID_ARGUMENT"
    assert [v["field"] for v in error["field_violations"]] == ["needs"]
    not_json = bella.post(f"{path}/complete", headers=csrf, content=b"{nope")
    assert not_json.status_code == 400 and not_json.json()["error"]["field_violations"][0]["field"] == "body"
    wrong_shape = bella.post(f"{path}/complete", headers=csrf, json={"variables": ["needs"]})
    assert wrong_shape.json()["error"]["field_violations"][0]["field"] == "variables"

    done = bella.post(f"{path}/complete", headers=csrf, json={"variables": {"needs": "一份報告 a report"}})
    assert done.status_code == 200, done.text
    instance = console.system.wait_completed(instance_id)
    assert json.loads(instance.variables_json)["needs"] == "一份報告 a report"


def test_another_groups_task_is_not_a_staff_members_to_claim(console: Console) -> None:
    instance_id = start(console, "legal_review", "E-console-2")
    tasks = eventually(
        lambda: tasks_of(console, instance_id),
        "the legal review task",
    )
    bella = console.signed_in("bella")
    csrf = {"X-CSRF-Token": bella.get("/api/me").json()["csrf_token"]}
    assert tasks[0].user_task_id not in {t["user_task_id"] for t in open_tasks(bella)}
    refused = bella.post(f"/api/tasks/{tasks[0].user_task_id}/claim", headers=csrf)
    assert refused.status_code == 403


def test_logout_needs_the_csrf_token_and_ends_the_session(console: Console) -> None:
    otto = console.signed_in("otto")
    csrf = otto.get("/api/me").json()["csrf_token"]
    assert otto.post("/logout").status_code == 403
    assert otto.post("/logout", headers={"X-CSRF-Token": csrf}).status_code == 200
    assert otto.get("/api/me").status_code == 401


def test_the_catalogue_is_for_analysts_and_ops(console: Console) -> None:
    assert console.signed_in("bella").get("/api/operations").status_code == 403
    listed = console.signed_in("ana").get("/api/operations")
    assert listed.status_code == 200, listed.text
    operations = listed.json()["operations"]
    assert {op["service"] for op in operations} <= {"crm"}  # the one service this system runs
    try:  # what crm itself answers (UNIMPLEMENTED until the services publish their catalogues)
        served = catalog_pb2_grpc.OperationCatalogStub(console.system.channel("crm")).ListOperations(
            catalog_pb2.ListOperationsRequest()
        )
        names = sorted(op.name for op in served.operations)
    except grpc.RpcError as error:
        assert error.code() == grpc.StatusCode.UNIMPLEMENTED
        names = []
    assert sorted(op["name"] for op in operations) == names


def test_every_response_carries_the_security_headers(console: Console) -> None:
    response = console.browser().get("/")
    assert response.status_code == 200
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    assert response.headers["referrer-policy"] == "no-referrer"
    assert console.signed_in("otto").get("/api/me").headers["cache-control"] == "no-store"
    assert console.browser().get("/healthz").json() == {"status": "ok"}
