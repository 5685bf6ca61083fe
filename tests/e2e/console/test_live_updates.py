"""Live updates: otto watches an instance page while bella completes its task elsewhere (over gRPC, as the
CLI or another browser would); the page shows the task done without being reloaded, fed by the console's
server-sent events."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

from playwright.sync_api import Browser, Request, expect

from consultflow.api.orchestrator.v1 import orchestrator_pb2 as pb
from consultflow.cli.system import LocalSystem
from tests.support.console import (
    browser_page,
    by,
    console_url,
    deploy,
    in_diagram,
    open_task,
    orchestrator,
    sign_in,
    wait_instance,
)
from tests.support.console_diagrams import inquiry_check, inquiry_variables
from tests.support.groups import one_worker

pytestmark = one_worker(__name__)

PROCESS = "console_live_check"
TASK = "confirm_inquiry"


def test_instance_page_follows_a_task_completed_elsewhere(
    console_system: LocalSystem, browser: Browser, tmp_path: Path
) -> None:
    key = f"E2E-LIVE-{uuid.uuid4().hex[:6]}"
    with orchestrator(console_system, "root") as root:
        deploy(root, f"{PROCESS}.bpmn", inquiry_check(PROCESS))
        created = root.CreateInstance(
            pb.CreateInstanceRequest(
                process_id=PROCESS, business_key=key, variables_json=json.dumps(inquiry_variables(key))
            )
        )
        task = open_task(root, key, TASK)

    with browser_page(browser) as page:
        streams: list[Request] = []
        page.on("request", lambda r: streams.append(r) if "/api/events" in r.url else None)
        sign_in(page, console_system, "otto")
        page.goto(f"{console_url(console_system)}/#/operate/instances/{created.instance_id}")
        expect(by(page, "instance-page")).to_be_visible()
        expect(in_diagram(page, TASK, "cf-active")).to_be_visible()
        page.evaluate("window.__sameDocument = true")
        assert streams, "the page opened no /api/events stream"

        with orchestrator(console_system, "bella") as bella:
            bella.ClaimUserTask(pb.ClaimUserTaskRequest(user_task_id=task.user_task_id))
            bella.CompleteUserTask(
                pb.CompleteUserTaskRequest(
                    user_task_id=task.user_task_id, variables_json=json.dumps({"confirmed_by": "bella"})
                )
            )

        with orchestrator(console_system, "root") as root:
            wait_instance(
                root, created.instance_id, "completed", lambda i: i.state == pb.INSTANCE_STATE_COMPLETED
            )
        expect(in_diagram(page, TASK, "cf-done")).to_be_visible()
        expect(in_diagram(page, TASK, "cf-active")).to_have_count(0)
        assert page.evaluate("window.__sameDocument === true"), "the page was reloaded"
