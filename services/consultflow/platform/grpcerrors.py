"""Domain errors ⇄ gRPC status codes: the one table, used in both directions.

Outbound, the server's interceptor answers a `DomainError` with `status_of(error)`; an `InvalidArgument`
also carries a `google.rpc.BadRequest` field violation in the status details, so a form or a script can
put the error next to its field without parsing the text. Inbound, `error_from_rpc` turns a failed call
to another service back into the domain error it stands for.
"""

from __future__ import annotations

from dataclasses import dataclass

import grpc
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from consultflow.platform.errors import (
    AlreadyExists,
    Conflict,
    DomainError,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    ResourceExhausted,
    Unauthenticated,
    Unavailable,
)

CODES: dict[type[DomainError], grpc.StatusCode] = {
    InvalidArgument: grpc.StatusCode.INVALID_ARGUMENT,
    NotFound: grpc.StatusCode.NOT_FOUND,
    FailedPrecondition: grpc.StatusCode.FAILED_PRECONDITION,
    AlreadyExists: grpc.StatusCode.ALREADY_EXISTS,
    Conflict: grpc.StatusCode.ABORTED,
    Unavailable: grpc.StatusCode.UNAVAILABLE,
    ResourceExhausted: grpc.StatusCode.RESOURCE_EXHAUSTED,
    Unauthenticated: grpc.StatusCode.UNAUTHENTICATED,
    PermissionDenied: grpc.StatusCode.PERMISSION_DENIED,
}
"""The status each domain error is answered with (a subclass answers as its base)."""

_ERRORS: dict[grpc.StatusCode, type[DomainError]] = {
    grpc.StatusCode.NOT_FOUND: NotFound,
    grpc.StatusCode.FAILED_PRECONDITION: FailedPrecondition,
    grpc.StatusCode.ALREADY_EXISTS: AlreadyExists,
    grpc.StatusCode.ABORTED: Conflict,
    grpc.StatusCode.UNAVAILABLE: Unavailable,
    grpc.StatusCode.DEADLINE_EXCEEDED: Unavailable,
    grpc.StatusCode.RESOURCE_EXHAUSTED: ResourceExhausted,
    grpc.StatusCode.UNAUTHENTICATED: Unauthenticated,
    grpc.StatusCode.PERMISSION_DENIED: PermissionDenied,
}
"""What a status received from another service means here; anything unlisted counts as Unavailable."""


@dataclass(frozen=True)
class RpcStatus:
    """A status to abort a call with: code, message and the trailing metadata carrying its details."""

    code: grpc.StatusCode
    message: str
    trailing_metadata: tuple[tuple[str, str | bytes], ...] = ()


def code_of(error: DomainError) -> grpc.StatusCode:
    for kind, code in CODES.items():
        if isinstance(error, kind):
            return code
    return grpc.StatusCode.UNKNOWN


def status_of(error: DomainError) -> RpcStatus:
    """The status that answers `error`, with a BadRequest field violation for an invalid argument."""
    code = code_of(error)
    if not isinstance(error, InvalidArgument):
        return RpcStatus(code, error.message)
    violation = error_details_pb2.BadRequest.FieldViolation(field=error.field, description=error.problem)
    status = status_pb2.Status(code=code_pb2.INVALID_ARGUMENT, message=error.message)
    status.details.add().Pack(error_details_pb2.BadRequest(field_violations=[violation]))
    rich = rpc_status.to_status(status)
    return RpcStatus(code, error.message, tuple(rich.trailing_metadata))


def field_violations(error: grpc.RpcError) -> list[tuple[str, str]]:
    """The (field, description) pairs a failed call's status details name; empty when there are none."""
    status = rpc_status.from_call(error) if isinstance(error, grpc.Call) else None
    if status is None:
        return []
    found: list[tuple[str, str]] = []
    for detail in status.details:
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            request = error_details_pb2.BadRequest()
            detail.Unpack(request)
            found.extend((v.field, v.description) for v in request.field_violations)
    return found


def error_from_rpc(error: grpc.RpcError, what: str) -> DomainError:
    """Translates a failed call to another service into a domain error that keeps its meaning."""
    code = error.code() if isinstance(error, grpc.Call) else grpc.StatusCode.UNKNOWN
    details = error.details() if isinstance(error, grpc.Call) else str(error)
    if code == grpc.StatusCode.INVALID_ARGUMENT:
        return InvalidArgument(what, details or "invalid")
    return _ERRORS.get(code, Unavailable)(f"{what}: {details}")
