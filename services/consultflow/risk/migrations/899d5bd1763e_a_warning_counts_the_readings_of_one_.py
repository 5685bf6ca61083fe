"""a warning counts the readings of one lasting breach

Revision ID: 899d5bd1763e
Revises: ddfb54de4218
"""

import sqlalchemy as sa
from alembic import op

revision = "899d5bd1763e"
down_revision = "ddfb54de4218"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("warnings", schema=None) as batch_op:
        batch_op.add_column(sa.Column("readings", sa.Integer(), nullable=False, server_default="1"))


def downgrade() -> None:
    with op.batch_alter_table("warnings", schema=None) as batch_op:
        batch_op.drop_column("readings")
