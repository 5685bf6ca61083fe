"""FEEL, only as far as decision table cells need it: the unary tests and literals dmn-js writes.

An input entry (a cell under an input column) is read into a predicate on the column's value:

    -                         any value (also an empty cell)
    "onsite"  42  -0.5  true  equal to that literal (numbers compare as exact decimals)
    < 80   <= 0.05   > 2   >= 0.95          a comparison with a number or string literal
    [1..5]  ]1..5]  (1..5]  [1..5[  [1..5)  a range; `[`/`]` close an end, `(`/`)` or an outward
                                            bracket open it
    "a", "b", [1..2]          any of a comma list of the forms above
    not("a", "b")             none of them

An output entry is a literal: a string, a number, `true`/`false` or `null` (an empty cell is null).
Anything else raises `FeelError`; nothing here evaluates the cell's text as code.

Values compare the way FEEL compares them: a number equals only a number (Python's `True == 1` does not
hold here), strings compare with strings, and an ordering test (`<`, a range) on a value of another type,
or on null, raises `FeelError` instead of quietly not matching (unless another member of the cell's list
matches). Floats are read through their shortest
repr (`0.05` is exactly 0.05), so a float input sits on the side of a boundary its decimal text says.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Literal, TypeAlias

Value: TypeAlias = str | Decimal | bool | None
"""A FEEL literal as this module represents it: strings, exact numbers, booleans and null."""

Output: TypeAlias = str | int | Decimal | bool | None
"""An output entry's value: integral numbers become `int`, other numbers `Decimal`."""

Ordered: TypeAlias = str | Decimal

Comparison = Literal["<", "<=", ">", ">="]


class FeelError(ValueError):
    """A cell outside the supported subset, or a value a test cannot be applied to."""


# ------------------------------------------------------------------------------------------- values


def value_of(value: object) -> Value | object:
    """A Python value as FEEL sees it: numbers become Decimal (floats through their repr), so `0.05` as a
    float equals the literal `0.05`; anything else that is no FEEL literal type is returned as it is."""
    if value is None or isinstance(value, bool | str | Decimal):
        if isinstance(value, Decimal) and not value.is_finite():
            raise FeelError(f"{value} is not a number FEEL can compare")
        return value
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise FeelError(f"{value} is not a number FEEL can compare")
        return Decimal(repr(value))
    return value


def _same_type(a: object, b: object) -> bool:
    # bool before numbers: a FEEL boolean is never a number
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool)
    return (isinstance(a, Decimal) and isinstance(b, Decimal)) or (isinstance(a, str) and isinstance(b, str))


def _equal(value: object, literal: Value) -> bool:
    return _same_type(value, literal) and value == literal


def _ordered(value: object, literal: Ordered, test: str) -> Ordered:
    """The value, when it can be ordered against the literal; otherwise FeelError."""
    if isinstance(value, bool) or not _same_type(value, literal):
        kind = "a number" if isinstance(literal, Decimal) else "a string"
        raise FeelError(f"{test} needs {kind}, not {_show(value)}")
    assert isinstance(value, str | Decimal)
    return value


def _show(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(str(value)) if isinstance(value, str) else f"{value} ({type(value).__name__})"


def literal_text(value: Output) -> str:
    """A literal as FEEL writes it."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | Decimal):
        return str(value)
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


# -------------------------------------------------------------------------------------------- tests


@dataclass(frozen=True)
class Equals:
    """`"onsite"`, `42`, `true`: equal to the literal."""

    literal: Value

    def matches(self, value: object) -> bool:
        return _equal(value, self.literal)

    def __str__(self) -> str:
        return literal_text(self.literal)


@dataclass(frozen=True)
class Compare:
    """`< 80`, `>= 0.95`: the value against a number or string."""

    op: Comparison
    literal: Ordered

    def matches(self, value: object) -> bool:
        v = _ordered(value, self.literal, str(self))
        if self.op == "<":
            return v < self.literal  # type: ignore[operator]
        if self.op == "<=":
            return v <= self.literal  # type: ignore[operator]
        if self.op == ">":
            return v > self.literal  # type: ignore[operator]
        return v >= self.literal  # type: ignore[operator]

    def __str__(self) -> str:
        return f"{self.op} {literal_text(self.literal)}"


@dataclass(frozen=True)
class Interval:
    """`[1..5]`, `]0.05..0.15]`: between two literals of one type, each end open or closed."""

    low: Ordered
    low_closed: bool
    high: Ordered
    high_closed: bool

    def matches(self, value: object) -> bool:
        v = _ordered(value, self.low, str(self))
        above = v >= self.low if self.low_closed else v > self.low  # type: ignore[operator]
        below = v <= self.high if self.high_closed else v < self.high  # type: ignore[operator]
        return bool(above and below)

    def __str__(self) -> str:
        return (
            ("[" if self.low_closed else "]")
            + f"{literal_text(self.low)}..{literal_text(self.high)}"
            + ("]" if self.high_closed else "[")
        )


Test: TypeAlias = Equals | Compare | Interval


@dataclass(frozen=True)
class UnaryTests:
    """One input entry: any value (no tests), any of `tests`, or (negated) none of them."""

    text: str
    tests: tuple[Test, ...] = ()
    negated: bool = False

    @property
    def is_any(self) -> bool:
        return not self.tests

    def matches(self, value: object) -> bool:
        if not self.tests:
            return True
        feel = value_of(value)
        problem: FeelError | None = None
        for test in self.tests:
            try:
                if test.matches(feel):
                    return not self.negated
            except FeelError as exc:  # another member of a mixed list may still match
                problem = problem or exc
        if problem is not None:
            raise problem
        return self.negated

    def literals(self) -> tuple[Value, ...]:
        """Every literal the cell names (the values of its equality tests and the ends of its ranges)."""
        found: list[Value] = []
        for test in self.tests:
            if isinstance(test, Equals | Compare):
                found.append(test.literal)
            else:
                found.extend((test.low, test.high))
        return tuple(found)


# ------------------------------------------------------------------------------------------ parsing

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<string>"(?:[^"\\]|\\.)*")
      | (?P<number>-?\d+(?:\.\d+)?)
      | (?P<dots>\.\.)
      | (?P<op><=|>=|<|>)
      | (?P<punct>[\[\]\(\),])
      | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
      | (?P<bad>\S)
    )""",
    re.VERBOSE,
)
_ESCAPES = {'"': '"', "\\": "\\", "'": "'", "n": "\n", "t": "\t", "r": "\r"}
_KEYWORDS: dict[str, Value] = {"true": True, "false": False}


@dataclass(frozen=True)
class _Token:
    kind: str
    text: str
    column: int  # 1-based, for messages


def _tokens(text: str) -> list[_Token]:
    result: list[_Token] = []
    position = 0
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None or match.end() == position:  # only trailing whitespace is left
            break
        kind = match.lastgroup or "bad"
        value = match.group(kind)
        if kind == "bad":
            raise FeelError(f"unexpected {value!r} at column {match.start(kind) + 1}")
        result.append(_Token(kind, value, match.start(kind) + 1))
        position = match.end()
    return result


def _string(token: _Token) -> str:
    body = token.text[1:-1]
    out: list[str] = []
    index = 0
    while index < len(body):
        char = body[index]
        if char != "\\":
            out.append(char)
            index += 1
            continue
        escape = body[index + 1]
        if escape in _ESCAPES:
            out.append(_ESCAPES[escape])
            index += 2
        elif escape == "u" and re.fullmatch(r"[0-9a-fA-F]{4}", body[index + 2 : index + 6]):
            out.append(chr(int(body[index + 2 : index + 6], 16)))
            index += 6
        else:
            raise FeelError(f"unknown escape \\{escape} in the string at column {token.column}")
    return "".join(out)


class _Reader:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokens(text)
        self.index = 0

    def peek(self) -> _Token | None:
        return self.tokens[self.index] if self.index < len(self.tokens) else None

    def take(self) -> _Token:
        token = self.peek()
        if token is None:
            raise FeelError("the cell ends too early")
        self.index += 1
        return token

    def expect(self, text: str) -> None:
        token = self.take()
        if token.text != text:
            raise FeelError(f"expected {text!r} at column {token.column}, found {token.text!r}")

    def done(self) -> None:
        token = self.peek()
        if token is not None:
            raise FeelError(f"unexpected {token.text!r} at column {token.column}")

    def literal(self) -> Value:
        token = self.take()
        if token.kind == "string":
            return _string(token)
        if token.kind == "number":
            return Decimal(token.text)
        if token.kind == "name" and token.text in _KEYWORDS:
            return _KEYWORDS[token.text]
        if token.kind == "name":
            raise FeelError(
                f"{token.text!r} at column {token.column} is a name; cells hold literals "
                '(a string needs double quotes: "…"; booleans are true and false)'
            )
        raise FeelError(f"expected a literal at column {token.column}, found {token.text!r}")

    def endpoint(self) -> Ordered:
        token = self.peek()
        value = self.literal()
        if not isinstance(value, str | Decimal):
            column = token.column if token else len(self.text)
            raise FeelError(f"a comparison or range needs a number or a string at column {column}")
        return value

    def test(self) -> Test:
        token = self.peek()
        if token is None:
            raise FeelError("the cell ends too early")
        if token.kind == "op":
            self.take()
            return Compare(token.text, self.endpoint())  # type: ignore[arg-type]
        if token.text in ("[", "(", "]"):
            self.take()
            low = self.endpoint()
            dots = self.take()
            if dots.kind != "dots":
                raise FeelError(f"expected '..' at column {dots.column}, found {dots.text!r}")
            high = self.endpoint()
            close = self.take()
            if close.text not in ("]", ")", "["):
                raise FeelError(f"expected ']', ')' or '[' at column {close.column}, found {close.text!r}")
            if type(low) is not type(high):
                raise FeelError(f"the ends of the range at column {token.column} are of different types")
            if low > high:  # type: ignore[operator]
                raise FeelError(f"the range at column {token.column} is empty: it starts above its end")
            return Interval(low, token.text == "[", high, close.text == "]")
        return Equals(self.literal())

    def tests(self) -> tuple[Test, ...]:
        found = [self.test()]
        while (token := self.peek()) is not None and token.text == ",":
            self.take()
            found.append(self.test())
        return tuple(found)


def parse_unary_tests(text: str | None) -> UnaryTests:
    """An input entry's text as a predicate; FeelError names what is outside the subset."""
    source = (text or "").strip()
    if source in ("", "-"):
        return UnaryTests(source)
    reader = _Reader(source)
    first = reader.peek()
    negated = first is not None and first.kind == "name" and first.text == "not"
    if negated:
        reader.take()
        reader.expect("(")
    tests = reader.tests()
    if negated:
        reader.expect(")")
    reader.done()
    return UnaryTests(source, tests, negated)


def parse_output(text: str | None) -> Output:
    """An output entry's text as its value: a string, number, boolean or null (also an empty cell)."""
    source = (text or "").strip()
    if not source:
        return None
    if source == "null":
        return None
    reader = _Reader(source)
    value = reader.literal()
    reader.done()
    if isinstance(value, Decimal) and "." not in source:
        return int(value)
    return value
