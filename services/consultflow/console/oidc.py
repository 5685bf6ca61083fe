"""Production sign-in: the OIDC authorization-code flow with PKCE, state and nonce.

/login sends the browser to the provider with a fresh state (bound to this browser by a short cookie), a
nonce and a PKCE challenge; /callback takes the code back, exchanges it at the token endpoint with the
verifier (and the client secret when there is one), checks the ID token's nonce, and signs the person in
with the access token — the token the components accept, checked exactly as they check it.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import re
import secrets
import ssl
import threading
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from consultflow.console.config import OidcClient
from consultflow.console.signin import refused, start_session
from consultflow.platform.errors import Unauthenticated
from consultflow.platform.identity import IssuerSettings, TokenVerifier, fetch_key_set

LOGIN_COOKIE = "consultflow_login"
LOGIN_SECONDS = 600
MAX_PENDING = 10000
_ERROR_CODE = re.compile(r"[a-z_]{1,40}")  # OAuth error codes: access_denied, login_required, …


@dataclass(frozen=True)
class Pending:
    verifier: str
    nonce: str
    started: float


class OidcFlow:
    """The provider's endpoints (from its discovery document) and the sign-ins under way."""

    def __init__(self, client: OidcClient, redirect_uri: str, algorithms: tuple[str, ...]) -> None:
        self.client = client
        self.redirect_uri = redirect_uri
        self._algorithms = algorithms
        self._context = ssl.create_default_context(cafile=client.ca or None)
        self._discovery: dict[str, Any] | None = None
        self._id_tokens: TokenVerifier | None = None
        self._pending: dict[str, Pending] = {}
        self._lock = threading.Lock()

    def _get_json(self, url: str) -> dict[str, Any]:
        with urllib.request.urlopen(url, timeout=10, context=self._context) as response:
            return dict(json.loads(response.read()))

    def discovery(self) -> dict[str, Any]:
        if self._discovery is None:
            url = self.client.issuer.rstrip("/") + "/.well-known/openid-configuration"
            document = self._get_json(url)
            if document.get("issuer") != self.client.issuer:
                raise Unauthenticated(
                    f"the provider at {url} names another issuer: {document.get('issuer')!r}"
                )
            self._discovery = document
        return self._discovery

    def id_token_verifier(self) -> TokenVerifier:
        if self._id_tokens is None:
            jwks_uri = str(self.discovery()["jwks_uri"])
            settings = IssuerSettings(
                issuer=self.client.issuer,
                audience=self.client.client_id,
                jwks_url=jwks_uri,
                algorithms=self._algorithms,
                jwks_ca=self.client.ca,
            )
            self._id_tokens = TokenVerifier(settings, fetch_key_set(jwks_uri, self.client.ca))
        return self._id_tokens

    def begin(self) -> tuple[str, str]:
        """The provider's authorization URL for a new sign-in, and its state."""
        state, nonce, verifier = (secrets.token_urlsafe(32) for _ in range(3))
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        with self._lock:
            now = time.monotonic()
            for key in [k for k, p in self._pending.items() if now - p.started > LOGIN_SECONDS]:
                del self._pending[key]
            if len(self._pending) >= MAX_PENDING:
                self._pending.pop(next(iter(self._pending)))
            self._pending[state] = Pending(verifier, nonce, now)
        query = urllib.parse.urlencode(
            {
                "response_type": "code",
                "client_id": self.client.client_id,
                "redirect_uri": self.redirect_uri,
                "scope": self.client.scopes,
                "state": state,
                "nonce": nonce,
                "code_challenge": challenge,
                "code_challenge_method": "S256",
            }
        )
        return f"{self.discovery()['authorization_endpoint']}?{query}", state

    def take(self, state: str) -> Pending | None:
        with self._lock:
            pending = self._pending.pop(state, None)
        if pending is None or time.monotonic() - pending.started > LOGIN_SECONDS:
            return None
        return pending

    def exchange(self, code: str, pending: Pending) -> str:
        """The access token for `code`, once the ID token that comes with it carries our nonce."""
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": self.redirect_uri,
            "client_id": self.client.client_id,
            "code_verifier": pending.verifier,
        }
        headers = {"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"}
        if self.client.client_secret:
            pair = (
                f"{urllib.parse.quote(self.client.client_id)}:{urllib.parse.quote(self.client.client_secret)}"
            )
            headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()
        request = urllib.request.Request(
            str(self.discovery()["token_endpoint"]),
            data=urllib.parse.urlencode(form).encode(),
            headers=headers,
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=10, context=self._context) as response:
                tokens = dict(json.loads(response.read()))
        except OSError as error:
            raise Unauthenticated(f"the provider refused the code: {error}") from error
        id_token, access_token = tokens.get("id_token"), tokens.get("access_token")
        if not isinstance(id_token, str) or not isinstance(access_token, str):
            raise Unauthenticated("the provider's answer lacks an ID token or an access token")
        claims = self.id_token_verifier().verified_claims(id_token)
        if not secrets.compare_digest(str(claims.get("nonce", "")), pending.nonce):
            raise Unauthenticated("the ID token's nonce is not this sign-in's")
        return access_token


def _flow(request: Request) -> OidcFlow | None:
    flow: OidcFlow | None = request.app.state.oidc
    return flow


async def login(request: Request) -> Response:
    flow = _flow(request)
    if flow is None:
        return refused("no OIDC provider is configured here (CONSULTFLOW_CONSOLE_OIDC_CLIENT_ID)", status=404)
    try:
        url, state = await asyncio.to_thread(flow.begin)
    except (OSError, ValueError, KeyError, Unauthenticated) as error:
        return refused(f"the sign-in provider cannot be reached: {error}", status=503)
    response = RedirectResponse(url, status_code=303)
    response.set_cookie(
        LOGIN_COOKIE,
        state,
        max_age=LOGIN_SECONDS,
        httponly=True,
        samesite="lax",
        secure=request.app.state.settings.secure_cookie,
        path="/callback",
    )
    return response


async def callback(request: Request) -> Response:
    flow = _flow(request)
    if flow is None:
        return refused("no OIDC provider is configured here", status=404)
    params = request.query_params
    if params.get("error"):
        # only a known-shaped code: anybody can send a link to /callback, and free text shown on the
        # console's own page ("your account is locked, call …") would be theirs to write
        code = params.get("error", "")
        shown = code if _ERROR_CODE.fullmatch(code) else "an error"
        return refused(f"the sign-in provider answered {shown}; start again at /login")
    state, code = params.get("state", ""), params.get("code", "")
    if not state or not code or request.cookies.get(LOGIN_COOKIE, "") != state:
        return refused("this sign-in was not started in this browser (state does not match)", status=400)
    pending = flow.take(state)
    if pending is None:
        return refused("this sign-in has expired or was completed already; start again at /login", 400)
    try:
        token = await asyncio.to_thread(flow.exchange, code, pending)
    except (Unauthenticated, ValueError, KeyError) as error:
        return refused(f"the sign-in could not be completed: {error}")
    response = start_session(request, token)
    response.delete_cookie(LOGIN_COOKIE, path="/callback")
    return response


ROUTES = [Route("/login", login), Route("/callback", callback)]
