"""The next versions of today's diagrams, as an analyst would change them: edits made with lxml on copies of
the repository's bpmn/ files (the files themselves never change), deployable by the orchestrator's checks.

- intake: the director approves a reviewed proposal before it is recorded (a new user task after
  `review_proposal`, where engagements wait for the experts);
- implementation: `collect_data_form` is renamed `gather_data_form` (a migration needs the mapping);
- delivery_acceptance: the project manager verifies the rectification before the items close (a new user
  task inside the rectification loop, after `complete_rectification_form`);
- follow_up: the revisits become monthly (the `revisit_cycle` timer's expression) and each revisit's notes
  are shared with the delivery team (a new user task after `record_revisit`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lxml import etree

ROOT = Path(__file__).resolve().parents[2]
BPMN_DIR = ROOT / "bpmn"
BPMN = "http://www.omg.org/spec/BPMN/20100524/MODEL"
BPMNDI = "http://www.omg.org/spec/BPMN/20100524/DI"
DC = "http://www.omg.org/spec/DD/20100524/DC"
DI = "http://www.omg.org/spec/DD/20100524/DI"
CAMUNDA = "http://camunda.org/schema/1.0/bpmn"
NS = {"bpmn": BPMN, "bpmndi": BPMNDI, "dc": DC, "di": DI, "camunda": CAMUNDA}

RENAMED = ("collect_data_form", "gather_data_form")  # implementation: old id, new id


@dataclass(frozen=True)
class NewTask:
    """A user task an analyst adds after an element, with one required text field."""

    file: str
    after: str
    task_id: str
    name: str
    group: str
    field_id: str
    field_label: str
    documentation: str


NEW_TASKS = (
    NewTask(
        "intake.bpmn",
        "review_proposal",
        "approve_proposal_form",
        "總監批准項目方案 The director approves the proposal",
        "management",
        "director_remarks",
        "總監意見 Director's remarks",
        "[2.3.2] Proposal and internal review — the director approves a reviewed proposal before the "
        "verdict is recorded.",
    ),
    NewTask(
        "delivery_acceptance.bpmn",
        "complete_rectification_form",
        "verify_rectification_form",
        "驗證整改 Verify the rectification",
        "project_manager",
        "verification_notes",
        "驗證說明 Verification notes",
        "[4.4.3] Acceptance report and rectification loop — the project manager verifies the rectified "
        "deliverables before the items close and acceptance is requested again.",
    ),
    NewTask(
        "follow_up.bpmn",
        "record_revisit",
        "share_revisit_notes_form",
        "分享回訪記錄 Share the revisit's notes",
        "business",
        "revisit_notes_shared_with",
        "分享對象 Shared with",
        "[5.3.1] Periodic revisits — the revisit's notes go to the delivery team.",
    ),
)
NEW_TASK_IDS = {task.task_id for task in NEW_TASKS}
REVISIT_CYCLE = ("revisit_cycle", '"R/P1M"')  # follow_up: the boundary timer and its new (monthly) cycle
CHANGED = ("intake.bpmn", "implementation.bpmn", "delivery_acceptance.bpmn", "follow_up.bpmn")


def _q(namespace: str, tag: str) -> str:
    return f"{{{namespace}}}{tag}"


def _one(root: Any, path: str) -> Any:
    found = root.findall(path, NS)
    assert len(found) == 1, f"{path}: {len(found)} elements"
    return found[0]


def _bounds(root: Any, element_id: str) -> tuple[float, float, float, float]:
    bounds = _one(root, f".//bpmndi:BPMNShape[@bpmnElement='{element_id}']/dc:Bounds")
    return tuple(float(bounds.get(k)) for k in ("x", "y", "width", "height"))  # type: ignore[return-value]


def add_user_task_after(root: Any, task: NewTask) -> None:
    """Puts `task` on the one sequence flow leaving `task.after`: that flow now ends at the task, and a new
    flow takes the task's outcome on to where the old one went. The shape goes below the element it
    follows, in its lane, so the diagram still draws."""
    old = _one(root, f".//bpmn:sequenceFlow[@sourceRef='{task.after}']")
    process = old.getparent()
    target_id = old.get("targetRef")
    new_flow_id = f"flow_{task.task_id}_to_{target_id}"
    old.set("targetRef", task.task_id)
    target = _one(process, f"./*[@id='{target_id}']")
    incoming = _one(target, f"./bpmn:incoming[.='{old.get('id')}']")
    incoming.text = new_flow_id

    user_task = etree.Element(
        _q(BPMN, "userTask"),
        {"id": task.task_id, "name": task.name, _q(CAMUNDA, "candidateGroups"): task.group},
    )
    etree.SubElement(user_task, _q(BPMN, "documentation")).text = task.documentation
    form = etree.SubElement(
        etree.SubElement(user_task, _q(BPMN, "extensionElements")), _q(CAMUNDA, "formData")
    )
    field = etree.SubElement(
        form, _q(CAMUNDA, "formField"), {"id": task.field_id, "label": task.field_label, "type": "string"}
    )
    validation = etree.SubElement(field, _q(CAMUNDA, "validation"))
    etree.SubElement(validation, _q(CAMUNDA, "constraint"), {"name": "required"})
    etree.SubElement(user_task, _q(BPMN, "incoming")).text = old.get("id")
    etree.SubElement(user_task, _q(BPMN, "outgoing")).text = new_flow_id
    after = _one(process, f"./*[@id='{task.after}']")
    after.addnext(user_task)
    old.addnext(
        etree.Element(
            _q(BPMN, "sequenceFlow"), {"id": new_flow_id, "sourceRef": task.task_id, "targetRef": target_id}
        )
    )
    lane_ref = root.find(f".//bpmn:lane/bpmn:flowNodeRef[.='{task.after}']", NS)
    if lane_ref is not None:
        lane_ref.addnext(etree.Element(_q(BPMN, "flowNodeRef")))
        lane_ref.getnext().text = task.task_id

    x, y, width, height = _bounds(root, task.after)
    shape = etree.Element(_q(BPMNDI, "BPMNShape"), {"id": f"{task.task_id}_di", "bpmnElement": task.task_id})
    etree.SubElement(
        shape, _q(DC, "Bounds"), {"x": str(x), "y": str(y + 110), "width": "100", "height": "80"}
    )
    after_shape = _one(root, f".//bpmndi:BPMNShape[@bpmnElement='{task.after}']")
    after_shape.addnext(shape)
    old_edge = _one(root, f".//bpmndi:BPMNEdge[@bpmnElement='{old.get('id')}']")
    end = old_edge.findall("di:waypoint", NS)[-1]
    for waypoint in old_edge.findall("di:waypoint", NS):
        old_edge.remove(waypoint)
    centre_x, task_top = x + width / 2, y + 110
    for wx, wy in ((centre_x, y + height), (centre_x, task_top)):
        etree.SubElement(old_edge, _q(DI, "waypoint"), {"x": str(wx), "y": str(wy)})
    edge = etree.Element(_q(BPMNDI, "BPMNEdge"), {"id": f"{new_flow_id}_di", "bpmnElement": new_flow_id})
    for wx, wy in ((x + 100, task_top + 40), (float(end.get("x")), float(end.get("y")))):
        etree.SubElement(edge, _q(DI, "waypoint"), {"x": str(wx), "y": str(wy)})
    old_edge.addnext(edge)


def rename_element(root: Any, old: str, new: str) -> None:
    """Renames an element's id everywhere the file refers to it (flows, lanes, boundary events, shapes)."""
    _one(root, f".//*[@id='{old}']").set("id", new)
    for attribute in ("sourceRef", "targetRef", "attachedToRef", "bpmnElement"):
        for element in root.iterfind(f".//*[@{attribute}='{old}']"):
            element.set(attribute, new)
    for ref in root.iterfind(f".//bpmn:flowNodeRef[.='{old}']", NS):
        ref.text = new
    shape = root.find(f".//bpmndi:BPMNShape[@id='{old}_di']", NS)
    if shape is not None:
        shape.set("id", f"{new}_di")


def set_timer_cycle(root: Any, event_id: str, cycle: str) -> None:
    _one(root, f".//bpmn:boundaryEvent[@id='{event_id}']//bpmn:timeCycle").text = cycle


def todays_versions() -> dict[str, bytes]:
    """Every diagram and decision table as the repository has them: a deploy parses the files it gets
    together, so the processes and tables the changed ones call come along (unchanged, no new version)."""
    return {p.name: p.read_bytes() for p in sorted(BPMN_DIR.iterdir()) if p.suffix in (".bpmn", ".dmn")}


def next_versions() -> dict[str, bytes]:
    """Today's files with the four changed ones in their place: one deploy, so the engagement that calls
    them gets one new version."""
    trees = {name: etree.parse(str(BPMN_DIR / name)) for name in CHANGED}
    for task in NEW_TASKS:
        add_user_task_after(trees[task.file].getroot(), task)
    rename_element(trees["implementation.bpmn"].getroot(), *RENAMED)
    set_timer_cycle(trees["follow_up.bpmn"].getroot(), *REVISIT_CYCLE)
    changed = {
        name: etree.tostring(tree, xml_declaration=True, encoding="UTF-8") for name, tree in trees.items()
    }
    return todays_versions() | changed
