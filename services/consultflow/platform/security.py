"""A component's security, from its settings: the TLS listener, the token check every call passes, and
the channels it calls its peers on, carrying its own bearer token.

Every listener is TLS and every caller — person, tool, component or outside worker — presents a bearer
token (platform/tls.py says why one listener). A component's own token is a file: `consultflow up`
mints it with the local issuer, Kubernetes projects a service-account token there and rotates it; the
file is re-read when it changes, so a rotation needs no restart. Without TLS files and an issuer a
component refuses to start: there is no unauthenticated mode to forget to turn off.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
from google.protobuf.descriptor_pb2 import MethodOptions
from grpc_health.v1 import health_pb2

from consultflow.api.catalog.v1 import catalog_pb2
from consultflow.api.contracts.v1 import contracts_pb2
from consultflow.api.crm.v1 import crm_pb2
from consultflow.api.delivery.v1 import delivery_pb2
from consultflow.api.orchestrator.v1 import orchestrator_pb2
from consultflow.api.risk.v1 import risk_pb2
from consultflow.api.survey.v1 import survey_pb2
from consultflow.platform import tracing
from consultflow.platform.authn import AuthInterceptor
from consultflow.platform.identity import ClaimPaths, IssuerSettings, TokenVerifier, TrustedIssuers
from consultflow.platform.tls import CertificateFiles, TlsFiles, channel_credentials

COMPONENT_OPERATIONS = ("crm", "contracts", "delivery", "survey", "risk")


class SecurityNotConfigured(RuntimeError):
    """A component was started without the settings that make its listener safe."""


@dataclass(frozen=True)
class SecuritySettings:
    tls_dir: Path  # tls.crt, tls.key and ca.crt of this component's listener (a mounted TLS Secret)
    ca_file: Path  # whom to trust when calling peers
    issuer: IssuerSettings
    component_issuer: IssuerSettings | None  # where components' own tokens come from, if not `issuer`
    token_file: Path | None  # this component's own bearer token; None for a component that calls nobody
    health_address: str = ""  # a plaintext listener serving only grpc.health.v1, for kubelet probes
    operation_owners: Mapping[str, tuple[str, ...]] = field(
        default_factory=lambda: {name: (f"{name}.",) for name in COMPONENT_OPERATIONS}
    )

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> SecuritySettings:
        env = os.environ if env is None else env
        tls_dir = env.get("CONSULTFLOW_TLS_DIR", "")
        issuer = env.get("CONSULTFLOW_OIDC_ISSUER", "")
        if not tls_dir or not issuer:
            raise SecurityNotConfigured(
                "CONSULTFLOW_TLS_DIR and CONSULTFLOW_OIDC_ISSUER must be set: every listener serves TLS and "
                "every call is authenticated (`consultflow up` makes a local CA and token issuer)"
            )
        claims = ClaimPaths(
            name=env.get("CONSULTFLOW_OIDC_NAME_CLAIM", "") or ClaimPaths.name,
            roles=env.get("CONSULTFLOW_OIDC_ROLES_CLAIM", "") or ClaimPaths.roles,
            groups=env.get("CONSULTFLOW_OIDC_GROUPS_CLAIM", "") or ClaimPaths.groups,
            engagement=env.get("CONSULTFLOW_OIDC_ENGAGEMENT_CLAIM", "") or ClaimPaths.engagement,
        )
        algorithms = tuple(
            a.strip() for a in env.get("CONSULTFLOW_OIDC_ALGORITHMS", "RS256,ES256").split(",") if a.strip()
        )
        token_file = env.get("CONSULTFLOW_TOKEN_FILE", "")
        component_issuer = env.get("CONSULTFLOW_COMPONENT_ISSUER", "")
        production = env.get("CONSULTFLOW_PRODUCTION", "").strip().lower() in ("1", "true", "yes")
        audience = env.get("CONSULTFLOW_OIDC_AUDIENCE", "consultflow")  # people's and components' tokens
        return cls(
            tls_dir=Path(tls_dir),
            ca_file=Path(env.get("CONSULTFLOW_CA_FILE", "") or Path(tls_dir) / "ca.crt"),
            issuer=IssuerSettings(
                issuer=issuer,
                audience=audience,
                jwks_url=env.get("CONSULTFLOW_OIDC_JWKS_URL", ""),
                algorithms=algorithms,
                claims=claims,
                production=production,
            ),
            component_issuer=IssuerSettings(
                issuer=component_issuer,
                audience=audience,
                jwks_url=env.get("CONSULTFLOW_COMPONENT_JWKS_URL", ""),
                production=production,
                service_accounts=True,
                jwks_ca=env.get("CONSULTFLOW_COMPONENT_JWKS_CA", ""),
            )
            if component_issuer
            else None,
            token_file=Path(token_file) if token_file else None,
            health_address=env.get("CONSULTFLOW_HEALTH_ADDRESS", ""),
            operation_owners=operation_owners(env.get("CONSULTFLOW_OPERATION_OWNERS", "")),
        )


def operation_owners(text: str) -> dict[str, tuple[str, ...]]:
    """`name=prefix1|prefix2,other=prefix` → who may take and complete which operations' jobs.

    The five services own their own operations; outside workers are added by configuration."""
    owners: dict[str, tuple[str, ...]] = {name: (f"{name}.",) for name in COMPONENT_OPERATIONS}
    for item in (part.strip() for part in text.split(",") if part.strip()):
        name, _, prefixes = item.partition("=")
        if not name.strip() or not prefixes.strip():
            raise SecurityNotConfigured(f"CONSULTFLOW_OPERATION_OWNERS: {item!r} is not name=prefix")
        owners[name.strip()] = tuple(p.strip() for p in prefixes.split("|") if p.strip())
    return owners


class TokenFile:
    """A bearer token kept in a file and re-read when the file changes (a rotated token)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._stamp = -1
        self._token = ""
        self._lock = threading.Lock()

    def token(self) -> str:
        with self._lock:
            stamp = self.path.stat().st_mtime_ns
            if stamp != self._stamp:
                self._token = self.path.read_text().strip()
                self._stamp = stamp
            return self._token


class _BearerFromFile(grpc.AuthMetadataPlugin):
    def __init__(self, source: TokenFile) -> None:
        self._source = source

    def __call__(self, context: Any, callback: Any) -> None:
        try:
            callback((("authorization", f"Bearer {self._source.token()}"),), None)
        except OSError as error:
            callback((), error)


def bearer_credentials(token: str | TokenFile) -> grpc.CallCredentials:
    """Call credentials that send `token` (or the current content of a token file) with every call."""
    if isinstance(token, str):
        return grpc.access_token_call_credentials(token)
    return grpc.metadata_call_credentials(_BearerFromFile(token), name="consultflow-token-file")


class _CallDetails(grpc.ClientCallDetails):
    def __init__(self, details: Any, metadata: Any) -> None:
        self.method = details.method
        self.timeout = details.timeout
        self.metadata = metadata
        self.credentials = details.credentials
        self.wait_for_ready = details.wait_for_ready
        self.compression = getattr(details, "compression", None)


class TraceContextInterceptor(grpc.UnaryUnaryClientInterceptor, grpc.UnaryStreamClientInterceptor):
    """Sends the current trace context (`traceparent`) with every call of a blocking channel."""

    def intercept_unary_unary(self, continuation: Callable[..., Any], details: Any, request: Any) -> Any:
        return continuation(_CallDetails(details, tracing.metadata_with_context(details.metadata)), request)

    def intercept_unary_stream(self, continuation: Callable[..., Any], details: Any, request: Any) -> Any:
        return continuation(_CallDetails(details, tracing.metadata_with_context(details.metadata)), request)


class AioTraceContextInterceptor(grpc.aio.UnaryUnaryClientInterceptor, grpc.aio.UnaryStreamClientInterceptor):
    """Sends the current trace context (`traceparent`) with every call of an asyncio channel."""

    async def intercept_unary_unary(
        self, continuation: Callable[..., Any], details: Any, request: Any
    ) -> Any:
        return await continuation(_with_context(details), request)

    async def intercept_unary_stream(
        self, continuation: Callable[..., Any], details: Any, request: Any
    ) -> Any:
        return await continuation(_with_context(details), request)


def _with_context(details: grpc.aio.ClientCallDetails) -> grpc.aio.ClientCallDetails:
    metadata = tracing.metadata_with_context(list(details.metadata or ()))
    if metadata is None or len(metadata) == len(details.metadata or ()):
        return details
    return grpc.aio.ClientCallDetails(
        details.method,
        details.timeout,
        grpc.aio.Metadata(*metadata),
        details.credentials,
        details.wait_for_ready,
    )


def secure_channel(
    address: str, ca: Path | None, token: str | TokenFile | None = None, **options: Any
) -> grpc.Channel:
    """A blocking channel over TLS, sending `token` and the trace context with every call."""
    target, replicas = channel_target(address)
    options["options"] = [*options.get("options", ()), *replicas]
    channel = grpc.secure_channel(target, _credentials(ca, token), **options)
    return grpc.intercept_channel(channel, TraceContextInterceptor())


def secure_aio_channel(
    address: str, ca: Path | None, token: str | TokenFile | None = None
) -> grpc.aio.Channel:
    """An asyncio channel over TLS, sending `token` and the trace context with every call."""
    target, replicas = channel_target(address)
    return grpc.aio.secure_channel(
        target, _credentials(ca, token), options=replicas, interceptors=[AioTraceContextInterceptor()]
    )


API_FILES = (catalog_pb2, contracts_pb2, crm_pb2, delivery_pb2, orchestrator_pb2, risk_pb2, survey_pb2)


def safe_to_repeat() -> list[dict[str, str]]:
    """The methods a channel may send again on its own: those the protos declare free of side effects or
    idempotent (`option idempotency_level`), and the health check. A call that failed UNAVAILABLE may
    have been carried out by a replica that died before it answered, so a method that would do its work
    twice (one that adds a record, with no key to know the repeat by) is never repeated for its caller."""
    names = [{"service": health_pb2.DESCRIPTOR.services_by_name["Health"].full_name}]
    for module in API_FILES:
        for service in module.DESCRIPTOR.services_by_name.values():
            for method in service.methods:
                if method.GetOptions().idempotency_level != MethodOptions.IDEMPOTENCY_UNKNOWN:
                    names.append({"service": service.full_name, "method": method.name})
    return names


REPLICA_RETRY = json.dumps(
    {
        "methodConfig": [
            {
                "name": safe_to_repeat(),
                "retryPolicy": {
                    "maxAttempts": 3,
                    "initialBackoff": "0.05s",
                    "maxBackoff": "0.5s",
                    "backoffMultiplier": 2,
                    "retryableStatusCodes": ["UNAVAILABLE"],
                },
            }
        ]
    }
)
"""gRPC's retry policy for a list of replicas: a call of a method safe to repeat that meets UNAVAILABLE (a
replica gone, or busy) is tried again twice, soon, on the next replica; any other call fails to its caller,
who knows whether doing it again is right."""


def channel_target(address: str) -> tuple[str, list[tuple[str, str]]]:
    """The gRPC target and channel options for `address`: one `host:port`, or the replicas of a component
    as a comma-separated list of IPv4 `host:port` (what `consultflow up --replicas` gives). A list becomes
    gRPC's static `ipv4:` target with client-side round_robin — every call goes to a live replica, a dead
    one is skipped until it answers again — and its TLS name is its first host (the local certificate
    names 127.0.0.1), since a list is no host name to verify. A call that met a replica as it stopped (sent
    before the channel saw its GOAWAY: UNAVAILABLE, "Stream removed") is tried again on another when its
    method is safe to repeat (`REPLICA_RETRY`), so a stopped replica is skipped by calls already under way."""
    if "," not in address:
        return address, []
    members = [member.strip() for member in address.removeprefix("ipv4:").split(",")]
    hosts = {member.rpartition(":")[0] for member in members}
    if not all(host.count(".") == 3 and host.replace(".", "").isdigit() for host in hosts):
        raise ValueError(f"{address!r}: a list of replicas must be IPv4 host:port pairs")
    options = [
        ("grpc.lb_policy_name", "round_robin"),
        ("grpc.default_authority", members[0].rpartition(":")[0]),
        ("grpc.service_config", REPLICA_RETRY),
    ]
    return "ipv4:" + ",".join(members), options


def _credentials(ca: Path | None, token: str | TokenFile | None) -> grpc.ChannelCredentials:
    transport = channel_credentials(ca)
    if token is None:
        return transport
    return grpc.composite_channel_credentials(transport, bearer_credentials(token))


class Security:
    """What bootstrap wires: server credentials, the authentication interceptor, peer channels."""

    def __init__(self, settings: SecuritySettings) -> None:
        self.settings = settings
        verifiers = [TokenVerifier(settings.issuer)]
        if settings.component_issuer is not None:
            verifiers.append(TokenVerifier(settings.component_issuer))
        self.verifier = TrustedIssuers(verifiers)
        self._certificates = CertificateFiles(TlsFiles.in_folder(settings.tls_dir))
        self._token = TokenFile(settings.token_file) if settings.token_file else None

    def server_credentials(self) -> grpc.ServerCredentials:
        return self._certificates.credentials()

    def interceptor(self) -> AuthInterceptor:
        return AuthInterceptor(self.verifier)

    def channel(self, address: str) -> grpc.Channel:
        return secure_channel(address, self.settings.ca_file, self._token)

    def aio_channel(self, address: str) -> grpc.aio.Channel:
        return secure_aio_channel(address, self.settings.ca_file, self._token)
