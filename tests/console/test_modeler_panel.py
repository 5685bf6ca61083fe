"""The modeler's properties panel edits everything the orchestrator reads: for each item of
console/src/modeler/editable.json, headless Chromium opens a real diagram of bpmn/ in the console's modeler,
types the new value into that item's panel entry, exports the XML with the page's export button, and the saved
file differs from bpmn/'s in exactly that attribute or element. Also: the list covers every extension the
diagrams use and the parser reads; validate shows lint and deploy-check problems on the elements; deploy sends
every resource of the definition; import, the repository banner, versions side by side, and DMN.

The page is the modeler alone (console/test/modeler/harness.js) with canned /api answers
(tests/console/modeler_site.py): it tests the page and its panel, not the console server."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import SpiffWorkflow
from lxml import etree
from playwright.sync_api import Browser, Page, sync_playwright

from tests.bpmn.modeler_tools import chromium
from tests.bpmn.test_browser import CHROMIUM_ARGS
from tests.console.modeler_site import EDITABLE, Site, build, process_id, serve
from tests.support.catalogue import BPMN_DIR, NS

SPIFF_PARSER = Path(str(SpiffWorkflow.__file__)).parent / "spiff" / "parser"
PREFIXES = {uri: prefix for prefix, uri in NS.items()}
PREFIXES["http://www.w3.org/2001/XMLSchema-instance"] = "xsi"
LIST: dict[str, Any] = json.loads(EDITABLE.read_text(encoding="utf-8"))
ITEMS: list[dict[str, Any]] = LIST["items"]
ANCHORLESS = {NS["camunda"], NS["spiffworkflow"]}  # their `id` attributes are names that edits change
# bpmn-js writes no attribute that equals the BPMN default; the orchestrator reads the default alike.
DEFAULTS = {("bpmn:boundaryEvent", "cancelActivity"): "true"}


def _name(qname: str) -> str:
    q = etree.QName(qname)
    return f"{PREFIXES.get(q.namespace or '', q.namespace)}:{q.localname}" if q.namespace else q.localname


def flatten(xml: bytes) -> dict[str, str]:
    """Every element's presence, attribute and non-blank text, keyed `<nearest id>/<path>@<attr>` or `#text`,
    so two files compare independently of prefixes, attribute order and indentation."""
    found: dict[str, str] = {}

    def walk(node: etree._Element, anchor: str, path: str) -> None:
        counts: dict[str, int] = {}
        for child in node:
            if not isinstance(child.tag, str):
                continue
            name = _name(child.tag)
            index = counts.get(name, 0)
            counts[name] = index + 1
            own_id = child.get("id")
            if own_id and etree.QName(child.tag).namespace not in ANCHORLESS:
                key, child_anchor, child_path = own_id, own_id, ""
            else:
                child_path = f"{path}/{name}[{index}]" if path else f"{name}[{index}]"
                key, child_anchor = f"{anchor}/{child_path}", anchor
            found[key] = ""
            for attribute, value in child.attrib.items():
                if DEFAULTS.get((name, _name(attribute))) == value:
                    continue
                found[f"{key}@{_name(attribute)}"] = value
            if child.text and child.text.strip():
                found[f"{key}#text"] = child.text
            walk(child, child_anchor, child_path)

    root = etree.fromstring(xml)
    found["@root"] = _name(root.tag)
    walk(root, "", "")
    return found


def differences(before: dict[str, str], after: dict[str, str]) -> dict[str, str | None]:
    """The keys whose value changed, appeared or went (None), with the value after."""
    keys = set(before) | set(after)
    return {k: after.get(k) for k in sorted(keys) if before.get(k) != after.get(k)}


# ------------------------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    folder = build(tmp_path_factory.mktemp("modeler-bundle"))
    with serve(folder) as running:
        yield running


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    executable = chromium()
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Browser, site: Site) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1600, "height": 1000}, accept_downloads=True)
    opened = context.new_page()
    errors: list[str] = []
    opened.on("pageerror", lambda error: errors.append(str(error)))
    yield opened
    context.close()
    assert not errors, f"the page raised: {errors}"


def open_definition(page: Page, site: Site, definition_id: str) -> None:
    page.goto(f"{site.url}/index.html#/modeler/{definition_id}")
    page.wait_for_selector("[data-testid=modeler-canvas] .djs-container", timeout=30_000)
    page.wait_for_function("() => window.cfModeler && window.cfModeler.editor")


def select(page: Page, element_id: str) -> None:
    """Selects the element on the canvas (the panel shows what is selected)."""
    page.evaluate(
        """(id) => { const m = window.cfModeler.editor.modeler;
                     m.get('selection').select(m.get('elementRegistry').get(id)); }""",
        element_id,
    )
    page.wait_for_selector(".bio-properties-panel-header-label, [data-group-id]")


def reveal(page: Page, group: str, entry: str) -> None:
    """Opens the panel group, then every collapsed list item on the way to the entry."""
    header = page.locator(f'[data-group-id="group-{group}"] > .bio-properties-panel-group-header')
    header.wait_for()
    if "open" not in (header.get_attribute("class") or ""):
        header.click()
    parts = entry.split("-")
    for end in range(1, len(parts)):
        item = page.locator(f'[data-entry-id="{"-".join(parts[:end])}"]')
        if item.count() != 1:
            continue
        classes = (item.get_attribute("class") or "").split()
        if "bio-properties-panel-collapsible-entry" in classes:
            entries = item.locator(":scope > .bio-properties-panel-collapsible-entry-entries")
            if "open" not in (entries.get_attribute("class") or "").split():
                item.locator(":scope > .bio-properties-panel-collapsible-entry-header").click()
        elif "bio-properties-panel-list-entry" in classes and "open" not in classes:
            title = ".bio-properties-panel-list-entry-header-title"
            item.locator(f":scope > .bio-properties-panel-list-entry-header {title}").click()


def edit(page: Page, group: str, entry: str, value: str | None = None, option: str | None = None) -> None:
    """Types `value` into (or picks `option` in) the entry, as a person does, and waits for the command."""
    reveal(page, group, entry)
    inputs = "input, textarea, select, [contenteditable=true]"
    field = page.locator(f'[data-entry-id="{entry}"]').locator(inputs).first
    field.wait_for(state="visible")
    if option is not None:
        field.select_option(option)
    else:
        assert value is not None
        field.fill(value)
        field.press("Tab")
    page.wait_for_function("() => window.cfModeler.editor.modeler.get('commandStack').canUndo()")


def export(page: Page) -> tuple[str, bytes]:
    """Clicks the export button; the downloaded file's name and bytes."""
    with page.expect_download() as download_info:
        page.locator("[data-testid=modeler-export]").first.click()
    download = download_info.value
    return download.suggested_filename, Path(download.path()).read_bytes()


def label_bounds(path: Path, element_id: str) -> str:
    """The key prefix of the element's label bounds in the diagram interchange."""
    root = etree.parse(str(path)).getroot()
    shapes = root.xpath("//bpmndi:*[@bpmnElement=$id]", namespaces=NS, id=element_id)
    return f"{shapes[0].get('id')}/bpmndi:BPMNLabel[0]/dc:Bounds[0]@" if shapes else "\0"


def resource_of(definition_id: str) -> Path:
    wanted = definition_id.split(":")[0]
    return next(p for p in sorted(BPMN_DIR.glob("*.bpmn")) if process_id(p) == wanted)


# ------------------------------------------------------------------------------------------- the list


def test_the_list_covers_every_extension_the_diagrams_use() -> None:
    """Each camunda:/spiffworkflow: attribute and element in bpmn/*.bpmn is an item (or inside one)."""
    covered = " ".join(item["xml"] for item in ITEMS)
    used: set[str] = set()
    for path in BPMN_DIR.glob("*.bpmn"):
        for node in etree.parse(str(path)).iter():
            if not isinstance(node.tag, str):
                continue
            if etree.QName(node.tag).namespace in ANCHORLESS:
                used.add(_name(node.tag))
            used.update(_name(a) for a in node.attrib if etree.QName(a).namespace in ANCHORLESS)
    containers = {"camunda:formData", "camunda:validation", "spiffworkflow:parameters"}
    containers.add("spiffworkflow:parameter")
    missing = sorted(n for n in used - containers if n not in covered and n.split(":")[1] not in covered)
    assert not missing, f"editable.json lacks {missing}"


def test_the_list_names_every_spiff_extension_the_parser_reads() -> None:
    """Every spiffworkflow name SpiffWorkflow's spiff parser reads is edited, or listed as not edited with
    why."""
    source = "\n".join(p.read_text() for p in SPIFF_PARSER.glob("*.py"))
    read = set(re.findall(r"spiffworkflow:([A-Za-z_]+)", source))
    read |= set(re.findall(r"extensions\.get\('([A-Za-z_]+)'\)", source))
    read |= set(re.findall(r"name == '([A-Za-z]+)'", source))
    read |= set(re.findall(r"_node_children_by_tag_name\(\w+, '([A-Za-z]+)'\)", source))
    read |= set(re.findall(r"(?:node|retry_node)\.get\('([A-Za-z_]+)'", source))
    read -= {"*"}
    edited = " ".join(item["xml"] for item in ITEMS)
    not_edited = {entry["name"] for entry in LIST["not_edited"]}
    assert all(entry["why"] for entry in LIST["not_edited"])
    missing = sorted(n for n in read if not re.search(rf"\b{n}\b", edited) and n not in not_edited)
    assert len(read) > 15, read  # the parser's source was read
    assert not missing, f"editable.json neither edits nor explains {missing}"


@pytest.mark.parametrize("item", ITEMS, ids=[item["id"] for item in ITEMS])
def test_the_panel_edits_exactly_this(page: Page, site: Site, item: dict[str, Any]) -> None:
    spec = item["test"]
    open_definition(page, site, spec["definition"])
    select(page, spec["element"])
    edit(page, spec["group"], spec["entry"], value=spec.get("value"), option=spec.get("select"))
    name, saved = export(page)
    original = resource_of(spec["definition"])
    assert name == original.name
    changed = differences(flatten(original.read_bytes()), flatten(saved))
    for key in [k for k in changed if k.startswith(label_bounds(original, spec["element"]))]:
        del changed[key]  # the browser measured the edited element's label again: layout, not content
    expected = spec["expect"]
    assert changed == expected, f"{item['id']}: the XML changed in {changed}, not only in {expected}"


@pytest.mark.parametrize("path", sorted(BPMN_DIR.glob("*.bpmn")), ids=lambda p: p.name)
def test_an_unedited_diagram_exports_unchanged(page: Page, site: Site, path: Path) -> None:
    """The descriptors keep every attribute and element: opening and exporting changes nothing."""
    open_definition(page, site, f"{process_id(path)}:1")
    name, saved = export(page)
    assert name == path.name
    assert differences(flatten(path.read_bytes()), flatten(saved)) == {}
