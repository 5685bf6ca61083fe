"""The server side of identity: one interceptor authenticates every call, checks the policy table's role
column, and hands the caller to the method — never a request field.

grpc.aio runs a synchronous servicer method on the migration thread pool, where a context variable set
in the interceptor is not visible; so the caller is set inside a wrapper around the method's own
behaviour, which runs wherever the method runs. A refused call never reaches the servicer: it is answered
UNAUTHENTICATED (no or bad credentials) or PERMISSION_DENIED (known caller, role missing), changing nothing.
"""

from __future__ import annotations

import contextvars
import inspect
from collections.abc import Callable
from typing import Any, Protocol

import grpc

from consultflow.platform import policy
from consultflow.platform.errors import DomainError, Unauthenticated
from consultflow.platform.grpcerrors import code_of
from consultflow.platform.identity import Caller, bearer_token

_CALLER: contextvars.ContextVar[Caller | None] = contextvars.ContextVar("caller", default=None)


def current_caller() -> Caller:
    """The authenticated caller of the call being served; Unauthenticated outside one."""
    caller = _CALLER.get()
    if caller is None:
        raise Unauthenticated("no authenticated caller for this call")
    return caller


class Authenticator(Protocol):
    def verify(self, token: str) -> Caller: ...


Behaviour = Callable[..., Any]
KINDS = ("unary_unary", "unary_stream", "stream_unary", "stream_stream")


def _kind(handler: Any) -> str:
    return next(kind for kind in KINDS if getattr(handler, kind) is not None)


def _as(caller: Caller, behaviour: Behaviour) -> Behaviour:
    """`behaviour` run with `caller` as the current caller, in the thread or task that runs it."""
    if inspect.isasyncgenfunction(behaviour):

        async def stream(request: Any, context: Any) -> Any:
            token = _CALLER.set(caller)
            try:
                async for item in behaviour(request, context):
                    yield item
            finally:
                _CALLER.reset(token)

        return stream
    if inspect.iscoroutinefunction(behaviour):

        async def call(request: Any, context: Any) -> Any:
            token = _CALLER.set(caller)
            try:
                return await behaviour(request, context)
            finally:
                _CALLER.reset(token)

        return call

    def run(request: Any, context: Any) -> Any:
        token = _CALLER.set(caller)
        try:
            return behaviour(request, context)
        finally:
            _CALLER.reset(token)

    return run


def _refusal(handler: Any, error: DomainError) -> Any:
    code, kind = code_of(error), _kind(handler)

    if kind.endswith("stream"):

        async def refuse_stream(request: Any, context: Any) -> Any:
            await context.abort(code, error.message)
            yield  # pragma: no cover - abort raises

        return handler._replace(**{kind: refuse_stream})

    async def refuse(request: Any, context: Any) -> Any:
        await context.abort(code, error.message)

    return handler._replace(**{kind: refuse})


class AuthInterceptor(grpc.aio.ServerInterceptor):
    """Authenticates the bearer token and checks the caller's roles against `policy.POLICY`."""

    def __init__(self, authenticator: Authenticator) -> None:
        self._authenticator = authenticator

    async def intercept_service(
        self, continuation: Callable[[grpc.HandlerCallDetails], Any], details: grpc.HandlerCallDetails
    ) -> Any:
        handler = await continuation(details)
        if handler is None:
            return None  # unknown method: gRPC answers UNIMPLEMENTED
        rule = policy.rule_for(details.method)
        if rule is not None and rule.public:
            return handler
        try:
            caller = self._authenticator.verify(bearer_token(details.invocation_metadata or ()))
            policy.authorize(caller.roles, details.method)
        except DomainError as error:
            return _refusal(handler, error)
        kind = _kind(handler)
        return handler._replace(**{kind: _as(caller, getattr(handler, kind))})
