"""The console's rules that need no server: tickets that must not redeem, settings refused at start."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from consultflow.console.config import ConsoleSettings
from consultflow.console.sessions import SessionStore
from consultflow.console.tickets import deposit, redeem
from consultflow.platform.errors import Unauthenticated
from consultflow.platform.identity import (
    CONSOLE_TICKET_AUDIENCE,
    Caller,
    ConfigurationError,
    IssuerSettings,
    TokenVerifier,
)
from tests.support.identity import local_identity


def ticket_verifier() -> TokenVerifier:
    issuer = local_identity().issuer
    return TokenVerifier(IssuerSettings(issuer.issuer, CONSOLE_TICKET_AUDIENCE, issuer.jwks_url, ("ES256",)))


def test_a_ticket_redeems_once_for_the_token_left_for_it(tmp_path: Path) -> None:
    ticket = deposit(tmp_path, local_identity().issuer, "bella", ["staff"], ["business"])
    redeemed = redeem(tmp_path, ticket_verifier(), ticket)
    assert redeemed.name == "bella"
    assert list(tmp_path.iterdir()) == []  # nothing left to redeem
    with pytest.raises(Unauthenticated, match="used already"):
        redeem(tmp_path, ticket_verifier(), ticket)


def test_an_expired_ticket_does_not_redeem(tmp_path: Path) -> None:
    issuer = local_identity().issuer
    deposit(tmp_path, issuer, "bella", ["staff"])
    ticket_id = next(tmp_path.glob("*.jwt")).stem
    old = issuer.mint_console_ticket("bella", ticket_id, now=datetime.now(UTC) - timedelta(minutes=10))
    with pytest.raises(Unauthenticated, match="expired"):
        redeem(tmp_path, ticket_verifier(), old)


def test_the_token_a_ticket_stands_for_never_travels_in_the_link(tmp_path: Path) -> None:
    ticket = deposit(tmp_path, local_identity().issuer, "otto", ["ops"])
    token = next(tmp_path.glob("*.jwt")).read_text()
    assert token not in ticket
    with pytest.raises(Unauthenticated):  # the components' verifier refuses the ticket itself
        TokenVerifier(local_identity().issuer.settings()).verify(ticket)


def test_a_full_store_drops_its_oldest_session() -> None:
    store = SessionStore(capacity=2)
    first, _ = store.create(Caller("a"), "t", expires_at=9e9)
    store.create(Caller("b"), "t", expires_at=9e9)
    store.create(Caller("c"), "t", expires_at=9e9)
    assert store.get(first) is None and len(store) == 2
    expired, _ = store.create(Caller("d"), "t", expires_at=1.0)
    assert store.get(expired) is None


def test_production_refuses_a_plain_http_console_and_sign_in_links(monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in local_identity().environment("console").items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("CONSULTFLOW_OIDC_ISSUER", "https://id.example.com")
    monkeypatch.setenv("CONSULTFLOW_PRODUCTION", "true")
    monkeypatch.setenv("CONSULTFLOW_NATS_USER", "console")
    monkeypatch.setenv("CONSULTFLOW_NATS_PASSWORD_FILE", __file__)
    for name in ("ORCHESTRATOR", "CRM", "CONTRACTS", "DELIVERY", "SURVEY", "RISK"):
        monkeypatch.setenv(f"CONSULTFLOW_{name}_ADDRESS", "127.0.0.1:1")
    monkeypatch.setenv("CONSULTFLOW_CONSOLE_PUBLIC_URL", "http://console.example.com")
    with pytest.raises(ConfigurationError, match="https"):
        ConsoleSettings.from_env()
    monkeypatch.setenv("CONSULTFLOW_CONSOLE_PUBLIC_URL", "https://console.example.com")
    monkeypatch.setenv("CONSULTFLOW_CONSOLE_TICKET_DIR", "/tmp/tickets")
    with pytest.raises(ConfigurationError, match="local systems"):
        ConsoleSettings.from_env()
    monkeypatch.delenv("CONSULTFLOW_CONSOLE_TICKET_DIR")
    settings = ConsoleSettings.from_env()
    assert settings.secure_cookie and settings.ticket_dir is None
