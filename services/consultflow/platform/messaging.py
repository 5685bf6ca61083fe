"""NATS and JetStream: the connection every component opens and the two streams they share.

- JOBS (work queue): `jobs.<service>.<operation>`, one durable pull consumer per service.
- STATUS (limits, 7 days): `status.<service>.<entity>.<event>`, read by anyone interested.
Both de-duplicate by `Nats-Msg-Id` within a two-minute window, which makes outbox republishing safe.

Both are bounded (`streams`, from `Limits`; docs/limits.md): JOBS refuses new messages when full
(discard new) — a job is work not yet done, so dropping the oldest would lose it; the refused publish stays
in its outbox and is retried until the workers have caught up. STATUS is a history: when full (or older
than its age limit) it drops its oldest events (discard old), sized so that the orchestrator's consumer,
which reads it continuously, is never that far behind.

Components never create or change streams or consumers: `nats_access.provision` does, once, with the admin
identity (`consultflow up`, the Kubernetes provisioning Job). A component only checks that what it needs
is there, so its NATS user needs no rights to mutate JetStream.
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.api import DiscardPolicy, RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import NotFoundError

from consultflow.platform.limits import DEFAULT_LIMITS, Limits

log = logging.getLogger(__name__)

JOBS_STREAM = "JOBS"
STATUS_STREAM = "STATUS"
DUPLICATE_WINDOW_SECONDS = 120.0


def streams(limits: Limits = DEFAULT_LIMITS) -> tuple[StreamConfig, ...]:
    """The streams with their size limits: the one place they are declared (the provisioner applies it)."""
    return (
        StreamConfig(
            name=JOBS_STREAM,
            subjects=["jobs.>"],
            retention=RetentionPolicy.WORK_QUEUE,
            storage=StorageType.FILE,
            duplicate_window=DUPLICATE_WINDOW_SECONDS,
            max_bytes=limits.jobs_stream_max_bytes,
            max_msgs=limits.jobs_stream_max_messages,
            max_msg_size=limits.stream_max_message_bytes,
            discard=DiscardPolicy.NEW,
        ),
        StreamConfig(
            name=STATUS_STREAM,
            subjects=["status.>"],
            retention=RetentionPolicy.LIMITS,
            storage=StorageType.FILE,
            duplicate_window=DUPLICATE_WINDOW_SECONDS,
            max_age=limits.status_stream_max_age_hours * 3600.0,
            max_bytes=limits.status_stream_max_bytes,
            max_msg_size=limits.stream_max_message_bytes,
            discard=DiscardPolicy.OLD,
        ),
    )


STREAMS = streams()
"""The streams with the default limits (their names and subjects never depend on the limits)."""


def stream_of(subject: str) -> str | None:
    """The stream that takes `subject`, or None: a message on no stream's subject can never be stored."""
    for config in STREAMS:
        if any(subject_matches(pattern, subject) for pattern in config.subjects or []):
            return str(config.name)
    return None


def subject_matches(pattern: str, subject: str) -> bool:
    """NATS subject matching: `*` is one token, a final `>` one or more."""
    wanted, tokens = pattern.split("."), subject.split(".")
    for index, token in enumerate(wanted):
        if token == ">":
            return len(tokens) > index
        if index >= len(tokens) or (token != "*" and token != tokens[index]):
            return False
    return len(tokens) == len(wanted)


class MessagingNotProvisioned(RuntimeError):
    """A stream or consumer a component needs is missing or differs: the provisioner has not run."""


@dataclass(frozen=True)
class NatsCredentials:
    """One NATS identity: user name and password; its replies arrive under its own inbox prefix. With
    `ca` the connection is TLS, and the server's certificate must chain to that CA."""

    user: str
    password: str
    ca: Path | None = None

    @classmethod
    def from_file(cls, user: str, password_file: Path, ca: Path | None = None) -> NatsCredentials:
        return cls(user, password_file.read_text().strip(), ca)

    @property
    def inbox_prefix(self) -> str:
        return inbox_prefix(self.user)


def inbox_prefix(user: str) -> str:
    """`crm` → `_INBOX_crm`: the server lets only that user subscribe below it."""
    return f"_INBOX_{user}"


def job_subject(operation: str) -> str:
    """`crm.record_inquiry` → `jobs.crm.record_inquiry`."""
    return f"jobs.{operation}"


def connect_options(credentials: NatsCredentials | None) -> dict[str, Any]:
    """The nats.connect arguments that authenticate as `credentials` (none: an open server, tests)."""
    if credentials is None:
        return {}
    options: dict[str, Any] = {
        "user": credentials.user,
        "password": credentials.password,
        "inbox_prefix": credentials.inbox_prefix,
    }
    if credentials.ca is not None:
        # TLS before the server says anything, so no one in between can offer plaintext and read the
        # password (the server's `tls { handshake_first: true }`).
        options["tls"] = ssl.create_default_context(cafile=str(credentials.ca))
        options["tls_handshake_first"] = True
    return options


async def open_client(
    servers: str | Sequence[str], credentials: NatsCredentials | None = None, **options: Any
) -> Client:
    """Every NATS client of ours opens here: authenticated as `credentials`, and reporting what happens to
    the connection in our log, instead of nats.py's default, which prints a traceback at ERROR.

    Once the client is closing, an error or a disconnect is expected, not a fault: a TLS close that
    crosses the server's last bytes ends in "application data after close notify". Those go to debug, so
    a CLI whose reader went away (`consultflow events | head -1`) ends as quietly as a component that stops.
    """
    client = Client()

    def closing_or(level: int) -> int:
        return logging.DEBUG if client.is_closed else level

    async def on_error(error: Exception) -> None:
        log.log(closing_or(logging.WARNING), "NATS client: %s", error)

    async def on_disconnect() -> None:
        log.log(closing_or(logging.WARNING), "NATS client: disconnected")

    async def on_reconnect() -> None:
        log.info("NATS client: reconnected")

    urls = servers.split(",") if isinstance(servers, str) else list(servers)
    await client.connect(
        servers=urls,
        error_cb=on_error,
        disconnected_cb=on_disconnect,
        reconnected_cb=on_reconnect,
        **connect_options(credentials),
        **options,
    )
    return client


async def connect(
    url: str, name: str, credentials: NatsCredentials | None = None
) -> tuple[Client, JetStreamContext]:
    """Connects (reconnecting forever) and checks that both streams are provisioned."""
    nc = await open_client(url, credentials, name=name, max_reconnect_attempts=-1, reconnect_time_wait=0.5)
    js = nc.jetstream()
    try:
        await verify_streams(js)
    except BaseException:
        await nc.close()
        raise
    return nc, js


async def verify_streams(js: JetStreamContext) -> None:
    """Raises `MessagingNotProvisioned` unless JOBS and STATUS exist with the subjects this code uses."""
    for expected in STREAMS:
        try:
            info = await js.stream_info(str(expected.name))
        except NotFoundError as error:
            raise MessagingNotProvisioned(
                f"stream {expected.name} does not exist: provision NATS first "
                "(`consultflow up` does; elsewhere `python -m consultflow.platform.nats_access provision`)"
            ) from error
        if list(info.config.subjects or []) != list(expected.subjects or []):
            raise MessagingNotProvisioned(
                f"stream {expected.name} takes {info.config.subjects}, expected {expected.subjects}"
            )
