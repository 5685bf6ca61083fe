"""claimable rows carry a claim slot

Timers, timer start events, jobs and buffered messages carry the slot that decides which replica scans
them (platform/claims.py). Rows that are still claimable get their slot here; settled ones keep 0.

Revision ID: 43cf1d1a9d70
Revises: f1a6c3e8b2d4
"""

import sqlalchemy as sa
from alembic import op

from consultflow.platform.slots import slot_of

revision = "43cf1d1a9d70"
down_revision = "f1a6c3e8b2d4"
branch_labels = None
depends_on = None

TABLES = ("jobs", "messages", "start_timers", "timers")


def upgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column("claim_slot", sa.Integer(), server_default="0", nullable=False))
    connection = op.get_bind()
    _backfill(connection, "timers", ("instance_id", "task_id"), ("instance_id",), "")
    _backfill(connection, "start_timers", ("definition_id", "element_id"), ("process_id",), "")
    _backfill(connection, "jobs", ("job_key",), ("instance_id",), "status = 'ACTIVATABLE'")
    _backfill(connection, "messages", ("message_key",), ("name", "correlation_key"), "status = 'PENDING'")


def _backfill(
    connection: sa.Connection, table: str, keys: tuple[str, ...], by: tuple[str, ...], where: str
) -> None:
    """Sets the slot of the rows `where` selects from their `by` columns, as the column default does."""
    columns = ", ".join(keys + by)
    condition = f" WHERE {where}" if where else ""
    rows = connection.execute(sa.text(f"SELECT {columns} FROM {table}{condition}")).all()
    match = " AND ".join(f"{k} = :{k}" for k in keys)
    for row in rows:
        values = row._mapping
        slot = slot_of("\0".join(str(values[c]) for c in by))
        connection.execute(
            sa.text(f"UPDATE {table} SET claim_slot = :slot WHERE {match}"),
            {"slot": slot, **{k: values[k] for k in keys}},
        )


def downgrade() -> None:
    for table in reversed(TABLES):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column("claim_slot")
