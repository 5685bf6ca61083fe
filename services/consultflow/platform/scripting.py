"""Restricted evaluation of the scripts and conditions diagrams carry, so a deployed diagram cannot run
arbitrary Python nor stop the engine.

Code is compiled with RestrictedPython plus guards on every operation that can grow a value
(platform/sandbox_rules.py). What is trivially safe (no loops, comprehensions or definitions; calls only to
functions and methods whose cost and output are bounded by their input) runs here, in-process and cheap:
conditions, parameters and timer expressions run on every step. Everything else runs in a warm sandbox
process (platform/sandbox.py) where the OS bounds CPU and memory, C code included. A violation raises
`ScriptViolation` naming the limit; the engine turns it into an incident.
"""

from __future__ import annotations

import base64
import reprlib
from calendar import monthrange
from collections.abc import Mapping, MutableMapping
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import UUID

from SpiffWorkflow.bpmn.exceptions import WorkflowTaskException
from SpiffWorkflow.bpmn.script_engine import PythonScriptEngine
from SpiffWorkflow.bpmn.script_engine.python_environment import BasePythonScriptEngineEnvironment

from consultflow.platform.jsonutil import json_size_within
from consultflow.platform.limits import DEFAULT_LIMITS, Limits
from consultflow.platform.sandbox import SandboxPool, pool_for
from consultflow.platform.sandbox_rules import (
    SCRIPT_ERRORS,
    Compiled,
    ScriptViolation,
    compile_source,
    guards_for,
    over,
    result_variables,
)
from consultflow.platform.sandbox_rules import check as _check

__all__ = ["RestrictedEnvironment", "ScriptEngine", "ScriptViolation", "check"]

_ERRORS: dict[str, type[Exception]] = {e.__name__: e for e in (*SCRIPT_ERRORS, RecursionError)}
"""The errors a sandbox process reports by name, raised again as themselves."""


def check(source: str, mode: str = "exec", limits: Limits | None = None) -> None:
    """Raises ScriptViolation when `source` would be refused at run time (used at deploy time): it is longer
    than `limits.max_script_length`, does not compile under the policy, or uses a name the sandbox does
    not provide (`open`, `eval`, `getattr`, ...).
    """
    _check(source, mode, limits)


class RestrictedEnvironment(BasePythonScriptEngineEnvironment):  # type: ignore[misc]
    """A SpiffWorkflow script environment: trivially safe code in-process, the rest in the sandbox pool."""

    def __init__(self, limits: Limits = DEFAULT_LIMITS, pool: SandboxPool | None = None) -> None:
        self.limits = limits
        super().__init__(guards_for(limits).globals)
        self._pool = pool

    @property
    def pool(self) -> SandboxPool:
        if self._pool is None:
            self._pool = pool_for(self.limits)
        return self._pool

    def evaluate(
        self, expression: str, context: Mapping[str, Any], external_context: Mapping[str, Any] | None = None
    ) -> Any:
        compiled = compile_source(expression, "eval")
        if compiled.trivial:
            namespace = {**self.globals, **(external_context or {}), **context}
            value = eval(compiled.code, namespace)
            # a payload, a parameter or a collection may be stored: never one that only looks small
            guards_for(self.limits).check_stored(
                value, "the expression's value", self.limits.max_variable_bytes
            )
            return value
        reply = self._run(compiled, context, external_context)
        return reply.get("value")

    def execute(
        self,
        script: str,
        context: MutableMapping[str, Any],
        external_context: Mapping[str, Any] | None = None,
    ) -> bool:
        compiled = compile_source(script, "exec")
        external = external_context or {}
        if compiled.trivial:
            namespace = {**self.globals, **external, **context}
            exec(compiled.code, namespace)
            keep = set(context)
            result = {
                k: v
                for k, v in result_variables(namespace, self.globals, keep).items()
                if k in keep or k not in external
            }
            self._check_sizes(result, compiled)
            context.clear()
            context.update(result)
            return True
        reply = self._run(compiled, context, external)
        for name in reply.get("deleted", []):
            context.pop(name, None)
        for name, value in reply.get("vars", {}).items():
            if name in context or name not in external:
                context[name] = value
        return True

    def _run(
        self, compiled: Compiled, context: Mapping[str, Any], external: Mapping[str, Any] | None
    ) -> dict[str, Any]:
        """Runs `compiled` in the pool with the variables it names; raises what the script raised."""
        variables = {n: context[n] for n in compiled.names if n in context}
        for name in compiled.names:
            if external and name in external and name not in context:
                variables[name] = external[name]
        reply = self.pool.run(compiled, variables, self.limits)
        if "violation" in reply:
            raise ScriptViolation(str(reply["violation"]), str(reply.get("limit", "")))
        error = reply.get("error")
        if isinstance(error, dict):
            kind = _ERRORS.get(str(error.get("type")), Exception)
            message = str(error.get("message", ""))
            line = error.get("line")
            suffix = f" (line {line})" if compiled.mode == "exec" and line else ""
            if kind is Exception and error.get("type") != "Exception":
                message = f"{error.get('type')}: {message}"
            raise kind(message + suffix)
        return reply

    def _check_sizes(self, variables: Mapping[str, Any], compiled: Compiled) -> None:
        """In-process results: every variable the script names, measured as JSON."""
        guards = guards_for(self.limits)
        for name in sorted(compiled.names & variables.keys()):
            value = variables[name]
            if isinstance(value, int) and not isinstance(value, bool):
                guards.check_int(value)
            try:
                size = json_size_within(value, self.limits.max_variable_bytes, _plain)
            except (TypeError, ValueError) as exc:
                raise ScriptViolation(f"variable {name} cannot be stored: {exc}") from exc
            if size > self.limits.max_variable_bytes:
                raise over(
                    "max_variable_bytes",
                    f"variable {name} is {size} bytes as JSON, more than {self.limits.max_variable_bytes}",
                )

    def call_service(self, context: Any, **kwargs: Any) -> Any:
        raise ScriptViolation("service tasks are handed to workers, never called from a script")


def _plain(value: Any) -> Any:
    """How a stored value's size is measured: about as long as Spiff's serializer writes it."""
    if isinstance(value, Decimal | UUID | timedelta):
        return str(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, set | frozenset):
        return list(value)
    if isinstance(value, bytes | bytearray):
        return base64.b64encode(value).decode()
    raise TypeError(f"a {type(value).__name__} is not a value a variable may hold")


class ScriptEngine(PythonScriptEngine):  # type: ignore[misc]
    """Restricted evaluation; timers can be shortened by configuration without editing diagrams:
    `timer_overrides` replaces the expression of the timers it names (by element id), `time_scale`
    multiplies every other duration and cycle (1.0 keeps them as written)."""

    def __init__(
        self,
        limits: Limits = DEFAULT_LIMITS,
        time_scale: float = 1.0,
        timer_overrides: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(environment=RestrictedEnvironment(limits))
        self.time_scale = time_scale
        self.timer_overrides = dict(timer_overrides or {})

    def evaluate(self, task: Any, expression: str, external_context: Mapping[str, Any] | None = None) -> Any:
        element_id = _timer_element(task, expression)
        if element_id is not None and element_id in self.timer_overrides:
            return self.timer_overrides[element_id]
        try:
            value = super().evaluate(task, expression, external_context)
        except WorkflowTaskException as exc:
            # Spiff's text is only "Error evaluating expression ...": the incident must say why (the limit)
            cause = exc.__cause__ or exc.__context__
            if cause is not None:
                exc.add_note(f"{type(cause).__name__}: {_short_text(cause)}")
            raise
        if element_id is not None:
            _check_timer_value(task, value)
        if element_id is not None and self.time_scale != 1.0 and isinstance(value, str):
            return scale_timer_expression(value, self.time_scale)
        return value

    def create_task_exec_exception(self, task: Any, script: str, err: Exception) -> Any:
        """Spiff's version appends `err.args[0]` to a string: `{}[5]`, `raise ValueError(5)` or a Decimal
        error (whose argument is a list) would end as an engine error instead of the script's incident."""
        if err.args and not isinstance(err.args[0], str):
            err.args = (_short(err.args[0]), *err.args[1:])
        return super().create_task_exec_exception(task, script, err)

    def start_timer(self, element_id: str, expression: str) -> str:
        """A timer start event's value (no task exists yet), with the same overrides and scale."""
        if element_id in self.timer_overrides:
            return self.timer_overrides[element_id]
        value = str(self.environment.evaluate(expression, {}))
        return scale_timer_expression(value, self.time_scale) if self.time_scale != 1.0 else value


_SHORT = reprlib.Repr()
_SHORT.maxstring = _SHORT.maxother = 200


def _short_text(exc: BaseException) -> str:
    text = str(exc) if not exc.args or isinstance(exc.args[0], str) else _short(exc.args[0])
    return text if len(text) <= 500 else text[:500] + "..."


def _short(value: Any) -> str:
    """An exception argument as a bounded text (a script may raise with any value, however large)."""
    if isinstance(value, type) and issubclass(value, Exception):
        return value.__name__
    if isinstance(value, list) and value and all(isinstance(v, type) for v in value):
        return ", ".join(v.__name__ for v in value)  # decimal's signals: [<class 'decimal.Overflow'>]
    return _SHORT.repr(value)


def _check_timer_value(task: Any, value: Any) -> None:
    """A timer expression's value, checked where the expression ran: a value that is not an ISO 8601
    string of the timer's kind (or a duration past the year 9999) is the timer's script incident, not an
    engine error in the timer code that reads it next."""
    from SpiffWorkflow.bpmn.specs.event_definitions.timer import (
        CycleTimerEventDefinition,
        DurationTimerEventDefinition,
        TimerEventDefinition,
    )

    definition: Any = getattr(task.task_spec, "event_definition", None)
    duration = isinstance(definition, DurationTimerEventDefinition)
    cycle = isinstance(definition, CycleTimerEventDefinition)
    kind = "duration such as PT1H" if duration else "repeating interval such as R3/PT1H" if cycle else "date"
    try:
        if not isinstance(value, str):
            raise TypeError(f"{type(value).__name__} is not str")
        text = value.strip()
        if cycle:
            parts = text.upper().replace("--", "/").strip("R").split("/")
            if len(parts) == 2 and parts[1].startswith("P"):
                int(parts[0] or "-1")
                timedelta_from_start(TimerEventDefinition.parse_iso_duration(parts[1]))
            else:
                TimerEventDefinition.parse_iso_recurring_interval(text)
        elif duration or text.upper().startswith("P"):
            timedelta_from_start(TimerEventDefinition.parse_iso_duration(text))
        else:
            TimerEventDefinition.parse_time_or_duration(text)
    except Exception as exc:  # whatever Spiff's parsers raise for a bad value
        why = str(exc)[:200] or type(exc).__name__
        raise WorkflowTaskException(
            f"the timer expression gave {_SHORT.repr(value)}, not an ISO 8601 {kind} ({why})",
            task=task,
            exception=exc,
        ) from exc


def _timer_element(task: Any, expression: str) -> str | None:
    """The id of the timer event whose expression this is, or None when it is no timer's."""
    from SpiffWorkflow.bpmn.specs.event_definitions.timer import TimerEventDefinition

    spec: Any = getattr(task, "task_spec", None)
    definition = getattr(spec, "event_definition", None)
    if isinstance(definition, TimerEventDefinition):
        return str(spec.bpmn_id) if definition.expression == expression else None
    for index, member in enumerate(getattr(definition, "event_definitions", None) or []):
        # an event-based gateway: its timers belong to the events that follow it
        if isinstance(member, TimerEventDefinition) and member.expression == expression:
            return str(spec.outputs[index].bpmn_id)
    return None


def _first_of_month(year: int, month0: int) -> date:
    """The first day of month `month0` (0-based, may exceed 11) counted from January of `year`."""
    year, month0 = year + month0 // 12, month0 % 12
    if not 1 <= year <= 9999:
        raise ValueError("a timer duration reaches beyond the year 9999")
    return date(year, month0 + 1, 1)


def _month_days(first: date) -> int:
    return monthrange(first.year, first.month)[1]


def _take_months(parsed_duration: dict[str, Any], at: datetime) -> tuple[float, int, float, int]:
    """Takes years and months out of a parsed duration: (months, whole months, days so far, the month
    index of `at`); a duration past the year 9999 is a ValueError."""
    months = parsed_duration.pop("months", 0) + parsed_duration.pop("years", 0) * 12
    whole = int(months)
    if abs(whole) > 12 * 10_000:
        raise ValueError("a timer duration reaches beyond the year 9999")
    return months, whole, parsed_duration.pop("days", 0), at.year * 12 + at.month - 1


def timedelta_from_start(parsed_duration: dict[str, Any], start: datetime | None = None) -> timedelta:
    """Spiff's `get_timedelta_from_start` in constant time: Spiff adds up the days of every month of the
    duration one month at a time, so `P9999999999Y` looped for hours inside a deploy or a step. Same
    result; a duration past the year 9999 is a ValueError (a deploy refusal or the timer's incident)."""
    months, whole, days, here = _take_months(parsed_duration, start or datetime.now(UTC))
    if whole > 0:
        days += (_first_of_month(0, here + whole) - _first_of_month(0, here)).days
    days += (months - whole) * _month_days(_first_of_month(0, here + max(whole, 0)))
    return timedelta(days=days, **parsed_duration)


def timedelta_from_end(parsed_duration: dict[str, Any], end: datetime) -> timedelta:
    """Spiff's `get_timedelta_from_end` in constant time (it loops one month at a time, like the above)."""
    months, whole, days, here = _take_months(parsed_duration, end)
    if whole > 0:
        days += (_first_of_month(0, here) - _first_of_month(0, here - whole)).days
    days += (months - whole) * _month_days(_first_of_month(0, here - max(whole, 0) - 1))
    return timedelta(days=days, **parsed_duration)


def _bound_spiff_durations() -> None:
    """Every caller of Spiff's duration arithmetic (Spiff's own timer tasks, our timer and deploy code)
    gets the constant-time version: the cause was the loop, not one call site."""
    from SpiffWorkflow.bpmn.specs.event_definitions.timer import TimerEventDefinition

    TimerEventDefinition.get_timedelta_from_start = staticmethod(timedelta_from_start)
    TimerEventDefinition.get_timedelta_from_end = staticmethod(timedelta_from_end)


_bound_spiff_durations()


def load_timer_overrides(path: str) -> dict[str, str]:
    """The `[timers]` table of a TOML file: element id → ISO 8601 duration, cycle or date."""
    import tomllib

    if not path:
        return {}
    data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    timers = data.get("timers", {})
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in timers.items()):
        raise ValueError(f"{path}: [timers] must map element ids to ISO 8601 strings")
    return dict(timers)


def scale_timer_expression(value: str, scale: float) -> str:
    """`P30D` × 0.001 → `PT2592.0S`; cycles `R3/P1D` keep their count; absolute dates stay as they are."""
    from SpiffWorkflow.bpmn.specs.event_definitions.timer import TimerEventDefinition

    text = value.strip()
    upper = text.upper()
    if upper.startswith("P"):
        parsed = TimerEventDefinition.parse_iso_duration(text)
        seconds = TimerEventDefinition.get_timedelta_from_start(parsed).total_seconds()
        return f"PT{max(seconds * scale, 0.001):.3f}S"
    if upper.startswith("R"):
        parts = text.split("/")
        return "/".join(scale_timer_expression(p, scale) if p.upper().startswith("P") else p for p in parts)
    return text
