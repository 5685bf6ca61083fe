"""Script benchmarks: what a trivially safe condition costs in-process against a script sent to a sandbox
process (`make bench`; prints figures, asserts nothing about speed)."""

from __future__ import annotations

import time
from collections.abc import Callable
from decimal import Decimal

import pytest

from consultflow.platform.limits import Limits
from consultflow.platform.sandbox import SandboxPool
from consultflow.platform.sandbox_rules import compile_source
from consultflow.platform.scripting import RestrictedEnvironment, ScriptViolation

pytestmark = pytest.mark.benchmark

CONTEXT = {"verdict": "go", "score": 61, "amount": Decimal("12.50"), "name": "Acme", "items": list(range(20))}


def per_call(fn: Callable[[], object], seconds: float = 0.5) -> float:
    """Median-free but steady: calls `fn` for about `seconds` and returns the mean seconds per call."""
    fn()
    calls = 0
    started = time.perf_counter()
    while time.perf_counter() - started < seconds:
        fn()
        calls += 1
    return (time.perf_counter() - started) / calls


def test_trivial_expressions_in_process_against_scripts_in_a_sandbox_process() -> None:
    pool = SandboxPool(memory_mb=256, size=1)
    env = RestrictedEnvironment(Limits(), pool=pool)
    plain = compile("verdict == 'go' and score >= 60", "<plain>", "eval")
    figures = {
        "plain eval, no sandbox (floor)": per_call(lambda: eval(plain, {"__builtins__": {}, **CONTEXT})),
        "condition `verdict == 'go' and score >= 60`": per_call(
            lambda: env.evaluate("verdict == 'go' and score >= 60", CONTEXT)
        ),
        "guarded expression `amount * 2 + len(name)`": per_call(
            lambda: env.evaluate("amount * 2 + len(name)", CONTEXT)
        ),
        "f-string `f'{name}: {score:>5}'`": per_call(lambda: env.evaluate("f'{name}: {score:>5}'", CONTEXT)),
        "trivial script `label = name.upper() + '!'`": per_call(
            lambda: env.execute("label = name.upper() + '!'", dict(CONTEXT))
        ),
    }
    assert compile_source("sum([i * 2 for i in items])", "eval").why_pooled == "ListComp"
    started = time.perf_counter()
    env.evaluate("sum([i * 2 for i in items])", CONTEXT)
    cold = time.perf_counter() - started
    figures["pooled expression `sum([i * 2 for i in items])`"] = per_call(
        lambda: env.evaluate("sum([i * 2 for i in items])", CONTEXT)
    )
    figures["pooled script (a loop over 20 items)"] = per_call(
        lambda: env.execute("total = 0\nfor i in items:\n    total += i", dict(CONTEXT))
    )
    burn = RestrictedEnvironment(Limits(script_cpu_ms=200), pool=pool)
    started = time.perf_counter()
    with pytest.raises(ScriptViolation, match="script_cpu_ms"):
        burn.execute("k = [i * 2305843009213693951 for i in range(40000)]\ns = set(k)", {})
    killed = time.perf_counter() - started
    started = time.perf_counter()
    env.evaluate("sum([i * 2 for i in items])", CONTEXT)
    replaced = time.perf_counter() - started
    pool.close()
    print("\n== scripts: in-process (trivially safe) against a sandbox process")
    for what, seconds in figures.items():
        print(f"   {what:<55} {seconds * 1e6:9.1f} µs")
    print(f"   {'first pooled call (starts the pool)':<55} {cold * 1e3:9.1f} ms")
    print(f"   {'C-level burn stopped at a 200 ms CPU budget':<55} {killed * 1e3:9.1f} ms")
    print(f"   {'next pooled call (waits for the replacement worker)':<55} {replaced * 1e3:9.1f} ms")
