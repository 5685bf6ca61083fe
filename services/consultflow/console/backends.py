"""The console's gRPC side: one TLS channel per component, every call carrying the signed-in person's
token, and failed calls turned into the HTTP errors of the console's API."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import grpc

from consultflow import SERVICES
from consultflow.api.catalog.v1 import catalog_pb2_grpc
from consultflow.api.orchestrator.v1 import orchestrator_pb2_grpc
from consultflow.platform.grpcerrors import field_violations
from consultflow.platform.security import secure_aio_channel

if TYPE_CHECKING:
    from consultflow.api.catalog.v1.catalog_pb2_grpc import OperationCatalogAsyncStub
    from consultflow.api.orchestrator.v1.orchestrator_pb2_grpc import OrchestratorServiceAsyncStub

CALL_TIMEOUT_SECONDS = 15.0

HTTP_STATUS = {
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.OUT_OF_RANGE: 400,
    grpc.StatusCode.FAILED_PRECONDITION: 409,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.ABORTED: 409,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.UNAUTHENTICATED: 401,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.DEADLINE_EXCEEDED: 504,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.UNIMPLEMENTED: 501,
}


@dataclass
class ApiError(Exception):
    """An error answer of the console's API: `{"error": {code, message, field_violations}}`."""

    status: int
    code: str
    message: str
    field_violations: list[tuple[str, str]] = field(default_factory=list)

    def body(self) -> dict[str, Any]:
        return {
            "error": {
                "code": self.code,
                "message": self.message,
                "field_violations": [{"field": f, "description": d} for f, d in self.field_violations],
            }
        }


def bad_request(field_name: str, description: str) -> ApiError:
    """A request the console refuses itself, naming the field as a component would."""
    return ApiError(400, "INVALID_ARGUMENT", f"{field_name}: {description}", [(field_name, description)])


def from_rpc(error: grpc.aio.AioRpcError) -> ApiError:
    code = error.code()
    return ApiError(
        HTTP_STATUS.get(code, 500), code.name, error.details() or code.name, field_violations(error)
    )


class Backends:
    """Channels to the orchestrator and the five services, opened on the event loop that uses them."""

    def __init__(self, addresses: dict[str, str], ca: Path) -> None:
        self._channels = {name: secure_aio_channel(address, ca) for name, address in addresses.items()}

    def orchestrator(self) -> OrchestratorServiceAsyncStub:
        channel = self._channels.get("orchestrator")
        if channel is None:
            raise ApiError(503, "UNAVAILABLE", "this console knows no orchestrator address")
        return orchestrator_pb2_grpc.OrchestratorServiceStub(channel)

    def catalogues(self) -> dict[str, OperationCatalogAsyncStub]:
        """The services this console knows the address of (all five in a full system)."""
        return {
            name: catalog_pb2_grpc.OperationCatalogStub(self._channels[name])
            for name in SERVICES
            if name in self._channels
        }

    async def close(self) -> None:
        for channel in self._channels.values():
            await channel.close()


def as_person(token: str, timeout: float = CALL_TIMEOUT_SECONDS) -> dict[str, Any]:
    """Keyword arguments that make a call in the person's name."""
    return {"metadata": (("authorization", f"Bearer {token}"),), "timeout": timeout}
