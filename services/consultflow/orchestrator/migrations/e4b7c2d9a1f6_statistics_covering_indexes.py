"""covering indexes for GetProcessStatistics

The counts per element of a process with 10,000 running instances read every instance row (each carries
its engine state) to test process, status and open incidents; the indexes hold what those counts and
joins read, so they read the indexes alone.

Revision ID: e4b7c2d9a1f6
Revises: 9137b5835262
"""

from alembic import op

revision = "e4b7c2d9a1f6"
down_revision = "9137b5835262"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("instances", schema=None) as batch_op:
        batch_op.drop_index("ix_instances_running")
        batch_op.create_index(
            "ix_instances_running",
            ["process_id", "status", "instance_id", "definition_id", "open_incidents"],
            unique=False,
        )
    with op.batch_alter_table("user_tasks", schema=None) as batch_op:
        batch_op.create_index(
            "ix_user_tasks_by_instance", ["instance_id", "status", "element_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("user_tasks", schema=None) as batch_op:
        batch_op.drop_index("ix_user_tasks_by_instance")
    with op.batch_alter_table("instances", schema=None) as batch_op:
        batch_op.drop_index("ix_instances_running")
        batch_op.create_index("ix_instances_running", ["process_id", "status", "definition_id"], unique=False)
