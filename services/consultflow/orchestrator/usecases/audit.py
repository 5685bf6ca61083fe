"""Who did what: one entry per change a person or a system makes over the API, written in the change's
own transaction (so an entry exists exactly when the change does), and the query that answers "who
claimed, completed, started, cancelled, deployed, resolved — for this engagement, or by this person"."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from consultflow.orchestrator.host import InstanceHost
from consultflow.orchestrator.orm import AuditEntry
from consultflow.platform.errors import InvalidArgument
from consultflow.platform.identity import Caller
from consultflow.platform.paging import Page


@dataclass(frozen=True)
class Change:
    """What was changed, for the entry: the action and where."""

    action: str  # usertask.claimed, usertask.completed, instance.created, instance.canceled, …
    instance_id: str = ""
    business_key: str = ""
    target: str = ""
    detail: str = ""


def record(session: Session, actor: Caller | None, change: Change, now: datetime) -> None:
    """Adds the entry to the change's transaction; in-process callers (tests, the engine) are `system`."""
    session.add(
        AuditEntry(
            entry_id=str(uuid.uuid4()),
            time=now,
            actor=actor.name if actor is not None else "system",
            action=change.action,
            instance_id=change.instance_id,
            business_key=change.business_key,
            target=change.target,
            detail=change.detail[:2000],
        )
    )


def list_audit(
    host: InstanceHost,
    business_key: str = "",
    instance_id: str = "",
    actor: str = "",
    page_size: int = 100,
    page_token: str = "",
) -> tuple[list[AuditEntry], str]:
    """The entries for an engagement (business key), an instance or a person, oldest first."""
    if not (business_key or instance_id or actor):
        raise InvalidArgument("business_key", "name an engagement, an instance or an actor to audit")
    page = Page.of(page_size, page_token)
    query = select(AuditEntry).order_by(AuditEntry.time, AuditEntry.entry_id)
    if business_key:
        query = query.where(AuditEntry.business_key == business_key)
    if instance_id:
        query = query.where(AuditEntry.instance_id == instance_id)
    if actor:
        query = query.where(AuditEntry.actor == actor)
    with host.db.read() as session:
        rows = list(session.scalars(query.offset(page.offset).limit(page.fetch)))
    return list(page.rows(rows)), page.next_token(rows)
