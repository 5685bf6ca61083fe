"""Bearer tokens as a hostile caller would try them: unsigned, HMAC-signed with the public key, expired,
for another issuer or audience, from an unpublished key; and key rotation with the issuer's key set
served over real HTTP."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from consultflow.platform.errors import Unauthenticated
from consultflow.platform.identity import (
    LOCAL_ISSUER,
    ClaimPaths,
    ConfigurationError,
    IssuerSettings,
    LocalIssuer,
    TokenVerifier,
    TrustedIssuers,
    bearer_token,
)

ISSUER = "https://login.example.test/realms/firm"


# RSA key generation takes a while: the stand-in provider's keys are made once for the module.
KEYS: dict[str, Any] = {
    "rsa-1": rsa.generate_private_key(public_exponent=65537, key_size=2048),
    "rsa-2": rsa.generate_private_key(public_exponent=65537, key_size=2048),
    "ec-1": ec.generate_private_key(ec.SECP256R1()),
}


class Issuer:
    """A stand-in OIDC provider: RSA and EC keys, of which it publishes the ones in `published`."""

    def __init__(self) -> None:
        self.keys = KEYS
        self.published = {"rsa-1", "ec-1"}
        self.fetches = 0

    def key_set(self) -> dict[str, Any]:
        self.fetches += 1
        keys = []
        for kid in sorted(self.published):
            private = self.keys[kid]
            if kid.startswith("rsa"):
                public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(private.public_key()))
                public["alg"] = "RS256"
            else:
                public = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(private.public_key()))
                public["alg"] = "ES256"
            keys.append(public | {"kid": kid, "use": "sig"})
        return {"keys": keys}

    def token(self, kid: str = "rsa-1", algorithm: str = "", **overrides: Any) -> str:
        now = datetime.now(UTC)
        claims: dict[str, Any] = {
            "iss": ISSUER,
            "aud": "consultflow",
            "sub": "u-123",
            "preferred_username": "alice",
            "roles": ["staff"],
            "groups": ["business"],
            "iat": now,
            "exp": now + timedelta(minutes=5),
        } | overrides
        claims = {k: v for k, v in claims.items() if v is not None}
        algorithm = algorithm or ("RS256" if kid.startswith("rsa") else "ES256")
        return jwt.encode(claims, self.keys[kid], algorithm=algorithm, headers={"kid": kid})


@pytest.fixture
def issuer() -> Issuer:
    return Issuer()


@pytest.fixture
def jwks_url(issuer: Issuer) -> Iterator[str]:
    """The issuer's key set on a real HTTP server on a free port."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = json.dumps(issuer.key_set()).encode()
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/certs"
    server.shutdown()
    server.server_close()


def verifier(jwks_url: str, **overrides: Any) -> TokenVerifier:
    settings: dict[str, Any] = {
        "issuer": ISSUER,
        "audience": "consultflow",
        "jwks_url": jwks_url,
        "refetch_after": timedelta(0),
    } | overrides
    return TokenVerifier(IssuerSettings(**settings))


def refused(verifier: TokenVerifier, token: str) -> str:
    with pytest.raises(Unauthenticated) as raised:
        verifier.verify(token)
    return raised.value.message


def test_a_valid_token_names_the_caller_its_roles_and_groups(issuer: Issuer, jwks_url: str) -> None:
    caller = verifier(jwks_url).verify(issuer.token(engagement="E-1"))
    assert (caller.name, caller.subject, caller.engagement) == ("alice", "u-123", "E-1")
    assert caller.roles == {"staff"} and caller.groups == {"business"}
    assert verifier(jwks_url).verify(issuer.token("ec-1")).name == "alice", "EC keys verify too"


def test_an_unsigned_token_is_refused(issuer: Issuer, jwks_url: str) -> None:
    unsigned = jwt.encode({"sub": "mallory", "iss": ISSUER, "aud": "consultflow"}, key="", algorithm="none")
    assert "'none' is not allowed" in refused(verifier(jwks_url), unsigned)


def test_a_token_signed_with_the_public_key_as_an_hmac_secret_is_refused(
    issuer: Issuer, jwks_url: str
) -> None:
    public_pem = (
        issuer.keys["rsa-1"]
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    # PyJWT will not use PEM text as an HMAC secret, so the forgery is signed by hand as an attacker would.
    header = {"kid": "rsa-1", "alg": "HS256", "typ": "JWT"}
    payload = {"sub": "mallory", "iss": ISSUER, "aud": "consultflow", "exp": 4102444800, "iat": 0}
    signing_input = ".".join(
        jwt.utils.base64url_encode(json.dumps(part).encode()).decode() for part in (header, payload)
    )
    signature = hmac.new(public_pem, signing_input.encode(), hashlib.sha256).digest()
    forged = signing_input + "." + jwt.utils.base64url_encode(signature).decode()
    assert "'HS256' is not allowed" in refused(verifier(jwks_url), forged)
    with pytest.raises(ConfigurationError, match="HS256"):
        verifier(jwks_url, algorithms=("RS256", "HS256"))


def test_a_token_whose_algorithm_does_not_match_its_key_is_refused(issuer: Issuer, jwks_url: str) -> None:
    # signed by the EC key but claiming the RSA key id: the key is for RS256, the token says ES256
    token = jwt.encode(
        {"sub": "x", "iss": ISSUER, "aud": "consultflow"},
        issuer.keys["ec-1"],
        algorithm="ES256",
        headers={"kid": "rsa-1"},
    )
    assert "is for RS256" in refused(verifier(jwks_url), token)


@pytest.mark.parametrize(
    ("claims", "reason"),
    [
        ({"exp": datetime.now(UTC) - timedelta(minutes=5)}, "expired"),
        ({"iss": "https://evil.example.test"}, "not from issuer"),
        ({"aud": "another-app"}, "not for audience"),
        ({"exp": None}, "'exp'"),
        ({"sub": None}, "'sub'"),
    ],
    ids=["expired", "issuer", "audience", "no-expiry", "no-subject"],
)
def test_tokens_that_are_not_for_us_now_are_refused(
    issuer: Issuer, jwks_url: str, claims: dict[str, Any], reason: str
) -> None:
    assert reason in refused(verifier(jwks_url), issuer.token(**claims))


def test_a_key_the_issuer_does_not_publish_is_refused(issuer: Issuer, jwks_url: str) -> None:
    assert "not one the issuer publishes" in refused(verifier(jwks_url), issuer.token("rsa-2"))
    forged_kid = jwt.encode(
        {"sub": "x", "iss": ISSUER, "aud": "consultflow"}, issuer.keys["rsa-1"], algorithm="RS256"
    )
    assert "no key id" in refused(verifier(jwks_url), forged_kid)


def test_a_rotated_key_is_picked_up_and_both_keys_verify_meanwhile(issuer: Issuer, jwks_url: str) -> None:
    check = verifier(jwks_url)
    assert check.verify(issuer.token("rsa-1")).name == "alice"
    issuer.published = {"rsa-1", "rsa-2"}  # the provider starts serving the new key beside the old one
    assert check.verify(issuer.token("rsa-2")).name == "alice"
    assert check.verify(issuer.token("rsa-1")).name == "alice"
    issuer.published = {"rsa-2"}  # and later retires the old one
    assert check.verify(issuer.token("rsa-2")).name == "alice"


def test_unknown_key_ids_do_not_hammer_the_issuer(issuer: Issuer, jwks_url: str) -> None:
    check = verifier(jwks_url, refetch_after=timedelta(minutes=5))
    check.verify(issuer.token("rsa-1"))
    fetches = issuer.fetches
    for _ in range(20):
        refused(check, issuer.token("rsa-2"))
    assert issuer.fetches == fetches, "the key set is fetched again at most once per refetch interval"


def test_a_failed_key_set_read_is_tried_again_without_waiting_the_refetch_interval(issuer: Issuer) -> None:
    """One read that fails (the issuer away, its file being replaced) must not leave every token refused
    until the refetch interval ends: the failure is retried after its own, shorter wait."""
    reads: list[str] = []

    def flaky_source() -> dict[str, Any]:
        reads.append("read")
        if len(reads) == 1:
            raise ValueError("Expecting value: line 1 column 1 (char 0)")
        return issuer.key_set()

    settings = IssuerSettings(
        issuer=ISSUER,
        audience="consultflow",
        jwks_url="file:///unused",
        refetch_after=timedelta(minutes=5),
        retry_failed_after=timedelta(0),
    )
    check = TokenVerifier(settings, flaky_source)
    assert "cannot be read" in refused(check, issuer.token("rsa-1"))
    assert check.verify(issuer.token("rsa-1")).name == "alice"
    for _ in range(5):
        refused(check, issuer.token("rsa-2"))
    assert len(reads) == 2, "once read, unknown key ids wait for the refetch interval as before"


def test_claim_paths_follow_the_provider(issuer: Issuer, jwks_url: str) -> None:
    keycloak = ClaimPaths(name="email", roles="realm_access.roles", groups="groups")
    token = issuer.token(
        email="bob@firm.example", realm_access={"roles": ["ops", "analyst"]}, groups=["/legal"], roles=None
    )
    caller = verifier(jwks_url, claims=keycloak).verify(token)
    assert (caller.name, set(caller.roles), set(caller.groups)) == (
        "bob@firm.example",
        {"ops", "analyst"},
        {"legal"},
    )
    spaced = issuer.token(roles="staff ops")
    assert verifier(jwks_url).verify(spaced).roles == {"staff", "ops"}


def test_the_local_issuer_mints_tokens_that_verify_and_keeps_its_key(tmp_path: Path) -> None:
    local = LocalIssuer(tmp_path / "issuer")
    token = local.mint("carol", roles=["staff"], groups=["project_manager"], engagement="E-7")
    caller = TokenVerifier(local.settings()).verify(token)
    assert (caller.name, set(caller.roles), set(caller.groups), caller.engagement) == (
        "carol",
        {"staff"},
        {"project_manager"},
        "E-7",
    )
    again = LocalIssuer(tmp_path / "issuer")
    assert again.kid == local.kid, "a restart keeps the key, so earlier tokens stay valid"
    assert TokenVerifier(again.settings()).verify(token).name == "carol"
    assert oct((tmp_path / "issuer" / "issuer-key.pem").stat().st_mode & 0o777) == "0o600"
    expired = local.mint("carol", ttl=timedelta(minutes=1), now=datetime.now(UTC) - timedelta(hours=1))
    with pytest.raises(Unauthenticated, match="expired"):
        TokenVerifier(local.settings()).verify(expired)


def test_processes_opening_the_local_issuer_at_once_share_one_key_and_never_see_a_half_written_file(
    tmp_path: Path,
) -> None:
    """The system, the demo driver and `consultflow token` open the issuer while components read its key
    set: all end up with the one key, and a reader only ever finds a whole key set."""
    folder = tmp_path / "issuer"
    opened: list[str] = []
    problems: list[BaseException] = []
    reading = threading.Event()

    def open_issuer() -> None:
        try:
            opened.append(LocalIssuer(folder).kid)
        except BaseException as error:  # reported below
            problems.append(error)

    def read_key_set() -> None:
        while not reading.is_set():
            try:
                json.loads((folder / "jwks.json").read_text())
            except FileNotFoundError:
                continue
            except ValueError as error:
                problems.append(error)

    reader = threading.Thread(target=read_key_set)
    reader.start()
    for _ in range(3):
        openers = [threading.Thread(target=open_issuer) for _ in range(8)]
        for thread in openers:
            thread.start()
        for thread in openers:
            thread.join()
    reading.set()
    reader.join()
    assert not problems
    assert len(set(opened)) == 1 and len(opened) == 24
    published = (folder / "jwks.json").stat()
    LocalIssuer(folder)
    assert (folder / "jwks.json").stat().st_mtime_ns == published.st_mtime_ns, "an unchanged set is kept"
    assert sorted(p.name for p in folder.iterdir()) == ["issuer-key.pem", "jwks.json"], "no leftovers"


def test_production_settings_refuse_the_local_issuer(tmp_path: Path) -> None:
    local = LocalIssuer(tmp_path / "issuer")
    with pytest.raises(ConfigurationError, match="local token issuer"):
        local.settings(production=True)
    assert local.issuer == LOCAL_ISSUER


@pytest.mark.parametrize(
    ("metadata", "reason"),
    [
        ([], "no credentials"),
        ([("authorization", "Basic YWxpY2U6eA==")], "not `Bearer"),
        ([("authorization", "Bearer ")], "not `Bearer"),
    ],
)
def test_the_authorization_header_must_carry_a_bearer_token(
    metadata: list[tuple[str, str]], reason: str
) -> None:
    with pytest.raises(Unauthenticated, match=reason):
        bearer_token(metadata)
    assert bearer_token([("Authorization", "Bearer abc.def.ghi")]) == "abc.def.ghi"


CLUSTER = "https://kubernetes.default.svc.cluster.local"


def test_components_are_named_by_their_service_account_and_issuers_stay_apart(
    issuer: Issuer, jwks_url: str, tmp_path: Path
) -> None:
    cluster = LocalIssuer(tmp_path / "cluster", issuer=CLUSTER)
    cluster_settings = IssuerSettings(
        issuer=CLUSTER,
        audience="consultflow",
        jwks_url=cluster.jwks_url,
        algorithms=("ES256",),
        service_accounts=True,
    )
    trusted = TrustedIssuers([verifier(jwks_url), TokenVerifier(cluster_settings)])
    component = trusted.verify(cluster.mint("system:serviceaccount:consultflow:crm", roles=["admin"]))
    assert (component.name, set(component.roles)) == ("crm", {"component"}), "roles come from the issuer kind"
    person = trusted.verify(issuer.token(sub="system:serviceaccount:consultflow:crm"))
    assert (person.name, set(person.roles)) == ("alice", {"staff"}), "a person's issuer makes no components"
    with pytest.raises(Unauthenticated, match="not a service account"):
        trusted.verify(cluster.mint("bob"))
    with pytest.raises(Unauthenticated, match="not from a trusted issuer"):
        trusted.verify(issuer.token(iss="https://elsewhere.example.test"))
    # a people's key cannot sign for the cluster: the cluster does not publish it
    forged = jwt.encode(
        {
            "iss": CLUSTER,
            "aud": "consultflow",
            "sub": "system:serviceaccount:consultflow:crm",
            "exp": 4102444800,
            "iat": 0,
        },
        issuer.keys["ec-1"],
        algorithm="ES256",
        headers={"kid": "ec-1"},
    )
    with pytest.raises(Unauthenticated, match="not one the issuer publishes"):
        trusted.verify(forged)


def test_a_token_verified_before_is_still_refused_once_its_key_is_retired_or_its_lifetime_ends(
    issuer: Issuer, jwks_url: str
) -> None:
    """TrustedIssuers keeps the tokens it verified; only what cannot change for the same token is kept."""
    trusted = TrustedIssuers([verifier(jwks_url, leeway=timedelta(0))])
    token = issuer.token("rsa-1")
    assert trusted.verify(token).name == trusted.verify(token).name == "alice"
    issuer.published = {"rsa-2"}  # retired: a token naming a key not seen yet makes the set fetched again
    assert trusted.verify(issuer.token("rsa-2")).name == "alice"
    with pytest.raises(Unauthenticated, match="not one the issuer publishes"):
        trusted.verify(token)
    past = datetime.now(UTC) - timedelta(minutes=10)
    with pytest.raises(Unauthenticated, match="expired"):
        trusted.verify(issuer.token("rsa-2", iat=past, exp=past + timedelta(minutes=5)))
    later = issuer.token("rsa-2", iat=datetime.now(UTC) + timedelta(minutes=5))
    with pytest.raises(Unauthenticated, match="does not verify"):
        trusted.verify(later)  # issued in the future: not yet valid, and not kept as valid either
    with pytest.raises(Unauthenticated, match="does not verify"):
        trusted.verify(later)


def test_a_token_verified_before_is_refused_once_it_expires(issuer: Issuer, jwks_url: str) -> None:
    trusted = TrustedIssuers([verifier(jwks_url, leeway=timedelta(0))])
    expires = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=3)
    token = issuer.token("rsa-1", exp=expires)
    assert trusted.verify(token).name == "alice"
    time.sleep(max(0.0, expires.timestamp() - time.time()) + 0.1)
    with pytest.raises(Unauthenticated, match="expired"):
        trusted.verify(token)
