"""The console's front-end logic (console/src: label splitting, form checks, task order) under Node's own
test runner: `node --test console/test/*.test.mjs`, run here so `make test` runs it. The modules tested use
no npm package, so only Node.js is needed; the tests skip without it (CI has it)."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from tests.support.catalogue import ROOT


def test_the_console_front_end_unit_tests_pass() -> None:
    node = shutil.which("node")
    if node is None:
        pytest.skip("Node.js is not installed (no `node` on PATH): the console's JavaScript tests need it")
    files = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "console" / "test").glob("*.test.mjs"))
    assert files, "console/test holds no *.test.mjs"
    result = subprocess.run(
        [node, "--test", "--test-reporter=spec", *files],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, f"node --test failed:\n{result.stdout}\n{result.stderr}"
