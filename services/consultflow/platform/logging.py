"""Structured logging: one JSON object per line on stderr, tagged with the component's name, and no
personal data in it.

Process variables, task data and request payloads are logged at DEBUG only, and then with the values of
configured fields (`CONSULTFLOW_LOG_REDACT_FIELDS`: e-mail, phone, contact, address… by default) replaced
by `[redacted]`. Error texts may still quote a value (a script's `int(email)` fails naming the e-mail), so
every record also has e-mail addresses and phone numbers masked in its message and exception text before
it is written, at every level.

Each JSON line also says what it belongs to when that is known: `trace_id` and `span_id` of the current
OpenTelemetry span, and the fields a step or a job handler binds (`bind`): `instance_id`, `business_key`,
`job_key`, `operation`. They are context variables, so a line written on a worker thread, in a nested
call or in SpiffWorkflow carries them without being passed anything.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Iterable, Mapping
from contextvars import ContextVar, Token
from datetime import UTC, datetime
from typing import Any

from opentelemetry import trace

from consultflow.platform.errors import clip

SPIFF_LOGGERS = ("spiff", "spiff.task", "spiff.workflow", "spiff.data", "spiff.dmn", "spiff.metrics")
_RESERVED = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}

DEFAULT_REDACT_FIELDS = (
    "email", "mail", "phone", "mobile", "telephone", "fax", "contact", "address", "birth", "passport",
    "iban", "id_number", "wechat",
)  # fmt: skip
"""Parts of variable names whose values never reach a log (matched case-insensitively, anywhere in the
name: `contact_email`, `clientPhone`, `lead_contact`)."""
REDACTED = "[redacted]"
LINE_LIMIT = 4000
"""The longest message a log line keeps (a traceback four times that): a value quoted in an error never
turns the log into gigabytes."""
DATA_ATTRIBUTES = ("data", "internal_data", "variables")
"""Record attributes (`extra=`) that hold process data: redacted before any handler sees them."""

_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_PHONE = re.compile(
    r"(?<![\w.:/+-])(?!\d{4}-\d\d-\d\d)"  # not inside a word, an address or a number; not a date
    r"(?:\+\d(?:[ ()-]{0,2}\d){6,14}|\d(?:[ ()-]{0,2}\d){9,14})(?![\w.:/-])"
)
"""A number with a leading + and 7–15 digits, or 10–15 digits (a mobile, a landline with its area code);
shorter numbers (sizes, counts) and ISO dates are left alone."""


_configured_fields: tuple[str, ...] = DEFAULT_REDACT_FIELDS
_bound: ContextVar[Mapping[str, str] | None] = ContextVar("consultflow_log_fields", default=None)


def bind(**fields: str) -> Token[Mapping[str, str] | None]:
    """Adds `fields` to every log line written in this context until `unbind(token)`; empty values are
    left out (a business key not known yet)."""
    return _bound.set({**(_bound.get() or {}), **{k: v for k, v in fields.items() if v}})


def unbind(token: Token[Mapping[str, str] | None]) -> None:
    _bound.reset(token)


def bound_fields() -> Mapping[str, str]:
    """The fields `bind` added in this context, with the current trace and span ids."""
    span = trace.get_current_span().get_span_context()
    fields = _bound.get() or {}
    if not span.is_valid:
        return fields
    return {"trace_id": format(span.trace_id, "032x"), "span_id": format(span.span_id, "016x"), **fields}


def redact(value: Any, fields: Iterable[str] | None = None) -> Any:
    """`value` (variables, task data) with the values of fields named like `fields` (by default the
    configured ones) replaced by `[redacted]`, at any depth; other values are kept, so a DEBUG log still
    shows the flow's data. Use it for every `extra={"variables": ...}`."""
    words = tuple(f.lower() for f in (_configured_fields if fields is None else fields))
    return _redact(value, words)


def failure_kind(error: BaseException) -> str:
    """What failed, without the values an error text may quote: the error's kind (and field)."""
    field = getattr(error, "field", None)
    return f"{type(error).__name__} ({field})" if isinstance(field, str) else type(error).__name__


def _redact(value: Any, words: tuple[str, ...]) -> Any:
    if isinstance(value, Mapping):
        return {k: REDACTED if _sensitive(str(k), words) else _redact(v, words) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_redact(item, words) for item in value]
    if isinstance(value, str):
        return mask_personal_data(value)  # an address in a free-text field ("write to ann@…")
    return value


def _sensitive(key: str, words: tuple[str, ...]) -> bool:
    lowered = key.lower()
    return any(word in lowered for word in words)


def mask_personal_data(text: str) -> str:
    """`text` with e-mail addresses and phone numbers masked."""
    return _PHONE.sub("[phone]", _EMAIL.sub("[e-mail]", text))


class PersonalDataFilter(logging.Filter):
    """Keeps process data (`DATA_ATTRIBUTES`) on DEBUG records only, redacted, and masks e-mail addresses
    and phone numbers in every record's text.

    Attached to the handler (every record written) and to SpiffWorkflow's loggers (whose DEBUG records
    carry each task's data), so nothing downstream — a handler, a test's capture — sees the raw values.
    """

    def __init__(self, fields: Iterable[str] = DEFAULT_REDACT_FIELDS, demote: bool = False) -> None:
        super().__init__()
        self._words = tuple(f.lower() for f in fields)
        self._demote = demote

    def filter(self, record: logging.LogRecord) -> bool:
        carried = [name for name in DATA_ATTRIBUTES if name in record.__dict__]
        if carried and self._demote and record.levelno == logging.INFO:
            # SpiffWorkflow's task-state records carry the task's data at INFO: here they are DEBUG.
            record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        for name in carried:
            if record.levelno > logging.DEBUG:  # process data is for DEBUG records only
                del record.__dict__[name]
            else:
                record.__dict__[name] = _redact(record.__dict__[name], self._words)
        message = record.getMessage()
        masked = mask_personal_data(clip(message, LINE_LIMIT))
        if masked != message:
            record.msg, record.args = masked, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = mask_personal_data(clip(record.exc_text, 4 * LINE_LIMIT))
        return True


class JsonFormatter(logging.Formatter):
    """Formats a record as JSON; `extra={...}` fields become top-level keys."""

    def __init__(self, component: str) -> None:
        super().__init__()
        self._component = component

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "component": self._component,
            "logger": record.name,
            "message": record.getMessage(),
            **bound_fields(),
        }
        for key, value in record.__dict__.items():
            if key not in _RESERVED and not key.startswith("_"):
                entry[key] = value
        if record.exc_info or record.exc_text:
            entry["exception"] = record.exc_text or self.formatException(record.exc_info)  # type: ignore[arg-type]
        return json.dumps(entry, default=str, ensure_ascii=False)


def configure_logging(
    component: str,
    level: str = "INFO",
    fmt: str = "json",
    redact_fields: Iterable[str] = DEFAULT_REDACT_FIELDS,
) -> None:
    """Sends every logger's records to stderr in the chosen format, personal data redacted; call once at
    process start."""
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter(component))
    else:
        handler.setFormatter(
            logging.Formatter(f"%(asctime)s {component} %(levelname)s %(name)s: %(message)s")
        )
    global _configured_fields
    _configured_fields = tuple(redact_fields)
    personal_data = PersonalDataFilter(_configured_fields)
    handler.addFilter(personal_data)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.getLogger("nats").setLevel(max(logging.getLevelName(level), logging.WARNING))
    logging.getLogger("alembic").setLevel(logging.WARNING)
    # SpiffWorkflow logs every task state change at INFO, and adds the task's data (a client's e-mail,
    # phone, fees) whenever its logger's *own* level is below INFO — which NOTSET is. The engine's own
    # timeline is the instance history; its loggers stay at WARNING, unless the component logs at DEBUG:
    # then they log too, their records that carry task data demoted to DEBUG and redacted on the logger
    # itself (so no handler, and no test capture, sees the raw data).
    debug = logging.getLevelName(level) == logging.DEBUG
    engine_data = PersonalDataFilter(_configured_fields, demote=True)
    for name in SPIFF_LOGGERS:
        spiff = logging.getLogger(name)
        spiff.setLevel(logging.DEBUG if debug else logging.WARNING)
        for old in [f for f in spiff.filters if isinstance(f, PersonalDataFilter)]:
            spiff.removeFilter(old)
        spiff.addFilter(engine_data)
