"""Diagram scripts run restricted: what they may do works, what they may not becomes ScriptViolation."""

from __future__ import annotations

import logging
import time
from decimal import Decimal
from typing import Any

import pytest

from consultflow.platform.limits import Limits
from consultflow.platform.sandbox_rules import compile_source
from consultflow.platform.scripting import (
    RestrictedEnvironment,
    ScriptViolation,
    check,
    scale_timer_expression,
)

env = RestrictedEnvironment(Limits(script_cpu_ms=200))


def run(script: str, **data: Any) -> dict[str, Any]:
    context = dict(data)
    env.execute(script, context)
    return context


def test_ordinary_scripts_and_conditions_work() -> None:
    result = run("total = sum([i * 2 for i in range(5)])\nlabel = name.upper() + '!'\nx += 1", name="a", x=1)
    assert result == {"name": "a", "x": 2, "total": 20, "label": "A!"}
    assert env.evaluate("verdict == 'go' and score >= 60", {"verdict": "go", "score": 61}) is True
    assert env.evaluate("Decimal(amount) * 2", {"amount": "1.10"}) == Decimal("2.20")


@pytest.mark.parametrize(
    "script",
    [
        "import os",
        "from os import path",
        "x = __import__('os')",
        "x = ().__class__.__bases__[0].__subclasses__()",
        "x = open('/etc/passwd').read()",
        "x = getattr(1, '__class__')",
        "x = eval('1')",
        "x = exec('y = 1')",
        "x = globals()",
    ],
)
def test_escapes_are_refused(script: str) -> None:
    with pytest.raises((ScriptViolation, NameError)):
        run(script)


def test_format_cannot_reach_attributes() -> None:
    with pytest.raises(Exception):  # noqa: B017 - any refusal will do; the point is no attribute walk
        run("x = '{0.__class__}'.format(1)")


def test_cpu_time_is_bounded() -> None:
    with pytest.raises(ScriptViolation, match="CPU time"):
        run("while True:\n    pass")


@pytest.mark.parametrize(
    "script",
    [
        "x = 10 ** 10 ** 8",
        "x = 'a' * 10 ** 9",
        "x = [0] * 10 ** 9",
        "x = 1 << 10 ** 9",
        "x = list(range(10 ** 9))",
    ],
)
def test_huge_values_are_refused(script: str) -> None:
    with pytest.raises(ScriptViolation):
        run(script)


def test_deploy_time_check_refuses_imports() -> None:
    with pytest.raises(ScriptViolation):
        check("import os")
    check("x = 1")


def test_timer_scaling() -> None:
    assert scale_timer_expression("P1D", 0.001) == "PT86.400S"
    assert scale_timer_expression("R3/PT10S", 0.5) == "R3/PT5.000S"
    assert scale_timer_expression("2030-01-01T00:00:00+00:00", 0.5) == "2030-01-01T00:00:00+00:00"


# -- what runs in-process and what goes to a sandbox process


@pytest.mark.parametrize(
    "source",
    [
        "verdict == 'go' and score >= 60",
        "Decimal(amount) * 2",
        "name.upper() + '!'",
        "f'{name}: {score:>5}'",
        "len(items) > 3 if items else False",
        "timedelta(days=3)",
    ],
)
def test_conditions_and_simple_expressions_run_in_process(source: str) -> None:
    assert compile_source(source, "eval").trivial, compile_source(source, "eval").why_pooled


@pytest.mark.parametrize(
    ("source", "why"),
    [
        ("[i for i in items]", "ListComp"),
        ("sorted(items, key=lambda i: -i)", "Lambda"),
        ("math.factorial(5)", ".factorial"),
        ("x.as_integer_ratio()", ".as_integer_ratio"),
        ("'{}'.format(x)", ".format"),
        ("pow(2, 8)", "pow()"),
    ],
)
def test_what_is_not_trivially_safe_goes_to_a_sandbox_process(source: str, why: str) -> None:
    compiled = compile_source(source, "eval")
    assert not compiled.trivial and compiled.why_pooled == why


# -- guards, in-process: the size is checked before the operation runs


@pytest.mark.parametrize(
    ("source", "limit"),
    [
        ("'a'.ljust(200000000)", "max_string_length"),
        ("str.ljust('a', 200000000)", "max_string_length"),
        ("'a'.center(10 ** 9)", "max_string_length"),
        ("'a'.zfill(10 ** 9)", "max_string_length"),
        ("('\\t' * 100).expandtabs(10 ** 8)", "max_string_length"),
        ("'%*d' % (10 ** 8, 1)", "max_string_length"),
        ("'%100000000d' % 1", "max_string_length"),
        ("'%.100000000f' % 1.5", "max_string_length"),
        ("'%(a)500000000s' % {'a': 1}", "max_string_length"),
        ("f'{x:>100000000}'", "max_string_length"),
        ("f'{x:>{w}}'", "max_string_length"),
        ("format(x, '>100000000')", "max_string_length"),
        ("('x' * 10 ** 5).replace('x', 'xxxxxxxxxxxxxxxxxxxx')", "max_string_length"),
        ("','.join([s, s, s, s, s, s, s, s, s, s, s, s])", "max_string_length"),
        ("[s] * 100", "max_string_length"),
        ("s + s + s + s + s + s + s + s + s + s + s", "max_string_length"),
        ("'x' * 10 ** 9", "max_string_length"),
        ("[0] * 10 ** 9", "max_collection_items"),
        ("range(10 ** 9)", "max_collection_items"),
        ("10 ** 10 ** 8", "max_int_bits"),
        ("pow(3, 10 ** 8)", "max_int_bits"),
        ("1 << 10 ** 9", "max_int_bits"),
        ("int(Decimal('1e999999'))", "max_int_bits"),
        ("round(Decimal('1e999999'))", "max_int_bits"),
        ("'%d' % Decimal('1e999999')", "max_int_bits"),
        ("math.floor(Decimal('1e999999'))", "max_int_bits"),
        ("math.factorial(10 ** 6)", "max_int_bits"),
        ("f'{d:f}'", "max_string_length"),
        ("(1).to_bytes(10 ** 9, 'big')", "max_string_length"),
        ("'{:>100000000}'.format(1)", "max_string_length"),
    ],
)
def test_growth_is_refused_before_it_happens_naming_the_limit(source: str, limit: str) -> None:
    context = {"x": 1, "w": 10**8, "s": "y" * 100_000, "d": Decimal("1e2000000")}
    started = time.perf_counter()
    with pytest.raises(ScriptViolation, match=limit) as refused:
        env.evaluate(source, context)
    assert refused.value.limit == limit
    assert time.perf_counter() - started < 5  # refused, not computed (a generous bound)


def test_guarded_builtins_still_behave_like_python() -> None:
    assert env.evaluate("isinstance(3, int) and int('12') == 12 and int(2.7) == 2", {}) is True
    assert env.evaluate("sum([[1], [2, 3]], [])", {}) == [1, 2, 3]
    assert env.evaluate("'{} and {:>4}'.format('a', 1)", {}) == "a and    1"
    assert env.evaluate("'%s-%05.1f' % ('a', 2.25)", {}) == "a-002.2"
    assert env.evaluate("', '.join(['a', 'b'])", {}) == "a, b"
    assert env.evaluate("round(Decimal('2.5'))", {}) == 2


def test_a_guarded_method_hands_out_nothing_to_walk_from() -> None:
    # a functools.partial would expose .func/.args: the guards and the globals every script shares
    result = run("f = 'a'.ljust\ng = str.join\nx = [f.func, f.args, f.keywords, g.args]")
    assert result == {"x": [None, None, None, None]}
    assert run("m = [math.floor.args, pow.args]") == {"m": [None, None]}


def test_format_fields_cannot_walk_to_private_attributes() -> None:
    with pytest.raises(AttributeError):
        env.evaluate("'{0.__class__}'.format(1)", {})


def test_a_variable_too_large_to_store_is_refused_naming_it() -> None:
    with pytest.raises(ScriptViolation, match=r"variable d .*max_variable_bytes"):
        run("d = {'a': s, 'b': s}", s="x" * 900_000)
    with pytest.raises(ScriptViolation, match="variable r"):
        run("r = range(3)")


def test_a_variable_named_like_a_sandbox_global_survives_a_script() -> None:
    assert run("y = 1", date="2026-01-01") == {"date": "2026-01-01", "y": 1}


def test_print_goes_to_a_debug_line_without_the_values(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG, logger="consultflow.platform.sandbox_rules"):
        assert run("print('secret@example.com')\ny = 1") == {"y": 1}
    assert "printed 1 value" in caplog.text and "secret" not in caplog.text
    assert env.evaluate("print(x) is None", {"x": 1}) is True


# -- deploy-time truth: what would fail at run time because the sandbox lacks it


@pytest.mark.parametrize(
    "source",
    [
        "x = open('f')",
        "x = eval('1')",
        "exec('x = 1')",
        "x = getattr(y, 'z')",
        "x = globals()",
        "x = compile('1', 'f', 'eval')",
        "x = input()",
        "x = id(y)",
        "x = type(y)",
        "x = vars()",
        "x = breakpoint()",
        "class C:\n    pass",
    ],
)
def test_deploy_check_refuses_what_the_sandbox_does_not_provide(source: str) -> None:
    with pytest.raises(ScriptViolation):  # named at compile time ("reserved name") or by the name check
        check(source)


@pytest.mark.parametrize(
    "source",
    [
        "print(x)",
        "total = sum([i for i in items])\nlabel = str(total).upper()",
        "input = 3\nresult = input + 1",
        "x = some_process_variable + 1",
        "x = max(a, b) if isinstance(a, int) else min(len(s), 3)",
        "def double(v):\n    return v * 2\ny = double(2)",
        "try:\n    y = 1 / 0\nexcept ZeroDivisionError:\n    y = 0",
    ],
)
def test_deploy_check_accepts_what_runs(source: str) -> None:
    check(source)
    run_context: dict[str, Any] = {
        "x": 1,
        "items": [1],
        "some_process_variable": 1,
        "a": 1,
        "b": 2,
        "s": "ab",
    }
    env.execute(source, run_context)
