"""definitions: deploy note and who deployed; index of running instances

Existing versions: no note, deployed by "" (as the start-up deploy). The index serves
GetProcessStatistics (running instances of a process or one version).

Revision ID: 9137b5835262
Revises: c3d503558cee
"""

import sqlalchemy as sa
from alembic import op

revision = "9137b5835262"
down_revision = "c3d503558cee"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("definitions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("note", sa.Text(), server_default="", nullable=False))
        batch_op.add_column(
            sa.Column("deployed_by", sa.String(length=255), server_default="", nullable=False)
        )

    with op.batch_alter_table("instances", schema=None) as batch_op:
        batch_op.create_index("ix_instances_running", ["process_id", "status", "definition_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("instances", schema=None) as batch_op:
        batch_op.drop_index("ix_instances_running")

    with op.batch_alter_table("definitions", schema=None) as batch_op:
        batch_op.drop_column("deployed_by")
        batch_op.drop_column("note")
