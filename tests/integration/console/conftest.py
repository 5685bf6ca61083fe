"""The console against a real orchestrator (in-process, real gRPC over TLS, real SQLite), real NATS, and
its own uvicorn server on a free port; people sign in through the real one-time link."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
import uvicorn
from starlette.types import ASGIApp

from consultflow.cli.system import free_port
from consultflow.console.__main__ import GRACEFUL_SHUTDOWN_SECONDS
from consultflow.console.app import build
from consultflow.console.config import ConsoleSettings, OidcClient
from consultflow.console.tickets import deposit
from consultflow.platform.local_identity import people
from consultflow.platform.security import SecuritySettings
from tests.support.bpmn_builder import bpmn, bpmn_folder, field, form
from tests.support.identity import local_identity
from tests.support.nats import provision_open
from tests.support.system import InProcessSystem, in_process_system

NEEDS = bpmn(
    "needs",
    f"""<startEvent id="s"/>
    <userTask id="understand" name="了解需求 Understand client needs" camunda:candidateGroups="business">
    {form(field("needs", "string", True))}</userTask><endEvent id="e"/>""",
    "s -> understand\nunderstand -> e",
)
LEGAL = bpmn(
    "legal_review",
    f"""<startEvent id="s"/>
    <userTask id="review" name="Review" camunda:candidateGroups="legal">
    {form(field("ok", "boolean"))}</userTask>
    <endEvent id="e"/>""",
    "s -> review\nreview -> e",
)


def console_settings(
    tmp_path: Path,
    nats_url: str,
    addresses: dict[str, str],
    security: SecuritySettings | None = None,
    oidc: OidcClient | None = None,
    public_url: str = "",
) -> ConsoleSettings:
    port = free_port()
    return ConsoleSettings(
        listen_host="127.0.0.1",
        listen_port=port,
        public_url=public_url or f"http://127.0.0.1:{port}",
        session_ttl=timedelta(hours=8),
        max_sessions=100,
        ticket_dir=tmp_path / "console-tickets",
        secure_cookie=False,
        security=security or local_identity().settings("console"),
        addresses=addresses,
        nats_url=nats_url,
        nats_credentials=None,
        oidc=oidc,
        log_level="INFO",
        log_format="text",
    )


@contextmanager
def serving(app: ASGIApp, port: int) -> Iterator[str]:
    """An ASGI app on uvicorn in a thread, as `python -m consultflow.console` runs it."""
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        log_level="warning",
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


class Console:
    """A running console and what a test needs to sign people in."""

    def __init__(self, url: str, settings: ConsoleSettings, system: InProcessSystem) -> None:
        self.url = url
        self.settings = settings
        self.system = system

    def link(self, name: str, roles: list[str] | None = None, groups: Sequence[str] = ()) -> str:
        """What `consultflow console --as NAME --print` prints."""
        if roles is None:
            person = people()[name]
            roles, groups = list(person.roles), list(person.groups)
        assert self.settings.ticket_dir is not None
        ticket = deposit(self.settings.ticket_dir, local_identity().issuer, name, roles, groups)
        return f"/signin?ticket={ticket}"

    def browser(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=20.0)

    def signed_in(
        self, name: str, roles: list[str] | None = None, groups: Sequence[str] = ()
    ) -> httpx.Client:
        client = self.browser()
        response = client.get(self.link(name, roles, groups))
        assert response.status_code == 303, response.text
        return client


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory, nats_session_url: str) -> Iterator[Console]:
    provision_open(nats_session_url)
    tmp_path = tmp_path_factory.mktemp("console")
    folder = bpmn_folder(tmp_path, {"needs": NEEDS, "legal_review": LEGAL})
    with in_process_system(tmp_path, nats_session_url, services=("crm",), bpmn_dir=folder) as system:
        addresses = {name: component.address for name, component in system.components.items()}
        settings = console_settings(tmp_path, nats_session_url, addresses)
        with serving(build(settings), settings.listen_port) as url:
            yield Console(url, settings, system)
