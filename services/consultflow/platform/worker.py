"""The job worker loop: durable pull consumer → idempotent handler → CompleteJob/FailJob/ThrowError → ack.

A message is acknowledged only after the orchestrator accepted the reply, so a crash anywhere before
that redelivers the job; the handler's idempotency (see `jobs.run_job`) makes the second run answer with
the first result instead of acting twice. While a handler runs, a heartbeat keeps both clocks that would
hand the job to another replica from running out: JetStream's ack wait (`in_progress`) and the
orchestrator's job deadline (`ExtendJobDeadline`, bounded by `max_job_hold_seconds`).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
from collections.abc import Callable, Mapping
from concurrent.futures import Executor
from typing import TYPE_CHECKING

import grpc
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.errors import NotFoundError

from consultflow.api.events.v1 import events_pb2
from consultflow.api.orchestrator.v1 import orchestrator_pb2 as pb
from consultflow.platform import job_telemetry, jsonutil
from consultflow.platform.db import UnitOfWork
from consultflow.platform.errors import FailedPrecondition, InvalidArgument, NotFound, PermissionDenied
from consultflow.platform.faults import crash_point
from consultflow.platform.grpcerrors import error_from_rpc
from consultflow.platform.jobs import Job, JobHandler, Outcome, run_job
from consultflow.platform.messaging import JOBS_STREAM, MessagingNotProvisioned
from consultflow.platform.nats_access import worker_durable

if TYPE_CHECKING:
    from consultflow.api.orchestrator.v1.orchestrator_pb2_grpc import OrchestratorServiceAsyncStub

log = logging.getLogger(__name__)

REPLY_TIMEOUT_SECONDS = 10.0


class JobWorker:
    """Takes `jobs.<service>.>` from JetStream and runs them with the service's handlers."""

    def __init__(
        self,
        service: str,
        js: JetStreamContext,
        orchestrator: OrchestratorServiceAsyncStub,
        uow_factory: Callable[[], UnitOfWork],
        handlers: Mapping[str, JobHandler],
        executor: Executor,
        concurrency: int = 8,
        ack_wait_seconds: float = 60.0,
    ) -> None:
        """`ack_wait_seconds` is the job timeout (CONSULTFLOW_JOB_TIMEOUT_SECONDS); the heartbeat beats
        at a third of it, or of the consumer's own ack wait when that is shorter."""
        self._service = service
        self._js = js
        self._orchestrator = orchestrator
        self._uow_factory = uow_factory
        self._handlers = handlers
        self._executor = executor
        self._concurrency = concurrency
        self._ack_wait = ack_wait_seconds
        self._job_timeout = ack_wait_seconds
        self._running = False
        self._loop_task: asyncio.Task[None] | None = None
        self._in_flight: set[asyncio.Task[None]] = set()

    @property
    def durable_name(self) -> str:
        return worker_durable(self._service)

    async def start(self) -> None:
        """Binds to the provisioned consumer; the worker's NATS user may not create or change it."""
        try:
            info = await self._js.consumer_info(JOBS_STREAM, self.durable_name)
        except NotFoundError as error:
            raise MessagingNotProvisioned(
                f"consumer {self.durable_name} on {JOBS_STREAM} does not exist: provision NATS first"
            ) from error
        expected = f"jobs.{self._service}.>"
        if info.config.filter_subject != expected:
            raise MessagingNotProvisioned(
                f"consumer {self.durable_name} reads {info.config.filter_subject!r}, expected {expected!r}"
            )
        if info.config.ack_wait:
            self._ack_wait = info.config.ack_wait  # the heartbeat must beat the consumer's own ack wait
        self._subscription = await self._js.pull_subscribe_bind(durable=self.durable_name, stream=JOBS_STREAM)
        self._running = True
        self._loop_task = asyncio.create_task(self._fetch_loop(), name=f"{self.durable_name}-fetch")

    async def stop(self, grace: float = 10.0) -> None:
        """Stops fetching, lets running jobs finish for `grace` seconds, then unsubscribes."""
        self._running = False
        if self._loop_task is not None:
            self._loop_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop_task
        if self._in_flight:
            await asyncio.wait(self._in_flight, timeout=grace)
        with contextlib.suppress(Exception):
            await self._subscription.unsubscribe()

    async def _fetch_loop(self) -> None:
        while self._running:
            free = self._concurrency - len(self._in_flight)
            if free <= 0:
                await asyncio.wait(self._in_flight, return_when=asyncio.FIRST_COMPLETED)
                continue
            try:
                messages = await self._subscription.fetch(batch=free, timeout=1.0)
            except TimeoutError:
                continue
            except Exception:
                log.warning("fetching jobs failed; retrying", exc_info=True)
                await asyncio.sleep(0.5)
                continue
            for message in messages:
                task = asyncio.create_task(self._process(message))
                self._in_flight.add(task)
                task.add_done_callback(self._in_flight.discard)

    async def _process(self, message: Msg) -> None:
        try:
            await self._handle(message)
        except Exception:
            log.exception("job message left unacknowledged; it will be redelivered")

    @job_telemetry.observed_handling
    async def _handle(self, message: Msg) -> None:
        activated = events_pb2.JobActivated.FromString(message.data)
        job = Job.from_message(activated)
        job_telemetry.received(self._service, activated, message)
        loop = asyncio.get_running_loop()
        heartbeat = asyncio.create_task(self._keep_alive(message, job))
        try:
            in_job_context = contextvars.copy_context().run  # its logs and calls join the job's trace
            outcome = await loop.run_in_executor(
                self._executor, in_job_context, run_job, self._uow_factory, self._handlers, job
            )
        finally:
            heartbeat.cancel()
        job_telemetry.handled(self._service, activated, outcome)
        crash_point("worker.after_handle")
        try:
            await self._report(job, outcome)
        except grpc.aio.AioRpcError as error:
            refusal = error_from_rpc(error, "orchestrator")
            if isinstance(refusal, FailedPrecondition | NotFound):
                # The orchestrator no longer waits for this job (cancelled by a boundary event, or the
                # instance ended): the reply is moot, so the message is done.
                log.info("job %s: orchestrator refused the reply: %s", job.key, refusal.message)
            elif isinstance(refusal, InvalidArgument) and outcome.kind != "failed":
                # The reply itself is refused (a result past max_variable_bytes): sending it again would
                # be refused forever, so the job fails without retries and waits as an incident.
                log.warning("job %s: orchestrator refused the result; reporting it failed", job.key)
                refused = Outcome(
                    "failed", message=f"the orchestrator refused the job's result: {refusal.message}"
                )
                try:
                    await self._report(job, refused)
                except grpc.aio.AioRpcError as failed:
                    log.warning(
                        "job %s: reporting the refusal failed (%s); redelivering", job.key, failed.code()
                    )
                    await message.nak(delay=1.0)
                    return
            else:
                log.warning("job %s: reply failed (%s); redelivering", job.key, refusal.message)
                await message.nak(delay=1.0)
                return
        crash_point("worker.before_ack")
        await message.ack()
        log.debug("job %s (%s) %s", job.key, job.operation, outcome.kind)

    async def _keep_alive(self, message: Msg, job: Job) -> None:
        """Tells JetStream and the orchestrator the job is still being worked on, so a long handler is
        neither redelivered by JetStream nor delivered again by the orchestrator to another replica.

        Only handlers running longer than a beat send anything. Once the orchestrator refuses to extend
        (the hold limit, or the job no longer waits) the beat stops asking; the job is then delivered
        again at its deadline, as when a worker dies.
        """
        beat = min(self._ack_wait, self._job_timeout) / 3
        extending = True
        while True:
            await asyncio.sleep(beat)
            try:
                await message.in_progress()
            except Exception as error:  # the next beat tries again; at worst JetStream redelivers
                log.debug("job heartbeat failed: %s", error)
            if extending:
                extending = await self._extend(job, beat)

    async def _extend(self, job: Job, beat: float) -> bool:
        """Moves the job's deadline on (by the orchestrator's usual deadline); False once refused."""
        try:
            await self._orchestrator.ExtendJobDeadline(
                pb.ExtendJobDeadlineRequest(job_key=job.key), timeout=min(beat, REPLY_TIMEOUT_SECONDS)
            )
        except grpc.aio.AioRpcError as error:
            refusal = error_from_rpc(error, "orchestrator")
            if isinstance(refusal, FailedPrecondition | NotFound | PermissionDenied):
                log.warning("job %s: deadline not extended: %s", job.key, refusal.message)
                return False
            log.debug("job %s: extending the deadline failed (%s); next beat", job.key, refusal.message)
        return True

    async def _report(self, job: Job, outcome: Outcome) -> None:
        if outcome.kind == "completed":
            await self._orchestrator.CompleteJob(
                pb.CompleteJobRequest(job_key=job.key, variables_json=jsonutil.dumps(outcome.variables)),
                timeout=REPLY_TIMEOUT_SECONDS,
                wait_for_ready=True,
            )
        elif outcome.kind == "error":
            await self._orchestrator.ThrowError(
                pb.ThrowErrorRequest(
                    job_key=job.key,
                    error_code=outcome.error_code,
                    error_message=outcome.message,
                    variables_json=jsonutil.dumps(outcome.variables),
                ),
                timeout=REPLY_TIMEOUT_SECONDS,
                wait_for_ready=True,
            )
        else:
            await self._orchestrator.FailJob(
                pb.FailJobRequest(job_key=job.key, retries=outcome.retries, error_message=outcome.message),
                timeout=REPLY_TIMEOUT_SECONDS,
                wait_for_ready=True,
            )
