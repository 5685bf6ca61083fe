"""How the CLI prints: aligned tables for people, JSON for scripts, one error line on stderr."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import grpc
from google.protobuf.json_format import MessageToDict
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_NOT_FOUND = 3
EXIT_REFUSED = 4  # invalid argument or a rule forbids it
EXIT_UNAVAILABLE = 5


def to_dict(message: Message) -> dict[str, Any]:
    return MessageToDict(message, preserving_proto_field_name=True)


def with_json_field(message: Message, field: str, name: str) -> dict[str, Any]:
    """The message as a dict, its JSON-text `field` decoded under `name`: one JSON document for scripts."""
    data = to_dict(message)
    data[name] = json.loads(getattr(message, field) or "{}")
    data.pop(field, None)
    return data


def print_json(value: Any) -> None:
    print(json.dumps(value, ensure_ascii=False, indent=2, default=str))


def when(stamp: Timestamp | None) -> str:
    """A timestamp as local-free UTC text, or "" when unset."""
    if stamp is None or (stamp.seconds == 0 and stamp.nanos == 0):
        return ""
    return stamp.ToDatetime(UTC).strftime("%Y-%m-%d %H:%M:%S")


def ago(stamp: Timestamp | None) -> str:
    if stamp is None or stamp.seconds == 0:
        return ""
    seconds = (datetime.now(UTC) - stamp.ToDatetime(UTC)).total_seconds()
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{int(seconds // size)}{unit} ago"
    return f"{int(seconds)}s ago"


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]], empty: str = "(none)") -> None:
    """Prints an aligned table; wide characters (Chinese) count double so columns stay aligned."""
    materialised = [[str(cell) for cell in row] for row in rows]
    if not materialised:
        print(empty)
        return
    widths = [display_width(h) for h in headers]
    for row in materialised:
        for index, cell in enumerate(row):
            widths[index] = max(widths[index], display_width(cell))
    print("  ".join(pad(h.upper(), widths[i]) for i, h in enumerate(headers)).rstrip())
    for row in materialised:
        print("  ".join(pad(cell, widths[i]) for i, cell in enumerate(row)).rstrip())


def display_width(text: str) -> int:
    import unicodedata

    return sum(2 if unicodedata.east_asian_width(c) in ("W", "F") else 1 for c in text)


def pad(text: str, width: int) -> str:
    return text + " " * (width - display_width(text))


def fields(pairs: Mapping[str, Any]) -> None:
    """Prints `key: value` lines, aligned."""
    width = max((len(k) for k in pairs), default=0)
    for key, value in pairs.items():
        print(f"{key.rjust(width)}: {value}")


def rpc_failure(error: grpc.RpcError) -> tuple[grpc.StatusCode, str | None]:
    """A failed call's status code and details, read alike by every command (UNKNOWN: not a call)."""
    if isinstance(error, grpc.Call):
        return error.code(), error.details()
    return grpc.StatusCode.UNKNOWN, str(error)


def error(message: str) -> None:
    print(f"consultflow: {message}", file=sys.stderr)
