"""quotation cost accounting (2.3.1)

Revision ID: 5b9e3c7a1d20
Revises: c41f0a2d7e95
"""

import sqlalchemy as sa
from alembic import op

revision = "5b9e3c7a1d20"
down_revision = "c41f0a2d7e95"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "quotation_costs",
        sa.Column("quotation_id", sa.String(length=36), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("category", sa.String(length=20), nullable=False),
        sa.Column("amount", sa.String(length=40), nullable=False),
        sa.ForeignKeyConstraint(["quotation_id"], ["quotations.quotation_id"]),
        sa.PrimaryKeyConstraint("quotation_id", "version", "category"),
    )


def downgrade() -> None:
    op.drop_table("quotation_costs")
