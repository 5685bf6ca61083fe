"""The console's migration routes against the real orchestrator: the input they refuse themselves (400
naming the field), who may use them (ops only, decided by the orchestrator), and an instance checked,
migrated from version 1 to version 2 and moved, each as the signed-in person."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from consultflow.api.orchestrator.v1 import orchestrator_pb2 as pb
from tests.integration.console.conftest import Console
from tests.integration.console.test_console_api import serves
from tests.support.console_diagrams import review_versions
from tests.support.polling import eventually

PROCESS = "console_review"


def csrf(browser: httpx.Client) -> dict[str, str]:
    return {"X-CSRF-Token": browser.get("/api/me").json()["csrf_token"]}


def plan(mappings: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {
        "source_definition_id": f"{PROCESS}:1",
        "target_definition_id": f"{PROCESS}:2",
        "mappings": mappings or [],
    }


REVIEW_TO_CHECK = [{"source_element_id": "review", "target_element_id": "check"}]


@pytest.fixture(scope="module")
def versions(console: Console) -> tuple[str, str]:
    """Version 1 and version 2 of the review process deployed, as their definition ids."""
    first, second = review_versions(PROCESS)
    ids = []
    for content in (first, second):
        reply = console.system.orchestrator.DeployResources(
            pb.DeployResourcesRequest(resources=[pb.Resource(name=f"{PROCESS}.bpmn", content=content)])
        )
        ids.append(next(d.definition_id for d in reply.definitions if d.process_id == PROCESS))
    assert ids == [f"{PROCESS}:1", f"{PROCESS}:2"], ids
    return ids[0], ids[1]


def start_on_version_1(console: Console) -> tuple[str, str]:
    """An instance of version 1 waiting at `review` (started with the version named, version 2 being the
    latest), and its business key."""
    key = f"MIG-{uuid.uuid4().hex[:8]}"
    created = console.system.orchestrator.CreateInstance(
        pb.CreateInstanceRequest(process_id=PROCESS, version=1, business_key=key)
    )
    console.system.wait_for(
        created.instance_id, lambda i: "review" in {e.element_id for e in i.active_elements}
    )
    return created.instance_id, key


def violated(response: httpx.Response) -> str:
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "INVALID_ARGUMENT"
    field: str = error["field_violations"][0]["field"]
    return field


def test_bad_migration_input_is_refused_naming_the_field(console: Console) -> None:
    otto = console.signed_in("otto")
    headers = csrf(otto)
    good = plan()
    cases: list[tuple[str, dict[str, Any], str]] = [
        ("/api/migrations/plan", {}, "plan"),
        ("/api/migrations/plan", {"plan": "p:1 to p:2"}, "plan"),
        ("/api/migrations/plan", {"plan": {**good, "source_definition_id": ""}}, "plan.source_definition_id"),
        ("/api/migrations/plan", {"plan": {**good, "target_definition_id": 2}}, "plan.target_definition_id"),
        ("/api/migrations/plan", {"plan": {**good, "mappings": "review=check"}}, "plan.mappings"),
        ("/api/migrations/plan", {"plan": {**good, "mappings": ["review"]}}, "plan.mappings[0]"),
        (
            "/api/migrations/plan",
            {"plan": {**good, "mappings": [{"source_element_id": "review"}]}},
            "plan.mappings[0].target_element_id",
        ),
        (
            "/api/migrations/plan",
            {"plan": {**good, "mappings": [{**REVIEW_TO_CHECK[0], "restart": "yes"}]}},
            "plan.mappings[0].restart",
        ),
        ("/api/migrations/plan", {"plan": good, "selection": []}, "selection"),
        (
            "/api/migrations/plan",
            {"plan": good, "selection": {"with_incidents": "yes"}},
            "selection.with_incidents",
        ),
        (
            "/api/migrations/plan",
            {"plan": good, "selection": {"instance_ids": "a,b"}},
            "selection.instance_ids",
        ),
        ("/api/migrations/plan", {"plan": good, "page_size": "all"}, "page_size"),
        ("/api/migrations", {"plan": good}, "reason"),
        ("/api/migrations", {"plan": good, "reason": "   "}, "reason"),
        ("/api/migrations", {"plan": good, "reason": "v2", "skip_refused": "true"}, "skip_refused"),
        ("/api/instances/i-1/modify", {"reason": "wrong path"}, "activate_element_id"),
        ("/api/instances/i-1/modify", {"activate_element_id": "check"}, "reason"),
        ("/api/instances/i-1/modify", {"cancel_element_ids": "review", "reason": "x"}, "cancel_element_ids"),
        (
            "/api/instances/i-1/modify",
            {"activate_element_id": "check", "reason": "x", "variables": []},
            "variables",
        ),
    ]
    for path, body, field in cases:
        assert violated(otto.post(path, headers=headers, json=body)) == field, (path, body)
    assert violated(otto.get("/api/migrations", params={"page_size": "many"})) == "page_size"
    # a POST without the session's CSRF token is refused before anything is read
    assert otto.post("/api/migrations", json={"plan": good, "reason": "x"}).status_code == 403
    assert console.browser().get("/api/migrations").status_code == 401


def test_only_ops_may_migrate_or_move(console: Console, versions: tuple[str, str]) -> None:
    """The orchestrator decides (platform/policy.py: ops only); the console passes its 403 on."""
    body = {"plan": plan(REVIEW_TO_CHECK), "reason": "v2 renames the review"}
    for name in ("ana", "bella"):
        person = console.signed_in(name)
        headers = csrf(person)
        answers = [
            person.post("/api/migrations/plan", headers=headers, json=body),
            person.post("/api/migrations", headers=headers, json=body),
            person.get("/api/migrations"),
            person.get("/api/migrations/some-batch"),
            person.post(
                "/api/instances/some-instance/modify",
                headers=headers,
                json={"activate_element_id": "check", "reason": "x"},
            ),
        ]
        assert [a.status_code for a in answers] == [403] * 5, (name, [a.text for a in answers])
        assert {a.json()["error"]["code"] for a in answers} == {"PERMISSION_DENIED"}


def test_ops_check_and_migrate_an_instance(console: Console, versions: tuple[str, str]) -> None:
    if not serves("PlanMigration") or not serves("StartMigration"):
        pytest.skip(
            "the orchestrator on this branch does not serve migrations yet (merge mig-engine, mig-batch)"
        )
    instance_id, key = start_on_version_1(console)
    otto = console.signed_in("otto")
    headers = csrf(otto)
    selection = {"business_key": key}

    # without a mapping the wait at `review` has nowhere to go in version 2: named, per instance
    unmapped = otto.post(
        "/api/migrations/plan", headers=headers, json={"plan": plan(), "selection": selection}
    )
    assert unmapped.status_code == 200, unmapped.text
    answer = unmapped.json()
    assert answer["selected"] == 1
    [check] = answer["instances"]
    assert (check["instance_id"], check["business_key"], check["applicable"]) == (instance_id, key, False)
    assert "review" in {p["element_id"] for p in check["problems"]}
    refused = otto.post(
        "/api/migrations", headers=headers, json={"plan": plan(), "selection": selection, "reason": "v2"}
    )
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "FAILED_PRECONDITION"

    # mapped to `check`, the user task carries over
    mapped = otto.post(
        "/api/migrations/plan", headers=headers, json={"plan": plan(REVIEW_TO_CHECK), "selection": selection}
    ).json()
    [check] = mapped["instances"]
    assert check["applicable"] and not check["problems"]
    assert [(m["source_element_id"], m["target_element_id"], m["action"]) for m in check["moves"]] == [
        ("review", "check", "MOVE_ACTION_CARRIED_OVER")
    ]
    restarting = [{**REVIEW_TO_CHECK[0], "restart": True}]
    restarted = otto.post(
        "/api/migrations/plan", headers=headers, json={"plan": plan(restarting), "selection": selection}
    ).json()
    assert [m["action"] for m in restarted["instances"][0]["moves"]] == ["MOVE_ACTION_RESTARTED"]
    assert (
        console.system.orchestrator.GetInstance(pb.GetInstanceRequest(instance_id=instance_id)).version == 1
    )  # checking changed nothing

    started = otto.post(
        "/api/migrations",
        headers=headers,
        json={"plan": plan(REVIEW_TO_CHECK), "selection": selection, "reason": "v2 renames the review"},
    )
    assert started.status_code == 200, started.text
    batch_id = started.json()["batch_id"]

    def finished() -> dict[str, Any] | None:
        batch: dict[str, Any] = otto.get(f"/api/migrations/{batch_id}").json()
        return batch if batch["state"] == "MIGRATION_STATE_COMPLETED" else None

    batch = eventually(finished, "the batch to complete")
    assert (batch["total"], batch["migrated"], batch["skipped"], batch["failed"]) == (1, 1, 0, 0)
    assert batch["created_by"] == "otto" and batch["reason"] == "v2 renames the review"
    assert [(i["instance_id"], i["state"]) for i in batch["items"]] == [
        (instance_id, "MIGRATION_ITEM_STATE_MIGRATED")
    ]
    listed = otto.get("/api/migrations", params={"process_id": PROCESS}).json()["batches"]
    assert batch_id in {b["batch_id"] for b in listed}

    moved = otto.get(f"/api/instances/{instance_id}").json()
    assert moved["version"] == 2 and moved["definition_id"] == f"{PROCESS}:2"
    assert [e["element_id"] for e in moved["active_elements"]] == ["check"]
    assert "instance.migrated" in {e["type"] for e in moved["history"]}
    assert otto.get("/api/migrations/no-such-batch").status_code == 404


def test_ops_move_an_instance_to_another_element(console: Console, versions: tuple[str, str]) -> None:
    if not serves("ModifyInstance"):
        pytest.skip("the orchestrator on this branch does not serve ModifyInstance yet (merge mig-engine)")
    key = f"MOVE-{uuid.uuid4().hex[:8]}"
    created = console.system.orchestrator.CreateInstance(
        pb.CreateInstanceRequest(process_id=PROCESS, business_key=key)
    )
    instance_id = created.instance_id
    console.system.wait_for(instance_id, lambda i: "triage" in {e.element_id for e in i.active_elements})
    otto = console.signed_in("otto")
    moved = otto.post(
        f"/api/instances/{instance_id}/modify",
        headers=csrf(otto),
        json={
            "cancel_element_ids": ["triage"],
            "activate_element_id": "check",
            "reason": "triage done by phone",
        },
    )
    assert moved.status_code == 200, moved.text
    actions = {(m["source_element_id"] or m["target_element_id"], m["action"]) for m in moved.json()["moves"]}
    assert ("triage", "MOVE_ACTION_CANCELED") in actions and ("check", "MOVE_ACTION_ACTIVATED") in actions
    assert [e["element_id"] for e in moved.json()["active_elements"]] == ["check"]
    instance = otto.get(f"/api/instances/{instance_id}").json()
    assert [e["element_id"] for e in instance["active_elements"]] == ["check"]
    # the orchestrator refuses an element the version lacks, naming the field
    wrong = otto.post(
        f"/api/instances/{instance_id}/modify",
        headers=csrf(otto),
        json={"activate_element_id": "no_such_element", "reason": "typo"},
    )
    assert wrong.status_code in (400, 409), wrong.text
