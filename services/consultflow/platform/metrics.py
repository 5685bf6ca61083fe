"""Prometheus metrics: the one registry, every metric a component exports, and its /metrics endpoint.

Counters and histograms move where the work happens (a step, a job, a gRPC call); gauges of what waits
(the outbox backlog, open incidents, open and overdue user tasks) are read at scrape time by cheap
COUNT queries on indexed columns, never from workflow state, so a scrape costs the same however busy the
component is. The endpoint listens on `CONSULTFLOW_METRICS_PORT` (0: off, the default outside
`consultflow up` and Kubernetes). Names are those of docs/operations.md and the Grafana dashboard
(deploy/kubernetes/observability/).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import NamedTuple
from wsgiref.simple_server import WSGIServer

from prometheus_client import (
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    start_http_server,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import and_, func, select

from consultflow.platform.db import Database
from consultflow.platform.settings import setting
from consultflow.platform.tables import outbox

log = logging.getLogger(__name__)

# No `_created` series: they double the output, and `consultflow_jobs_created_created` would confuse.
disable_created_metrics()  # type: ignore[no-untyped-call]
REGISTRY = CollectorRegistry(auto_describe=True)
"""Every consultflow metric, and the process's own (CPU, memory, open files, garbage collection)."""
for _standard in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
    REGISTRY.register(_standard)

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
"""Seconds: fine below 50 ms, where the dispatch target (p99 ≤ 50 ms) is read."""

STEPS = Counter(
    "consultflow_steps",
    "Orchestrator steps on an instance by how they ended: committed, skipped (nothing to write), refused "
    "(a domain error: a late reply, a bad request), failed.",
    ["outcome"],
    registry=REGISTRY,
)
STEP_SECONDS = Histogram(
    "consultflow_step_duration_seconds",
    "Wall time of one orchestrator step: lock, load, engine, write, commit.",
    buckets=LATENCY_BUCKETS,
    registry=REGISTRY,
)
JOBS_CREATED = Counter(
    "consultflow_jobs_created",
    "Jobs the orchestrator created (first publish).",
    ["operation"],
    registry=REGISTRY,
)
JOBS_COMPLETED = Counter(
    "consultflow_jobs_completed",
    "Jobs whose CompleteJob the orchestrator accepted.",
    ["operation"],
    registry=REGISTRY,
)
JOBS_FAILED = Counter(
    "consultflow_jobs_failed",
    "Job failures the orchestrator accepted (FailJob: retried or an incident; ThrowError: a BPMN error).",
    ["operation"],
    registry=REGISTRY,
)
JOB_DISPATCH_SECONDS = Histogram(
    "consultflow_job_dispatch_seconds",
    "From a job's creation (its step) to a worker taking it (first attempt, first delivery).",
    ["service"],
    buckets=LATENCY_BUCKETS,
    registry=REGISTRY,
)
JOBS_HANDLED = Counter(
    "consultflow_jobs_handled",
    "Job messages a service's worker handled, by outcome (completed, error, failed).",
    ["service", "operation", "outcome"],
    registry=REGISTRY,
)
TIMER_LATENESS_SECONDS = Histogram(
    "consultflow_timer_lateness_seconds",
    "How long after its due time a timer fired.",
    buckets=LATENCY_BUCKETS,
    registry=REGISTRY,
)
STARTS_FAILED = Counter(
    "consultflow_starts_failed",
    "Timer or message start events whose instance could not be started (no instance to park; tried "
    "again a minute later).",
    ["event"],
    registry=REGISTRY,
)
LEASES_OWNED = Gauge(
    "consultflow_leases_owned",
    "Claim partitions this process owns now (docs/scale-out.md); 0 once it stopped renewing them.",
    ["member"],
    registry=REGISTRY,
)
LEASE_MEMBERS = Gauge(
    "consultflow_lease_members",
    "Live members sharing the claim partitions, as this process saw them at its last round.",
    ["member"],
    registry=REGISTRY,
)
LEASE_CHANGES = Counter(
    "consultflow_lease_changes",
    "Partitions this process took (acquired), gave back on a rebalance or a stop (released), or lost "
    "(its lease expired before it renewed it: a pause longer than the TTL).",
    ["change"],
    registry=REGISTRY,
)
LEASE_ROUND_SECONDS = Histogram(
    "consultflow_lease_round_seconds",
    "One lease round: heartbeat, renewals, rebalance, in one transaction.",
    buckets=LATENCY_BUCKETS,
    registry=REGISTRY,
)
GRPC_HANDLED = Counter(
    "consultflow_grpc_server_handled",
    "gRPC calls this component answered, by method and status code.",
    ["method", "code"],
    registry=REGISTRY,
)
GRPC_SECONDS = Histogram(
    "consultflow_grpc_server_handling_seconds",
    "Time from a gRPC call's arrival to its answer.",
    ["method"],
    buckets=LATENCY_BUCKETS,
    registry=REGISTRY,
)


class Reading(NamedTuple):
    """One scrape-time gauge value: a metric name (one of `GAUGES`), its labels and value."""

    name: str
    labels: tuple[tuple[str, str], ...]
    value: float


GAUGES: dict[str, tuple[str, tuple[str, ...]]] = {
    "consultflow_outbox_backlog": ("Outbox rows not yet published (set aside: not counted).", ("component",)),
    "consultflow_incidents_open": ("Incidents not resolved.", ()),
    "consultflow_user_tasks_open": ("Open user tasks by candidate group.", ("group",)),
    "consultflow_user_tasks_overdue": ("Open user tasks past their due date by group.", ("group",)),
}
"""The gauges read at scrape time: name → (help, label names)."""

Source = Callable[[], Iterable[Reading]]


class _ScrapeTimeGauges(Collector):
    """One collector for every scrape-time gauge, fed by the sources components add while they run (one
    process may run several components in tests: each adds its own)."""

    def __init__(self) -> None:
        self._sources: dict[str, Source] = {}
        self._lock = threading.Lock()

    def add(self, key: str, source: Source) -> None:
        with self._lock:
            self._sources[key] = source

    def remove(self, key: str) -> None:
        with self._lock:
            self._sources.pop(key, None)

    def describe(self) -> Iterator[GaugeMetricFamily]:
        for name, (text, labels) in GAUGES.items():
            yield GaugeMetricFamily(name, text, labels=list(labels))

    def collect(self) -> Iterator[Metric]:
        families = {metric.name: metric for metric in self.describe()}
        with self._lock:
            sources = list(self._sources.items())
        for key, source in sources:
            try:
                readings = list(source())
            except Exception as error:  # a busy or unreachable database: this scrape lacks the value
                log.warning("metrics: reading %s failed: %s", key, error)
                continue
            for reading in readings:
                families[reading.name].add_metric([value for _, value in reading.labels], reading.value)
        yield from families.values()


SCRAPED = _ScrapeTimeGauges()
REGISTRY.register(SCRAPED)


def outbox_backlog(component: str, db: Database) -> Source:
    """The unsent, not set-aside rows of a component's outbox (a COUNT on the relay's own index)."""

    def read() -> Iterable[Reading]:
        with db.read() as session:
            count = session.scalar(
                select(func.count()).where(and_(outbox.c.sent_at.is_(None), outbox.c.dead_at.is_(None)))
            )
        return [Reading("consultflow_outbox_backlog", (("component", component),), float(count or 0))]

    return read


@dataclass
class Endpoint:
    """The running /metrics listener (None port: off) and the gauges it registered."""

    port: int
    keys: Sequence[str]
    _server: WSGIServer | None = None

    def stop(self) -> None:
        for key in self.keys:
            SCRAPED.remove(key)
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()


def serve(port: int, address: str = "") -> tuple[int, WSGIServer]:
    """Starts the /metrics HTTP listener on `address:port` (port 0: a free one); returns the port."""
    server, _ = start_http_server(port, address or "0.0.0.0", registry=REGISTRY)
    return int(server.server_port), server


def start_component(component: str, db: Database | None = None) -> Endpoint:
    """What every component starts (`bootstrap.serve`, the console): its outbox gauge when it has a
    database and, when `CONSULTFLOW_METRICS_PORT` is set, the /metrics listener on
    `CONSULTFLOW_METRICS_ADDRESS`."""
    keys = []
    if db is not None:
        keys.append(f"{component}:outbox:{id(db)}")
        SCRAPED.add(keys[0], outbox_backlog(component, db))
    port = int(setting("CONSULTFLOW_METRICS_PORT") or 0)
    if port <= 0:
        return Endpoint(0, keys)
    bound, server = serve(port, setting("CONSULTFLOW_METRICS_ADDRESS"))
    log.info("%s metrics on port %d", component, bound, extra={"metrics_port": bound})
    return Endpoint(bound, keys, server)


def seconds_since(then: datetime) -> float:
    """Seconds from `then` (aware or UTC-naive) to now, never negative (clocks of two hosts differ)."""
    if then.tzinfo is None:
        then = then.replace(tzinfo=UTC)
    return max(0.0, (datetime.now(UTC) - then).total_seconds())
