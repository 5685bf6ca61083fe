"""the register records the engagement's project manager (engagement.stage_started, 6.1.1)

Revision ID: 3f8a61c0d5e2
Revises: 5c1e7a9d2b40
"""

import sqlalchemy as sa
from alembic import op

revision = "3f8a61c0d5e2"
down_revision = "5c1e7a9d2b40"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("registers", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("project_manager", sa.String(length=200), nullable=False, server_default="")
        )


def downgrade() -> None:
    with op.batch_alter_table("registers", schema=None) as batch_op:
        batch_op.drop_column("project_manager")
