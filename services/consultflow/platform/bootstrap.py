"""How every component starts and stops: one bootstrap, not six copies.

`run(name, build)` reads settings, configures logging, migrates the database, takes its share of the
partition leases (platform/claims.py), connects to NATS, starts the outbox relay, the gRPC server
(health, reflection, error mapping) and, when the component has job handlers, the job worker and the
`OperationCatalog` of its operations; it reports SERVING once all of that is up and stops in reverse
order on SIGTERM or SIGINT (giving its leases back last).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import threading
from collections.abc import Awaitable, Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import timedelta
from functools import partial
from typing import Any

import grpc
from nats.aio.client import Client
from nats.js import JetStreamContext
from sqlalchemy.orm import Session

from consultflow.api.orchestrator.v1.orchestrator_pb2_grpc import OrchestratorServiceStub
from consultflow.platform import metrics, tracing
from consultflow.platform.catalog import catalog_registration
from consultflow.platform.claims import LeaseKeeper
from consultflow.platform.db import Database, UnitOfWork, migrate
from consultflow.platform.grpcserver import Registration, start_server
from consultflow.platform.jobs import BoundOperations, JobHandler, prune_processed_jobs_periodically
from consultflow.platform.logging import configure_logging
from consultflow.platform.messaging import connect
from consultflow.platform.outbox import OutboxRelay
from consultflow.platform.security import Security, SecurityNotConfigured
from consultflow.platform.settings import Settings, setting
from consultflow.platform.worker import JobWorker

log = logging.getLogger(__name__)

WORKER_STACK_BYTES = 64 * 1024 * 1024
"""Stack of every thread a component starts after boot (its blocking-work pool runs gRPC calls and the
orchestrator's scheduler): deep diagrams recurse deep (orchestrator/deep_walks.py). Virtual memory only:
pages are committed as a stack grows."""

CALL_TIMEOUT_SECONDS = 5.0
"""Default deadline for calls from one component to another."""


@dataclass
class Parts:
    """What a component brings to the shared runtime."""

    registrations: Sequence[Registration]
    job_handlers: Mapping[str, JobHandler] = field(default_factory=dict)
    background: Sequence[Callable[[], Awaitable[None]]] = ()
    on_stop: Sequence[Callable[[], Awaitable[None]]] = ()


class Context:
    """The wired dependencies a component's `build` function receives."""

    def __init__(
        self,
        settings: Settings,
        security: Security,
        db: Database,
        executor: ThreadPoolExecutor,
        nc: Client,
        js: JetStreamContext,
        claims: LeaseKeeper,
    ) -> None:
        self.settings = settings
        self.claims = claims
        """This replica's partition leases: its background loops scan what `claims.owned()` says."""
        self.security = security
        self.db = db
        self.executor = executor
        self.nc = nc
        self.js = js
        credentials = settings.nats_credentials
        self._relay_thread = ThreadPoolExecutor(1, thread_name_prefix=f"{settings.component}-outbox")
        self.relay = OutboxRelay(
            db,
            js,
            self._relay_thread,  # its own: its reads and writes never wait behind the requests'
            nc=nc,
            publisher=credentials.user if credentials is not None else None,
            limits=settings.limits,
            owned=claims.owned,
        )
        self._channels: dict[str, grpc.Channel] = {}
        self._aio_channels: dict[str, grpc.aio.Channel] = {}

    def uow(self) -> UnitOfWork:
        """A unit of work whose commit wakes the outbox relay."""
        return UnitOfWork(self.db, self.settings.component, on_commit=self.relay.notify)

    def read(self) -> AbstractContextManager[Session]:
        """A short read-only session for queries; it never takes the write lock."""
        return self.db.read()

    def channel(self, component: str) -> grpc.Channel:
        """A blocking channel to another component, for use-case code running on worker threads."""
        if component not in self._channels:
            self._channels[component] = self.security.channel(self.settings.address_of(component))
        return self._channels[component]

    def aio_channel(self, component: str) -> grpc.aio.Channel:
        """An asyncio channel to another component, for code on the event loop."""
        if component not in self._aio_channels:
            self._aio_channels[component] = self.security.aio_channel(self.settings.address_of(component))
        return self._aio_channels[component]

    async def close(self) -> None:
        for channel in self._aio_channels.values():
            await channel.close()
        for sync_channel in self._channels.values():
            sync_channel.close()
        self._relay_thread.shutdown(wait=False)


async def serve(settings: Settings, build: Callable[[Context], Parts], stop: asyncio.Event) -> None:
    """Runs a component until `stop` is set."""
    if settings.security is None:
        raise SecurityNotConfigured(
            f"{settings.component}: CONSULTFLOW_TLS_DIR and CONSULTFLOW_OIDC_ISSUER must be set "
            "(every listener serves TLS and every call is authenticated; `consultflow up` sets them)"
        )
    security = Security(settings.security)
    db = Database(settings.database_url, settings.limits.db_busy_timeout_ms)
    threading.stack_size(WORKER_STACK_BYTES)  # process-wide: the pool starts its threads lazily
    executor = ThreadPoolExecutor(max_workers=settings.db_threads, thread_name_prefix=settings.component)
    loop = asyncio.get_running_loop()
    if settings.migrate_at_start:
        await loop.run_in_executor(executor, migrate, db, settings.component)
    claims = LeaseKeeper(db, settings.claim_partitions, timedelta(seconds=settings.claim_lease_seconds))
    if not settings.claim_shared_sqlite:
        await loop.run_in_executor(executor, claims.refuse_shared_sqlite)
    await loop.run_in_executor(executor, claims.tick)
    claims_task = asyncio.create_task(claims.run(), name="partition-leases")
    nc, js = await connect(settings.nats_url, f"consultflow-{settings.component}", settings.nats_credentials)
    context = Context(settings, security, db, executor, nc, js, claims)
    parts = build(context)
    relay_task = asyncio.create_task(context.relay.run(), name="outbox-relay")
    metrics_endpoint = metrics.start_component(settings.component, db)
    server = await start_server(
        settings.grpc_address,
        _with_catalogue(parts),
        executor,
        security,
        settings.limits,
        settings.db_threads,
    )
    worker: JobWorker | None = None
    if parts.job_handlers:
        worker = JobWorker(
            settings.component,
            js,
            OrchestratorServiceStub(context.aio_channel("orchestrator")),
            context.uow,
            parts.job_handlers,
            executor,
            concurrency=settings.worker_concurrency,
            ack_wait_seconds=settings.job_timeout_seconds,
        )
        await worker.start()
    loops = list(parts.background)
    if parts.job_handlers and settings.processed_jobs_ttl_hours > 0:
        ttl = timedelta(hours=settings.processed_jobs_ttl_hours)
        loops.append(
            partial(
                prune_processed_jobs_periodically,
                db,
                ttl,
                executor,
                cleans_up=lambda: claims.owned().cleans_up,
            )
        )
    background = [asyncio.create_task(_supervised(job), name=getattr(job, "__name__", "bg")) for job in loops]
    await server.set_serving()
    log.info(
        "%s serving on port %d",
        settings.component,
        server.port,
        extra={"port": server.port, "operations": sorted(parts.job_handlers)},
    )
    await stop.wait()

    log.info("%s stopping", settings.component)
    if worker is not None:
        await worker.stop()
    await server.stop(grace=5.0)
    for task in background:
        task.cancel()
    await asyncio.gather(*background, return_exceptions=True)
    for hook in parts.on_stop:
        await hook()
    await context.relay.stop()
    relay_task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await relay_task
    claims_task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await claims_task
    try:
        await loop.run_in_executor(executor, claims.release)
    except Exception:
        log.warning("releasing partition leases failed; they lapse after their TTL", exc_info=True)
    await context.close()
    metrics_endpoint.stop()
    with contextlib.suppress(Exception):
        await nc.drain()
    executor.shutdown(wait=True)
    db.dispose()
    log.info("%s stopped", settings.component)


def _with_catalogue(parts: Parts) -> list[Registration]:
    """The component's registrations, and `OperationCatalog` when its job handlers publish a catalogue."""
    registrations = list(parts.registrations)
    if isinstance(parts.job_handlers, BoundOperations) and parts.job_handlers.catalogue:
        registrations.append(catalog_registration(parts.job_handlers.catalogue))
    return registrations


async def _supervised(job: Callable[[], Awaitable[None]]) -> None:
    """Keeps a background loop alive: logs and restarts it if it fails."""
    while True:
        try:
            await job()
            return
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("background task %s failed; restarting", getattr(job, "__name__", job))
            await asyncio.sleep(1.0)


def run(component: str, build: Callable[[Context], Parts]) -> None:
    """The `python -m consultflow.<component>` entry point."""
    settings = Settings.from_env(component)
    configure_logging(component, settings.log_level, settings.log_format, settings.log_redact_fields)
    tracing.configure(component, setting("CONSULTFLOW_OTLP_ENDPOINT"), setting("CONSULTFLOW_TRACE_FILE"))

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await serve(settings, build, stop)

    asyncio.run(main())
    tracing.shutdown()


def call_options(timeout: float = CALL_TIMEOUT_SECONDS) -> dict[str, Any]:
    """Keyword arguments for a call to another component: a deadline, and waiting while it starts."""
    return {"timeout": timeout, "wait_for_ready": True}
