"""Raw inputs (gRPC request fields, job variables) into typed values; every error names its field.

gRPC fields and job variables arrive as loose values (an empty string for "not given", a form's "yes"
for a boolean, a number or a numeric string), and a service's API and its job operations often name the
same field differently (`description` vs. `risk_description`). These helpers give one behaviour to all.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from enum import StrEnum
from typing import Any, TypeVar

from consultflow.platform.errors import InvalidArgument
from consultflow.platform.jobs import Job

E = TypeVar("E", bound=StrEnum)

_REQUIRED: Any = object()
_WORDS = {"true": True, "yes": True, "1": True, "false": False, "no": False, "0": False}


def required_text(field: str, value: str, limit: int = 2000) -> str:
    """A trimmed, non-empty text of at most `limit` characters."""
    text = value.strip()
    if not text:
        raise InvalidArgument(field, "is required")
    if len(text) > limit:
        raise InvalidArgument(field, f"is longer than {limit} characters")
    return text


def optional_text(field: str, value: str, limit: int = 2000) -> str:
    """A trimmed text of at most `limit` characters, possibly empty."""
    text = value.strip()
    if len(text) > limit:
        raise InvalidArgument(field, f"is longer than {limit} characters")
    return text


def choice(kind: type[E], field: str, value: str) -> E:
    """`value` as a member of `kind`; the error names the field and the allowed values."""
    try:
        return kind(value.strip())
    except ValueError:
        allowed = ", ".join(member.value for member in kind)
        problem = "is required: one of" if not value.strip() else f"{value!r} is not one of"
        raise InvalidArgument(field, f"{problem} {allowed}") from None


def optional_choice(kind: type[E], field: str, value: str) -> E | None:
    """Like `choice`, but empty means "not given"."""
    return choice(kind, field, value) if value.strip() else None


def iso_date(field: str, value: str) -> date:
    """An ISO date `YYYY-MM-DD`."""
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        problem = "is required" if not value.strip() else f"{value!r} is not a date"
        raise InvalidArgument(field, f"{problem} (YYYY-MM-DD)") from None


def number(field: str, value: object) -> float:
    """A finite number, from a number or a numeric string (process variables may hold either)."""
    if value is None or isinstance(value, bool) or (isinstance(value, str) and not value.strip()):
        raise InvalidArgument(field, "is required: a number")
    try:
        result = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise InvalidArgument(field, f"{value!r} is not a number") from None
    if not math.isfinite(result):
        raise InvalidArgument(field, "must be a finite number")
    return result


def yes_no(field: str, value: object) -> bool:
    """A boolean, or the words a form may send for one (true/false, yes/no, 1/0)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str | int) and str(value).strip().lower() in _WORDS:
        return _WORDS[str(value).strip().lower()]
    raise InvalidArgument(field, f"{value!r} is not a yes/no value")


def job_text(job: Job, name: str, default: Any = _REQUIRED) -> str:
    """A job input as text; a missing required one is an error naming it; null counts as empty."""
    value = job.get(name) if default is _REQUIRED else job.get(name, default)
    return "" if value is None else str(value)


def job_flag(job: Job, name: str) -> bool:
    """A required yes/no job input."""
    return yes_no(name, job.get(name))


@contextmanager
def renamed_fields(**names: str) -> Iterator[None]:
    """Re-raises validation errors under the caller's field names, e.g.
    `renamed_fields(description="risk_description")` around a use case a job calls."""
    try:
        yield
    except InvalidArgument as error:
        if error.field not in names:
            raise
        problem = error.message.removeprefix(f"{error.field}: ")
        raise InvalidArgument(names[error.field], problem) from error
