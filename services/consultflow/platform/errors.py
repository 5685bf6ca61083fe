"""Domain errors and their gRPC status codes: raised anywhere, translated in one place.

Use cases raise these; the gRPC bootstrap's interceptor turns them into a status with the message, and
`error_from_rpc` turns a status received from another service back into one of them.
"""

from __future__ import annotations

import grpc


class DomainError(Exception):
    """A request the domain refuses; `code` is the gRPC status it maps to."""

    code = grpc.StatusCode.UNKNOWN

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidArgument(DomainError):
    """A field is missing or malformed; the message names the field."""

    code = grpc.StatusCode.INVALID_ARGUMENT

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field


class NotFound(DomainError):
    """An id names nothing."""

    code = grpc.StatusCode.NOT_FOUND

    def __init__(self, kind: str, key: str | None = None) -> None:
        super().__init__(kind if key is None else f"{kind} {key!r} not found")


class FailedPrecondition(DomainError):
    """The request is well formed but the rules or the current state forbid it."""

    code = grpc.StatusCode.FAILED_PRECONDITION


class AlreadyExists(DomainError):
    """Creating something whose key is taken."""

    code = grpc.StatusCode.ALREADY_EXISTS


class Conflict(DomainError):
    """A concurrent change won (optimistic lock); the caller may retry."""

    code = grpc.StatusCode.ABORTED


class Unavailable(DomainError):
    """A dependency (another service, the database) cannot be reached now; the caller may retry."""

    code = grpc.StatusCode.UNAVAILABLE


class ResourceExhausted(DomainError):
    """A payload or request is larger than allowed."""

    code = grpc.StatusCode.RESOURCE_EXHAUSTED


class BpmnError(Exception):
    """A business error a job handler raises so that a BPMN error boundary event can catch it."""

    def __init__(self, code: str, message: str, variables: dict[str, object] | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.variables = variables or {}


_BY_CODE: dict[grpc.StatusCode, type[DomainError]] = {
    grpc.StatusCode.NOT_FOUND: NotFound,
    grpc.StatusCode.FAILED_PRECONDITION: FailedPrecondition,
    grpc.StatusCode.ALREADY_EXISTS: AlreadyExists,
    grpc.StatusCode.ABORTED: Conflict,
    grpc.StatusCode.UNAVAILABLE: Unavailable,
    grpc.StatusCode.DEADLINE_EXCEEDED: Unavailable,
    grpc.StatusCode.RESOURCE_EXHAUSTED: ResourceExhausted,
}


def error_from_rpc(error: grpc.RpcError, what: str) -> DomainError:
    """Translates a failed call to another service into a domain error that keeps its meaning."""
    code = error.code() if isinstance(error, grpc.Call) else grpc.StatusCode.UNKNOWN
    details = error.details() if isinstance(error, grpc.Call) else str(error)
    message = f"{what}: {details}"
    if code == grpc.StatusCode.INVALID_ARGUMENT:
        return InvalidArgument(what, details or "invalid")
    return _BY_CODE.get(code, Unavailable)(message)
