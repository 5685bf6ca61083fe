"""The console attacked: bad bodies and numbers that used to end in a 500, a live feed that outlived
its sign-out, unbounded feeds per person, a previous session left alive by signing in again; and the
attacks that held (traversal in static files, cross-site POSTs, other people's tasks)."""

from __future__ import annotations

import contextlib
import dataclasses
import socket
import stat
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from consultflow.cli.system import free_port
from consultflow.console import web
from consultflow.console.app import build
from consultflow.console.config import OidcClient
from consultflow.console.events import MAX_STREAMS_PER_PERSON
from consultflow.console.sessions import COOKIE
from consultflow.console.tickets import deposit
from tests.integration.console.conftest import Console, console_settings, serving
from tests.integration.console.test_console_api import start, tasks_of
from tests.support.identity import local_identity
from tests.support.nats import late_nats_server
from tests.support.polling import eventually


def csrf_of(browser: httpx.Client) -> dict[str, str]:
    return {"X-CSRF-Token": browser.get("/api/me").json()["csrf_token"]}


def field_named(response: httpx.Response, field: str) -> None:
    assert response.status_code == 400, (response.status_code, response.text)
    fields = [v["field"] for v in response.json()["error"]["field_violations"]]
    assert field in fields, response.text


def test_deeply_nested_json_is_refused_naming_the_body(console: Console) -> None:
    otto = console.signed_in("otto")
    deep = b'{"name": "m", "variables": {"a": ' + b"[" * 100_000 + b"]" * 100_000 + b"}}"
    field_named(otto.post("/api/messages", headers=csrf_of(otto), content=deep), "body")
    nested = b'{"name": "m", "variables": {"a": ' + b"[" * 200 + b"]" * 200 + b"}}"
    field_named(otto.post("/api/messages", headers=csrf_of(otto), content=nested), "body")


@pytest.mark.parametrize(
    "body",
    [
        b'{"name": "\\ud800"}',  # a lone surrogate: no UTF-8 string
        b'{"name": "m", "variables": {"x": NaN}}',  # not JSON, though Python reads it
        b'{"name": "m", "variables": {"x": Infinity}}',
        b'{"name": "\xff\xfe"}',  # not UTF-8
    ],
)
def test_bodies_that_are_not_plain_json_are_refused_naming_the_body(console: Console, body: bytes) -> None:
    otto = console.signed_in("otto")
    field_named(otto.post("/api/messages", headers=csrf_of(otto), content=body), "body")


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("/api/instances?page_size=99999999999", "page_size"),
        ("/api/instances?page_size=-1", "page_size"),
        ("/api/instances?version=4294967296", "version"),
        ("/api/tasks?page_size=1e3", "page_size"),
        ("/api/processes/needs/statistics?version=-5", "version"),
    ],
)
def test_numbers_out_of_range_are_refused_naming_the_field(console: Console, path: str, field: str) -> None:
    field_named(console.signed_in("otto").get(path), field)


def test_a_huge_history_limit_is_refused_naming_it(console: Console) -> None:
    ana = console.signed_in("ana")
    instances = ana.get("/api/instances").json()["instances"]
    instance_id = instances[0]["instance_id"] if instances else "x"
    field_named(ana.get(f"/api/instances/{instance_id}?history_limit=10000000000"), "history_limit")


class OpenFeed:
    """One /api/events stream on a socket of its own (so that closing it really hangs up, which an
    httpx client read on another thread does not); `ended` is set when the server closes it."""

    def __init__(self, console: Console, session_id: str) -> None:
        host, port = console.url.removeprefix("http://").split(":")
        self._socket = socket.create_connection((host, int(port)), timeout=30)
        self._socket.sendall(
            f"GET /api/events HTTP/1.1\r\nHost: {host}\r\nCookie: {COOKIE}={session_id}\r\n\r\n".encode()
        )
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self._socket.recv(4096)
            if not chunk:
                break
            head += chunk
        self.status = int(head.split(b" ", 2)[1]) if head else 0
        self.ended = threading.Event()
        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self) -> None:
        try:
            while self._socket.recv(4096):
                pass
        except OSError:
            pass
        self.ended.set()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._socket.shutdown(socket.SHUT_RDWR)
        self._socket.close()


@contextmanager
def open_feeds(console: Console, *session_ids: str) -> Iterator[list[OpenFeed]]:
    feeds = [OpenFeed(console, session_id) for session_id in session_ids]
    try:
        yield feeds
    finally:
        for feed in feeds:
            feed.close()


def test_signing_out_ends_the_open_live_feed(console: Console) -> None:
    otto = console.signed_in("otto")
    with open_feeds(console, otto.cookies[COOKIE]) as (feed,):
        assert feed.status == 200 and not feed.ended.is_set()
        assert otto.post("/logout", headers=csrf_of(otto)).status_code == 200
        assert feed.ended.wait(10), "the feed went on after its session ended"


def test_a_person_has_a_bounded_number_of_feeds_and_others_are_not_refused(console: Console) -> None:
    otto = console.signed_in("otto")
    session_id = otto.cookies[COOKIE]
    with open_feeds(console, *[session_id] * MAX_STREAMS_PER_PERSON) as feeds:
        assert [f.status for f in feeds] == [200] * MAX_STREAMS_PER_PERSON
        refused = otto.get("/api/events")
        assert refused.status_code == 429 and refused.json()["error"]["code"] == "RESOURCE_EXHAUSTED"
        other_sign_in = console.signed_in("otto")  # a new session is the same person
        assert other_sign_in.get("/api/events").status_code == 429
        with open_feeds(console, console.signed_in("ana").cookies[COOKIE]) as (anas,):
            assert anas.status == 200
        assert otto.get("/api/me").status_code == 200  # and the console answers meanwhile
    for _ in range(200):  # the tabs closed: their places come free once the server saw them go
        with open_feeds(console, session_id) as (feed,):
            if feed.status == 200:
                break
        time.sleep(0.1)
    else:
        pytest.fail("a closed feed's place was never freed")


def _whole_answer(connection: socket.socket) -> bytes:
    """The response's head and its whole body: they may come in separate segments."""
    answer = b""
    while b"\r\n\r\n" not in answer:
        chunk = connection.recv(4096)
        if not chunk:
            return answer
        answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    length = next(
        (
            int(line.split(b":", 1)[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        ),
        0,
    )
    while len(body) < length:
        chunk = connection.recv(4096)
        if not chunk:
            break
        body += chunk
    return head + b"\r\n\r\n" + body


def test_a_body_sent_too_slowly_is_refused_and_others_are_answered_meanwhile(
    console: Console, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A client that opens a POST and then trickles nothing holds only itself up, and not for ever."""
    monkeypatch.setattr(web, "BODY_SECONDS", 1.0)
    otto = console.signed_in("otto")
    host, port = console.url.removeprefix("http://").split(":")
    slow = socket.create_connection((host, int(port)), timeout=30)
    try:
        request = (
            f"POST /api/messages HTTP/1.1\r\nHost: {host}\r\nCookie: {COOKIE}={otto.cookies[COOKIE]}\r\n"
            f"X-CSRF-Token: {csrf_of(otto)['X-CSRF-Token']}\r\nContent-Type: application/json\r\n"
            "Content-Length: 1000000\r\n\r\n{"
        )
        slow.sendall(request.encode())
        assert console.signed_in("ana").get("/api/me").status_code == 200
        answer = _whole_answer(slow)  # within the socket's generous 30 s
        assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
        assert b'"body"' in answer, answer
    finally:
        slow.close()


def test_signing_in_again_in_a_browser_ends_its_previous_session(console: Console) -> None:
    browser = console.signed_in("otto")
    first = browser.cookies[COOKIE]
    assert browser.get(console.link("ana")).status_code == 303
    assert browser.get("/api/me").json()["name"] == "ana"
    stale = console.browser()
    stale.cookies.set(COOKIE, first)
    assert stale.get("/api/me").status_code == 401


def test_one_person_signing_in_again_and_again_pushes_out_only_their_own_sessions(
    console: Console,
) -> None:
    ana = console.signed_in("ana")
    first_otto = console.signed_in("otto")
    for _ in range(console.settings.max_sessions + 5):
        console.signed_in("otto").close()
    assert ana.get("/api/me").json()["name"] == "ana"
    assert first_otto.get("/api/me").status_code == 401  # otto's oldest went
    assert console.signed_in("otto").get("/api/me").status_code == 200


@pytest.mark.parametrize(
    "path",
    [
        "/..%2f..%2fpyproject.toml",
        "/%2e%2e/%2e%2e/pyproject.toml",
        "/static/../../app.py",
        "/..\\..\\app.py",
        "/app.py",
        "/__init__.py",
    ],
)
def test_static_files_serve_nothing_outside_the_built_front_end(console: Console, path: str) -> None:
    response = console.browser().get(path)
    assert response.status_code == 404 or "<!doctype html>" in response.text.lower()[:50]
    assert "import" not in response.text and "[project]" not in response.text


def test_a_cross_site_post_without_the_header_is_refused_on_every_state_changing_route(
    console: Console,
) -> None:
    otto = console.signed_in("otto")
    for path in [
        "/api/deployments/validate",
        "/api/deployments",
        "/api/instances/x/cancel",
        "/api/incidents/x/resolve",
        "/api/messages",
        "/api/tasks/x/claim",
        "/api/tasks/x/unclaim",
        "/api/tasks/x/complete",
        "/logout",
    ]:
        refused = otto.post(path, json={}, headers={"X-CSRF-Token": "wrong"})
        assert refused.status_code == 403, path
        form = otto.post(path, data={"a": "b"})
        assert form.status_code == 403, path
    assert otto.get("/api/me").status_code == 200  # still signed in: /logout refused too


def test_no_cross_origin_reads_are_allowed(console: Console) -> None:
    otto = console.signed_in("otto")
    response = otto.get("/api/me", headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in response.headers
    preflight = otto.options(
        "/api/messages",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
    )
    assert "access-control-allow-origin" not in preflight.headers


def test_a_staff_member_reads_no_one_elses_records(console: Console) -> None:
    instance_id = start(console, "needs", "E-hostile-1")
    eventually(lambda: tasks_of(console, instance_id), "the business group's task")
    lea = console.signed_in("lea")  # legal: neither the business group's tasks nor operations
    for path in [
        "/api/definitions",
        "/api/definitions/needs:1",
        "/api/instances",
        "/api/instances?query=a",
        "/api/processes/needs/statistics",
        "/api/operations",
    ]:
        assert lea.get(path).status_code == 403, path
    business_tasks = console.signed_in("bella").get("/api/tasks").json()["user_tasks"]
    assert instance_id in {t["instance_id"] for t in business_tasks}
    for task in business_tasks:
        assert lea.get(f"/api/tasks/{task['user_task_id']}").status_code in (403, 404)
    listed = lea.get("/api/tasks").json()["user_tasks"]
    assert not {t["user_task_id"] for t in listed} & {t["user_task_id"] for t in business_tasks}


def test_the_console_serves_while_nats_is_down_and_its_feed_recovers_when_nats_comes(
    tmp_path: Path,
) -> None:
    port = free_port()
    url = f"nats://127.0.0.1:{port}"
    settings = console_settings(tmp_path, url, {})
    with serving(build(settings), settings.listen_port) as console_url:
        console = Console(console_url, settings, None)  # type: ignore[arg-type]  # no components needed
        otto = console.signed_in("otto")
        assert otto.get("/api/me").status_code == 200
        assert otto.get("/healthz").status_code == 503
        down = otto.get("/api/events")
        assert down.status_code == 503 and down.json()["error"]["code"] == "UNAVAILABLE"
        assert otto.get("/api/instances").status_code == 503  # no orchestrator either: a clear 503
        with late_nats_server(port, tmp_path / "nats"):
            eventually(
                lambda: otto.get("/healthz").status_code == 200, "the console to reach NATS", timeout=30
            )
            with open_feeds(console, otto.cookies[COOKIE]) as (feed,):
                assert feed.status == 200


def test_a_ticket_folder_open_to_others_is_closed_at_the_next_link(tmp_path: Path) -> None:
    folder = tmp_path / "console-tickets"
    folder.mkdir(mode=0o777)
    folder.chmod(0o777)
    deposit(folder, local_identity().issuer, "otto", ["ops"])
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert all(stat.S_IMODE(f.stat().st_mode) == 0o600 for f in folder.iterdir())


def test_a_crafted_callback_shows_no_text_of_its_senders(tmp_path: Path, nats_session_url: str) -> None:
    """Anybody can send a link to /callback: its page on the console's origin says nothing of theirs."""
    settings = console_settings(tmp_path, nats_session_url, {})
    oidc = OidcClient(issuer="https://idp.invalid", client_id="c", client_secret="", scopes="openid", ca="")
    settings = dataclasses.replace(settings, oidc=oidc)
    with serving(build(settings), settings.listen_port) as url:
        page = httpx.get(
            f"{url}/callback",
            params={"error": "Your account is locked. Call +1 555 0100", "error_description": "urgent: call"},
        )
        assert page.status_code == 403 and "data-testid='signin-refused'" in page.text
        assert "555" not in page.text and "urgent" not in page.text
        denied = httpx.get(f"{url}/callback", params={"error": "access_denied"})
        assert "access_denied" in denied.text
