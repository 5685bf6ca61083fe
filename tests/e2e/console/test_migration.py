"""Ops move running instances between versions in the console: the migrations page draws both versions
side by side with the plan on them, a mapping is made by picking a source and then a target element,
Check shows the dry run, Migrate starts the batch and the page follows it until it completes. On an
instance page, Move cancels a wait and activates another element. Staff get the not-allowed page."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Locator, Page, expect

from consultflow.api.orchestrator.v1 import orchestrator_pb2 as pb
from consultflow.cli.system import LocalSystem
from consultflow.orchestrator.servicer import OrchestratorServicer
from tests.support.console import (
    browser_page,
    by,
    console_url,
    deploy,
    in_diagram,
    orchestrator,
    save_screenshot,
    sign_in,
    wait_instance,
)
from tests.support.console_diagrams import review_versions
from tests.support.groups import one_worker

pytestmark = one_worker(__name__)

PROCESS = "console_review"


def serves(method: str) -> bool:
    """Whether this checkout's orchestrator implements `method` (mig-engine and mig-batch bring them)."""
    return method in vars(OrchestratorServicer)


@pytest.fixture(scope="module")
def review_deployed(console_system: LocalSystem) -> None:
    """Version 1 and version 2 of the review process, deployed once for the module's scenarios."""
    first, second = review_versions(PROCESS)
    with orchestrator(console_system, "root") as root:
        deploy(root, f"{PROCESS}.bpmn", first, "console test: the review")
        deploy(root, f"{PROCESS}.bpmn", second, "console test: triage first, review renamed check")


def scroll_to(page: Page, selector: str) -> None:
    """Scrolls `selector` to the top of the window, just under the sticky top bar (for a screenshot)."""
    page.evaluate(
        "s => window.scrollTo(0, document.querySelector(s).getBoundingClientRect().top + scrollY - 64)",
        selector,
    )


def shape(page: Page, side: str, element_id: str, marker: str = "") -> Locator:
    suffix = f".{marker}" if marker else ""
    return page.locator(
        f'[data-testid="mig-{side}-diagram"] g.djs-element[data-element-id="{element_id}"]{suffix}'
    )


def test_ops_plan_check_and_migrate_an_instance(
    console_system: LocalSystem, browser: Browser, review_deployed: None, tmp_path: Path
) -> None:
    if not serves("PlanMigration") or not serves("StartMigration"):
        pytest.skip(
            "the orchestrator on this branch does not serve migrations yet (merge mig-engine, mig-batch)"
        )
    key = f"E2E-MIG-{uuid.uuid4().hex[:6]}"
    base = console_url(console_system)
    with orchestrator(console_system, "root") as root:
        created = root.CreateInstance(
            pb.CreateInstanceRequest(process_id=PROCESS, version=1, business_key=key)
        )
        wait_instance(
            root,
            created.instance_id,
            "waiting at review",
            lambda i: "review" in {e.element_id for e in i.active_elements},
        )

        with browser_page(browser) as page:
            sign_in(page, console_system, "otto")
            by(page, "lang-en").click()
            by(page, "nav-operate").click()
            by(page, "nav-migrations").click()
            expect(by(page, "migrations-page")).to_be_visible()
            by(page, "mig-process").select_option(PROCESS)
            expect(by(page, "mig-source")).to_have_value("1")
            expect(by(page, "mig-target")).to_have_value("2")
            expect(by(page, "mig-source").locator("option[value='1']")).to_contain_text("1 running")

            # both diagrams, the plan on them: the wait at review has no target yet, triage and check are
            # new, start and end map by their ids; the bpmn.io watermark stays on both
            expect(shape(page, "source", "review", "cf-mig-problem")).to_be_visible()
            expect(shape(page, "source", "review_started", "cf-mig-mapped")).to_be_visible()
            expect(shape(page, "target", "triage", "cf-mig-new")).to_be_visible()
            expect(shape(page, "target", "check", "cf-mig-new")).to_be_visible()
            expect(shape(page, "target", "review_done", "cf-mig-mapped")).to_be_visible()
            expect(page.locator(".migrations-page .bjs-powered-by")).to_have_count(2)

            by(page, "mig-business-key").fill(key)
            by(page, "mig-check").click()
            row = page.locator(f'[data-testid="mig-check-row"][data-instance-id="{created.instance_id}"]')
            expect(row).to_have_attribute("data-applicable", "false")
            expect(row.get_by_test_id("mig-problem")).to_have_attribute("data-element-id", "review")

            # review → check, picked on the diagrams
            shape(page, "source", "review").click()
            expect(shape(page, "source", "review", "cf-mig-picked")).to_be_visible()
            shape(page, "target", "check").click()
            mapping = by(page, "mig-mapping-row")
            expect(mapping).to_have_count(1)
            expect(mapping).to_have_attribute("data-source", "review")
            expect(mapping).to_have_attribute("data-target", "check")
            expect(shape(page, "source", "review", "cf-mig-own")).to_be_visible()
            expect(shape(page, "target", "check", "cf-mig-own")).to_be_visible()

            by(page, "mig-mapping-restart").check()  # restarted, then carried over again
            by(page, "mig-check").click()
            expect(row.get_by_test_id("mig-move")).to_have_attribute("data-action", "RESTARTED")
            by(page, "mig-mapping-restart").uncheck()
            expect(by(page, "mig-check-table")).to_have_count(0)  # a changed plan clears the answer
            by(page, "mig-check").click()
            expect(row).to_have_attribute("data-applicable", "true")
            expect(row.get_by_test_id("mig-move")).to_have_attribute("data-action", "CARRIED_OVER")
            expect(by(page, "mig-check-summary")).to_contain_text("1 of the 1 selected can move")
            scroll_to(page, ".migrations-page h1")
            save_screenshot(page, "migration-plan", tmp_path)

            by(page, "mig-start").click()  # no reason: refused in the page
            expect(by(page, "mig-error")).to_contain_text("Give a reason")
            by(page, "mig-reason").fill("v2 triages first; the review is now the check")
            by(page, "mig-skip").check()
            by(page, "mig-start").click()
            batch = by(page, "mig-current-batch").get_by_test_id("mig-batch")
            expect(batch).to_have_attribute("data-state", "COMPLETED")
            item = batch.get_by_test_id("mig-batch-item")
            expect(item).to_have_attribute("data-instance-id", created.instance_id)
            expect(item).to_have_attribute("data-state", "MIGRATED")
            expect(by(page, "mig-batch-row").first).to_have_attribute("data-state", "COMPLETED")
            scroll_to(page, '[data-testid="mig-check-panel"]')
            save_screenshot(page, "migration-batch", tmp_path)

            # the past batch opens its own page; the process's page links to its plan
            batch_id = batch.get_attribute("data-batch-id")
            by(page, "mig-batch-row").first.click()
            expect(page).to_have_url(f"{base}/#/operate/migrations/{batch_id}")
            expect(by(page, "mig-batch")).to_have_attribute("data-state", "COMPLETED")
            expect(by(page, "mig-batch-item")).to_have_attribute("data-state", "MIGRATED")
            page.goto(f"{base}/#/operate/processes/{PROCESS}")
            by(page, "process-migrate").click()
            expect(by(page, "mig-process")).to_have_value(PROCESS)
            expect(by(page, "mig-source").locator("option[value='2']")).to_contain_text("1 running")

            # the instance now runs version 2, waiting at check, and says where it came from
            page.goto(f"{base}/#/operate/instances/{created.instance_id}")
            expect(by(page, "instance-version")).to_have_text("v2")
            expect(by(page, "instance-migrated-from")).to_contain_text("v1")
            expect(in_diagram(page, "check", "cf-active")).to_be_visible()
            expect(page.locator('[data-testid="instance-timeline"] li.migration-event').first).to_be_visible()

        migrated = root.GetInstance(pb.GetInstanceRequest(instance_id=created.instance_id))
    assert migrated.version == 2
    assert [e.element_id for e in migrated.active_elements] == ["check"]


def test_ops_move_an_instance_on_its_page(
    console_system: LocalSystem, browser: Browser, review_deployed: None
) -> None:
    if not serves("ModifyInstance"):
        pytest.skip("the orchestrator on this branch does not serve ModifyInstance yet (merge mig-engine)")
    key = f"E2E-MOVE-{uuid.uuid4().hex[:6]}"
    base = console_url(console_system)
    with orchestrator(console_system, "root") as root:
        created = root.CreateInstance(pb.CreateInstanceRequest(process_id=PROCESS, business_key=key))
        wait_instance(
            root,
            created.instance_id,
            "waiting at triage",
            lambda i: "triage" in {e.element_id for e in i.active_elements},
        )
        with browser_page(browser) as page:
            sign_in(page, console_system, "otto")
            by(page, "lang-en").click()
            page.goto(f"{base}/#/operate/instances/{created.instance_id}")
            expect(in_diagram(page, "triage", "cf-active")).to_be_visible()
            by(page, "instance-move").click()
            page.locator('[data-testid="move-cancel"][data-element-id="triage"]').check()
            in_diagram(page, "check").click()  # the element to activate, picked on the diagram
            expect(by(page, "move-activate")).to_have_value("check")
            by(page, "move-reason").fill("triage was done by phone")
            by(page, "move-submit").click()
            expect(in_diagram(page, "check", "cf-active")).to_be_visible()
            expect(in_diagram(page, "triage", "cf-active")).to_have_count(0)
            expect(by(page, "move-form")).to_have_count(0)
        moved = root.GetInstance(pb.GetInstanceRequest(instance_id=created.instance_id))
    assert [e.element_id for e in moved.active_elements] == ["check"]


def test_staff_get_the_not_allowed_page(
    console_system: LocalSystem, browser: Browser, review_deployed: None
) -> None:
    base = console_url(console_system)
    with browser_page(browser) as page:
        sign_in(page, console_system, "bella")
        by(page, "lang-en").click()
        page.goto(f"{base}/#/operate/migrations")
        expect(by(page, "not-allowed")).to_be_visible()
        expect(by(page, "migrations-page")).to_have_count(0)
        expect(by(page, "nav-operate")).to_have_count(0)
    with browser_page(browser) as page:  # an analyst may operate (read) but not migrate
        sign_in(page, console_system, "ana")
        by(page, "lang-en").click()
        page.goto(f"{base}/#/operate")
        expect(by(page, "process-list")).to_be_visible()
        expect(by(page, "nav-migrations")).to_have_count(0)
        page.goto(f"{base}/#/operate/migrations")
        expect(by(page, "not-allowed")).to_be_visible()
        expect(by(page, "migrations-page")).to_have_count(0)
