"""Restricted evaluation of the scripts and conditions diagrams carry, so a deployed diagram cannot run
arbitrary Python.

Code is compiled with RestrictedPython (no imports, no names or attributes starting with `_`, guarded
attribute access and writes) and runs against an explicit allow-list of builtins. Two limits bound what
remains: a CPU-time budget enforced by a trace function on Python-level execution, and guards on the
operators and builtins that could otherwise spend unbounded time or memory inside C code (`**`, `*`, `<<`,
`range`). A violation raises `ScriptViolation`; the engine turns it into an incident.
"""

from __future__ import annotations

import ast
import math
import operator
import sys
import time
from collections.abc import Callable, Mapping, MutableMapping
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from types import CodeType, FrameType
from typing import Any, ClassVar

from RestrictedPython.compile import compile_restricted_eval, compile_restricted_exec
from RestrictedPython.Guards import (
    full_write_guard,
    guarded_iter_unpack_sequence,
    guarded_unpack_sequence,
    safer_getattr,
)
from RestrictedPython.transformer import RestrictingNodeTransformer
from SpiffWorkflow.bpmn.script_engine import PythonScriptEngine
from SpiffWorkflow.bpmn.script_engine.python_environment import BasePythonScriptEngineEnvironment

MAX_SEQUENCE = 100_000
"""The longest string, list or range a script may build with `*` or `range`."""
MAX_INT_BITS = 4096
"""The largest integer (in bits) `**` and `<<` may produce."""


class ScriptViolation(Exception):
    """A diagram's script tried something it may not do, or ran out of its time budget."""


class _Policy(RestrictingNodeTransformer):
    """RestrictedPython's policy plus guarded `**`, `*` and `<<`."""

    _GUARDED: ClassVar[dict[type, str]] = {ast.Pow: "**", ast.Mult: "*", ast.LShift: "<<"}

    def visit_Import(self, node: ast.Import) -> ast.AST:
        self.error(node, "import statements are not allowed")
        return node

    def visit_ImportFrom(self, node: ast.ImportFrom) -> ast.AST:
        self.error(node, "import statements are not allowed")
        return node

    def visit_BinOp(self, node: ast.BinOp) -> ast.AST:
        node = self.node_contents_visit(node)
        symbol = self._GUARDED.get(type(node.op))
        if symbol is None:
            return node
        call = ast.Call(
            func=ast.Name("_binop_", ast.Load()),
            args=[ast.Constant(symbol), node.left, node.right],
            keywords=[],
        )
        return ast.fix_missing_locations(ast.copy_location(call, node))


def _size(value: Any) -> int:
    return len(value) if isinstance(value, str | bytes | list | tuple) else 0


def _binop(symbol: str, left: Any, right: Any) -> Any:
    if symbol == "**":
        if (
            isinstance(left, int)
            and isinstance(right, int)
            and right > 0
            and abs(left) > 1
            and right * abs(left).bit_length() > MAX_INT_BITS
        ):
            raise ScriptViolation(f"{left} ** {right} is too large")
        return left**right
    if symbol == "<<":
        if isinstance(right, int) and right > MAX_INT_BITS:
            raise ScriptViolation(f"<< {right} is too large")
        return left << right
    # "*": repetition of a sequence
    for sequence, times in ((left, right), (right, left)):
        if _size(sequence) and isinstance(times, int) and _size(sequence) * times > MAX_SEQUENCE:
            raise ScriptViolation(f"a sequence longer than {MAX_SEQUENCE} items")
    return left * right


_INPLACE: dict[str, Callable[[Any, Any], Any]] = {
    "+=": operator.add,
    "-=": operator.sub,
    "/=": operator.truediv,
    "//=": operator.floordiv,
    "%=": operator.mod,
    "&=": operator.and_,
    "|=": operator.or_,
    "^=": operator.xor,
    ">>=": operator.rshift,
}


def _inplacevar(op: str, left: Any, right: Any) -> Any:
    if op in ("*=", "**=", "<<="):
        return _binop(op[:-1], left, right)
    if op not in _INPLACE:
        raise ScriptViolation(f"operator {op} is not allowed")
    return _INPLACE[op](left, right)


def _range(*args: int) -> range:
    result = range(*args)
    if len(result) > MAX_SEQUENCE:
        raise ScriptViolation(f"range longer than {MAX_SEQUENCE}")
    return result


def _getitem(container: Any, key: Any) -> Any:
    return container[key]


_BUILTINS: dict[str, Any] = dict(
    {
        "None": None,
        "True": True,
        "False": False,
        "abs": abs,
        "all": all,
        "any": any,
        "bool": bool,
        "dict": dict,
        "divmod": divmod,
        "enumerate": enumerate,
        "filter": filter,
        "float": float,
        "frozenset": frozenset,
        "int": int,
        "isinstance": isinstance,
        "len": len,
        "list": list,
        "map": map,
        "max": max,
        "min": min,
        "range": _range,
        "reversed": reversed,
        "round": round,
        "set": set,
        "sorted": sorted,
        "str": str,
        "sum": sum,
        "tuple": tuple,
        "zip": zip,
        "ValueError": ValueError,
        "KeyError": KeyError,
        "Exception": Exception,
    }
)

SCRIPT_GLOBALS: dict[str, Any] = {
    "__builtins__": _BUILTINS,
    "_getattr_": safer_getattr,
    "_getitem_": _getitem,
    "_getiter_": iter,
    "_iter_unpack_sequence_": guarded_iter_unpack_sequence,
    "_unpack_sequence_": guarded_unpack_sequence,
    "_write_": full_write_guard,
    "_inplacevar_": _inplacevar,
    "_binop_": _binop,
    # Values diagrams may use: dates and exact decimals.
    "Decimal": Decimal,
    "date": date,
    "datetime": datetime,
    "timedelta": timedelta,
    "timezone": timezone,
    "math": math,
}
"""What every script and condition sees besides the task's data."""


@lru_cache(maxsize=4096)
def _compile(source: str, mode: str) -> CodeType:
    compiler = compile_restricted_eval if mode == "eval" else compile_restricted_exec
    result = compiler(source.strip() if mode == "eval" else source, policy=_Policy)
    if result.errors:
        raise ScriptViolation("; ".join(result.errors))
    code: CodeType | None = result.code
    assert code is not None
    return code


def check(source: str, mode: str = "exec") -> None:
    """Raises ScriptViolation when `source` would be refused at run time (used at deploy time)."""
    _compile(source, mode)


class _Budget:
    """Stops Python-level execution once this thread has used `seconds` of CPU time."""

    def __init__(self, seconds: float) -> None:
        self._deadline = time.thread_time() + seconds
        self._seconds = seconds

    def _trace(self, frame: FrameType, event: str, arg: Any) -> Callable[..., Any] | None:
        if time.thread_time() > self._deadline:
            raise ScriptViolation(f"script used more than {self._seconds * 1000:.0f} ms of CPU time")
        return self._trace

    def run(self, fn: Callable[[], Any]) -> Any:
        previous = sys.gettrace()
        sys.settrace(self._trace)
        try:
            return fn()
        finally:
            sys.settrace(previous)


class RestrictedEnvironment(BasePythonScriptEngineEnvironment):  # type: ignore[misc]
    """A SpiffWorkflow script environment that evaluates task data with the restrictions above."""

    def __init__(self, time_limit_ms: int = 1000) -> None:
        super().__init__(dict(SCRIPT_GLOBALS))
        self._seconds = time_limit_ms / 1000

    def evaluate(
        self, expression: str, context: Mapping[str, Any], external_context: Mapping[str, Any] | None = None
    ) -> Any:
        code = _compile(expression, "eval")
        namespace = {**self.globals, **(external_context or {}), **context}
        return _Budget(self._seconds).run(lambda: eval(code, namespace))

    def execute(
        self,
        script: str,
        context: MutableMapping[str, Any],
        external_context: Mapping[str, Any] | None = None,
    ) -> bool:
        code = _compile(script, "exec")
        namespace = {**self.globals, **(external_context or {}), **context}
        _Budget(self._seconds).run(lambda: exec(code, namespace))
        hidden = set(self.globals) | set(external_context or {})
        result = {
            key: value
            for key, value in namespace.items()
            if key not in hidden and not key.startswith("_") and not callable(value)
        }
        context.clear()
        context.update(result)
        return True

    def call_service(self, context: Any, **kwargs: Any) -> Any:
        raise ScriptViolation("service tasks are handed to workers, never called from a script")


class ScriptEngine(PythonScriptEngine):  # type: ignore[misc]
    """Restricted evaluation; timers can be shortened by configuration without editing diagrams:
    `timer_overrides` replaces the expression of the timers it names (by element id), `time_scale`
    multiplies every other duration and cycle (1.0 keeps them as written)."""

    def __init__(
        self,
        time_limit_ms: int = 1000,
        time_scale: float = 1.0,
        timer_overrides: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(environment=RestrictedEnvironment(time_limit_ms))
        self.time_scale = time_scale
        self.timer_overrides = dict(timer_overrides or {})

    def evaluate(self, task: Any, expression: str, external_context: Mapping[str, Any] | None = None) -> Any:
        element_id = _timer_element(task, expression)
        if element_id is not None and element_id in self.timer_overrides:
            return self.timer_overrides[element_id]
        value = super().evaluate(task, expression, external_context)
        if element_id is not None and self.time_scale != 1.0 and isinstance(value, str):
            return scale_timer_expression(value, self.time_scale)
        return value

    def start_timer(self, element_id: str, expression: str) -> str:
        """A timer start event's value (no task exists yet), with the same overrides and scale."""
        if element_id in self.timer_overrides:
            return self.timer_overrides[element_id]
        value = str(self.environment.evaluate(expression, {}))
        return scale_timer_expression(value, self.time_scale) if self.time_scale != 1.0 else value


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
