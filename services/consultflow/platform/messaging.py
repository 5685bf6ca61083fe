"""NATS and JetStream: the connection every component opens and the two streams they share.

- JOBS (work queue): `jobs.<service>.<operation>`, one durable pull consumer per service.
- STATUS (limits, 7 days): `status.<service>.<entity>.<event>`, read by anyone interested.
Both de-duplicate by `Nats-Msg-Id` within a two-minute window, which makes outbox republishing safe.
"""

from __future__ import annotations

import logging
from dataclasses import replace

import nats
from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.api import DiscardPolicy, RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import NotFoundError

log = logging.getLogger(__name__)

JOBS_STREAM = "JOBS"
STATUS_STREAM = "STATUS"
DUPLICATE_WINDOW_SECONDS = 120.0

STREAMS = (
    StreamConfig(
        name=JOBS_STREAM,
        subjects=["jobs.>"],
        retention=RetentionPolicy.WORK_QUEUE,
        storage=StorageType.FILE,
        duplicate_window=DUPLICATE_WINDOW_SECONDS,
        discard=DiscardPolicy.OLD,
    ),
    StreamConfig(
        name=STATUS_STREAM,
        subjects=["status.>"],
        retention=RetentionPolicy.LIMITS,
        storage=StorageType.FILE,
        duplicate_window=DUPLICATE_WINDOW_SECONDS,
        max_age=7 * 24 * 3600.0,
        discard=DiscardPolicy.OLD,
    ),
)


def job_subject(operation: str) -> str:
    """`crm.record_inquiry` → `jobs.crm.record_inquiry`."""
    return f"jobs.{operation}"


async def connect(url: str, name: str, stream_replicas: int = 1) -> tuple[Client, JetStreamContext]:
    """Connects (reconnecting forever) and makes sure both streams exist."""

    async def on_error(error: Exception) -> None:
        log.warning("nats: %s", error)

    async def on_disconnect() -> None:
        log.warning("nats: disconnected")

    async def on_reconnect() -> None:
        log.info("nats: reconnected")

    nc = await nats.connect(
        servers=url.split(","),
        name=name,
        max_reconnect_attempts=-1,
        reconnect_time_wait=0.5,
        error_cb=on_error,
        disconnected_cb=on_disconnect,
        reconnected_cb=on_reconnect,
    )
    js = nc.jetstream()
    await ensure_streams(js, stream_replicas)
    return nc, js


async def ensure_streams(js: JetStreamContext, replicas: int = 1) -> None:
    """Creates JOBS and STATUS, or updates them to this configuration; safe to run from every process."""
    for base in STREAMS:
        config = replace(base, num_replicas=replicas)
        try:
            await js.stream_info(str(config.name))
        except NotFoundError:
            try:
                await js.add_stream(config)
                log.info("created stream %s", config.name)
                continue
            except Exception:  # another process created it first
                log.debug("stream %s appeared meanwhile", config.name, exc_info=True)
        await js.update_stream(config)
