"""Builds the console's ASGI app from its settings: routes, static front end, security headers, and the
lifespan that opens the gRPC channels and the NATS subscription."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from consultflow.console import api, oidc, signin
from consultflow.console.backends import ApiError, Backends
from consultflow.console.config import ConsoleSettings
from consultflow.console.events import Hub, events
from consultflow.console.oidc import OidcFlow
from consultflow.console.sessions import SessionStore
from consultflow.console.web import api_error_response, rpc_error_response
from consultflow.platform.identity import (
    CONSOLE_TICKET_AUDIENCE,
    IssuerSettings,
    TokenVerifier,
    TrustedIssuers,
)

STATIC = Path(__file__).resolve().parent / "static"
SECURITY_HEADERS = [
    # the bundle is served from here; the diagrams' editor needs inline styles and data: images
    (
        b"content-security-policy",
        b"default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
        b"font-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; "
        b"form-action 'self'",
    ),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),  # a sign-in link's ticket never leaks in a Referer header
    (b"x-frame-options", b"DENY"),
]


PRIVATE_PATHS = ("/api/", "/signin", "/login", "/callback", "/logout")  # never kept by a cache


class SecurityHeaders:
    """Adds SECURITY_HEADERS to every HTTP response, and `no-store` to the personal ones."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        private = str(scope.get("path", "")).startswith(PRIVATE_PATHS)

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                extra = [*SECURITY_HEADERS, *([(b"cache-control", b"no-store")] if private else [])]
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        await self.app(scope, receive, with_headers)


async def healthz(request: Request) -> Response:
    """200 while the console reaches NATS (its live feed); the components have health checks of their own."""
    hub: Hub = request.app.state.hub
    if not hub.connected:
        return JSONResponse({"status": "NATS unreachable"}, status_code=503)
    return JSONResponse({"status": "ok"})


def _ticket_verifier(settings: ConsoleSettings) -> TokenVerifier | None:
    """Sign-in tickets come from the people's issuer too, with the console's own audience."""
    if settings.ticket_dir is None:
        return None
    people = settings.security.issuer
    return TokenVerifier(
        IssuerSettings(
            issuer=people.issuer,
            audience=CONSOLE_TICKET_AUDIENCE,
            jwks_url=people.jwks_url,
            algorithms=people.algorithms,
            claims=people.claims,
            production=people.production,
        )
    )


def build(settings: ConsoleSettings) -> Starlette:
    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        app.state.backends = Backends(settings.addresses, settings.security.ca_file)
        await app.state.hub.start()
        try:
            yield
        finally:
            await app.state.hub.stop()
            await app.state.backends.close()

    routes = [
        Route("/healthz", healthz),
        Route("/api/events", events),
        *api.ROUTES,
        *signin.ROUTES,
        *oidc.ROUTES,
        Mount("/", StaticFiles(directory=STATIC, html=True), name="static"),
    ]
    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={ApiError: api_error_response, grpc.aio.AioRpcError: rpc_error_response},
    )
    app.add_middleware(SecurityHeaders)
    app.state.settings = settings
    app.state.sessions = SessionStore(settings.max_sessions)
    people = [TokenVerifier(settings.security.issuer)]
    app.state.verifier = TrustedIssuers(people)
    app.state.ticket_verifier = _ticket_verifier(settings)
    app.state.oidc = (
        OidcFlow(settings.oidc, f"{settings.public_url}/callback", settings.security.issuer.algorithms)
        if settings.oidc is not None
        else None
    )
    app.state.hub = Hub(settings.nats_url, settings.nats_credentials)
    return app
