"""Reading the STATUS stream in tests."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import nats

from consultflow.api.events.v1 import events_pb2
from consultflow.platform.messaging import STATUS_STREAM


def read_status(
    nats_url: str,
    until: Callable[[list[events_pb2.StatusEvent]], bool],
    timeout: float = 10.0,
    subject: str = "status.>",
) -> list[events_pb2.StatusEvent]:
    """Status events on `subject` from the start of the stream, read until `until(events)` holds or
    `timeout` passes; returns what was read either way (the caller asserts on it)."""

    async def read() -> list[events_pb2.StatusEvent]:
        nc = await nats.connect(nats_url)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        events: list[events_pb2.StatusEvent] = []
        try:
            sub = await nc.jetstream().subscribe(subject, stream=STATUS_STREAM, ordered_consumer=True)
            while not until(events):
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                try:
                    message = await sub.next_msg(timeout=min(remaining, 0.5))
                except TimeoutError:
                    continue
                events.append(events_pb2.StatusEvent.FromString(message.data))
        finally:
            await nc.close()
        return events

    return asyncio.run(read())


def all_status_events(nats_url: str, quiet: float = 1.0) -> list[events_pb2.StatusEvent]:
    """Every event on STATUS, read from the start of the stream until none comes for `quiet` seconds."""

    async def read() -> list[events_pb2.StatusEvent]:
        nc = await nats.connect(nats_url)
        events: list[events_pb2.StatusEvent] = []
        try:
            sub = await nc.jetstream().subscribe("status.>", stream=STATUS_STREAM, ordered_consumer=True)
            while True:
                message = await sub.next_msg(timeout=quiet)
                events.append(events_pb2.StatusEvent.FromString(message.data))
        except TimeoutError:
            pass
        finally:
            await nc.close()
        return events

    return asyncio.run(read())
