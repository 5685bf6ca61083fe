"""Raw inputs (gRPC request fields, job variables, form values) into typed values; errors name the field.

Every parser takes the field's name first and the raw value second (then its options), so a call reads
`choice("stage", request.stage, Stage)` everywhere. Fields arrive as loose values — an empty string for
"not given", a form's "yes" for a boolean, a number or a numeric string, a list or text with one item
per line — and these helpers give one behaviour to all of them. This module imports nothing but the
standard library and the domain errors, so domain modules can use it and stay plain.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import TypeVar

from consultflow.platform.errors import InvalidArgument, shown

E = TypeVar("E", bound=StrEnum)

TEXT_LIMIT = 2000
NAME_LIMIT = 200
_TEXT_CONTROLS = "\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f"
_NAME_CONTROLS = f"{_TEXT_CONTROLS}\t\n\r\u2028\u2029\u202a-\u202e\u2066-\u2069"
_CONTROL_IN_TEXT = re.compile(f"[{_TEXT_CONTROLS}]")
_CONTROL_IN_NAME = re.compile(f"[{_NAME_CONTROLS}]")
NAME_FIELDS = frozenset(
    {
        "id", "name", "key", "operation", "assignee", "owner", "reviewer", "actor", "signatory",
        "respondent", "project_manager", "candidate_group", "candidate_groups", "candidate_user",
        "candidate_users", "status", "state", "kind", "stage", "role", "type", "source", "subject",
    }
)  # fmt: skip
NAME_FIELD_SUFFIXES = ("_id", "_ids", "_key", "_token", "_by", "_name", "_code")
"""A request field with one of these names (or name endings) holds a name, id or key, not free text."""
_TRUE = frozenset({"true", "yes", "y", "1"})
_FALSE = frozenset({"false", "no", "n", "0"})


def is_name_field(field: str) -> bool:
    """Whether a request field named `field` holds a name, id or key (so no line breaks or tabs either)."""
    leaf = field.rsplit(".", 1)[-1]
    return leaf in NAME_FIELDS or leaf.endswith(NAME_FIELD_SUFFIXES)


def refuse_control_characters(field: str, text: str, name: bool) -> str:
    """`text` unchanged, or InvalidArgument naming `field` when it holds a control character: none at all
    in free text but tab and line breaks; in a name, id or key (`name`) not those either, nor the Unicode
    line separators and bidirectional overrides that make a name display as another. Such characters
    forge log lines and terminal output, and a name with them cannot be told from another."""
    found = (_CONTROL_IN_NAME if name else _CONTROL_IN_TEXT).search(text)
    if found is None:
        return text
    where = f"U+{ord(found.group()):04X} at position {found.start()}"
    return _refused(field, f"contains a control character ({where})")


def _refused(field: str, problem: str) -> str:
    raise InvalidArgument(field, problem)


def _text(value: object) -> str:
    """A loose value as trimmed text: null is empty, numbers are written out."""
    return "" if value is None else str(value).strip()


def required_text(field: str, value: object, limit: int = TEXT_LIMIT) -> str:
    """A trimmed, non-empty text of at most `limit` characters, with no control characters but tab and
    line breaks."""
    text = _text(value)
    if not text:
        raise InvalidArgument(field, "is required")
    if len(text) > limit:
        raise InvalidArgument(field, f"is longer than {limit} characters")
    return refuse_control_characters(field, text, name=False)


def optional_text(field: str, value: object, limit: int = TEXT_LIMIT) -> str:
    """A trimmed text of at most `limit` characters, possibly empty (null counts as empty)."""
    text = _text(value)
    if len(text) > limit:
        raise InvalidArgument(field, f"is longer than {limit} characters")
    return refuse_control_characters(field, text, name=False)


def name(field: str, value: object, limit: int = NAME_LIMIT) -> str:
    """A name, id or key: trimmed, non-empty, at most `limit` characters, with no control characters."""
    return refuse_control_characters(field, required_text(field, value, limit), name=True)


def choice(field: str, value: object, kind: type[E]) -> E:
    """`value` as a member of `kind` (case does not matter); the error lists the allowed values."""
    text = _text(value)
    for member in kind:
        if text == member.value or text.lower() == member.value.lower():
            return member
    allowed = ", ".join(member.value for member in kind)
    problem = "is required: one of" if not text else f"{shown(text)} is not one of"
    raise InvalidArgument(field, f"{problem} {allowed}")


def optional_choice(field: str, value: object, kind: type[E]) -> E | None:
    """Like `choice`, but empty means "not given"."""
    return choice(field, value, kind) if _text(value) else None


def iso_date(field: str, value: object) -> date:
    """An ISO date `YYYY-MM-DD` (a date value is taken as it is, a date-time as its date)."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    text = _text(value)
    try:
        return date.fromisoformat(text)
    except ValueError:
        problem = "is required" if not text else f"{shown(text)} is not a date"
        raise InvalidArgument(field, f"{problem} (YYYY-MM-DD)") from None


def optional_date(field: str, value: object) -> date | None:
    """Like `iso_date`, but empty means "not given"."""
    return iso_date(field, value) if isinstance(value, date) or _text(value) else None


def iso_datetime(field: str, value: object) -> datetime:
    """An ISO 8601 date-time; one without an offset is taken as UTC."""
    if isinstance(value, datetime):
        moment = value
    else:
        text = _text(value)
        if not text:
            raise InvalidArgument(field, "is required (ISO 8601 date-time)")
        try:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise InvalidArgument(field, f"{shown(text)} is not an ISO 8601 date-time") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def number(field: str, value: object) -> float:
    """A finite number, from a number or a numeric string (process variables may hold either)."""
    if value is None or isinstance(value, bool) or (isinstance(value, str) and not value.strip()):
        raise InvalidArgument(field, "is required: a number")
    if not isinstance(value, int | float | str):
        raise InvalidArgument(field, f"{shown(value)} is not a number")
    try:
        result = float(value)
    except ValueError:
        raise InvalidArgument(field, f"{shown(value)} is not a number") from None
    if not math.isfinite(result):
        raise InvalidArgument(field, "must be a finite number")
    return result


def yes_no(field: str, value: object) -> bool:
    """A boolean, or the words a form may send for one (true/false, yes/no, y/n, 1/0)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str | int):
        text = str(value).strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
    raise InvalidArgument(field, f"{shown(value)} is not a yes/no value")


def entries(
    field: str, value: object, separators: str, limit: int, are_names: bool = False
) -> tuple[str, ...]:
    """Items from a list, or from text split at any of `separators`; blanks dropped, repeats kept once."""
    if value is None:
        return ()
    if isinstance(value, str):
        items: Iterable[object] = re.split(f"[{re.escape(separators)}]", value)
    elif isinstance(value, list | tuple):
        items = value
    else:
        raise InvalidArgument(field, "must be a list or text with one item per line")
    result: list[str] = []
    for item in items:
        text = _text(item)
        if len(text) > limit:
            raise InvalidArgument(field, f"{text[:40]!r}… is longer than {limit} characters")
        refuse_control_characters(field, text, name=are_names)
        if text and text not in result:
            result.append(text)
    return tuple(result)


def names(field: str, value: object, limit: int = NAME_LIMIT) -> tuple[str, ...]:
    """People or things named in a list, or in text separated by commas, semicolons or new lines."""
    return entries(field, value, ",;\n", limit, are_names=True)


def lines(field: str, value: object, limit: int = TEXT_LIMIT) -> tuple[str, ...]:
    """Items in a list, or in text with one item per line."""
    return entries(field, value, "\n", limit)


@contextmanager
def renamed_fields(**renames: str) -> Iterator[None]:
    """Re-raises validation errors under the caller's field names, e.g.
    `renamed_fields(description="risk_description")` around a use case a job calls."""
    try:
        yield
    except InvalidArgument as error:
        if error.field not in renames:
            raise
        raise InvalidArgument(renames[error.field], error.problem) from error
