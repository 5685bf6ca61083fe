"""The console's settings, read through platform/settings.py (docs/configuration.md lists them)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from consultflow import COMPONENTS
from consultflow.platform.identity import ConfigurationError
from consultflow.platform.messaging import NatsCredentials
from consultflow.platform.security import SecuritySettings
from consultflow.platform.settings import Settings, setting


@dataclass(frozen=True)
class OidcClient:
    """The console as a client of the people's OIDC provider (authorization-code flow with PKCE)."""

    issuer: str
    client_id: str
    client_secret: str
    scopes: str
    ca: str


def _addresses() -> dict[str, str]:
    """The components the environment names (`CONSULTFLOW_<COMPONENT>_ADDRESS`); a system run without some
    of them (a benchmark, a test) still has a console, whose routes needing the others answer 503."""
    found = {name: os.environ.get(f"CONSULTFLOW_{name.upper()}_ADDRESS", "") for name in COMPONENTS}
    return {name: address for name, address in found.items() if address}


@dataclass(frozen=True)
class ConsoleSettings:
    listen_host: str
    listen_port: int
    public_url: str
    session_ttl: timedelta
    max_sessions: int
    ticket_dir: Path | None
    secure_cookie: bool
    security: SecuritySettings
    addresses: dict[str, str]
    nats_url: str
    nats_credentials: NatsCredentials | None
    oidc: OidcClient | None
    log_level: str
    log_format: str

    @classmethod
    def from_env(cls) -> ConsoleSettings:
        base = Settings.from_env("console")
        if base.security is None:
            raise ConfigurationError(
                "CONSULTFLOW_TLS_DIR (its ca.crt, or CONSULTFLOW_CA_FILE) and CONSULTFLOW_OIDC_ISSUER must "
                "be set: the console calls the components over TLS with the person's token"
            )
        host, _, port = setting("CONSULTFLOW_CONSOLE_LISTEN").rpartition(":")
        public_url = setting("CONSULTFLOW_CONSOLE_PUBLIC_URL").rstrip("/") or f"http://{host}:{port}"
        production = base.security.issuer.production
        if production and not public_url.startswith("https://"):
            raise ConfigurationError("CONSULTFLOW_CONSOLE_PUBLIC_URL must be https:// in production")
        client_id = setting("CONSULTFLOW_CONSOLE_OIDC_CLIENT_ID")
        secret_file = setting("CONSULTFLOW_CONSOLE_OIDC_CLIENT_SECRET_FILE")
        oidc = (
            OidcClient(
                issuer=base.security.issuer.issuer,
                client_id=client_id,
                client_secret=Path(secret_file).read_text().strip() if secret_file else "",
                scopes=setting("CONSULTFLOW_CONSOLE_OIDC_SCOPES"),
                ca=setting("CONSULTFLOW_CONSOLE_OIDC_CA"),
            )
            if client_id
            else None
        )
        ticket_dir = setting("CONSULTFLOW_CONSOLE_TICKET_DIR")
        if production and ticket_dir:
            raise ConfigurationError(
                "sign-in links are for local systems: CONSULTFLOW_CONSOLE_TICKET_DIR is refused"
            )
        return cls(
            listen_host=host,
            listen_port=int(port),
            public_url=public_url,
            session_ttl=timedelta(hours=float(setting("CONSULTFLOW_CONSOLE_SESSION_HOURS"))),
            max_sessions=int(setting("CONSULTFLOW_CONSOLE_MAX_SESSIONS")),
            ticket_dir=Path(ticket_dir) if ticket_dir else None,
            secure_cookie=production or public_url.startswith("https://"),
            security=base.security,
            addresses=_addresses(),
            nats_url=base.nats_url,
            nats_credentials=base.nats_credentials,
            oidc=oidc,
            log_level=base.log_level,
            log_format=base.log_format,
        )
