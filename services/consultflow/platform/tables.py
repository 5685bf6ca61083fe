"""Tables every component's database holds besides its own: the outbox, the record of handled jobs, and the
partition leases that share background work between replicas (platform/claims.py)."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
)

from consultflow.platform.slots import writer_slot

metadata = MetaData()

outbox = Table(
    "outbox",
    metadata,
    Column("seq", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("msg_id", String(200), nullable=False),
    Column("subject", String(300), nullable=False),
    Column("payload", LargeBinary, nullable=False),
    Column("headers", Text, nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    # Not before this time (a job's retry back-off); NULL = at once.
    Column("not_before", DateTime(timezone=True), nullable=True),
    Column("sent_at", DateTime(timezone=True), nullable=True),
    # Refused publishes so far (counted only while NATS was reachable) and the last reason.
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("last_error", Text, nullable=True),
    # Set aside: a message that can never be published (too large, a subject its user may not publish
    # to, refused `outbox_publish_attempts` times). Kept, never retried, listed by `consultflow outbox`.
    Column("dead_at", DateTime(timezone=True), nullable=True),
    # Which replica's relay publishes it: the partition (slot % partitions) whose lease it holds.
    Column("claim_slot", Integer, nullable=False, default=writer_slot("msg_id"), server_default="0"),
    Index("ix_outbox_unsent", "sent_at", "seq"),
)
"""Messages to publish on NATS, written in the transaction of the change that caused them."""

processed_jobs = Table(
    "processed_jobs",
    metadata,
    Column("job_key", String(100), primary_key=True),
    Column("operation", String(200), nullable=False),
    Column("outcome", String(20), nullable=False),  # completed | error
    Column(
        "result", Text, nullable=False
    ),  # JSON: variables, or {"code","message","variables"} of a BPMN error
    Column("processed_at", DateTime(timezone=True), nullable=False),
    Index("ix_processed_jobs_processed_at", "processed_at"),  # pruned oldest first (jobs.py)
)
"""Jobs a worker has carried out, so a redelivered job returns the first result instead of acting twice."""

leases = Table(
    "leases",
    metadata,
    Column("partition_no", Integer, primary_key=True, autoincrement=False),
    Column("owner", String(64), nullable=True),  # a member id; NULL: free
    # Raised on every change of owner: a fencing token that tells one holding from the next.
    Column("epoch", BigInteger, nullable=False, server_default="0"),
    Column("expires_at", DateTime(timezone=True), nullable=True),
)
"""One row per partition of claimable work: who owns it until when (platform/claims.py)."""

lease_members = Table(
    "lease_members",
    metadata,
    Column("member_id", String(64), primary_key=True),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
)
"""The replicas sharing the partitions, by heartbeat: how many there are decides each one's share."""
