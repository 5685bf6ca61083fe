"""Renders every diagram in bpmn/ to docs/images/<name>.png as bpmn-js draws it, for docs/process-model.md.

`make pictures` runs it. It draws exactly as tests/bpmn/test_browser.py does (the same bpmn-js bundle from
node_modules in Debian's chromium, offline; Chinese labels need a CJK font such as fonts-wqy-microhei),
scaled down so that no picture is wider than --max-width pixels, and rewrites the list of pictures between
the markers of docs/process-model.md's "Pictures" section. Regenerate after changing a diagram.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as `python scripts/render_diagrams.py`: the tests' helpers live in ROOT
    sys.path.insert(0, str(ROOT))

import pytest  # noqa: E402  (modeler_tools reports a missing tool by pytest.skip)
from lxml import etree  # noqa: E402

from tests.bpmn.test_browser import IMPORT, MARGIN, bpmn_js, screenshot  # noqa: E402

MAX_WIDTH = 2400
DOC = ROOT / "docs" / "process-model.md"
BEGIN, END = "<!-- pictures: written by `make pictures` -->", "<!-- pictures end -->"


def caption(path: Path) -> str:
    """The diagram's executable process name (`業務承接 Business intake`), else its file name."""
    root = etree.parse(str(path), etree.XMLParser(resolve_entities=False, no_network=True)).getroot()
    for process in root.iter("{http://www.omg.org/spec/BPMN/20100524/MODEL}process"):
        if process.get("isExecutable") == "true" and process.get("name"):
            return str(process.get("name"))
    return path.name


def pictures_section(doc: Path, diagrams: Sequence[Path], out: Path) -> None:
    """Lists every diagram's picture between the markers in `doc` (left alone without the markers)."""
    text = doc.read_text(encoding="utf-8")
    if BEGIN not in text or END not in text:
        print(f"{doc.name} has no {BEGIN} … {END}: the list of pictures is not written", file=sys.stderr)
        return
    entries = []
    for path in diagrams:
        image = Path(os.path.relpath(out / f"{path.stem}.png", doc.parent)).as_posix()
        entries.append(
            f"**{caption(path)}** ({path.name}, [full size]({image}))\n\n![{path.stem}]({image})\n"
        )
    head, rest = text.split(BEGIN, 1)
    tail = rest.split(END, 1)[1]
    doc.write_text(head + BEGIN + "\n\n" + "\n".join(entries) + "\n" + END + tail, encoding="utf-8")


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
    parser.add_argument("--doc", type=Path, default=DOC, help="the page whose list of pictures is rewritten")
    args = parser.parse_args(argv)
    diagrams = args.diagrams or sorted((ROOT / "bpmn").glob("*.bpmn"))
    try:
        problems = render(diagrams, args.out, args.max_width)
    except pytest.skip.Exception as missing:  # no chromium or no Node.js packages
        print(f"cannot render: {missing}", file=sys.stderr)
        return 2
    if not args.diagrams:  # the list names every diagram, so only a run over all of them writes it
        pictures_section(args.doc, diagrams, args.out)
        for stale in sorted(set(args.out.glob("*.png")) - {args.out / f"{d.stem}.png" for d in diagrams}):
            print(f"{stale}: no diagram of that name any more (delete it?)", file=sys.stderr)
    for problem in problems:
        print(problem, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
