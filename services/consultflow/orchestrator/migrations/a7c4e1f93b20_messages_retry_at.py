"""messages whose start failed wait before they are tried again

A buffered message whose message start event could not start its instance (its first step fails, e.g.
passes max_instance_state_bytes) leaves no instance to park; `retry_at` keeps it from being tried on
every round of the message loop. Existing rows: NULL, tried as before.

Revision ID: a7c4e1f93b20
Revises: b8e2d5f0c419
"""

import sqlalchemy as sa
from alembic import op

revision = "a7c4e1f93b20"
down_revision = "b8e2d5f0c419"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.add_column(sa.Column("retry_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_column("retry_at")
