"""referrals: a market-research lead or an earlier engagement's opportunity handed to a new engagement;
leads know their research round

Existing inquiries were referred by no engagement (referred_by ""); existing leads have no round ("").

Revision ID: b41e7c2a9d10
Revises: 7da608bd3c08
"""

import sqlalchemy as sa
from alembic import op

revision = "b41e7c2a9d10"
down_revision = "7da608bd3c08"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "referrals",
        sa.Column("referral_id", sa.String(length=36), nullable=False),
        sa.Column("request_id", sa.String(length=200), nullable=True),
        sa.Column("referred_engagement_id", sa.String(length=100), nullable=False),
        sa.Column("channel", sa.String(length=30), nullable=False),
        sa.Column("lead_id", sa.String(length=36), nullable=True),
        sa.Column("referred_by", sa.String(length=100), nullable=False),
        sa.Column("client_name", sa.String(length=300), nullable=False),
        sa.Column("question", sa.Text(), nullable=False),
        sa.Column("inquiry_id", sa.String(length=36), nullable=True),
        sa.Column("referred_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("referral_id"),
        sa.UniqueConstraint("referred_engagement_id"),
        sa.UniqueConstraint("request_id"),
    )
    with op.batch_alter_table("referrals", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_referrals_lead_id"), ["lead_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_referrals_referred_by"), ["referred_by"], unique=False)
    with op.batch_alter_table("inquiries", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("referred_by", sa.String(length=100), nullable=False, server_default="")
        )
    with op.batch_alter_table("leads", schema=None) as batch_op:
        batch_op.add_column(sa.Column("insight_id", sa.String(length=36), nullable=False, server_default=""))
        batch_op.create_index(batch_op.f("ix_leads_insight_id"), ["insight_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("leads", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_leads_insight_id"))
        batch_op.drop_column("insight_id")
    with op.batch_alter_table("inquiries", schema=None) as batch_op:
        batch_op.drop_column("referred_by")
    with op.batch_alter_table("referrals", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_referrals_referred_by"))
        batch_op.drop_index(batch_op.f("ix_referrals_lead_id"))
    op.drop_table("referrals")
