"""An analyst changes a user-task form in the modeler and deploys it; the next engagement's task shows it.

Ana opens the intake (業務承接, intake.bpmn) on its own in the modeler, selects "Understand client needs"
(understand_needs), renames the `goals` form field in the properties panel, validates (which says the deploy
also makes a new version of the engagement, which calls the intake), and deploys with a note. An engagement
started afterwards reaches that task with the new label, through the API and in bella's task form."""

from __future__ import annotations

import uuid
from pathlib import Path
from urllib.parse import unquote

from playwright.sync_api import Browser, FloatRect, Locator, Page, expect

from consultflow.api.orchestrator.v1 import orchestrator_pb2 as pb
from consultflow.cli.system import LocalSystem
from tests.support.console import (
    browser_page,
    by,
    console_api,
    console_url,
    open_task,
    orchestrator,
    save_screenshot,
    sign_in,
    start_engagement,
)
from tests.support.groups import one_worker

pytestmark = one_worker(__name__)

TASK = "understand_needs"
FIELD = "goals"
FIELD_INDEX = 3  # the fourth camunda:formField of understand_needs in bpmn/intake.bpmn
NEW_LABEL = "目標與時程 Goals and timeline"
NOTE = "2.2.1: ask for the goals together with their timeline"


def center(page: Page, shape: Locator, canvas: Locator) -> FloatRect:
    """Scrolls the canvas with the mouse wheel (as a person does) until `shape` is in its middle, clear of
    the palette; returns the shape's box."""
    area = canvas.bounding_box()
    assert area is not None
    middle_x, middle_y = area["x"] + area["width"] / 2, area["y"] + area["height"] / 2
    page.mouse.move(middle_x, middle_y)
    for _ in range(6):
        box = shape.bounding_box()
        assert box is not None
        dx = middle_x - (box["x"] + box["width"] / 2)
        dy = middle_y - (box["y"] + box["height"] / 2)
        if abs(dx) < 10 and abs(dy) < 10:
            break
        page.mouse.wheel(-dx, -dy)  # diagram-js moves the drawing against the wheel, scaled
        page.wait_for_timeout(50)
    box = shape.bounding_box()
    assert box is not None
    return box


def select(page: Page, element_id: str) -> None:
    """Brings the element into view, zooms in on it and clicks it."""
    shape = page.locator(f'[data-testid="modeler"] g.djs-element[data-element-id="{element_id}"]').first
    canvas = page.locator('[data-testid="modeler"] .djs-container').first
    center(page, shape, canvas)
    page.keyboard.down("Control")
    for _ in range(3):
        page.mouse.wheel(0, -100)  # ctrl + wheel: zoom in where the mouse is
    page.keyboard.up("Control")
    box = center(page, shape, canvas)
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] * 0.75)


def rename_form_field(page: Page, element_id: str, index: int, label: str) -> None:
    """Selects the element on the canvas and edits the label of its index-th form field in the properties
    panel (bpmn-js-properties-panel's camunda form-field entries)."""
    select(page, element_id)
    panel = page.locator(".bio-properties-panel")
    expect(panel).to_be_visible()
    label_input = panel.locator(f'[data-entry-id="{element_id}-formField-{index}-formFieldLabel"] input')
    if not label_input.is_visible():
        group = panel.locator('[data-group-id="group-CamundaPlatform__FormData"]')
        header = group.locator(":scope > .bio-properties-panel-group-header")
        if "open" not in (header.get_attribute("class") or ""):
            header.click()
        item = group.locator(f'[data-entry-id="{element_id}-formField-{index}"]')
        item.locator(":scope > .bio-properties-panel-collapsible-entry-header").click()
    expect(label_input).to_be_visible()
    label_input.fill(label)
    label_input.press("Tab")  # the panel commits on change/blur (it debounces typing)


def test_analyst_changes_a_form_field_and_the_next_engagement_shows_it(
    console_system: LocalSystem, browser: Browser, tmp_path: Path
) -> None:
    with orchestrator(console_system, "root") as root:
        engagement = root.ListDefinitions(
            pb.ListDefinitionsRequest(process_id="engagement", latest_only=True)
        ).definitions[0]
        intake = root.ListDefinitions(
            pb.ListDefinitionsRequest(process_id="intake", latest_only=True)
        ).definitions[0]

        with browser_page(browser) as page:
            page.on("dialog", lambda dialog: dialog.accept())
            sign_in(page, console_system, "ana")
            by(page, "lang-en").click()
            by(page, "nav-modeler").click()
            page.locator(
                f'[data-testid="definition-row"][data-definition-id="{intake.definition_id}"]'
            ).click()
            expect(by(page, "modeler")).to_be_visible()
            rename_form_field(page, TASK, FIELD_INDEX, NEW_LABEL)
            save_screenshot(page, "modeler", tmp_path)

            with page.expect_response(lambda r: "/api/deployments/validate" in r.url) as validated:
                by(page, "modeler-validate").click()
            assert validated.value.status == 200, validated.value.text()
            assert "engagement" in validated.value.json()["callers"]
            expect(by(page, "problem-row")).to_have_count(0)
            expect(by(page, "deploy-callers")).to_contain_text("also makes new versions of: engagement")

            by(page, "deploy-note").fill(NOTE)
            with page.expect_response(
                lambda r: r.url.endswith("/api/deployments") and r.request.method == "POST"
            ) as deployed:
                by(page, "modeler-deploy").click()
            assert deployed.value.status == 200, deployed.value.text()

            new_intake = root.ListDefinitions(
                pb.ListDefinitionsRequest(process_id="intake", latest_only=True)
            ).definitions[0]
            assert (new_intake.version, new_intake.note, new_intake.deployed_by) == (
                intake.version + 1,
                NOTE,
                "ana",
            )
            new = root.ListDefinitions(
                pb.ListDefinitionsRequest(process_id="engagement", latest_only=True)
            ).definitions[0]
            assert (new.version, new.note, new.deployed_by) == (
                engagement.version + 1,
                f"new version because intake changed: {NOTE}",
                "ana",
            )
            files = root.GetDefinition(pb.GetDefinitionRequest(definition_id=new.definition_id)).resources
            assert NEW_LABEL in next(f for f in files if f.name == "intake.bpmn").content.decode()

            opened = f"#/modeler/{new_intake.definition_id}"  # the deploy opens the new version
            page.wait_for_url(lambda url: unquote(url).endswith(opened))
            expect(by(page, "modeler")).to_contain_text(f"Version {new_intake.version}")
            expect(by(page, "deploy-callers")).to_contain_text(f"engagement v{new.version}")
            by(page, "modeler-compare").click()  # the side-by-side of intake's versions
            changed = page.locator(f'[data-testid="diff-row"][data-element-id="{TASK}"]')
            expect(changed).to_have_attribute("data-kind", "changed")
            save_screenshot(page, "modeler-diff", tmp_path)

        key = f"E2E-MODEL-{uuid.uuid4().hex[:6]}"
        start_engagement(root, key)
        task = open_task(root, key, TASK)
    labels = {f.id: f.label for f in task.form_fields}
    assert labels[FIELD] == NEW_LABEL

    staff = console_api(console_system, "bella")
    try:
        shown = staff.get(f"/api/tasks/{task.user_task_id}")
        assert shown.status_code == 200, shown.text
        assert {f["id"]: f.get("label") for f in shown.json()["form_fields"]}[FIELD] == NEW_LABEL
    finally:
        staff.close()
    with browser_page(browser) as page:
        sign_in(page, console_system, "bella")
        by(page, "lang-en").click()
        page.goto(f"{console_url(console_system)}/#/tasks/{task.user_task_id}")
        expect(by(page, "task-form")).to_contain_text("Goals and timeline")
        expect(by(page, f"field-{FIELD}")).to_be_visible()
        by(page, "lang-zh").click()
        expect(by(page, "task-form")).to_contain_text("目標與時程")
