"""How our NATS clients report the errors nats.py hands to its error callback.

A TLS close can cross the server's last bytes: the client has sent its close_notify, the server sends
one more PING, and the client's TLS shutdown fails with "application data after close notify". With a
real nats-server that happens only now and then (CI saw it under `consultflow events | head -1`), so the
peer here is a few lines of the NATS protocol over TLS that always sends that PING, once it has read
the client's close_notify.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path

import nats
import pytest

from consultflow.platform.messaging import NatsCredentials, open_client
from consultflow.platform.tls import LocalAuthority

MESSAGING_LOG = "consultflow.platform.messaging"
INFO = (
    b'INFO {"server_id":"peer","server_name":"peer","version":"2.10.0","proto":1,"host":"127.0.0.1",'
    b'"port":4222,"max_payload":1048576,"headers":true,"tls_required":true}\r\n'
)


class PingAfterCloseNotify:
    """A TLS peer that answers the NATS handshake (and then sends `after_handshake`), then sends a PING
    after the client's close_notify."""

    def __init__(self, folder: Path, after_handshake: bytes = b"") -> None:
        self._after_handshake = after_handshake
        authority = LocalAuthority(folder / "ca")
        files = authority.issue(folder / "server", "nats")
        self.ca = files.ca
        self._context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self._context.load_cert_chain(files.certificate, files.key)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"tls://localhost:{self._listener.getsockname()[1]}"
        self.pinged_after_close = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        raw, _ = self._listener.accept()
        with self._context.wrap_socket(raw, server_side=True) as peer:
            peer.settimeout(10)
            peer.sendall(INFO)
            received = b""
            while b"PING\r\n" not in received:
                received += peer.recv(4096)
            peer.sendall(b"PONG\r\n" + self._after_handshake)
            while peer.recv(4096):  # b"" once the client's close_notify arrives
                pass
            peer.sendall(b"PING\r\n")
            self.pinged_after_close.set()

    def close(self) -> None:
        self._listener.close()
        self._thread.join(timeout=10)


@pytest.fixture
def peer(tmp_path: Path) -> Iterator[PingAfterCloseNotify]:
    served = PingAfterCloseNotify(tmp_path)
    yield served
    served.close()


def credentials(peer: PingAfterCloseNotify) -> NatsCredentials:
    return NatsCredentials("crm", "secret", peer.ca)


def test_the_close_race_is_real_and_nats_py_reports_it_as_an_error(
    peer: PingAfterCloseNotify, caplog: pytest.LogCaptureFixture
) -> None:
    """The peer reproduces the race: nats.py's own default callback logs it at ERROR with a traceback."""

    async def run() -> None:
        from consultflow.platform.messaging import connect_options

        client = await nats.connect(peer.url, allow_reconnect=False, **connect_options(credentials(peer)))
        await client.close()

    with caplog.at_level(logging.DEBUG):
        asyncio.run(run())
    assert peer.pinged_after_close.wait(10)
    assert any(
        r.levelno == logging.ERROR and "APPLICATION_DATA_AFTER_CLOSE_NOTIFY" in str(r.exc_info)
        for r in caplog.records
    ), [r.getMessage() for r in caplog.records]


def test_an_error_while_closing_is_logged_at_debug(
    peer: PingAfterCloseNotify, caplog: pytest.LogCaptureFixture
) -> None:
    async def run() -> None:
        client = await open_client(peer.url, credentials(peer), allow_reconnect=False)
        await client.close()

    with caplog.at_level(logging.DEBUG):
        asyncio.run(run())
    assert peer.pinged_after_close.wait(10)
    ours = [r for r in caplog.records if r.name == MESSAGING_LOG]
    assert {r.levelno for r in ours} == {logging.DEBUG}, [r.getMessage() for r in ours]
    assert any("APPLICATION_DATA_AFTER_CLOSE_NOTIFY" in r.getMessage() for r in ours)
    assert any("disconnected" in r.getMessage() for r in ours)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_an_error_while_open_is_still_a_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    refused = b"-ERR 'Permissions Violation for Publish to \"jobs.crm.x\"'\r\n"
    peer = PingAfterCloseNotify(tmp_path, after_handshake=refused)

    async def run() -> None:
        client = await open_client(peer.url, credentials(peer), allow_reconnect=False)
        for _ in range(100):
            if client.last_error is not None:
                break
            await asyncio.sleep(0.05)
        await client.close()

    try:
        with caplog.at_level(logging.DEBUG):
            asyncio.run(run())
    finally:
        peer.close()
    ours = [(r.levelno, r.getMessage()) for r in caplog.records if r.name == MESSAGING_LOG]
    assert ours[0][0] == logging.WARNING and "permissions violation" in ours[0][1].lower(), ours
    assert {level for level, _ in ours[1:]} == {logging.DEBUG}, ours
