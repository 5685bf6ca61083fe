"""The gRPC server bootstrap every component uses: health, reflection, one error mapping, graceful stop.

Servicer methods may be plain functions (they run on the blocking-work thread pool, which suits
SQLAlchemy, admitted by `Admission` so overload is answered, never silently cancelled) or coroutines (for
streams). A request that cannot be decoded or holds control characters is INVALID_ARGUMENT naming the
field (`requestcheck`); domain errors raised anywhere below a servicer become the status code they name;
a busy database is UNAVAILABLE with a retry hint; anything else is logged and answered INTERNAL with a
reference, never a crash.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import contextvars
import inspect
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any

import grpc
from google.protobuf.message import Message
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1.health import aio as health_aio
from grpc_reflection.v1alpha import reflection
from opentelemetry.trace import SpanKind, Status, StatusCode

from consultflow.platform import metrics, tracing
from consultflow.platform.db import busy_error
from consultflow.platform.errors import DomainError, ResourceExhausted, Unavailable
from consultflow.platform.grpcerrors import RpcStatus, status_of
from consultflow.platform.limits import DEFAULT_LIMITS, Limits
from consultflow.platform.requestcheck import Undecodable, check_request, tolerant
from consultflow.platform.security import Security

log = logging.getLogger(__name__)

MAX_MESSAGE_BYTES = 8 * 1024 * 1024


@dataclass(frozen=True)
class Registration:
    """One gRPC service to serve: the generated `add_…_to_server` function, its servicer and full name."""

    add_to_server: Callable[[Any, grpc.aio.Server], None]
    servicer: object
    name: str


def _abort_for(error: BaseException, method: str) -> RpcStatus:
    if isinstance(error, DomainError):
        return status_of(error)
    busy = busy_error(error)
    if busy is not None:
        log.warning("%s: %s", method, busy.message)
        return status_of(busy)
    reference = uuid.uuid4().hex[:12]
    log.error("unexpected error in %s (ref %s)", method, reference, exc_info=error)
    return RpcStatus(grpc.StatusCode.INTERNAL, f"internal error (ref {reference}); see the server log")


class Admission:
    """Bounds the calls waiting for a database thread, so an overloaded component answers every call.

    Under a burst, calls used to pile up where nobody answered them: in gRPC core's queue of calls the
    server had not taken yet (past 1000 it drops calls at random, unlogged: the callers' CANCELLED) and on
    the executor's unbounded queue, where they waited past their deadline and still did their work after
    the caller gave up. Now gRPC hands every call over (`Limits.max_pending_calls`), a call beyond
    `capacity` is answered RESOURCE_EXHAUSTED at once, and one whose deadline has (nearly) passed when a
    thread takes it is answered UNAVAILABLE without doing its work, both with a retry hint; each is
    counted (`refused`, `abandoned`) and logged, one line per second at most.
    """

    def __init__(self, threads: int, limits: Limits = DEFAULT_LIMITS) -> None:
        self.capacity = threads + limits.max_queued_calls
        self.min_budget = limits.min_call_budget_ms / 1000
        self.in_flight = 0
        self.refused = 0
        self.abandoned = 0
        self._lock = threading.Lock()
        self._last_report = 0.0
        self._unreported: collections.Counter[str] = collections.Counter()

    def enter(self, method: str) -> None:
        """Takes a place for a call, or raises ResourceExhausted when all are taken."""
        with self._lock:
            if self.in_flight < self.capacity:
                self.in_flight += 1
                return
        self.report(method, "refused: too many calls waiting")
        raise ResourceExhausted(
            f"the server is overloaded ({self.capacity} calls in progress)", RETRY_AFTER_SECONDS
        )

    def leave(self) -> None:
        with self._lock:
            self.in_flight -= 1

    def start(self, method: str, deadline: float | None) -> None:
        """Called on the worker thread: refuses a call whose deadline leaves no time to do its work."""
        if deadline is None:
            return
        left = deadline - time.monotonic()
        if left < self.min_budget:
            self.report(method, "refused: deadline passed while waiting")
            raise Unavailable(
                "the server is overloaded (the call waited out its deadline)", RETRY_AFTER_SECONDS
            )

    def report(self, method: str, what: str) -> None:
        """Counts one overloaded call and logs the count at most once a second."""
        now = time.monotonic()
        with self._lock:
            if what.startswith("refused"):
                self.refused += 1
            else:
                self.abandoned += 1
            self._unreported[what] += 1
            if now - self._last_report < 1.0:
                return
            self._last_report = now
            counts, self._unreported = dict(self._unreported), collections.Counter()
        for kind, n in counts.items():
            log.warning(
                "overloaded: %d call(s) %s (last %s; %d in progress, capacity %d)",
                n,
                kind,
                method,
                self.in_flight,
                self.capacity,
                extra={"overload": kind, "calls": n, "refused_total": self.refused},
            )


RETRY_AFTER_SECONDS = 1.0
"""What an overloaded server asks a caller to wait before trying again."""


UNOBSERVED = ("/grpc.health.", "/grpc.reflection.")
"""Probes and tool discovery: neither counted nor traced (kubelet asks every few seconds)."""


class ObservingInterceptor(grpc.aio.ServerInterceptor):
    """The outermost interceptor: every call — refused ones too — is counted by method and status code
    (`consultflow_grpc_server_handled_total`), timed, and runs in a server span under the caller's trace
    context (`traceparent` metadata)."""

    async def intercept_service(
        self, continuation: Callable[[grpc.HandlerCallDetails], Any], details: grpc.HandlerCallDetails
    ) -> Any:
        handler = await continuation(details)
        method = details.method
        if handler is None or method.startswith(UNOBSERVED):
            return handler
        if handler.unary_unary is not None:
            return handler._replace(unary_unary=_observed_unary(handler.unary_unary, method))
        if handler.unary_stream is not None:
            return handler._replace(unary_stream=_observed_stream(handler.unary_stream, method))
        return handler


@contextlib.contextmanager
def _observed(method: str, context: grpc.aio.ServicerContext[Any, Any]) -> Iterator[None]:
    """A call's server span (under the caller's `traceparent`), its count by status code and its time."""
    metadata = {k: v for k, v in (context.invocation_metadata() or ()) if isinstance(v, str)}
    span = tracing.start_span(
        method.lstrip("/"),
        tracing.context_from(metadata),
        SpanKind.SERVER,
        {"rpc.system": "grpc", "rpc.method": method},
    )
    started = time.perf_counter()
    code = grpc.StatusCode.UNKNOWN
    with tracing.activated(span):
        try:
            yield
            code = context.code() or grpc.StatusCode.OK
        except (asyncio.CancelledError, GeneratorExit):
            code = grpc.StatusCode.CANCELLED  # the caller left, or its deadline passed
            raise
        except grpc.aio.AbortError:
            code = context.code() or grpc.StatusCode.UNKNOWN
            raise
        finally:
            metrics.GRPC_HANDLED.labels(method, code.name).inc()
            metrics.GRPC_SECONDS.labels(method).observe(time.perf_counter() - started)
            span.set_attribute("rpc.grpc.status_code", code.value[0])
            if code not in (grpc.StatusCode.OK, grpc.StatusCode.CANCELLED):
                span.set_status(Status(StatusCode.ERROR, code.name))


def _observed_unary(fn: Callable[..., Any], method: str) -> Callable[..., Any]:
    """`fn` is a coroutine function: `ErrorMappingInterceptor`, below this one, makes every unary method
    one (a blocking servicer method runs on the executor, in a copy of this context)."""

    async def call(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        with _observed(method, context):
            return await fn(request, context)

    return call


def _observed_stream(fn: Callable[..., Any], method: str) -> Callable[..., Any]:
    async def stream(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        with _observed(method, context):
            async for item in fn(request, context):
                yield item

    return stream


class ErrorMappingInterceptor(grpc.aio.ServerInterceptor):
    """The one place requests are admitted and failures become precise status codes: an undecodable
    request or one with control characters is INVALID_ARGUMENT naming the field, a blocking handler runs
    on the executor under `Admission`, and exceptions that escape a servicer become their status codes."""

    def __init__(self, executor: Executor | None = None, admission: Admission | None = None) -> None:
        self._executor = executor
        self._admission = admission or Admission(4)

    async def intercept_service(
        self, continuation: Callable[[grpc.HandlerCallDetails], Any], details: grpc.HandlerCallDetails
    ) -> Any:
        handler = await continuation(details)
        if handler is None:
            return None
        method = details.method
        if handler.unary_unary is not None:
            return handler._replace(
                unary_unary=self._wrap(handler.unary_unary, method),
                request_deserializer=tolerant(handler.request_deserializer),
            )
        if handler.unary_stream is not None:
            return handler._replace(
                unary_stream=_wrap_stream(handler.unary_stream, method),
                request_deserializer=tolerant(handler.request_deserializer),
            )
        return handler

    def _wrap(self, fn: Callable[..., Any], method: str) -> Callable[..., Any]:
        if inspect.iscoroutinefunction(fn):

            async def call_async(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
                try:
                    return await fn(_admitted(request), context)
                except grpc.aio.AbortError:
                    raise
                except Exception as error:
                    status = _abort_for(error, method)
                    await context.abort(status.code, status.message, status.trailing_metadata)

            return call_async

        admission = self._admission
        executor = self._executor

        def run(request: Any, context: Any, deadline: float | None) -> Any:
            admission.start(method, deadline)
            return fn(request, context)

        async def call_blocking(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            # A blocking handler runs on the executor as grpcio would run it, but admitted: a bounded
            # number wait, and one that waited out its deadline is answered rather than started.
            try:
                request = _admitted(request)
                admission.enter(method)
                remaining = context.time_remaining()
                deadline = None if remaining is None else time.monotonic() + remaining
                try:
                    work = asyncio.get_running_loop().run_in_executor(
                        executor, contextvars.copy_context().run, run, request, context, deadline
                    )
                except BaseException:
                    admission.leave()
                    raise
                work.add_done_callback(_finished(admission))
                try:
                    return await asyncio.shield(work)
                except asyncio.CancelledError:
                    admission.report(method, "ended by the caller or their deadline while running")
                    raise
            except grpc.aio.AbortError:
                raise
            except Exception as error:
                status = _abort_for(error, method)
                await context.abort(status.code, status.message, status.trailing_metadata)

        return call_blocking


def _finished(admission: Admission) -> Callable[[asyncio.Future[Any]], None]:
    """Frees the call's place once its work has ended (not when its caller left: the thread still runs),
    and takes the result of work nobody awaits any more, so asyncio does not report it as lost."""

    def done(work: asyncio.Future[Any]) -> None:
        admission.leave()
        if not work.cancelled():
            work.exception()

    return done


def _admitted(request: Any) -> Any:
    """The request if it may reach a servicer; raises InvalidArgument naming the offending field."""
    if isinstance(request, Undecodable):
        raise request.error
    if isinstance(request, Message):
        check_request(request)
    return request


def _wrap_stream(fn: Callable[..., Any], method: str) -> Callable[..., Any]:
    async def stream(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        try:
            async for item in fn(_admitted(request), context):
                yield item
        except grpc.aio.AbortError:
            raise
        except Exception as error:
            status = _abort_for(error, method)
            await context.abort(status.code, status.message, status.trailing_metadata)

    return stream


@dataclass
class Server:
    """A started gRPC server with its health servicer."""

    server: grpc.aio.Server
    port: int
    health: health_aio.HealthServicer
    service_names: Sequence[str]
    probes: grpc.aio.Server | None = None  # the plaintext health-only listener, if any
    admission: Admission | None = None  # counts the calls refused for overload

    async def set_serving(self) -> None:
        for name in ("", *self.service_names):
            await self.health.set(name, health_pb2.HealthCheckResponse.SERVING)

    async def stop(self, grace: float = 5.0) -> None:
        """Reports NOT_SERVING, lets running calls finish for `grace` seconds, then stops."""
        await self.health.enter_graceful_shutdown()
        await self.server.stop(grace)
        if self.probes is not None:
            await self.probes.stop(None)


async def start_server(
    address: str,
    registrations: Sequence[Registration],
    executor: Executor,
    security: Security,
    limits: Limits = DEFAULT_LIMITS,
    threads: int = 4,
) -> Server:
    """Binds `address` over TLS (port 0 picks one), authenticates every call, adds health and reflection,
    starts; reports NOT_SERVING until `set_serving()` so probes wait for the component to be ready. With a
    health address, a second, plaintext listener serves the health service alone (kubelet probes)."""
    admission = Admission(threads, limits)
    server = grpc.aio.server(
        migration_thread_pool=executor,
        interceptors=[
            ObservingInterceptor(),
            security.interceptor(),
            ErrorMappingInterceptor(executor, admission),
        ],
        options=[
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
            ("grpc.so_reuseport", 0),
            # gRPC core holds calls the server has not taken yet; past the soft limit (1000 by default) it
            # drops them at random, unlogged, and callers see CANCELLED. Take them all and let Admission
            # answer them instead.
            ("grpc.server.max_pending_requests", limits.max_pending_calls),
            ("grpc.server.max_pending_requests_hard_limit", 2 * limits.max_pending_calls),
        ],
    )
    for registration in registrations:
        registration.add_to_server(registration.servicer, server)
    health = health_aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health, server)
    names = [r.name for r in registrations]
    for name in ("", *names):
        await health.set(name, health_pb2.HealthCheckResponse.NOT_SERVING)
    reflection.enable_server_reflection(
        [*names, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name, reflection.SERVICE_NAME], server
    )
    port = server.add_secure_port(address, security.server_credentials())
    if port == 0:
        raise RuntimeError(f"cannot listen on {address}")
    await server.start()
    probes = await _health_listener(security.settings.health_address, health)
    return Server(
        server=server, port=port, health=health, service_names=names, probes=probes, admission=admission
    )


async def _health_listener(address: str, health: health_aio.HealthServicer) -> grpc.aio.Server | None:
    """The health service alone on a plaintext port: it answers SERVING or not, and nothing else."""
    if not address:
        return None
    probes = grpc.aio.server()
    health_pb2_grpc.add_HealthServicer_to_server(health, probes)
    if probes.add_insecure_port(address) == 0:
        raise RuntimeError(f"cannot listen on {address}")
    await probes.start()
    return probes
