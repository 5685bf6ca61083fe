"""JSON for variables and event payloads: exact decimals and dates survive as strings."""

from __future__ import annotations

import dataclasses
import enum
import json
import uuid
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
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def dumps(value: Any) -> str:
    """Compact JSON; Decimal, datetime, date, UUID, Enum and dataclasses become plain JSON values."""
    return json.dumps(value, default=_default, ensure_ascii=False, separators=(",", ":"))


def loads_object(text: str, field: str, max_bytes: int = 1_000_000) -> dict[str, Any]:
    """Parses a JSON object from a request field; empty text is {}; errors name the field. Its keys are
    variable names, so a control character in one is refused like one in any other name."""
    if not text:
        return {}
    if len(text.encode()) > max_bytes:
        raise InvalidArgument(field, f"larger than {max_bytes} bytes")
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidArgument(field, f"not valid JSON ({exc.msg} at position {exc.pos})") from exc
    if not isinstance(value, dict):
        raise InvalidArgument(field, "must be a JSON object")
    for key in value:
        refuse_control_characters(f"{field}[{shown(key, 40)}]", key, name=True)
    return value
