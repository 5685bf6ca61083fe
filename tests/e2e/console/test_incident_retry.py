"""Ops see the incident a failing job caused, on the diagram and on the instance page, and retry it.

The cause is one a retry genuinely cures: crm's database is held locked by another process (as a backup or
a long migration would), so crm.record_inquiry, which has no retries in this diagram, fails after the
database's busy timeout with "database is locked" and the job becomes an incident (JOB_NO_RETRIES). Once
the lock is released, otto presses retry on the instance page, the job runs again, the inquiry is recorded
and the incident disappears. (Stopping crm would not do: an unanswered job waits and is redelivered, it
never fails.)"""

from __future__ import annotations

import json
import sqlite3
import uuid
from pathlib import Path

from playwright.sync_api import Browser, expect

from consultflow.api.orchestrator.v1 import orchestrator_pb2 as pb
from consultflow.cli.system import LocalSystem
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
from tests.support.console_diagrams import inquiry_check, inquiry_variables
from tests.support.groups import one_worker

pytestmark = one_worker(__name__)

PROCESS = "console_inquiry_check"
FAILING = "record_inquiry"


def test_ops_see_an_incident_on_the_diagram_and_retry_it(
    console_system: LocalSystem, browser: Browser, tmp_path: Path
) -> None:
    key = f"E2E-INC-{uuid.uuid4().hex[:6]}"
    base = console_url(console_system)
    with orchestrator(console_system, "root") as root:
        deploy(root, f"{PROCESS}.bpmn", inquiry_check(PROCESS), "console test: a job that can fail")
        lock = sqlite3.connect(console_system.data_dir / "crm.db", isolation_level=None, timeout=30)
        try:
            lock.execute("BEGIN IMMEDIATE")  # crm may read, but every write waits and then fails
            created = root.CreateInstance(
                pb.CreateInstanceRequest(
                    process_id=PROCESS, business_key=key, variables_json=json.dumps(inquiry_variables(key))
                )
            )
            stuck = wait_instance(root, created.instance_id, "an open incident", lambda i: i.incidents)
            incident = stuck.incidents[0]
            assert (incident.element_id, incident.kind) == (FAILING, "JOB_NO_RETRIES")
            assert "locked" in incident.message

            with browser_page(browser) as page:
                page.on("dialog", lambda dialog: dialog.accept())
                sign_in(page, console_system, "otto")
                by(page, "lang-en").click()
                by(page, "nav-operate").click()
                expect(by(page, "process-list")).to_be_visible()
                page.locator(f'[data-testid="process-row"][data-process-id="{PROCESS}"]').click()
                expect(by(page, "diagram")).to_be_visible()
                incidents = page.locator(
                    f'[data-testid="diagram"] .djs-overlays[data-container-id="{FAILING}"] .cf-incidents'
                )
                expect(incidents).to_be_visible()
                expect(incidents).to_contain_text("1")
                save_screenshot(page, "operate-heatmap", tmp_path)

                page.goto(f"{base}/#/operate/instances/{created.instance_id}")
                expect(by(page, "instance-page")).to_be_visible()
                expect(in_diagram(page, FAILING, "cf-incident")).to_be_visible()
                row = page.locator(f'[data-testid="incident-row"][data-incident-id="{incident.incident_id}"]')
                expect(row).to_be_visible()
                save_screenshot(page, "instance-incident", tmp_path)

                lock.rollback()  # the cause is gone; the incident stays until someone retries
                assert root.GetInstance(pb.GetInstanceRequest(instance_id=created.instance_id)).incidents
                retry = row.get_by_test_id("incident-retry")
                (retry if retry.count() else by(page, "incident-retry").first).click()

                expect(by(page, "incident-row")).to_have_count(0)
                expect(in_diagram(page, FAILING, "cf-incident")).to_have_count(0)
                expect(in_diagram(page, "confirm_inquiry", "cf-active")).to_be_visible()
        finally:
            lock.close()
        recovered = wait_instance(
            root,
            created.instance_id,
            "waiting at confirm_inquiry",
            lambda i: "confirm_inquiry" in {e.element_id for e in i.active_elements},
        )
    assert not recovered.incidents
    assert "inquiry_id" in json.loads(recovered.variables_json)
