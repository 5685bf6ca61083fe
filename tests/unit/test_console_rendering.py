"""RENDERING TEST WITH CANNED DATA: the built console (services/consultflow/console/static) in headless
Chromium against a stand-in /api that returns fixed JSON. It checks only how the front end draws what it
is given (labels in the chosen language, the form per field type, errors next to their fields, overlays
and markers on the diagram, buttons per role), not the console server or the system: the browser tests
in the real system do that. Skips without Chromium; fails when the bundle is missing (`make
console-assets`)."""

from __future__ import annotations

import json
import re
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import uvicorn
from playwright.sync_api import Browser, Page, expect, sync_playwright
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from tests.bpmn.modeler_tools import chromium
from tests.support.catalogue import ROOT

STATIC = ROOT / "services" / "consultflow" / "console" / "static"
CSRF = "canned-csrf-token"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-sync"]
ALL = {
    "model": True,
    "deploy": True,
    "tasks": True,
    "operate": True,
    "cancel": True,
    "retry": True,
    "publish": True,
    "migrate": True,
    "modify": True,
}

FIELDS: list[dict[str, Any]] = [
    {
        "id": "communication_mode",
        "label": "溝通方式 Communication mode",
        "type": "enum",
        "required": True,
        "values": [{"id": "phone", "name": "電話 Phone"}, {"id": "visit", "name": "面談 Face to face"}],
    },
    {"id": "needs", "label": "客戶需求 Needs", "type": "string", "required": True},
    {"id": "expected_results", "label": "預期成果 Expected results (one per line)", "type": "string"},
    {"id": "team_size", "label": "團隊人數 Team size", "type": "long"},
    {"id": "fee", "label": "費用 Fee", "type": "decimal"},
    {"id": "start_on", "label": "開始日期 Start date", "type": "date"},
    {"id": "urgent", "label": "緊急 Urgent", "type": "boolean"},
]
TASK = {
    "user_task_id": "t-1",
    "instance_id": "i-1",
    "element_id": "understand_needs",
    "name": "瞭解客戶需求 Understand client needs",
    "documentation": "[2.2.1] Understanding client needs — the client tells the business staff its needs.",
    "candidate_groups": ["business"],
    "form_fields": FIELDS,
    "state": "OPEN",
    "variables_json": json.dumps(
        {
            "client_name": "佛山陶瓷 Foshan Ceramics",
            "question": "Export growth",
            "take_on": True,
            "_secret": "x",
        }
    ),
    "process_id": "intake",
    "business_key": "E-1",
    "due_at": "2020-01-01T00:00:00Z",
    "created_at": "2019-12-30T00:00:00Z",
}
LATER = {**TASK, "user_task_id": "t-2", "element_id": "assess_feasibility", "due_at": "2099-01-01T00:00:00Z"}
LATER["name"] = "項目可行性評估 Feasibility assessment"


@dataclass
class Canned:
    """What the stand-in API answers, and what the browser sent it."""

    signed_in: bool = True
    can: dict[str, bool] = field(default_factory=lambda: dict(ALL))
    posts: list[tuple[str, str, Any]] = field(default_factory=list)  # (path, csrf header, body)
    complete_refusal: dict[str, Any] | None = None


CANNED = Canned()


def _json(body: Any, status: int = 200) -> JSONResponse:
    return JSONResponse(body, status_code=status)


async def me(request: Request) -> Response:
    if not CANNED.signed_in:
        return _json({"error": {"code": "UNAUTHENTICATED", "message": "sign in"}}, 401)
    return _json(
        {"name": "bea", "roles": ["staff"], "groups": ["business"], "csrf_token": CSRF, "can": CANNED.can}
    )


async def tasks(request: Request) -> Response:
    return _json({"user_tasks": [LATER, TASK]})


async def task(request: Request) -> Response:
    return _json({"t-1": TASK, "t-2": LATER}[request.path_params["task_id"]])


async def post(request: Request) -> Response:
    body = await request.json() if await request.body() else None
    CANNED.posts.append((request.url.path, request.headers.get("x-csrf-token", ""), body))
    path = request.url.path
    if path.endswith("/claim"):
        return _json({**TASK, "assignee": "bea"})
    if path.endswith("/complete") and CANNED.complete_refusal is not None:
        return _json({"error": CANNED.complete_refusal}, 400)
    return _json({})


async def definitions(request: Request) -> Response:
    process = request.query_params.get("process_id") or "intake"
    name = {"intake": "業務承接 Business intake", "engagement": "諮詢項目 Consulting engagement"}[process]
    listed = {"definition_id": f"{process}:2", "process_id": process, "version": 2, "name": name}
    return _json({"definitions": [{**listed, "deployed_at": "2026-01-01T00:00:00Z"}]})


async def definition(request: Request) -> Response:
    process = request.path_params["definition_id"].split(":")[0]
    files = [f"{process}.bpmn"] + (["intake.bpmn"] if process == "engagement" else [])
    resources = [
        {"name": name, "content": (ROOT / "bpmn" / name).read_text(encoding="utf-8")} for name in files
    ]
    return _json({"definition": {"definition_id": f"{process}:2", "name": process}, "resources": resources})


async def statistics(request: Request) -> Response:
    elements = [
        {"element_id": "understand_needs", "active": 3},
        {"element_id": "record_requirements", "active": 1, "incidents": 1},
    ]
    return _json({"elements": elements, "running_instances": 4, "instances_with_incidents": 1})


async def instances(request: Request) -> Response:
    if request.query_params.get("parent_instance_id"):
        return _json({"instances": [], "total": 0})
    summary = {
        "instance_id": "i-1",
        "definition_id": "intake:2",
        "process_id": "intake",
        "business_key": "E-1",
        "state": "INSTANCE_STATE_ACTIVE",
        "waiting_at": ["形成初步需求文檔 Record the preliminary requirements"],
        "open_incidents": 1,
        "created_at": "2026-01-02T00:00:00Z",
    }
    return _json({"instances": [summary], "total": 1})


async def instance(request: Request) -> Response:
    if request.path_params["instance_id"] == "e-1":  # an engagement waiting inside the intake it called
        return _json(
            {
                "instance_id": "e-1",
                "definition_id": "engagement:2",
                "process_id": "engagement",
                "version": 2,
                "state": "INSTANCE_STATE_ACTIVE",
                "active_elements": [
                    {"element_id": "understand_needs", "process_id": "intake", "state": "READY"}
                ],
                "history": [{"sequence": "1", "type": "element.completed", "element_id": "inquiry_received"}],
            }
        )
    history = [
        {"sequence": "1", "type": "instance.created", "time": "2026-01-02T00:00:00Z"},
        {
            "sequence": "2",
            "type": "element.completed",
            "element_id": "intake_started",
            "time": "2026-01-02T00:00:01Z",
        },
        {
            "sequence": "3",
            "type": "element.completed",
            "element_id": "understand_needs",
            "element_name": "瞭解客戶需求 Understand client needs",
            "time": "2026-01-02T00:00:02Z",
        },
    ]
    return _json(
        {
            "instance_id": "i-1",
            "definition_id": "intake:2",
            "process_id": "intake",
            "version": 2,
            "business_key": "E-1",
            "state": "INSTANCE_STATE_ACTIVE",
            "variables_json": json.dumps({"client_name": "佛山陶瓷 Foshan Ceramics"}),
            "active_elements": [
                {
                    "element_id": "record_requirements",
                    "name": "形成初步需求文檔 Record the preliminary requirements",
                    "type": "serviceTask",
                    "state": "ERROR",
                }
            ],
            "incidents": [
                {
                    "incident_id": "inc-1",
                    "instance_id": "i-1",
                    "element_id": "record_requirements",
                    "kind": "JOB_NO_RETRIES",
                    "message": "crm unavailable",
                    "created_at": "2026-01-02T00:00:03Z",
                }
            ],
            "jobs": [],
            "user_tasks": [],
            "history": history,
            "created_at": "2026-01-02T00:00:00Z",
        }
    )


async def events(request: Request) -> Response:
    return Response(status_code=204)  # no live updates here: EventSource stops on 204


async def index(request: Request) -> Response:
    return FileResponse(STATIC / "index.html")


def canned_app() -> Starlette:
    return Starlette(
        routes=[
            Route("/", index),
            Route("/api/me", me),
            Route("/api/events", events),
            Route("/api/tasks", tasks),
            Route("/api/tasks/{task_id}", task),
            Route("/api/tasks/{task_id}/{action}", post, methods=["POST"]),
            Route("/api/definitions", definitions),
            Route("/api/definitions/{definition_id}", definition),
            Route("/api/processes/{process_id}/statistics", statistics),
            Route("/api/instances", instances),
            Route("/api/instances/{instance_id}", instance),
            Route("/api/incidents/{incident_id}/resolve", post, methods=["POST"]),
            Route("/api/instances/{instance_id}/modify", post, methods=["POST"]),
            Mount("/", StaticFiles(directory=STATIC)),
        ]
    )


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    assert (STATIC / "console.js").is_file(), "the console is not built: run `make console-assets`"
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(canned_app(), log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        threading.Event().wait(0.02)
    yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    server.should_exit = True
    thread.join(10)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    executable = chromium()
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Browser, base_url: str) -> Iterator[Page]:
    global CANNED
    CANNED = Canned()
    context = browser.new_context(base_url=base_url, locale="en-GB")
    opened = context.new_page()
    errors: list[str] = []
    opened.on("pageerror", lambda error: errors.append(str(error)))
    yield opened
    context.close()
    assert not errors, f"the page threw: {errors}"


def test_signed_out_people_see_how_to_sign_in(page: Page) -> None:
    CANNED.signed_in = False
    page.goto("/")
    expect(page.get_by_text("consultflow console --as NAME")).to_be_visible()
    expect(page.locator("a[href='/login']")).to_have_text("Sign in with your organisation")


def test_the_nav_shows_only_the_pages_a_person_may_use(page: Page) -> None:
    CANNED.can = {**ALL, "model": False, "operate": False}
    page.goto("/")
    expect(page.get_by_test_id("whoami")).to_have_text("bea")
    expect(page.get_by_test_id("nav-tasks")).to_be_visible()
    expect(page.get_by_test_id("nav-operate")).to_have_count(0)
    expect(page.get_by_test_id("nav-modeler")).to_have_count(0)
    expect(page).to_have_url(re.compile(r"#/tasks$"))


def test_tasks_overdue_first_and_labels_in_the_chosen_language(page: Page) -> None:
    page.goto("/#/tasks")
    rows = page.get_by_test_id("task-row")
    expect(rows).to_have_count(2)
    expect(rows.first).to_have_attribute("data-task-id", "t-1")  # overdue, though listed second
    expect(rows.first).to_have_class(re.compile(r"\boverdue\b"))
    expect(rows.first).to_contain_text("Understand client needs")
    expect(rows.first).not_to_contain_text("瞭解客戶需求")
    page.get_by_test_id("lang-zh").click()
    expect(page.get_by_test_id("task-row").first).to_contain_text("瞭解客戶需求")
    expect(page.get_by_test_id("task-row").first).not_to_contain_text("Understand client needs")
    page.reload()  # the choice is remembered
    expect(page.get_by_test_id("nav-tasks")).to_have_text("任務")


def test_the_form_per_field_type_with_documentation_and_context(page: Page) -> None:
    page.goto("/#/tasks/t-1")
    expect(page.get_by_test_id("task-form")).to_be_visible()
    assert page.get_by_test_id("field-communication_mode").evaluate("e => e.tagName") == "SELECT"
    expect(page.get_by_test_id("field-communication_mode").locator("option")).to_have_text(
        ["— choose —", "Phone", "Face to face"]
    )
    assert page.get_by_test_id("field-expected_results").evaluate("e => e.tagName") == "TEXTAREA"
    assert page.get_by_test_id("field-urgent").get_attribute("type") == "checkbox"
    assert page.get_by_test_id("field-start_on").get_attribute("type") == "date"
    expect(page.locator("label[for='f-needs']")).to_contain_text("Needs")
    expect(page.get_by_test_id("task-doc")).to_contain_text("2.2.1")
    expect(page.get_by_test_id("task-context")).to_contain_text("Foshan Ceramics")
    expect(page.get_by_test_id("task-context")).not_to_contain_text("_secret")
    expect(page.get_by_test_id("task-claim")).to_be_visible()


def test_errors_appear_next_to_their_fields_client_side_then_from_the_server(page: Page) -> None:
    page.goto("/#/tasks/t-1")
    page.get_by_test_id("field-team_size").fill("2.5")
    page.get_by_test_id("task-complete").click()
    expect(page.get_by_test_id("field-error-needs")).to_have_text("This field is required.")
    expect(page.get_by_test_id("field-error-communication_mode")).to_have_text("This field is required.")
    expect(page.get_by_test_id("field-error-team_size")).to_have_text("Enter a whole number.")
    assert not [p for p in CANNED.posts if p[0].endswith("/complete")], "sent despite the form's errors"

    CANNED.complete_refusal = {
        "code": "INVALID_ARGUMENT",
        "message": "needs: too vague",
        "field_violations": [{"field": "needs", "description": "is too vague (客戶需求 Needs)"}],
    }
    page.get_by_test_id("field-communication_mode").select_option("phone")
    page.get_by_test_id("field-needs").fill("x")
    page.get_by_test_id("field-team_size").fill(" 1_000 ")
    page.get_by_test_id("field-urgent").check()
    page.get_by_test_id("task-complete").click()
    expect(page.get_by_test_id("field-error-needs")).to_have_text("is too vague (客戶需求 Needs)")
    expect(page.get_by_test_id("field-error-team_size")).to_have_text("")
    claim, complete = CANNED.posts[-2:]
    assert claim[0] == "/api/tasks/t-1/claim" and claim[1] == CSRF  # unclaimed: claimed first
    assert complete[0] == "/api/tasks/t-1/complete" and complete[1] == CSRF
    assert complete[2] == {
        "variables": {"communication_mode": "phone", "needs": "x", "team_size": 1000, "urgent": True}
    }


def test_the_process_diagram_carries_counts_per_element(page: Page) -> None:
    page.goto("/#/operate")
    expect(page.get_by_test_id("process-row")).to_have_attribute("data-process-id", "intake")
    expect(page.get_by_test_id("instance-row")).to_have_attribute("data-instance-id", "i-1")
    page.get_by_test_id("process-row").click()  # anywhere on the row
    diagram = page.get_by_test_id("diagram")
    expect(diagram.locator(".cf-count")).to_have_count(2)
    expect(diagram.locator("[data-container-id='understand_needs'] .cf-count")).to_have_text("3")
    expect(diagram.locator(".cf-incidents")).to_have_text("1")
    expect(diagram.locator(".bjs-powered-by")).to_be_visible()  # the bpmn.io watermark stays
    expect(diagram).to_contain_text("Understand client needs")


def test_the_instance_page_marks_path_wait_and_incident_and_offers_retry(page: Page) -> None:
    CANNED.can = {**ALL, "cancel": False}
    page.goto("/#/operate/instances/i-1")
    expect(page.get_by_test_id("instance-page")).to_be_visible()
    diagram = page.get_by_test_id("diagram")
    expect(diagram.locator("[data-element-id='understand_needs'].cf-done")).to_have_count(1)
    expect(
        diagram.locator("[data-element-id='flow_intake_started_to_understand_needs'].cf-done")
    ).to_have_count(1)
    expect(diagram.locator("[data-element-id='record_requirements'].cf-active.cf-incident")).to_have_count(1)
    expect(page.get_by_test_id("incident-row")).to_have_attribute("data-incident-id", "inc-1")
    expect(page.get_by_test_id("instance-cancel")).to_have_count(0)
    expect(page.get_by_test_id("message-publish")).to_be_visible()
    page.get_by_test_id("incident-retry").click()
    expect(page.get_by_text("The incident was retried.")).to_be_visible()
    assert CANNED.posts[-1][:2] == ("/api/incidents/inc-1/resolve", CSRF)


def test_a_wait_inside_a_called_process_shows_on_its_call_activity_and_in_its_own_diagram(page: Page) -> None:
    page.goto("/#/operate/instances/e-1")
    diagram = page.get_by_test_id("diagram")
    expect(diagram.locator("g.djs-element[data-element-id='intake'].cf-active")).to_have_count(1)
    page.locator("[data-testid='diagram-file'][data-file='intake.bpmn']").click()
    expect(diagram.locator("g.djs-element[data-element-id='understand_needs'].cf-active")).to_have_count(1)


def test_counts_inside_a_called_process_add_up_on_its_call_activity(page: Page) -> None:
    page.goto("/#/operate/processes/engagement")  # the canned counts stand on intake's elements
    called = page.get_by_test_id("diagram").locator(".djs-overlays[data-container-id='intake']")
    expect(called.locator(".cf-count")).to_have_text("4")
    expect(called.locator(".cf-incidents")).to_have_text("1")


def test_migrations_and_move_only_for_those_who_may(page: Page) -> None:
    CANNED.can = {**ALL, "migrate": False, "modify": False, "cancel": False}  # an analyst
    page.goto("/#/operate")
    expect(page.get_by_test_id("process-list")).to_be_visible()
    expect(page.get_by_test_id("nav-migrations")).to_have_count(0)
    page.goto("/#/operate/migrations")
    expect(page.get_by_test_id("not-allowed")).to_be_visible()
    expect(page.get_by_test_id("migrations-page")).to_have_count(0)
    page.goto("/#/operate/instances/i-1")
    expect(page.get_by_test_id("instance-page")).to_be_visible()
    expect(page.get_by_test_id("incident-row")).to_be_visible()
    expect(page.get_by_test_id("instance-move")).to_have_count(0)


def test_the_move_form_picks_its_element_on_the_diagram(page: Page) -> None:
    page.goto("/#/operate/instances/i-1")
    page.get_by_test_id("instance-move").click()
    expect(page.get_by_test_id("move-form")).to_be_visible()
    waits = page.get_by_test_id("move-cancel")
    expect(waits).to_have_count(1)
    expect(waits).to_have_attribute("data-element-id", "record_requirements")
    waits.check()
    page.locator("[data-testid='diagram'] g.djs-element[data-element-id='understand_needs']").click()
    expect(page.get_by_test_id("move-activate")).to_have_value("understand_needs")
    page.get_by_test_id("move-submit").click()  # without a reason: refused in the page
    expect(page.get_by_test_id("move-error")).to_have_text("Give a reason.")
    assert not any(path.endswith("/modify") for path, _, _ in CANNED.posts)
    page.get_by_test_id("move-reason").fill("the requirements were recorded by hand")
    page.get_by_test_id("move-submit").click()
    expect(page.get_by_text("The instance was moved.")).to_be_visible()
    path, csrf, body = CANNED.posts[-1]
    assert (path, csrf) == ("/api/instances/i-1/modify", CSRF)
    assert body == {
        "cancel_element_ids": ["record_requirements"],
        "activate_element_id": "understand_needs",
        "process_id": "",
        "reason": "the requirements were recorded by hand",
    }
