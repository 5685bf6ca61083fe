"""Who does which background work when several replicas share one database: partitions owned by leases.

One mechanism for every kind of claimable row (the orchestrator's timers, continuations, overdue jobs,
buffered messages and timer start events; every component's outbox rows), as Zeebe partitions and
Temporal history shards do it (docs/scale-out.md):

- each claimable row carries a `claim_slot` (0..SLOTS-1), set when it is written; partition = slot % P,
  with P = `CONSULTFLOW_CLAIM_PARTITIONS`. Rows of one instance share its slot (a hash of the instance
  id); an outbox row takes a slot in a partition its writer owns, so the writer publishes what it wrote
  at once, and whoever owns that partition later publishes what a dead writer left;
- the `leases` table has one row per partition: owner (a member id, random per process), epoch (raised
  on every change of owner: a fencing token) and expiry. A `LeaseKeeper` renews its member row and its
  leases every TTL/3, takes free or expired partitions up to its fair share (`share`), releases what it
  holds beyond it, and releases everything on a clean stop; a replica that dies without releasing hands
  its partitions over when its leases expire (TTL);
- each background loop scans only the rows of the partitions its keeper owns (`Owned.where`); periodic
  clean-ups run only in the owner of partition 0 (`Owned.cleans_up`).

Leases only remove duplicate work. Correctness still rests on what guarded it before: the step's row lock
and revision guard, claim-style updates, and the stream's duplicate window for a message published twice
(a lease that moved while its old owner was mid-batch).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import threading
import time
import uuid
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, delete, false, insert, select, true, update
from sqlalchemy.exc import IntegrityError

from consultflow.platform import metrics
from consultflow.platform.db import Database
from consultflow.platform.slots import HOME_SLOTS
from consultflow.platform.tables import lease_members, leases
from consultflow.platform.timeutil import aware

log = logging.getLogger(__name__)

CLOCK_SKEW = timedelta(seconds=1)
"""How far the replicas' clocks may disagree: a keeper stops using a lease this long before it expires."""


@dataclass(frozen=True)
class Owned:
    """The partitions a replica owns at one moment, and how to select their rows."""

    partitions: frozenset[int]
    count: int

    def where(self, slot: Any) -> ColumnElement[bool]:
        """SQL: the row's slot (a `claim_slot` column) falls in an owned partition."""
        if len(self.partitions) >= self.count:
            return true()
        if not self.partitions:
            return false()
        condition: ColumnElement[bool] = (slot % self.count).in_(sorted(self.partitions))
        return condition

    def includes(self, slot: int) -> bool:
        """The row of this slot is in an owned partition (`where`, for a row in hand)."""
        return len(self.partitions) >= self.count or slot % self.count in self.partitions

    @property
    def cleans_up(self) -> bool:
        """Periodic clean-ups (sent outbox rows, expired messages) run in the owner of partition 0 only."""
        return 0 in self.partitions


EVERYTHING = Owned(frozenset({0}), 1)
"""A replica alone (tests, tools): it owns every row."""


def share(partitions: int, members: Sequence[str], me: str) -> int:
    """How many partitions `me` should own: an even split by member id order, the first ones one more."""
    ordered = sorted(set(members) | {me})
    rank = ordered.index(me)
    return partitions // len(ordered) + (1 if rank < partitions % len(ordered) else 0)


@dataclass(frozen=True)
class Plan:
    """What one keeper round changes: partitions to take (free ones) and to give back (beyond its share)."""

    acquire: tuple[int, ...]
    release: tuple[int, ...]


def rebalance(partitions: int, members: Sequence[str], me: str, owners: Mapping[int, str | None]) -> Plan:
    """The rebalancing rule: keep up to the fair share, give back the highest-numbered rest, take the
    lowest-numbered free partitions (no live owner) up to the share. Every member applying it converges
    on each owning its `share` (the shares add up to `partitions`)."""
    target = share(partitions, members, me)
    mine = sorted(p for p in range(partitions) if owners.get(p) == me)
    if len(mine) > target:
        return Plan((), tuple(mine[target:]))
    free = [p for p in range(partitions) if owners.get(p) is None]
    return Plan(tuple(free[: target - len(mine)]), ())


class SharedSqlite(RuntimeError):
    """Another live replica holds leases on the same SQLite database (one writer at a time: run one)."""


class LeaseKeeper:
    """Holds this process's leases: renews them, rebalances, and releases them on stop.

    The blocking `tick` runs on an executor thread; `owned()` is safe from any thread."""

    def __init__(
        self,
        db: Database,
        partitions: int = 16,
        ttl: timedelta = timedelta(seconds=6),
        member_id: str = "",
    ) -> None:
        if partitions < 1:
            raise ValueError("partitions must be at least 1")
        self.db = db
        self.partitions = partitions
        self.ttl = ttl
        self.member_id = member_id or uuid.uuid4().hex
        self._lock = threading.Lock()
        self._epochs: dict[int, int] = {}
        self._valid_until = 0.0  # monotonic: the leases in `_epochs` are used until then
        self._stopped = False
        HOME_SLOTS[db.engine] = self.home_slot

    def owned(self) -> Owned:
        """The partitions this process may scan now: none once its last renewal is too old."""
        with self._lock:
            if time.monotonic() >= self._valid_until:
                return Owned(frozenset(), self.partitions)
            return Owned(frozenset(self._epochs), self.partitions)

    def epoch(self, partition: int) -> int | None:
        """The fencing token of an owned partition (its lease's epoch), None when not owned."""
        with self._lock:
            return self._epochs.get(partition) if time.monotonic() < self._valid_until else None

    def home_slot(self) -> int | None:
        """A slot for a row this process writes and handles itself: one of its partitions, at random."""
        partitions = self.owned().partitions
        return random.choice(sorted(partitions)) if partitions else None

    def live_members(self) -> list[str]:
        """Members whose heartbeat has not expired, this one included once it ticked."""
        with self.db.read() as session:
            return list(
                session.scalars(
                    select(lease_members.c.member_id).where(lease_members.c.expires_at > datetime.now(UTC))
                )
            )

    def tick(self) -> Owned:
        """One round: heartbeat, renew, rebalance. Returns what this process owns afterwards."""
        started = time.monotonic()
        now = datetime.now(UTC)
        expires = now + self.ttl
        with self.db.session() as session, session.begin():
            self._ensure_partitions(session.connection())
            connection = session.connection()
            beat = connection.execute(
                update(lease_members)
                .where(lease_members.c.member_id == self.member_id)
                .values(expires_at=expires)
            )
            if not beat.rowcount:
                connection.execute(
                    insert(lease_members).values(member_id=self.member_id, started_at=now, expires_at=expires)
                )
            # Renew only what has not expired: an expired lease is free for anyone (this member takes it back
            # below, with a new epoch, if it is still in its share). Renewals touch live rows and takeovers
            # expired ones, so two members' rounds never wait on each other's rows in a cycle.
            connection.execute(
                update(leases)
                .where(leases.c.owner == self.member_id, leases.c.expires_at > now)
                .values(expires_at=expires)
            )
            members = list(
                connection.scalars(select(lease_members.c.member_id).where(lease_members.c.expires_at > now))
            )
            owners = {
                row.partition_no: (row.owner if _live(row.owner, row.expires_at, now) else None)
                for row in connection.execute(
                    select(leases.c.partition_no, leases.c.owner, leases.c.expires_at).where(
                        leases.c.partition_no < self.partitions
                    )
                )
            }
            plan = rebalance(self.partitions, members, self.member_id, owners)
            if plan.release:
                connection.execute(
                    update(leases)
                    .where(leases.c.partition_no.in_(plan.release), leases.c.owner == self.member_id)
                    .values(owner=None, expires_at=now)
                )
            for partition in plan.acquire:  # in ascending order, as every member takes them
                connection.execute(
                    update(leases)
                    .where(
                        leases.c.partition_no == partition,
                        (leases.c.owner.is_(None)) | (leases.c.expires_at <= now),
                    )
                    .values(owner=self.member_id, epoch=leases.c.epoch + 1, expires_at=expires)
                )
            held = {
                row.partition_no: row.epoch
                for row in connection.execute(
                    select(leases.c.partition_no, leases.c.epoch).where(
                        leases.c.owner == self.member_id, leases.c.partition_no < self.partitions
                    )
                )
            }
            # members gone for long: nobody needs their rows any more
            connection.execute(delete(lease_members).where(lease_members.c.expires_at < now - self.ttl * 10))
        with self._lock:
            if not self._stopped:
                before, self._epochs = set(self._epochs), held
                self._valid_until = started + (self.ttl - CLOCK_SKEW).total_seconds()
                self._count_changes(before, set(held), set(plan.release), len(members))
        metrics.LEASE_ROUND_SECONDS.observe(time.monotonic() - started)
        return self.owned()

    def _count_changes(self, before: set[int], after: set[int], released: set[int], members: int) -> None:
        metrics.LEASE_CHANGES.labels("acquired").inc(len(after - before))
        metrics.LEASE_CHANGES.labels("released").inc(len(before & released))
        metrics.LEASE_CHANGES.labels("lost").inc(len(before - after - released))
        metrics.LEASES_OWNED.labels(self.member_id).set(len(after))
        metrics.LEASE_MEMBERS.labels(self.member_id).set(members)

    def release(self) -> None:
        """Gives every lease back and leaves (a clean stop): the others take over at their next round."""
        with self._lock:
            self._stopped = True
            metrics.LEASE_CHANGES.labels("released").inc(len(self._epochs))
            self._epochs = {}
            self._valid_until = 0.0
        for gauge in (metrics.LEASES_OWNED, metrics.LEASE_MEMBERS):
            with contextlib.suppress(KeyError):
                gauge.remove(self.member_id)
        now = datetime.now(UTC)
        with self.db.session() as session, session.begin():
            session.execute(
                update(leases).where(leases.c.owner == self.member_id).values(owner=None, expires_at=now)
            )
            session.execute(delete(lease_members).where(lease_members.c.member_id == self.member_id))

    def refuse_shared_sqlite(self) -> None:
        """On SQLite, raises `SharedSqlite` while another member is alive: one SQLite file has one writer
        at a time, so more replicas only add lock waits. A member counts as alive once its heartbeat moves
        within one renewal interval; one that does not is the ghost of a crashed replica (this one is its
        restart), whose leases are freed at once instead of after their TTL. Best effort: a live member
        stalled for a whole interval is missed, which costs duplicate work, never correctness."""
        if not self.db.is_sqlite:
            return
        first = self._heartbeats()
        deadline = time.monotonic() + self.ttl.total_seconds() / 3 + 0.5
        while first and time.monotonic() < deadline:
            time.sleep(0.2)
            now = self._heartbeats()
            alive = [m for m, beat in now.items() if m in first and beat > first[m]]
            if alive:
                raise SharedSqlite(
                    f"another replica ({alive[0]}) holds leases on this SQLite database; run one replica "
                    "per SQLite file, use PostgreSQL to scale out, or set CONSULTFLOW_CLAIM_SHARED_SQLITE "
                    "(development and tests)"
                )
            first = {m: beat for m, beat in first.items() if m in now}
        if first:
            self._evict(list(first))

    def _evict(self, ghosts: list[str]) -> None:
        """Frees the leases of members known dead and forgets them."""
        log.warning("freeing the partition leases of replicas that stopped renewing: %s", ", ".join(ghosts))
        with self.db.session() as session, session.begin():
            session.execute(
                update(leases)
                .where(leases.c.owner.in_(ghosts))
                .values(owner=None, expires_at=datetime.now(UTC))
            )
            session.execute(delete(lease_members).where(lease_members.c.member_id.in_(ghosts)))

    def _heartbeats(self) -> dict[str, datetime]:
        """The other live members and the expiry of their heartbeat."""
        with self.db.read() as session:
            rows = session.execute(
                select(lease_members.c.member_id, lease_members.c.expires_at).where(
                    lease_members.c.expires_at > datetime.now(UTC),
                    lease_members.c.member_id != self.member_id,
                )
            )
            return {row.member_id: aware(row.expires_at) or datetime.now(UTC) for row in rows}

    async def run(self) -> None:
        """Ticks every TTL/3 until cancelled, on a thread of its own: a pool busy with long requests must
        not delay a renewal past the TTL. A failed round is logged; the leases lapse if it lasts."""
        loop = asyncio.get_running_loop()
        thread = ThreadPoolExecutor(1, thread_name_prefix="leases")
        try:
            while not self._stopped:
                try:
                    await loop.run_in_executor(thread, self.tick)
                except Exception:
                    log.warning("renewing partition leases failed; retrying", exc_info=True)
                await asyncio.sleep(self.ttl.total_seconds() / 3)
        finally:
            thread.shutdown(wait=False)  # never block the event loop on a round in progress

    def _ensure_partitions(self, connection: Any) -> None:
        """Creates the lease rows of partitions nobody created yet (the first start, a larger count)."""
        existing = set(connection.scalars(select(leases.c.partition_no)))
        missing = [p for p in range(self.partitions) if p not in existing]
        if not missing:
            return
        with contextlib.suppress(IntegrityError), connection.begin_nested():
            connection.execute(
                insert(leases),
                [{"partition_no": p, "owner": None, "epoch": 0, "expires_at": None} for p in missing],
            )


def _live(owner: str | None, expires_at: datetime | None, now: datetime) -> bool:
    """A lease has a live owner: someone holds it and it has not expired."""
    expiry = aware(expires_at)
    return owner is not None and expiry is not None and expiry > now
