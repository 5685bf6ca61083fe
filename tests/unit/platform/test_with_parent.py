"""`with_parent.command` runs a command that dies with the process that started it, without a pre-exec
function (which forks with the GIL held; see the module's docstring)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from consultflow.platform import with_parent


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    status = Path(f"/proc/{pid}/stat").read_text().split()[2] if Path(f"/proc/{pid}/stat").exists() else ""
    return status != "Z"


def test_the_command_is_exec_ed_in_place_and_dies_when_its_parent_is_killed(tmp_path: Path) -> None:
    """The parent prints its child's pid and the pid the child reports for itself (the same: exec, not a
    grandchild), then is SIGKILLed; the child gets SIGTERM from the kernel."""
    parent = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(
                """
                import signal, subprocess, sys, time
                from consultflow.platform import with_parent
                report = "import os, time; print(os.getpid(), flush=True); time.sleep(60)"
                argv = with_parent.command(signal.SIGTERM, [sys.executable, "-c", report])
                child = subprocess.Popen(argv, stdout=subprocess.PIPE)
                print(child.pid, child.stdout.readline().decode().strip(), flush=True)
                time.sleep(60)
                """
            ),
        ],
        stdout=subprocess.PIPE,
    )
    assert parent.stdout is not None
    spawned, reported = parent.stdout.readline().decode().split()
    assert spawned == reported
    child = int(spawned)
    assert _alive(child)
    parent.kill()
    parent.wait()
    deadline = time.monotonic() + 10
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(child), "the child outlived its parent"


def test_a_parent_that_is_already_gone_runs_nothing() -> None:
    """The race the pid check closes: prctl after the parent died would never fire."""
    argv = with_parent.command(signal.SIGTERM, ["true"])
    argv[3] = str(os.getpid() + 10_000_000)  # a pid that is not our parent
    assert subprocess.run(argv, check=False).returncode == 1
