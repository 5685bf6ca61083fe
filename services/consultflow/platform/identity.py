"""Who is calling: a bearer token (JWT) checked against an OIDC issuer's published keys, and the local
issuer that `consultflow up` runs on a laptop.

Why it is strict where it is:
- Only asymmetric algorithms from an allow-list are accepted, and the token's algorithm must be the one
  its key is for, so a public key can never be replayed as an HMAC secret and `none` never verifies.
- A token must name its key (`kid`) and the issuer must publish it. An unknown key id makes the verifier
  fetch the issuer's key set again (that is how a rotation shows up), at most once per `refetch_after`,
  so a stream of forged key ids cannot turn it into a load generator against the issuer.
- Which claims hold the name, roles, groups and engagement differs per provider (Keycloak nests roles in
  `realm_access.roles`, Entra ID uses `roles` and `groups`): the claim paths are settings.
"""

from __future__ import annotations

import base64
import hashlib
import json
import ssl
import threading
import time
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from consultflow.platform import files
from consultflow.platform.errors import Unauthenticated

ASYMMETRIC = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)
LOCAL_ISSUER = "consultflow-local"
AUDIENCE = "consultflow"
CONSOLE_TICKET_AUDIENCE = "consultflow-console-ticket"  # components refuse it: it is no bearer token
CONSOLE_TICKET_TTL = timedelta(minutes=5)


class ConfigurationError(ValueError):
    """Identity settings that would make the system unsafe; refused at start."""


@dataclass(frozen=True)
class Caller:
    """The authenticated caller, as every use case sees it. Never built from a request field."""

    name: str
    roles: frozenset[str] = frozenset()
    groups: frozenset[str] = frozenset()
    engagement: str = ""  # a client's token is for one engagement only
    subject: str = ""

    def has_role(self, *roles: str) -> bool:
        return bool(self.roles.intersection(roles))


@dataclass(frozen=True)
class ClaimPaths:
    """Where a provider puts each fact; a dotted path reaches into nested claims."""

    name: str = "preferred_username"
    roles: str = "roles"
    groups: str = "groups"
    engagement: str = "engagement"


@dataclass(frozen=True)
class IssuerSettings:
    issuer: str
    audience: str
    jwks_url: str
    algorithms: tuple[str, ...] = ("RS256", "ES256")
    claims: ClaimPaths = ClaimPaths()
    leeway: timedelta = timedelta(seconds=30)
    refetch_after: timedelta = timedelta(seconds=30)
    retry_failed_after: timedelta = timedelta(seconds=1)  # after a key set read that failed
    production: bool = False
    # Kubernetes projected service-account tokens: `sub` is system:serviceaccount:<namespace>:<name> and
    # the caller is component <name> (its operations: CONSULTFLOW_OPERATION_OWNERS)
    service_accounts: bool = False
    jwks_ca: str = ""  # the CA of the key set's HTTPS server, when not a public one

    def __post_init__(self) -> None:
        unsafe = [a for a in self.algorithms if a not in ASYMMETRIC]
        if unsafe:
            raise ConfigurationError(
                f"token algorithms {unsafe} are not allowed: only asymmetric ones ({sorted(ASYMMETRIC)})"
            )
        if not self.issuer or not self.audience or not self.jwks_url:
            raise ConfigurationError("the token issuer, audience and key set URL must all be set")
        if self.production and self.issuer == LOCAL_ISSUER:
            raise ConfigurationError("the local token issuer is refused when production settings are on")


def _claim(claims: Mapping[str, Any], path: str) -> Any:
    value: Any = claims
    for part in path.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return value


def _names(value: Any) -> frozenset[str]:
    """A list claim, or a space- or comma-separated string (as some providers write scopes)."""
    if value is None:
        return frozenset()
    if isinstance(value, str):
        return frozenset(v for v in value.replace(",", " ").split() if v)
    if isinstance(value, list | tuple):
        return frozenset(str(v).lstrip("/") for v in value if str(v))
    return frozenset()


def caller_from_claims(claims: Mapping[str, Any], paths: ClaimPaths) -> Caller:
    subject = str(claims.get("sub", ""))
    name = _claim(claims, paths.name) or subject
    if not name:
        raise Unauthenticated("the token names nobody (no name claim and no sub)")
    return Caller(
        name=str(name),
        roles=_names(_claim(claims, paths.roles)),
        groups=_names(_claim(claims, paths.groups)),
        engagement=str(_claim(claims, paths.engagement) or ""),
        subject=subject,
    )


KeySetSource = Callable[[], Mapping[str, Any]]


def fetch_key_set(url: str, ca: str = "", timeout: float = 5.0) -> KeySetSource:
    """The issuer's published key set (JWKS), fetched over HTTP(S) (trusting `ca`, else the system's
    roots) or read from a local file."""
    context = ssl.create_default_context(cafile=ca or None)

    def fetch() -> Mapping[str, Any]:
        if url.startswith("file://"):
            return dict(json.loads(Path(url.removeprefix("file://")).read_text()))
        with urllib.request.urlopen(url, timeout=timeout, context=context) as response:
            return dict(json.loads(response.read()))

    return fetch


class KeySet:
    """The issuer's keys by key id, refreshed when a token names one not seen yet (a rotation).

    A read that fails keeps the keys read before and is tried again after `retry_failed_after`, not
    `refetch_after`: a failed read says nothing about which keys the issuer publishes, so it must not leave
    every token refused for the whole refetch interval (as one unlucky read at start once did)."""

    def __init__(
        self,
        source: KeySetSource,
        refetch_after: timedelta,
        retry_failed_after: timedelta,
    ) -> None:
        self._source = source
        self._refetch_after = refetch_after.total_seconds()
        self._retry_failed_after = min(retry_failed_after, refetch_after).total_seconds()
        self._keys: dict[str, jwt.PyJWK] = {}
        self._next_fetch = float("-inf")  # monotonic time before which an unknown kid fetches nothing
        self._lock = threading.Lock()

    def key(self, kid: str) -> jwt.PyJWK | None:
        with self._lock:
            if kid not in self._keys and time.monotonic() >= self._next_fetch:
                self._refresh()
            return self._keys.get(kid)

    def _refresh(self) -> None:
        try:
            document = self._source()
        except (OSError, ValueError) as error:
            self._next_fetch = time.monotonic() + self._retry_failed_after
            raise Unauthenticated(f"the token issuer's keys cannot be read: {error}") from error
        self._next_fetch = time.monotonic() + self._refetch_after
        keys: dict[str, jwt.PyJWK] = {}
        for entry in document.get("keys", []):
            if not isinstance(entry, Mapping) or not entry.get("kid") or entry.get("use", "sig") != "sig":
                continue
            try:
                keys[str(entry["kid"])] = jwt.PyJWK(dict(entry))
            except jwt.PyJWKError:
                continue  # a key type this library cannot use is simply not offered
        self._keys = keys


class TokenVerifier:
    """Turns `authorization: Bearer …` into a `Caller`, or refuses with `Unauthenticated`."""

    def __init__(self, settings: IssuerSettings, source: KeySetSource | None = None) -> None:
        self.settings = settings
        source = source or fetch_key_set(settings.jwks_url, settings.jwks_ca)
        self._keys = KeySet(source, settings.refetch_after, settings.retry_failed_after)

    def verify(self, token: str) -> Caller:
        return self.caller(self.verified_claims(token))

    def verified_claims(self, token: str) -> dict[str, Any]:
        """The token's claims once its signature, issuer, audience and lifetime check out."""
        return self.checked(token)[0]

    def caller(self, claims: Mapping[str, Any]) -> Caller:
        if self.settings.service_accounts:
            return service_account_caller(claims)
        return caller_from_claims(claims, self.settings.claims)

    def current_key(self, kid: str) -> jwt.PyJWK | None:
        return self._keys.key(kid)

    def checked(self, token: str) -> tuple[dict[str, Any], str, jwt.PyJWK]:
        """`verified_claims`, with the id and the key that verified it."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError as error:
            raise Unauthenticated("the bearer token is not a signed JWT") from error
        algorithm, kid = header.get("alg"), header.get("kid")
        if algorithm not in self.settings.algorithms:
            raise Unauthenticated(f"token algorithm {algorithm!r} is not allowed")
        if not isinstance(kid, str) or not kid:
            raise Unauthenticated("the token names no key id (kid)")
        key = self._keys.key(kid)
        if key is None:
            raise Unauthenticated(f"the token's key id {kid!r} is not one the issuer publishes")
        if key.algorithm_name != algorithm:
            raise Unauthenticated(f"key {kid!r} is for {key.algorithm_name}, the token claims {algorithm}")
        try:
            claims = jwt.decode(
                token,
                key=key.key,
                algorithms=[algorithm],
                audience=self.settings.audience,
                issuer=self.settings.issuer,
                leeway=self.settings.leeway,
                options={"require": ["exp", "iat", "iss", "aud", "sub"]},
            )
        except jwt.ExpiredSignatureError as error:
            raise Unauthenticated("the token has expired") from error
        except jwt.InvalidAudienceError as error:
            raise Unauthenticated(f"the token is not for audience {self.settings.audience!r}") from error
        except jwt.InvalidIssuerError as error:
            raise Unauthenticated(f"the token is not from issuer {self.settings.issuer!r}") from error
        except jwt.MissingRequiredClaimError as error:
            raise Unauthenticated(f"the token lacks the {error.claim!r} claim") from error
        except jwt.InvalidTokenError as error:
            raise Unauthenticated(f"the token does not verify: {error}") from error
        return dict(claims), kid, key


SERVICE_ACCOUNT = "system:serviceaccount:"


def service_account_caller(claims: Mapping[str, Any]) -> Caller:
    """A component, from its Kubernetes service-account token: the service account's name is its name."""
    subject = str(claims.get("sub", ""))
    namespace, _, name = subject.removeprefix(SERVICE_ACCOUNT).partition(":")
    if not subject.startswith(SERVICE_ACCOUNT) or not namespace or not name:
        raise Unauthenticated(f"the token's subject {subject!r} is not a service account")
    return Caller(name=name, roles=frozenset({"component"}), subject=subject)


class TrustedIssuers:
    """Several issuers at once (the firm's OIDC provider for people, the cluster for components): a token
    is checked by the verifier of the issuer it names, and refused if no trusted issuer has that name."""

    def __init__(self, verifiers: Iterable[TokenVerifier]) -> None:
        self._by_issuer = {v.settings.issuer: v for v in verifiers}
        self._verified: dict[str, _Verified] = {}

    def verify(self, token: str) -> Caller:
        """A token verified before is not verified again (a signature check and two decodes were 5 % of the
        orchestrator's CPU, docs/performance.md) while its key is still the issuer's and it is still in
        its lifetime, the only checks whose answer can change for the same token."""
        known = self._verified.get(token)
        if known is not None and known.holds():
            return known.caller
        verifier = self._verifier_of(token)
        claims, kid, key = verifier.checked(token)
        caller = verifier.caller(claims)
        if len(self._verified) >= VERIFIED_TOKENS_KEPT:
            self._verified.clear()  # rarely: the same few callers' tokens are used over and over
        self._verified[token] = _Verified(
            caller, verifier, kid, key, _lifetime(claims, verifier.settings.leeway)
        )
        return caller

    def _verifier_of(self, token: str) -> TokenVerifier:
        try:
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.InvalidTokenError as error:
            raise Unauthenticated("the bearer token is not a signed JWT") from error
        verifier = self._by_issuer.get(str(unverified.get("iss", "")))
        if verifier is None:
            raise Unauthenticated(
                f"the token is not from a trusted issuer ({', '.join(sorted(self._by_issuer))})"
            )
        return verifier


VERIFIED_TOKENS_KEPT = 4096


@dataclass(frozen=True)
class _Verified:
    """A token that verified, and what must still hold for it to verify again."""

    caller: Caller
    verifier: TokenVerifier
    kid: str
    key: jwt.PyJWK
    lifetime: tuple[float, float]
    """PyJWT's checks, leeway included: valid while not_before <= now < expires."""

    def holds(self) -> bool:
        now = time.time()
        not_before, expires = self.lifetime
        return not_before <= now < expires and self.verifier.current_key(self.kid) is self.key


def _lifetime(claims: Mapping[str, Any], leeway: timedelta) -> tuple[float, float]:
    """When PyJWT accepts these claims: from the later of iat and nbf (minus leeway), until exp (plus)."""
    slack = leeway.total_seconds()
    starts = max(int(claims["iat"]), int(claims.get("nbf", claims["iat"])))
    return starts - slack, int(claims["exp"]) + slack


def bearer_token(metadata: Iterable[tuple[str, str | bytes]]) -> str:
    """The token of an `authorization: Bearer …` header, or Unauthenticated."""
    for key, value in metadata:
        if key.lower() == "authorization":
            text = value.decode() if isinstance(value, bytes) else value
            scheme, _, token = text.partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return token.strip()
            raise Unauthenticated("the authorization header is not `Bearer <token>`")
    raise Unauthenticated("no credentials: send `authorization: Bearer <token>`")


@dataclass
class LocalIssuer:
    """The laptop's own token issuer: an ES256 key under the data folder and its published key set.

    `consultflow up` serves the key set to every component as a file; `consultflow token` mints with it.
    Production settings refuse tokens from it (`IssuerSettings.production`)."""

    folder: Path
    issuer: str = LOCAL_ISSUER
    audience: str = AUDIENCE
    _key: ec.EllipticCurvePrivateKey = field(init=False, repr=False)
    kid: str = field(init=False)

    def __post_init__(self) -> None:
        """Opens the issuer, making its key on first use. Several processes open it at once (the system,
        the demo driver, `consultflow token`) while components read the key set, so no file is ever seen
        half written: each is written aside and moved into place."""
        self.folder.mkdir(parents=True, exist_ok=True)
        self._key = self._load_or_create_key(self.folder / "issuer-key.pem")
        public = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(self._key.public_key()))
        self.kid = _thumbprint(public)
        published = json.dumps(self.key_set(), indent=2)
        if not self.jwks_file.exists() or self.jwks_file.read_text() != published:
            files.replace_file(self.jwks_file, published.encode(), files.PUBLIC)

    @staticmethod
    def _load_or_create_key(key_file: Path) -> ec.EllipticCurvePrivateKey:
        if not key_file.exists():
            key = ec.generate_private_key(ec.SECP256R1())
            pem = key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
            if files.create_file(key_file, pem):
                return key
            # another process made the key first: everyone signs with that one
        loaded = serialization.load_pem_private_key(key_file.read_bytes(), password=None)
        if not isinstance(loaded, ec.EllipticCurvePrivateKey):
            raise ConfigurationError(f"{key_file} is not an EC private key")
        return loaded

    @property
    def jwks_file(self) -> Path:
        return self.folder / "jwks.json"

    @property
    def jwks_url(self) -> str:
        return f"file://{self.jwks_file.resolve()}"

    def key_set(self) -> dict[str, Any]:
        public = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(self._key.public_key()))
        return {"keys": [public | {"kid": self.kid, "alg": "ES256", "use": "sig"}]}

    def settings(self, **overrides: Any) -> IssuerSettings:
        return IssuerSettings(
            issuer=self.issuer,
            audience=self.audience,
            jwks_url=self.jwks_url,
            algorithms=("ES256",),
            **overrides,
        )

    def mint(
        self,
        name: str,
        roles: Iterable[str] = (),
        groups: Iterable[str] = (),
        engagement: str = "",
        ttl: timedelta = timedelta(hours=8),
        now: datetime | None = None,
    ) -> str:
        issued = now or datetime.now(UTC)
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "aud": self.audience,
            "sub": name,
            "preferred_username": name,
            "roles": sorted(roles),
            "groups": sorted(groups),
            "iat": issued,
            "exp": issued + ttl,
        }
        if engagement:
            claims["engagement"] = engagement
        return jwt.encode(claims, self._key, algorithm="ES256", headers={"kid": self.kid})

    def mint_console_ticket(
        self, name: str, ticket_id: str, ttl: timedelta = CONSOLE_TICKET_TTL, now: datetime | None = None
    ) -> str:
        """A one-time sign-in ticket for the console: short-lived, with its own audience (so no component
        takes it as a bearer token) and an id (`jti`) the console accepts once."""
        issued = now or datetime.now(UTC)
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "aud": CONSOLE_TICKET_AUDIENCE,
            "sub": name,
            "preferred_username": name,
            "jti": ticket_id,
            "console_ticket": True,
            "iat": issued,
            "exp": issued + ttl,
        }
        return jwt.encode(claims, self._key, algorithm="ES256", headers={"kid": self.kid})


def _thumbprint(public_jwk: Mapping[str, Any]) -> str:
    """RFC 7638 key thumbprint: a stable key id derived from the public key itself."""
    members = {k: public_jwk[k] for k in ("crv", "kty", "x", "y")}
    digest = hashlib.sha256(json.dumps(members, separators=(",", ":"), sort_keys=True).encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
