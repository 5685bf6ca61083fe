"""A sandbox process: runs the scripts that are not trivially safe, one at a time, under OS limits.

Started by platform/sandbox.py as `python -m consultflow.platform.sandbox_worker <parent pid> <memory MB>`.
It reads one JSON request per line on stdin and answers one JSON line on stdout. The OS enforces what
the guards cannot see inside C code: RLIMIT_AS bounds its memory; per request an ITIMER_PROF raises
(between bytecodes) when the CPU budget is spent, an ITIMER_VIRTUAL a little later kills the process
(inside C code), and RLIMIT_CPU is the last backstop. It dies with its parent (PR_SET_PDEATHSIG) and
when stdin closes.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import math
import os
import resource
import signal
import sys
import traceback
from typing import Any

from consultflow.platform.limits import Limits
from consultflow.platform.sandbox_codec import Codec
from consultflow.platform.sandbox_rules import (
    ScriptViolation,
    compile_source,
    guards_for,
    over,
    result_variables,
)

_PR_SET_PDEATHSIG = 1
_MAX_MESSAGE = 500


class _CpuSpent(BaseException):
    """Raised by the CPU timer; a BaseException so a script's `except Exception` does not swallow it."""


def _on_cpu_timer(signum: int, frame: Any) -> None:
    raise _CpuSpent


def _arm(cpu_seconds: float) -> None:
    used = resource.getrusage(resource.RUSAGE_SELF)
    spent = used.ru_utime + used.ru_stime
    _, hard = resource.getrlimit(resource.RLIMIT_CPU)
    soft = int(spent + math.ceil(cpu_seconds) + 2)
    resource.setrlimit(resource.RLIMIT_CPU, (soft, hard))
    signal.setitimer(signal.ITIMER_VIRTUAL, cpu_seconds * 1.25 + 0.1)
    signal.setitimer(signal.ITIMER_PROF, cpu_seconds, 0.05)


def _disarm() -> None:
    signal.setitimer(signal.ITIMER_PROF, 0)
    signal.setitimer(signal.ITIMER_VIRTUAL, 0)


def _violation(exc: ScriptViolation, recycle: bool = False) -> dict[str, Any]:
    return {"violation": str(exc)[:_MAX_MESSAGE], "limit": exc.limit, "recycle": recycle}


def handle(request: dict[str, Any]) -> dict[str, Any]:
    """Runs one request: {"mode", "source", "vars", "limits"} → {"value"} or {"vars", "deleted"}, or
    {"violation", "limit"} or {"error": {"type", "message", "line"}}."""
    limits = Limits(**request["limits"])
    guards = guards_for(limits)
    codec = Codec(limits)
    cpu_seconds = limits.script_cpu_ms / 1000
    try:
        compiled = compile_source(request["source"], request["mode"])
        given: dict[str, Any] = request["vars"]
        namespace = dict(guards.globals)
        namespace.update(given)
        _arm(cpu_seconds)
        try:
            if compiled.mode == "eval":
                value = eval(compiled.code, namespace)
                guards.check_stored(value, "the expression's value", limits.max_variable_bytes)
                reply: dict[str, Any] = {"value": codec.encode(value, "the expression's value")}
            else:
                exec(compiled.code, namespace)
                variables = result_variables(namespace, guards.globals, set(given))
                encoded: dict[str, Any] = {}
                for name, value in variables.items():
                    guards.check_stored(value, f"variable {name}", limits.max_variable_bytes)
                    encoded[name] = codec.encode(value, f"variable {name}")
                    size = len(json.dumps(encoded[name], ensure_ascii=False).encode())
                    if size > limits.max_variable_bytes:
                        raise over(
                            "max_variable_bytes",
                            f"variable {name} is {size} bytes as JSON, more than {limits.max_variable_bytes}",
                        )
                reply = {"vars": encoded, "deleted": [k for k in given if k not in namespace]}
        finally:
            _disarm()
        return reply
    except _CpuSpent:
        return _violation(
            over("script_cpu_ms", f"script used more than {limits.script_cpu_ms} ms of CPU time")
        )
    except MemoryError:
        _disarm()
        text = f"script needed more than {limits.script_memory_mb} MB"
        return _violation(over("script_memory_mb", text), recycle=True)
    except ScriptViolation as exc:
        return _violation(exc)
    except Exception as exc:  # the script's own error: reported as its type and message
        line = 0
        for frame in traceback.extract_tb(exc.__traceback__):
            if frame.filename.startswith("<"):
                line = frame.lineno or 0
        return {"error": {"type": type(exc).__name__, "message": str(exc)[:_MAX_MESSAGE], "line": line}}


def main() -> None:
    parent, memory_mb = int(sys.argv[1]), int(sys.argv[2])
    with contextlib.suppress(OSError, AttributeError):  # not Linux: stdin closing still ends the process
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:
        return  # the parent died before prctl took effect
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is for the parent, which then closes stdin
    signal.signal(signal.SIGPROF, _on_cpu_timer)
    signal.signal(signal.SIGVTALRM, signal.SIG_DFL)  # kills the process: the script is stuck in C code
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    limit = memory_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    sys.set_int_max_str_digits(4300)
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    stdout.write(b'{"ready":true}\n')
    stdout.flush()
    for line in stdin:
        try:
            reply = handle(json.loads(line, object_hook=Codec.decode_hook))
        except MemoryError:
            reply = _violation(
                over("script_memory_mb", f"script needed more than {memory_mb} MB"), recycle=True
            )
        stdout.write(json.dumps(reply, ensure_ascii=False, separators=(",", ":")).encode() + b"\n")
        stdout.flush()
        if reply.get("recycle"):
            return


if __name__ == "__main__":
    main()
