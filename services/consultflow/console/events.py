"""GET /api/events: the STATUS stream as server-sent events, filtered per person.

One NATS subscription on `status.>` per console process feeds every connected browser through a bounded
queue of its own; a browser that does not keep up is dropped (its EventSource reconnects) and never slows
the others. Payloads are never forwarded — they carry personal data such as a client's e-mail — only the
event's id, source, type, subject, time, instance id and business key. Who sees what follows the policy:
analysts, ops and admins see instance, incident and user-task events and the services' events; staff see
only events of user tasks the orchestrator shows them (asked as that person: GetUserTask), and nothing
the console cannot decide.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import grpc
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from consultflow.api.events.v1 import events_pb2
from consultflow.api.orchestrator.v1 import orchestrator_pb2 as pb
from consultflow.console.backends import ApiError, Backends, as_person
from consultflow.console.sessions import COOKIE, Session, SessionStore
from consultflow.console.web import session_of, store_of
from consultflow.platform.messaging import NatsCredentials, connect
from consultflow.platform.policy import Role

log = logging.getLogger(__name__)

QUEUE_SIZE = 256
KEEP_ALIVE_SECONDS = 15.0
ORCHESTRATOR_KINDS = ("instance.", "incident.", "usertask.")
SEES_EVERYTHING = (Role.ANALYST, Role.OPS, Role.ADMIN)
TASK_DECISION_SECONDS = 60.0
MAX_STREAMS_PER_PERSON = 4  # browser tabs of one person; more is a runaway script
MAX_STREAMS = 2000  # one process's feeds in all: each holds a connection and a queue
START_WAIT_SECONDS = 5.0  # how long start-up waits for NATS before serving without the feed
SESSION_CHECK_SECONDS = 1.0  # how soon a feed ends after its session did (sign-out, expiry, eviction)


@dataclass(frozen=True)
class Forward:
    """What may leave the console about one status event: never its payload."""

    id: str
    source: str
    type: str
    subject: str
    time: str
    instance_id: str
    business_key: str

    @classmethod
    def of(cls, event: events_pb2.StatusEvent) -> Forward:
        return cls(
            id=event.id,
            source=event.source,
            type=event.type,
            subject=event.subject,
            time=event.time.ToJsonString() if event.HasField("time") else "",
            instance_id=event.correlation.get("instance_id", ""),
            business_key=event.correlation.get("business_key", ""),
        )

    def data(self) -> dict[str, str]:
        base = {
            "id": self.id,
            "source": self.source,
            "type": self.type,
            "subject": self.subject,
            "time": self.time,
        }
        if self.instance_id:
            base["instance_id"] = self.instance_id
        if self.business_key:
            base["business_key"] = self.business_key
        return base


@dataclass(eq=False)
class Listener:
    """One connected browser: whose it is, its bounded queue, and whether it fell behind."""

    person: str = ""
    queue: asyncio.Queue[Forward] = field(default_factory=lambda: asyncio.Queue(QUEUE_SIZE))
    dropped: bool = False


class Hub:
    """The console's one subscription on `status.>`, fanned out to every listener."""

    def __init__(self, nats_url: str, credentials: NatsCredentials | None) -> None:
        self._url = nats_url
        self._credentials = credentials
        self._nc: Client | None = None
        self._subscription: Subscription | None = None
        self.listeners: set[Listener] = set()
        self._connecting: asyncio.Task[None] | None = None

    def admit(self, person: str) -> Listener:
        """A new listener for `person`, or 429 when they (or everybody) have as many feeds as allowed."""
        if not self.connected:
            raise ApiError(503, "UNAVAILABLE", "the live feed cannot reach NATS; it comes back by itself")
        if len(self.listeners) >= MAX_STREAMS:
            raise ApiError(429, "RESOURCE_EXHAUSTED", f"this console serves {MAX_STREAMS} live feeds already")
        if sum(1 for known in self.listeners if known.person == person) >= MAX_STREAMS_PER_PERSON:
            raise ApiError(
                429,
                "RESOURCE_EXHAUSTED",
                f"{person} has {MAX_STREAMS_PER_PERSON} live feeds open already (close a tab)",
            )
        listener = Listener(person=person)
        self.listeners.add(listener)
        return listener

    async def start(self) -> None:
        """Connects in the background: the console serves (its feed answering 503) while NATS is down,
        and the feed starts when NATS comes. A reachable NATS is waited for: a fresh console has its feed."""
        self._connecting = asyncio.create_task(self._connect())
        await asyncio.wait({self._connecting}, timeout=START_WAIT_SECONDS)

    async def _connect(self) -> None:
        delay = 0.5
        while True:
            try:
                nc, _ = await connect(self._url, "console", self._credentials)
            except asyncio.CancelledError:
                raise
            except Exception as error:  # unreachable, or the streams not provisioned yet
                log.warning("the live feed waits for NATS (%s); trying again in %.1f s", error, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)
                continue
            self._nc = nc
            self._subscription = await nc.subscribe("status.>", cb=self._deliver)
            log.info("the live feed is connected to NATS")
            return

    async def stop(self) -> None:
        if self._connecting is not None:
            self._connecting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._connecting
        if self._subscription is not None:
            await self._subscription.unsubscribe()
        if self._nc is not None:
            await self._nc.close()

    @property
    def connected(self) -> bool:
        return self._nc is not None and self._nc.is_connected

    async def _deliver(self, message: Msg) -> None:
        try:
            forward = Forward.of(events_pb2.StatusEvent.FromString(message.data))
        except Exception as error:  # a malformed event is skipped, never fatal
            log.warning("skipping an unreadable status event on %s: %s", message.subject, error)
            return
        self.publish(forward)

    def publish(self, forward: Forward) -> None:
        for listener in list(self.listeners):
            if listener.dropped:
                continue
            try:
                listener.queue.put_nowait(forward)
            except asyncio.QueueFull:
                listener.dropped = True  # its stream ends; the browser reconnects and starts afresh
                log.info("a browser fell %d events behind and was dropped", QUEUE_SIZE)


class Visibility:
    """Decides, for one person, which events they may see."""

    def __init__(self, session: Session, backends: Backends) -> None:
        self._session = session
        self._backends = backends
        self._tasks: dict[str, tuple[float, bool]] = {}

    async def allows(self, event: Forward) -> bool:
        caller = self._session.caller
        if caller.has_role(*SEES_EVERYTHING):
            return event.source != "orchestrator" or event.type.startswith(ORCHESTRATOR_KINDS)
        if not caller.has_role(Role.STAFF) or event.source != "orchestrator":
            return False
        if not event.type.startswith("usertask."):
            return False
        return await self._sees_task(event.subject)

    async def _sees_task(self, task_id: str) -> bool:
        """The orchestrator's answer to this person asking for the task: shown means theirs to see."""
        known = self._tasks.get(task_id)
        if known is not None and time.monotonic() - known[0] < TASK_DECISION_SECONDS:
            return known[1]
        try:
            await self._backends.orchestrator().GetUserTask(
                pb.GetUserTaskRequest(user_task_id=task_id), **as_person(self._session.token, 5.0)
            )
            seen = True
        except grpc.aio.AioRpcError:
            seen = False  # refused, gone or unreachable: undecided is not shown
        if len(self._tasks) > 1000:
            self._tasks.clear()
        self._tasks[task_id] = (time.monotonic(), seen)
        return seen


def _frame(event: Forward) -> str:
    return f"id: {event.id}\nevent: status\ndata: {json.dumps(event.data())}\n\n"


async def _stream(
    hub: Hub, listener: Listener, visibility: Visibility, store: SessionStore, session_id: str
) -> AsyncIterator[str]:
    """Forwards what the person may see until they fall behind or their session ends (signed out,
    expired, replaced by a new sign-in, evicted): a feed never outlives the session it was opened in."""
    try:
        yield ": connected\n\n"
        quiet_since = time.monotonic()
        while not listener.dropped and store.get(session_id) is not None:
            try:
                event = await asyncio.wait_for(listener.queue.get(), SESSION_CHECK_SECONDS)
            except TimeoutError:
                if time.monotonic() - quiet_since >= KEEP_ALIVE_SECONDS:
                    quiet_since = time.monotonic()
                    yield ": keep-alive\n\n"
                continue
            if await visibility.allows(event):
                quiet_since = time.monotonic()
                yield _frame(event)
    finally:
        hub.listeners.discard(listener)


async def events(request: Request) -> Response:
    session = session_of(request)
    hub: Hub = request.app.state.hub
    listener = hub.admit(session.caller.name)
    visibility = Visibility(session, request.app.state.backends)
    headers: dict[str, Any] = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
    stream = _stream(hub, listener, visibility, store_of(request), request.cookies.get(COOKIE, ""))

    async def leave() -> None:  # also when the browser went before the stream began (no `finally` ran)
        hub.listeners.discard(listener)

    return StreamingResponse(
        stream, media_type="text/event-stream", headers=headers, background=BackgroundTask(leave)
    )
