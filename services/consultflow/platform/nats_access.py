"""Who may do what on NATS, and the one place that creates JetStream's streams and consumers.

Every identity is a NATS user with exactly the subjects its work needs:

- `admin` (the provisioner only): everything; it creates and updates streams and durable consumers.
- `orchestrator`: publishes `jobs.>` and its own `status.orchestrator.>`; reads STATUS through its durable
  consumer `orchestrator-status-messages`.
- a service `S`: publishes only `status.S.>`; reads only its consumer `worker-S` on JOBS.
- `reader` (the CLI's `consultflow events`, tests): creates ephemeral consumers on STATUS and reads them.
- `console`: subscribes to `status.>` (a plain subscription, no consumer) and publishes nothing but
  stream-info requests; it forwards each event, filtered per person, to the browsers (docs/console.md).

Nobody but the admin may create, update, purge or delete a stream or a durable consumer, and every user
subscribes only below its own inbox prefix (`_INBOX_<user>.>`), where its JetStream replies and job
deliveries arrive — so nobody reads another's replies or jobs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import NotFoundError

from consultflow import SERVICES
from consultflow.platform.limits import Limits
from consultflow.platform.messaging import (
    JOBS_STREAM,
    STATUS_STREAM,
    STREAMS,
    NatsCredentials,
    inbox_prefix,
    open_client,
    streams,
)

log = logging.getLogger(__name__)

ADMIN = "admin"
ORCHESTRATOR = "orchestrator"
READER = "reader"
CONSOLE = "console"
STATUS_DURABLE = "orchestrator-status-messages"
DEFAULT_JOB_ACK_WAIT_SECONDS = 60.0


def worker_durable(service: str) -> str:
    """The JOBS consumer a service's worker reads."""
    return f"worker-{service}"


@dataclass(frozen=True)
class Permissions:
    """The subjects one NATS user may publish to and subscribe to (allow lists; the rest is denied)."""

    publish: tuple[str, ...]
    subscribe: tuple[str, ...]


def _stream_info() -> tuple[str, ...]:
    return ("$JS.API.INFO", *(f"$JS.API.STREAM.INFO.{s.name}" for s in STREAMS))


def _durable_reader(stream: str, durable: str) -> tuple[str, ...]:
    """What reading a provisioned pull consumer takes: its info, fetching, and acknowledging."""
    return (
        f"$JS.API.CONSUMER.INFO.{stream}.{durable}",
        f"$JS.API.CONSUMER.MSG.NEXT.{stream}.{durable}",
        f"$JS.ACK.{stream}.{durable}.>",
    )


def permissions(user: str) -> Permissions:
    """The exact rights of `user`: admin, orchestrator, reader, console or a service's name."""
    inbox = (f"{inbox_prefix(user)}.>",)
    if user == ADMIN:
        return Permissions((">",), (">",))
    if user == ORCHESTRATOR:
        return Permissions(
            (
                "jobs.>",
                "status.orchestrator.>",
                *_stream_info(),
                *_durable_reader(STATUS_STREAM, STATUS_DURABLE),
            ),
            inbox,
        )
    if user == READER:
        # An ephemeral consumer only (the request names no consumer, so no durable can be created or
        # updated); flow control replies for the ordered consumer the CLI uses.
        return Permissions(
            (*_stream_info(), f"$JS.API.CONSUMER.CREATE.{STATUS_STREAM}", f"$JS.FC.{STATUS_STREAM}.>"), inbox
        )
    if user == CONSOLE:
        return Permissions(_stream_info(), (*inbox, "status.>"))
    return Permissions(
        (f"status.{user}.>", *_stream_info(), *_durable_reader(JOBS_STREAM, worker_durable(user))), inbox
    )


def users(services: Iterable[str] = SERVICES) -> tuple[str, ...]:
    """Every NATS user of a system with these services."""
    return (ADMIN, ORCHESTRATOR, READER, CONSOLE, *services)


def _quoted(values: Sequence[str]) -> str:
    return "[" + ", ".join(json.dumps(v) for v in values) + "]"


def authorization_block(passwords: Mapping[str, str], indent: str = "") -> str:
    """The `authorization { users = [...] }` block of nats-server's configuration.

    `passwords` maps user → password as written into the file: a literal, or `$VAR` for a variable the
    server reads from its environment (Kubernetes puts the Secret there)."""
    lines = [f"{indent}authorization {{", f"{indent}  users = ["]
    for user, password in passwords.items():
        rights = permissions(user)
        value = password if password.startswith("$") else json.dumps(password)
        publish = f"publish: {{allow: {_quoted(rights.publish)}}}"
        subscribe = f"subscribe: {{allow: {_quoted(rights.subscribe)}}}"
        lines.append(
            f"{indent}    {{user: {json.dumps(user)}, password: {value}, "
            f"permissions: {{{publish}, {subscribe}}}}}"
        )
    lines += [f"{indent}  ]", f"{indent}}}"]
    return "\n".join(lines) + "\n"


def consumers(
    services: Iterable[str] = SERVICES, job_ack_wait: float = DEFAULT_JOB_ACK_WAIT_SECONDS
) -> list[tuple[str, ConsumerConfig]]:
    """The durable consumers: one per service on JOBS, the orchestrator's on STATUS."""
    result = [
        (
            JOBS_STREAM,
            ConsumerConfig(
                durable_name=worker_durable(service),
                filter_subject=f"jobs.{service}.>",
                ack_policy=AckPolicy.EXPLICIT,
                deliver_policy=DeliverPolicy.ALL,
                ack_wait=job_ack_wait,
                max_deliver=-1,
                max_ack_pending=1000,
            ),
        )
        for service in services
    ]
    result.append(
        (
            STATUS_STREAM,
            ConsumerConfig(
                durable_name=STATUS_DURABLE,
                filter_subject="status.>",
                ack_policy=AckPolicy.EXPLICIT,
                deliver_policy=DeliverPolicy.ALL,
                ack_wait=30,
                max_deliver=-1,
            ),
        )
    )
    return result


async def provision(
    js: JetStreamContext,
    services: Iterable[str] = SERVICES,
    job_ack_wait: float = DEFAULT_JOB_ACK_WAIT_SECONDS,
    replicas: int = 1,
    limits: Limits | None = None,
) -> None:
    """Creates the streams and durable consumers, or updates them to this configuration (admin only).

    An existing stream is updated in place, so changed size limits (`CONSULTFLOW_LIMIT_*_STREAM_*`) take
    effect at the next provisioning without losing what the stream holds."""
    for base in streams(Limits.from_env() if limits is None else limits):
        config = replace(base, num_replicas=replicas)
        try:
            await js.stream_info(str(config.name))
        except NotFoundError:
            await js.add_stream(config)
            log.info("created stream %s", config.name)
            continue
        await js.update_stream(config)
        log.info("updated stream %s", config.name)
    for stream, consumer in consumers(services, job_ack_wait):
        await js.add_consumer(stream, consumer)  # creates, or updates the editable fields
        log.info("provisioned consumer %s on %s", consumer.durable_name, stream)


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m consultflow.platform.nats_access provision|config`: the Kubernetes provisioning Job."""
    parser = argparse.ArgumentParser(prog="python -m consultflow.platform.nats_access")
    parser.add_argument("command", choices=["provision", "authorization"])
    args = parser.parse_args(argv)
    if args.command == "authorization":
        sys.stdout.write(authorization_block({u: f"${u.upper()}_PASSWORD" for u in users()}, "    "))
        return 0
    logging.basicConfig(level=logging.INFO)
    url = os.environ.get("CONSULTFLOW_NATS_URL", "nats://127.0.0.1:4222")
    user = os.environ.get("CONSULTFLOW_NATS_USER", "")
    password_file = os.environ.get("CONSULTFLOW_NATS_PASSWORD_FILE", "")
    ca = os.environ.get("CONSULTFLOW_NATS_CA_FILE", "")
    credentials = (
        NatsCredentials.from_file(user, Path(password_file), Path(ca) if ca else None)
        if user and password_file
        else None
    )

    async def run() -> None:
        nc = await open_client(url, credentials)
        try:
            await provision(
                nc.jetstream(),
                job_ack_wait=float(os.environ.get("CONSULTFLOW_JOB_TIMEOUT_SECONDS", "60")),
                replicas=int(os.environ.get("CONSULTFLOW_NATS_STREAM_REPLICAS", "1")),
            )
        finally:
            await nc.close()

    asyncio.run(run())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
