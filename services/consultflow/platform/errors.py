"""Domain errors: what a use case refuses, in the domain's words, with no transport attached.

Use cases raise these anywhere; `platform/grpcerrors.py` is the one table that maps them to gRPC status
codes on the way out (the server's interceptor) and back on the way in (calls to other services).
"""

from __future__ import annotations


class DomainError(Exception):
    """A request the domain refuses."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidArgument(DomainError):
    """A field is missing or malformed; `field` names it and the message starts with it."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem


class NotFound(DomainError):
    """An id names nothing."""

    def __init__(self, kind: str, key: str | None = None) -> None:
        super().__init__(kind if key is None else f"{kind} {key!r} not found")


class FailedPrecondition(DomainError):
    """The request is well formed but the rules or the current state forbid it."""


class AlreadyExists(DomainError):
    """Creating something whose key is taken."""


class Conflict(DomainError):
    """A concurrent change won (optimistic lock); the caller may retry."""


class Unavailable(DomainError):
    """A dependency (another service, the database) cannot be reached now; the caller may retry."""


class ResourceExhausted(DomainError):
    """A payload or request is larger than allowed."""


class Unauthenticated(DomainError):
    """No credentials, or credentials that do not prove who the caller is."""


class PermissionDenied(DomainError):
    """A known caller asks for something its roles, groups or engagement do not allow."""


class BpmnError(Exception):
    """A business error a job handler raises so that a BPMN error boundary event can catch it."""

    def __init__(self, code: str, message: str, variables: dict[str, object] | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.variables = variables or {}
