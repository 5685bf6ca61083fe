"""JSON for variables and event payloads: exact decimals and dates survive as strings."""

from __future__ import annotations

import base64
import dataclasses
import enum
import json
import math
import uuid
from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from consultflow.platform.errors import InvalidArgument, shown
from consultflow.platform.inputs import refuse_control_characters


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, enum.Enum):
        return value.value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def dumps(value: Any) -> str:
    """Compact JSON; Decimal, datetime, date, UUID, Enum, dataclasses and bytes (base64) become plain JSON
    values, and a dict key JSON cannot hold (a script's tuple) is written as its text."""
    try:
        return json.dumps(value, default=_default, ensure_ascii=False, separators=(",", ":"))
    except TypeError:
        return json.dumps(_text_keys(value), default=_default, ensure_ascii=False, separators=(",", ":"))


def _text_keys(value: Any) -> Any:
    if isinstance(value, dict):
        plain = (str, int, float, bool, type(None))
        return {k if isinstance(k, plain) else str(k): _text_keys(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_text_keys(v) for v in value]
    return value


def json_size_within(value: Any, limit: int, default: Callable[[Any], Any] = _default) -> int:
    """The size of `value` as compact JSON in UTF-8 bytes when it is at most `limit`; else a number above
    `limit`, found without writing the JSON out. A value that shares one part many times (`x = [s, s]`,
    doubled twenty times) is small in memory and huge as JSON: measuring it costs at most about `limit`
    steps, where `json.dumps` would spend seconds and gigabytes. A value that contains itself is over any
    limit."""
    size = 0
    pending: list[Any] = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            # at least one byte a character: a string that passes the limit so is not encoded at all
            size += len(item) + 2 if len(item) + 2 > limit - size else len(dumps(item).encode())
        elif isinstance(item, dict):
            size += 2 * len(item) + 1 if item else 2  # braces, a colon per entry, commas between them
            for key, member in item.items():
                pending += (str(key), member)
        elif isinstance(item, list | tuple):
            size += 1 + max(len(item), 1)
            pending += item
        elif item is None or isinstance(item, bool | int | float):
            size += len(dumps(item))
        else:
            pending.append(default(item))
        if size > limit:
            return size
    return size


def _not_a_number(constant: str) -> Any:
    raise ValueError(f"{constant} is not a JSON number")


def _finite(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise ValueError(f"{shown(text, 40)} is too large for a number")
    return number


def loads_object(text: str, field: str, max_bytes: int = 1_000_000) -> dict[str, Any]:
    """Parses a JSON object from a request field; empty text is {}; errors name the field. Its keys are
    variable names, so a control character in one is refused like one in any other name."""
    if not text:
        return {}
    if len(text.encode()) > max_bytes:
        raise InvalidArgument(field, f"larger than {max_bytes} bytes")
    try:
        value = json.loads(text, parse_constant=_not_a_number, parse_float=_finite)
    except json.JSONDecodeError as exc:
        raise InvalidArgument(field, f"not valid JSON ({exc.msg} at position {exc.pos})") from exc
    except RecursionError:
        raise InvalidArgument(field, "nested too deeply") from None
    except ValueError as exc:  # an integer of more digits than Python converts, NaN or Infinity
        raise InvalidArgument(field, f"not valid JSON ({shown(str(exc), 120)})") from None
    if not isinstance(value, dict):
        raise InvalidArgument(field, "must be a JSON object")
    for key in value:
        refuse_control_characters(f"{field}[{shown(key, 40)}]", key, name=True)
    return value
