"""jobs know when their current delivery began

A worker may extend a job's deadline while it runs (ExtendJobDeadline), up to max_job_hold_seconds from
the start of the current delivery; that start is kept here. Existing rows: their last change (a job's
creation, retry or redelivery is its last change while it waits).

Revision ID: f1a6c3e8b2d4
Revises: e4b7c2d9a1f6
"""

import sqlalchemy as sa
from alembic import op

revision = "f1a6c3e8b2d4"
down_revision = "e4b7c2d9a1f6"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("activated_at", sa.DateTime(timezone=True), nullable=True))
    op.execute("UPDATE jobs SET activated_at = updated_at")
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.alter_column("activated_at", existing_type=sa.DateTime(timezone=True), nullable=False)


def downgrade() -> None:
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_column("activated_at")
