"""The diagrams as SpiffWorkflow, the orchestrator and a modeler see them, and as docs/operations.md
promises them: they parse and deploy, every element is drawn, bpmnlint is clean, user tasks sit in their
role's lane, service tasks call catalogued operations with their inputs, every variable read is produced
somewhere, messages correlate, timers are valid, labels are bilingual."""

from __future__ import annotations

import ast
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
from lxml import etree
from SpiffWorkflow.bpmn.specs.event_definitions.timer import TimerEventDefinition

from consultflow.orchestrator import engine
from consultflow.orchestrator.runtime import Orchestrator
from consultflow.platform.db import Database, UnitOfWork, migrate
from consultflow.platform.scripting import RestrictedEnvironment
from tests.bpmn.modeler_tools import node_and_modules
from tests.support.catalogue import (
    BPMN_DIR,
    CAMUNDA,
    NS,
    diagram_files,
    lane_groups,
    messages,
    operations,
    parse,
)
from tests.support.regulation_world import resources

FILES = [p.name for p in diagram_files()]
CHAPTERS = {"intake", "implementation", "delivery_acceptance", "follow_up"}
PROCESSES = {"engagement", "risk_management", "market_research", "problem_rectification"} | CHAPTERS
FLOW_NODES = (
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
)
# What an engagement starts with (docs/process-model.md), and what a chapter started on its own needs.
START_VARIABLES = {
    "engagement_id",
    "channel",
    "client_name",
    "client_industry",
    "contact_name",
    "contact_email",
    "contact_phone",
    "question",
}
CJK = re.compile(r"[\u4e00-\u9fff]")
LATIN = re.compile(r"[A-Za-z]")
FORM_TYPES = {"string", "long", "boolean", "date", "enum", "decimal"}


def _root(file: str) -> etree._Element:
    return parse(BPMN_DIR / file)


def _flow_nodes(root: etree._Element) -> list[etree._Element]:
    return [n for tag in FLOW_NODES for n in root.iterfind(f".//bpmn:{tag}", NS)]


def _bounds(root: etree._Element) -> dict[str, tuple[float, float, float, float]]:
    result = {}
    for shape in root.iterfind(".//bpmndi:BPMNShape", NS):
        b = shape.find("dc:Bounds", NS)
        assert b is not None, f"shape {shape.get('id')} has no bounds"
        result[shape.get("bpmnElement")] = tuple(float(b.get(k)) for k in ("x", "y", "width", "height"))
    return result  # type: ignore[return-value]


def _identifiers(expression: str) -> set[str]:
    return {n.id for n in ast.walk(ast.parse(expression.strip(), mode="eval")) if isinstance(n, ast.Name)}


# --------------------------------------------------------------------------------------------- execution


def test_every_process_parses_with_its_call_activities_and_decisions() -> None:
    specs = engine.parse_resources(resources())
    assert set(specs) == PROCESSES
    assert set(specs["engagement"].subprocess_specs) >= CHAPTERS
    assert specs["risk_management"].start_messages == ("engagement.started",)
    assert [element for element, _ in specs["market_research"].start_timers] == ["monthly_research"]
    assert {"delivery_mode.dmn", "risk_matrix.dmn"} <= set(specs["delivery_acceptance"].resource_names)


def test_the_diagrams_deploy(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'o.db'}")
    migrate(db, "orchestrator")
    orchestrator = Orchestrator(db, lambda: UnitOfWork(db, "orchestrator"))
    result = orchestrator.deploy(resources())
    assert {d.process_id for d in result.definitions} == PROCESSES
    assert orchestrator.deploy(resources()).definitions == [], (
        "deploying the same files again changes nothing"
    )
    db.dispose()


# ------------------------------------------------------------------------------------ diagram interchange


@pytest.mark.parametrize("file", FILES)
def test_diagram_interchange_is_complete(file: str) -> None:
    root = _root(file)
    shapes = {s.get("bpmnElement") for s in root.iterfind(".//bpmndi:BPMNShape", NS)}
    edges = {e.get("bpmnElement"): e for e in root.iterfind(".//bpmndi:BPMNEdge", NS)}
    planes = root.findall(".//bpmndi:BPMNPlane", NS)
    assert planes, "no diagram"
    missing = [n.get("id") for n in _flow_nodes(root) if n.get("id") not in shapes]
    missing += [p.get("id") for p in root.iterfind(".//bpmn:participant", NS) if p.get("id") not in shapes]
    missing += [lane.get("id") for lane in root.iterfind(".//bpmn:lane", NS) if lane.get("id") not in shapes]
    assert missing == [], "elements without a shape"
    for flow in root.iterfind(".//bpmn:sequenceFlow", NS):
        edge = edges.get(flow.get("id"))
        assert edge is not None, f"sequence flow {flow.get('id')} has no edge"
        assert len(edge.findall("di:waypoint", NS)) >= 2, f"edge of {flow.get('id')} has no waypoints"
    assert planes[0].get("bpmnElement") == root.find("bpmn:collaboration", NS).get("id")


@pytest.mark.parametrize("file", FILES)
def test_shapes_sit_in_their_lanes_without_overlapping(file: str) -> None:
    root = _root(file)
    bounds = _bounds(root)
    lanes = {
        ref.text: lane.get("id")
        for lane in root.iterfind(".//bpmn:lane", NS)
        for ref in lane.iterfind("bpmn:flowNodeRef", NS)
    }
    nodes = _flow_nodes(root)
    for node in nodes:
        node_id = node.get("id")
        assert node_id in lanes, f"{node_id} is in no lane"
        x, y, w, h = bounds[node_id]
        lx, ly, lw, lh = bounds[lanes[node_id]]
        if node.tag != f"{{{NS['bpmn']}}}subProcess":
            assert lx <= x + w / 2 <= lx + lw and ly <= y + h / 2 <= ly + lh, (
                f"{node_id} is drawn outside its lane"
            )
    for boundary in root.iterfind(".//bpmn:boundaryEvent", NS):
        x, y, w, h = bounds[boundary.get("id")]
        hx, hy, hw, hh = bounds[boundary.get("attachedToRef")]
        cx, cy = x + w / 2, y + h / 2
        on_border = (hx - 1 <= cx <= hx + hw + 1) and (abs(cy - hy) <= 1 or abs(cy - hy - hh) <= 1)
        assert on_border, f"boundary event {boundary.get('id')} is not on its host's border"
    # shapes of the same container must not overlap (boundary events sit on their host, children in theirs)
    containers: dict[Any, list[str]] = {}
    for node in nodes:
        if node.tag != f"{{{NS['bpmn']}}}boundaryEvent":
            containers.setdefault(node.getparent(), []).append(node.get("id"))
    for members in containers.values():
        for i, a in enumerate(members):
            for b in members[i + 1 :]:
                ax, ay, aw, ah = bounds[a]
                bx, by, bw, bh = bounds[b]
                overlap = ax < bx + bw and bx < ax + aw and ay < by + bh and by < ay + ah
                assert not overlap, f"{a} and {b} overlap"


def test_bpmnlint_recommended_rules_and_moddle_import_are_clean() -> None:
    node, modules = node_and_modules()
    result = subprocess.run(
        [
            node,
            str(Path(__file__).with_name("lint.cjs")),
            str(BPMN_DIR / ".bpmnlintrc"),
            *map(str, diagram_files()),
        ],
        env={**os.environ, "NODE_PATH": str(modules)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    print(result.stdout)
    assert result.returncode == 0, result.stdout + result.stderr


# ---------------------------------------------------------------------------------- the catalogue's rules


@pytest.mark.parametrize("file", FILES)
def test_user_tasks_belong_to_the_lane_of_their_candidate_group(file: str) -> None:
    root = _root(file)
    groups = lane_groups()
    lane_of: dict[str, str] = {}
    for lane in root.iterfind(".//bpmn:lane", NS):
        assert lane.get("name") in groups, f"lane {lane.get('name')!r} is not a catalogued role"
        for ref in lane.iterfind("bpmn:flowNodeRef", NS):
            lane_of[ref.text or ""] = groups[lane.get("name", "")]
    tasks = root.findall(".//bpmn:userTask", NS)
    for task in tasks:
        assert task.get(f"{CAMUNDA}candidateGroups") == lane_of[task.get("id", "")], task.get("id")


def _required(field: etree._Element) -> bool:
    return field.find("camunda:validation/camunda:constraint[@name='required']", NS) is not None


@pytest.mark.parametrize("file", FILES)
def test_forms_declare_types_values_and_bilingual_labels(file: str) -> None:
    root = _root(file)
    always_set = {f.get("id") for f in root.iterfind(".//camunda:formField", NS) if _required(f)}
    for task in root.iterfind(".//bpmn:userTask", NS):
        fields = task.findall("bpmn:extensionElements/camunda:formData/camunda:formField", NS)
        # a field whose variable the task's preScript sets keeps that value when left empty
        prescript = task.findtext("bpmn:extensionElements/spiffworkflow:preScript", "", NS)
        preset = set(re.findall(r"^(\w+) =", prescript, re.MULTILINE))
        assert fields, f"{task.get('id')} has no form"
        for f in fields:
            where = f"{task.get('id')}.{f.get('id')}"
            assert f.get("type") in FORM_TYPES, where
            assert CJK.search(f.get("label", "")) and LATIN.search(f.get("label", "")), where
            values = f.findall("camunda:value", NS)
            assert (f.get("type") == "enum") == bool(values), f"{where}: enum values"
            for value in values:
                assert CJK.search(value.get("name", "")), f"{where}: {value.get('id')}"
            # an optional field needs a default, unless another form always sets its variable (then an
            # empty field keeps the current value): otherwise an operation could read an unset variable
            if _required(f):
                assert f.get("defaultValue") is None, f"{where}: required with a default"
            else:
                assert f.get("defaultValue") is not None or f.get("id") in always_set | preset, (
                    f"{where}: no default"
                )


@pytest.mark.parametrize("file", FILES)
def test_service_tasks_call_catalogued_operations_with_their_inputs(file: str) -> None:
    catalogue = operations()
    for task in _root(file).iterfind(".//bpmn:serviceTask", NS):
        operator = task.find("bpmn:extensionElements/spiffworkflow:serviceTaskOperator", NS)
        assert operator is not None, task.get("id")
        name = operator.get("id", "")
        assert name in catalogue, f"{task.get('id')}: {name} is not in docs/operations.md"
        params = [
            p.get("id") for p in operator.iterfind("spiffworkflow:parameters/spiffworkflow:parameter", NS)
        ]
        required, optional = set(catalogue[name].inputs), set(catalogue[name].optional)
        assert required <= set(params) <= required | optional, f"{task.get('id')} ({name})"
        assert len(params) == len(set(params)), task.get("id")


@pytest.mark.parametrize("file", FILES)
def test_parameters_pass_only_values_the_operation_accepts(file: str) -> None:
    """Where the catalogue lists an input's values, a literal parameter is one of them and a form field
    the parameter reads offers only those."""
    catalogue = operations()
    root = _root(file)
    enum_values = {
        f.get("id"): {v.get("id") for v in f.iterfind("camunda:value", NS)}
        for f in root.iterfind(".//camunda:formField[@type='enum']", NS)
    }
    for operator in root.iterfind(".//spiffworkflow:serviceTaskOperator", NS):
        accepted = catalogue[operator.get("id", "")].values
        for p in operator.iterfind("spiffworkflow:parameters/spiffworkflow:parameter", NS):
            allowed = set(accepted.get(p.get("id", ""), ()))
            if not allowed:
                continue
            expression = p.get("value", "")
            if expression.startswith('"'):
                offered = {ast.literal_eval(expression)}
            elif expression in enum_values:
                offered = enum_values[expression]
            else:
                continue  # a start variable or an operation's output: the service checks it
            assert offered <= allowed, f"{operator.get('id')}.{p.get('id')}: {offered - allowed}"


def test_every_variable_a_diagram_reads_is_produced_somewhere() -> None:
    """Form field ids, operation outputs, decision outputs, message variables, multi-instance input items and
    the engagement's start variables are all a diagram can read: parameters, conditions, payloads and timers
    use nothing else."""
    produced = set(START_VARIABLES)
    for operation in operations().values():
        produced |= set(operation.outputs)
    for message in messages().values():
        produced |= {message.key, *message.carries}
    for dmn in BPMN_DIR.glob("*.dmn"):
        produced |= {o.get("name") for o in parse(dmn).iter("{*}output")}
    expressions: list[tuple[str, str]] = []
    for file in FILES:
        root = _root(file)
        produced |= {f.get("id") for f in root.iterfind(".//camunda:formField", NS)}
        # a multi-instance activity's input item: each instance's element of the collection
        produced |= {i.get("id") for i in root.iterfind(".//bpmn:inputDataItem", NS)}
        for p in root.iterfind(".//spiffworkflow:parameter", NS):
            expressions.append((f"{file} parameter {p.get('id')}", p.get("value", "")))
        for tag in (
            "bpmn:conditionExpression",
            "spiffworkflow:messagePayload",
            "bpmn:timeDuration",
            "bpmn:timeCycle",
            "bpmn:timeDate",
        ):
            for e in root.iterfind(f".//{tag}", NS):
                expressions.append((f"{file} {tag}", e.text or ""))
    allowed = produced | {"str", "int", "len"}
    for where, expression in expressions:
        unknown = _identifiers(expression) - allowed
        assert not unknown, f"{where} reads {unknown}, which nothing produces"


@pytest.mark.parametrize("file", FILES)
def test_messages_are_catalogued_and_correlated(file: str) -> None:
    root = _root(file)
    catalogue = messages()
    retrieval = {
        (r.get("messageRef"), (r.find("bpmn:formalExpression", NS).text or "").strip())
        for r in root.iterfind(".//bpmn:correlationPropertyRetrievalExpression", NS)
    }
    for message in root.iterfind("bpmn:message", NS):
        name = message.get("name", "")
        assert name in catalogue, f"{name} is not in docs/operations.md"
        assert (message.get("id"), catalogue[name].key) in retrieval, f"{name} does not correlate on its key"
    for definition in root.iterfind(".//bpmn:messageEventDefinition", NS):
        event = definition.getparent()
        throws = event.tag.endswith(("endEvent", "intermediateThrowEvent"))
        payload = definition.find("bpmn:extensionElements/spiffworkflow:messagePayload", NS)
        if throws:  # a thrown message carries its key and what the catalogue says it carries
            assert payload is not None, event.get("id")
            name = root.find(f"bpmn:message[@id='{definition.get('messageRef')}']", NS).get("name")
            keys = {k.value for k in ast.parse(payload.text or "", mode="eval").body.keys}  # type: ignore[attr-defined]
            assert keys == {catalogue[name].key, *catalogue[name].carries}, event.get("id")


@pytest.mark.parametrize("file", FILES)
def test_timer_expressions_evaluate_to_iso_8601(file: str) -> None:
    environment = RestrictedEnvironment()
    for tag in ("timeDuration", "timeCycle", "timeDate"):
        for element in _root(file).iterfind(f".//bpmn:{tag}", NS):
            value = environment.evaluate(
                element.text or "",
                {
                    "validity_days": 30,
                    "warning_level": "red",
                    "survey_date": "2030-06-01",
                    "delivery_time": "2030-06-01T10:00:00+08:00",
                },
            )
            if tag == "timeCycle":
                _cycles, _start, duration = TimerEventDefinition.parse_iso_recurring_interval(value)
                assert duration.total_seconds() > 0
            elif tag == "timeDuration":
                assert TimerEventDefinition.parse_iso_duration(value)
            else:
                TimerEventDefinition.get_datetime(value)


@pytest.mark.parametrize("file", FILES)
def test_labels_are_bilingual(file: str) -> None:
    root = _root(file)
    named = [
        *_flow_nodes(root),
        *root.iterfind(".//bpmn:lane", NS),
        *root.iterfind(".//bpmn:participant", NS),
    ]
    for element in named:
        name = element.get("name")
        if name is None:
            assert element.tag.endswith("Gateway") and len(element.findall("bpmn:outgoing", NS)) == 1, (
                f"{element.get('id')} needs a name"
            )
            continue
        assert CJK.search(name) and LATIN.search(name), f"{element.get('id')}: {name!r}"


DEFAULTS = {"cancelActivity": "true", "isInterrupting": "true"}  # BPMN defaults a modeler may omit


def _canonical(element: etree._Element) -> str:
    """The element's meaning without layout, attribute or child order, or whitespace."""
    if not isinstance(element.tag, str) or element.tag.startswith("{" + NS["bpmndi"]):
        return ""
    children = sorted(filter(None, (_canonical(c) for c in element)))
    attributes = sorted((k, v) for k, v in element.attrib.items() if DEFAULTS.get(k) != v)
    return f"<{element.tag} {attributes} {(element.text or '').strip()!r} {children}>"


def test_a_diagram_saved_again_by_a_modeler_keeps_what_the_engine_reads(tmp_path: Path) -> None:
    """bpmn-moddle with Camunda's descriptor (camunda-bpmn-moddle, as Camunda Modeler) imports and exports
    each diagram: the result means the same and still parses and deploys."""
    node, modules = node_and_modules()
    result = subprocess.run(
        [node, str(Path(__file__).with_name("resave.cjs")), str(tmp_path), *map(str, diagram_files())],
        env={**os.environ, "NODE_PATH": str(modules)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    for path in diagram_files():
        assert _canonical(parse(tmp_path / path.name)) == _canonical(parse(path)), path.name
    resaved = {**resources(), **{p.name: (tmp_path / p.name).read_bytes() for p in diagram_files()}}
    assert set(engine.parse_resources(resaved)) == PROCESSES
