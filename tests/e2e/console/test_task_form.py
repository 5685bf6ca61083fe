"""Business staff do "Understand client needs" (瞭解客戶需求, 2.2.1) from the task list of a running
engagement: claim it, submit with a required field left empty, see the orchestrator's error next to that
field, correct it, complete; the engagement's intake moves on to recording the requirements."""

from __future__ import annotations

import uuid
from pathlib import Path

from playwright.sync_api import Browser, expect

from consultflow.api.orchestrator.v1 import orchestrator_pb2 as pb
from consultflow.cli.system import LocalSystem
from tests.support.console import (
    browser_page,
    by,
    console_url,
    fill_field,
    open_task,
    orchestrator,
    save_screenshot,
    sign_in,
    start_engagement,
    wait_instance,
)
from tests.support.groups import one_worker

pytestmark = one_worker(__name__)

ANSWERS = {
    "communication_mode": "phone",
    "needs": "Shorter order-to-delivery times",
    "background": "A manufacturer with three plants",
    "goals": "Deliver within five days",
}
LEFT_EMPTY = "expected_results"


def test_business_staff_complete_understand_needs_after_a_validation_error(
    console_system: LocalSystem, browser: Browser, tmp_path: Path
) -> None:
    key = f"E2E-TASK-{uuid.uuid4().hex[:6]}"
    with orchestrator(console_system, "otto") as ops:
        for other in ("A", "B"):  # a list with more than one row, for the picture
            start_engagement(ops, f"{key}-{other}")
        start_engagement(ops, key)
        task = open_task(ops, key, "understand_needs")

        with browser_page(browser) as page:
            sign_in(page, console_system, "bella")
            by(page, "lang-en").click()
            by(page, "nav-tasks").click()
            expect(by(page, "task-list")).to_be_visible()
            row = page.locator(f'[data-testid="task-row"][data-task-id="{task.user_task_id}"]')
            expect(row).to_be_visible()
            expect(row).to_have_attribute("data-element-id", "understand_needs")
            expect(row).to_contain_text("Understand client needs")
            by(page, "lang-zh").click()
            expect(row).to_contain_text("瞭解客戶需求")
            expect(row).not_to_contain_text("Understand client needs")
            save_screenshot(page, "tasks", tmp_path)
            by(page, "lang-en").click()

            row.click()
            expect(by(page, "task-form")).to_be_visible()
            expect(by(page, "task-doc")).to_contain_text("2.2.1")
            by(page, "task-claim").click()
            expect(by(page, "task-unclaim")).to_be_visible()
            for field_id, value in ANSWERS.items():
                fill_field(page, field_id, value)
            by(page, "task-complete").click()
            error = by(page, f"field-error-{LEFT_EMPTY}")
            expect(error).to_be_visible()
            expect(error).not_to_be_empty()
            for field_id in ANSWERS:
                expect(by(page, f"field-error-{field_id}")).to_be_empty()
            assert ops.GetUserTask(pb.GetUserTaskRequest(user_task_id=task.user_task_id)).state == "OPEN"
            save_screenshot(page, "task-form-error", tmp_path)

            fill_field(page, LEFT_EMPTY, "A plan the board can approve")
            by(page, "task-complete").click()

            # The next step stores the answers in crm (2.2.1), which refuses requirements without them.
            wait_instance(
                ops,
                task.instance_id,
                "record_requirements done",
                lambda i: any(
                    e.type == "element.completed" and e.element_id == "record_requirements" for e in i.history
                ),
            )
            assert page.url.startswith(console_url(console_system))
        completed = ops.GetUserTask(pb.GetUserTaskRequest(user_task_id=task.user_task_id))
    assert completed.state == "COMPLETED"
    assert completed.completed_by == "bella"
