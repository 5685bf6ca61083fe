"""The rebalancing rule of partition leases, and how owned partitions select rows (platform/claims.py)."""

from __future__ import annotations

from collections import Counter

import pytest
from sqlalchemy import Column, Integer, MetaData, Table, create_engine, insert, select

from consultflow.platform.claims import EVERYTHING, Owned, rebalance, share
from consultflow.platform.slots import SLOTS, slot_of


@pytest.mark.parametrize(
    ("partitions", "count"), [(16, 1), (16, 2), (16, 3), (16, 5), (16, 16), (3, 5), (1, 2)]
)
def test_shares_add_up_to_the_partitions_and_differ_by_at_most_one(partitions: int, count: int) -> None:
    members = [f"m{i}" for i in range(count)]
    shares = [share(partitions, members, m) for m in members]
    assert sum(shares) == partitions
    assert max(shares) - min(shares) <= 1


def _settle(partitions: int, members: list[str], owners: dict[int, str | None]) -> int:
    """Every member applies the rule in turn until nothing changes; returns the rounds it took."""
    for rounds in range(1, 20):
        changed = False
        for me in members:
            plan = rebalance(partitions, members, me, owners)
            for p in plan.release:
                assert owners[p] == me, "a member only gives back what it holds"
                owners[p] = None
            for p in plan.acquire:
                assert owners[p] is None, "a member only takes a free partition"
                owners[p] = me
            changed = changed or bool(plan.release or plan.acquire)
        if not changed:
            return rounds
    raise AssertionError("the rule did not converge")


def test_a_member_alone_takes_every_partition() -> None:
    owners: dict[int, str | None] = dict.fromkeys(range(16))
    _settle(16, ["a"], owners)
    assert set(owners.values()) == {"a"}


def test_a_joining_member_gets_half_and_the_first_gives_it_up() -> None:
    owners: dict[int, str | None] = dict.fromkeys(range(16), "a")
    rounds = _settle(16, ["a", "b"], owners)
    assert Counter(owners.values()) == {"a": 8, "b": 8}
    assert rounds <= 3


def test_the_partitions_of_a_dead_member_go_to_the_living() -> None:
    owners: dict[int, str | None] = {p: ("a", "b", "c")[p % 3] for p in range(16)}
    for p, owner in owners.items():  # c died: its leases expired, it left the member list
        if owner == "c":
            owners[p] = None
    _settle(16, ["a", "b"], owners)
    assert Counter(owners.values()) == {"a": 8, "b": 8}


def test_a_partition_held_by_a_live_owner_is_never_taken() -> None:
    owners: dict[int, str | None] = dict.fromkeys(range(4), "a")
    plan = rebalance(4, ["a", "b"], "b", owners)
    assert plan.acquire == () and plan.release == ()  # b waits until a gives two back
    plan = rebalance(4, ["a", "b"], "a", owners)
    assert plan.release == (2, 3)


def test_more_members_than_partitions_leave_some_idle() -> None:
    owners: dict[int, str | None] = dict.fromkeys(range(2))
    members = ["a", "b", "c"]
    _settle(2, members, owners)
    assert sorted(o for o in owners.values() if o) == ["a", "b"]


def test_slots_are_stable_and_spread() -> None:
    assert slot_of("instance-1") == slot_of("instance-1")
    slots = {slot_of(f"instance-{i}") for i in range(1000)}
    assert all(0 <= s < SLOTS for s in slots)
    assert len({s % 16 for s in slots}) == 16


def test_owned_partitions_select_their_rows_by_slot() -> None:
    engine = create_engine("sqlite://")
    rows = Table("rows", MetaData(), Column("claim_slot", Integer))
    rows.metadata.create_all(engine)
    with engine.begin() as connection:
        connection.execute(insert(rows), [{"claim_slot": s} for s in range(64)])

    def selected(owned: Owned) -> list[int]:
        with engine.connect() as connection:
            return list(connection.scalars(select(rows.c.claim_slot).where(owned.where(rows.c.claim_slot))))

    for owned in (Owned(frozenset({1, 3}), 16), Owned(frozenset(), 16), EVERYTHING):
        # a row in hand (a commit's, handed to the relay) is judged as the SQL selects it
        assert [s for s in range(64) if owned.includes(s)] == selected(owned)
    assert selected(Owned(frozenset({1, 3}), 16)) == [1, 3, 17, 19, 33, 35, 49, 51]
    assert selected(Owned(frozenset(), 16)) == []
    assert len(selected(EVERYTHING)) == 64
    assert Owned(frozenset({0, 5}), 16).cleans_up and not Owned(frozenset({5}), 16).cleans_up
