"""Messages from outside and between instances: correlated to a waiting instance, starting one, buffered
for a receiver that does not wait yet, or dropped; buffered ones expire."""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from functools import partial
from typing import Any

from sqlalchemy import and_, delete, exists, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from consultflow.orchestrator import engine, sizes
from consultflow.orchestrator.host import DefinitionRef, InstanceHost
from consultflow.orchestrator.orm import MESSAGES, Instance, Message, Subscription
from consultflow.orchestrator.parking import START_RETRY_DELAY, Parked, not_parked, start_failed_for_good
from consultflow.orchestrator.records import InstanceStatus, MessageStatus, PublishOutcome
from consultflow.orchestrator.step import Step, rowcount
from consultflow.orchestrator.usecases import audit
from consultflow.orchestrator.usecases.queries import list_definitions
from consultflow.platform import jsonutil
from consultflow.platform.claims import EVERYTHING, Owned
from consultflow.platform.errors import FailedPrecondition, InvalidArgument, NotFound
from consultflow.platform.faults import crash_point
from consultflow.platform.identity import Caller
from consultflow.platform.timeutil import aware

log = logging.getLogger(__name__)

MESSAGE_ID_RETENTION = timedelta(days=1)
"""How long a message id is remembered for de-duplication after it was correlated."""
MAX_CANDIDATES = 20
"""Subscriptions tried per message, oldest first."""
MAX_KEY_LENGTH = 255
"""A message's name, correlation key and id are stored in columns of this width."""


@dataclass(frozen=True)
class PublishResult:
    outcome: PublishOutcome
    instance_id: str = ""
    message_key: str = ""


class NotWaiting(FailedPrecondition):
    """The subscription's task stopped waiting between lookup and delivery (a refusal, not a failure)."""

    def __init__(self) -> None:
        super().__init__("the subscription's task no longer waits")


class AlreadyTaken(Exception):
    """Another delivery claimed the message first."""


def publish_message(
    host: InstanceHost,
    name: str,
    correlation_key: str,
    variables: Mapping[str, Any],
    ttl: timedelta = timedelta(0),
    message_id: str = "",
    actor: Caller | None = None,
) -> PublishResult:
    """Correlates a message now, starts an instance with it, buffers it for `ttl`, or drops it.

    A message published over the API (`actor` given) is audited in the transaction that stores it, under
    its correlation key (the engagement's business key, for the firm's messages); the status bridge's
    messages are the system's and are not."""
    if not name:
        raise InvalidArgument("name", "is required")
    for field, value in (("name", name), ("correlation_key", correlation_key), ("message_id", message_id)):
        if len(value) > MAX_KEY_LENGTH:
            raise InvalidArgument(field, f"is longer than {MAX_KEY_LENGTH} characters")
    if ttl < timedelta(0):
        raise InvalidArgument("ttl_seconds", "must not be negative")
    sizes.check_input(variables, host.limits, "variables_json")
    now = host.clock.now()
    key = str(uuid.uuid4())
    with host.uow_factory() as uow:
        if (
            message_id
            and uow.session.scalars(
                select(Message.message_key).where(Message.message_id == message_id)
            ).first()
        ):
            return PublishResult(PublishOutcome.DUPLICATE)
        uow.session.execute(
            insert(MESSAGES).values(
                message_key=key,
                message_id=message_id or None,
                name=name,
                correlation_key=correlation_key,
                variables=jsonutil.dumps(dict(variables)),
                status=MessageStatus.PENDING,
                instance_id="",
                sender_instance_id="",
                created_at=now,
                # A message nobody may wait for is kept only to remember its id.
                expires_at=now + max(ttl, timedelta(0)),
            )
        )
        if actor is not None:
            detail = f"message id {message_id}" if message_id else ""
            change = audit.Change(
                "message.published", business_key=correlation_key, target=name, detail=detail
            )
            audit.record(uow.session, actor, change, now)
        try:
            uow.commit()
        except IntegrityError:
            return PublishResult(PublishOutcome.DUPLICATE)
    outcome, instance_id = correlate(host, key)
    if outcome is None:
        if ttl > timedelta(0):
            return PublishResult(PublishOutcome.BUFFERED, message_key=key)
        if message_id:
            _mark_message(host, key, MessageStatus.DROPPED)  # kept a day to recognise a repeat
        else:
            _forget_message(host, key)  # nothing to remember: a storm of them leaves no rows
        return PublishResult(PublishOutcome.DROPPED, message_key=key)
    return PublishResult(outcome, instance_id, key)


def _forget_message(host: InstanceHost, message_key: str) -> None:
    """Deletes a message nobody took that has no id (it is never looked up again)."""
    with host.uow_factory() as uow:
        uow.session.execute(
            delete(Message).where(Message.message_key == message_key, Message.status == MessageStatus.PENDING)
        )
        uow.commit()


def _mark_message(host: InstanceHost, message_key: str, status: MessageStatus) -> None:
    with host.uow_factory() as uow:
        uow.session.execute(
            update(Message)
            .where(Message.message_key == message_key, Message.status == MessageStatus.PENDING)
            .values(status=status)
        )
        uow.commit()


def correlate(host: InstanceHost, message_key: str) -> tuple[PublishOutcome | None, str]:
    """Tries to deliver one pending message: to a waiting subscription, else to a message start event.

    Returns (outcome, instance id); the outcome is None while the message stays pending.
    """
    with host.db.read() as session:
        message = session.get(Message, message_key)
        if message is None or message.status != MessageStatus.PENDING:
            return _settled_outcome(message), ""
        candidates = list(
            session.execute(
                select(Subscription.instance_id, Subscription.task_id, Subscription.element_id)
                .where(
                    Subscription.message_name == message.name,
                    Subscription.correlation_key == message.correlation_key,
                    not_parked(Subscription.instance_id),  # a parked instance's messages wait for it
                )
                .order_by(Subscription.created_at)
                .limit(MAX_CANDIDATES)
            )
        )
    variables = json.loads(message.variables)
    for instance_id, task_id, element_id in candidates:
        deliver = partial(
            deliver_to_subscription,
            message_key=message_key,
            task_id=task_id,
            element_id=element_id,
            name=message.name,
            key=message.correlation_key,
            variables=variables,
        )
        try:
            if host.step(instance_id, deliver):
                crash_point("orchestrator.message.correlated")
                return PublishOutcome.CORRELATED, instance_id
            return PublishOutcome.DUPLICATE, ""
        except (NotWaiting, Parked, NotFound):  # it stopped waiting, or was parked, meanwhile
            continue
    retry_at = aware(message.retry_at)
    if retry_at is not None and retry_at > host.clock.now():
        return None, ""  # its start failed a moment ago: it waits START_RETRY_DELAY
    return _start_by_message(
        host, message_key, message.name, message.correlation_key, variables, message.sender_instance_id
    )


def _settled_outcome(message: Message | None) -> PublishOutcome | None:
    """What became of a message another delivery already settled (what the caller reports for it)."""
    if message is None or message.status in (MessageStatus.DROPPED, MessageStatus.EXPIRED):
        return PublishOutcome.DROPPED
    return PublishOutcome(message.status)


def deliver_to_subscription(
    step: Step,
    message_key: str,
    task_id: str,
    element_id: str,
    name: str,
    key: str,
    variables: Mapping[str, Any],
) -> bool:
    """Claims the message and delivers it to the waiting task; False when another delivery claimed it."""
    if not claim_message(step, message_key):
        step.skip()
        return False
    if not step.deliver(task_id, name, key, variables):
        raise NotWaiting()
    step.history("message.correlated", element_id, name, f"[{key}]")
    step.advance()
    return True


def claim_message(step: Step, message_key: str) -> bool:
    claimed = step.conn.execute(
        update(MESSAGES)
        .where(MESSAGES.c.message_key == message_key, MESSAGES.c.status == MessageStatus.PENDING)
        .values(status=MessageStatus.CORRELATED, instance_id=step.instance_id)
    )
    return rowcount(claimed) == 1


def _start_by_message(
    host: InstanceHost, message_key: str, name: str, key: str, variables: dict[str, Any], sender: str
) -> tuple[PublishOutcome | None, str]:
    definitions = [
        d for d in list_definitions(host, latest_only=True) if name in json.loads(d.start_messages)
    ]
    if not definitions:
        return None, ""
    if sender and _cancelled_with_key(host, sender, key):
        # Thrown before its sender was cancelled: what it would start for the same key (an engagement's
        # risk management) would have been cancelled with it, so it is not started at all.
        _mark_message(host, message_key, MessageStatus.DROPPED)
        log.info("message %s not started: its sender %s was cancelled", message_key, sender)
        return PublishOutcome.DROPPED, ""
    definition = DefinitionRef(definitions[0].definition_id, definitions[0].process_id)
    first = partial(
        deliver_to_start_event,
        message_key=message_key,
        definition_id=definition.definition_id,
        name=name,
        key=key,
        variables=variables,
    )
    try:
        # The message's key becomes the new instance's business key (one risk process per engagement).
        instance_id = host.start(
            definition, {}, key, first, start=engine.message_start(name), started_by=sender
        )
    except AlreadyTaken:
        return PublishOutcome.DUPLICATE, ""
    except IntegrityError:
        return None, ""  # an instance with this key exists already and does not wait for it
    except Exception as error:
        if start_failed_for_good("message", error):
            _postpone(host, message_key)
        raise
    return PublishOutcome.STARTED, instance_id


def _postpone(host: InstanceHost, message_key: str) -> None:
    """The message's start failed and left no instance to park: it waits START_RETRY_DELAY."""
    with host.uow_factory() as uow:
        uow.session.execute(
            update(Message)
            .where(Message.message_key == message_key, Message.status == MessageStatus.PENDING)
            .values(retry_at=host.clock.now() + START_RETRY_DELAY)
        )
        uow.commit()


def _cancelled_with_key(host: InstanceHost, instance_id: str, key: str) -> bool:
    with host.db.read() as session:
        row = session.execute(
            select(Instance.status, Instance.business_key).where(Instance.instance_id == instance_id)
        ).first()
    return row is not None and row.status == InstanceStatus.CANCELED and bool(key) and row.business_key == key


def deliver_to_start_event(
    step: Step, message_key: str, definition_id: str, name: str, key: str, variables: Mapping[str, Any]
) -> None:
    """The first action of an instance a message starts: claim the message, deliver it to the start event."""
    if not claim_message(step, message_key):
        raise AlreadyTaken()
    for waiting in engine.snapshot(step.workflow).messages:
        if waiting.message_name == name and step.deliver(waiting.task_id, name, key, variables):
            step.history("message.correlated", waiting.element_id, name, f"started by {name} [{key}]")
            step.advance()
            return
    raise FailedPrecondition(f"{definition_id} does not wait for {name!r} at its start")


def correlate_pending(host: InstanceHost, limit: int = 200, owned: Owned = EVERYTHING) -> int:
    """Delivers buffered messages whose receiver now waits or whose process can start; the dispatcher
    calls this after steps that threw messages, and periodically.

    Only messages that have a receiver now are tried (a subscription for their name and key, or a message
    start event of their name), and each round goes on where the last one stopped (`host.message_cursor`):
    buffered messages nobody receives (a caller's storm with a long TTL, a key whose instance exists and
    does not wait) would otherwise fill every round and starve the messages behind them for good. A
    message whose start failed is not tried for a start again before its `retry_at`. With several
    replicas each tries the messages of the partitions it owns (`owned`, platform/claims.py).
    """
    now = host.clock.now()
    start_names = {
        name for d in list_definitions(host, latest_only=True) for name in json.loads(d.start_messages)
    }
    receiver = exists().where(
        Subscription.message_name == Message.name,
        Subscription.correlation_key == Message.correlation_key,
        not_parked(Subscription.instance_id),
    )
    may_start = or_(Message.retry_at.is_(None), Message.retry_at <= now)  # its last start did not fail
    query = (
        select(Message.message_key, Message.created_at)
        .where(
            Message.status == MessageStatus.PENDING,
            Message.expires_at > now,
            owned.where(Message.claim_slot),
            or_(receiver, and_(Message.name.in_(start_names), may_start)) if start_names else receiver,
        )
        .order_by(Message.created_at, Message.message_key)
        .limit(limit)
    )
    cursor = host.message_cursor
    if cursor is not None:
        after, after_key = cursor
        later = and_(Message.created_at == after, Message.message_key > after_key)
        query = query.where(or_(Message.created_at > after, later))
    with host.db.read() as session:
        rows = list(session.execute(query))
    # A full page: the next round goes on after it; a short one: the next round starts again at the front.
    host.message_cursor = (rows[-1].created_at, rows[-1].message_key) if len(rows) == limit else None
    delivered = 0
    for key, _ in rows:
        try:
            outcome, _ = correlate(host, key)
        except Exception:
            log.exception("correlating message %s failed", key)
            continue
        delivered += outcome in (PublishOutcome.CORRELATED, PublishOutcome.STARTED)
    return delivered


def expire_messages(host: InstanceHost) -> int:
    """Buffered messages past their TTL expire; settled ones are forgotten after MESSAGE_ID_RETENTION."""
    now = host.clock.now()
    with host.uow_factory() as uow:
        expired = uow.session.execute(
            update(Message)
            .where(Message.status == MessageStatus.PENDING, Message.expires_at <= now)
            .values(status=MessageStatus.EXPIRED)
        )
        uow.session.execute(
            delete(Message).where(
                Message.status != MessageStatus.PENDING, Message.created_at < now - MESSAGE_ID_RETENTION
            )
        )
        uow.commit()
    return rowcount(expired)
