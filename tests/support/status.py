"""Reading the STATUS stream in tests: every event, the events a test waits for, their payloads."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Sequence
from typing import Any

import nats

from consultflow.api.events.v1 import events_pb2
from consultflow.platform.messaging import STATUS_STREAM, NatsCredentials, connect_options


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


def all_status_events(
    nats_url: str, quiet: float = 1.0, credentials: NatsCredentials | None = None
) -> list[events_pb2.StatusEvent]:
    """Every event on STATUS, read from the start of the stream until none comes for `quiet` seconds
    (as the read-only user `credentials` on a secured server, e.g. `LocalSystem.nats_credentials()`)."""
    return [event for _, event in status_messages([nats_url], quiet, credentials)]


def status_messages(
    servers: list[str], quiet: float = 1.0, credentials: NatsCredentials | None = None
) -> list[tuple[str, events_pb2.StatusEvent]]:
    """Every message on STATUS with its `Nats-Msg-Id` (the outbox row's id), through any of `servers`
    (the nodes of a cluster), read until none comes for `quiet` seconds."""

    async def read() -> list[tuple[str, events_pb2.StatusEvent]]:
        nc = await nats.connect(servers=servers, **connect_options(credentials))
        messages: list[tuple[str, events_pb2.StatusEvent]] = []
        try:
            sub = await nc.jetstream().subscribe("status.>", stream=STATUS_STREAM, ordered_consumer=True)
            while True:
                message = await sub.next_msg(timeout=quiet)
                msg_id = (message.headers or {}).get("Nats-Msg-Id", "")
                messages.append((msg_id, events_pb2.StatusEvent.FromString(message.data)))
        except TimeoutError:
            pass
        finally:
            await nc.close()
        return messages

    return asyncio.run(read())


def wait_for_types(
    nats_url: str, types: Sequence[str], timeout: float = 10.0
) -> list[events_pb2.StatusEvent]:
    """Reads until every `source.type` named (e.g. "crm.inquiry.recorded") was seen at least as often
    as named; fails naming what is missing."""

    def seen(events: list[events_pb2.StatusEvent]) -> bool:
        names = [f"{e.source}.{e.type}" for e in events]
        return all(names.count(t) >= list(types).count(t) for t in set(types))

    events = read_status(nats_url, seen, timeout)
    names = [f"{e.source}.{e.type}" for e in events]
    missing = [t for t in set(types) if names.count(t) < list(types).count(t)]
    assert not missing, f"status events missing: {missing}; seen: {names}"
    return events


def events_including(nats_url: str, expected: Sequence[str], source: str) -> list[events_pb2.StatusEvent]:
    """Reads STATUS until `source` has published at least these event types (repeats counted); returns
    that source's events."""
    events = wait_for_types(nats_url, [f"{source}.{event_type}" for event_type in expected])
    return [e for e in events if e.source == source]


def payload(event: events_pb2.StatusEvent) -> dict[str, Any]:
    """An event's JSON payload."""
    result: dict[str, Any] = json.loads(event.payload_json or "{}")
    return result
