"""Timestamps leave the process as the instant they name, whatever zone the database handed back."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from consultflow.platform.timeutil import timestamp


def test_a_zoned_datetime_keeps_its_instant() -> None:
    shanghai = timezone(timedelta(hours=8))
    stamp = timestamp(datetime(2026, 11, 27, 17, 0, tzinfo=shanghai))
    assert stamp is not None
    assert stamp.ToDatetime(UTC) == datetime(2026, 11, 27, 9, 0, tzinfo=UTC)


def test_a_naive_datetime_is_utc_as_sqlite_stores_it() -> None:
    stamp = timestamp(datetime(2026, 11, 27, 9, 0))
    assert stamp is not None
    assert stamp.ToDatetime(UTC) == datetime(2026, 11, 27, 9, 0, tzinfo=UTC)


def test_none_leaves_the_field_unset() -> None:
    assert timestamp(None) is None
