"""The console's NATS user against a real nats-server configured as `consultflow up` configures it: it
reads status.> and can do nothing else (asserted on the streams, as tests/integration/test_nats_access.py
does, because NATS refuses a publish asynchronously)."""

from __future__ import annotations

import asyncio

from consultflow.platform.messaging import JOBS_STREAM, STATUS_STREAM, connect
from consultflow.platform.nats_access import ADMIN, CONSOLE
from tests.integration.test_nats_access import REFUSAL_WAIT, Secured, run, secured

__all__ = ["secured"]  # the fixture


def test_the_console_reads_status_events_and_publishes_nothing(secured: Secured) -> None:
    async def body() -> None:
        console, _ = await connect(secured.url, "console", secured.users.credentials(CONSOLE))
        received: asyncio.Queue[str] = asyncio.Queue()
        jobs_seen: list[str] = []

        async def on_status(message: object) -> None:
            await received.put(str(getattr(message, "subject", "")))

        async def on_job(message: object) -> None:
            jobs_seen.append(str(getattr(message, "subject", "")))

        await console.subscribe("status.>", cb=on_status)
        await console.subscribe("jobs.>", cb=on_job)
        await console.flush()
        async with secured.client("crm") as crm:
            await crm.publish("status.crm.client.created", b"event")
            await crm.flush()
        assert await asyncio.wait_for(received.get(), 5) == "status.crm.client.created"

        before = (await secured.count(STATUS_STREAM), await secured.count(JOBS_STREAM))
        await console.publish("status.crm.client.created", b"forged")
        await console.publish("jobs.crm.record_inquiry", b"forged")
        await console.flush()
        async with secured.client(ADMIN) as admin:
            await admin.publish("jobs.crm.record_inquiry", b"a real job")
            await admin.flush()
        await asyncio.sleep(REFUSAL_WAIT)
        after = (await secured.count(STATUS_STREAM), await secured.count(JOBS_STREAM))
        assert after == (before[0], before[1] + 1)  # only the admin's job
        assert jobs_seen == []
        await console.close()

    run(body)
