"""Tagged JSON for the values that cross the sandbox boundary (platform/sandbox.py).

Decimal, date, datetime, timedelta, UUID, tuple, set and bytes keep their type; dicts with non-string keys
keep their keys. Encoding checks every limit on the way, so what crosses is never larger than a script may
produce; decoding builds only the known tags, never anything a worker names (no pickle).
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Callable
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from consultflow.platform.limits import Limits
from consultflow.platform.sandbox_rules import ScriptViolation, guards_for, over

_TAG = "$t"


class Codec:
    """Tagged JSON for the values task data holds: Decimal, date, datetime, timedelta, UUID, tuple, set and
    bytes keep their type; dicts with non-string keys keep their keys. `encode` checks every limit on the
    way (string length, integer size, collection size), so what crosses is never larger than a script may
    produce."""

    def __init__(self, limits: Limits) -> None:
        self.guards = guards_for(limits)

    def encode(self, value: Any, name: str) -> Any:
        try:
            return self._encode(value, name, 0)
        except RecursionError as exc:
            raise ScriptViolation(f"{name} is nested too deeply to store") from exc

    def _encode(self, value: Any, name: str, depth: int) -> Any:
        if depth > 200:
            raise ScriptViolation(f"{name} is nested too deeply to store")
        if value is None or isinstance(value, bool | float):
            return value
        if isinstance(value, int):
            if value.bit_length() > self.guards.max_bits:
                raise over("max_int_bits", f"{name} holds an integer larger than {self.guards.max_bits} bits")
            return value
        if isinstance(value, str):
            if len(value) > self.guards.max_string:
                raise over("max_string_length", f"{name} holds a string longer than {self.guards.max_string}")
            return value
        if isinstance(value, list | tuple | set | frozenset | dict) and len(value) > self.guards.max_items:
            raise over("max_collection_items", f"{name} holds more than {self.guards.max_items} items")
        if isinstance(value, list):
            return [self._encode(v, name, depth + 1) for v in value]
        if isinstance(value, dict):
            if all(isinstance(k, str) for k in value) and _TAG not in value:
                return {k: self._encode(v, name, depth + 1) for k, v in value.items()}
            return {
                _TAG: "dict",
                "v": [
                    [self._encode(k, name, depth + 1), self._encode(v, name, depth + 1)]
                    for k, v in value.items()
                ],
            }
        if isinstance(value, tuple | set | frozenset):
            return {_TAG: type(value).__name__, "v": [self._encode(v, name, depth + 1) for v in value]}
        if isinstance(value, Decimal):
            return {_TAG: "decimal", "v": str(value)}
        if isinstance(value, datetime):
            return {_TAG: "datetime", "v": value.isoformat()}
        if isinstance(value, date):
            return {_TAG: "date", "v": value.isoformat()}
        if isinstance(value, timedelta):
            return {_TAG: "timedelta", "v": [value.days, value.seconds, value.microseconds]}
        if isinstance(value, uuid.UUID):
            return {_TAG: "uuid", "v": str(value)}
        if isinstance(value, bytes | bytearray):
            if len(value) > self.guards.max_string:
                raise over("max_string_length", f"{name} holds bytes longer than {self.guards.max_string}")
            return {_TAG: "bytes", "v": base64.b64encode(value).decode()}
        raise ScriptViolation(f"{name} holds a {type(value).__name__}, which cannot be stored")

    @staticmethod
    def decode_hook(obj: dict[str, Any]) -> Any:
        """`json.loads(..., object_hook=Codec.decode_hook)`: only the known tags, nothing else is built."""
        tag = obj.get(_TAG)
        if tag is None:
            return obj
        value = obj.get("v")
        decoder = _DECODERS.get(tag) if isinstance(tag, str) else None
        if decoder is None:
            raise ValueError(f"unknown value tag {tag!r}")
        return decoder(value)


def _decode_timedelta(value: Any) -> timedelta:
    days, seconds, microseconds = value
    return timedelta(days=int(days), seconds=int(seconds), microseconds=int(microseconds))


_DECODERS: dict[str, Callable[[Any], Any]] = {
    "dict": lambda v: {_hashable(k): item for k, item in v},
    "tuple": tuple,
    "set": lambda v: set(map(_hashable, v)),
    "frozenset": lambda v: frozenset(map(_hashable, v)),
    "decimal": lambda v: Decimal(str(v)),
    "datetime": lambda v: datetime.fromisoformat(str(v)),
    "date": lambda v: date.fromisoformat(str(v)),
    "timedelta": _decode_timedelta,
    "uuid": lambda v: uuid.UUID(str(v)),
    "bytes": lambda v: base64.b64decode(str(v)),
}


def _hashable(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value
