"""The risk service's tables: one register per engagement, its risks, responses, reviews and warnings."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Boolean, Date, DateTime, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class Register(Base):
    """An engagement's risk register (ch. 6), opened when its risk management starts."""

    __tablename__ = "registers"
    register_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    engagement_id: Mapped[str] = mapped_column(String(100), unique=True)
    client_name: Mapped[str] = mapped_column(String(300), default="")
    stage: Mapped[str] = mapped_column(String(30))
    # the engagement's project manager as a stage named them (engagement.stage_started); "" until named
    project_manager: Mapped[str] = mapped_column(String(200), default="")
    status: Mapped[str] = mapped_column(String(20))
    opened_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class Risk(Base):
    """A risk (6.1) with its latest assessment (6.2) and chosen strategy (6.3)."""

    __tablename__ = "risks"
    risk_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    request_id: Mapped[str | None] = mapped_column(String(200), unique=True, nullable=True)
    register_id: Mapped[str] = mapped_column(ForeignKey("registers.register_id"))
    engagement_id: Mapped[str] = mapped_column(String(100))
    description: Mapped[str] = mapped_column(Text)
    category: Mapped[str] = mapped_column(String(30), default="")
    stage: Mapped[str] = mapped_column(String(30))
    source: Mapped[str] = mapped_column(String(300), default="")
    owner: Mapped[str] = mapped_column(String(200), default="")
    identification_method: Mapped[str] = mapped_column(String(30), default="")
    status: Mapped[str] = mapped_column(String(20))
    likelihood: Mapped[str] = mapped_column(String(30), default="")
    impact: Mapped[str] = mapped_column(String(30), default="")
    level: Mapped[str] = mapped_column(String(30), default="")
    priority: Mapped[int | None] = mapped_column(Integer, nullable=True)
    suggested_strategy: Mapped[str] = mapped_column(String(20), default="")
    strategy_basis: Mapped[str] = mapped_column(String(30), default="")
    strategy: Mapped[str] = mapped_column(String(20), default="")
    registered_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    assessed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    close_reason: Mapped[str] = mapped_column(Text, default="")
    occurred_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    occurrence: Mapped[str] = mapped_column(Text, default="")
    likelihood_basis: Mapped[str] = mapped_column(Text, default="")
    affected_objective: Mapped[str] = mapped_column(String(30), default="")
    __table_args__ = (Index("ix_risks_engagement", "engagement_id", "status"),)


class Identification(Base):
    """An organised risk identification at a stage (6.1.1): method, participants, how many risks it found."""

    __tablename__ = "identifications"
    identification_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    request_id: Mapped[str | None] = mapped_column(String(200), unique=True, nullable=True)
    engagement_id: Mapped[str] = mapped_column(String(100), index=True)
    stage: Mapped[str] = mapped_column(String(30))
    method: Mapped[str] = mapped_column(String(30))
    team: Mapped[str] = mapped_column(Text)
    departments: Mapped[str] = mapped_column(Text)
    experts: Mapped[str] = mapped_column(Text)
    risks_found: Mapped[int] = mapped_column(Integer)
    recorded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ResponsePlan(Base):
    """A response strategy chosen for a risk (6.3), with its measures, owner and due date."""

    __tablename__ = "response_plans"
    response_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    risk_id: Mapped[str] = mapped_column(ForeignKey("risks.risk_id"), index=True)
    engagement_id: Mapped[str] = mapped_column(String(100))
    strategy: Mapped[str] = mapped_column(String(20))
    suggested_strategy: Mapped[str] = mapped_column(String(20), default="")
    measures: Mapped[str] = mapped_column(Text, default="")
    owner: Mapped[str] = mapped_column(String(200), default="")
    due_date: Mapped[date | None] = mapped_column(Date, nullable=True)
    status: Mapped[str] = mapped_column(String(20))
    effective: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    decided_by: Mapped[str] = mapped_column(String(200), default="")
    deviation: Mapped[str] = mapped_column(String(20), default="none")
    deviation_reason: Mapped[str] = mapped_column(Text, default="")
    deviation_decided_by: Mapped[str] = mapped_column(String(200), default="")
    deviation_note: Mapped[str] = mapped_column(Text, default="")
    deviation_decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    completion_notes: Mapped[str] = mapped_column(Text, default="")
    planned_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    __table_args__ = (Index("ix_response_plans_due", "engagement_id", "status", "due_date"),)


class Review(Base):
    """A periodic monitoring review of an engagement's risks (6.4.1)."""

    __tablename__ = "reviews"
    review_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    engagement_id: Mapped[str] = mapped_column(String(100), index=True)
    measures_carried_out: Mapped[bool] = mapped_column(Boolean)
    measures_effective: Mapped[bool] = mapped_column(Boolean)
    new_risk_found: Mapped[bool] = mapped_column(Boolean)
    new_risk_id: Mapped[str] = mapped_column(String(36), default="")
    open_risks: Mapped[int] = mapped_column(Integer)
    overdue_measures: Mapped[int] = mapped_column(Integer)
    reviewed_by: Mapped[str] = mapped_column(String(200), default="")
    notes: Mapped[str] = mapped_column(Text, default="")
    reviewed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class EarlyWarning(Base):
    """An early warning (6.4.2 [assumption]): a key risk indicator in an amber or red band."""

    __tablename__ = "warnings"
    warning_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    request_id: Mapped[str | None] = mapped_column(String(200), unique=True, nullable=True)
    engagement_id: Mapped[str] = mapped_column(String(100))
    risk_id: Mapped[str] = mapped_column(String(36), default="")
    indicator: Mapped[str] = mapped_column(String(100))
    value: Mapped[float] = mapped_column(Float)
    level: Mapped[str] = mapped_column(String(20))
    trigger: Mapped[str] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(20))
    raised_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    acknowledged_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    acknowledged_by: Mapped[str] = mapped_column(String(200), default="")
    action: Mapped[str] = mapped_column(Text, default="")
    escalated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    escalations: Mapped[int] = mapped_column(Integer, default=0)
    readings: Mapped[int] = mapped_column(Integer, default=1)
    __table_args__ = (Index("ix_warnings_engagement", "engagement_id", "status"),)
