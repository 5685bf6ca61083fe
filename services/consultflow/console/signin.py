"""Signing in and out: the one-time link of a local system (`/signin?ticket=…`), the session both ways of
signing in end in, and the page that refuses someone the console is not for."""

from __future__ import annotations

import html
import time
from pathlib import Path

import jwt
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from consultflow.console.sessions import COOKIE
from consultflow.console.tickets import redeem
from consultflow.console.web import check_csrf, session_of, store_of
from consultflow.platform.errors import Unauthenticated
from consultflow.platform.identity import Caller, TokenVerifier, TrustedIssuers
from consultflow.platform.policy import Role

CONSOLE_ROLES = (Role.STAFF, Role.ANALYST, Role.OPS, Role.ADMIN)


def refused(reason: str, status: int = 403) -> HTMLResponse:
    """A page saying why nobody was signed in (no session is made), in the console's own look: its
    stylesheet, its top bar (the name only: nobody is signed in) and a notice."""
    body = (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        "<title>Consultflow console — sign-in refused</title><link rel='icon' href='data:,'>"
        "<link rel='stylesheet' href='/console.css'></head><body>"
        "<header class='topbar'><a class='brand' href='/'>諮詢流程控制台 Consultflow console</a></header>"
        "<main class='page' id='main' data-testid='signin-refused'><h1>登入被拒 Sign-in refused</h1>"
        f"<p class='notice'>{html.escape(reason)}</p></main></body></html>"
    )
    return HTMLResponse(body, status_code=status)


def start_session(request: Request, token: str, expected_name: str = "") -> Response:
    """Checks the person's token as the components will, and signs them in when the console is for them."""
    verifier: TrustedIssuers = request.app.state.verifier
    try:
        caller: Caller = verifier.verify(token)
    except Unauthenticated as error:
        return refused(f"the token does not verify: {error.message}")
    if expected_name and caller.name != expected_name:
        return refused("the token is not for the person the link names")
    if not caller.has_role(*CONSOLE_ROLES):
        return refused(
            f"{caller.name} has no role the console is for (staff, analyst, ops or admin); clients act "
            "through the firm's own channels"
        )
    token_expiry = float(jwt.decode(token, options={"verify_signature": False}).get("exp", 0))
    settings = request.app.state.settings
    expires_at = min(time.time() + settings.session_ttl.total_seconds(), token_expiry)
    store = store_of(request)
    store.delete(request.cookies.get(COOKIE, ""))  # a browser has one session: the one signed in last
    session_id, _ = store.create(caller, token, expires_at)
    response = RedirectResponse("/", status_code=303)
    response.set_cookie(
        COOKIE,
        session_id,
        max_age=max(1, int(expires_at - time.time())),
        httponly=True,
        samesite="lax",
        secure=settings.secure_cookie,
        path="/",
    )
    return response


async def signin(request: Request) -> Response:
    """GET /signin?ticket=…: a link `consultflow console --as NAME` made, accepted once."""
    ticket_dir: Path | None = request.app.state.settings.ticket_dir
    ticket_verifier: TokenVerifier | None = request.app.state.ticket_verifier
    if ticket_dir is None or ticket_verifier is None:
        return refused("sign-in links are off here: sign in with /login", status=404)
    ticket = request.query_params.get("ticket", "")
    if not ticket:
        return refused("the link carries no ticket", status=400)
    try:
        redeemed = redeem(ticket_dir, ticket_verifier, ticket)
    except Unauthenticated as error:
        return refused(f"this sign-in link is not valid: {error.message}")
    return start_session(request, redeemed.token, redeemed.name)


async def logout(request: Request) -> Response:
    session = session_of(request)
    check_csrf(request, session)
    store_of(request).delete(request.cookies.get(COOKIE, ""))
    response = JSONResponse({})
    response.delete_cookie(COOKIE, path="/")
    return response


ROUTES = [Route("/signin", signin), Route("/logout", logout, methods=["POST"])]
