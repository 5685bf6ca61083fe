"""The supervisor's rules with children that exit at once (`sh -c 'exit 3'`): a crash after a stable run
is restarted at once, quick crashes wait longer each time, and a crash loop is given up on loudly."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from consultflow.cli.system import Child, LocalSystem, Supervision, _Watch


def _system(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[LocalSystem, list[float]]:
    system = LocalSystem(tmp_path, supervision=Supervision(1.0, 8.0, stable_seconds=10.0, crash_loop_limit=4))
    child = Child("crm", "127.0.0.1:1", tmp_path / "crm.log")
    system.children["crm"] = child
    clock = [1000.0]

    def spawn(c: Child) -> None:
        c.process = subprocess.Popen(["sh", "-c", "exit 3"])
        c.process.wait()

    monkeypatch.setattr(system, "_spawn", spawn)
    system._spawn(child)
    system._watches["crm"] = _Watch(clock[0])
    return system, clock


def test_quick_crashes_back_off_then_give_up(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    system, clock = _system(tmp_path, monkeypatch)
    kinds: list[tuple[float, str]] = []
    for _ in range(400):  # 40 s in steps of 0.1 s
        clock[0] += 0.1
        kinds += [(round(clock[0] - 1000, 1), e.kind) for e in system.supervise_once(clock[0])]
    restarts = [t for t, kind in kinds if kind == "restarted"]
    waits = [round(b - a, 1) for a, b in zip([0.0, *restarts], restarts, strict=False)]
    assert waits == [1.1, 2.1, 4.1], kinds  # 1, 2, 4 s of back-off (plus the tick that saw it dead)
    assert kinds[-1][1] == "gave_up" and system.given_up() == ["crm"]
    assert len(kinds) == 7, "after giving up, nothing more happens"


def test_a_crash_after_a_stable_run_is_restarted_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    system, clock = _system(tmp_path, monkeypatch)
    for _ in range(6):
        clock[0] += 60.0  # ran a minute before dying, each time
        assert [e.kind for e in system.supervise_once(clock[0])] == ["restarted"]
    assert system.children["crm"].restarts == 6
    assert system.given_up() == []
