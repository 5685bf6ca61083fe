"""The built front end in a real chromium under the console's own Content-Security-Policy: it runs with no
inline script (a CSP violation fails the test), and its live feed comes back by itself after the server
answered it with an error (503 while NATS was down), which EventSource alone never retries."""

from __future__ import annotations

import html
from pathlib import Path

from playwright.sync_api import expect

from consultflow.api.orchestrator.v1 import orchestrator_pb2 as pb
from consultflow.cli.system import free_port
from consultflow.console.app import build
from tests.integration.console.conftest import Console, console_settings, serving
from tests.support.bpmn_builder import bpmn, bpmn_folder
from tests.support.console import browser_page, chromium_browser
from tests.support.nats import late_nats_server, provision_open
from tests.support.system import in_process_system


def test_the_page_runs_under_its_csp_and_its_feed_returns_once_nats_is_up(tmp_path: Path) -> None:
    port = free_port()
    nats_url = f"nats://127.0.0.1:{port}"
    settings = console_settings(tmp_path, nats_url, {})
    with (
        serving(build(settings), settings.listen_port) as url,
        chromium_browser() as browser,
        browser_page(browser) as page,
    ):
        console = Console(url, settings, None)  # type: ignore[arg-type]  # the page needs no components
        violations: list[str] = []
        page.on(
            "console",
            lambda message: (
                violations.append(message.text) if "Content Security Policy" in message.text else None
            ),
        )
        page.goto(url + console.link("otto"))
        expect(page.get_by_test_id("whoami")).to_contain_text("otto")
        expect(page.locator("body.offline")).to_have_count(1)  # the feed answered 503
        with late_nats_server(port, tmp_path / "nats"):
            expect(page.locator("body.offline")).to_have_count(0, timeout=90_000)
        assert not violations, violations


PAYLOAD = '<img src=x data-xss=1 onerror="window.__xss=1"><script>window.__xss=2</script>'
MARKUP = html.escape(PAYLOAD, quote=True)  # as an analyst would type it into a name in the modeler
XSS = bpmn(
    "xss",
    f"""<startEvent id="s" name="{MARKUP}"/>
    <userTask id="t" name="{MARKUP}" camunda:candidateGroups="business">
    <documentation>{MARKUP}</documentation>
    <extensionElements><camunda:formData>
    <camunda:formField id="choice" label="{MARKUP}" type="enum">
    <camunda:value id="a" name="{MARKUP}"/></camunda:formField>
    <camunda:formField id="note" label="{MARKUP}" type="string"/>
    </camunda:formData></extensionElements></userTask><endEvent id="e" name="{MARKUP}"/>""",
    "s -> t\nt -> e",
)


def test_an_analysts_markup_in_names_documentation_labels_and_keys_is_shown_as_text(
    tmp_path: Path, nats_session_url: str
) -> None:
    """What an analyst wrote into a diagram (and a business key anyone starting an instance chose) reaches
    staff and ops screens as text: no element of theirs is made, no script of theirs runs."""
    provision_open(nats_session_url)
    folder = bpmn_folder(tmp_path, {"xss": XSS})
    with in_process_system(tmp_path, nats_session_url, services=(), bpmn_dir=folder) as system:
        addresses = {name: component.address for name, component in system.components.items()}
        settings = console_settings(tmp_path, nats_session_url, addresses)
        instance_id = system.orchestrator.CreateInstance(
            pb.CreateInstanceRequest(process_id="xss", business_key=PAYLOAD)
        ).instance_id
        with (
            serving(build(settings), settings.listen_port) as url,
            chromium_browser() as browser,
        ):
            console = Console(url, settings, system)
            for person, route in [
                ("bella", "#/tasks"),
                ("otto", f"#/operate/instances/{instance_id}"),
                ("otto", "#/operate/processes/xss"),
                ("otto", "#/operate"),
            ]:
                with browser_page(browser) as page:
                    page.goto(url + console.link(person))
                    expect(page.get_by_test_id("whoami")).to_contain_text(person)
                    page.goto(f"{url}/{route}")
                    if route == "#/tasks":
                        page.get_by_test_id("task-row").first.click()
                        expect(page.get_by_test_id("task-doc")).to_contain_text("<script>")
                    else:
                        expect(page.locator("main")).to_contain_text("<img", timeout=30_000)
                    assert page.locator("[data-xss]").count() == 0, route
                    assert page.evaluate("window.__xss") is None, route
