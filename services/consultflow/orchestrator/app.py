"""Wires the orchestrator into the shared runtime: the engine host, its API and its background loops."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from pathlib import Path

from consultflow.api.orchestrator.v1 import orchestrator_pb2_grpc as pb_grpc
from consultflow.orchestrator.runtime import Orchestrator
from consultflow.orchestrator.scheduler import Scheduler
from consultflow.orchestrator.servicer import OrchestratorServicer
from consultflow.orchestrator.status_messages import StatusMessageBridge, load_mappings
from consultflow.platform.bootstrap import Context, Parts
from consultflow.platform.errors import Conflict
from consultflow.platform.grpcserver import Registration
from consultflow.platform.scripting import load_timer_overrides

log = logging.getLogger(__name__)

SERVICE_NAME = "consultflow.api.orchestrator.v1.OrchestratorService"


def bpmn_resources(folder: Path) -> dict[str, bytes]:
    """Every diagram and decision table in a folder, by file name."""
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.suffix in (".bpmn", ".dmn")}


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
    if settings.bpmn_dir.is_dir():
        resources = bpmn_resources(settings.bpmn_dir)
        if resources:
            try:
                result = orchestrator.deploy(resources)
            except Conflict:  # another orchestrator deployed the same files at the same moment
                result = orchestrator.deploy(resources)
            log.info(
                "deployed %s from %s",
                [d.definition_id for d in result.definitions] or "nothing new",
                settings.bpmn_dir,
            )
    servicer = OrchestratorServicer(orchestrator)
    servicer.attach_loop(asyncio.get_running_loop())
    scheduler = Scheduler(orchestrator, context.executor)
    bridge = StatusMessageBridge(context.js, orchestrator, context.executor, load_mappings(settings.bpmn_dir))
    return Parts(
        registrations=[
            Registration(pb_grpc.add_OrchestratorServiceServicer_to_server, servicer, SERVICE_NAME)
        ],
        background=[scheduler.timers, scheduler.messages, scheduler.jobs, bridge.run],
    )
