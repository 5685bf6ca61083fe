"""The sandbox pool: values cross it exactly and untrusted, a worker that overruns or dies is replaced and
its script gets a violation naming the limit, callers beyond the pool queue, and no worker outlives the
process that started it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from consultflow.platform.limits import Limits
from consultflow.platform.sandbox import SandboxPool, _decode
from consultflow.platform.sandbox_codec import Codec
from consultflow.platform.sandbox_rules import ScriptViolation
from consultflow.platform.scripting import RestrictedEnvironment
from tests.support.polling import eventually

LIMITS = Limits(script_cpu_ms=300)
BURN = "keys = [i * 2305843009213693951 for i in range(40000)]\ns = set(keys)"
"""One C call that loops for seconds without checking signals (every key hashes alike): only the OS
stops it."""


@pytest.fixture(scope="module")
def pool() -> Iterator[SandboxPool]:
    pool = SandboxPool(memory_mb=256, size=1)
    yield pool
    pool.close()


def run(pool: SandboxPool, script: str, limits: Limits = LIMITS, **data: Any) -> dict[str, Any]:
    context = dict(data)
    RestrictedEnvironment(limits, pool=pool).execute(script, context)
    return context


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0] != "Z"
    except FileNotFoundError:
        return False


VALUES: dict[str, Any] = {
    "decimal": Decimal("12.50"),
    "date": date(2026, 1, 2),
    "datetime": datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
    "delta": timedelta(days=1, seconds=2, microseconds=3),
    "tuple": (1, "a"),
    "set": {1, 2},
    "frozen": frozenset({"x"}),
    "int_keys": {1: "a", (1, 2): [None, True, 1.5]},
    "tag_key": {"$t": "decimal", "v": "1"},
    "bytes": b"\x00\xff",
    "uuid": uuid.UUID(int=7),
    "nested": {"a": [{"b": Decimal("1")}]},
}


def test_values_cross_the_boundary_with_their_types(pool: SandboxPool) -> None:
    result = run(
        pool, "for name in []:\n    pass\ncopy = [decimal, date, datetime, delta, tuple, set]", **VALUES
    )
    assert {k: result[k] for k in VALUES} == VALUES
    assert result["copy"] == [VALUES[k] for k in ("decimal", "date", "datetime", "delta", "tuple", "set")]


def test_the_codec_round_trips_and_builds_only_known_tags() -> None:
    codec = Codec(Limits())
    encoded = json.dumps({k: codec.encode(v, k) for k, v in VALUES.items()})
    assert json.loads(encoded, object_hook=Codec.decode_hook) == VALUES
    with pytest.raises(ScriptViolation, match="could not be read"):
        _decode(b'{"value": {"$t": "os.system", "v": "rm -rf /"}}')
    with pytest.raises(ScriptViolation, match="cannot be stored"):
        codec.encode(object(), "x")


def test_a_cpu_burn_in_c_is_stopped_and_its_worker_replaced(pool: SandboxPool) -> None:
    run(pool, "for i in range(1):\n    pass")
    before = pool.pids()
    with pytest.raises(ScriptViolation, match="more than 300 ms of CPU time") as stopped:
        run(pool, BURN)
    assert stopped.value.limit == "script_cpu_ms"
    assert run(pool, "total = sum([i for i in range(4)])") == {"total": 6}
    assert set(pool.pids()).isdisjoint(before)
    assert not any(alive(pid) for pid in before)


def test_memory_beyond_the_limit_is_a_violation_naming_it(pool: SandboxPool) -> None:
    # A CPU budget the filling cannot spend first, even with page faults slowed by a busy machine.
    with pytest.raises(ScriptViolation, match="more than 256 MB") as refused:
        run(pool, "l = []\nwhile True:\n    l.append('x' * 100000)", Limits(script_cpu_ms=10_000))
    assert refused.value.limit == "script_memory_mb"
    assert run(pool, "y = [1 for i in range(2)]") == {"y": [1, 1]}


def test_a_worker_that_dies_mid_script_is_a_violation_and_is_replaced(pool: SandboxPool) -> None:
    run(pool, "for i in range(1):\n    pass")
    errors: list[BaseException] = []

    def loop() -> None:
        try:
            run(pool, "while True:\n    pass", Limits(script_cpu_ms=5000))
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=loop)
    thread.start()
    eventually(lambda: pool.busy == 1, "the loop to be running", 10, 0.01)
    os.kill(pool.pids()[0], signal.SIGSEGV)
    thread.join(10)
    assert len(errors) == 1 and "SIGSEGV" in str(errors[0])
    assert run(pool, "y = [1 for i in range(1)]") == {"y": [1]}


def test_a_worker_that_died_while_idle_is_replaced_without_failing_a_script(pool: SandboxPool) -> None:
    run(pool, "for i in range(1):\n    pass")
    os.kill(pool.pids()[0], signal.SIGKILL)
    eventually(lambda: not alive(pool.pids()[0]) or None, "the worker to be gone", 5, 0.01)
    assert run(pool, "y = [2 for i in range(1)]") == {"y": [2]}


def test_callers_beyond_the_pool_queue_and_are_all_answered(pool: SandboxPool) -> None:
    results: list[Any] = []
    threads = [
        threading.Thread(target=lambda n=n: results.append(run(pool, f"y = [{n} for i in range(1)]")))
        for n in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(20)
    assert sorted(r["y"][0] for r in results) == [0, 1, 2, 3]


def test_a_result_larger_than_an_instance_may_hold_is_refused(pool: SandboxPool) -> None:
    limits = Limits(max_instance_state_bytes=1000, max_variable_bytes=10**7)
    with pytest.raises(ScriptViolation, match="larger than"):
        run(pool, "s = ['x' * 1000 for i in range(200)]", limits)


def test_workers_die_with_the_process_that_started_them(tmp_path: Any) -> None:
    program = textwrap.dedent(
        """
        import os, signal, sys
        from consultflow.platform.limits import Limits
        from consultflow.platform.sandbox import SandboxPool
        from consultflow.platform.scripting import RestrictedEnvironment
        pool = SandboxPool(256, 2)
        RestrictedEnvironment(Limits(), pool=pool).execute("y = [i for i in range(2)]", {})
        while len(pool.pids()) < 2:
            pass
        print(" ".join(map(str, pool.pids())), flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=60)
    pids = [int(p) for p in done.stdout.split()]
    assert len(pids) == 2
    eventually(lambda: not any(alive(p) for p in pids), "the orphaned workers to exit", 10, 0.05)


def test_close_stops_every_worker() -> None:
    pool = SandboxPool(memory_mb=256, size=2)
    run(pool, "y = [i for i in range(2)]")
    eventually(lambda: len(pool.pids()) == 2, "both workers to start", 10, 0.01)
    pids = pool.pids()
    pool.close()
    eventually(lambda: not any(alive(p) for p in pids), "the workers to exit", 5, 0.05)
    with pytest.raises(ScriptViolation, match="shut down"):
        run(pool, "y = [i for i in range(2)]")
