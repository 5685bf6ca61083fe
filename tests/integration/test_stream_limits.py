"""The streams carry their size limits on a real nats-server, and provisioning again brings an existing
stream to changed limits without losing what it holds."""

from __future__ import annotations

import asyncio

import nats
from nats.js.api import DiscardPolicy, RetentionPolicy, StorageType, StreamConfig

from consultflow.platform.limits import Limits
from consultflow.platform.messaging import JOBS_STREAM, STATUS_STREAM
from consultflow.platform.nats_access import provision


def test_streams_are_bounded_and_provisioning_updates_them(nats_url: str) -> None:
    async def scenario() -> None:
        nc = await nats.connect(nats_url)
        js = nc.jetstream()
        defaults = Limits()
        jobs = (await js.stream_info(JOBS_STREAM)).config
        status = (await js.stream_info(STATUS_STREAM)).config
        assert (jobs.max_bytes, jobs.max_msgs, jobs.max_msg_size, jobs.discard) == (
            defaults.jobs_stream_max_bytes,
            defaults.jobs_stream_max_messages,
            defaults.stream_max_message_bytes,
            DiscardPolicy.NEW,
        )
        assert (status.max_bytes, status.max_msg_size, status.discard) == (
            defaults.status_stream_max_bytes,
            defaults.stream_max_message_bytes,
            DiscardPolicy.OLD,
        )
        assert status.max_age == defaults.status_stream_max_age_hours * 3600

        await js.publish("status.crm.a.recorded", b"kept")
        smaller = Limits(
            jobs_stream_max_messages=10, status_stream_max_bytes=1_000_000, status_stream_max_age_hours=1
        )
        await provision(js, limits=smaller)  # the second provisioning updates in place
        jobs = (await js.stream_info(JOBS_STREAM)).config
        info = await js.stream_info(STATUS_STREAM)
        assert jobs.max_msgs == 10
        assert (info.config.max_bytes, info.config.max_age) == (1_000_000, 3600)
        assert info.state.messages == 1, "updating the limits kept the stream's messages"

        # JOBS refuses what does not fit (discard new): the publisher keeps it in its outbox
        for n in range(10):
            await js.publish("jobs.crm.record_inquiry", str(n).encode())
        try:
            await js.publish("jobs.crm.record_inquiry", b"one too many")
        except nats.js.errors.APIError as error:
            assert error.err_code == 10077, error
        else:
            raise AssertionError("a full JOBS stream accepted another job")
        await nc.close()

    asyncio.run(scenario())


def test_streams_made_before_the_limits_are_brought_to_them(nats_url: str) -> None:
    """A system upgraded in place: its unbounded JOBS (discard old) becomes bounded, discard new, and keeps
    the jobs it holds."""

    async def scenario() -> None:
        nc = await nats.connect(nats_url)
        js = nc.jetstream()
        await js.delete_stream(JOBS_STREAM)
        await js.add_stream(
            StreamConfig(
                name=JOBS_STREAM,
                subjects=["jobs.>"],
                retention=RetentionPolicy.WORK_QUEUE,
                storage=StorageType.FILE,
                duplicate_window=120,
                discard=DiscardPolicy.OLD,
            )
        )
        await js.publish("jobs.crm.record_inquiry", b"waiting")
        await provision(js)
        info = await js.stream_info(JOBS_STREAM)
        assert (info.config.discard, info.config.max_bytes) == (
            DiscardPolicy.NEW,
            Limits().jobs_stream_max_bytes,
        )
        assert info.state.messages == 1
        await nc.close()

    asyncio.run(scenario())
