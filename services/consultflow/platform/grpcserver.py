"""The gRPC server bootstrap every component uses: health, reflection, one error mapping, graceful stop.

Servicer methods may be plain functions (they run on the blocking-work thread pool, which suits
SQLAlchemy) or coroutines (for streams). Domain errors raised anywhere below a servicer become the
status code they name; anything else is logged and answered INTERNAL with a reference, never a crash.
"""

from __future__ import annotations

import inspect
import logging
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1.health import aio as health_aio
from grpc_reflection.v1alpha import reflection

from consultflow.platform.errors import DomainError
from consultflow.platform.grpcerrors import RpcStatus, status_of
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
    reference = uuid.uuid4().hex[:12]
    log.error("unexpected error in %s (ref %s)", method, reference, exc_info=error)
    return RpcStatus(grpc.StatusCode.INTERNAL, f"internal error (ref {reference}); see the server log")


class ErrorMappingInterceptor(grpc.aio.ServerInterceptor):
    """Turns exceptions that escape a servicer into precise status codes (the one place that does)."""

    async def intercept_service(
        self, continuation: Callable[[grpc.HandlerCallDetails], Any], details: grpc.HandlerCallDetails
    ) -> Any:
        handler = await continuation(details)
        if handler is None:
            return None
        method = details.method
        if handler.unary_unary is not None:
            return handler._replace(unary_unary=_wrap(handler.unary_unary, method))
        if handler.unary_stream is not None:
            return handler._replace(unary_stream=_wrap_stream(handler.unary_stream, method))
        return handler


def _wrap(fn: Callable[..., Any], method: str) -> Callable[..., Any]:
    if inspect.iscoroutinefunction(fn):

        async def call_async(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            try:
                return await fn(request, context)
            except grpc.aio.AbortError:
                raise
            except Exception as error:
                status = _abort_for(error, method)
                await context.abort(status.code, status.message, status.trailing_metadata)

        return call_async

    def call_sync(request: Any, context: grpc.ServicerContext) -> Any:
        try:
            return fn(request, context)
        except grpc.aio.AbortError:  # the servicer aborted with a status of its own
            raise
        except Exception as error:
            status = _abort_for(error, method)
            context.set_trailing_metadata(status.trailing_metadata)
            context.abort(status.code, status.message)

    return call_sync


def _wrap_stream(fn: Callable[..., Any], method: str) -> Callable[..., Any]:
    async def stream(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        try:
            async for item in fn(request, context):
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
) -> Server:
    """Binds `address` over TLS (port 0 picks one), authenticates every call, adds health and reflection,
    starts; reports NOT_SERVING until `set_serving()` so probes wait for the component to be ready. With a
    health address, a second, plaintext listener serves the health service alone (kubelet probes)."""
    server = grpc.aio.server(
        migration_thread_pool=executor,
        interceptors=[security.interceptor(), ErrorMappingInterceptor()],
        options=[
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
            ("grpc.so_reuseport", 0),
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
    return Server(server=server, port=port, health=health, service_names=names, probes=probes)


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
