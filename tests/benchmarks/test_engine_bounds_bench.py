"""Engine-bounds benchmarks: they print figures and assert nothing about speed (`make bench`).

1. A chain of `max_path_length` (2,000) script tasks: deploy, start, then every later step loaded from its
   stored state (no cache), in bounded transactions: steps, the longest step, the total.
2. A parallel multi-instance of 1,000 and of 5,000 branches (the limit raised): transactions and the longest.
3. Another caller's deploy, start and cancel while each of those runs (the latency liveness tests bound).
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from consultflow.platform.limits import Limits
from tests.hostile.test_engine import chain, other_caller
from tests.support.bpmn_builder import bpmn
from tests.support.liveness import Background
from tests.support.orchestrator_harness import Harness

pytestmark = pytest.mark.benchmark


def run_steps(harness: Harness, instance_id: str, cached: bool = True) -> tuple[int, float, float]:
    """Fires continuation rows until the instance ends: (steps, longest step s, total s)."""
    steps, longest, started = 0, 0.0, time.perf_counter()
    while harness.status(instance_id) == "ACTIVE" and steps < 5000:
        if not cached:
            harness.orchestrator._cache._items.clear()  # every step loads the stored state
        before = time.perf_counter()
        harness.orchestrator.fire_due_timers()
        longest = max(longest, time.perf_counter() - before)
        steps += 1
        time.sleep(0.1)  # continuation rows come due 100 ms after their step
    return steps, longest, time.perf_counter() - started


def probe_latencies(harness: Harness, work: Background) -> list[float]:
    latencies = []
    while work.running:
        before = time.perf_counter()
        other_caller(harness)
        latencies.append(time.perf_counter() - before)
        time.sleep(0.5)
    return latencies


def report(what: str, harness: Harness, instance_id: str, cached: bool = True) -> None:
    work = Background(lambda: run_steps(harness, instance_id, cached))
    latencies = probe_latencies(harness, work)
    steps, longest, total = work.join(600)
    print(
        f"\n{what}: {harness.status(instance_id)} after {steps} steps in {total:.1f} s, longest step "
        f"{longest * 1000:.0f} ms; another caller's deploy+start+cancel: max "
        f"{max(latencies, default=0) * 1000:.0f} ms over {len(latencies)} probes"
    )


def test_a_chain_as_long_as_the_path_limit(tmp_path: Path) -> None:
    harness = Harness.sqlite(tmp_path)
    began = time.perf_counter()
    harness.deploy(long=chain("long", 2000))
    deployed = time.perf_counter()
    instance_id = harness.start("long")
    print(f"\nchain 2000: deploy {deployed - began:.2f} s, start {time.perf_counter() - deployed:.2f} s")
    report("chain 2000 (state loaded every step)", harness, instance_id, cached=False)
    harness.close()


@pytest.mark.parametrize("branches", [1000, 5000])
def test_a_wide_multi_instance(tmp_path: Path, branches: int) -> None:
    harness = Harness.sqlite(tmp_path, limits=Limits(max_fan_out=branches))
    nodes = (
        '<startEvent id="s"/><scriptTask id="each"><multiInstanceLoopCharacteristics>'
        "<loopCardinality>n</loopCardinality></multiInstanceLoopCharacteristics><script>y = 1</script>"
        '</scriptTask><endEvent id="e"/>'
    )
    harness.deploy(wide=bpmn("wide", nodes, "s -> each\neach -> e"))
    instance_id = harness.start("wide", n=branches)
    report(f"multi-instance of {branches}", harness, instance_id)
    harness.close()
