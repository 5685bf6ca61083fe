"""Traces with OpenTelemetry: the tracer provider, W3C trace context in gRPC metadata and NATS headers, and
the one trace of each process instance.

One engagement is one trace however long it runs: the trace id of an instance is its id (a UUID is 128
bits, as a trace id is), and its root span's id is derived from it, so every later step — a job's reply,
a person's task, a timer weeks later, in any orchestrator replica — joins the same trace without storing
anything. The root span is the instance's start; each step is a child of the call that caused it when that
call already belongs to the instance's trace (a worker's CompleteJob), else of the root, with a link to the
caller's own trace (a person's CompleteUserTask from the console).

Context travels as `traceparent`/`tracestate`: in gRPC metadata (the client interceptors of
`security.secure_channel`, the server interceptor of `grpcserver`) and in the headers of every NATS
message (`UnitOfWork.publish` stores them with the outbox row, so they leave with it after the commit).
Spans are exported over OTLP when `CONSULTFLOW_OTLP_ENDPOINT` is set, to a JSON-lines file with
`CONSULTFLOW_TRACE_FILE`; without either, spans are still made (their ids reach the logs and messages),
nothing is sent.
"""

from __future__ import annotations

import hashlib
import threading
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    SimpleSpanProcessor,
    SpanExporter,
    SpanExportResult,
)
from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
from opentelemetry.trace import Link, NonRecordingSpan, Span, SpanContext, SpanKind, TraceFlags
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from opentelemetry.util.types import Attributes

PROPAGATOR = TraceContextTextMapPropagator()
TRACER = "consultflow"

_forced_ids: ContextVar[tuple[int, int] | None] = ContextVar("consultflow_forced_ids", default=None)
_provider: TracerProvider | None = None
_provider_lock = threading.Lock()


class _InstanceIds(RandomIdGenerator):
    """Random ids, except for an instance's root span, whose ids derive from the instance."""

    def generate_span_id(self) -> int:
        forced = _forced_ids.get()
        return forced[1] if forced is not None else super().generate_span_id()

    def generate_trace_id(self) -> int:
        forced = _forced_ids.get()
        return forced[0] if forced is not None else super().generate_trace_id()


class JsonLinesExporter(SpanExporter):
    """Appends each finished span to a file as one JSON object per line."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._lock = threading.Lock()
        path.parent.mkdir(parents=True, exist_ok=True)

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        lines = "".join(span.to_json(indent=None) + "\n" for span in spans)
        with self._lock, self._path.open("a", encoding="utf-8") as out:
            out.write(lines)
        return SpanExportResult.SUCCESS


def configure(
    component: str, otlp_endpoint: str = "", trace_file: str = "", exporters: Sequence[SpanExporter] = ()
) -> TracerProvider:
    """Installs the process's tracer provider (once; later calls add `exporters` to it), exporting to an
    OTLP collector (`CONSULTFLOW_OTLP_ENDPOINT`) and a JSON-lines file (`CONSULTFLOW_TRACE_FILE`) when
    given."""
    global _provider
    with _provider_lock:
        if _provider is None:
            _provider = TracerProvider(
                resource=Resource.create({"service.name": f"consultflow-{component}"}),
                id_generator=_InstanceIds(),
            )
            if otlp_endpoint:
                from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

                _provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=otlp_endpoint)))
            if trace_file:
                _provider.add_span_processor(SimpleSpanProcessor(JsonLinesExporter(Path(trace_file))))
            trace.set_tracer_provider(_provider)
        for exporter in exporters:
            _provider.add_span_processor(SimpleSpanProcessor(exporter))
        return _provider


def shutdown() -> None:
    """Sends what is still buffered (at a component's stop)."""
    if _provider is not None:
        _provider.force_flush(5000)


_TRACER = trace.get_tracer(TRACER)
"""A proxy until `configure` installs the provider, then that provider's tracer: looked up once (a
lookup per span cost as much as the span)."""


def tracer() -> trace.Tracer:
    return _TRACER


# ------------------------------------------------------------------------------------ propagation


def with_trace_context(headers: Mapping[str, str] | None) -> Mapping[str, str] | None:
    """`headers` with the current trace context added (unchanged when there is none)."""
    carrier: dict[str, str] = {}
    PROPAGATOR.inject(carrier)
    if not carrier:
        return headers
    return {**(headers or {}), **carrier}


def context_from(carrier: Mapping[str, str] | None) -> otel_context.Context:
    """The trace context a message's headers or a call's metadata carry (an empty one when none)."""
    return PROPAGATOR.extract(dict(carrier or {}))


def metadata_with_context(
    metadata: Sequence[tuple[str, str | bytes]] | None,
) -> list[tuple[str, str | bytes]] | None:
    """gRPC metadata with the current trace context added (unchanged when there is none)."""
    carrier: dict[str, str] = {}
    PROPAGATOR.inject(carrier)
    if not carrier:
        return list(metadata) if metadata is not None else None
    return [*(metadata or ()), *carrier.items()]


def current_ids() -> tuple[str, str] | None:
    """The current trace and span id in hex, or None outside any trace (what a log line carries)."""
    span_context = trace.get_current_span().get_span_context()
    if not span_context.is_valid:
        return None
    return format(span_context.trace_id, "032x"), format(span_context.span_id, "016x")


# --------------------------------------------------------------------------------------- spans


def start_span(
    name: str,
    parent: otel_context.Context | None = None,
    kind: SpanKind = SpanKind.INTERNAL,
    attributes: Attributes = None,
    links: Sequence[Link] = (),
) -> Span:
    """A span under `parent` (the current context when None). Without a tracer provider the parent's
    context is kept, so ids still travel on."""
    span = tracer().start_span(name, context=parent, kind=kind, attributes=attributes, links=links)
    if not span.get_span_context().is_valid:
        inherited = trace.get_current_span(parent).get_span_context()
        if inherited.is_valid:
            return NonRecordingSpan(inherited)
    return span


@contextmanager
def activated(span: Span) -> Iterator[Span]:
    """Makes `span` current for the block and ends it after, recording an exception that escapes."""
    token = otel_context.attach(trace.set_span_in_context(span))
    try:
        yield span
    except BaseException as error:
        span.set_attribute("error.type", type(error).__name__)
        raise
    finally:
        otel_context.detach(token)
        span.end()


def instance_root(instance_id: str) -> SpanContext:
    """The root span context of an instance's trace, derived from its id alone."""
    try:
        trace_id = uuid.UUID(instance_id).int
    except ValueError:
        trace_id = int.from_bytes(hashlib.sha256(instance_id.encode()).digest()[:16], "big")
    span_id = int.from_bytes(hashlib.sha256(f"root:{instance_id}".encode()).digest()[:8], "big")
    return SpanContext(
        trace_id=trace_id or 1,
        span_id=span_id or 1,
        is_remote=True,
        trace_flags=TraceFlags(TraceFlags.SAMPLED),
    )


def start_instance_span(name: str, instance_id: str, new: bool, attributes: Attributes = None) -> Span:
    """A span in the instance's trace: its root when `new` (the start), else a child of the current span
    when that is already in the instance's trace, or of the root (linked to the current one) when not."""
    root = instance_root(instance_id)
    current = trace.get_current_span().get_span_context()
    same_trace = current.is_valid and current.trace_id == root.trace_id
    links = [Link(current)] if current.is_valid and not same_trace else []
    if new:
        token = _forced_ids.set((root.trace_id, root.span_id))
        try:
            span = start_span(name, otel_context.Context(), attributes=attributes, links=links)
        finally:
            _forced_ids.reset(token)
    elif same_trace:
        span = start_span(name, attributes=attributes)
    else:
        under_root = trace.set_span_in_context(NonRecordingSpan(root))
        span = start_span(name, under_root, attributes=attributes, links=links)
    if not span.get_span_context().is_valid:
        return NonRecordingSpan(root)  # no tracer provider: the instance's ids still reach logs and messages
    return span
