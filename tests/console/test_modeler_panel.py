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
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest
import SpiffWorkflow
from lxml import etree
from playwright.sync_api import Browser, Page, sync_playwright

from consultflow.orchestrator import engine
from tests.bpmn.modeler_tools import chromium, node_and_modules
from tests.bpmn.test_browser import CHROMIUM_ARGS
from tests.console.modeler_site import EDITABLE, REVISED, Site, build, process_id, serve
from tests.support.catalogue import BPMN_DIR, NS, ROOT

SPIFF_PARSER = Path(str(SpiffWorkflow.__file__)).parent / "spiff" / "parser"
PREFIXES = {uri: prefix for prefix, uri in NS.items()}
PREFIXES["http://www.w3.org/2001/XMLSchema-instance"] = "xsi"
PREFIXES["https://www.omg.org/spec/DMN/20191111/MODEL/"] = "dmn"
LIST: dict[str, Any] = json.loads(EDITABLE.read_text(encoding="utf-8"))
ITEMS: list[dict[str, Any]] = LIST["items"]
ANCHORLESS = {NS["camunda"], NS["spiffworkflow"]}  # their `id` attributes are names that edits change
# bpmn-js and dmn-js write no attribute that equals the standard's default; the orchestrator and
# platform/decisions.py read the default alike.
DEFAULTS = {("bpmn:boundaryEvent", "cancelActivity"): "true", ("dmn:decisionTable", "hitPolicy"): "UNIQUE"}


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
    page.goto("about:blank")  # a fresh page, also when only the hash would change
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
    """The key prefix of the element's label (its presence and bounds) in the diagram interchange."""
    root = etree.parse(str(path)).getroot()
    shapes = root.xpath("//bpmndi:*[@bpmnElement=$id]", namespaces=NS, id=element_id)
    return f"{shapes[0].get('id')}/bpmndi:BPMNLabel[0]" if shapes else "\0"


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


# ------------------------------------------------------------------------------------------- correlation


def orchestrator_key_expression(resources: dict[str, bytes], process: str, element_id: str) -> str:
    """The correlation expression the orchestrator's parser gives the message `element_id` waits for."""
    specs = engine.parse_resources(resources)[process]
    for spec in (specs.spec, *specs.subprocess_specs.values()):
        task_spec = next((t for t in spec.task_specs.values() if t.bpmn_id == element_id), None)
        if task_spec is not None:
            properties = task_spec.event_definition.correlation_properties
            return str(properties[0].retrieval_expression) if properties else ""
    raise AssertionError(f"no element {element_id} in {process}")


def all_resources(**replaced: bytes) -> dict[str, bytes]:
    resources = {p.name: p.read_bytes() for p in [*BPMN_DIR.glob("*.bpmn"), *BPMN_DIR.glob("*.dmn")]}
    return {**resources, **replaced}


def test_the_orchestrator_reads_the_correlation_key_the_panel_wrote(page: Page, site: Site) -> None:
    """The panel shows the expression the orchestrator keys change_requested's message by; the edited one is
    what the orchestrator's parser reads from the saved file."""
    before = orchestrator_key_expression(all_resources(), "engagement", "change_requested")
    open_definition(page, site, "engagement:1")
    select(page, "change_requested")
    reveal(page, "cf-correlation", "cf-correlation-key")
    shown = page.locator('[data-entry-id="cf-correlation-key"] input')
    assert (before, shown.input_value()) == ("engagement_id", "engagement_id")
    edit(page, "cf-correlation", "cf-correlation-key", value="client_engagement_id")
    _, saved = export(page)
    read = orchestrator_key_expression(
        all_resources(**{"engagement.bpmn": saved}), "engagement", "change_requested"
    )
    assert read == "client_engagement_id"


NEW_MESSAGE = """(id) => {
  const m = window.cfModeler.editor.modeler;
  const element = m.get('elementRegistry').get(id);
  const definitions = m.getDefinitions();
  const message = m.get('bpmnFactory').create('bpmn:Message', { name: 'contract.countersigned' });
  message.$parent = definitions;
  const modeling = m.get('modeling');
  const roots = [...definitions.rootElements, message];
  modeling.updateModdleProperties(element, definitions, { rootElements: roots });
  const holder = element.businessObject.eventDefinitions[0];
  modeling.updateModdleProperties(element, holder, { messageRef: message });
  return message.id;
}"""


@pytest.mark.parametrize(
    ("key", "joins"), [("contract_id", None), ("engagement_id", "CorrelationProperty_engagement_id")]
)
def test_a_key_for_a_message_without_one_creates_its_correlation_property(
    page: Page, site: Site, key: str, joins: str | None
) -> None:
    """A message made in the modeler has no key: the analyst types one in the Correlation group. A key no
    property reads yet makes a new bpmn:correlationProperty (named after the key, a bpmn-js id) after the
    message; a key an existing property reads everywhere joins that property, as bpmn/ writes shared keys.
    The orchestrator's parser reads it; undo takes it away again."""
    open_definition(page, site, "intake:1")
    message_id = page.evaluate(NEW_MESSAGE, "signature_refused")
    select(page, "signature_refused")
    reveal(page, "cf-correlation", "cf-correlation-key")
    assert page.locator('[data-entry-id="cf-correlation-key"] input').input_value() == ""
    _, without_key = export(page)
    edit(page, "cf-correlation", "cf-correlation-key", value=key)
    _, saved = export(page)
    changed = differences(flatten(without_key), flatten(saved))
    if joins:
        retrieval = f"{joins}/bpmn:correlationPropertyRetrievalExpression[4]"
        assert changed == {
            retrieval: "",
            f"{retrieval}@messageRef": message_id,
            f"{retrieval}/bpmn:formalExpression[0]": "",
            f"{retrieval}/bpmn:formalExpression[0]#text": key,
        }
    else:
        [property_id] = [k for k in changed if "/" not in k and "@" not in k and "#" not in k]
        assert re.fullmatch(r"CorrelationProperty_[0-9a-z]{7}", property_id), property_id
        retrieval = f"{property_id}/bpmn:correlationPropertyRetrievalExpression[0]"
        assert changed == {
            property_id: "",
            f"{property_id}@id": property_id,
            f"{property_id}@name": key,
            retrieval: "",
            f"{retrieval}@messageRef": message_id,
            f"{retrieval}/bpmn:formalExpression[0]": "",
            f"{retrieval}/bpmn:formalExpression[0]#text": key,
        }
        roots = [etree.QName(e).localname + ":" + (e.get("id") or "") for e in etree.fromstring(saved)]
        assert roots.index(f"correlationProperty:{property_id}") == roots.index(f"message:{message_id}") + 1
    read = orchestrator_key_expression(all_resources(**{"intake.bpmn": saved}), "intake", "signature_refused")
    assert read == key
    page.evaluate("() => window.cfModeler.editor.modeler.get('commandStack').undo()")
    _, undone = export(page)
    assert differences(flatten(without_key), flatten(undone)) == {}


def test_clearing_the_only_key_of_a_property_removes_the_property(page: Page, site: Site) -> None:
    """Spiff refuses a correlation property without retrieval expressions: clearing acceptance.reported's key
    (the only expression of its property) removes the property and the correlation key's reference to it;
    the message then correlates on the empty key."""
    open_definition(page, site, "delivery_acceptance:1")
    select(page, "client_acceptance")
    edit(page, "cf-correlation", "cf-correlation-key", value="")
    _, saved = export(page)
    changed = differences(flatten((BPMN_DIR / "delivery_acceptance.bpmn").read_bytes()), flatten(saved))
    prefix = "CorrelationProperty_engagement_id"
    reference = "CorrelationKey_engagement_id/bpmn:correlationPropertyRef[0]"
    assert {k for k in changed if not k.startswith(prefix)} == {reference, f"{reference}#text"}
    assert f"{prefix}@name" in changed
    assert all(v is None for v in changed.values())
    resources = all_resources(**{"delivery_acceptance.bpmn": saved})
    assert orchestrator_key_expression(resources, "delivery_acceptance", "client_acceptance") == ""


@pytest.mark.parametrize("path", sorted(BPMN_DIR.glob("*.bpmn")), ids=lambda p: p.name)
def test_an_edit_undone_leaves_the_file_as_it_was(page: Page, site: Site, path: Path) -> None:
    """The descriptors keep every attribute and element: a task renamed and renamed back in the panel makes
    the modeler write the whole file again, and nothing else in it changes."""
    task = (
        etree.parse(str(path)).getroot().xpath("(//bpmn:userTask | //bpmn:serviceTask)[1]", namespaces=NS)[0]
    )
    open_definition(page, site, f"{process_id(path)}:1")
    select(page, task.get("id"))
    edit(page, "general", "name", value="renamed")
    edit(page, "general", "name", value=task.get("name"))
    name, saved = export(page)
    assert name == path.name
    assert b"renamed" not in saved
    changed = differences(flatten(path.read_bytes()), flatten(saved))
    for key in [k for k in changed if k.startswith(label_bounds(path, task.get("id")))]:
        del changed[key]  # bpmn-js gave the renamed task's shape a label of its own: layout, not content
    assert changed == {}


def test_an_unedited_file_exports_as_deployed(page: Page, site: Site) -> None:
    """Opening a file changes nothing: export and deploy send its deployed text as it was."""
    open_definition(page, site, "implementation:1")
    name, saved = export(page)
    assert (name, saved) == ("implementation.bpmn", (BPMN_DIR / "implementation.bpmn").read_bytes())
    assert page.locator("[data-testid=resource-tab].cf-edited").count() == 0
    registry = "window.cfModeler.editor.modeler.get('elementRegistry')"
    select(page, page.evaluate(f"() => {registry}.filter((e) => e.type === 'bpmn:UserTask')[0].id"))
    edit(page, "general", "name", value="renamed")
    assert (
        page.locator('[data-testid=resource-tab].cf-edited[data-resource="implementation.bpmn"]').count() == 1
    )


# ------------------------------------------------------------------------------------------- the page


def test_the_list_shows_every_process_and_opens_one(page: Page, site: Site) -> None:
    page.goto(f"{site.url}/index.html#/modeler")
    rows = page.locator("[data-testid=definition-row]")
    rows.first.wait_for()
    shown = {rows.nth(i).get_attribute("data-definition-id") for i in range(rows.count())}
    assert shown == {
        f"{process_id(p)}:{2 if process_id(p) == 'intake' else 1}" for p in BPMN_DIR.glob("*.bpmn")
    }
    page.locator('[data-testid=definition-row][data-definition-id="market_research:1"] a').click()
    page.wait_for_selector("[data-testid=modeler-canvas] .djs-container")
    assert unquote(page.url).endswith("#/modeler/market_research:1")


def test_problems_show_as_a_list_and_on_the_elements(page: Page, site: Site) -> None:
    """The orchestrator's deploy checks (canned here) and bpmnlint in the browser (a task whose name the
    panel cleared breaks label-required) both land in the list and on the diagram; a row selects its
    element."""
    site.problems = [
        {
            "resource_name": "intake.bpmn",
            "element_id": "assess_feasibility",
            "message": "too wide",
            "rule": "limit",
        }
    ]
    try:
        open_definition(page, site, "intake:1")
        select(page, "record_requirements")
        edit(page, "general", "name", value="")
        page.locator("[data-testid=modeler-validate]").click()
        server_row = page.locator('[data-testid=problem-row][data-element-id="assess_feasibility"]')
        server_row.wait_for()
        lint_row = page.locator('[data-testid=problem-row][data-element-id="record_requirements"]')
        assert lint_row.get_attribute("data-rule") == "lint.label-required"
        for element in ("assess_feasibility", "record_requirements"):
            marked = page.locator(f'.djs-element.cf-problem[data-element-id="{element}"]')
            assert marked.count() == 1, element
            assert page.locator(f'.cf-problem-badge[data-element-id="{element}"]').count() == 1
        server_row.click()
        selected = page.evaluate(
            "() => window.cfModeler.editor.modeler.get('selection').get().map((e) => e.id)"
        )
        assert selected == ["assess_feasibility"]
        page.locator("[data-testid=modeler-deploy]").click()
        page.wait_for_selector("[data-testid=modeler-status].cf-bad")
        assert not [p for p in site.posted if p[0] == "/api/deployments"], "deployed despite problems"
    finally:
        site.problems = []


def test_deploy_sends_every_resource_with_the_edited_one_and_the_note(page: Page, site: Site) -> None:
    open_definition(page, site, "intake:1")
    select(page, "assess_feasibility")
    edit(page, "CamundaPlatform__UserAssignment", "candidateGroups", value="experts, managers")
    page.locator("[data-testid=deploy-note]").fill("2.2.2: managers assess too")
    before = len(site.posted)
    page.locator("[data-testid=modeler-deploy]").click()
    page.wait_for_selector("[data-testid=modeler-status].cf-good")
    deploys = [body for path, body in site.posted[before:] if path == "/api/deployments"]
    assert len(deploys) == 1
    sent = {r["name"]: r["content"] for r in deploys[0]["resources"]}
    assert deploys[0]["note"] == "2.2.2: managers assess too"
    assert list(sent) == ["intake.bpmn", *sorted(p.name for p in BPMN_DIR.glob("*.dmn"))]
    for name in sent:
        if name != "intake.bpmn":
            assert sent[name] == (BPMN_DIR / name).read_text(encoding="utf-8")
    changed = differences(
        flatten((BPMN_DIR / "intake.bpmn").read_bytes()), flatten(sent["intake.bpmn"].encode())
    )
    assert changed == {"assess_feasibility@camunda:candidateGroups": "experts, managers"}


def test_import_replaces_the_file_of_that_name(page: Page, site: Site, tmp_path: Path) -> None:
    edited = tmp_path / "intake.bpmn"
    edited.write_text((BPMN_DIR / "intake.bpmn").read_text(encoding="utf-8").replace(REVISED[1], REVISED[0]))
    open_definition(page, site, "intake:1")
    page.locator("[data-testid=modeler-import-file]").set_input_files(str(edited))
    page.wait_for_function(
        "() => document.querySelector('[data-testid=modeler-status]').textContent.includes('intake')"
    )
    name, saved = export(page)
    assert name == "intake.bpmn"
    assert differences(flatten(edited.read_bytes()), flatten(saved)) == {}


def test_a_banner_says_when_the_deployed_version_differs_from_the_repository(page: Page, site: Site) -> None:
    open_definition(page, site, "intake:1")
    assert page.locator("[data-testid=modeler-canvas] .bjs-powered-by").is_visible()  # bpmn.io's licence
    banner = page.locator("[data-testid=repository-differs]")
    assert banner.is_visible()
    assert banner.locator("[data-testid=modeler-export]").count() == 1
    open_definition(page, site, "market_research:1")
    assert page.locator("[data-testid=repository-differs]").count() == 0


def test_two_versions_side_by_side_mark_what_changed(page: Page, site: Site) -> None:
    open_definition(page, site, "intake:2")
    page.wait_for_selector("[data-testid=compare-newer-version] option >> nth=1", state="attached")
    assert page.locator("[data-testid=compare-older-version]").input_value() == "intake:1"
    assert page.locator("[data-testid=compare-newer-version]").input_value() == "intake:2"
    page.locator("[data-testid=modeler-compare]").click()
    rows = page.locator("[data-testid=diff-row]")
    rows.first.wait_for()
    assert [
        (rows.nth(i).get_attribute("data-element-id"), rows.nth(i).get_attribute("data-kind"))
        for i in range(rows.count())
    ] == [("record_requirements", "changed")]
    assert f"name: {REVISED[1]} → {REVISED[0]}" in rows.first.inner_text()
    for side in ("compare-older", "compare-newer"):
        marked = page.locator(
            f'[data-testid={side}] .djs-element.cf-diff-changed[data-element-id="record_requirements"]'
        )
        assert marked.count() == 1, side


@pytest.mark.parametrize("path", sorted(BPMN_DIR.glob("*.dmn")), ids=lambda p: p.name)
def test_a_decision_table_opens_in_dmn_js_and_saves_unchanged(page: Page, site: Site, path: Path) -> None:
    """The table opens in dmn-js; written by dmn-js (as after an edit), its XML says what it said."""
    open_definition(page, site, "delivery_acceptance:1")
    page.locator(f'[data-testid=resource-tab][data-resource="{path.name}"]').click()
    page.wait_for_selector("[data-testid=modeler-canvas] .tjs-table")
    watermark = page.locator("[data-testid=modeler-canvas] .bjs-powered-by").first
    assert watermark.is_visible()  # bpmn.io's licence
    page.evaluate(
        "() => window.cfModeler.markEdited()"
    )  # export what dmn-js writes, not the text as deployed
    name, saved = export(page)
    assert name == path.name
    assert saved != path.read_bytes()
    assert differences(flatten((BPMN_DIR / name).read_bytes()), flatten(saved)) == {}


def test_picking_an_operation_fills_in_its_declared_inputs(page: Page, site: Site) -> None:
    """crm.note_contact declares engagement_id and channel: the expression already written for engagement_id
    stays, channel starts as the variable of its name, the other parameters go; outputs and errors show."""
    open_definition(page, site, "intake:1")
    select(page, "record_requirements")
    edit(page, "cf-operation", "cf-operation", option="crm.note_contact")
    page.wait_for_selector('[data-entry-id="cf-param-channel"]')
    _, saved = export(page)
    operator = etree.fromstring(saved).xpath(
        "//bpmn:serviceTask[@id='record_requirements']//spiffworkflow:serviceTaskOperator", namespaces=NS
    )[0]
    assert operator.get("id") == "crm.note_contact"
    parameters = [
        (p.get("id"), p.get("type"), p.get("value"))
        for p in operator.iter(f"{{{NS['spiffworkflow']}}}parameter")
    ]
    assert parameters == [("engagement_id", "str", "engagement_id"), ("channel", "str", "channel")]
    open_definition(page, site, "intake:1")
    select(page, "record_requirements")
    reveal(page, "cf-operation", "cf-operation-info")
    info = page.locator('[data-entry-id="cf-operation-info"]')
    info.wait_for()
    assert "requirements_version" in info.inner_text()
    assert "engagement_closed" in info.inner_text()


@pytest.mark.parametrize("path", sorted(BPMN_DIR.glob("*.bpmn")), ids=lambda p: p.name)
def test_bpmnlint_in_the_browser_passes_the_repository_diagrams(page: Page, site: Site, path: Path) -> None:
    """The bundled rules are bpmn/.bpmnlintrc's, which tests/bpmn/test_diagrams.py holds bpmn/ to."""
    open_definition(page, site, f"{process_id(path)}:1")
    page.locator("[data-testid=modeler-validate]").click()
    page.wait_for_selector("[data-testid=modeler-status].cf-good")
    assert page.locator("[data-testid=problem-row]").count() == 0


def test_the_regulation_marks_are_edited_line_by_line() -> None:
    """console/src/modeler/regulation.js under Node's test runner
    (console/test/modeler/regulation.test.mjs)."""
    node, _ = node_and_modules()
    test_file = "console/test/modeler/regulation.test.mjs"
    result = subprocess.run(
        [node, "--test", test_file], cwd=ROOT, capture_output=True, text=True, check=False, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_docs_list_what_the_modeler_edits() -> None:
    """docs/console.md "What the modeler edits" names every item and every name not edited."""
    docs = (ROOT / "docs" / "console.md").read_text(encoding="utf-8")
    section = docs.split("## What the modeler edits", 1)[1].split("\n## ", 1)[0]
    missing = [item["id"] for item in ITEMS if f"| `{item['id']}` |" not in section]
    names = [entry["name"] for entry in LIST["not_edited"]]
    missing += [name for name in names if f"`spiffworkflow:{name}`" not in section]
    assert not missing, f"docs/console.md does not list {missing}"


def test_deploy_is_disabled_for_a_person_who_may_not_deploy(page: Page, site: Site) -> None:
    page.goto(f"{site.url}/index.html?deploy=no&lang=zh#/modeler/intake:1")
    page.wait_for_selector("[data-testid=modeler-canvas] .djs-container")
    assert page.locator("[data-testid=modeler-deploy]").is_disabled()
    assert page.locator("[data-testid=modeler-deploy]").inner_text() == "部署"
    assert page.locator("[data-testid=modeler-validate]").is_enabled()


def test_the_list_names_every_camunda_extension_the_orchestrator_reads() -> None:
    """Every camunda: attribute or element orchestrator/engine.py reads is in the list."""
    source = (ROOT / "services" / "consultflow" / "orchestrator" / "engine.py").read_text(encoding="utf-8")
    read = set(re.findall(r"CAMUNDA_NS\}\}\}(\w+)", source)) | set(re.findall(r"camunda:(\w+)", source))
    edited = " ".join(item["xml"] for item in ITEMS)
    missing = sorted(n for n in read if f"camunda:{n}" not in edited)
    assert {"candidateGroups", "formField", "constraint"} <= read  # engine.py was read
    assert not missing, f"editable.json lacks camunda:{missing}"


def test_validate_lints_every_file_of_the_definition(page: Page, site: Site, tmp_path: Path) -> None:
    """A called process's file, not the open one, breaks a lint rule: its problem names that file, and a
    click opens it with the element selected."""
    broken = tmp_path / "intake.bpmn"
    text = (BPMN_DIR / "intake.bpmn").read_text(encoding="utf-8")
    broken.write_text(text.replace(f'name="{REVISED[1]}"', ""))
    open_definition(page, site, "engagement:1")
    page.locator("[data-testid=modeler-import-file]").set_input_files(str(broken))
    page.wait_for_selector('[data-testid=resource-tab].cf-active[data-resource="intake.bpmn"]')
    page.locator('[data-testid=resource-tab][data-resource="engagement.bpmn"]').click()
    page.wait_for_selector('[data-testid=resource-tab].cf-active[data-resource="engagement.bpmn"]')
    page.locator("[data-testid=modeler-validate]").click()
    row = page.locator('[data-testid=problem-row][data-resource="intake.bpmn"]')
    row.wait_for()
    assert row.get_attribute("data-element-id") == "record_requirements"
    assert row.get_attribute("data-rule") == "lint.label-required"
    row.click()
    page.wait_for_selector('[data-testid=resource-tab].cf-active[data-resource="intake.bpmn"]')
    selected = "window.cfModeler.editor.modeler.get('selection').get().map((e) => e.id).join()"
    page.wait_for_function(f"() => {selected} === 'record_requirements'")
