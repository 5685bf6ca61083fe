"""Console page load times with 10,000 instances in the system: prints figures, asserts nothing about
speed (`make bench`; the issue's goal is under a second per page).

The instances are of a tiny process with one open user task for business staff (so they also fill
bella's task list), created over gRPC from several threads. Each page is timed in headless chromium from
navigation (a fresh document) until the page's main data-testid is visible, and each JSON endpoint behind
the pages from request to the whole body read, both as the median of a few runs.
"""

from __future__ import annotations

import json
import os
import statistics
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page

from consultflow.api.orchestrator.v1 import orchestrator_pb2 as pb
from consultflow.api.orchestrator.v1 import orchestrator_pb2_grpc as pb_grpc
from tests.bpmn.modeler_tools import chromium
from tests.support.console import (
    ConsoleApi,
    browser_page,
    chromium_browser,
    console_api,
    console_url,
    deploy,
    sign_in,
    start_console_system,
)
from tests.support.console_diagrams import one_task
from tests.support.identity import signed_channel

pytestmark = pytest.mark.benchmark

PROCESS = "console_bench"
RUNS = 3


def create_instances(address: str, count: int, threads: int = 8) -> float:
    """Creates `count` instances of PROCESS; returns how many per second."""

    def create(numbers: range) -> None:
        with signed_channel(address) as channel:
            stub = pb_grpc.OrchestratorServiceStub(channel)
            for n in numbers:
                stub.CreateInstance(
                    pb.CreateInstanceRequest(
                        process_id=PROCESS, business_key=f"B{n:05d}", variables_json=json.dumps({"n": n})
                    )
                )

    started = time.monotonic()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(create, [range(i, count, threads) for i in range(threads)]))
    return count / (time.monotonic() - started)


def median_ms(measure: Callable[[], None], runs: int = RUNS) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        measure()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def page_load(page: Page, url: str, selector: str) -> None:
    """A fresh document at `url` until `selector` is visible."""
    page.goto("about:blank")
    page.goto(url)
    page.locator(selector).first.wait_for(timeout=60_000)


def search_instance(page: Page, key: str, instance_id: str) -> None:
    """Types a business key into the instance search until that instance's row shows."""
    box = page.get_by_test_id("instance-search")
    box.fill("")
    box.fill(key)
    box.press("Enter")
    page.locator(f'[data-testid="instance-row"][data-instance-id="{instance_id}"]').wait_for(timeout=60_000)


RESOURCE_TIMINGS = """() => performance.getEntriesByType('resource')
    .filter((e) => e.name.includes('/api/') && !e.name.includes('/api/events'))
    .map((e) => [e.name.split('/api/')[1], e.startTime, e.responseEnd])"""


def api_timeline(page: Page, url: str, selector: str) -> list[tuple[str, float, float]]:
    """The page's /api requests as the browser's network panel shows them (its resource timings): (path,
    start, end) in ms from navigation, until a moment after `selector` shows; requests that overlap ran
    together, one starting where another ends waited for it."""
    page_load(page, url, selector)
    page.wait_for_timeout(500)  # the requests still under way when the element showed
    return [(str(p), float(b), float(e)) for p, b, e in page.evaluate(RESOURCE_TIMINGS)]


def fetch(api: ConsoleApi, path: str) -> None:
    api.get(path).raise_for_status()


def check_plan(api: ConsoleApi, body: dict[str, Any]) -> None:
    api.post("/api/migrations/plan", body).raise_for_status()


def test_console_pages_with_ten_thousand_instances(tmp_path: Path) -> None:
    count = int(os.environ.get("CONSULTFLOW_BENCH_CONSOLE_INSTANCES", "10000"))
    chromium()  # skips without it, before starting anything
    system = start_console_system(tmp_path / "data")  # before playwright: start() runs asyncio
    try:
        with chromium_browser() as browser:
            address = system.children["orchestrator"].address
            with signed_channel(address) as channel:
                deploy(pb_grpc.OrchestratorServiceStub(channel), f"{PROCESS}.bpmn", one_task(PROCESS))
            rate = create_instances(address, count)
            middle = f"B{count // 2:05d}"
            with signed_channel(address) as channel:
                stub = pb_grpc.OrchestratorServiceStub(channel)
                sample = stub.ListInstances(pb.ListInstancesRequest(process_id=PROCESS, query=middle))
                instance_id = sample.instances[0].instance_id
                definition_id = sample.instances[0].definition_id
            base = console_url(system)
            pages = {
                "tasks (bella)": ("bella", "/#/tasks", '[data-testid="task-row"]'),
                "operate: process list": ("otto", "/#/operate", '[data-testid="process-row"]'),
                "operate: heat map": (
                    "otto",
                    f"/#/operate/processes/{PROCESS}",
                    '[data-testid="diagram"] .cf-count',
                ),
                "operate: a process's instances": (
                    "otto",
                    f"/#/operate/processes/{PROCESS}",
                    '[data-testid="instance-row"]',
                ),
                "operate: instance page": (
                    "otto",
                    f"/#/operate/instances/{instance_id}",
                    '[data-testid="diagram"] g.djs-element[data-element-id="bench_task"].cf-active',
                ),
                "operate: migrations (a process's plan)": (
                    "otto",
                    f"/#/operate/migrations/plan/{PROCESS}",
                    '[data-testid="mig-source-diagram"] .cf-count',
                ),
                "modeler: open a process": (
                    "ana",
                    f"/#/modeler/{definition_id}",
                    '[data-testid="modeler"] g.djs-element[data-element-id="bench_task"]',
                ),
            }
            browser_ms: dict[str, float] = {}
            timeline: list[tuple[str, float, float]] = []
            for title, (person, route, selector) in pages.items():
                with browser_page(browser) as page:
                    sign_in(page, system, person)
                    load = partial(page_load, page, f"{base}{route}", selector)
                    load()  # warm: the bundle in the browser's cache, the console's channels open
                    browser_ms[title] = median_ms(load)
                    if title == "operate: a process's instances":
                        timeline = api_timeline(page, f"{base}{route}", selector)
                        search = partial(search_instance, page, middle, instance_id)
                        search()
                        browser_ms["operate: search by business key"] = median_ms(search)

            endpoints = {
                "/api/me": "otto",
                "/api/tasks": "bella",
                "/api/definitions?latest_only=true": "otto",
                f"/api/processes/{PROCESS}/statistics": "otto",
                f"/api/instances?process_id={PROCESS}&page_size=50": "otto",
                f"/api/instances?query={middle[:-1]}": "otto",
                f"/api/instances/{instance_id}": "otto",
                f"/api/definitions/{definition_id}": "ana",
                "/api/operations": "ana",
                f"/api/migrations?process_id={PROCESS}": "otto",
            }
            api_ms: dict[str, tuple[float, int]] = {}
            for path, person in endpoints.items():
                api = console_api(system, person)
                try:
                    status = api.get(path).status_code
                    api_ms[path] = (median_ms(partial(fetch, api, path)), status)
                finally:
                    api.close()

            # the migration page's dry run: every open instance checked against a second version
            with signed_channel(address) as channel:
                second = one_task(PROCESS).replace("基準 Benchmark".encode(), "基準 Benchmark v2".encode())
                deploy(pb_grpc.OrchestratorServiceStub(channel), f"{PROCESS}.bpmn", second)
            plan = {
                "plan": {"source_definition_id": f"{PROCESS}:1", "target_definition_id": f"{PROCESS}:2"},
                "page_size": 500,
            }
            api = console_api(system, "otto")
            try:
                checked = api.post("/api/migrations/plan", plan)
                checked.raise_for_status()
                dry_run = (median_ms(partial(check_plan, api, plan)), checked)
            finally:
                api.close()
    finally:
        system.stop()

    print(f"\n== console pages with {count} open instances of {PROCESS} (created at {rate:.0f}/s)")
    width = max(len(t.replace(instance_id, "{id}")) for t in [*browser_ms, *api_ms])
    for title, ms in browser_ms.items():
        print(f"   {title.ljust(width)}  {ms:7.0f} ms  (navigation → main element visible, median of {RUNS})")
    print("   the instances page's requests (ms from navigation; overlapping ones ran together):")
    for path, begin, end in sorted(timeline, key=lambda r: r[1]):
        print(f"     {begin:6.0f} → {end:6.0f}  {path.replace(instance_id, '{id}')}")
    for path, (ms, status) in api_ms.items():
        shown = path.replace(instance_id, "{id}")
        print(f"   {shown.ljust(width)}  {ms:7.0f} ms  (HTTP {status}, median of {RUNS})")
    dry_ms, answer = dry_run
    print(
        f"   {'POST /api/migrations/plan (v1 → v2)'.ljust(width)}  {dry_ms:7.0f} ms  "
        f"({len(answer.json()['instances'])} of {answer.json()['selected']} instances checked per answer, "
        f"median of {RUNS})"
    )
