"""Status events that become BPMN messages, by configuration rather than code per event.

`bpmn/status-messages.toml` lists which `status.*` subjects turn into which message and which
correlation field carries the key. A durable consumer reads STATUS and publishes each match with the
event id as message id, so a redelivered event correlates once.
"""

from __future__ import annotations

import asyncio
import fnmatch
import json
import logging
import tomllib
from concurrent.futures import Executor
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from nats.js import JetStreamContext
from nats.js.errors import NotFoundError
from opentelemetry.trace import SpanKind

from consultflow.api.events.v1 import events_pb2
from consultflow.orchestrator.runtime import Orchestrator
from consultflow.platform import tracing
from consultflow.platform.errors import InvalidArgument
from consultflow.platform.messaging import STATUS_STREAM, MessagingNotProvisioned
from consultflow.platform.nats_access import STATUS_DURABLE

log = logging.getLogger(__name__)

CONFIG_NAME = "status-messages.toml"


@dataclass(frozen=True)
class Mapping:
    """`subject` (NATS wildcards `*`/`>` allowed) → message `message`, keyed by `correlation`."""

    subject: str
    message: str
    correlation: str
    ttl_seconds: int = 24 * 3600

    def matches(self, subject: str) -> bool:
        pattern = self.subject.replace(">", "*")
        return fnmatch.fnmatchcase(subject, pattern)

    def key(self, event: events_pb2.StatusEvent, payload: dict[str, object]) -> str:
        if self.correlation in event.correlation:
            return event.correlation[self.correlation]
        return str(payload.get(self.correlation, ""))


def load_mappings(folder: Path) -> list[Mapping]:
    path = folder / CONFIG_NAME
    if not path.exists():
        return []
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    return [Mapping(**entry) for entry in data.get("map", [])]


class StatusMessageBridge:
    """Consumes STATUS and publishes the mapped messages into the orchestrator."""

    DURABLE = STATUS_DURABLE

    def __init__(
        self, js: JetStreamContext, orchestrator: Orchestrator, executor: Executor, mappings: list[Mapping]
    ) -> None:
        self._js = js
        self._orchestrator = orchestrator
        self._executor = executor
        self._mappings = mappings

    async def run(self) -> None:
        if not self._mappings:
            return
        try:
            await self._js.consumer_info(STATUS_STREAM, self.DURABLE)
        except NotFoundError as error:
            raise MessagingNotProvisioned(
                f"consumer {self.DURABLE} on {STATUS_STREAM} does not exist: provision NATS first"
            ) from error
        subscription = await self._js.pull_subscribe_bind(durable=self.DURABLE, stream=STATUS_STREAM)
        loop = asyncio.get_running_loop()
        try:
            while True:
                try:
                    messages = await subscription.fetch(batch=50, timeout=1.0)
                except TimeoutError:
                    continue
                for message in messages:
                    if not any(mapping.matches(message.subject) for mapping in self._mappings):
                        await message.ack()  # most status events map to no message: no thread hop for them
                        continue
                    try:
                        await loop.run_in_executor(
                            self._executor, self._handle, message.subject, message.data, message.headers
                        )
                    except InvalidArgument as error:
                        # The orchestrator will never take it (a variable over its size limit, a key too
                        # long): retrying would only loop, so it is dropped and said so.
                        log.error("status %s not delivered as a message: %s", message.subject, error.message)
                    except Exception:
                        log.exception("mapping %s to a message failed; will retry", message.subject)
                        await message.nak(delay=1.0)
                        continue
                    await message.ack()
        finally:
            await subscription.unsubscribe()

    def _handle(self, subject: str, data: bytes, headers: dict[str, str] | None = None) -> None:
        """Publishes the event's messages inside the event's trace (the service's span that emitted it), so
        the instance a message starts or moves links back to the work that caused it."""
        span = tracing.start_span(
            f"status {subject}",
            tracing.context_from(headers),
            SpanKind.CONSUMER,
            attributes={"messaging.destination.name": subject},
        )
        with tracing.activated(span):
            self._publish(subject, data)

    def _publish(self, subject: str, data: bytes) -> None:
        event = events_pb2.StatusEvent.FromString(data)
        payload = json.loads(event.payload_json or "{}")
        for mapping in self._mappings:
            if mapping.matches(subject):
                key = mapping.key(event, payload)
                variables = {
                    "event": {"type": event.type, "subject": event.subject, "source": event.source},
                    **payload,
                }
                result = self._orchestrator.publish_message(
                    mapping.message,
                    key,
                    variables,
                    timedelta(seconds=mapping.ttl_seconds),
                    message_id=f"{event.id}:{mapping.message}",
                )
                log.info("status %s → message %s [%s]: %s", subject, mapping.message, key, result.outcome)
