"""What time it is, as one object a component is given: production reads the wall clock, tests move theirs.

Everything that compares with "now" to decide something (a timer is due, a job is overdue, a buffered
message expired) asks its clock, so a test makes a timer due by moving the clock instead of rewriting
stored due times.
"""

from __future__ import annotations

import threading
from datetime import datetime, timedelta
from typing import Protocol

from consultflow.platform import timeutil


class Clock(Protocol):
    def now(self) -> datetime:
        """The current instant, timezone-aware UTC."""
        ...


class WallClock:
    """The real time (`timeutil.now()`)."""

    def now(self) -> datetime:
        return timeutil.now()


WALL_CLOCK: Clock = WallClock()


class ManualClock:
    """Stands still until told to move: for unit tests that need exact instants."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start if start is not None else timeutil.now()
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def advance(self, delta: timedelta) -> None:
        if delta < timedelta(0):
            raise ValueError("a clock does not go back")
        with self._lock:
            self._now += delta

    def advance_to(self, instant: datetime) -> None:
        """Moves the clock to `instant` unless it is there already."""
        with self._lock:
            self._now = max(self._now, instant)


class ShiftedClock:
    """The wall clock, moved ahead by what `advance` added: for tests of a running system, where time must
    keep flowing (rows are ordered by when they were written) yet a timer days away must come due now."""

    def __init__(self) -> None:
        self._offset = timedelta(0)
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return timeutil.now() + self._offset

    def advance(self, delta: timedelta) -> None:
        if delta < timedelta(0):
            raise ValueError("a clock does not go back")
        with self._lock:
            self._offset += delta

    def advance_to(self, instant: datetime) -> None:
        """Moves the clock to `instant` unless it is there already."""
        with self._lock:
            behind = instant - (timeutil.now() + self._offset)
            if behind > timedelta(0):
                self._offset += behind
