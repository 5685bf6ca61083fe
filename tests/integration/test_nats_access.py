"""NATS identities against a real nats-server configured as `consultflow up` configures it.

A refused publish on NATS is asynchronous (the server answers with an error the client only logs), so
every test asserts on the streams and consumers, read by the admin, rather than on an exception.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import replace
from pathlib import Path

import nats
import pytest
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.errors import NoServersError
from nats.js.api import AckPolicy, ConsumerConfig

from consultflow.cli.system import start_nats
from consultflow.platform.local_identity import LocalNatsUsers
from consultflow.platform.messaging import (
    JOBS_STREAM,
    STATUS_STREAM,
    MessagingNotProvisioned,
    connect,
    connect_options,
)
from consultflow.platform.nats_access import ADMIN, STATUS_DURABLE, provision, worker_durable
from consultflow.platform.tls import LocalAuthority
from tests.support.identity import local_identity

REFUSAL_WAIT = 0.5  # how long a refused request is given before we look at the stream


class Secured:
    """A nats-server that knows only the consultflow users, provisioned by the admin."""

    def __init__(self, folder: Path) -> None:
        self.users = LocalNatsUsers(folder / "identity" / "nats")
        self.folder = folder
        self.url = ""

    async def connect(self, user: str) -> Client:
        errors: list[Exception] = []

        async def on_error(error: Exception) -> None:
            errors.append(error)  # permission violations arrive here, asynchronously

        return await nats.connect(
            self.url,
            error_cb=on_error,
            allow_reconnect=False,
            **connect_options(self.users.credentials(user)),
        )

    @contextlib.asynccontextmanager
    async def client(self, user: str) -> AsyncIterator[Client]:
        nc = await self.connect(user)
        try:
            yield nc
        finally:
            await nc.close()

    async def count(self, stream: str) -> int:
        async with self.client(ADMIN) as nc:
            info = await nc.jetstream().stream_info(stream)
            return int(info.state.messages)


@pytest.fixture
def secured(tmp_path: Path) -> Iterator[Secured]:
    server = Secured(tmp_path)
    process, server.url = start_nats(tmp_path, tmp_path / "nats.log", server.users)
    try:

        async def setup() -> None:
            async with server.client(ADMIN) as nc:
                await provision(nc.jetstream())

        asyncio.run(setup())
        yield server
    finally:
        process.terminate()
        process.wait(timeout=10)


async def refused(action: Awaitable[object]) -> None:
    """Runs a request the server should refuse; it times out or errors, never succeeds quietly."""
    with contextlib.suppress(Exception):
        await asyncio.wait_for(action, REFUSAL_WAIT)


def run(body: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(body())  # type: ignore[arg-type]


def test_without_credentials_nobody_connects(secured: Secured) -> None:
    async def body() -> None:
        with pytest.raises((NoServersError, nats.errors.Error, OSError)):
            await nats.connect(secured.url, allow_reconnect=False, max_reconnect_attempts=0)

    run(body)


def test_a_forged_status_event_from_another_service_leaves_status_unchanged(secured: Secured) -> None:
    async def body() -> None:
        before = await secured.count(STATUS_STREAM)
        async with secured.client("crm") as crm, secured.client("reader") as reader:
            await refused(crm.jetstream().publish("status.contracts.quotation.accepted", b"forged"))
            await refused(reader.jetstream().publish("status.crm.inquiry.recorded", b"forged"))
            await crm.flush()
        assert await secured.count(STATUS_STREAM) == before
        async with secured.client("crm") as crm:
            await crm.jetstream().publish("status.crm.inquiry.recorded", b"own")
        assert await secured.count(STATUS_STREAM) == before + 1

    run(body)


def test_only_the_orchestrator_puts_jobs_on_jobs(secured: Secured) -> None:
    async def body() -> None:
        for user in ("crm", "contracts", "reader"):
            async with secured.client(user) as nc:
                await refused(nc.jetstream().publish("jobs.crm.record_inquiry", b"forged"))
        assert await secured.count(JOBS_STREAM) == 0
        async with secured.client("orchestrator") as orchestrator:
            await orchestrator.jetstream().publish("jobs.crm.record_inquiry", b"real")
        assert await secured.count(JOBS_STREAM) == 1

    run(body)


def test_a_service_cannot_purge_or_delete_a_stream(secured: Secured) -> None:
    async def body() -> None:
        async with secured.client("orchestrator") as orchestrator:
            await orchestrator.jetstream().publish("jobs.crm.record_inquiry", b"real")
            await orchestrator.jetstream().publish("status.orchestrator.instance.started", b"real")
        for user in ("crm", "orchestrator", "reader"):
            async with secured.client(user) as nc:
                js = nc.jetstream()
                for stream in (JOBS_STREAM, STATUS_STREAM):
                    await refused(js.purge_stream(stream))
                    await refused(js.delete_stream(stream))
                    await refused(js.update_stream(name=stream, subjects=[f"{stream.lower()}.x"]))
        assert await secured.count(JOBS_STREAM) == 1
        assert await secured.count(STATUS_STREAM) == 1
        async with secured.client(ADMIN) as admin:
            assert (await admin.jetstream().stream_info(JOBS_STREAM)).config.subjects == ["jobs.>"]

    run(body)


def test_a_service_cannot_create_change_or_delete_consumers(secured: Secured) -> None:
    async def body() -> None:
        async with secured.client("crm") as crm:
            js = crm.jetstream()
            await refused(
                js.add_consumer(
                    JOBS_STREAM,
                    ConsumerConfig(
                        durable_name="steal", filter_subject="jobs.contracts.>", ack_policy=AckPolicy.EXPLICIT
                    ),
                )
            )
            await refused(js.add_consumer(JOBS_STREAM, ConsumerConfig(filter_subject="jobs.contracts.>")))
            await refused(js.delete_consumer(JOBS_STREAM, worker_durable("contracts")))
            await refused(js.pull_subscribe("jobs.contracts.>", durable="steal2", stream=JOBS_STREAM))
        async with secured.client("reader") as reader:
            # the ephemeral-create subject with a durable name in the body must not make or change one
            request = {
                "stream_name": STATUS_STREAM,
                "config": {
                    "durable_name": STATUS_DURABLE,
                    "filter_subject": "status.crm.>",
                    "ack_policy": "explicit",
                },
            }
            await refused(
                reader.request(f"$JS.API.CONSUMER.CREATE.{STATUS_STREAM}", json.dumps(request).encode())
            )
            await refused(reader.jetstream().delete_consumer(STATUS_STREAM, STATUS_DURABLE))
        async with secured.client(ADMIN) as admin:
            js = admin.jetstream()
            names = {c.name for c in await js.consumers_info(JOBS_STREAM)}
            assert names == {worker_durable(s) for s in ("crm", "contracts", "delivery", "survey", "risk")}
            status = await js.consumer_info(STATUS_STREAM, STATUS_DURABLE)
            assert status.config.filter_subject == "status.>"
            assert [c.name for c in await js.consumers_info(STATUS_STREAM)] == [STATUS_DURABLE]

    run(body)


def test_a_service_reads_only_its_own_jobs_and_nobody_reads_another_inbox(secured: Secured) -> None:
    async def body() -> None:
        async with secured.client("orchestrator") as orchestrator:
            await orchestrator.jetstream().publish("jobs.contracts.prepare_quote", b"for contracts")
        spied: list[str] = []
        async with secured.client("crm") as crm, secured.client("contracts") as contracts:

            async def spy(message: Msg) -> None:
                spied.append(message.subject)

            for pattern in ("_INBOX_contracts.>", "_INBOX.>", ">", "jobs.>"):
                await crm.subscribe(pattern, cb=spy)
            # crm may not pull from contracts' consumer, not even through the plain API subject
            stolen = await crm.jetstream().pull_subscribe_bind(
                durable=worker_durable("contracts"), stream=JOBS_STREAM
            )
            with contextlib.suppress(Exception):
                await stolen.fetch(1, timeout=REFUSAL_WAIT)
            await crm.flush()
            # nor may the orchestrator, which publishes jobs but does not run them
            async with secured.client("orchestrator") as orchestrator:
                taken = await orchestrator.jetstream().pull_subscribe_bind(
                    durable=worker_durable("contracts"), stream=JOBS_STREAM
                )
                with contextlib.suppress(Exception):
                    await taken.fetch(1, timeout=REFUSAL_WAIT)
            async with secured.client(ADMIN) as admin:
                info = await admin.jetstream().consumer_info(JOBS_STREAM, worker_durable("contracts"))
                assert info.num_pending == 1 and info.num_ack_pending == 0, "crm must not take contracts' job"
            # contracts takes its own job; its delivery arrives in its inbox, which crm cannot read
            own = await contracts.jetstream().pull_subscribe_bind(
                durable=worker_durable("contracts"), stream=JOBS_STREAM
            )
            [message] = await own.fetch(1, timeout=5)
            assert message.data == b"for contracts"
            await message.ack()
            await asyncio.sleep(REFUSAL_WAIT)
        assert spied == []
        async with secured.client(ADMIN) as admin:
            assert (await admin.jetstream().stream_info(JOBS_STREAM)).state.messages == 0

    run(body)


def test_a_service_does_not_read_status(secured: Secured) -> None:
    """Services say what happened; only the orchestrator and read-only clients listen."""

    async def body() -> None:
        async with secured.client("contracts") as contracts:
            await contracts.jetstream().publish("status.contracts.quotation.sent", b"sent")
        async with secured.client("crm") as crm:
            js = crm.jetstream()
            await refused(js.subscribe("status.>", stream=STATUS_STREAM, ordered_consumer=True))
            bridge = await js.pull_subscribe_bind(durable=STATUS_DURABLE, stream=STATUS_STREAM)
            with contextlib.suppress(Exception):
                await bridge.fetch(1, timeout=REFUSAL_WAIT)
        async with secured.client(ADMIN) as admin:
            admin_js = admin.jetstream()
            assert [c.name for c in await admin_js.consumers_info(STATUS_STREAM)] == [STATUS_DURABLE]
            info = await admin_js.consumer_info(STATUS_STREAM, STATUS_DURABLE)
            assert info.num_pending == 1 and info.num_ack_pending == 0, (
                "crm must not take the bridge's events"
            )

    run(body)


def test_components_verify_and_the_reader_follows_status(secured: Secured) -> None:
    async def body() -> None:
        for user in ("orchestrator", "crm"):
            nc, _ = await connect(secured.url, user, secured.users.credentials(user))
            await nc.close()
        async with secured.client("crm") as crm:
            await crm.jetstream().publish("status.crm.client.created", b"one")
        async with secured.client("reader") as reader:
            sub = await reader.jetstream().subscribe("status.>", stream=STATUS_STREAM, ordered_consumer=True)
            message = await sub.next_msg(timeout=5)
            assert message.subject == "status.crm.client.created"
        async with secured.client("orchestrator") as orchestrator:
            bridge = await orchestrator.jetstream().pull_subscribe_bind(
                durable=STATUS_DURABLE, stream=STATUS_STREAM
            )
            [event] = await bridge.fetch(1, timeout=5)
            await event.ack()

    run(body)


def test_a_component_refuses_to_start_on_unprovisioned_streams(tmp_path: Path) -> None:
    users = LocalNatsUsers(tmp_path / "identity" / "nats")
    process, url = start_nats(tmp_path, tmp_path / "nats.log", users)
    try:

        async def body() -> None:
            with pytest.raises(MessagingNotProvisioned):
                await connect(url, "crm", users.credentials("crm"))

        asyncio.run(body())
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_with_a_certificate_the_server_speaks_tls_only(tmp_path: Path) -> None:
    identity = local_identity()
    users = LocalNatsUsers(tmp_path / "identity" / "nats", identity.tls)
    process, url = start_nats(tmp_path, tmp_path / "nats.log", users)
    try:

        async def body() -> None:
            secure = users.credentials(ADMIN)
            assert secure.ca == identity.ca
            nc = await nats.connect(url, allow_reconnect=False, **connect_options(secure))
            assert nc.connected_url is not None and nc._server_info.get("tls_required") is True
            await nc.close()
            plain = replace(secure, ca=None)
            with pytest.raises(Exception):  # noqa: B017 - refused however the client reports it
                await nats.connect(
                    url, allow_reconnect=False, max_reconnect_attempts=0, **connect_options(plain)
                )
            other_ca = LocalAuthority(tmp_path / "other-ca").ca_file
            stranger = replace(secure, ca=other_ca)  # trusting another CA: the server's certificate fails
            with pytest.raises(Exception):  # noqa: B017
                await nats.connect(
                    url, allow_reconnect=False, max_reconnect_attempts=0, **connect_options(stranger)
                )

        asyncio.run(body())
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_the_provisioning_job_command_provisions_as_the_admin_over_tls(tmp_path: Path) -> None:
    """What the Kubernetes Job runs: `python -m consultflow.platform.nats_access provision`."""
    identity = local_identity()
    users = LocalNatsUsers(tmp_path / "identity" / "nats", identity.tls)
    process, url = start_nats(tmp_path, tmp_path / "nats.log", users)
    try:
        env = {
            **os.environ,
            "CONSULTFLOW_NATS_URL": url,
            "CONSULTFLOW_NATS_USER": ADMIN,
            "CONSULTFLOW_NATS_PASSWORD_FILE": str(users.password_file(ADMIN)),
            "CONSULTFLOW_NATS_CA_FILE": str(identity.ca),
            "CONSULTFLOW_JOB_TIMEOUT_SECONDS": "42",
        }
        command = [sys.executable, "-m", "consultflow.platform.nats_access", "provision"]
        result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60, check=False)
        assert result.returncode == 0, result.stderr

        async def check() -> None:
            nc = await nats.connect(url, **connect_options(users.credentials(ADMIN)))
            try:
                info = await nc.jetstream().consumer_info(JOBS_STREAM, worker_durable("crm"))
                assert info.config.ack_wait == 42
            finally:
                await nc.close()
            crm, _ = await connect(url, "crm", users.credentials("crm"))  # what a component then verifies
            await crm.close()

        asyncio.run(check())
    finally:
        process.terminate()
        process.wait(timeout=10)
