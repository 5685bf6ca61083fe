"""user tasks: candidate users (the engagement's people a task names, ",user1,user2,")

Revision ID: 7d9f4a914eda
Revises: a00a10dfd64b
"""

import sqlalchemy as sa
from alembic import op

revision = "7d9f4a914eda"
down_revision = "a00a10dfd64b"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("user_tasks", schema=None) as batch_op:
        batch_op.add_column(sa.Column("candidate_users", sa.Text(), server_default="", nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("user_tasks", schema=None) as batch_op:
        batch_op.drop_column("candidate_users")
