"""A job that runs longer than its deadline is extended by its worker's heartbeat, not run twice; a job
whose worker stops extending is delivered again after its last deadline; the hold is bounded and only
the owner of the operation may extend it.

Real parts: the orchestrator in-process with its gRPC server and scheduler, a service's job worker on
real NATS, SQLite and PostgreSQL. The job timeout is 1 s (the orchestrator's deadline 3 s), and the
orchestrator looks for overdue jobs every 5 s."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import grpc
import nats
import pytest

from consultflow.api.events.v1 import events_pb2
from consultflow.api.orchestrator.v1 import orchestrator_pb2 as pb
from consultflow.api.orchestrator.v1 import orchestrator_pb2_grpc as pb_grpc
from consultflow.platform.bootstrap import Context, Parts
from consultflow.platform.db import UnitOfWork
from consultflow.platform.jobs import Job
from consultflow.platform.limits import Limits
from consultflow.platform.messaging import JOBS_STREAM
from consultflow.platform.nats_access import worker_durable
from tests.support.bpmn_builder import Task, bpmn_folder, line
from tests.support.components import ComponentThread, component_settings
from tests.support.identity import signed_channel
from tests.support.system import InProcessSystem, in_process_system

JOB_TIMEOUT = 1.0
SLOW = line("slow", [Task("work", "crm.slow")])


@contextmanager
def orchestrator(
    tmp_path: Path, nats_url: str, database_url: str, limits: Limits | None = None
) -> Iterator[InProcessSystem]:
    with in_process_system(
        tmp_path,
        nats_url,
        [],
        bpmn_dir=bpmn_folder(tmp_path, {"slow": SLOW}),
        database_urls={"orchestrator": database_url},
        job_timeout_seconds=JOB_TIMEOUT,
        limits=limits or Limits(),
    ) as system:
        yield system


def as_component(system: InProcessSystem, name: str) -> pb_grpc.OrchestratorServiceStub:
    """The orchestrator as a service's job worker calls it (role component, the service's name)."""
    channel = signed_channel(system.components["orchestrator"].address, as_=name, roles=["component"])
    system.channels[f"as-{name}"] = channel  # closed with the system
    return pb_grpc.OrchestratorServiceStub(channel)


def take_job(nats_url: str, within: float = 20.0) -> events_pb2.JobActivated:
    """Takes the next crm job from its consumer as a worker would, and acknowledges it (a worker that
    then dies without answering: only the orchestrator's deadline brings the job back)."""

    async def take() -> events_pb2.JobActivated:
        nc = await nats.connect(nats_url)
        try:
            subscription = await nc.jetstream().pull_subscribe_bind(
                durable=worker_durable("crm"), stream=JOBS_STREAM
            )
            [message] = await subscription.fetch(batch=1, timeout=within)
            await message.ack()
            return events_pb2.JobActivated.FromString(message.data)
        finally:
            await nc.close()

    return asyncio.run(take())


def when(stamp: Any) -> datetime:
    return stamp.ToDatetime(tzinfo=UTC)  # type: ignore[no-any-return]


@contextmanager
def crm_worker(
    tmp_path: Path, nats_url: str, slow: Callable[[UnitOfWork, Job], Mapping[str, Any]]
) -> Iterator[None]:
    """crm's job worker (the platform's, as every service runs it) with `slow` as its one operation."""

    def build(context: Context) -> Parts:
        return Parts(registrations=[], job_handlers={"crm.slow": slow})

    settings = component_settings("crm", tmp_path, nats_url, job_timeout_seconds=JOB_TIMEOUT)
    worker = ComponentThread(settings, build).start()
    try:
        yield
    finally:
        worker.stop()


def test_a_job_running_many_timeouts_runs_once_and_completes(
    tmp_path: Path, nats_url: str, database_url: str
) -> None:
    runs: list[str] = []
    lock = threading.Lock()

    def slow(uow: UnitOfWork, job: Job) -> Mapping[str, Any]:
        with lock:
            runs.append(job.key)
        # 8.5 job timeouts: past the 3 s deadline and past at least one scan for overdue jobs
        time.sleep(8.5 * JOB_TIMEOUT)
        return {"done": True}

    with orchestrator(tmp_path, nats_url, database_url) as system, crm_worker(tmp_path, nats_url, slow):
        created = system.orchestrator.CreateInstance(pb.CreateInstanceRequest(process_id="slow"))
        instance = system.wait_completed(created.instance_id, timeout=40.0)
    assert [e.type for e in instance.history if e.type.startswith("job.")] == ["job.created", "job.completed"]
    assert len(runs) == 1, f"the job ran {len(runs)} times"
    assert json.loads(instance.variables_json)["done"] is True


def test_a_stuck_handler_does_not_hold_its_job_past_the_limit(
    tmp_path: Path, nats_url: str, database_url: str
) -> None:
    """The worker's heartbeat is refused at max_job_hold_seconds; the job is delivered again and the
    second delivery completes it while the first is still stuck."""
    runs: list[int] = []
    unstuck = threading.Event()
    lock = threading.Lock()

    def stuck_once(uow: UnitOfWork, job: Job) -> Mapping[str, Any]:
        with lock:
            runs.append(len(runs) + 1)
            run = len(runs)
        if run == 1:
            unstuck.wait(timeout=60.0)  # stuck until the instance has completed without it
        return {"run": run}

    limits = Limits(max_job_hold_seconds=4.0)
    with (
        orchestrator(tmp_path, nats_url, database_url, limits) as system,
        crm_worker(tmp_path, nats_url, stuck_once),
    ):
        created = system.orchestrator.CreateInstance(pb.CreateInstanceRequest(process_id="slow"))
        try:
            instance = system.wait_completed(created.instance_id, timeout=40.0)
        finally:
            unstuck.set()
    assert [e.type for e in instance.history if e.type.startswith("job.")] == [
        "job.created",
        "job.redelivered",
        "job.completed",
    ]
    assert json.loads(instance.variables_json)["run"] == 2
    assert runs == [1, 2]


def test_a_job_whose_worker_stops_extending_is_delivered_again_after_its_last_deadline(
    tmp_path: Path, nats_url: str, database_url: str
) -> None:
    with orchestrator(tmp_path, nats_url, database_url) as system:
        created = system.orchestrator.CreateInstance(pb.CreateInstanceRequest(process_id="slow"))
        first = take_job(nats_url)
        extended = when(
            as_component(system, "crm")
            .ExtendJobDeadline(pb.ExtendJobDeadlineRequest(job_key=first.job_key, extend_by_ms=6000))
            .deadline
        )
        assert extended > when(first.deadline)
        # the worker dies here: no reply and no further extension
        second = take_job(nats_url, within=30.0)
        instance = system.orchestrator.GetInstance(pb.GetInstanceRequest(instance_id=created.instance_id))
    assert second.job_key == first.job_key
    [redelivered] = [e for e in instance.history if e.type == "job.redelivered"]
    assert when(redelivered.time) >= extended, "delivered again before the extended deadline"
    assert when(second.deadline) > when(redelivered.time)


def test_an_extension_past_the_hold_limit_is_refused_naming_it(
    tmp_path: Path, nats_url: str, database_url: str
) -> None:
    with orchestrator(tmp_path, nats_url, database_url, Limits(max_job_hold_seconds=30.0)) as system:
        system.orchestrator.CreateInstance(pb.CreateInstanceRequest(process_id="slow"))
        job = take_job(nats_url)
        worker = as_component(system, "crm")
        within = worker.ExtendJobDeadline(
            pb.ExtendJobDeadlineRequest(job_key=job.job_key, extend_by_ms=20_000)
        )
        with pytest.raises(grpc.RpcError) as refused:
            worker.ExtendJobDeadline(pb.ExtendJobDeadlineRequest(job_key=job.job_key, extend_by_ms=60_000))
        [after] = system.orchestrator.GetInstance(pb.GetInstanceRequest(instance_id=job.instance_id)).jobs
    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "max_job_hold_seconds" in str(refused.value.details())
    assert when(after.deadline) == when(within.deadline), "a refused extension changed the deadline"


def test_only_the_service_owning_the_operation_may_extend_its_jobs(
    tmp_path: Path, nats_url: str, database_url: str
) -> None:
    with orchestrator(tmp_path, nats_url, database_url) as system:
        system.orchestrator.CreateInstance(pb.CreateInstanceRequest(process_id="slow"))
        job = take_job(nats_url)
        request = pb.ExtendJobDeadlineRequest(job_key=job.job_key, extend_by_ms=5000)
        with pytest.raises(grpc.RpcError) as refused:
            as_component(system, "delivery").ExtendJobDeadline(request)
        with pytest.raises(grpc.RpcError) as not_a_component:
            pb_grpc.OrchestratorServiceStub(
                signed_channel(system.components["orchestrator"].address, as_="ops-person", roles=["ops"])
            ).ExtendJobDeadline(request)
        with pytest.raises(grpc.RpcError) as negative:
            as_component(system, "crm").ExtendJobDeadline(
                pb.ExtendJobDeadlineRequest(job_key=job.job_key, extend_by_ms=-1)
            )
        with pytest.raises(grpc.RpcError) as huge:
            as_component(system, "crm").ExtendJobDeadline(
                pb.ExtendJobDeadlineRequest(job_key=job.job_key, extend_by_ms=2**62)
            )
        with pytest.raises(grpc.RpcError) as unknown:
            as_component(system, "crm").ExtendJobDeadline(pb.ExtendJobDeadlineRequest(job_key="nope:1"))
    assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "crm.slow" in str(refused.value.details())
    assert not_a_component.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert negative.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "extend_by_ms" in str(negative.value.details())
    assert huge.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "extend_by_ms" in str(huge.value.details())
    assert unknown.value.code() == grpc.StatusCode.NOT_FOUND


def test_a_job_no_longer_waiting_is_not_extended(tmp_path: Path, nats_url: str, database_url: str) -> None:
    with orchestrator(tmp_path, nats_url, database_url) as system:
        created = system.orchestrator.CreateInstance(pb.CreateInstanceRequest(process_id="slow"))
        job = take_job(nats_url)
        worker = as_component(system, "crm")
        worker.CompleteJob(pb.CompleteJobRequest(job_key=job.job_key, variables_json="{}"))
        system.wait_completed(created.instance_id)
        with pytest.raises(grpc.RpcError) as refused:
            worker.ExtendJobDeadline(pb.ExtendJobDeadlineRequest(job_key=job.job_key))
    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "no longer waits" in str(refused.value.details())
