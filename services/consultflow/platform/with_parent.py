"""Runs a command that dies with the process that started it:
`python -m consultflow.platform.with_parent PARENT_PID SIGNAL COMMAND…` sets PR_SET_PDEATHSIG and then
execs COMMAND, which keeps it.

Why not `subprocess.Popen(preexec_fn=…)`: a pre-exec function makes CPython fork with the GIL held and
run Python in the child of a threaded parent. gRPC's fork handlers then wait for its own threads while
they wait for the GIL: a chaos run froze every thread of the test process for 62 s while the supervisor
restarted one child. Without `preexec_fn` CPython spawns with vfork and runs no fork handlers at all.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys

_PR_SET_PDEATHSIG = 1


def command(parent_signal: signal.Signals, argv: list[str]) -> list[str]:
    """`argv` wrapped so it gets `parent_signal` when this process dies (Linux; elsewhere it just runs)."""
    return [sys.executable, "-m", __name__, str(os.getpid()), str(int(parent_signal)), *argv]


def main() -> None:
    parent, number, argv = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3:]
    with contextlib.suppress(OSError, AttributeError):  # not Linux: no parent-death signal
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, number)
    if os.getppid() != parent:
        sys.exit(1)  # the parent died before prctl took effect: nobody would stop the command
    os.execvp(argv[0], argv)


if __name__ == "__main__":
    main()
