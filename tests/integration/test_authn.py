"""The authentication interceptor on a real gRPC server over TLS: a call without a valid token is
UNAUTHENTICATED, a known caller without the role is PERMISSION_DENIED and never reaches the method, an
allowed caller reaches it as itself — also when the method runs on the server's thread pool."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from consultflow.platform.authn import AuthInterceptor, current_caller
from consultflow.platform.errors import Unauthenticated
from consultflow.platform.identity import LocalIssuer, TokenVerifier
from consultflow.platform.tls import CertificateFiles, LocalAuthority, channel_credentials

SERVICE = "consultflow.api.orchestrator.v1.OrchestratorService"
reached: list[str] = []


def deploy(request: bytes, context: Any) -> bytes:  # synchronous: runs on the thread pool
    reached.append("deploy")
    return current_caller().name.encode()


async def cancel(request: bytes, context: Any) -> bytes:
    reached.append("cancel")
    return current_caller().name.encode()


async def watch(request: bytes, context: Any) -> AsyncIterator[bytes]:
    reached.append("watch")
    for _ in range(2):
        yield current_caller().name.encode()


def handlers() -> grpc.GenericRpcHandler:
    return grpc.method_handlers_generic_handler(
        SERVICE,
        {
            "DeployResources": grpc.unary_unary_rpc_method_handler(deploy),
            "CancelInstance": grpc.unary_unary_rpc_method_handler(cancel),
            "WatchInstance": grpc.unary_stream_rpc_method_handler(watch),
        },
    )


async def scenario(tmp_path: Path) -> dict[str, Any]:
    issuer = LocalIssuer(tmp_path / "issuer")
    files = LocalAuthority(tmp_path / "ca").issue(tmp_path / "tls", "orchestrator")
    server = grpc.aio.server(
        migration_thread_pool=ThreadPoolExecutor(max_workers=2),
        interceptors=[AuthInterceptor(TokenVerifier(issuer.settings()))],
    )
    server.add_generic_rpc_handlers((handlers(),))
    health_pb2_grpc.add_HealthServicer_to_server(health.aio.HealthServicer(), server)
    port = server.add_secure_port("127.0.0.1:0", CertificateFiles(files).credentials())
    await server.start()
    results: dict[str, Any] = {}
    try:
        async with grpc.aio.secure_channel(f"localhost:{port}", channel_credentials(files.ca)) as channel:

            async def call(name: str, token: str | None) -> Any:
                metadata = (("authorization", f"Bearer {token}"),) if token is not None else None
                try:
                    method: Any
                    if name == "WatchInstance":
                        method = channel.unary_stream(f"/{SERVICE}/{name}")
                        return [item async for item in method(b"", metadata=metadata, timeout=5)]
                    method = channel.unary_unary(f"/{SERVICE}/{name}")
                    return await method(b"", metadata=metadata, timeout=5)
                except grpc.aio.AioRpcError as error:
                    return (error.code(), error.details())

            analyst = issuer.mint("ana", roles=["analyst"])
            ops = issuer.mint("otto", roles=["ops"])
            results["deploy without credentials"] = await call("DeployResources", None)
            results["deploy with garbage"] = await call("DeployResources", "not-a-jwt")
            results["deploy by ops"] = await call("DeployResources", ops)
            results["deploy by analyst"] = await call("DeployResources", analyst)
            results["cancel by analyst"] = await call("CancelInstance", analyst)
            results["cancel by ops"] = await call("CancelInstance", ops)
            results["watch without credentials"] = await call("WatchInstance", None)
            results["watch by analyst"] = await call("WatchInstance", analyst)
            probe = health_pb2_grpc.HealthStub(channel)
            results["health"] = (await probe.Check(health_pb2.HealthCheckRequest(), timeout=5)).status
    finally:
        await server.stop(None)
    return results


def test_only_authenticated_callers_with_the_role_reach_the_method_as_themselves(tmp_path: Path) -> None:
    reached.clear()
    results = asyncio.run(scenario(tmp_path))
    unauthenticated, denied = grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED
    assert results["deploy without credentials"][0] == unauthenticated
    assert "no credentials" in results["deploy without credentials"][1]
    assert results["deploy with garbage"][0] == unauthenticated
    assert results["deploy by ops"] == (denied, f"/{SERVICE}/DeployResources needs one of the roles analyst")
    assert results["deploy by analyst"] == b"ana", "the synchronous method saw the token's caller"
    assert results["cancel by analyst"][0] == denied
    assert results["cancel by ops"] == b"otto"
    assert results["watch without credentials"][0] == unauthenticated
    assert results["watch by analyst"] == [b"ana", b"ana"]
    assert results["health"] == health_pb2.HealthCheckResponse.SERVING, "probes need no token"
    assert reached == ["deploy", "cancel", "watch"], "no refused call reached its method"


def test_outside_a_call_there_is_no_caller() -> None:
    with pytest.raises(Unauthenticated):
        current_caller()
