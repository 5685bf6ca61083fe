"""finished subprocesses stored apart

A finished subprocess is written once into `instance_parts` and named in the instance's state, instead of
being written again with every step (state_parts.py). Existing states hold theirs inline and load as they
are; their next step moves them out.

Revision ID: b8e2d5f0c419
Revises: 6ffd44bfa35d
"""

import json

import sqlalchemy as sa
from alembic import op

revision = "b8e2d5f0c419"
down_revision = "6ffd44bfa35d"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "instance_parts",
        sa.Column("instance_id", sa.String(length=36), nullable=False),
        sa.Column("part_id", sa.String(length=36), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("instance_id", "part_id"),
    )
    with op.batch_alter_table("instances", schema=None) as batch_op:
        batch_op.add_column(sa.Column("parts_bytes", sa.BigInteger(), server_default="0", nullable=False))


def downgrade() -> None:
    """Puts every stored part back into the state that names it, as the states were before."""
    connection = op.get_bind()
    named = connection.execute(sa.text("SELECT DISTINCT instance_id FROM instance_parts")).scalars().all()
    for instance_id in named:
        rows = connection.execute(
            sa.text("SELECT part_id, content FROM instance_parts WHERE instance_id = :i"), {"i": instance_id}
        )
        parts: dict[str, str] = {row.part_id: row.content for row in rows}
        text = connection.execute(
            sa.text("SELECT state FROM instances WHERE instance_id = :i"), {"i": instance_id}
        ).scalar_one()
        state = json.loads(text)
        subprocesses = state.get("subprocesses", {})
        for key, value in subprocesses.items():
            if value == "instance_parts":
                subprocesses[key] = json.loads(parts[key])
        connection.execute(
            sa.text("UPDATE instances SET state = :s WHERE instance_id = :i"),
            {"s": json.dumps(state), "i": instance_id},
        )
    with op.batch_alter_table("instances", schema=None) as batch_op:
        batch_op.drop_column("parts_bytes")
    op.drop_table("instance_parts")
