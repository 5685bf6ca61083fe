"""Crash points for the crash tests: inert unless CONSULTFLOW_FAULTS names them.

`CONSULTFLOW_FAULTS="orchestrator.step.after_commit=3"` kills the process with SIGKILL the third time it
passes that point, exactly as `kill -9` would at that instant (no cleanup, nothing flushed). The crash
tests use this to stop a component between two effects that must stay consistent (a commit and its
publish, a publish and its mark, a handled job and its reply).
"""

from __future__ import annotations

import os
import signal
import threading

_PLAN: dict[str, int] = {}
for entry in os.environ.get("CONSULTFLOW_FAULTS", "").split(","):
    if "=" in entry:
        point, _, count = entry.partition("=")
        _PLAN[point.strip()] = int(count)

_seen: dict[str, int] = {}
_lock = threading.Lock()


def crash_point(name: str) -> None:
    """Dies here when the fault plan says so; otherwise does nothing."""
    if name not in _PLAN:
        return
    with _lock:
        _seen[name] = _seen.get(name, 0) + 1
        if _seen[name] == _PLAN[name]:
            os.kill(os.getpid(), signal.SIGKILL)
