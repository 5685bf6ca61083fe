"""Where the modeler-side diagram checks find their tools: Node.js, the npm packages that package-lock.json
pins (`make test` installs them into the repository's node_modules with `npm ci`) and Debian's chromium."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.support.catalogue import ROOT

PACKAGES = ("bpmn-moddle", "bpmnlint", "camunda-bpmn-moddle", "bpmn-js", "dmn-moddle")
SCREENSHOTS = pytest.StashKey[Path]()  # where test_browser.py saved the diagrams' PNGs, for the summary


def node_modules() -> Path:
    """CONSULTFLOW_NODE_MODULES when set (a node_modules folder installed elsewhere), else the repository's
    own."""
    override = os.environ.get("CONSULTFLOW_NODE_MODULES")
    return Path(override) if override else ROOT / "node_modules"


def node_and_modules() -> tuple[str, Path]:
    """`node` and the installed packages. Skips only when Node.js is absent: with Node.js there, missing
    packages are a failure, since `make test` installs them."""
    node = shutil.which("node")
    if node is None:
        pytest.skip(
            "Node.js is not installed (no `node` on PATH): the bpmn-moddle, bpmnlint, bpmn-js checks need it"
        )
    modules = node_modules()
    missing = [name for name in PACKAGES if not (modules / name / "package.json").is_file()]
    assert not missing, f"{modules} lacks {missing}: run `make test` (it runs `npm ci`) or `npm ci` in {ROOT}"
    return node, modules


def chromium() -> str:
    """Debian's chromium; skips when it is absent (`.ci/run` installs it)."""
    found = shutil.which("chromium")
    if found is None:
        pytest.skip("Debian's chromium is not installed (apt-get install chromium fonts-wqy-microhei)")
    return found
