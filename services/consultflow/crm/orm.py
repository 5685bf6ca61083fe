"""The crm service's tables (its own database; no other service reads them)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
)
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


class Contact(Base):
    """A person at a client (2.1.2 contact details)."""

    __tablename__ = "contacts"
    contact_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    client_id: Mapped[str] = mapped_column(ForeignKey("clients.client_id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str] = mapped_column(String(300), default="")
    phone: Mapped[str] = mapped_column(String(50), default="")
    role: Mapped[str] = mapped_column(String(200), default="")
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
    contact_id: Mapped[str | None] = mapped_column(ForeignKey("contacts.contact_id"), nullable=True)
    lead_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    referred_by: Mapped[str] = mapped_column(String(100), default="")  # the engagement that referred it
    decline_reason: Mapped[str] = mapped_column(String(30), default="")
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    __table_args__ = (Index("ix_inquiries_status", "status", "received_at"),)


class RequirementsDocument(Base):
    """2.2.1: an inquiry's preliminary requirements document; its content lives in versions."""

    __tablename__ = "requirements_documents"
    requirements_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    inquiry_id: Mapped[str] = mapped_column(ForeignKey("inquiries.inquiry_id"), unique=True)
    engagement_id: Mapped[str] = mapped_column(String(100), default="", index=True)
    current_version: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class RequirementsVersion(Base):
    """One version of a requirements document; versions are never changed, only added."""

    __tablename__ = "requirements_versions"
    requirements_id: Mapped[str] = mapped_column(
        ForeignKey("requirements_documents.requirements_id"), primary_key=True
    )
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    communication_mode: Mapped[str] = mapped_column(String(20))
    needs: Mapped[str] = mapped_column(Text)
    background: Mapped[str] = mapped_column(Text, default="")
    goals: Mapped[str] = mapped_column(Text)
    expected_results: Mapped[str] = mapped_column(Text)
    recorded_by: Mapped[str] = mapped_column(String(200), default="")
    recorded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class FeasibilityAssessment(Base):
    """2.2.2: a feasibility report; the latest one of an inquiry counts."""

    __tablename__ = "feasibility_assessments"
    feasibility_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    inquiry_id: Mapped[str] = mapped_column(ForeignKey("inquiries.inquiry_id"), index=True)
    engagement_id: Mapped[str] = mapped_column(String(100), default="", index=True)
    requirements_version: Mapped[int] = mapped_column(Integer)
    feasible: Mapped[bool] = mapped_column(Boolean)
    summary: Mapped[str] = mapped_column(Text)
    report: Mapped[str] = mapped_column(Text, default="")
    assessors: Mapped[list[str]] = mapped_column(JSON)
    assessed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class FeasibilityVerdict(Base):
    """One dimension's verdict (technical, economic, time) with its reason."""

    __tablename__ = "feasibility_verdicts"
    feasibility_id: Mapped[str] = mapped_column(
        ForeignKey("feasibility_assessments.feasibility_id"), primary_key=True
    )
    dimension: Mapped[str] = mapped_column(String(20), primary_key=True)
    feasible: Mapped[bool] = mapped_column(Boolean)
    reason: Mapped[str] = mapped_column(Text, default="")


class MarketInsight(Base):
    """2.1.1: trends, demand and competitors the marketing department collected."""

    __tablename__ = "market_insights"
    insight_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    industry: Mapped[str] = mapped_column(String(200), default="")
    industry_trends: Mapped[str] = mapped_column(Text, default="")
    market_demand: Mapped[str] = mapped_column(Text, default="")
    competitors: Mapped[str] = mapped_column(Text, default="")
    potential_clients: Mapped[str] = mapped_column(Text, default="")
    recorded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)


class Lead(Base):
    """2.1.1: a project lead from market research."""

    __tablename__ = "leads"
    lead_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    source: Mapped[str] = mapped_column(String(30))
    company: Mapped[str] = mapped_column(String(300))
    contact: Mapped[str] = mapped_column(String(300), default="")
    notes: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(20), index=True)
    inquiry_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    recorded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    insight_id: Mapped[str] = mapped_column(String(36), default="", index=True)  # its research round


class Referral(Base):
    """2.1.1/5.3.3 → 2.1.2: a lead or an earlier engagement's opportunity handed to a new engagement."""

    __tablename__ = "referrals"
    referral_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    request_id: Mapped[str | None] = mapped_column(String(200), unique=True, nullable=True)
    referred_engagement_id: Mapped[str] = mapped_column(String(100), unique=True)
    channel: Mapped[str] = mapped_column(String(30))
    lead_id: Mapped[str | None] = mapped_column(String(36), nullable=True, index=True)
    referred_by: Mapped[str] = mapped_column(String(100), default="", index=True)
    client_name: Mapped[str] = mapped_column(String(300))
    question: Mapped[str] = mapped_column(Text)
    inquiry_id: Mapped[str | None] = mapped_column(String(36), nullable=True)  # once the new one records it
    referred_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class RevisitPlan(Base):
    """5.3.1: a revisit intended for a date."""

    __tablename__ = "revisit_plans"
    plan_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    client_id: Mapped[str] = mapped_column(ForeignKey("clients.client_id"), index=True)
    engagement_id: Mapped[str] = mapped_column(String(100), default="")
    method: Mapped[str] = mapped_column(String(20))
    due_date: Mapped[date] = mapped_column(Date)
    purpose: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(20))
    revisit_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    __table_args__ = (Index("ix_revisit_plans_due", "status", "due_date"),)


class Revisit(Base):
    """5.3.1: a revisit made."""

    __tablename__ = "revisits"
    revisit_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    client_id: Mapped[str] = mapped_column(ForeignKey("clients.client_id"), index=True)
    engagement_id: Mapped[str] = mapped_column(String(100), default="")
    method: Mapped[str] = mapped_column(String(20))
    findings: Mapped[str] = mapped_column(Text)
    new_needs: Mapped[str] = mapped_column(Text, default="")
    revisited_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ValueAddedService(Base):
    """5.3.2: industry news shared, free training given."""

    __tablename__ = "value_added_services"
    service_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    client_id: Mapped[str] = mapped_column(ForeignKey("clients.client_id"), index=True)
    engagement_id: Mapped[str] = mapped_column(String(100), default="")
    kind: Mapped[str] = mapped_column(String(30))
    description: Mapped[str] = mapped_column(Text, default="")
    delivered_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Opportunity(Base):
    """5.3.3: a follow-on project or a referral."""

    __tablename__ = "opportunities"
    opportunity_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    client_id: Mapped[str] = mapped_column(ForeignKey("clients.client_id"), index=True)
    engagement_id: Mapped[str] = mapped_column(String(100), default="")
    kind: Mapped[str] = mapped_column(String(20))
    description: Mapped[str] = mapped_column(Text)
    referred_company: Mapped[str] = mapped_column(String(300), default="")
    status: Mapped[str] = mapped_column(String(20))
    recorded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


def as_list(value: Any) -> list[str]:
    """A JSON list column's value as a list of strings (old rows or other drivers may differ)."""
    return [str(v) for v in value] if isinstance(value, list) else []
