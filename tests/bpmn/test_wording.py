"""The model's Chinese follows docs/glossary.md: no form the glossary rejects (its "Rejected forms" table and
its list of Simplified characters) in a diagram, a decision table or a doc; and one name per element: no two
elements of one diagram share their Chinese or their English name, no two fields of one form their label."""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path

import pytest

from tests.support.catalogue import BPMN_DIR, NS, ROOT, parse

GLOSSARY = ROOT / "docs" / "glossary.md"
# Everything in Chinese the project writes; the original (regulation.zh.txt) and the glossary, which quotes
# the rejected forms, are not among them.
TEXTS = sorted(
    [
        *BPMN_DIR.glob("*.bpmn"),
        *BPMN_DIR.glob("*.dmn"),
        *(p for p in (ROOT / "docs").glob("*.md") if p != GLOSSARY),
        ROOT / "docs" / "regulation" / "clauses.tsv",
        ROOT / "docs" / "regulation" / "regulation.en.md",
    ]
)
CJK = re.compile(r"[\u3400-\u9fff]")
NAMED = (
    "participant",
    "lane",
    "startEvent",
    "endEvent",
    "intermediateThrowEvent",
    "intermediateCatchEvent",
    "boundaryEvent",
    "task",
    "userTask",
    "serviceTask",
    "businessRuleTask",
    "receiveTask",
    "sendTask",
    "scriptTask",
    "manualTask",
    "callActivity",
    "subProcess",
    "exclusiveGateway",
    "parallelGateway",
    "inclusiveGateway",
    "eventBasedGateway",
    "dataObjectReference",
    "dataStoreReference",
    "textAnnotation",
)


def _section(heading: str) -> str:
    text = GLOSSARY.read_text(encoding="utf-8")
    start = text.index(f"\n## {heading}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else len(text)]


def rejected_forms() -> dict[str, str]:
    """Rejected form → preferred form, from the glossary's table and its list of Simplified characters."""
    forms: dict[str, str] = {}
    for line in _section("Rejected forms").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 3 and CJK.search(cells[0]):
            forms[cells[0]] = cells[1]
    block = _section("Simplified characters").split("```")[1]
    for pair in block.split():
        assert len(pair) == 2, f"glossary: {pair!r} is not a Simplified/Traditional pair"
        forms[pair[0]] = pair[1]
    return forms


def test_the_glossary_lists_rejected_forms_and_each_preferred_form_is_itself_accepted() -> None:
    forms = rejected_forms()
    assert {"咨詢", "范圍", "聯系", "后續", "平台"} <= set(forms)
    for rejected, preferred in forms.items():
        assert CJK.search(preferred), rejected
        assert not [r for r in forms if r in preferred], f"{preferred} (for {rejected}) is itself rejected"


@pytest.mark.parametrize("path", TEXTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_rejected_form(path: Path) -> None:
    forms = rejected_forms()
    found = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        found += [f"line {number}: {r} → {forms[r]}" for r in forms if r in line]
    assert found == [], f"{path.name} uses forms docs/glossary.md rejects"


def _parts(name: str) -> tuple[str, str]:
    """`中文 English` → ("中文", "english"): the Chinese is everything before the first Latin letter."""
    match = re.search(r"[A-Za-z]", name)
    if match is None:
        return name.strip(), ""
    return name[: match.start()].strip(), name[match.start() :].strip().lower()


def _diagrams() -> list[Path]:
    return sorted(BPMN_DIR.glob("*.bpmn"))


@pytest.mark.parametrize("path", _diagrams(), ids=lambda p: p.name)
def test_one_name_per_element(path: Path) -> None:
    """A pool is its process, so the process's own name is not counted; sequence flows carry branch labels
    (是 yes, 通過 approved), not element names."""
    root = parse(path)
    chinese: dict[str, list[str]] = defaultdict(list)
    english: dict[str, list[str]] = defaultdict(list)
    for tag in NAMED:
        for element in root.iterfind(f".//bpmn:{tag}", NS):
            name = element.get("name") or ""
            if not name:
                continue
            zh, en = _parts(name)
            chinese[zh].append(element.get("id", ""))
            if en:
                english[en].append(element.get("id", ""))
    alike = {name: ids for names in (chinese, english) for name, ids in names.items() if len(ids) > 1}
    assert alike == {}, "elements named alike: name what differs"


@pytest.mark.parametrize("path", _diagrams(), ids=lambda p: p.name)
def test_one_label_per_form_field_and_value(path: Path) -> None:
    root = parse(path)
    for form in root.iterfind(".//camunda:formData", NS):
        task = form.getparent().getparent().get("id")
        labels = [f.get("label", "") for f in form.iterfind("camunda:formField", NS)]
        assert _repeated([_parts(label)[0] for label in labels]) == [], f"{task}: Chinese labels alike"
        assert _repeated([_parts(label)[1] for label in labels]) == [], f"{task}: English labels alike"
        for field in form.iterfind("camunda:formField", NS):
            values = [v.get("name", "") for v in field.iterfind("camunda:value", NS)]
            assert _repeated(values) == [], f"{task}.{field.get('id')}: values named alike"


@pytest.mark.parametrize("path", _diagrams(), ids=lambda p: p.name)
def test_proposal_and_solution_are_told_apart(path: Path) -> None:
    """The text says 方案 for the proposal (2.3.2 項目方案), the solution (3.3 解決方案) and the quotation
    (2.3.1 報價方案); a name or label of the model says which."""
    root = parse(path)
    texts = [e.get("name", "") for e in root.iter() if isinstance(e.tag, str)]
    texts += [f.get("label", "") for f in root.iterfind(".//camunda:formField", NS)]
    bare = [t for t in texts if re.search(r"(?<!項目|解決|報價)方案", t)]
    assert bare == [], "方案 alone: 項目方案 (proposal), 解決方案 (solution) or 報價方案 (quotation)?"


def _repeated(names: list[str]) -> list[str]:
    return sorted({n for n in names if n and names.count(n) > 1})


def test_the_wording_test_catches_what_it_should(tmp_path: Path) -> None:
    forms = rejected_forms()
    sample = "收到客戶咨詢 工作范圍 聯系人 后續跟進 交付平台 项目"
    assert {r for r in forms if r in sample} >= {"咨詢", "范圍", "聯系", "后續", "平台", "项"}
    diagram = tmp_path / "twins.bpmn"
    diagram.write_text(
        '<definitions xmlns="http://www.omg.org/spec/BPMN/20100524/MODEL"><process id="p">'
        '<serviceTask id="a" name="驗收合格 Close the acceptance"/>'
        '<endEvent id="b" name="驗收合格 Accepted"/>'
        "</process></definitions>",
        encoding="utf-8",
    )
    with pytest.raises(AssertionError, match="named alike"):
        test_one_name_per_element(diagram)
