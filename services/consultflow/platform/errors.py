"""Domain errors: what a use case refuses, in the domain's words, with no transport attached.

Use cases raise these anywhere; `platform/grpcerrors.py` is the one table that maps them to gRPC status
codes on the way out (the server's interceptor) and back on the way in (calls to other services).
"""

from __future__ import annotations

MESSAGE_LIMIT = 1000
"""The longest error message kept: a caller's megabyte of input is never echoed back (or logged)."""
SHOWN_LIMIT = 200
"""The longest piece of a caller's value an error message quotes."""


def clip(text: str, limit: int = MESSAGE_LIMIT) -> str:
    """`text` cut at `limit` characters, saying how long it was: the one rule for what errors echo."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… ({len(text)} characters)"


def shown(value: object, limit: int = SHOWN_LIMIT) -> str:
    """`value`'s repr for an error message, at most about `limit` characters (a long string is cut before
    its repr is built, so a megabyte costs nothing)."""
    if isinstance(value, str | bytes) and len(value) > limit:
        return f"{value[:limit]!r}… ({len(value)} characters)"
    return clip(repr(value), limit)


class DomainError(Exception):
    """A request the domain refuses; its message is clipped, so no error carries a caller's megabyte."""

    def __init__(self, message: str) -> None:
        message = clip(message)
        super().__init__(message)
        self.message = message


class InvalidArgument(DomainError):
    """A field is missing or malformed; `field` names it and the message starts with it."""

    def __init__(self, field: str, problem: str) -> None:
        field, problem = clip(field, SHOWN_LIMIT), clip(problem)
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem


class NotFound(DomainError):
    """An id names nothing."""

    def __init__(self, kind: str, key: str | None = None) -> None:
        super().__init__(kind if key is None else f"{kind} {shown(key)} not found")


class FailedPrecondition(DomainError):
    """The request is well formed but the rules or the current state forbid it."""


class AlreadyExists(DomainError):
    """Creating something whose key is taken."""


class Conflict(DomainError):
    """A concurrent change won (optimistic lock); the caller may retry."""


class Unavailable(DomainError):
    """A dependency (another service, the database) cannot be reached now; the caller may retry, after
    `retry_after` seconds when that is known (sent as a `google.rpc.RetryInfo`)."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ResourceExhausted(DomainError):
    """A payload or request is larger than allowed, or the server is overloaded (then `retry_after` says
    when to try again)."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


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
