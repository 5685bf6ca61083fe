"""The contracts service's tables (its own database; no other service reads them).

Money and other exact decimals are stored as their decimal text (`DecimalText`): SQLite has no exact
decimal type (it would keep a float), and the service never sums in SQL, so text is exact everywhere.
Versions of quotations, proposals and contracts are rows that are added, never changed.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, Date, DateTime, Dialect, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator


class DecimalText(TypeDecorator[Decimal]):
    """A Decimal kept as its exact text."""

    impl = String(40)
    cache_ok = True

    def process_bind_param(self, value: Decimal | None, dialect: Dialect) -> str | None:
        return None if value is None else format(value, "f")

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        return None if value is None else Decimal(value)


class Base(DeclarativeBase):
    pass


# --- quotations (2.3.1) ----------------------------------------------------------------------------


class Quotation(Base):
    __tablename__ = "quotations"
    quotation_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    engagement_id: Mapped[str] = mapped_column(String(100), default="", index=True)
    client_id: Mapped[str] = mapped_column(String(36), index=True)
    status: Mapped[str] = mapped_column(String(20))
    current_version: Mapped[int] = mapped_column(Integer)
    valid_until: Mapped[date] = mapped_column(Date)
    proposal_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    answered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    answered_by: Mapped[str] = mapped_column(String(200), default="")
    answer_note: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class QuotationVersion(Base):
    __tablename__ = "quotation_versions"
    quotation_id: Mapped[str] = mapped_column(ForeignKey("quotations.quotation_id"), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    currency: Mapped[str] = mapped_column(String(3))
    tax_rate: Mapped[Decimal] = mapped_column(DecimalText)
    validity_days: Mapped[int] = mapped_column(Integer)
    subtotal: Mapped[Decimal] = mapped_column(DecimalText)
    tax: Mapped[Decimal] = mapped_column(DecimalText)
    total: Mapped[Decimal] = mapped_column(DecimalText)
    note: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class QuotationCost(Base):
    """2.3.1 公司成本核算: the firm's own cost of one category, for one quotation version."""

    __tablename__ = "quotation_costs"
    quotation_id: Mapped[str] = mapped_column(ForeignKey("quotations.quotation_id"), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    category: Mapped[str] = mapped_column(String(20), primary_key=True)
    amount: Mapped[Decimal] = mapped_column(DecimalText)


class QuotationLine(Base):
    __tablename__ = "quotation_lines"
    quotation_id: Mapped[str] = mapped_column(ForeignKey("quotations.quotation_id"), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    position: Mapped[int] = mapped_column(Integer, primary_key=True)
    category: Mapped[str] = mapped_column(String(20))
    description: Mapped[str] = mapped_column(String(500), default="")
    quantity: Mapped[Decimal] = mapped_column(DecimalText)
    unit_price: Mapped[Decimal] = mapped_column(DecimalText)
    amount: Mapped[Decimal] = mapped_column(DecimalText)


# --- proposals (2.3.2) -----------------------------------------------------------------------------


class Proposal(Base):
    __tablename__ = "proposals"
    proposal_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    engagement_id: Mapped[str] = mapped_column(String(100), default="", index=True)
    quotation_id: Mapped[str] = mapped_column(ForeignKey("quotations.quotation_id"), unique=True)
    status: Mapped[str] = mapped_column(String(20))
    current_version: Mapped[int] = mapped_column(Integer)
    approved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ProposalVersion(Base):
    __tablename__ = "proposal_versions"
    proposal_id: Mapped[str] = mapped_column(ForeignKey("proposals.proposal_id"), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    goals: Mapped[str] = mapped_column(Text)
    scope: Mapped[str] = mapped_column(Text)
    methods: Mapped[str] = mapped_column(Text)
    schedule: Mapped[list[dict[str, str]]] = mapped_column(JSON)  # [{"name", "due_date"}]
    expected_results: Mapped[list[str]] = mapped_column(JSON)
    project_manager: Mapped[str] = mapped_column(String(200))
    team_members: Mapped[list[str]] = mapped_column(JSON)
    revision_note: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ProposalReview(Base):
    """2.3.2: an internal review of one proposal version."""

    __tablename__ = "proposal_reviews"
    review_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    proposal_id: Mapped[str] = mapped_column(ForeignKey("proposals.proposal_id"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    reviewer: Mapped[str] = mapped_column(String(200), default="")
    verdict: Mapped[str] = mapped_column(String(20))
    comments: Mapped[str] = mapped_column(Text, default="")
    reviewed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


# --- contracts (2.4) -------------------------------------------------------------------------------


class Contract(Base):
    __tablename__ = "contracts"
    contract_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    engagement_id: Mapped[str] = mapped_column(String(100), default="", index=True)
    client_id: Mapped[str] = mapped_column(String(36), index=True)
    client_name: Mapped[str] = mapped_column(String(300))
    client_contacts: Mapped[list[dict[str, str]]] = mapped_column(JSON)  # as crm had them at negotiation
    quotation_id: Mapped[str] = mapped_column(ForeignKey("quotations.quotation_id"), unique=True)
    proposal_id: Mapped[str] = mapped_column(ForeignKey("proposals.proposal_id"))
    status: Mapped[str] = mapped_column(String(20), index=True)
    current_version: Mapped[int] = mapped_column(Integer)
    legal_review_round: Mapped[int] = mapped_column(Integer, default=0)
    currency: Mapped[str] = mapped_column(String(3))
    contract_value: Mapped[Decimal] = mapped_column(DecimalText)
    firm_signatory: Mapped[str] = mapped_column(String(200), default="")
    firm_signatory_title: Mapped[str] = mapped_column(String(200), default="")
    firm_signed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    client_signatory: Mapped[str] = mapped_column(String(200), default="")
    client_signatory_title: Mapped[str] = mapped_column(String(200), default="")
    client_signed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    signed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    distributed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ContractVersion(Base):
    __tablename__ = "contract_versions"
    contract_id: Mapped[str] = mapped_column(ForeignKey("contracts.contract_id"), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    service_content: Mapped[str] = mapped_column(Text, default="")
    service_start: Mapped[date | None] = mapped_column(Date, nullable=True)
    service_end: Mapped[date | None] = mapped_column(Date, nullable=True)
    payment_terms: Mapped[list[dict[str, str]]] = mapped_column(JSON)  # [{"percent", "due"}]
    confidentiality: Mapped[str] = mapped_column(Text, default="")
    breach_liability: Mapped[str] = mapped_column(Text, default="")
    change_note: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class NegotiationRound(Base):
    """2.4.1: one round of negotiation with the client and the version it produced."""

    __tablename__ = "negotiation_rounds"
    contract_id: Mapped[str] = mapped_column(ForeignKey("contracts.contract_id"), primary_key=True)
    round: Mapped[int] = mapped_column(Integer, primary_key=True)
    version: Mapped[int] = mapped_column(Integer)
    notes: Mapped[str] = mapped_column(Text, default="")
    held_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class LegalReview(Base):
    """2.4.2: the legal department's review of one version, in one round."""

    __tablename__ = "legal_reviews"
    review_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    contract_id: Mapped[str] = mapped_column(ForeignKey("contracts.contract_id"), index=True)
    round: Mapped[int] = mapped_column(Integer)
    version: Mapped[int] = mapped_column(Integer)
    reviewer: Mapped[str] = mapped_column(String(200), default="")
    verdict: Mapped[str] = mapped_column(String(20))
    reviewed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    __table_args__ = (UniqueConstraint("contract_id", "round", name="uq_legal_reviews_round"),)


class LegalOpinion(Base):
    __tablename__ = "legal_opinions"
    review_id: Mapped[str] = mapped_column(ForeignKey("legal_reviews.review_id"), primary_key=True)
    position: Mapped[int] = mapped_column(Integer, primary_key=True)
    clause: Mapped[str] = mapped_column(String(30))
    opinion: Mapped[str] = mapped_column(Text)


class LegalFinding(Base):
    """2.4.2: the verdict and opinion on one focus of a legal review (completeness, accuracy, legality,
    risk safeguards)."""

    __tablename__ = "legal_findings"
    review_id: Mapped[str] = mapped_column(ForeignKey("legal_reviews.review_id"), primary_key=True)
    focus: Mapped[str] = mapped_column(String(20), primary_key=True)
    position: Mapped[int] = mapped_column(Integer)
    verdict: Mapped[str] = mapped_column(String(20))
    opinion: Mapped[str] = mapped_column(Text, default="")


class Distribution(Base):
    """2.4.3: a copy of the signed contract with a department, and its acknowledgement."""

    __tablename__ = "distributions"
    contract_id: Mapped[str] = mapped_column(ForeignKey("contracts.contract_id"), primary_key=True)
    department: Mapped[str] = mapped_column(String(100), primary_key=True)
    distributed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    acknowledged_by: Mapped[str] = mapped_column(String(200), default="")
    acknowledged_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
