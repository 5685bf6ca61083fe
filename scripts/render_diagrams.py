"""Renders every diagram in bpmn/ to docs/images/<name>.png as bpmn-js draws it, for docs/process-model.md.

`make pictures` runs it. It draws exactly as tests/bpmn/test_browser.py does (the same bpmn-js bundle from
node_modules in Debian's chromium, offline; Chinese labels need a CJK font such as fonts-wqy-microhei),
scaled down so that no picture is wider than --max-width pixels. Regenerate after changing a diagram.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as `python scripts/render_diagrams.py`: the tests' helpers live in ROOT
    sys.path.insert(0, str(ROOT))

import pytest  # noqa: E402  (modeler_tools reports a missing tool by pytest.skip)

from tests.bpmn.test_browser import IMPORT, MARGIN, bpmn_js, screenshot  # noqa: E402

MAX_WIDTH = 2400


def render(diagrams: Sequence[Path], out: Path, max_width: int) -> list[str]:
    """Writes one PNG per diagram into `out`; returns the problems (a diagram bpmn-js cannot import)."""
    out.mkdir(parents=True, exist_ok=True)
    problems = []
    with bpmn_js() as viewer:
        for path in diagrams:
            result: dict[str, Any] = viewer.evaluate(IMPORT, path.read_text(encoding="utf-8"))
            if "error" in result:
                problems.append(f"{path.name}: bpmn-js cannot import it: {result['error']}")
                continue
            drawing = result["drawing"]
            scale = min(1.0, (max_width - 2 * MARGIN) / drawing["width"])
            png = out / f"{path.stem}.png"
            width, height = screenshot(viewer, drawing, scale, png)
            print(f"{png.relative_to(ROOT) if png.is_relative_to(ROOT) else png}: {width}x{height} px")
    return problems


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/render_diagrams.py", description=__doc__)
    parser.add_argument("diagrams", nargs="*", type=Path, help="BPMN files (default: every bpmn/*.bpmn)")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "images", help="folder for the PNGs")
    parser.add_argument("--max-width", type=int, default=MAX_WIDTH, help="pixels (default %(default)s)")
    args = parser.parse_args(argv)
    diagrams = args.diagrams or sorted((ROOT / "bpmn").glob("*.bpmn"))
    try:
        problems = render(diagrams, args.out, args.max_width)
    except pytest.skip.Exception as missing:  # no chromium or no Node.js packages
        print(f"cannot render: {missing}", file=sys.stderr)
        return 2
    for problem in problems:
        print(problem, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
