"""A warm pool of sandbox processes for the scripts that are not trivially safe.

Why processes: C-level work (`math.factorial(10**6)`, a huge `sorted`, int → str of a giant number) holds
the GIL and ignores trace hooks and signals, so only the OS can stop it. Each worker
(platform/sandbox_worker.py) has RLIMIT_AS = `script_memory_mb` and CPU timers from `script_cpu_ms`; the
orchestrator waits on a pipe (the GIL released, so it keeps answering) with a wall-clock deadline, kills
and replaces a worker that overruns or dies, and raises `ScriptViolation` naming the limit.

Workers are spawned with subprocess (never a bare fork of the threaded gRPC server) from one long-lived
thread, because PR_SET_PDEATHSIG fires when the thread that spawned a child ends. The pool starts on first
use; `script_workers` callers run at once, the others wait up to a bounded time. What a worker answers is
untrusted: size-capped, JSON with type tags only, never unpickled.
"""

from __future__ import annotations

import atexit
import contextlib
import dataclasses
import json
import logging
import os
import queue
import select
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from consultflow.platform.limits import Limits
from consultflow.platform.sandbox_codec import Codec
from consultflow.platform.sandbox_rules import Compiled, ScriptViolation, over

log = logging.getLogger(__name__)

_READY_SECONDS = 15.0
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
_CPU_SIGNALS = {signal.SIGVTALRM, signal.SIGPROF, signal.SIGXCPU}


class _WorkerDied(Exception):
    pass


class _Worker:
    """One sandbox process and the unread part of its output."""

    def __init__(self, memory_mb: int) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "consultflow.platform.sandbox_worker", str(os.getpid()), str(memory_mb)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            close_fds=True,
        )
        self._buffer = bytearray()
        ready = self.receive(time.monotonic() + _READY_SECONDS, 1024)
        if ready is None or json.loads(ready) != {"ready": True}:
            self.kill()
            raise _WorkerDied("the sandbox process did not start")

    def send(self, line: bytes) -> None:
        stdin = self.process.stdin
        assert stdin is not None
        try:
            stdin.write(line + b"\n")
            stdin.flush()
        except OSError as exc:
            raise _WorkerDied(str(exc)) from exc

    def receive(self, deadline: float, max_bytes: int) -> bytes | None:
        """One line, or None at the deadline; the pipe is read with the GIL released."""
        stdout = self.process.stdout
        assert stdout is not None
        fd = stdout.fileno()
        poller = select.poll()
        poller.register(fd, select.POLLIN | select.POLLHUP)
        while b"\n" not in self._buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            if not poller.poll(remaining * 1000):
                continue
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                raise _WorkerDied("the sandbox process closed its output")
            self._buffer += chunk
            if len(self._buffer) > max_bytes:
                raise ScriptViolation(f"a script's result was larger than {max_bytes} bytes")
        line, _, rest = bytes(self._buffer).partition(b"\n")
        self._buffer = bytearray(rest)
        return line

    def cpu_seconds(self) -> float:
        """CPU time the process has used (from /proc), 0 when unknown."""
        try:
            fields = Path(f"/proc/{self.process.pid}/stat").read_bytes().rsplit(b")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS
        except (OSError, IndexError, ValueError):
            return 0.0

    def kill(self) -> int:
        with contextlib.suppress(OSError):
            self.process.kill()
        for stream in (self.process.stdin, self.process.stdout):
            with contextlib.suppress(OSError):
                if stream is not None:
                    stream.close()
        return self.process.wait()

    def stop(self) -> None:
        with contextlib.suppress(OSError):
            if self.process.stdin is not None:
                self.process.stdin.close()
        try:
            self.process.wait(0.5)
        except subprocess.TimeoutExpired:
            self.kill()


class SandboxPool:
    """`size` warm sandbox processes with `memory_mb` of address space each, started on first use."""

    def __init__(self, memory_mb: int, size: int) -> None:
        self.memory_mb = memory_mb
        self.size = max(1, size)
        self._lock = threading.Condition()
        self._idle: list[_Worker] = []
        self._live = 0  # idle + busy + starting
        self._spawns: queue.SimpleQueue[bool] = queue.SimpleQueue()
        self._spawner: threading.Thread | None = None
        self._spawn_error = ""
        self._closed = False
        self._all: set[_Worker] = set()

    # -- running a script

    def run(self, compiled: Compiled, variables: dict[str, Any], limits: Limits) -> dict[str, Any]:
        """Runs `compiled` in a worker with `variables`; returns the decoded reply (see sandbox_worker)."""
        codec = Codec(limits)
        request = {
            "mode": compiled.mode,
            "source": compiled.source,
            "vars": {name: codec.encode(value, f"variable {name}") for name, value in variables.items()},
            "limits": dataclasses.asdict(limits),
        }
        line = json.dumps(request, ensure_ascii=False, separators=(",", ":")).encode()
        cpu = limits.script_cpu_ms / 1000
        wall = cpu * 3 + 1.0  # the CPU timers enforce the budget; this is for a loaded machine or a stall
        worker = self._acquire(wall * 2 + 1)
        healthy = False
        try:
            worker.send(line)
            answer = worker.receive(time.monotonic() + wall, limits.max_instance_state_bytes + 65536)
            if answer is None:
                used = worker.cpu_seconds()
                if used >= cpu * 0.5:
                    raise over(
                        "script_cpu_ms", f"script used more than {limits.script_cpu_ms} ms of CPU time"
                    )
                raise over(
                    "script_cpu_ms",
                    f"script did not finish within {wall * 1000:.0f} ms (its CPU budget is"
                    f" {limits.script_cpu_ms} ms)",
                )
            reply = _decode(answer)
            healthy = not reply.get("recycle")
            return reply
        except _WorkerDied:
            code = worker.kill()
            raise _death(code, limits) from None
        finally:
            self._release(worker, healthy)

    # -- the workers

    def _acquire(self, wait: float) -> _Worker:
        deadline = time.monotonic() + wait
        with self._lock:
            while True:
                if self._closed:
                    raise ScriptViolation("the sandbox is shut down")
                self._fill()
                if self._idle:
                    worker = self._idle.pop()
                    if worker.process.poll() is None:
                        return worker
                    # died while idle (e.g. killed from outside): not this script's fault
                    self._all.discard(worker)
                    self._live -= 1
                    continue
                remaining = deadline - time.monotonic()
                if self._live == 0 and self._spawn_error:
                    raise ScriptViolation(f"the sandbox could not start: {self._spawn_error}")
                if remaining <= 0:
                    raise over(
                        "script_workers",
                        f"all {self.size} sandbox processes stayed busy for {wait:.1f} s",
                    )
                self._lock.wait(remaining)

    def _release(self, worker: _Worker, healthy: bool) -> None:
        if not healthy:
            worker.kill()
        with self._lock:
            if healthy and not self._closed:
                self._idle.append(worker)
            else:
                self._all.discard(worker)
                self._live -= 1
                if not self._closed:
                    self._fill()
            self._lock.notify_all()
        if healthy and self._closed:
            worker.stop()

    def _fill(self) -> None:
        """Asks the spawner for the workers missing (called with the lock held)."""
        if self._spawner is None:
            self._spawner = threading.Thread(target=self._spawn_loop, name="sandbox-spawner", daemon=True)
            self._spawner.start()
        while self._live < self.size:
            self._live += 1
            self._spawns.put(True)

    def _spawn_loop(self) -> None:
        while self._spawns.get():
            try:
                worker = _Worker(self.memory_mb)
            except Exception as exc:  # reported to the callers waiting for a worker
                log.warning("a sandbox process did not start: %s", exc)
                with self._lock:
                    self._live -= 1
                    self._spawn_error = str(exc)
                    self._lock.notify_all()
                continue
            with self._lock:
                if self._closed:
                    self._live -= 1
                    worker.stop()
                    continue
                self._spawn_error = ""
                self._idle.append(worker)
                self._all.add(worker)
                self._lock.notify_all()

    def close(self) -> None:
        """Stops every worker (idle ones at once, busy ones when their script returns or is killed)."""
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
            self._lock.notify_all()
        self._spawns.put(False)
        for worker in idle:
            worker.stop()

    @property
    def started(self) -> int:
        """Workers alive or starting (for tests)."""
        return self._live

    @property
    def busy(self) -> int:
        """Workers running a script now (for tests: the hostile work is under way)."""
        with self._lock:
            return len(self._all) - len(self._idle)

    def pids(self) -> list[int]:
        with self._lock:
            return [w.process.pid for w in self._all]


def _decode(answer: bytes) -> dict[str, Any]:
    try:
        reply = json.loads(answer, object_hook=Codec.decode_hook)
    except (ValueError, RecursionError, TypeError) as exc:
        raise ScriptViolation(f"a script's result could not be read: {exc}") from exc
    if not isinstance(reply, dict):
        raise ScriptViolation("a script's result could not be read")
    return reply


def _death(code: int, limits: Limits) -> ScriptViolation:
    if code < 0 and -code in _CPU_SIGNALS:
        return over("script_cpu_ms", f"script used more than {limits.script_cpu_ms} ms of CPU time")
    if code == -signal.SIGKILL:
        return over(
            "script_memory_mb",
            f"script needed more than {limits.script_memory_mb} MB (its sandbox process was killed)",
        )
    what = f"signal {signal.Signals(-code).name}" if code < 0 else f"exit code {code}"
    return ScriptViolation(f"the script's sandbox process died ({what})", "sandbox")


_POOLS: dict[tuple[int, int], SandboxPool] = {}
_POOLS_LOCK = threading.Lock()


def pool_for(limits: Limits) -> SandboxPool:
    """The process-wide pool for these OS limits (engines with the same limits share their workers)."""
    key = (limits.script_memory_mb, limits.script_workers)
    with _POOLS_LOCK:
        pool = _POOLS.get(key)
        if pool is None:
            pool = _POOLS[key] = SandboxPool(*key)
        return pool


@atexit.register
def shutdown() -> None:
    """Stops every pool's workers (they also die with this process)."""
    with _POOLS_LOCK:
        pools = list(_POOLS.values())
        _POOLS.clear()
    for pool in pools:
        pool.close()
