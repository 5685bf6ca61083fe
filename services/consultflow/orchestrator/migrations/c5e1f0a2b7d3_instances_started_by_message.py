"""instances know the instance whose thrown message started them; messages know who threw them

Cancelling an instance cancels the instances its messages started (an engagement's risk management).
Existing rows: no sender known ("" and null).

Revision ID: c5e1f0a2b7d3
Revises: 7d9f4a914eda
"""

import sqlalchemy as sa
from alembic import op

revision = "c5e1f0a2b7d3"
down_revision = "7d9f4a914eda"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("instances", schema=None) as batch_op:
        batch_op.add_column(sa.Column("started_by", sa.String(length=36), nullable=True))
        batch_op.create_index(batch_op.f("ix_instances_started_by"), ["started_by"], unique=False)
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("sender_instance_id", sa.String(length=36), server_default="", nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_column("sender_instance_id")
    with op.batch_alter_table("instances", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_instances_started_by"))
        batch_op.drop_column("started_by")
