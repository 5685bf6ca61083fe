"""response plans record deviations from the prescribed strategy

Plans recorded earlier count as no deviation: the strategy was then only a suggestion.

Revision ID: 96342c737b62
Revises: bb7825bb4145
"""

import sqlalchemy as sa
from alembic import op

revision = "96342c737b62"
down_revision = "bb7825bb4145"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("response_plans", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("deviation", sa.String(length=20), nullable=False, server_default="none")
        )
        batch_op.add_column(sa.Column("deviation_reason", sa.Text(), nullable=False, server_default=""))
        batch_op.add_column(
            sa.Column("deviation_decided_by", sa.String(length=200), nullable=False, server_default="")
        )
        batch_op.add_column(sa.Column("deviation_note", sa.Text(), nullable=False, server_default=""))
        batch_op.add_column(sa.Column("deviation_decided_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("response_plans", schema=None) as batch_op:
        batch_op.drop_column("deviation_decided_at")
        batch_op.drop_column("deviation_note")
        batch_op.drop_column("deviation_decided_by")
        batch_op.drop_column("deviation_reason")
        batch_op.drop_column("deviation")
