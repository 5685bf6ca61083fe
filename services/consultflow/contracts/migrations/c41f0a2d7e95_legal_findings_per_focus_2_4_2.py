"""legal findings per focus (2.4.2)

Revision ID: c41f0a2d7e95
Revises: 8f75f1658d81
"""

import sqlalchemy as sa
from alembic import op

revision = "c41f0a2d7e95"
down_revision = "8f75f1658d81"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "legal_findings",
        sa.Column("review_id", sa.String(length=36), nullable=False),
        sa.Column("focus", sa.String(length=20), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("verdict", sa.String(length=20), nullable=False),
        sa.Column("opinion", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["review_id"], ["legal_reviews.review_id"]),
        sa.PrimaryKeyConstraint("review_id", "focus"),
    )


def downgrade() -> None:
    op.drop_table("legal_findings")
