"""Domain errors ⇄ gRPC status codes: the one table, used in both directions.

Outbound, the server's interceptor answers a `DomainError` with `status_of(error)`; an `InvalidArgument`
also carries a `google.rpc.BadRequest` field violation in the status details, so a form or a script can
put the error next to its field without parsing the text, and an `Unavailable` or `ResourceExhausted`
that knows when to try again carries a `google.rpc.RetryInfo` (the delay is also in the message, for
people). Messages are clipped (`errors.clip`) before they leave. Inbound, `error_from_rpc` turns a failed call
to another service back into the domain error it stands for.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import grpc
from google.protobuf.duration_pb2 import Duration
from google.protobuf.message import Message
from google.rpc import error_details_pb2, status_pb2
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
    clip,
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
    """The status that answers `error`, with a BadRequest field violation for an invalid argument and a
    RetryInfo for an error that says when to retry."""
    code = code_of(error)
    message = clip(error.message)
    if isinstance(error, InvalidArgument):
        violation = error_details_pb2.BadRequest.FieldViolation(field=error.field, description=error.problem)
        return _rich(code, message, error_details_pb2.BadRequest(field_violations=[violation]))
    retry_after = getattr(error, "retry_after", None)
    if isinstance(retry_after, int | float):
        return retry_status(code, message, retry_after)
    return RpcStatus(code, message)


def retry_status(code: grpc.StatusCode, message: str, retry_after: float) -> RpcStatus:
    """A status telling the caller to try again in `retry_after` seconds (RetryInfo and the message)."""
    delay = Duration()
    delay.FromNanoseconds(int(retry_after * 1e9))
    hint = f"retry in {retry_after:g} s"
    text = message if hint in message else f"{message}; {hint}"
    return _rich(code, clip(text), error_details_pb2.RetryInfo(retry_delay=delay))


def _rich(code: grpc.StatusCode, message: str, detail: Message) -> RpcStatus:
    status = status_pb2.Status(code=code.value[0], message=message)
    status.details.add().Pack(detail)
    return RpcStatus(code, message, tuple(rpc_status.to_status(status).trailing_metadata))


_DETAILS_KEY = "grpc-status-details-bin"


def _details(error: grpc.RpcError) -> list[Any]:
    """The rich status details a failed call (blocking or asyncio) carries in its trailing metadata."""
    trailing = getattr(error, "trailing_metadata", None)
    metadata = trailing() if callable(trailing) else None
    for key, value in metadata or ():
        if key == _DETAILS_KEY and isinstance(value, bytes):
            return list(status_pb2.Status.FromString(value).details)
    return []


def field_violations(error: grpc.RpcError) -> list[tuple[str, str]]:
    """The (field, description) pairs a failed call's status details name; empty when there are none."""
    found: list[tuple[str, str]] = []
    for detail in _details(error):
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            request = error_details_pb2.BadRequest()
            detail.Unpack(request)
            found.extend((v.field, v.description) for v in request.field_violations)
    return found


def retry_delay(error: grpc.RpcError) -> float | None:
    """The seconds a failed call's RetryInfo asks to wait, or None when it carries none."""
    for detail in _details(error):
        if detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
            info = error_details_pb2.RetryInfo()
            detail.Unpack(info)
            return float(info.retry_delay.ToNanoseconds()) / 1e9
    return None


def error_from_rpc(error: grpc.RpcError, what: str) -> DomainError:
    """Translates a failed call to another service into a domain error that keeps its meaning (blocking or
    asyncio: grpc.aio's AioRpcError has `code()` and `details()` but is no `grpc.Call`)."""
    code_of, details_of = getattr(error, "code", None), getattr(error, "details", None)
    code = code_of() if callable(code_of) else grpc.StatusCode.UNKNOWN
    details = details_of() if callable(details_of) else str(error)
    if code == grpc.StatusCode.INVALID_ARGUMENT:
        return InvalidArgument(what, details or "invalid")
    kind = _ERRORS.get(code, Unavailable)
    if kind in (Unavailable, ResourceExhausted):
        return kind(f"{what}: {details}", retry_after=retry_delay(error))
    return kind(f"{what}: {details}")
