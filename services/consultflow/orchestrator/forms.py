"""User task forms: checking submitted values against the declared fields, and due dates."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from SpiffWorkflow.bpmn.specs.event_definitions.timer import TimerEventDefinition
from SpiffWorkflow.task import Task

from consultflow.platform import timeutil
from consultflow.platform.errors import InvalidArgument
from consultflow.platform.scripting import ScriptEngine

log = logging.getLogger(__name__)

_TRUE = {"true", "yes", "1"}
_FALSE = {"false", "no", "0"}


@dataclass(frozen=True)
class FormField:
    """One declared field of a user task's form (Camunda's `camunda:formData` vocabulary)."""

    id: str
    label: str
    type: str
    required: bool = False
    values: tuple[tuple[str, str], ...] = ()
    default: str = ""


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
        # Camunda's date type holds a day or a moment: YYYY-MM-DD, or an ISO date-time such as an agreed
        # delivery time a timer waits for (kept with its offset)
        try:
            return date.fromisoformat(str(raw)).isoformat()
        except ValueError:
            pass
        try:
            return datetime.fromisoformat(str(raw).replace("Z", "+00:00")).isoformat()
        except ValueError:
            raise InvalidArgument(
                field.id, f"{raw!r} is not a date (YYYY-MM-DD) or a date-time (YYYY-MM-DDTHH:MM)"
            ) from None
    if not isinstance(raw, str):
        raise InvalidArgument(field.id, "must be text")
    if len(raw) > 10_000:
        raise InvalidArgument(field.id, "is longer than 10000 characters")
    return raw


def _is_literal(text: str) -> bool:
    """A due date written as an ISO duration or date-time (else it is an expression on the task's data)."""
    return text.upper().startswith("P") or text[:1].isdigit()


def due_date_problem(expression: str | None) -> str | None:
    """Why a literal `camunda:dueDate` can never be read (None when it can, or when it is an expression):
    checked at deploy time, so a typo is refused naming its element instead of leaving tasks without one."""
    text = (expression or "").strip()
    if not text or not _is_literal(text):
        return None
    try:
        _parse_due(text, timeutil.now(), 1.0)
    except Exception as exc:
        return f"{text!r} is neither an ISO duration nor an ISO date-time ({exc})"
    return None


def due_date(
    expression: str | None, task: Task, script_engine: ScriptEngine, now: datetime
) -> datetime | None:
    """`camunda:dueDate` as an ISO duration from now (scaled like timers), an ISO date-time, or an
    expression on the task's data that yields either. One that cannot be read leaves the task without a
    due date (a user task must not fail for it) and says why in the log."""
    if not expression:
        return None
    text = expression.strip()
    if not _is_literal(text):
        try:
            text = str(script_engine.evaluate(task, text))
        except Exception as exc:
            kind = type(exc).__name__
            log.warning("user task %s has no due date: %r failed (%s)", _element(task), expression, kind)
            log.debug("user task %s: due date expression failed: %s", _element(task), exc)
            return None
    try:
        return _parse_due(text, now, script_engine.time_scale)
    except Exception as exc:
        # `text` is the expression's value, from the instance's data: DEBUG only.
        log.warning("user task %s has no due date: its value is not a duration or date", _element(task))
        log.debug("user task %s: due date %r: %s", _element(task), text, exc)
        return None


def _parse_due(text: str, now: datetime, time_scale: float) -> datetime:
    if text.upper().startswith("P"):
        parsed = TimerEventDefinition.parse_iso_duration(text)
        seconds = TimerEventDefinition.get_timedelta_from_start(parsed, now).total_seconds()
        return now + timedelta(seconds=seconds * time_scale)
    result: datetime = TimerEventDefinition.get_datetime(text)
    return result


def _element(task: Task) -> str:
    return str(getattr(task.task_spec, "bpmn_id", None) or task.task_spec.name)
