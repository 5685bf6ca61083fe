"""The clocks: the wall clock, a manual one for exact instants, a shifted one for running systems."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from consultflow.platform.clock import WALL_CLOCK, ManualClock, ShiftedClock

START = datetime(2026, 1, 1, tzinfo=UTC)


def test_the_wall_clock_is_aware_utc_now() -> None:
    before = datetime.now(UTC)
    now = WALL_CLOCK.now()
    assert now.tzinfo is not None and before <= now <= datetime.now(UTC)


def test_a_manual_clock_stands_still_until_advanced() -> None:
    clock = ManualClock(START)
    assert clock.now() == clock.now() == START
    clock.advance(timedelta(days=2))
    assert clock.now() == START + timedelta(days=2)


def test_a_manual_clock_moves_to_an_instant_but_never_back() -> None:
    clock = ManualClock(START)
    clock.advance_to(START + timedelta(hours=1))
    clock.advance_to(START)
    assert clock.now() == START + timedelta(hours=1)
    with pytest.raises(ValueError):
        clock.advance(timedelta(seconds=-1))


def test_a_shifted_clock_keeps_flowing_ahead_of_the_wall_clock() -> None:
    clock = ShiftedClock()
    clock.advance(timedelta(days=7))
    first = clock.now()
    assert first - datetime.now(UTC) > timedelta(days=6, hours=23)
    assert clock.now() >= first
    target = datetime.now(UTC) + timedelta(days=30)
    clock.advance_to(target)
    assert clock.now() >= target
    clock.advance_to(target - timedelta(days=1))  # already later: nothing changes
    assert clock.now() - target < timedelta(minutes=1)
