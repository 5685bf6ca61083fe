"""Overload: 2,000 concurrent CreateInstance calls, each answered OK or refused with a retry hint, none
CANCELLED (issue 14: "48 of 2,000 concurrent CreateInstance calls came back CANCELLED with nothing in any
log"). The callers run in their own process, as real clients would. Prints the outcomes and latencies;
`BENCH_CALLS`, `BENCH_CHANNELS`, `BENCH_TIMEOUT` vary the load."""

from __future__ import annotations

import asyncio
import collections
import multiprocessing
import os
import time
from pathlib import Path
from typing import cast

import grpc
import pytest

from consultflow.api.orchestrator.v1 import orchestrator_pb2 as pb
from consultflow.api.orchestrator.v1 import orchestrator_pb2_grpc as pb_grpc
from consultflow.platform.security import secure_aio_channel
from tests.support.bpmn_builder import bpmn
from tests.support.identity import local_identity, token
from tests.support.system import in_process_system

pytestmark = pytest.mark.benchmark

CALLS = int(os.environ.get("BENCH_CALLS", "2000"))
CHANNELS = int(os.environ.get("BENCH_CHANNELS", "100"))
TIMEOUT = float(os.environ.get("BENCH_TIMEOUT", "5"))

Outcomes = dict[str, list[float]]


def waiting_process(tmp_path: Path) -> Path:
    folder = tmp_path / "bpmn"
    folder.mkdir()
    nodes = '<startEvent id="s"/><userTask id="u"/><endEvent id="e"/>'
    (folder / "wait.bpmn").write_bytes(bpmn("wait", nodes, "s -> u\nu -> e"))
    return folder


async def burst(address: str, ca: Path, bearer: str) -> tuple[Outcomes, float]:
    """Sends CALLS CreateInstance calls at once over CHANNELS channels; latencies by outcome."""
    channels = [secure_aio_channel(address, ca, bearer) for _ in range(CHANNELS)]
    stubs = [pb_grpc.OrchestratorServiceStub(c) for c in channels]
    outcomes: Outcomes = collections.defaultdict(list)

    async def one(i: int) -> None:
        started = time.perf_counter()
        try:
            request = pb.CreateInstanceRequest(process_id="wait", business_key=f"k{i}")
            await stubs[i % CHANNELS].CreateInstance(request, timeout=TIMEOUT)
            outcome = "OK"
        except grpc.aio.AioRpcError as error:
            outcome = f"{error.code().name}: {(error.details() or '')[:70]}"
        outcomes[outcome].append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(CALLS)))
    elapsed = time.perf_counter() - started
    for channel in channels:
        await channel.close()
    return dict(outcomes), elapsed


def client_process(address: str, ca: Path, bearer: str, results: multiprocessing.Queue[object]) -> None:
    results.put(asyncio.run(burst(address, ca, bearer)))


def test_a_burst_of_creates_is_answered_not_cancelled(tmp_path: Path, nats_url: str) -> None:
    with in_process_system(tmp_path, nats_url, services=(), bpmn_dir=waiting_process(tmp_path)) as system:
        spawn = multiprocessing.get_context("spawn")
        results: multiprocessing.Queue[object] = spawn.Queue()
        address = system.components["orchestrator"].address
        client = spawn.Process(target=client_process, args=(address, local_identity().ca, token(), results))
        client.start()
        outcomes, elapsed = cast(tuple[Outcomes, float], results.get(timeout=300))
        client.join(30)
    print(
        f"\n== {CALLS} concurrent CreateInstance over {CHANNELS} channels, {TIMEOUT:g} s deadline: {elapsed:.1f} s"
    )
    for outcome, times in sorted(outcomes.items(), key=lambda item: -len(item[1])):
        times.sort()
        print(
            f"   {len(times):5d}  {outcome}  (p50 {times[len(times) // 2] * 1000:.0f} ms, max {times[-1] * 1000:.0f} ms)"
        )
    assert not [o for o in outcomes if o.startswith("CANCELLED")], "a call was dropped without an answer"
