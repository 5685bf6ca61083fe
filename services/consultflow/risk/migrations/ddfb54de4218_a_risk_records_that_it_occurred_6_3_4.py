"""a risk records that it occurred (6.3.4)

Revision ID: ddfb54de4218
Revises: 96342c737b62
"""

import sqlalchemy as sa
from alembic import op

revision = "ddfb54de4218"
down_revision = "96342c737b62"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("risks", schema=None) as batch_op:
        batch_op.add_column(sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("occurrence", sa.Text(), nullable=False, server_default=""))


def downgrade() -> None:
    with op.batch_alter_table("risks", schema=None) as batch_op:
        batch_op.drop_column("occurrence")
        batch_op.drop_column("occurred_at")
