"""The console's live feed: real status events from the real orchestrator (and one a service would
publish) through the console's NATS subscription to each signed-in browser, filtered per person."""

from __future__ import annotations

import asyncio
import json
import queue
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import nats
from google.protobuf.timestamp_pb2 import Timestamp

from consultflow.api.events.v1 import events_pb2
from consultflow.api.orchestrator.v1 import orchestrator_pb2 as pb
from consultflow.console.events import Forward, Hub, Listener
from tests.integration.console.conftest import Console

FIELDS = {"id", "source", "type", "subject", "time", "instance_id", "business_key"}


class Feed:
    """The events one browser receives, read on a thread of its own."""

    def __init__(self, browser: httpx.Client) -> None:
        self.events: queue.Queue[dict[str, Any]] = queue.Queue()
        self.seen: list[dict[str, Any]] = []
        self._connected = threading.Event()
        self._browser = browser
        self._thread = threading.Thread(target=self._read, daemon=True)

    def _read(self) -> None:
        try:
            with self._browser.stream("GET", "/api/events") as response:
                assert response.headers["content-type"].startswith("text/event-stream")
                for line in response.iter_lines():
                    if line == ": connected":
                        self._connected.set()
                    if line.startswith("data: "):
                        self.events.put(json.loads(line.removeprefix("data: ")))
        except (httpx.HTTPError, RuntimeError):
            return  # the test closed the browser

    def start(self) -> Feed:
        self._thread.start()
        assert self._connected.wait(10), "the feed did not open"
        return self

    def wait_for(self, wanted: dict[str, str], timeout: float = 15.0) -> dict[str, Any]:
        """The first event (seen already, or arriving) with these fields."""
        for event in self.seen:
            if all(event.get(k) == v for k, v in wanted.items()):
                return event
        while True:
            event = self.events.get(timeout=timeout)
            self.seen.append(event)
            if all(event.get(k) == v for k, v in wanted.items()):
                return event

    def close(self) -> None:
        self._browser.close()


@contextmanager
def feeds(console: Console, *names: str) -> Iterator[list[Feed]]:
    opened = [Feed(console.signed_in(name)).start() for name in names]
    try:
        yield opened
    finally:
        for feed in opened:
            feed.close()


def publish_service_event(nats_url: str, email: str) -> str:
    """A status event as a service's outbox publishes it, with personal data in its payload."""
    now = Timestamp()
    now.GetCurrentTime()
    event = events_pb2.StatusEvent(
        id=str(uuid.uuid4()),
        source="crm",
        type="client.created",
        subject="C-1",
        time=now,
        correlation={"business_key": "E-feed"},
        payload_json=json.dumps({"email": email}),
    )

    async def send() -> None:
        nc = await nats.connect(nats_url)
        await nc.publish("status.crm.client.created", event.SerializeToString())
        await nc.flush()
        await nc.close()

    asyncio.run(send())
    return event.id


def test_ops_see_instance_and_service_events_without_payloads_and_staff_only_their_tasks(
    console: Console, nats_session_url: str
) -> None:
    with feeds(console, "otto", "bella") as (otto, bella):
        legal = console.system.orchestrator.CreateInstance(
            pb.CreateInstanceRequest(process_id="legal_review", business_key="E-feed-legal")
        ).instance_id
        service_event = publish_service_event(nats_session_url, "client@example.com")
        needs = console.system.orchestrator.CreateInstance(
            pb.CreateInstanceRequest(process_id="needs", business_key="E-feed")
        ).instance_id

        created = otto.wait_for({"type": "instance.created", "instance_id": needs})
        assert created["source"] == "orchestrator" and created["business_key"] == "E-feed"
        assert created["subject"] == needs
        crm = otto.wait_for({"id": service_event})
        assert crm == {
            "id": service_event,
            "source": "crm",
            "type": "client.created",
            "subject": "C-1",
            "time": crm["time"],
            "business_key": "E-feed",
        }

        task = bella.wait_for({"type": "usertask.created", "instance_id": needs})
        assert set(task) <= FIELDS
        assert all(e["type"].startswith("usertask.") for e in bella.seen), bella.seen
        assert not [e for e in bella.seen if e.get("instance_id") == legal], "another group's task"
        assert service_event not in {e["id"] for e in bella.seen}
        for event in otto.seen + bella.seen:
            assert set(event) <= FIELDS
            assert "client@example.com" not in json.dumps(event)


def test_the_feed_needs_a_session(console: Console) -> None:
    assert console.browser().get("/api/events").status_code == 401


def test_a_browser_that_falls_behind_is_dropped_and_the_others_still_get_everything() -> None:
    hub = Hub("nats://unused", None)
    slow, quick = Listener(), Listener()
    hub.listeners |= {slow, quick}
    sent = [Forward(str(n), "orchestrator", "instance.created", "i", "", "i", "") for n in range(300)]
    for number, event in enumerate(sent):
        hub.publish(event)
        if number % 10 == 0:  # the quick one keeps reading
            while not quick.queue.empty():
                quick.queue.get_nowait()
    assert slow.dropped and not quick.dropped
    assert slow.queue.qsize() == slow.queue.maxsize
