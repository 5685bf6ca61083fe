"""CRM use cases: each runs in one unit of work and emits the status events of what it changed."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select

from consultflow.crm.domain import NewInquiry
from consultflow.crm.models import Client, Inquiry
from consultflow.platform.db import UnitOfWork
from consultflow.platform.errors import NotFound


def inquiry_view(inquiry: Inquiry, client: Client) -> dict[str, Any]:
    return {
        "inquiry_id": inquiry.inquiry_id,
        "engagement_id": inquiry.engagement_id,
        "channel": inquiry.channel,
        "client_id": client.client_id,
        "client_name": client.name,
        "client_industry": client.industry,
        "contact_name": inquiry.contact_name,
        "contact_email": inquiry.contact_email,
        "contact_phone": inquiry.contact_phone,
        "question": inquiry.question,
        "status": inquiry.status,
        "received_at": inquiry.received_at,
    }


def find_or_create_client(uow: UnitOfWork, name: str, industry: str) -> Client:
    """Clients are matched by name (case-insensitive); a new name creates a client."""
    client = uow.session.scalars(
        select(Client).where(func.lower(Client.name) == name.strip().lower())
    ).first()
    if client is None:
        client = Client(
            client_id=str(uuid.uuid4()), name=name.strip(), industry=industry, created_at=datetime.now(UTC)
        )
        uow.session.add(client)
        uow.session.flush()
        uow.emit("client.created", client.client_id, {"client_id": client.client_id, "name": client.name})
    return client


def record_inquiry(uow: UnitOfWork, command: NewInquiry) -> tuple[Inquiry, Client]:
    """2.1.2: records an inquiry; the same request id returns the inquiry recorded first."""
    if command.request_id:
        existing = uow.session.scalars(
            select(Inquiry).where(Inquiry.request_id == command.request_id)
        ).first()
        if existing is not None:
            client = uow.session.get(Client, existing.client_id)
            assert client is not None
            return existing, client
    client = find_or_create_client(uow, command.client_name, command.client_industry)
    inquiry = Inquiry(
        inquiry_id=str(uuid.uuid4()),
        request_id=command.request_id or None,
        engagement_id=command.engagement_id,
        channel=command.channel.value,
        client_id=client.client_id,
        contact_name=command.contact_name.strip(),
        contact_email=command.contact_email,
        contact_phone=command.contact_phone,
        question=command.question.strip(),
        status="open",
        received_at=datetime.now(UTC),
    )
    uow.session.add(inquiry)
    uow.session.flush()
    uow.emit(
        "inquiry.recorded",
        inquiry.inquiry_id,
        inquiry_view(inquiry, client),
        {"engagement_id": command.engagement_id},
    )
    return inquiry, client


def get_inquiry(uow: UnitOfWork, inquiry_id: str) -> tuple[Inquiry, Client]:
    inquiry = uow.session.get(Inquiry, inquiry_id) if inquiry_id else None
    if inquiry is None:
        raise NotFound("inquiry", inquiry_id)
    client = uow.session.get(Client, inquiry.client_id)
    assert client is not None
    return inquiry, client


def list_inquiries(
    uow: UnitOfWork, status: str, engagement_id: str, limit: int, offset: int
) -> list[tuple[Inquiry, Client]]:
    query = select(Inquiry, Client).join(Client, Client.client_id == Inquiry.client_id)
    if status:
        query = query.where(Inquiry.status == status)
    if engagement_id:
        query = query.where(Inquiry.engagement_id == engagement_id)
    rows = uow.session.execute(query.order_by(Inquiry.received_at.desc()).offset(offset).limit(limit)).all()
    return [(row[0], row[1]) for row in rows]


def get_client(uow: UnitOfWork, client_id: str) -> tuple[Client, list[Inquiry]]:
    """A client and the inquiries it made (their contacts are the client's known contacts)."""
    client = uow.session.get(Client, client_id) if client_id else None
    if client is None:
        raise NotFound("client", client_id)
    inquiries = list(uow.session.scalars(select(Inquiry).where(Inquiry.client_id == client_id)))
    return client, inquiries
