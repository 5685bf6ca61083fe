"""Liveness under hostile work: another caller is answered while the hostile work is still going on.

The bound is generous (many times a normal call) so the test never flakes on a busy machine; the measured
latency is printed, and benchmarks report it, but only the bound is asserted. Waiting for the hostile work
to be under way is `tests.support.polling.eventually`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")

LIVENESS_BOUND_SECONDS = 5.0
"""How long another caller may wait while hostile work runs: a normal call takes milliseconds."""

HANG_SECONDS = 240.0
"""How long hostile work may run before it counts as hung. Its own time is no pass/fail figure: a 1200-task
walk after a restart takes tens of seconds alone but over 90 s beside `make test`'s other worker and a busy
machine, so the bound is far above that and below pytest-timeout's 300 s (the failure then names the work)."""


class Background:
    """A blocking call running in a thread, so a test can act while it is still under way."""

    def __init__(self, fn: Callable[[], Any]) -> None:
        self.result: Any = None
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(fn,), daemon=True)
        self._thread.start()

    def _run(self, fn: Callable[[], Any]) -> None:
        try:
            self.result = fn()
        except BaseException as exc:  # reported by join()
            self.error = exc

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def join(self, timeout: float = HANG_SECONDS) -> Any:
        """Waits for the call; returns its result or raises its error."""
        self._thread.join(timeout)
        assert not self._thread.is_alive(), f"the background call did not end within {timeout} s"
        if self.error is not None:
            raise self.error
        return self.result


def answered_while(
    still_running: Callable[[], bool],
    probe: Callable[[], T],
    bound: float = LIVENESS_BOUND_SECONDS,
    what: str = "probe",
) -> T:
    """Calls `probe` while `still_running()` says the hostile work goes on, and asserts it was answered
    within `bound` seconds with the hostile work still going on when the answer came."""
    assert still_running(), "the hostile work must be under way before the probe (else it proves nothing)"
    started = time.perf_counter()
    result = probe()
    elapsed = time.perf_counter() - started
    assert still_running(), f"the hostile work ended before the {what} was answered: the test proves nothing"
    print(f"liveness: {what} answered in {elapsed * 1000:.1f} ms while hostile work ran")
    assert elapsed < bound, f"{what} took {elapsed:.2f} s while hostile work ran (bound {bound} s)"
    return result


def answered_during_rounds(
    hostile_round: Callable[[], T],
    probe: Callable[[], object],
    what: str,
    under_way: Callable[[], bool] | None = None,
) -> list[T]:
    """Runs `hostile_round` again and again in the background until `probe` was answered meanwhile, and
    returns every round's result. A single round of fixed length can end before the probe on a busy
    machine and prove nothing; rounds repeated until the answer overlap it whatever the machine's speed.
    `under_way` (when given) says the first round has really begun, e.g. a sandbox worker is busy."""
    probed = threading.Event()
    results: list[T] = []

    def hostile() -> None:
        results.append(hostile_round())
        while not probed.is_set():
            results.append(hostile_round())

    work = Background(hostile)
    try:
        if under_way is not None:
            deadline = time.monotonic() + 10
            while not under_way() and work.running and time.monotonic() < deadline:
                time.sleep(0.002)
        answered_while(lambda: work.running, probe, what=what)
    finally:
        probed.set()
    work.join(HANG_SECONDS)
    return results
