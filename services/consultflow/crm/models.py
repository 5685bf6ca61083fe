"""The crm service's tables."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, ForeignKey, Index, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class Client(Base):
    """An organisation the firm talks to."""

    __tablename__ = "clients"
    client_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(300), index=True)
    industry: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Inquiry(Base):
    """A client inquiry from any channel (regulation 2.1.2)."""

    __tablename__ = "inquiries"
    inquiry_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    request_id: Mapped[str | None] = mapped_column(String(200), unique=True, nullable=True)
    engagement_id: Mapped[str] = mapped_column(String(100), default="", index=True)
    channel: Mapped[str] = mapped_column(String(30))
    client_id: Mapped[str] = mapped_column(ForeignKey("clients.client_id"))
    contact_name: Mapped[str] = mapped_column(String(200))
    contact_email: Mapped[str] = mapped_column(String(300), default="")
    contact_phone: Mapped[str] = mapped_column(String(50), default="")
    question: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(20))
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    __table_args__ = (Index("ix_inquiries_status", "status", "received_at"),)
