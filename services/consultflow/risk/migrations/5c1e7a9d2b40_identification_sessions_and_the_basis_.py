"""identification sessions (6.1.1), the basis of a likelihood (6.2.1) and the objective affected (6.2.2)

Revision ID: 5c1e7a9d2b40
Revises: 899d5bd1763e
"""

import sqlalchemy as sa
from alembic import op

revision = "5c1e7a9d2b40"
down_revision = "899d5bd1763e"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "identifications",
        sa.Column("identification_id", sa.String(length=36), nullable=False),
        sa.Column("request_id", sa.String(length=200), nullable=True),
        sa.Column("engagement_id", sa.String(length=100), nullable=False),
        sa.Column("stage", sa.String(length=30), nullable=False),
        sa.Column("method", sa.String(length=30), nullable=False),
        sa.Column("team", sa.Text(), nullable=False),
        sa.Column("departments", sa.Text(), nullable=False),
        sa.Column("experts", sa.Text(), nullable=False),
        sa.Column("risks_found", sa.Integer(), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("identification_id"),
        sa.UniqueConstraint("request_id"),
    )
    op.create_index(
        op.f("ix_identifications_engagement_id"), "identifications", ["engagement_id"], unique=False
    )
    with op.batch_alter_table("risks", schema=None) as batch_op:
        batch_op.add_column(sa.Column("likelihood_basis", sa.Text(), nullable=False, server_default=""))
        batch_op.add_column(
            sa.Column("affected_objective", sa.String(length=30), nullable=False, server_default="")
        )


def downgrade() -> None:
    with op.batch_alter_table("risks", schema=None) as batch_op:
        batch_op.drop_column("affected_objective")
        batch_op.drop_column("likelihood_basis")
    op.drop_index(op.f("ix_identifications_engagement_id"), table_name="identifications")
    op.drop_table("identifications")
