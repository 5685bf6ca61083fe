"""Deploy-time shape checks (orchestrator/structure.py): what they cost. Prints figures, asserts nothing
about speed (`make bench`).

1. the biggest diagram of the regulation (bpmn/), beside what parsing it with SpiffWorkflow costs;
2. a chain of exactly `max_path_length` (2,000) elements, the longest path a deploy accepts;
3. a hostile diagram near the 2 MiB resource limit (17,000 tasks in a loop that never waits), refused.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import pytest

from consultflow.orchestrator import engine, structure
from consultflow.platform.limits import DEFAULT_LIMITS
from consultflow.platform.settings import repository_root
from tests.support.bpmn_builder import bpmn

pytestmark = pytest.mark.benchmark

RUNS = 15


def median_ms(fn: Callable[[], object], runs: int = RUNS) -> float:
    fn()  # warm up
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def checks(resources: dict[str, bytes]) -> Callable[[], object]:
    """The checks alone, on trees parsed once (a deploy parses the XML anyway)."""
    trees = {n: engine.parse_xml(n, c) for n, c in resources.items()}

    return lambda: structure.first_problem(trees, DEFAULT_LIMITS)


def chain(elements: int) -> bytes:
    tasks = elements - 2
    nodes = (
        '<startEvent id="s"/>'
        + "".join(f'<userTask id="t{i}"/>' for i in range(tasks))
        + '<endEvent id="e"/>'
    )
    flows = ["s -> t0", *(f"t{i} -> t{i + 1}" for i in range(tasks - 1)), f"t{tasks - 1} -> e"]
    return bpmn("chain", nodes, "\n".join(flows))


def test_deploy_checks_cost() -> None:
    folder = repository_root() / "bpmn"
    diagrams = {p.name: p.read_bytes() for p in folder.glob("*.bpmn")}
    biggest = max(diagrams, key=lambda n: diagrams[n].count(b"<bpmn:"))
    decisions = {p.name: p.read_bytes() for p in folder.glob("*.dmn")}
    everything = {**diagrams, **decisions}
    long = chain(DEFAULT_LIMITS.max_path_length)
    count = 17_000
    nodes = '<startEvent id="s"/>' + "".join(f'<task id="t{i}"/>' for i in range(count))
    flows = ["s -> t0", *(f"t{i} -> t{i + 1}" for i in range(count - 1)), f"t{count - 1} -> t0"]
    huge = bpmn("huge", nodes, "\n".join(flows))
    rows = [
        (
            f"{biggest} ({len(diagrams[biggest]) // 1024} KiB): checks",
            median_ms(checks({biggest: diagrams[biggest]})),
        ),
        (f"{biggest}: XML parse", median_ms(lambda: engine.parse_xml(biggest, diagrams[biggest]))),
        (
            f"{biggest}: whole parse_resources (with checks)",
            median_ms(
                lambda: engine.parse_resources(
                    {biggest: diagrams[biggest], **decisions}, checks=DEFAULT_LIMITS
                ),
                5,
            ),
        ),
        ("all of bpmn/: checks", median_ms(checks(everything))),
        (
            f"chain of {DEFAULT_LIMITS.max_path_length} elements ({len(long) // 1024} KiB): checks",
            median_ms(checks({"chain.bpmn": long})),
        ),
        (
            f"chain of {DEFAULT_LIMITS.max_path_length} elements: XML parse",
            median_ms(lambda: engine.parse_xml("chain.bpmn", long)),
        ),
        (
            f"hostile {len(huge) // 1024} KiB, {count} tasks: checks (refused)",
            median_ms(checks({"huge.bpmn": huge}), 5),
        ),
        (
            f"hostile {len(huge) // 1024} KiB: XML parse",
            median_ms(lambda: engine.parse_xml("huge.bpmn", huge), 5),
        ),
    ]
    width = max(len(k) for k, _ in rows)
    print("\n== deploy-time shape checks (median ms)")
    for key, value in rows:
        print(f"   {key.ljust(width)}  {value:8.1f} ms")
