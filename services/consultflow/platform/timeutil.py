"""Times: everything is UTC; SQLite hands back naive datetimes, which are UTC too."""

from __future__ import annotations

from datetime import UTC, datetime

from google.protobuf.timestamp_pb2 import Timestamp


def now() -> datetime:
    return datetime.now(UTC)


def aware(value: datetime | None) -> datetime | None:
    """Marks a naive datetime (as SQLite returns them) as UTC."""
    if value is None:
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def timestamp(value: datetime | None) -> Timestamp | None:
    """A protobuf Timestamp, or None (which leaves the field unset)."""
    if value is None:
        return None
    stamp = Timestamp()
    stamp.FromDatetime(aware(value))  # type: ignore[arg-type]
    return stamp
