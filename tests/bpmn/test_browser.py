"""Each diagram as an analyst sees it in bpmn.io or Camunda Modeler: bpmn-js (from the npm package) imports it
in headless Chromium without a warning and draws every flow node, sequence flow, pool and lane. A PNG of
each diagram is saved for a person to look at (the path is printed)."""

from __future__ import annotations

import math
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, sync_playwright

from tests.bpmn.modeler_tools import SCREENSHOTS, chromium, node_and_modules
from tests.support.catalogue import ROOT, diagram_files
from tests.support.groups import one_worker

pytestmark = one_worker(__name__)

# Debian's chromium as it is, offline: nothing is downloaded, no sandbox (CI runs as root), no GPU.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
MARGIN = 40  # pixels around the drawing in a screenshot (external labels poke out of its box)
LARGEST = 6000  # pixels: a larger drawing is scaled down to fit

# Imports the XML into one reused viewer, then lists what the semantic model has but the canvas does not
# show: bpmn-js imports a file with partial diagram interchange without a warning and simply leaves the
# undrawn elements out. Only the diagram a modeler opens (the file's first) is looked at.
IMPORT = """async (xml) => {
  window.viewer ??= new BpmnJS({ container: '#canvas' });
  let warnings;
  try {
    ({ warnings } = await window.viewer.importXML(xml));
  } catch (error) {
    return { error: String(error.message), warnings: (error.warnings || []).map((w) => w.message) };
  }
  const registry = window.viewer.get('elementRegistry');
  const undrawn = [];
  const drawn = (element, connection) => {
    const shown = registry.get(element.id);
    const ok = shown && registry.getGraphics(shown)
      && (connection ? (shown.waypoints || []).length >= 2 : !shown.waypoints);
    if (!ok) undrawn.push(`${element.$type} ${element.id}`);
  };
  const lanes = (laneSets) => {
    for (const laneSet of laneSets || []) {
      for (const lane of laneSet.lanes || []) {
        drawn(lane, false);
        if (lane.childLaneSet) lanes([lane.childLaneSet]);
      }
    }
  };
  const flows = (container) => {
    lanes(container.laneSets);
    for (const element of container.flowElements || []) {
      if (element.$instanceOf('bpmn:FlowNode')) drawn(element, false);
      if (element.$instanceOf('bpmn:SequenceFlow')) drawn(element, true);
      flows(element);
    }
  };
  for (const root of window.viewer.getDefinitions().rootElements) {
    if (root.$instanceOf('bpmn:Process')) flows(root);
    if (root.$instanceOf('bpmn:Collaboration')) {
      for (const participant of root.participants || []) drawn(participant, false);
    }
  }
  const { x, y, width, height } = window.viewer.get('canvas').viewbox().inner;
  return { warnings: warnings.map((w) => w.message), undrawn, drawing: { x, y, width, height } };
}"""

# Shows the drawing at `scale` in a canvas just large enough for it.
FRAME = """([drawing, scale, margin]) => {
  const width = Math.ceil(drawing.width * scale) + 2 * margin;
  const height = Math.ceil(drawing.height * scale) + 2 * margin;
  const container = document.getElementById('canvas');
  container.style.width = `${width}px`;
  container.style.height = `${height}px`;
  const canvas = window.viewer.get('canvas');
  canvas.resized();
  const [x, y] = [drawing.x - margin / scale, drawing.y - margin / scale];
  canvas.viewbox({ x, y, width: width / scale, height: height / scale });
  return [width, height];
}"""


@pytest.fixture(scope="module")
def screenshots(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Path:
    """A folder for the PNGs; the run's summary names it (tests/conftest.py)."""
    folder = tmp_path_factory.mktemp("diagrams")
    request.config.stash[SCREENSHOTS] = folder
    return folder


@contextmanager
def bpmn_js() -> Iterator[Page]:
    """One headless Chromium page with bpmn-js's viewer bundle and style sheets loaded from node_modules
    (also used by scripts/render_diagrams.py)."""
    executable = chromium()
    _, modules = node_and_modules()
    dist = modules / "bpmn-js" / "dist"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1600, "height": 900})
            page.set_content('<body style="margin:0;background:white"><div id="canvas"></div></body>')
            page.add_style_tag(path=dist / "assets" / "diagram-js.css")
            page.add_style_tag(path=dist / "assets" / "bpmn-js.css")
            page.add_script_tag(path=dist / "bpmn-viewer.production.min.js")
            yield page
        finally:
            browser.close()


def screenshot(viewer: Page, drawing: dict[str, float], scale: float, png: Path) -> tuple[int, int]:
    """Saves the imported drawing at `scale` (with MARGIN around it) as `png`; returns its size in pixels."""
    width, height = viewer.evaluate(FRAME, [drawing, scale, MARGIN])
    viewer.set_viewport_size({"width": width, "height": height})
    viewer.screenshot(path=png)
    return width, height


@pytest.fixture(scope="module")
def viewer() -> Iterator[Page]:
    with bpmn_js() as page:
        yield page


@pytest.mark.parametrize("path", diagram_files(), ids=lambda p: p.name)
def test_bpmn_js_imports_and_draws_every_element(path: Path, viewer: Page, screenshots: Path) -> None:
    result: dict[str, Any] = viewer.evaluate(IMPORT, path.read_text(encoding="utf-8"))
    assert "error" not in result, f"bpmn-js cannot import {path.name}: {result}"
    drawing = result["drawing"]
    assert drawing["width"] > 0 and drawing["height"] > 0, "nothing is drawn"
    # the screenshot first, so that a failing diagram can be looked at too
    scale = min(1.0, LARGEST / max(drawing["width"], drawing["height"]))
    png = screenshots / f"{path.stem}.png"
    width, height = screenshot(viewer, drawing, scale, png)
    print(f"{path.name}: {png} ({width}x{height} px at {math.floor(scale * 100)}%)")
    assert result["warnings"] == [], "bpmn-js import warnings"
    assert result["undrawn"] == [], "elements bpmn-js does not draw (no shape or edge in the diagram)"


def test_chromium_finds_a_font_for_the_chinese_half_of_each_label() -> None:
    """Without a CJK font Chromium draws every Chinese character as a box, and the screenshots say nothing."""
    chromium()
    hint = "apt-get install fonts-wqy-microhei (.ci/run does)"
    fc_list = shutil.which("fc-list")
    assert fc_list, f"no fontconfig tools, so no Chinese font either: {hint}"
    command = [fc_list, ":lang=zh", "family"]
    families = subprocess.run(command, capture_output=True, text=True, timeout=60, check=True).stdout
    assert families.strip(), f"fontconfig knows no Chinese font: {hint}"


def test_the_process_model_shows_a_picture_of_every_diagram() -> None:
    """docs/process-model.md's Pictures section lists each diagram's PNG (`make pictures` writes both)."""
    section = (ROOT / "docs" / "process-model.md").read_text(encoding="utf-8").split("## Pictures", 1)[-1]
    missing = [
        path.name
        for path in diagram_files()
        if f"](images/{path.stem}.png)" not in section
        or not (ROOT / "docs" / "images" / f"{path.stem}.png").is_file()
    ]
    assert missing == [], "run `make pictures` and commit docs/images and docs/process-model.md"
