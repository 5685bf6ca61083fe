"""`consultflow demo`: sample engagements through the whole regulation, with live progress.

It uses the system at `--data-dir` when that one runs with the demo's timer settings (`consultflow up
--demo-timers`); otherwise it starts its own under `<data-dir>/demo` and stops it afterwards. Timers are
shortened by configuration (`consultflow/demo/timers.toml`), never by editing the diagrams.
"""

from __future__ import annotations

import argparse
import sys
import time
import uuid
from importlib import resources
from pathlib import Path

import grpc

from consultflow.cli import output as out
from consultflow.cli.system import LocalSystem, health_status, read_endpoints
from consultflow.demo.checks import check, figures
from consultflow.demo.driver import Clients, Driver, Story
from consultflow.demo.stories import stories

DEMO_TIMERS = "demo-timers"


def timers_file() -> Path:
    return Path(str(resources.files("consultflow.demo") / "timers.toml"))


def demo_env() -> dict[str, str]:
    return {"CONSULTFLOW_TIMER_OVERRIDES": str(timers_file()), "CONSULTFLOW_LOG_LEVEL": "WARNING"}


def running_demo_system(data_dir: Path) -> dict[str, str] | None:
    """The endpoints of a system at `data_dir` started with the demo's timers, if it answers."""
    try:
        endpoints = read_endpoints(data_dir)
    except FileNotFoundError:
        return None
    if endpoints.get("timers") != DEMO_TIMERS or "ca" not in endpoints:
        return None
    if health_status(endpoints["orchestrator"], Path(endpoints["ca"])) != 1:
        return None
    return endpoints


class Progress:
    """One line per engagement with where it waits now; redrawn in place on a terminal."""

    def __init__(self) -> None:
        self.tty = sys.stdout.isatty()
        self.lines = 0
        self.last: dict[str, str] = {}
        self.started = time.monotonic()

    def show(self, all_stories: list[Story]) -> None:
        rows = []
        for story in all_stories:
            state = story.outcome or (
                "waiting at " + ", ".join(story.waiting[:3]) if story.waiting else "starting"
            )
            rows.append(f"{story.key:<28} {state}"[:150])
        if self.tty:
            if self.lines:
                sys.stdout.write(f"\x1b[{self.lines}F")
            for row in rows:
                sys.stdout.write("\x1b[2K" + row + "\n")
            sys.stdout.write(f"\x1b[2K{time.monotonic() - self.started:6.1f}s\n")
            self.lines = len(rows) + 1
            sys.stdout.flush()
            return
        for story, row in zip(all_stories, rows, strict=True):
            if self.last.get(story.key) != row:
                print(f"{time.monotonic() - self.started:6.1f}s  {row}", flush=True)
                self.last[story.key] = row


def run(args: argparse.Namespace) -> int:
    data_dir: Path = args.data_dir
    endpoints = running_demo_system(data_dir)
    system: LocalSystem | None = None
    if endpoints is None:
        folder = data_dir / "demo"
        print(f"starting a demo system in {folder} (timers shortened by {timers_file().name}) …", flush=True)
        system = LocalSystem(folder, extra_env=demo_env(), marker=DEMO_TIMERS)
        try:
            endpoints = system.start()
        except Exception as error:
            out.error(f"could not start the demo system: {error}")
            system.stop()
            return out.EXIT_UNAVAILABLE
    clients = Clients(endpoints)
    run_id = uuid.uuid4().hex[:6]
    engagements = stories(run_id)
    driver = Driver(clients, engagements, on_progress=Progress().show)
    try:
        driver.start()
        driver.run(timeout=args.timeout)
        return report(clients, engagements)
    except TimeoutError as error:
        out.error(str(error))
        return out.EXIT_ERROR
    except grpc.RpcError as error:
        code, details = out.rpc_failure(error)
        out.error(f"a component refused the demo's request ({code.name}): {details}")
        return out.EXIT_ERROR
    finally:
        clients.close()
        if system is not None and not args.keep_running:
            system.stop()
        elif system is not None:
            print(f"the demo system keeps running: consultflow --data-dir {data_dir / 'demo'} instances")


def report(clients: Clients, engagements: list[Story]) -> int:
    failures = 0
    for story in engagements:
        print(f"\n== {story.key}: {story.title}")
        start = story.steps[0][0] if story.steps else 0.0
        for moment, step in story.steps:
            print(f"   {moment - start:6.1f}s  {step}")
        numbers = figures(clients, story)
        if numbers.satisfaction_score is not None:
            print(f"   satisfaction score: {numbers.satisfaction_score:.1f} / 100")
        if numbers.indicators:
            print(f"   indicators: {numbers.indicators}")
        print(f"   risks by level: {numbers.risks_by_level}")
        problems = check(clients, story)
        if problems:
            failures += 1
            for problem in problems:
                print(f"   ✗ {problem}")
        else:
            print(f"   ✓ ended as scripted: {story.outcome}")
    print(f"\n{len(engagements) - failures} of {len(engagements)} engagements ended as scripted")
    return out.EXIT_OK if failures == 0 else out.EXIT_ERROR
