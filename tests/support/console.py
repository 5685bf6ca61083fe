"""The console as a person meets it, for browser tests: the whole system as `consultflow up` runs it,
Debian's chromium driven by playwright, sign-in through the local one-time link, and screenshots.

Signing in goes through `consultflow console --as NAME --print` (the command a person runs), so the tests
exercise the same ticket path; the link is opened in the browser, which then holds the session cookie.
`ConsoleApi` does the same with an HTTP client, for checks of the JSON API itself (status codes, CSRF).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, expect, sync_playwright

from consultflow.api.orchestrator.v1 import orchestrator_pb2 as pb
from consultflow.api.orchestrator.v1 import orchestrator_pb2_grpc as pb_grpc
from consultflow.cli.system import ENDPOINTS_FILE, LocalSystem
from tests.bpmn.modeler_tools import chromium
from tests.bpmn.test_browser import CHROMIUM_ARGS
from tests.support.identity import local_identity, signed_channel
from tests.support.polling import eventually

ROOT = Path(__file__).resolve().parents[2]
IMAGES = ROOT / "docs" / "images"
SCREENSHOTS = "CONSULTFLOW_SCREENSHOTS"
VIEWPORT = {"width": 1440, "height": 900}
UI_TIMEOUT_MS = 15_000  # a page element the test waits for; the system runs on 2 shared cores in CI
LINK = re.compile(r"https?://\S+/signin\?ticket=\S+")


def start_console_system(data_dir: Path, extra_env: Mapping[str, str] | None = None) -> LocalSystem:
    """NATS, the orchestrator, the five services and the console as child processes (as `consultflow
    up` starts them), signed by the tests' own local identity."""
    env = {"CONSULTFLOW_LOG_LEVEL": "WARNING", **(extra_env or {})}
    system = LocalSystem(data_dir, extra_env=env, identity=local_identity())
    # Before playwright starts (its sync API keeps an event loop running in this thread, and start() runs
    # asyncio), and from this thread: the children die with the thread that started them (PDEATHSIG).
    system.start()
    return system


def console_url(system: LocalSystem) -> str:
    """The console's base URL as `consultflow up` wrote it to endpoints.json."""
    written: dict[str, str] = json.loads((system.data_dir / ENDPOINTS_FILE).read_text())
    url = written.get("console") or system.endpoints().get("console", "")
    if not url:
        pytest.fail(
            f"endpoints.json has no 'console' entry: the system did not start the console ({written})"
        )
    return url if url.startswith("http") else f"http://{url}"


def sign_in_link(
    system: LocalSystem,
    name: str,
    roles: Iterable[str] = (),
    groups: Iterable[str] = (),
    engagement: str = "",
) -> str:
    """A one-time sign-in link from `consultflow console --as NAME --print` (people.toml's roles unless
    `roles` are given)."""
    command = [
        sys.executable,
        "-m",
        "consultflow.cli.main",
        "--data-dir",
        str(system.data_dir),
        "console",
        "--as",
        name,
        "--print",
    ]
    if roles:
        command += ["--roles", ",".join(roles)]
    if groups:
        command += ["--groups", ",".join(groups)]
    if engagement:
        command += ["--engagement", engagement]
    done = subprocess.run(command, capture_output=True, text=True, timeout=30, check=False)
    found = LINK.search(done.stdout)
    assert done.returncode == 0 and found, (
        f"`consultflow console --as {name} --print` exited {done.returncode}: {done.stdout}{done.stderr}"
    )
    return found.group(0)


def sign_in(
    page: Page,
    system: LocalSystem,
    name: str,
    roles: Iterable[str] = (),
    groups: Iterable[str] = (),
    engagement: str = "",
) -> None:
    """Opens a fresh sign-in link in `page` and waits until the console greets the person."""
    page.goto(sign_in_link(system, name, roles, groups, engagement))
    by(page, "whoami").wait_for(timeout=UI_TIMEOUT_MS)


def by(page: Page, test_id: str) -> Any:
    """The element(s) with data-testid=`test_id` (the console's DOM contract for tests)."""
    return page.get_by_test_id(test_id)


def in_diagram(page: Page, element_id: str, marker: str = "") -> Any:
    """A BPMN element's shape on the page's diagram, optionally only while it carries `marker` (a CSS
    class such as cf-incident that the console puts on the shape)."""
    suffix = f".{marker}" if marker else ""
    return page.locator(f'[data-testid="diagram"] g.djs-element[data-element-id="{element_id}"]{suffix}')


def save_screenshot(page: Page, name: str, tmp_dir: Path) -> Path:
    """The page as the person sees it: docs/images/console-<name>.png with CONSULTFLOW_SCREENSHOTS=1
    (`make console-screenshots`), else in the test's temporary folder (taken either way, so a broken
    page fails the same in both runs)."""
    folder = IMAGES if os.environ.get(SCREENSHOTS) == "1" else tmp_dir
    path = folder / f"console-{name}.png"
    page.evaluate("document.fonts.ready.then(() => true)")  # not networkidle: the event stream stays open
    page.screenshot(path=str(path), animations="disabled")
    return path


@contextmanager
def chromium_browser() -> Iterator[Browser]:
    """Debian's chromium, headless and offline (skips where it is not installed)."""
    executable = chromium()
    playwright: Playwright
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        expect.set_options(timeout=UI_TIMEOUT_MS)
        try:
            yield browser
        finally:
            expect.set_options(timeout=5_000)  # playwright's default, for other tests in the session
            browser.close()


@contextmanager
def browser_page(browser: Browser, language: str = "en-US") -> Iterator[Page]:
    """A page in a context of its own (its own cookies: one person per page), 1440x900. A script error
    on the page fails the test."""
    context: BrowserContext = browser.new_context(
        viewport=VIEWPORT,  # type: ignore[arg-type]
        locale=language,
        timezone_id="Asia/Taipei",
    )
    context.set_default_timeout(UI_TIMEOUT_MS)
    errors: list[str] = []
    page = context.new_page()
    page.on("pageerror", lambda error: errors.append(str(error)))
    try:
        yield page
    finally:
        context.close()
    assert not errors, f"the page raised: {errors}"


class ConsoleApi:
    """The console's JSON API as one signed-in person, over HTTP (the session cookie and CSRF token a
    browser would hold)."""

    def __init__(self, base_url: str, link: str) -> None:
        self.http = httpx.Client(base_url=base_url, follow_redirects=True, timeout=30)
        self.signin = self.http.get(link)
        self.csrf = ""
        me = self.http.get("/api/me")
        if me.status_code == 200:
            self.csrf = str(me.json().get("csrf_token", ""))

    def get(self, path: str, **params: Any) -> httpx.Response:
        return self.http.get(path, params=params)

    def post(self, path: str, body: Mapping[str, Any] | None = None) -> httpx.Response:
        return self.http.post(path, json=dict(body or {}), headers={"X-CSRF-Token": self.csrf})

    def close(self) -> None:
        self.http.close()


def console_api(
    system: LocalSystem,
    name: str,
    roles: Iterable[str] = (),
    groups: Iterable[str] = (),
    engagement: str = "",
) -> ConsoleApi:
    return ConsoleApi(console_url(system), sign_in_link(system, name, roles, groups, engagement))


@contextmanager
def orchestrator(system: LocalSystem, as_: str = "root") -> Iterator[pb_grpc.OrchestratorServiceStub]:
    """The orchestrator over gRPC as `as_`: what the tests do beside the browser (start engagements,
    complete a task "elsewhere")."""
    channel: grpc.Channel = signed_channel(system.children["orchestrator"].address, as_)
    try:
        yield pb_grpc.OrchestratorServiceStub(channel)
    finally:
        channel.close()


def open_task(
    stub: pb_grpc.OrchestratorServiceStub, business_key: str, element_id: str, timeout: float = 30.0
) -> pb.UserTask:
    """The open user task `element_id` of the engagement `business_key` (in whichever of its instances),
    once the engine has reached it."""

    def reached() -> pb.UserTask | None:
        tasks = stub.ListUserTasks(pb.ListUserTasksRequest(page_size=500)).user_tasks
        return next((t for t in tasks if t.business_key == business_key and t.element_id == element_id), None)

    return eventually(reached, f"task {element_id} of {business_key}", timeout, 0.2)


def wait_instance(
    stub: pb_grpc.OrchestratorServiceStub, instance_id: str, what: str, done: Any, timeout: float = 30.0
) -> pb.Instance:
    def probe() -> pb.Instance | None:
        instance = stub.GetInstance(pb.GetInstanceRequest(instance_id=instance_id))
        return instance if done(instance) else None

    return eventually(probe, f"instance {instance_id}: {what}", timeout, 0.2)


def fill_field(page: Page, field_id: str, value: str | bool) -> None:
    """Puts `value` into the task form's field-<id>, whatever kind of input the form rendered for it."""
    field = by(page, f"field-{field_id}")
    kind = field.evaluate("e => e.tagName.toLowerCase() + ':' + (e.getAttribute('type') || '')")
    if kind.startswith("select"):
        field.select_option(str(value))
    elif kind == "input:checkbox":
        field.set_checked(bool(value))
    else:
        field.fill(str(value))


def start_engagement(stub: pb_grpc.OrchestratorServiceStub, key: str) -> str:
    """A new engagement as the demo starts one (demo/driver.py): the inquiry's variables, keyed `key`."""
    from consultflow.demo.stories import inquiry

    variables = {
        "engagement_id": key,
        **inquiry(f"測試客戶 Client {key}", "Lin Mei", "lin.mei@example.com", "Shorter delivery times"),
    }
    created = stub.CreateInstance(
        pb.CreateInstanceRequest(
            process_id="engagement", business_key=key, variables_json=json.dumps(variables)
        )
    )
    return created.instance_id


def deploy(stub: pb_grpc.OrchestratorServiceStub, name: str, content: bytes, note: str = "") -> None:
    stub.DeployResources(
        pb.DeployResourcesRequest(resources=[pb.Resource(name=name, content=content)], note=note)
    )
