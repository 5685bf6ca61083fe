"""contracts tables: quotations, proposals, contracts (decimals are stored as exact text)

Revision ID: 8f75f1658d81
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "8f75f1658d81"
down_revision = None
branch_labels = ("contracts",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "quotations",
        sa.Column("quotation_id", sa.String(length=36), nullable=False),
        sa.Column("engagement_id", sa.String(length=100), nullable=False),
        sa.Column("client_id", sa.String(length=36), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("current_version", sa.Integer(), nullable=False),
        sa.Column("valid_until", sa.Date(), nullable=False),
        sa.Column("proposal_id", sa.String(length=36), nullable=True),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("answered_by", sa.String(length=200), nullable=False),
        sa.Column("answer_note", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("quotation_id"),
    )
    with op.batch_alter_table("quotations", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_quotations_client_id"), ["client_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_quotations_engagement_id"), ["engagement_id"], unique=False)

    op.create_table(
        "proposals",
        sa.Column("proposal_id", sa.String(length=36), nullable=False),
        sa.Column("engagement_id", sa.String(length=100), nullable=False),
        sa.Column("quotation_id", sa.String(length=36), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("current_version", sa.Integer(), nullable=False),
        sa.Column("approved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["quotation_id"],
            ["quotations.quotation_id"],
        ),
        sa.PrimaryKeyConstraint("proposal_id"),
        sa.UniqueConstraint("quotation_id"),
    )
    with op.batch_alter_table("proposals", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_proposals_engagement_id"), ["engagement_id"], unique=False)

    op.create_table(
        "quotation_lines",
        sa.Column("quotation_id", sa.String(length=36), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("category", sa.String(length=20), nullable=False),
        sa.Column("description", sa.String(length=500), nullable=False),
        sa.Column("quantity", sa.String(length=40), nullable=False),
        sa.Column("unit_price", sa.String(length=40), nullable=False),
        sa.Column("amount", sa.String(length=40), nullable=False),
        sa.ForeignKeyConstraint(
            ["quotation_id"],
            ["quotations.quotation_id"],
        ),
        sa.PrimaryKeyConstraint("quotation_id", "version", "position"),
    )
    op.create_table(
        "quotation_versions",
        sa.Column("quotation_id", sa.String(length=36), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("tax_rate", sa.String(length=40), nullable=False),
        sa.Column("validity_days", sa.Integer(), nullable=False),
        sa.Column("subtotal", sa.String(length=40), nullable=False),
        sa.Column("tax", sa.String(length=40), nullable=False),
        sa.Column("total", sa.String(length=40), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["quotation_id"],
            ["quotations.quotation_id"],
        ),
        sa.PrimaryKeyConstraint("quotation_id", "version"),
    )
    op.create_table(
        "contracts",
        sa.Column("contract_id", sa.String(length=36), nullable=False),
        sa.Column("engagement_id", sa.String(length=100), nullable=False),
        sa.Column("client_id", sa.String(length=36), nullable=False),
        sa.Column("client_name", sa.String(length=300), nullable=False),
        sa.Column("client_contacts", sa.JSON(), nullable=False),
        sa.Column("quotation_id", sa.String(length=36), nullable=False),
        sa.Column("proposal_id", sa.String(length=36), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("current_version", sa.Integer(), nullable=False),
        sa.Column("legal_review_round", sa.Integer(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("contract_value", sa.String(length=40), nullable=False),
        sa.Column("firm_signatory", sa.String(length=200), nullable=False),
        sa.Column("firm_signatory_title", sa.String(length=200), nullable=False),
        sa.Column("firm_signed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("client_signatory", sa.String(length=200), nullable=False),
        sa.Column("client_signatory_title", sa.String(length=200), nullable=False),
        sa.Column("client_signed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("signed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("distributed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["proposal_id"],
            ["proposals.proposal_id"],
        ),
        sa.ForeignKeyConstraint(
            ["quotation_id"],
            ["quotations.quotation_id"],
        ),
        sa.PrimaryKeyConstraint("contract_id"),
        sa.UniqueConstraint("quotation_id"),
    )
    with op.batch_alter_table("contracts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_contracts_client_id"), ["client_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_contracts_engagement_id"), ["engagement_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_contracts_status"), ["status"], unique=False)

    op.create_table(
        "proposal_reviews",
        sa.Column("review_id", sa.String(length=36), nullable=False),
        sa.Column("proposal_id", sa.String(length=36), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("reviewer", sa.String(length=200), nullable=False),
        sa.Column("verdict", sa.String(length=20), nullable=False),
        sa.Column("comments", sa.Text(), nullable=False),
        sa.Column("reviewed_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["proposal_id"],
            ["proposals.proposal_id"],
        ),
        sa.PrimaryKeyConstraint("review_id"),
    )
    with op.batch_alter_table("proposal_reviews", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_proposal_reviews_proposal_id"), ["proposal_id"], unique=False)

    op.create_table(
        "proposal_versions",
        sa.Column("proposal_id", sa.String(length=36), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("goals", sa.Text(), nullable=False),
        sa.Column("scope", sa.Text(), nullable=False),
        sa.Column("methods", sa.Text(), nullable=False),
        sa.Column("schedule", sa.JSON(), nullable=False),
        sa.Column("expected_results", sa.JSON(), nullable=False),
        sa.Column("project_manager", sa.String(length=200), nullable=False),
        sa.Column("team_members", sa.JSON(), nullable=False),
        sa.Column("revision_note", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["proposal_id"],
            ["proposals.proposal_id"],
        ),
        sa.PrimaryKeyConstraint("proposal_id", "version"),
    )
    op.create_table(
        "contract_versions",
        sa.Column("contract_id", sa.String(length=36), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("service_content", sa.Text(), nullable=False),
        sa.Column("service_start", sa.Date(), nullable=True),
        sa.Column("service_end", sa.Date(), nullable=True),
        sa.Column("payment_terms", sa.JSON(), nullable=False),
        sa.Column("confidentiality", sa.Text(), nullable=False),
        sa.Column("breach_liability", sa.Text(), nullable=False),
        sa.Column("change_note", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["contract_id"],
            ["contracts.contract_id"],
        ),
        sa.PrimaryKeyConstraint("contract_id", "version"),
    )
    op.create_table(
        "distributions",
        sa.Column("contract_id", sa.String(length=36), nullable=False),
        sa.Column("department", sa.String(length=100), nullable=False),
        sa.Column("distributed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("acknowledged_by", sa.String(length=200), nullable=False),
        sa.Column("acknowledged_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["contract_id"],
            ["contracts.contract_id"],
        ),
        sa.PrimaryKeyConstraint("contract_id", "department"),
    )
    op.create_table(
        "legal_reviews",
        sa.Column("review_id", sa.String(length=36), nullable=False),
        sa.Column("contract_id", sa.String(length=36), nullable=False),
        sa.Column("round", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("reviewer", sa.String(length=200), nullable=False),
        sa.Column("verdict", sa.String(length=20), nullable=False),
        sa.Column("reviewed_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["contract_id"],
            ["contracts.contract_id"],
        ),
        sa.PrimaryKeyConstraint("review_id"),
        sa.UniqueConstraint("contract_id", "round", name="uq_legal_reviews_round"),
    )
    with op.batch_alter_table("legal_reviews", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_legal_reviews_contract_id"), ["contract_id"], unique=False)

    op.create_table(
        "negotiation_rounds",
        sa.Column("contract_id", sa.String(length=36), nullable=False),
        sa.Column("round", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("notes", sa.Text(), nullable=False),
        sa.Column("held_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["contract_id"],
            ["contracts.contract_id"],
        ),
        sa.PrimaryKeyConstraint("contract_id", "round"),
    )
    op.create_table(
        "legal_opinions",
        sa.Column("review_id", sa.String(length=36), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("clause", sa.String(length=30), nullable=False),
        sa.Column("opinion", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["review_id"],
            ["legal_reviews.review_id"],
        ),
        sa.PrimaryKeyConstraint("review_id", "position"),
    )


def downgrade() -> None:
    op.drop_table("legal_opinions")
    op.drop_table("negotiation_rounds")
    with op.batch_alter_table("legal_reviews", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_legal_reviews_contract_id"))

    op.drop_table("legal_reviews")
    op.drop_table("distributions")
    op.drop_table("contract_versions")
    op.drop_table("proposal_versions")
    with op.batch_alter_table("proposal_reviews", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_proposal_reviews_proposal_id"))

    op.drop_table("proposal_reviews")
    with op.batch_alter_table("contracts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_contracts_status"))
        batch_op.drop_index(batch_op.f("ix_contracts_engagement_id"))
        batch_op.drop_index(batch_op.f("ix_contracts_client_id"))

    op.drop_table("contracts")
    op.drop_table("quotation_versions")
    op.drop_table("quotation_lines")
    with op.batch_alter_table("proposals", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_proposals_engagement_id"))

    op.drop_table("proposals")
    with op.batch_alter_table("quotations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_quotations_engagement_id"))
        batch_op.drop_index(batch_op.f("ix_quotations_client_id"))

    op.drop_table("quotations")
