"""processed_jobs are pruned oldest first: an index on processed_at, so a bounded batch reads no more.

Revision ID: p0003
Revises: p0002
"""

from alembic import op

revision = "p0003"
down_revision = "p0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("processed_jobs") as batch:
        batch.create_index("ix_processed_jobs_processed_at", ["processed_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("processed_jobs") as batch:
        batch.drop_index("ix_processed_jobs_processed_at")
