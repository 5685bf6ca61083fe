"""User task forms: checking submitted values against the declared fields, and due dates."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from SpiffWorkflow.bpmn.specs.event_definitions.timer import TimerEventDefinition

from consultflow.orchestrator.engine import FormField
from consultflow.platform.errors import InvalidArgument

_TRUE = {"true", "yes", "1"}
_FALSE = {"false", "no", "0"}


def validate_form(fields: Sequence[FormField], values: Mapping[str, Any]) -> dict[str, Any]:
    """Returns the values converted to their declared types; errors name the field.

    A task that declares fields accepts only those fields; one that declares none accepts any values.
    """
    if not fields:
        return dict(values)
    declared = {f.id: f for f in fields}
    unknown = sorted(set(values) - set(declared))
    if unknown:
        raise InvalidArgument(unknown[0], f"is not a field of this form (fields: {', '.join(declared)})")
    result: dict[str, Any] = {}
    for field in fields:
        raw = values.get(field.id)
        if raw is None or raw == "":
            if field.required:
                raise InvalidArgument(field.id, f"is required ({field.label})")
            if field.default:
                result[field.id] = _convert(field, field.default)
            continue
        result[field.id] = _convert(field, raw)
    return result


def _convert(field: FormField, raw: Any) -> Any:
    kind = field.type
    if kind == "enum":
        allowed = [v for v, _ in field.values]
        if str(raw) not in allowed:
            raise InvalidArgument(field.id, f"{raw!r} is not one of {', '.join(allowed)}")
        return str(raw)
    if kind == "boolean":
        if isinstance(raw, bool):
            return raw
        text = str(raw).strip().lower()
        if text in _TRUE or text in _FALSE:
            return text in _TRUE
        raise InvalidArgument(field.id, f"{raw!r} is not true or false")
    if kind == "long":
        if isinstance(raw, bool):
            raise InvalidArgument(field.id, "must be a whole number")
        try:
            return int(str(raw))
        except ValueError:
            raise InvalidArgument(field.id, f"{raw!r} is not a whole number") from None
    if kind == "decimal":
        try:
            value = Decimal(str(raw))
        except InvalidOperation:
            raise InvalidArgument(field.id, f"{raw!r} is not a decimal number") from None
        if not value.is_finite():
            raise InvalidArgument(field.id, "must be a finite number")
        return str(value)
    if kind == "date":
        try:
            return date.fromisoformat(str(raw)).isoformat()
        except ValueError:
            raise InvalidArgument(field.id, f"{raw!r} is not a date (YYYY-MM-DD)") from None
    if not isinstance(raw, str):
        raise InvalidArgument(field.id, "must be text")
    if len(raw) > 10_000:
        raise InvalidArgument(field.id, "is longer than 10000 characters")
    return raw


def due_date(expression: str | None, task: Any, script_engine: Any, now: datetime) -> datetime | None:
    """`camunda:dueDate` as an ISO duration from now (scaled like timers), an ISO date-time, or an
    expression on the task's data that yields either."""
    if not expression:
        return None
    text = expression.strip()
    if not (text.upper().startswith("P") or text[:1].isdigit()):
        try:
            text = str(script_engine.evaluate(task, text))
        except Exception:
            return None
    try:
        if text.upper().startswith("P"):
            parsed = TimerEventDefinition.parse_iso_duration(text)
            seconds = TimerEventDefinition.get_timedelta_from_start(parsed, now).total_seconds()
            return now + timedelta(seconds=seconds * script_engine.time_scale)
        result: datetime = TimerEventDefinition.get_datetime(text)
        return result
    except Exception:
        return None
