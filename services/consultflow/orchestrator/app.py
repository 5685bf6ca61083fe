"""Wires the orchestrator into the shared runtime: the engine host, its API and its background loops."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from functools import partial
from pathlib import Path

from consultflow.api.events.v1 import events_pb2
from consultflow.api.orchestrator.v1 import orchestrator_pb2_grpc as pb_grpc
from consultflow.orchestrator import observability
from consultflow.orchestrator.runtime import Orchestrator
from consultflow.orchestrator.scheduler import Scheduler
from consultflow.orchestrator.servicer import OrchestratorServicer
from consultflow.orchestrator.status_messages import StatusMessageBridge, load_mappings
from consultflow.platform.bootstrap import Context, Parts
from consultflow.platform.errors import Conflict, DomainError
from consultflow.platform.grpcserver import Registration
from consultflow.platform.outbox import DeadLetter
from consultflow.platform.scripting import load_timer_overrides

log = logging.getLogger(__name__)

SERVICE_NAME = "consultflow.api.orchestrator.v1.OrchestratorService"


def bpmn_resources(folder: Path) -> dict[str, bytes]:
    """Every diagram and decision table in a folder, by file name."""
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.suffix in (".bpmn", ".dmn")}


def job_not_published(orchestrator: Orchestrator, dead: DeadLetter) -> None:
    """A job message the outbox set aside (it can never be published) becomes an incident on the job's
    instance, as a job without retries would: the instance waits visibly instead of forever, and resolving
    the incident publishes the job again. Other orchestrator messages (status events) stay set aside and
    logged."""
    if not dead.subject.startswith("jobs."):
        return
    job = events_pb2.JobActivated.FromString(dead.payload)
    try:
        message = f"its job message cannot be published: {dead.reason}"
        orchestrator.fail_job(job.job_key, retries=0, backoff_ms=0, message=message)
    except DomainError as error:  # the job no longer waits (completed, canceled): nothing to report on
        log.warning("job %s of a dead outbox message: %s", job.job_key, error)


def build(context: Context) -> Parts:
    settings = context.settings
    orchestrator = Orchestrator(
        context.db,
        context.uow,
        time_scale=settings.time_scale,
        limits=settings.limits,
        job_timeout=timedelta(seconds=settings.job_timeout_seconds),
        cache_size=settings.instance_cache_size,
        timer_overrides=load_timer_overrides(settings.timer_overrides),
        operation_owners=context.security.settings.operation_owners,
    )
    if settings.deploy_at_start != "off" and settings.bpmn_dir.is_dir():
        resources = bpmn_resources(settings.bpmn_dir)
        if resources:
            mode = settings.deploy_at_start
            try:
                result = orchestrator.deploy_at_start(resources, mode)
            except Conflict:  # another orchestrator deployed the same files at the same moment
                result = orchestrator.deploy_at_start(resources, mode)
            log.info(
                "deployed %s from %s (%s)",
                [d.definition_id for d in result.definitions] or "nothing new",
                settings.bpmn_dir,
                mode,
            )
    context.relay.on_dead_letter = partial(job_not_published, orchestrator)
    servicer = OrchestratorServicer(orchestrator)
    servicer.attach_loop(asyncio.get_running_loop())
    scheduler = Scheduler(orchestrator, context.executor, context.claims.owned)
    bridge = StatusMessageBridge(context.js, orchestrator, context.executor, load_mappings(settings.bpmn_dir))
    return Parts(
        registrations=[
            Registration(pb_grpc.add_OrchestratorServiceServicer_to_server, servicer, SERVICE_NAME)
        ],
        background=[scheduler.timers, scheduler.messages, scheduler.jobs, scheduler.migrations, bridge.run],
        on_stop=[observability.watch(context.db)],  # open incidents and user tasks at scrape time
    )
