"""Who may not: a client (only the `client` role) cannot sign in to the console at all, and business
staff see no modeler — not in the navigation, not at its address, not through the API."""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import Browser, expect

from consultflow.cli.system import LocalSystem
from tests.support.console import (
    ROOT,
    browser_page,
    by,
    console_api,
    console_url,
    save_screenshot,
    sign_in,
    sign_in_link,
)
from tests.support.groups import one_worker

pytestmark = one_worker(__name__)

CLIENT = {"roles": ("client",), "engagement": "E2E-CLIENT-1"}


def test_a_client_cannot_sign_in(console_system: LocalSystem, browser: Browser, tmp_path: Path) -> None:
    base = console_url(console_system)
    with browser_page(browser) as page:
        page.goto(sign_in_link(console_system, "cleo", **CLIENT))  # type: ignore[arg-type]
        expect(by(page, "signin-refused")).to_be_visible()
        # styled like the console: its stylesheet applies (the top bar is laid out as a flex row)
        expect(page.locator("header.topbar")).to_have_css("display", "flex")
        expect(page.locator("header.topbar .brand")).to_contain_text("Consultflow console")
        save_screenshot(page, "signin-refused", tmp_path)
        for test_id in ("whoami", "nav-tasks", "nav-operate", "nav-modeler"):
            expect(by(page, test_id)).to_have_count(0)
        # Whatever cookie the refusal left in the browser opens nothing.
        assert page.request.get(f"{base}/api/me").status == 401
        assert page.request.get(f"{base}/api/tasks").status == 401
        page.goto(f"{base}/#/tasks")
        expect(by(page, "task-list")).to_have_count(0)

    client = console_api(console_system, "cleo", **CLIENT)  # type: ignore[arg-type]
    try:
        assert "signin-refused" in client.signin.text
        assert client.get("/api/me").status_code == 401
        assert client.get("/api/instances").status_code == 401
    finally:
        client.close()


def test_staff_see_no_modeler(console_system: LocalSystem, browser: Browser, tmp_path: Path) -> None:
    base = console_url(console_system)
    with browser_page(browser) as page:
        sign_in(page, console_system, "bella")
        by(page, "lang-en").click()
        expect(by(page, "nav-tasks")).to_be_visible()
        expect(by(page, "nav-modeler")).to_have_count(0)
        page.goto(f"{base}/#/modeler")
        expect(by(page, "not-allowed")).to_have_text("You may not do this.")
        expect(by(page, "not-allowed")).to_be_visible()
        expect(by(page, "modeler")).to_have_count(0)
        expect(by(page, "modeler-deploy")).to_have_count(0)

    staff = console_api(console_system, "bella")
    try:
        me = staff.get("/api/me")
        assert me.status_code == 200, me.text
        assert me.json()["can"]["model"] is False and me.json()["can"]["deploy"] is False
        assert staff.get("/api/tasks").status_code == 200
        intake = (ROOT / "bpmn" / "intake.bpmn").read_text(encoding="utf-8")
        refused = staff.post(
            "/api/deployments", {"resources": [{"name": "intake.bpmn", "content": intake}], "note": "mine"}
        )
        assert refused.status_code == 403, refused.text
        assert refused.json()["error"]["code"] == "PERMISSION_DENIED"
    finally:
        staff.close()
