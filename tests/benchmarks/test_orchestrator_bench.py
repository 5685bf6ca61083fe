"""Orchestrator benchmarks: they print figures and assert nothing about speed (`make bench`).

Each figure is printed beside the raw SpiffWorkflow baseline measured in the same run:
1. raw in-memory step (load, complete one task, engine steps, save) vs one orchestrated step (commit included);
2. sustained job completions per second, the orchestrator as its own process with workers that answer at once;
3. job dispatch latency (task reached → worker has it) at half that rate;
4. 10,000 instances waiting on timers and messages: RSS, timer lateness, restart until serving.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import nats
import pytest
from nats.aio.msg import Msg
from nats.js.api import AckPolicy, ConsumerConfig

from consultflow.api.events.v1 import events_pb2
from consultflow.api.orchestrator.v1 import orchestrator_pb2 as pb
from consultflow.api.orchestrator.v1 import orchestrator_pb2_grpc as pb_grpc
from consultflow.cli.system import LocalSystem, health_status
from consultflow.orchestrator import engine
from consultflow.platform.scripting import ScriptEngine
from tests.support.bpmn_builder import bpmn, message, service_task
from tests.support.identity import local_identity, signed_aio_channel, signed_channel
from tests.support.orchestrator_harness import Harness

pytestmark = pytest.mark.benchmark

CHAIN = 20


def chain(process_id: str = "chain", length: int = CHAIN, operation: str = "bench.op") -> bytes:
    nodes = (
        '<startEvent id="s"/>'
        + "".join(service_task(f"t{i}", operation) for i in range(length))
        + '<endEvent id="e"/>'
    )
    flows = "s -> t0\n" + "\n".join(f"t{i} -> t{i + 1}" for i in range(length - 1)) + f"\nt{length - 1} -> e"
    return bpmn(process_id, nodes, flows)


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def report(title: str, rows: list[tuple[str, str]]) -> None:
    width = max(len(k) for k, _ in rows)
    print(f"\n== {title}")
    for key, value in rows:
        print(f"   {key.ljust(width)}  {value}")


# ------------------------------------------------------------------------------- 1. step vs raw Spiff


def raw_spiff_step_ms(steps: int = 400) -> float:
    """Load a half-done instance from its state, complete one service task, run the engine, save."""
    specs = engine.parse_resources({"chain.bpmn": chain()})["chain"]
    script_engine = ScriptEngine()
    workflow = engine.new_workflow(specs, script_engine, {})
    workflow.do_engine_steps()
    state = engine.SERIALIZER.serialize_json(workflow)  # Spiff's own, without the orchestrator's memo
    started = time.perf_counter()
    for n in range(steps):
        workflow = engine.load_state(state, specs, script_engine)
        task = next(iter(engine.snapshot(workflow).service_tasks.values())).task
        task.data["x"] = n
        task.complete()
        workflow.do_engine_steps()
        state = engine.SERIALIZER.serialize_json(workflow)
        if workflow.is_completed():
            workflow = engine.new_workflow(specs, script_engine, {})
            workflow.do_engine_steps()
            state = engine.SERIALIZER.serialize_json(workflow)
    return (time.perf_counter() - started) / steps * 1000


def orchestrated_step_ms(tmp_path: Path, steps: int = 400, cache_size: int = 1000) -> float:
    harness = Harness.sqlite(tmp_path, cache_size=cache_size)
    harness.deploy(chain=chain())
    instances = [harness.start("chain") for _ in range(steps // CHAIN + 1)]
    keys = [harness.jobs(i)[0].job_key for i in instances]
    done = 0
    elapsed = 0.0
    while done < steps:
        next_keys = []
        for key in keys:
            started = time.perf_counter()
            harness.orchestrator.complete_job(key, {"x": done})
            elapsed += time.perf_counter() - started
            done += 1
            instance_id = key.split(".", 1)[0]
            jobs = harness.jobs(instance_id)
            if jobs:
                next_keys.append(jobs[0].job_key)
            if done >= steps:
                break
        keys = next_keys
    harness.close()
    return elapsed / done * 1000


def test_step_cost_against_raw_spiff(tmp_path: Path) -> None:
    raw = raw_spiff_step_ms()
    cached = orchestrated_step_ms(tmp_path / "cached")
    uncached = orchestrated_step_ms(tmp_path / "uncached", cache_size=0)
    report(
        f"one step on a {CHAIN}-task chain (SQLite, commit included)",
        [
            ("raw SpiffWorkflow load+complete+save", f"{raw:.2f} ms"),
            ("orchestrated step, instance cached", f"{cached:.2f} ms  ({cached / raw:.2f} × raw)"),
            ("orchestrated step, loaded from state", f"{uncached:.2f} ms  ({uncached / raw:.2f} × raw)"),
        ],
    )


# ----------------------------------------------------------------- 2 and 3: throughput and latency


@pytest.fixture
def orchestrator_process(tmp_path: Path) -> Iterator[LocalSystem]:
    bpmn_dir = tmp_path / "bpmn"
    bpmn_dir.mkdir()
    (bpmn_dir / "chain.bpmn").write_bytes(chain())
    (bpmn_dir / "one.bpmn").write_bytes(chain("one", 1))
    system = LocalSystem(
        tmp_path / "data",
        identity=local_identity(),
        extra_env={"CONSULTFLOW_BPMN_DIR": str(bpmn_dir), "CONSULTFLOW_LOG_LEVEL": "WARNING"},
        components=("orchestrator",),
    )
    system.start()
    yield system
    system.stop()


class InstantWorker:
    """A worker that completes every `jobs.bench.>` job at once and records when it saw each."""

    def __init__(self, nats_url: str, orchestrator: str) -> None:
        self.nats_url = nats_url
        self.orchestrator = orchestrator
        self.latencies: list[float] = []
        self.completed = 0

    async def run(self, until: asyncio.Event, concurrency: int = 32) -> None:
        nc = await nats.connect(self.nats_url)
        js = nc.jetstream()
        sub = await js.pull_subscribe(
            "jobs.bench.>",
            durable="bench",
            stream="JOBS",
            config=ConsumerConfig(ack_policy=AckPolicy.EXPLICIT),
        )
        channel = signed_aio_channel(self.orchestrator)
        stub = pb_grpc.OrchestratorServiceStub(channel)
        pending: set[asyncio.Task[None]] = set()

        async def handle(message: Msg) -> None:
            job = events_pb2.JobActivated.FromString(message.data)
            self.latencies.append(time.time() - job.created_at.ToDatetime(UTC).timestamp())
            await stub.CompleteJob(pb.CompleteJobRequest(job_key=job.job_key), timeout=30)
            await message.ack()
            self.completed += 1

        while not until.is_set():
            try:
                messages = await sub.fetch(batch=concurrency, timeout=0.5)
            except TimeoutError:
                continue
            for m in messages:
                task = asyncio.create_task(handle(m))
                pending.add(task)
                task.add_done_callback(pending.discard)
            while len(pending) >= concurrency:
                await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
        if pending:
            await asyncio.wait(pending)
        await sub.unsubscribe()
        await channel.close()
        await nc.close()


def create_instances(address: str, process_id: str, count: int, rate: float = 0.0) -> list[str]:
    with signed_channel(address) as channel:
        stub = pb_grpc.OrchestratorServiceStub(channel)
        ids = []
        started = time.monotonic()
        for n in range(count):
            if rate:
                delay = started + n / rate - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
            ids.append(stub.CreateInstance(pb.CreateInstanceRequest(process_id=process_id)).instance_id)
        return ids


def test_throughput_and_dispatch_latency(orchestrator_process: LocalSystem) -> None:
    address = orchestrator_process.children["orchestrator"].address
    instances = 60
    total = instances * CHAIN

    async def throughput() -> tuple[float, list[float]]:
        worker = InstantWorker(orchestrator_process.nats_url, address)
        stop = asyncio.Event()
        runner = asyncio.create_task(worker.run(stop))
        await asyncio.get_running_loop().run_in_executor(None, create_instances, address, "chain", instances)
        started = time.monotonic()
        while worker.completed < total:
            await asyncio.sleep(0.05)
            assert time.monotonic() - started < 600, f"only {worker.completed} of {total} completed"
        elapsed = time.monotonic() - started
        stop.set()
        await runner
        return total / elapsed, worker.latencies

    rate, busy_latencies = asyncio.run(throughput())

    async def latency(starts_per_second: float, count: int) -> list[float]:
        worker = InstantWorker(orchestrator_process.nats_url, address)
        stop = asyncio.Event()
        runner = asyncio.create_task(worker.run(stop))
        await asyncio.get_running_loop().run_in_executor(
            None, create_instances, address, "one", count, starts_per_second
        )
        while worker.completed < count:  # noqa: ASYNC110 - polling the worker's counter is the point
            await asyncio.sleep(0.05)
        stop.set()
        await runner
        return worker.latencies

    # Each start of "one" is two steps (create, complete): rate / 4 starts a second is half the capacity.
    half = asyncio.run(latency(rate / 4, max(50, int(rate * 2.5))))
    idle = asyncio.run(latency(5, 50))
    report(
        "orchestrator process, workers that complete at once (SQLite)",
        [
            (
                "sustained job completions",
                f"{rate:.0f} /s  ({total} jobs, {instances} instances × {CHAIN} tasks)",
            ),
            (
                f"dispatch latency at half load (~{rate / 4:.0f} starts/s)",
                f"p50 {percentile(half, 50) * 1000:.1f} ms, p99 {percentile(half, 99) * 1000:.1f} ms ({len(half)} jobs)",
            ),
            (
                "dispatch latency nearly idle (5 starts/s)",
                f"p50 {percentile(idle, 50) * 1000:.1f} ms, p99 {percentile(idle, 99) * 1000:.1f} ms ({len(idle)} jobs)",
            ),
            ("dispatch latency at full load", f"p50 {percentile(busy_latencies, 50) * 1000:.1f} ms"),
        ],
    )


# -------------------------------------------------------------------------- 4. ten thousand waiting


def waiting_process() -> bytes:
    return bpmn(
        "waiting",
        """<startEvent id="s"/><parallelGateway id="split"/>
        <intermediateCatchEvent id="later"><timerEventDefinition><timeDate>due</timeDate></timerEventDefinition></intermediateCatchEvent>
        <intermediateCatchEvent id="reply"><messageEventDefinition messageRef="m_reply"/></intermediateCatchEvent>
        <parallelGateway id="join"/><endEvent id="e"/>""",
        "s -> split\nsplit -> later\nsplit -> reply\nlater -> join\nreply -> join\njoin -> e",
        extra=message("m_reply", "bench.reply", "key"),
    )


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def test_ten_thousand_waiting_instances(tmp_path: Path) -> None:
    """10,000 instances wait on a timer and a message; then, with all of them still waiting, a further
    sample's timers fall due within ten seconds of each other and their lateness is measured."""
    count = int(os.environ.get("CONSULTFLOW_BENCH_WAITING", "10000"))
    sample_size = 300
    bpmn_dir = tmp_path / "bpmn"
    bpmn_dir.mkdir()
    (bpmn_dir / "waiting.bpmn").write_bytes(waiting_process())
    system = LocalSystem(
        tmp_path / "data",
        identity=local_identity(),
        extra_env={"CONSULTFLOW_BPMN_DIR": str(bpmn_dir), "CONSULTFLOW_LOG_LEVEL": "WARNING"},
        components=("orchestrator",),
    )
    system.start()
    try:
        child = system.children["orchestrator"]
        assert child.process is not None
        far = datetime.fromtimestamp(time.time() + 86_400, UTC).isoformat()  # the 10,000 stay waiting
        with signed_channel(child.address) as channel:
            stub = pb_grpc.OrchestratorServiceStub(channel)
            started = time.monotonic()
            for n in range(count):
                create_waiting(stub, far, f"k{n}")
            create_seconds = time.monotonic() - started
        rss_waiting = rss_mb(child.process.pid)

        system.stop()
        restarted = time.monotonic()
        system.start()
        restart_seconds = time.monotonic() - restarted
        child = system.children["orchestrator"]
        assert child.process is not None and health_status(child.address, local_identity().ca) == 1

        with signed_channel(child.address) as channel:
            stub = pb_grpc.OrchestratorServiceStub(channel)
            # Due from after the last sample instance exists (at the rate measured above), over 10 s.
            fire_from = time.time() + 5 + 2 * sample_size * create_seconds / count
            due_at = {
                create_waiting(stub, iso(fire_from + 10 * n / sample_size), f"s{n}"): fire_from
                + 10 * n / sample_size
                for n in range(sample_size)
            }
            time.sleep(max(0.0, fire_from + 10 + 15 - time.time()))
            lateness: list[float] = []
            for instance_id, due in due_at.items():
                instance = stub.GetInstance(pb.GetInstanceRequest(instance_id=instance_id, history_limit=20))
                fired = [e for e in instance.history if e.type == "timer.fired"]
                if fired:
                    lateness.append(fired[0].time.ToDatetime(UTC).timestamp() - due)
        rss_after = rss_mb(child.process.pid)
    finally:
        system.stop()
    report(
        f"{count} instances waiting on a timer and a message (SQLite)",
        [
            ("created", f"{count / create_seconds:.0f} instances/s"),
            ("orchestrator RSS with all waiting", f"{rss_waiting:.0f} MB"),
            ("restart until serving", f"{restart_seconds:.1f} s"),
            (
                f"timer lateness, {sample_size} due within 10 s",
                f"p50 {statistics.median(lateness):.2f} s, p99 {percentile(lateness, 99):.2f} s, "
                f"{len(lateness)} of {sample_size} fired"
                if lateness
                else f"none of {sample_size} fired within 15 s of falling due",
            ),
            ("orchestrator RSS after the sample fired", f"{rss_after:.0f} MB"),
        ],
    )


def iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).isoformat()


def create_waiting(stub: pb_grpc.OrchestratorServiceStub, due: str, key: str) -> str:
    created = stub.CreateInstance(
        pb.CreateInstanceRequest(process_id="waiting", variables_json=json.dumps({"due": due, "key": key}))
    )
    return created.instance_id
