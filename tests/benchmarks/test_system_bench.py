"""The full-system benchmark (`make bench-system`): K demo engagements at once through every component
as processes, as `consultflow up --demo-timers` runs them (TLS, authorization and the sandbox on,
production durability). It prints figures and asserts only that every engagement ended as its story says.

K is CONSULTFLOW_BENCH_ENGAGEMENTS (default 20): the demo's stories repeated with fresh keys. They start at
once, or CONSULTFLOW_BENCH_START_RATE engagements a second (paced: the dispatch figures at a chosen load).
CONSULTFLOW_BENCH_ORCHESTRATORS runs that many orchestrator replicas (scale-out; meant for PostgreSQL).
The peak is the rate the cores could sustain at the measured CPU cost per job (see docs/performance.md);
a K large enough to keep the cores busy shows it measured too (CPU busy near 100 %). Runs on SQLite
and, when CONSULTFLOW_TEST_POSTGRES_URL is set, on PostgreSQL (one schema per component). It is skipped
unless CONSULTFLOW_BENCH_SYSTEM=1 (the make target sets it), so `make bench` stays short.
"""

from __future__ import annotations

import os
import resource
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path

import pytest

from consultflow.cli.demo import DEMO_TIMERS, demo_env
from consultflow.cli.system import LocalSystem
from consultflow.demo.checks import check
from consultflow.demo.driver import Clients, Driver, Story
from consultflow.demo.stories import stories
from tests.support.system_bench import (
    CpuMeter,
    component_databases,
    component_urls,
    job_latencies,
    percentile,
    raw_step_us,
    read_records,
)

pytestmark = [
    pytest.mark.benchmark,
    pytest.mark.timeout(3600),  # a paced or large run lasts longer than the suite's default
    pytest.mark.skipif(
        os.environ.get("CONSULTFLOW_BENCH_SYSTEM") != "1", reason="run by `make bench-system`"
    ),
]

ENGAGEMENTS = int(os.environ.get("CONSULTFLOW_BENCH_ENGAGEMENTS", "20"))
START_RATE = float(os.environ.get("CONSULTFLOW_BENCH_START_RATE", "0"))
"""Engagements started a second (0: all at once)."""
ORCHESTRATORS = int(os.environ.get("CONSULTFLOW_BENCH_ORCHESTRATORS", "1"))
"""Orchestrator replicas sharing the work by partition leases (docs/scale-out.md); their CPU is summed."""
CORES = os.cpu_count() or 1
IDLE_SECONDS = 10.0


def engagements(count: int) -> list[Story]:
    """`count` engagements: the demo's stories in turn, each round under its own run key."""
    run = uuid.uuid4().hex[:5]
    found: list[Story] = []
    round_ = 0
    while len(found) < count:
        found += stories(f"{run}{round_}")
        round_ += 1
    return found[:count]


def report(title: str, rows: list[tuple[str, str]]) -> None:
    width = max(len(k) for k, _ in rows)
    print(f"\n== {title}")
    for key, value in rows:
        print(f"   {key.ljust(width)}  {value}", flush=True)


def kb(sizes: tuple[float, int]) -> str:
    mean, top = sizes
    return f"{mean / 1000:.0f} KB, {top / 1000:.0f} KB"


def ms(values: list[float]) -> str:
    return f"p50 {percentile(values, 50) * 1000:7.1f} ms   p99 {percentile(values, 99) * 1000:7.1f} ms   (n={len(values)})"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database(request: pytest.FixtureRequest) -> Iterator[dict[str, str]]:
    """Per-component database URLs: {} is each component's default SQLite file."""
    yield from component_databases(request.param)


def test_full_system(tmp_path: Path, database: dict[str, str]) -> None:
    env = {name: {"CONSULTFLOW_DATABASE_URL": url} for name, url in database.items()}
    system = LocalSystem(
        tmp_path / "system",
        extra_env=demo_env(),
        marker=DEMO_TIMERS,
        component_env=env,
        replicas={"orchestrator": ORCHESTRATORS} if ORCHESTRATORS > 1 else {},
    )
    with ExitStack() as stack:
        stack.callback(system.stop)
        system.start()
        stop_supervising = threading.Event()
        stack.callback(stop_supervising.set)
        supervisor = _start_supervisor(system, stop_supervising)
        meter = CpuMeter(system)
        clients = Clients(system.endpoints())
        stack.callback(clients.close)
        all_stories = engagements(ENGAGEMENTS)
        meter.start()
        time.sleep(IDLE_SECONDS)  # what the system burns doing nothing: its polling loops
        idle = meter.mark()
        since = datetime.now(UTC)
        driver_before = resource.getrusage(resource.RUSAGE_SELF)
        started = time.monotonic()
        driver = PacedDriver(clients, all_stories, START_RATE)
        driver.start()
        driver.run(timeout=1800)
        wall = time.monotonic() - started
        driver_after = resource.getrusage(resource.RUSAGE_SELF)
        cpu = meter.stop()
        stop_supervising.set()
        supervisor.join()
        restarts = {n: c.restarts for n, c in system.children.items() if c.restarts}
        problems = {story.key: check(clients, story) for story in all_stories}
        records = read_records(component_urls(system, database), since)
    walk = max(1, round(records.engagement_steps))
    raw_us, raw_steps = raw_step_us(records.engagement_resources, records.sample_variables, walk)

    completed = sum(1 for problem in problems.values() if not problem)
    jobs = len(records.job_completed)
    driver_cpu = (driver_after.ru_utime + driver_after.ru_stime) - (
        driver_before.ru_utime + driver_before.ru_stime
    )
    system_cpu = sum(cpu.values())
    orchestrator_cpu = cpu.get("orchestrator", 0.0)
    per_step_us = orchestrator_cpu / max(records.steps, 1) * 1e6
    idle_orchestrator = idle.get("orchestrator", 0.0) / IDLE_SECONDS * wall
    busy_step_us = (orchestrator_cpu - idle_orchestrator) / max(records.steps, 1) * 1e6
    backend = "PostgreSQL" if database else "SQLite"
    if ORCHESTRATORS > 1:
        backend += f", {ORCHESTRATORS} orchestrators"
    pacing = f"{START_RATE:g} started a second" if START_RATE else "at once"
    cpu_per_job = system_cpu / max(jobs, 1)
    report(
        f"full system, {ENGAGEMENTS} engagements {pacing}, {backend}",
        [
            ("engagements ended as scripted", f"{completed} of {len(all_stories)}"),
            ("wall time", f"{wall:.1f} s"),
            ("jobs completed", f"{jobs}  ({jobs / wall:.1f} jobs/s)"),
            ("cores busy (system CPU ÷ wall time ÷ cores)", f"{system_cpu / wall / CORES:.0%} of {CORES}"),
            (
                "peak: jobs/s the cores sustain at this cost",
                f"{CORES / cpu_per_job:.1f} jobs/s  ({cpu_per_job * 1000:.0f} ms system CPU per job)",
            ),
            ("dispatch: created → published", ms(job_latencies(records.job_created, records.job_published))),
            (
                "dispatch: created → handled by the worker",
                ms(job_latencies(records.job_created, records.job_processed)),
            ),
            (
                "round trip: created → completion recorded",
                ms(job_latencies(records.job_created, records.job_completed)),
            ),
            ("user task created → completed by the driver", ms(records.task_latency)),
            (
                "orchestrated steps",
                f"{records.steps} in {records.instances} instances  ({records.steps / ENGAGEMENTS:.1f} per engagement; "
                f"{records.elements_completed / ENGAGEMENTS:.1f} elements completed per engagement)",
            ),
            (
                "an engagement's state at the end: written per step / whole (mean, max)",
                f"{kb(records.state_written)} / {kb(records.state_whole)}",
            ),
            *[
                (f"CPU {name}", f"{seconds:7.2f} s  ({seconds / ENGAGEMENTS:.3f} s per engagement)")
                for name, seconds in sorted(cpu.items(), key=lambda item: -item[1])
            ],
            (
                "idle CPU before the run (CPU s per s)",
                ", ".join(
                    f"{n} {v / IDLE_SECONDS:.3f}" for n, v in sorted(idle.items(), key=lambda i: -i[1])
                ),
            ),
            ("CPU the driver (this process)", f"{driver_cpu:7.2f} s  (not in the system's total)"),
            ("orchestrator's share of the system's CPU", f"{orchestrator_cpu / max(system_cpu, 1e-9):.0%}"),
            ("orchestrator CPU per orchestrated step", f"{per_step_us:.0f} µs"),
            (
                "raw SpiffWorkflow step, same diagrams",
                f"{raw_us:.0f} µs  ({raw_steps} steps, walks of {walk})",
            ),
            ("orchestrated step ÷ raw step", f"{per_step_us / raw_us:.2f} ×"),
            (
                "the same without the idle rate",
                f"{busy_step_us:.0f} µs per step  ({busy_step_us / raw_us:.2f} × raw)",
            ),
            ("restarts by the supervisor", str(restarts or "none")),
        ],
    )
    assert problems == {story.key: [] for story in all_stories}


class PacedDriver(Driver):
    """The demo's driver, starting the engagements `rate` a second (all at once when 0)."""

    def __init__(self, clients: Clients, stories: list[Story], rate: float) -> None:
        super().__init__(clients, [] if rate else stories)
        self.pending = list(stories) if rate else []
        self.interval = 1 / rate if rate else 0.0
        self.next_start = 0.0

    def start(self) -> None:
        if not self.pending:
            super().start()
        self.next_start = time.monotonic()

    def tick(self) -> None:
        while self.pending and time.monotonic() >= self.next_start:
            story = self.pending.pop(0)
            Driver(self.clients, [story]).start()
            self.stories[story.key] = story
            self.next_start += self.interval
        super().tick()

    def run(self, timeout: float = 600.0, poll: float = 0.25) -> None:
        deadline = time.monotonic() + timeout
        self.tick()
        while True:
            super().run(max(deadline - time.monotonic(), 0.0), poll)
            if not self.pending:
                return
            time.sleep(poll)
            self.tick()


def _start_supervisor(system: LocalSystem, stopping: threading.Event) -> threading.Thread:
    """The supervision loop `consultflow up` runs: a child that dies is restarted (and its CPU kept)."""
    thread = threading.Thread(
        target=system.supervise, args=(stopping.is_set,), name="supervisor", daemon=True
    )
    thread.start()
    return thread
