"""The rules a diagram's scripts, conditions and expressions run under, in the orchestrator or in a sandbox
process: RestrictedPython plus guards on every operation that can grow a value, the sorting of code into
"trivially safe" (runs in-process) and the rest (runs in a sandbox process), the deploy-time name check,
and the tagged JSON that carries values across the sandbox boundary.

This module imports no SpiffWorkflow: the sandbox worker process imports it alone, and starts fast.
Why guards at the syntax-tree level: a trace hook or a signal never runs inside C code, so the size of what
an operation will produce is checked before the operation runs (`s.ljust(10**9)`, `"%*d" % (10**8, 1)`,
`f"{x:>100000000}"`, `10 ** 10**8`, `"x".join(...)`), and what may still loop in C goes to a process the OS
stops.
"""

from __future__ import annotations

import ast
import dis
import importlib
import logging
import math
import operator
import re
import string
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from functools import lru_cache, partial
from types import CodeType, ModuleType, SimpleNamespace
from typing import Any

from RestrictedPython.compile import compile_restricted_eval, compile_restricted_exec
from RestrictedPython.Guards import (
    full_write_guard,
    guarded_iter_unpack_sequence,
    guarded_unpack_sequence,
    safer_getattr,
)

from consultflow.platform.limits import Limits
from consultflow.platform.sandbox_policy import (
    MAX_NESTING,
    Policy,
    depth,
    why_not_trivial,
    words,
)
from consultflow.platform.sandbox_policy import (
    ScriptViolation as ScriptViolation,
)
from consultflow.platform.sandbox_policy import (
    over as over,
)

log = logging.getLogger(__name__)

_field_split: Callable[[str], tuple[Any, Any]] = importlib.import_module("_string").formatter_field_name_split
"""How str.format splits a field name into its first part and its attribute or index walk."""
_safer_getattr: Callable[..., Any] = safer_getattr

_LOG10_2 = math.log10(2)


SCRIPT_ERRORS: tuple[type[Exception], ...] = (
    ArithmeticError,
    AssertionError,
    AttributeError,
    Exception,
    IndexError,
    KeyError,
    LookupError,
    NameError,
    OverflowError,
    RuntimeError,
    StopIteration,
    TypeError,
    ValueError,
    ZeroDivisionError,
)
"""The exceptions a script may raise and catch by name."""


# ----------------------------------------------------------------------------------------- compiling


@dataclass(frozen=True)
class Compiled:
    """A compiled script or expression and what is known about it before it runs."""

    source: str
    mode: str
    code: CodeType
    trivial: bool
    why_pooled: str
    """What sends it to a sandbox process (empty when it is trivially safe)."""
    names: frozenset[str]
    """Every name the source mentions: the variables a sandbox process must be given."""
    loads: frozenset[str]
    """Names looked up at run time in the script's namespace (generated helper names included)."""
    stores: frozenset[str]
    """Names the code assigns or deletes."""


@lru_cache(maxsize=4096)
def compile_source(source: str, mode: str) -> Compiled:
    """Compiles with the policy above (cached: the same conditions run on every step)."""
    text = source.strip() if mode == "eval" else source
    compiler = compile_restricted_eval if mode == "eval" else compile_restricted_exec
    try:
        tree = ast.parse(text, mode=mode)
        if depth(tree) > MAX_NESTING:
            raise RecursionError
        result = compiler(text, policy=Policy)
        if result.errors:
            raise ScriptViolation("; ".join(result.errors))
    except SyntaxError:
        result = compiler(text, policy=Policy)  # RestrictedPython words the error with its line
        raise ScriptViolation("; ".join(result.errors) or "the source does not compile") from None
    except (RecursionError, MemoryError) as exc:
        # a long chain `a + b + ...` (a few hundred terms) or deep nesting: the compiler recurses per level
        raise ScriptViolation(
            f"the source nests more than {MAX_NESTING} levels deep (a chain of that many operators, or"
            " deeper brackets): split it into several statements"
        ) from exc
    code: CodeType | None = result.code
    assert code is not None
    loads, stores = _namespace_names(code)
    why = why_not_trivial(tree, PROVIDED_NAMES)
    names = frozenset(n.id for n in ast.walk(tree) if isinstance(n, ast.Name))
    return Compiled(source, mode, code, not why, why, names, frozenset(loads), frozenset(stores))


def _namespace_names(code: CodeType) -> tuple[set[str], set[str]]:
    loads: set[str] = set()
    stores: set[str] = set()
    for instruction in dis.get_instructions(code):
        if instruction.opname in ("LOAD_NAME", "LOAD_GLOBAL"):
            loads.add(str(instruction.argval))
        elif instruction.opname in ("STORE_NAME", "STORE_GLOBAL", "DELETE_NAME", "DELETE_GLOBAL"):
            stores.add(str(instruction.argval))
        elif instruction.opname == "LOAD_BUILD_CLASS":
            loads.add("__build_class__")
    for const in code.co_consts:
        if isinstance(const, CodeType):
            inner_loads, inner_stores = _namespace_names(const)
            loads |= inner_loads
            stores |= inner_stores
    return loads, stores


_PYTHON_BUILTINS = frozenset(dir(__import__("builtins")))


def check(source: str, mode: str = "exec", limits: Limits | None = None) -> Compiled:
    """Raises ScriptViolation when `source` would fail at run time because of the sandbox: it is longer
    than `limits.max_script_length`, does not compile under the policy, or uses a Python builtin or a
    generated helper the sandbox does not provide. Other names may be process variables and stay legal."""
    if limits is not None and len(source) > limits.max_script_length:
        raise over(
            "max_script_length",
            f"the source is {len(source)} characters long, more than {limits.max_script_length}",
        )
    compiled = compile_source(source, mode)
    for name in sorted(compiled.loads - PROVIDED_NAMES - compiled.stores):
        if name.startswith("_"):
            raise ScriptViolation(f"uses {name}, which scripts cannot use")
        if name in _PYTHON_BUILTINS:
            raise ScriptViolation(f"uses the Python builtin {name}, which the sandbox does not provide")
    return compiled


# --------------------------------------------------------------------------------------------- guards


def _bits(value: int) -> int:
    return value.bit_length()


class _PrintCollector:
    """`print` in a script: goes nowhere but a DEBUG line that says a script printed (never the values,
    which may be personal data); `printed` reads as an empty string."""

    def __init__(self, _getattr_: Any = None) -> None:
        pass

    def _call_print(self, *objects: Any, **kwargs: Any) -> None:
        log.debug("a diagram script printed %d value(s) (values are not logged)", len(objects))

    def __call__(self) -> str:
        return ""


_SIZED_METHODS = words(
    "ljust rjust center zfill expandtabs join replace translate format format_map extend to_bytes"
)
_TEXT = (str, bytes, bytearray)


class Guards:
    """The guard functions and the globals a script sees, for one set of limits."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.max_string = limits.max_string_length
        self.max_items = limits.max_collection_items
        self.max_bits = limits.max_int_bits
        self.max_digits = int(limits.max_int_bits * _LOG10_2) + 1
        self.formatter = _SafeFormatter(self)
        self.globals = self._globals()

    # -- values

    def check_text(self, size: int, what: str = "a string") -> None:
        if size > self.max_string:
            raise over("max_string_length", f"{what} longer than {self.max_string} characters")

    def check_items(self, size: int, what: str = "a list or tuple") -> None:
        if size > self.max_items:
            raise over("max_collection_items", f"{what} with more than {self.max_items} items")

    def check_int(self, value: Any) -> Any:
        if isinstance(value, int) and _bits(value) > self.max_bits:
            raise over("max_int_bits", f"an integer larger than {self.max_bits} bits")
        return value

    def check_decimal_digits(self, value: Any) -> None:
        """A Decimal about to become an int (int(), round(), math.floor, %d) must fit max_int_bits."""
        if isinstance(value, Decimal) and value.is_finite() and value.adjusted() > self.max_digits:
            raise over("max_int_bits", f"an integer larger than {self.max_bits} bits")

    def text_bound(self, value: Any) -> int:
        """An upper estimate of len(str(value)) for containers (shared items count each time), capped
        just above max_string_length so the walk stays short."""
        total = 0
        stack = [value]
        while stack and total <= self.max_string:
            item = stack.pop()
            if isinstance(item, _TEXT):
                total += len(item) + 4
            elif isinstance(item, dict):
                total += 2 + 2 * len(item)
                stack.extend(item.keys())
                stack.extend(item.values())
            elif isinstance(item, list | tuple | set | frozenset):
                total += 2 + 2 * len(item)
                stack.extend(item)
            elif isinstance(item, int):
                total += _bits(item) // 3 + 2
            else:
                total += 40
        return total

    def expansion(self, value: Any, cap: int) -> int:
        """How large `value` is written out, in items and characters, each shared item counted every time
        it appears (as `==`, `hash`, `str` and JSON walk it); the walk stops just above `cap`, so it costs
        about `cap` steps at most however the value was built."""
        total = 0
        stack = [value]
        while stack and total <= cap:
            item = stack.pop()
            if isinstance(item, _TEXT):
                total += max(len(item), 1)
            elif isinstance(item, dict):
                total += 1
                stack.extend(item.keys())
                stack.extend(item.values())
            elif isinstance(item, list | tuple | set | frozenset):
                total += 1
                stack.extend(item)
            elif isinstance(item, int):
                total += 1 + _bits(item) // 64
            else:
                total += 1
        return total

    def check_expansion(self, value: Any, cap: int, what: str) -> None:
        """Refuses a sequence whose written-out size (shared items counted each time) is above `cap`."""
        if self.expansion(value, cap) > cap:
            raise over("max_string_length", f"{what} larger than {cap} items and characters written out")

    def check_rendered(self, value: Any) -> None:
        if isinstance(value, dict | list | tuple | set | frozenset):
            self.check_text(self.text_bound(value), "a text rendering")

    # -- operators

    def binop(self, op: str, left: Any, right: Any) -> Any:
        if op == "+":
            return self._add(left, right, operator.add)
        if op == "*":
            self._check_mul(left, right)
            return left * right
        if op == "%":
            if isinstance(left, _TEXT):
                return self.percent(left, right)
            return left % right
        if op == "**":
            self._check_pow(left, right)
            return self.check_int(left**right)
        # "<<"
        if isinstance(left, int) and isinstance(right, int) and left and _bits(left) + right > self.max_bits:
            raise over("max_int_bits", f"an integer larger than {self.max_bits} bits")
        return left << right

    def _add(self, left: Any, right: Any, fn: Callable[[Any, Any], Any]) -> Any:
        if isinstance(left, _TEXT) and isinstance(right, _TEXT):
            self.check_text(len(left) + len(right))
        elif isinstance(left, list | tuple) and isinstance(right, list | tuple):
            self.check_items(len(left) + len(right))
            # `a = a + a` repeated doubles what the shared items weigh, a few items at a time
            self.check_expansion([left, right], self.max_string, "a concatenated sequence")
        elif isinstance(left, int) and isinstance(right, int):
            return self.check_int(fn(left, right))
        return fn(left, right)

    def _check_mul(self, left: Any, right: Any) -> None:
        if isinstance(left, int) and isinstance(right, int):
            if _bits(left) + _bits(right) > self.max_bits + 1:
                raise over("max_int_bits", f"an integer larger than {self.max_bits} bits")
            return
        for sequence, times in ((left, right), (right, left)):
            if not isinstance(times, int) or times <= 1:
                continue
            if isinstance(sequence, _TEXT):
                self.check_text(len(sequence) * times)
            elif isinstance(sequence, list | tuple):
                self.check_items(len(sequence) * times)
                # [big] * n shares one item n times: its text and JSON are n times as long, and so is what
                # `==`, `hash` or storage walk (at every level of nesting, not only the first)
                weight = self.expansion(sequence, self.max_string // times + 1) - 1
                self.check_text(weight * times, "a repeated sequence")

    def _check_pow(self, left: Any, right: Any) -> None:
        if (
            isinstance(left, int)
            and isinstance(right, int)
            and right > 0
            and abs(left) > 1
            and (_bits(abs(left)) - 1) * right + 1 > self.max_bits
        ):
            raise over("max_int_bits", f"an integer larger than {self.max_bits} bits")

    def inplace(self, op: str, left: Any, right: Any) -> Any:
        if op == "+=":
            return self._add(left, right, operator.iadd)
        if op in ("*=", "%=", "**=", "<<="):
            return self.binop(op[:-1], left, right)
        fn = _INPLACE.get(op)
        if fn is None:
            raise ScriptViolation(f"operator {op} is not allowed")
        return fn(left, right)

    # -- formatting

    def fmt(self, value: Any, conversion: int, spec: str) -> str:
        """One `{value!conversion:spec}` of an f-string, `format()` or `str.format`."""
        if conversion in (115, 114, 97):  # !s !r !a
            self.check_rendered(value)
            render = _CONVERSIONS[conversion]
            value = render(value)
        self.check_spec(value, spec)
        if not spec and isinstance(value, dict | list | tuple | set | frozenset):
            self.check_rendered(value)
        result = format(value, spec)
        self.check_text(len(result))
        return result

    def check_spec(self, value: Any, spec: str) -> None:
        for digits in re.findall(r"\d+", spec):
            if len(digits) > 9 or int(digits) > self.max_string:
                raise over("max_string_length", f"a format width or precision above {self.max_string}")
        if (
            isinstance(value, Decimal)
            and spec[-1:] in ("f", "F", "%")
            and value.is_finite()
            and abs(value.adjusted()) > self.max_string
        ):
            raise over("max_string_length", f"a string longer than {self.max_string} characters")

    def fstr(self, *parts: str) -> str:
        self.check_text(sum(len(p) for p in parts))
        return "".join(parts)

    def percent(self, template: Any, args: Any) -> Any:
        """`template % args` for str and bytes: widths, precisions (also `*`) and integer conversions of
        Decimals are checked before formatting."""
        text = template.decode("latin-1") if isinstance(template, bytes | bytearray) else template
        positional = args if isinstance(args, tuple) else (args,)
        index = 0
        total = 0
        for match in _PERCENT.finditer(text):
            if match["type"] == "%":
                continue
            for part in ("width", "precision"):
                raw = match[part]
                if raw == "*":
                    number = positional[index] if index < len(positional) else 0
                    index += 1
                elif raw:
                    if len(raw) > 9:
                        raise over("max_string_length", f"a format width above {self.max_string}")
                    number = int(raw)
                else:
                    number = 0
                total += abs(number) if isinstance(number, int) else 0
            if match["key"] is None:
                value = positional[index] if index < len(positional) else None
                index += 1
            else:
                value = args.get(match["key"]) if isinstance(args, Mapping) else None
            if match["type"] in "diouxXc":
                self.check_decimal_digits(value)
            elif match["type"] in "sra":
                self.check_rendered(value)
        if total > self.max_string:
            raise over("max_string_length", f"format widths and precisions above {self.max_string}")
        result = template % args
        self.check_text(len(result))
        return result

    # -- attribute access: the methods that take a size

    def guarded_getattr(self, obj: Any, name: str, default: Any = None) -> Any:
        if name in _SIZED_METHODS:
            guard = self._sized(obj, name)
            if guard is not None:
                return guard
        return _safer_getattr(obj, name, default)

    def _sized(self, obj: Any, name: str) -> Callable[..., Any] | None:
        owner = obj if isinstance(obj, type) else type(obj)
        if issubclass(owner, _TEXT):
            method = _TEXT_GUARDS.get(name)
        elif issubclass(owner, list) and name == "extend":
            method = Guards._extend
        elif issubclass(owner, int) and name == "to_bytes":
            method = Guards._to_bytes
        else:
            return None
        if method is None:
            return None
        # closures, not functools.partial: a partial's `.args` would hand the script this Guards object
        # (and through it the globals every script shares)
        guards = self
        guard: Callable[..., Any] = method
        if isinstance(obj, type):

            def unbound(target: Any, *args: Any, **kwargs: Any) -> Any:
                return guard(guards, target, *args, **kwargs)

            return unbound

        def bound(*args: Any, **kwargs: Any) -> Any:
            return guard(guards, obj, *args, **kwargs)

        return bound

    def _pad(self, target: Any, width: Any, *rest: Any, name: str) -> Any:
        if isinstance(width, int):
            self.check_text(width, f"a {name}() result")
        return getattr(target, name)(width, *rest)

    def _expandtabs(self, target: Any, tabsize: int = 8) -> Any:
        tab = "\t" if isinstance(target, str) else b"\t"
        if isinstance(tabsize, int):
            self.check_text(len(target) + target.count(tab) * max(tabsize, 0), "an expandtabs() result")
        return target.expandtabs(tabsize)

    def _join(self, target: Any, iterable: Iterable[Any]) -> Any:
        items = list(iterable)
        self.check_items(len(items), "a join() of a list")
        size = sum(len(i) for i in items if isinstance(i, _TEXT)) + len(target) * max(len(items) - 1, 0)
        self.check_text(size, "a join() result")
        return target.join(items)

    def _replace(self, target: Any, old: Any, new: Any, count: int = -1) -> Any:
        if isinstance(old, _TEXT) and isinstance(new, _TEXT) and len(new) > len(old):
            times = target.count(old) if old else len(target) + 1
            if isinstance(count, int) and count >= 0:
                times = min(times, count)
            self.check_text(len(target) + times * (len(new) - len(old)), "a replace() result")
        return target.replace(old, new, count)

    def _translate(self, target: Any, table: Any) -> Any:
        if isinstance(target, str) and isinstance(table, Mapping):
            longest = max((len(v) for v in table.values() if isinstance(v, str)), default=1)
            self.check_text(len(target) * max(longest, 1), "a translate() result")
        return target.translate(table)

    def _format(self, target: Any, *args: Any, **kwargs: Any) -> str:
        if not isinstance(target, str):
            raise TypeError("format() needs a str")
        return self.formatter.vformat(target, args, kwargs)

    def _format_map(self, target: Any, mapping: Mapping[str, Any]) -> str:
        if not isinstance(target, str):
            raise TypeError("format_map() needs a str")
        return self.formatter.vformat(target, (), mapping)

    def _extend(self, target: list[Any], iterable: Iterable[Any]) -> None:
        items = iterable if isinstance(iterable, list | tuple) else list(iterable)
        self.check_items(len(target) + len(items))
        self.check_expansion([target, items], self.max_string, "an extended list")
        target.extend(items)

    def _to_bytes(self, target: int, length: int = 1, *args: Any, **kwargs: Any) -> bytes:
        if isinstance(length, int):
            self.check_text(length, "a to_bytes() result")
        return target.to_bytes(length, *args, **kwargs)

    # -- builtins that take a size or can loop on an unbounded value

    def guarded_range(self, *args: int) -> range:
        result = range(*args)
        self.check_items(len(result), "a range")
        return result

    def guarded_pow(self, base: Any, exp: Any, mod: Any = None) -> Any:
        if mod is None:
            self._check_pow(base, exp)
            return self.check_int(base**exp)
        for value in (base, exp, mod):
            self.check_int(value)
        return pow(base, exp, mod)

    def guarded_round(self, number: Any, ndigits: Any = None) -> Any:
        if ndigits is None:
            self.check_decimal_digits(number)
            return self.check_int(round(number))
        if (
            isinstance(number, int)
            and isinstance(ndigits, int)
            and not isinstance(number, bool)
            and ndigits < -self.max_digits - 1
        ):
            # Python computes 10 ** -ndigits first (seconds inside C code for -10**7); an integer within
            # max_int_bits has fewer digits, so it rounds to 0
            return 0
        return round(number, ndigits)

    def guarded_sum(self, iterable: Iterable[Any], start: Any = 0) -> Any:
        if isinstance(start, list | tuple):
            # Python's sum of lists copies the growing list at every step: concatenate once instead
            items = list(iterable)
            for item in items:
                if not isinstance(item, type(start)):
                    raise TypeError(f"can only concatenate {type(start).__name__} to {type(start).__name__}")
            self.check_items(len(start) + sum(len(i) for i in items))
            result = list(start)
            for item in items:
                result.extend(item)
            return type(start)(result)
        return sum(iterable, start)

    def guarded_format(self, value: Any, spec: str = "") -> str:
        return self.fmt(value, -1, spec)

    def guarded_repr(self, value: Any) -> str:
        self.check_rendered(value)
        return repr(value)

    def apply(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        return fn(*args, **kwargs)

    def getitem(self, container: Any, key: Any) -> Any:
        return container[key]

    def _int_type(self) -> type:
        guards = self

        class _IntMeta(type):
            def __instancecheck__(cls, instance: Any) -> bool:
                return isinstance(instance, int)

            def __subclasscheck__(cls, subclass: type) -> bool:
                return issubclass(subclass, int)

        class GuardedInt(metaclass=_IntMeta):
            """`int`, refusing what would be too large, and still usable in isinstance()."""

            from_bytes = staticmethod(int.from_bytes)

            def __new__(cls, value: Any = 0, *args: Any) -> Any:
                guards.check_decimal_digits(value)
                return guards.check_int(int(value, *args))

        return GuardedInt

    def _str_type(self) -> type:
        guards = self

        class _StrMeta(type):
            def __instancecheck__(cls, instance: Any) -> bool:
                return isinstance(instance, str)

            def __subclasscheck__(cls, subclass: type) -> bool:
                return issubclass(subclass, str)

        class GuardedStr(str, metaclass=_StrMeta):
            """`str`, refusing to render a container longer than max_string_length (a list sharing one big
            item many times renders each time), and still usable in isinstance() and as `str.upper`."""

            def __new__(cls, value: Any = "", *args: Any) -> Any:
                if not args:
                    guards.check_rendered(value)
                return str(value, *args)

        return GuardedStr

    def check_stored(self, value: Any, name: str, max_bytes: int) -> None:
        """Refuses a value whose JSON would be larger than `max_bytes`, measured by a walk that stops there
        (a value sharing one item many times is as long as JSON as written out, and json.dumps would hold
        the process while writing it)."""
        if (
            isinstance(value, dict | list | tuple | set | frozenset)
            and self.expansion(value, max_bytes) > max_bytes
        ):
            raise over("max_variable_bytes", f"{name} is more than {max_bytes} bytes as JSON")

    def _math(self) -> SimpleNamespace:
        public = {k: getattr(math, k) for k in dir(math) if not k.startswith("_")}

        def integral(fn: Callable[[Any], int]) -> Callable[[Any], int]:
            def guarded(x: Any) -> int:
                self.check_decimal_digits(x)
                return int(self.check_int(fn(x)))

            return guarded

        def factorial(n: int) -> int:
            # log2(n!) ≈ n·log2(n/e): refuse before computing
            if isinstance(n, int) and n > 2 and n * (math.log2(n) - 1.4427) > self.max_bits:
                raise over("max_int_bits", f"an integer larger than {self.max_bits} bits")
            return math.factorial(n)

        def combinatoric(fn: Callable[..., int]) -> Callable[..., int]:
            def guarded(n: int, k: int | None = None) -> int:
                if isinstance(n, int) and n > 0:
                    kk = n if k is None else k
                    if (
                        isinstance(kk, int)
                        and 0 < kk <= n
                        and min(kk, n - kk + 1) * math.log2(n) > 4 * self.max_bits
                    ):
                        raise over("max_int_bits", f"an integer larger than {self.max_bits} bits")
                return int(self.check_int(fn(n) if k is None else fn(n, k)))

            return guarded

        def prod(iterable: Iterable[Any], start: Any = 1) -> Any:
            result = start
            for item in iterable:
                if isinstance(result, int) and isinstance(item, int):
                    self._check_mul(result, item)
                result = result * item
            return result

        def lcm(*ints: int) -> int:
            result = 1
            for value in ints:
                result = self.check_int(math.lcm(result, value))
            return result

        public.update(
            floor=integral(math.floor),
            ceil=integral(math.ceil),
            trunc=integral(math.trunc),
            factorial=factorial,
            comb=combinatoric(math.comb),
            perm=combinatoric(math.perm),
            prod=prod,
            lcm=lcm,
        )
        return SimpleNamespace(**public)

    def _globals(self) -> dict[str, Any]:
        builtins: dict[str, Any] = {
            "None": None,
            "True": True,
            "False": False,
            "abs": abs,
            "all": all,
            "any": any,
            "ascii": ascii,
            "bin": bin,
            "bool": bool,
            "callable": callable,
            "chr": chr,
            "dict": dict,
            "divmod": divmod,
            "enumerate": enumerate,
            "filter": filter,
            "float": float,
            "format": self.guarded_format,
            "frozenset": frozenset,
            "hex": hex,
            "int": self._int_type(),
            "isinstance": isinstance,
            "issubclass": issubclass,
            "iter": iter,
            "len": len,
            "list": list,
            "map": map,
            "max": max,
            "min": min,
            "next": next,
            "oct": oct,
            "ord": ord,
            "pow": self.guarded_pow,
            "range": self.guarded_range,
            "repr": self.guarded_repr,
            "reversed": reversed,
            "round": self.guarded_round,
            "set": set,
            "slice": slice,
            "sorted": sorted,
            "str": self._str_type(),
            "sum": self.guarded_sum,
            "tuple": tuple,
            "zip": zip,
        }
        for error in SCRIPT_ERRORS:
            builtins[error.__name__] = error
        return {
            "__builtins__": builtins,
            "_getattr_": self.guarded_getattr,
            "_getitem_": self.getitem,
            "_getiter_": iter,
            "_iter_unpack_sequence_": guarded_iter_unpack_sequence,
            "_unpack_sequence_": guarded_unpack_sequence,
            "_write_": full_write_guard,
            "_inplacevar_": self.inplace,
            "_apply_": self.apply,
            "_print_": _PrintCollector,
            "_print": _PrintCollector(),
            "_binop_": self.binop,
            "_fmt_": self.fmt,
            "_fstr_": self.fstr,
            # values diagrams may use: dates and exact decimals
            "Decimal": Decimal,
            "date": date,
            "datetime": datetime,
            "timedelta": timedelta,
            "timezone": timezone,
            "math": self._math(),
        }


_CONVERSIONS: dict[int, Callable[[Any], str]] = {115: str, 114: repr, 97: ascii}

_INPLACE: dict[str, Callable[[Any, Any], Any]] = {
    "-=": operator.isub,
    "/=": operator.itruediv,
    "//=": operator.ifloordiv,
    "&=": operator.iand,
    "|=": operator.ior,
    "^=": operator.ixor,
    ">>=": operator.irshift,
}

_PERCENT = re.compile(
    r"%(?:\((?P<key>[^)]*)\))?[#0\- +]*(?P<width>\*|\d+)?(?:\.(?P<precision>\*|\d*))?[hlL]?(?P<type>.?)",
    re.S,
)

_TEXT_GUARDS: dict[str, Callable[..., Any]] = {
    "ljust": partial(Guards._pad, name="ljust"),
    "rjust": partial(Guards._pad, name="rjust"),
    "center": partial(Guards._pad, name="center"),
    "zfill": partial(Guards._pad, name="zfill"),
    "expandtabs": Guards._expandtabs,
    "join": Guards._join,
    "replace": Guards._replace,
    "translate": Guards._translate,
    "format": Guards._format,
    "format_map": Guards._format_map,
}


class _SafeFormatter(string.Formatter):
    """`str.format` without attribute walks to underscore names and with every field's width, precision
    and length checked (RestrictedPython refuses `str.format` outright)."""

    def __init__(self, guards: Guards) -> None:
        self.guards = guards

    def vformat(self, format_string: str, args: Any, kwargs: Any) -> str:
        return self._render(format_string, args, kwargs, 2, [0])

    def _render(self, format_string: str, args: Any, kwargs: Any, depth: int, auto: list[int]) -> str:
        """`auto` is the next automatic field number, shared with nested specs as str.format shares it
        (`'{:{}}'.format('ab', 5)` is 'ab   ')."""
        if depth < 0:
            raise ValueError("Max string recursion exceeded")
        out: list[str] = []
        total = 0
        for literal, field, spec, conversion in self.parse(format_string):
            out.append(literal)
            total += len(literal)
            if field is not None:
                if field == "" or field[0] in ".[":
                    field = f"{auto[0]}{field}"
                    auto[0] += 1
                value, _ = self.get_field(field, args, kwargs)
                code = {"s": 115, "r": 114, "a": 97}.get(conversion or "", -1)
                text = self.guards.fmt(value, code, self._render(spec or "", args, kwargs, depth - 1, auto))
                out.append(text)
                total += len(text)
            self.guards.check_text(total)
        return "".join(out)

    def get_field(self, field_name: str, args: Any, kwargs: Any) -> Any:
        first, rest = _field_split(field_name)
        obj = self.get_value(first, args, kwargs)
        for is_attribute, key in rest:
            obj = _safer_getattr(obj, key) if is_attribute else obj[key]
        return obj, first


@lru_cache(maxsize=64)
def guards_for(limits: Limits) -> Guards:
    """The guards (and script globals) for one set of limits, built once."""
    return Guards(limits)


PROVIDED_NAMES: frozenset[str] = frozenset(
    set(Guards(Limits()).globals) | set(Guards(Limits()).globals["__builtins__"]) - {"__builtins__"}
)
"""Every name the sandbox provides to scripts besides their variables."""


def result_variables(
    namespace: Mapping[str, Any], provided: Mapping[str, Any], keep: set[str]
) -> dict[str, Any]:
    """What a script leaves as variables: not the sandbox's own names (unless a variable of that name was
    given), not `_` names, callables or modules."""
    return {
        key: value
        for key, value in namespace.items()
        if (key in keep or provided.get(key, _MISSING) is not value)
        and key != "__builtins__"
        and not key.startswith("_")
        and not callable(value)
        and not isinstance(value, ModuleType | SimpleNamespace)
    }


_MISSING = object()
