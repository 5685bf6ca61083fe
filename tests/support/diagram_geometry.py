"""What a person sees when a modeler draws a diagram, checked on its diagram interchange (DI).

`problems(root)` lists, in words an analyst can act on, every drawing defect the regulation-fidelity
review found by eye: a diagram too wide for a screen, a shape straddling a lane or its sub-process, an
edge running through a shape or ending away from its target, a label on a border, outside its pool or on
top of another shape or label, two elements with one name. Each diagram (plane) of a file is checked on
its own, so a collapsed sub-process drawn on its own plane is checked there.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from lxml import etree

from tests.support.catalogue import NS

MAX_WIDTH = 3200.0  # pixels: fits a 1920-pixel screen at a zoom where labels stay legible
TOLERANCE = 2.0  # pixels: how far a drawing may be off before a person would notice
BPMN = "{" + NS["bpmn"] + "}"
NOT_FLOW_NODES = {"sequenceFlow", "association", "textAnnotation", "dataObject", "dataObjectReference"}


@dataclass(frozen=True)
class Box:
    x: float
    y: float
    width: float
    height: float

    @property
    def right(self) -> float:
        return self.x + self.width

    @property
    def bottom(self) -> float:
        return self.y + self.height

    def inside(self, other: Box) -> bool:
        return (
            self.x >= other.x - TOLERANCE
            and self.y >= other.y - TOLERANCE
            and self.right <= other.right + TOLERANCE
            and self.bottom <= other.bottom + TOLERANCE
        )

    def overlaps(self, other: Box) -> bool:
        """True when the two boxes share more than a border line."""
        return (
            self.x < other.right - TOLERANCE
            and other.x < self.right - TOLERANCE
            and self.y < other.bottom - TOLERANCE
            and other.y < self.bottom - TOLERANCE
        )

    def shrunk(self, by: float) -> Box:
        return Box(self.x + by, self.y + by, self.width - 2 * by, self.height - 2 * by)

    def grown(self, by: float) -> Box:
        return self.shrunk(-by)

    def contains(self, point: tuple[float, float]) -> bool:
        return self.x <= point[0] <= self.right and self.y <= point[1] <= self.bottom


def _box(element: etree._Element | None) -> Box | None:
    if element is None:
        return None
    return Box(*(float(element.get(k, "0")) for k in ("x", "y", "width", "height")))


def crosses(segment: tuple[tuple[float, float], tuple[float, float]], box: Box) -> bool:
    """Whether a straight segment passes through the box's interior (Liang–Barsky clipping)."""
    (x0, y0), (x1, y1) = segment
    dx, dy = x1 - x0, y1 - y0
    low, high = 0.0, 1.0
    for p, q in ((-dx, x0 - box.x), (dx, box.right - x0), (-dy, y0 - box.y), (dy, box.bottom - y0)):
        if p == 0:
            if q <= 0:
                return False
            continue
        t = q / p
        if p < 0:
            low = max(low, t)
        else:
            high = min(high, t)
        if low >= high:
            return False
    return True


@dataclass(frozen=True)
class Shape:
    element_id: str
    tag: str  # the BPMN element's local name
    name: str
    box: Box
    label: Box | None


class Plane:
    """One BPMNPlane with the semantic model around it: who contains whom, which lane, which pool."""

    def __init__(self, root: etree._Element, plane: etree._Element) -> None:
        self.root = root
        self.elements = {e.get("id"): e for e in root.iter() if isinstance(e.tag, str) and e.get("id")}
        self.shapes: dict[str, Shape] = {}
        for di in plane.iterfind("bpmndi:BPMNShape", NS):
            element = self.elements.get(di.get("bpmnElement"))
            box = _box(di.find("dc:Bounds", NS))
            if element is None or box is None:
                continue
            label = _box(di.find("bpmndi:BPMNLabel/dc:Bounds", NS))
            local = etree.QName(element).localname
            self.shapes[element.get("id")] = Shape(
                element.get("id"), local, element.get("name", ""), box, label
            )
        self.edges = {
            di.get("bpmnElement"): di
            for di in plane.iterfind("bpmndi:BPMNEdge", NS)
            if di.get("bpmnElement") in self.elements
        }
        self.lane_of = {
            ref.text: lane.get("id")
            for lane in root.iterfind(".//bpmn:lane", NS)
            for ref in lane.iterfind("bpmn:flowNodeRef", NS)
        }
        self.pool_of_process = {
            p.get("processRef"): p.get("id")
            for p in root.iterfind(".//bpmn:participant", NS)
            if p.get("processRef")
        }

    def flow_nodes(self) -> Iterator[Shape]:
        for shape in self.shapes.values():
            if shape.tag not in {"participant", "lane"} | NOT_FLOW_NODES:
                yield shape

    def containers(self, element_id: str) -> list[str]:
        """The drawn sub-processes, lane and pool around an element, innermost first."""
        result: list[str] = []
        element = self.elements[element_id]
        if element.tag == BPMN + "boundaryEvent":
            result.append(element.get("attachedToRef"))
        if element_id in self.lane_of:
            result.append(self.lane_of[element_id])
        parent = element.getparent()
        while parent is not None:
            local = etree.QName(parent).localname
            if local in {"subProcess", "adHocSubProcess", "transaction"} and parent.get("id") in self.shapes:
                result.append(parent.get("id"))
                if parent.get("id") in self.lane_of:
                    result.append(self.lane_of[parent.get("id")])
            if local == "process":
                pool = self.pool_of_process.get(parent.get("id"))
                if pool:
                    result.append(pool)
                break
            parent = parent.getparent()
        return [c for c in result if c in self.shapes]

    def pool(self, element_id: str) -> str | None:
        return next((c for c in self.containers(element_id) if self.shapes[c].tag == "participant"), None)


def _width(plane: Plane) -> float:
    boxes = [s.box for s in plane.shapes.values()] + [s.label for s in plane.shapes.values() if s.label]
    xs = [b.x for b in boxes] + [b.right for b in boxes]
    for edge in plane.edges.values():
        xs += [float(w.get("x", "0")) for w in edge.iterfind("di:waypoint", NS)]
    return max(xs) - min(xs) if xs else 0.0


def _containment(plane: Plane) -> Iterator[str]:
    for shape in plane.flow_nodes():
        for container_id in plane.containers(shape.element_id):
            container = plane.shapes[container_id]
            if shape.tag == "boundaryEvent" and container_id == plane.elements[shape.element_id].get(
                "attachedToRef"
            ):
                continue  # a boundary event sits on its host's border, checked elsewhere
            if not shape.box.inside(container.box):
                yield f"{shape.element_id} is not drawn wholly inside {container.tag} {container_id}"
    for pool in (s for s in plane.shapes.values() if s.tag == "participant"):
        if plane.elements[pool.element_id].get("processRef"):
            continue
        for shape in plane.flow_nodes():
            if shape.box.overlaps(pool.box):
                yield f"{shape.element_id} is drawn on the black-box pool {pool.element_id}"


def _waypoints(edge: etree._Element) -> list[tuple[float, float]]:
    return [(float(w.get("x", "0")), float(w.get("y", "0"))) for w in edge.iterfind("di:waypoint", NS)]


def _edges(plane: Plane) -> Iterator[str]:
    for flow_id, edge in plane.edges.items():
        flow = plane.elements[flow_id]
        source, target = flow.get("sourceRef"), flow.get("targetRef")
        points = _waypoints(edge)
        if len(points) < 2:
            yield f"edge {flow_id} has fewer than two waypoints"
            continue
        segments = list(itertools.pairwise(points))
        for end, point in ((source, points[0]), (target, points[-1])):
            if end in plane.shapes and not plane.shapes[end].box.grown(TOLERANCE + 1).contains(point):
                yield f"edge {flow_id} does not start or end at {end}"
        excused = {source, target}
        for end in (source, target):
            if end in plane.elements:
                excused.update(plane.containers(end))
        for shape in plane.flow_nodes():
            interior = shape.box.shrunk(TOLERANCE)
            if shape.element_id in excused or interior.width <= 0 or interior.height <= 0:
                continue
            if any(crosses(segment, interior) for segment in segments):
                yield f"edge {flow_id} runs through {shape.element_id}"
        for end, allowed in ((source, 0), (target, len(segments) - 1)):
            if end not in plane.shapes or plane.shapes[end].tag in {"subProcess", "participant"}:
                continue
            interior = plane.shapes[end].box.shrunk(TOLERANCE)
            for index, segment in enumerate(segments):
                if index != allowed and crosses(segment, interior):
                    role = "source" if end == source else "target"
                    yield f"edge {flow_id} runs back through its own {role} {end}"


def _labels(plane: Plane) -> Iterator[str]:
    labels: list[tuple[str, Box, set[str]]] = []
    for shape in plane.shapes.values():
        if shape.label is not None and shape.tag not in {"participant", "lane"}:
            labels.append(
                (shape.element_id, shape.label, {shape.element_id, *plane.containers(shape.element_id)})
            )
    for flow_id, edge in plane.edges.items():
        label = _box(edge.find("bpmndi:BPMNLabel/dc:Bounds", NS))
        flow = plane.elements[flow_id]
        if label is not None and flow.get("name"):
            owners = {flow_id}
            for end in (flow.get("sourceRef"), flow.get("targetRef")):
                if end in plane.elements:
                    owners.update(plane.containers(end))
            labels.append((f"edge {flow_id}", label, owners))
    for owner, label, own in labels:
        element_id = owner.removeprefix("edge ")
        pool = next((c for c in own if c in plane.shapes and plane.shapes[c].tag == "participant"), None)
        if pool is not None and not label.inside(plane.shapes[pool].box):
            yield f"the label of {owner} is outside its pool {pool}"
        # a flow between two lanes may carry its label in either; sorted, so the message does not depend on
        # the order a set happens to iterate in
        lanes = sorted(c for c in own if c in plane.shapes and plane.shapes[c].tag == "lane")
        if lanes and not any(label.inside(plane.shapes[lane_id].box) for lane_id in lanes):
            yield f"the label of {owner} lies on the border of lane {lanes[0]}"
        for shape in plane.flow_nodes():
            if shape.element_id not in own and shape.element_id != element_id and label.overlaps(shape.box):
                yield f"the label of {owner} covers {shape.element_id}"
    for index, (owner, label, _) in enumerate(labels):
        for other, other_label, _ in labels[index + 1 :]:
            if label.overlaps(other_label):
                yield f"the labels of {owner} and {other} overlap"


def _names(root: etree._Element) -> Iterator[str]:
    seen: dict[str, str] = {}
    for element in root.iter():
        if not isinstance(element.tag, str) or not element.tag.startswith(BPMN) or not element.get("name"):
            continue
        local = etree.QName(element).localname
        if not (
            local.endswith(("Event", "Task", "Gateway")) or local in {"task", "callActivity", "subProcess"}
        ):
            continue
        name = " ".join(element.get("name", "").split())
        if name in seen:
            yield f"{seen[name]} and {element.get('id')} are both named {name!r}"
        else:
            seen[name] = element.get("id")


def problems(root: etree._Element) -> list[str]:
    """Every drawing defect of a diagram file, one sentence each; empty when it reads well."""
    found: list[str] = list(_names(root))
    for plane_di in root.iterfind(".//bpmndi:BPMNPlane", NS):
        plane = Plane(root, plane_di)
        width = _width(plane)
        if width > MAX_WIDTH:
            found.append(f"plane {plane_di.get('id')} is {width:.0f} px wide (at most {MAX_WIDTH:.0f})")
        found.extend(_containment(plane))
        found.extend(_edges(plane))
        found.extend(_labels(plane))
    return found


def boxes_of(root: etree._Element) -> Iterable[tuple[str, Box]]:
    """Every drawn element's box, for a test that wants to look at one."""
    for plane_di in root.iterfind(".//bpmndi:BPMNPlane", NS):
        for shape in Plane(root, plane_di).shapes.values():
            yield shape.element_id, shape.box
