"""What the contracts use cases reach outside the service through: the parties of a contract come from
crm, by an adapter over `CrmService.GetClient` that returns frozen dataclasses and turns every failure
into a domain error that keeps its meaning; `Dependencies` hands it to the servicer and the job handlers."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import grpc

from consultflow.api.crm.v1 import crm_pb2, crm_pb2_grpc
from consultflow.platform.bootstrap import CALL_TIMEOUT_SECONDS, call_options
from consultflow.platform.errors import NotFound, Unavailable
from consultflow.platform.grpcerrors import error_from_rpc


@dataclass(frozen=True)
class ContactInfo:
    name: str
    email: str
    phone: str
    role: str


@dataclass(frozen=True)
class ClientInfo:
    """A client as crm knows it, with the people to contact."""

    client_id: str
    name: str
    industry: str
    contacts: tuple[ContactInfo, ...]


class ClientDirectory(Protocol):
    """Where contracts looks clients up (crm over gRPC in production)."""

    def client(self, client_id: str) -> ClientInfo: ...


class CrmClients:
    """`ClientDirectory` over the crm service's gRPC API, with a deadline on every call.

    crm unreachable (or slower than the deadline) is `Unavailable`: an RPC answers UNAVAILABLE and a job
    fails with retries left. An unknown client is `NotFound`.
    """

    def __init__(self, channel: Callable[[], grpc.Channel], timeout: float = CALL_TIMEOUT_SECONDS) -> None:
        self._channel = channel
        self._timeout = timeout
        self._stub: crm_pb2_grpc.CrmServiceStub | None = None

    def _crm(self) -> crm_pb2_grpc.CrmServiceStub:
        if self._stub is None:
            try:
                self._stub = crm_pb2_grpc.CrmServiceStub(self._channel())
            except RuntimeError as error:  # the address is not configured
                raise Unavailable(f"crm is unavailable: {error}") from error
        return self._stub

    def client(self, client_id: str) -> ClientInfo:
        try:
            reply = self._crm().GetClient(
                crm_pb2.GetClientRequest(client_id=client_id), **call_options(self._timeout)
            )
        except grpc.RpcError as error:
            failure = error_from_rpc(error, "crm GetClient")
            if isinstance(failure, NotFound):
                raise NotFound("client", client_id) from error
            if isinstance(failure, Unavailable):
                raise Unavailable(
                    f"crm is unavailable, so the client's details for the contract cannot be fetched "
                    f"({failure.message}); try again later"
                ) from error
            raise failure from error
        return ClientInfo(
            client_id=reply.client_id,
            name=reply.name,
            industry=reply.industry,
            contacts=tuple(ContactInfo(c.name, c.email, c.phone, c.role) for c in reply.contacts),
        )


@dataclass(frozen=True)
class Dependencies:
    """The adapters the servicer and the job handlers receive, built once at start (`app.build`)."""

    crm: ClientDirectory
