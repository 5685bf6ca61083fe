"""Production sign-in: the console's OIDC authorization-code flow with PKCE, state and nonce.

The identity provider here is a fake written for this test (a small Starlette app serving discovery,
authorize, token and its key set over real HTTP): an external IdP cannot run in a test. It is strict
where a real one is — it checks the PKCE verifier against the challenge, the client secret, the redirect
URI, and a code is good once — so the console's side of the flow is what is tested for real.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from consultflow.cli.system import free_port
from consultflow.console.app import build
from consultflow.console.config import OidcClient
from consultflow.platform.identity import IssuerSettings
from consultflow.platform.security import SecuritySettings
from tests.integration.console.conftest import console_settings, serving
from tests.support.identity import local_identity

CLIENT_ID, CLIENT_SECRET = "consultflow-console", "s3cret"


@dataclass
class Provider:
    """The fake IdP's state: who signs in next, and the codes it handed out."""

    url: str
    person: tuple[str, list[str]] = ("nina", ["analyst"])
    key: ec.EllipticCurvePrivateKey = field(default_factory=lambda: ec.generate_private_key(ec.SECP256R1()))
    codes: dict[str, dict[str, Any]] = field(default_factory=dict)

    def sign(self, claims: dict[str, Any]) -> str:
        now = int(time.time())
        body = {"iss": self.url, "iat": now, "exp": now + 300, **claims}
        return jwt.encode(body, self.key, algorithm="ES256", headers={"kid": "k1"})

    def app(self) -> Starlette:
        async def discovery(request: Request) -> Response:
            return JSONResponse(
                {
                    "issuer": self.url,
                    "authorization_endpoint": f"{self.url}/authorize",
                    "token_endpoint": f"{self.url}/token",
                    "jwks_uri": f"{self.url}/jwks",
                }
            )

        async def jwks(request: Request) -> Response:
            public = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(self.key.public_key()))
            return JSONResponse({"keys": [public | {"kid": "k1", "alg": "ES256", "use": "sig"}]})

        async def authorize(request: Request) -> Response:
            q = request.query_params
            assert q["response_type"] == "code" and q["client_id"] == CLIENT_ID
            assert q["code_challenge_method"] == "S256" and "openid" in q["scope"].split()
            code = secrets.token_urlsafe(16)
            self.codes[code] = {**q, "person": self.person}
            query = urllib.parse.urlencode({"code": code, "state": q["state"]})
            return RedirectResponse(f"{q['redirect_uri']}?{query}", status_code=302)

        async def token(request: Request) -> Response:
            form = dict(urllib.parse.parse_qsl((await request.body()).decode()))
            basic = base64.b64decode(request.headers["authorization"].removeprefix("Basic ")).decode()
            if basic != f"{CLIENT_ID}:{CLIENT_SECRET}":
                return JSONResponse({"error": "invalid_client"}, status_code=401)
            grant = self.codes.pop(str(form["code"]), None)  # a code is good once
            verifier = str(form.get("code_verifier", ""))
            challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=")
            if grant is None or challenge.decode() != grant["code_challenge"]:
                return JSONResponse({"error": "invalid_grant"}, status_code=400)
            if form["redirect_uri"] != grant["redirect_uri"]:
                return JSONResponse({"error": "invalid_grant"}, status_code=400)
            name, roles = grant["person"]
            person = {"sub": f"id-{name}", "preferred_username": name, "roles": roles}
            id_token = self.sign({**person, "aud": CLIENT_ID, "nonce": grant["nonce"]})
            access_token = self.sign({**person, "aud": "consultflow"})
            return JSONResponse({"id_token": id_token, "access_token": access_token, "token_type": "Bearer"})

        return Starlette(
            routes=[
                Route("/.well-known/openid-configuration", discovery),
                Route("/jwks", jwks),
                Route("/authorize", authorize),
                Route("/token", token, methods=["POST"]),
            ]
        )


@pytest.fixture(scope="module")
def provider() -> Iterator[Provider]:
    port = free_port()
    found = Provider(f"http://127.0.0.1:{port}")
    with serving(found.app(), port):
        yield found


@pytest.fixture(scope="module")
def console_url(
    provider: Provider, tmp_path_factory: pytest.TempPathFactory, nats_session_url: str
) -> Iterator[str]:
    tls = local_identity().tls
    security = SecuritySettings(
        tls_dir=tls.certificate.parent,
        ca_file=tls.ca,
        issuer=IssuerSettings(
            issuer=provider.url,
            audience="consultflow",
            jwks_url=f"{provider.url}/jwks",
            algorithms=("ES256",),
        ),
        component_issuer=None,
        token_file=None,
    )
    oidc = OidcClient(provider.url, CLIENT_ID, CLIENT_SECRET, "openid profile", "")
    tmp_path: Path = tmp_path_factory.mktemp("oidc")
    settings = console_settings(tmp_path, nats_session_url, {}, security=security, oidc=oidc)
    with serving(build(settings), settings.listen_port) as url:
        yield url


def sign_in(console_url: str) -> tuple[httpx.Client, httpx.Response]:
    browser = httpx.Client(base_url=console_url, timeout=20)
    to_provider = browser.get("/login")
    assert to_provider.status_code == 303
    back = browser.get(to_provider.headers["location"])  # the provider signs the person in
    assert back.status_code == 302
    callback = urllib.parse.urlsplit(back.headers["location"])
    return browser, browser.get(f"{callback.path}?{callback.query}")


def test_the_code_flow_signs_a_person_in_with_a_token_checked_as_the_components_check_it(
    provider: Provider, console_url: str
) -> None:
    provider.person = ("nina", ["analyst"])
    browser, done = sign_in(console_url)
    assert done.status_code == 303 and done.headers["location"] == "/"
    me = browser.get("/api/me").json()
    assert me["name"] == "nina" and me["can"]["model"] and not me["can"]["tasks"]


def test_a_client_is_refused_at_the_callback(provider: Provider, console_url: str) -> None:
    provider.person = ("carl", ["client"])
    browser, done = sign_in(console_url)
    assert done.status_code == 403 and "signin-refused" in done.text
    assert browser.get("/api/me").status_code == 401


def test_a_callback_this_browser_did_not_start_is_refused(provider: Provider, console_url: str) -> None:
    provider.person = ("nina", ["analyst"])
    started = httpx.Client(base_url=console_url, timeout=20)
    back = started.get(started.get("/login").headers["location"])
    callback = urllib.parse.urlsplit(back.headers["location"])
    stranger = httpx.Client(base_url=console_url, timeout=20)  # login CSRF: someone else's code
    refused = stranger.get(f"{callback.path}?{callback.query}")
    assert refused.status_code == 400 and "signin-refused" in refused.text
    assert stranger.get("/api/me").status_code == 401
    replayed = started.get(f"{callback.path}?{callback.query}")
    assert replayed.status_code == 303  # the rightful browser still completes its own sign-in once
    assert started.get(f"{callback.path}?{callback.query}").status_code == 400
