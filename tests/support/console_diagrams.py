"""Small diagrams the console tests deploy, drawn (with diagram interchange) so that the console's
bpmn-js can show them: the builder's test diagrams carry none, and bpmn-js leaves undrawn what has none."""

from __future__ import annotations

from dataclasses import dataclass
from xml.sax.saxutils import quoteattr

from tests.support.bpmn_builder import operation

BPMN_NS = "http://www.omg.org/spec/BPMN/20100524/MODEL"


@dataclass(frozen=True)
class Step:
    """One flow node of a straight line: its tag, id, name ("中文 English") and inner XML."""

    tag: str
    id: str
    name: str = ""
    body: str = ""
    attributes: str = ""


SIZES = {"startEvent": (36, 36), "endEvent": (36, 36)}
TASK_SIZE = (120, 80)
GAP = 60
MIDDLE_Y = 160


def drawn_line(process_id: str, name: str, steps: list[Step]) -> bytes:
    """A process whose steps follow each other from left to right, with its drawing."""
    nodes: list[str] = []
    flows: list[str] = []
    shapes: list[str] = []
    edges: list[str] = []
    x = 100
    previous: tuple[str, int, int] | None = None  # id, right edge x, centre y
    for index, step in enumerate(steps):
        width, height = SIZES.get(step.tag, TASK_SIZE)
        y = MIDDLE_Y - height // 2
        incoming = outgoing = ""
        if previous is not None:
            incoming = f"<incoming>flow_{index - 1}</incoming>"
        if index < len(steps) - 1:
            outgoing = f"<outgoing>flow_{index}</outgoing>"
        label = f" name={quoteattr(step.name)}" if step.name else ""
        nodes.append(
            f'<{step.tag} id="{step.id}"{label}{step.attributes}>{step.body}{incoming}{outgoing}</{step.tag}>'
        )
        shapes.append(
            f'<bpmndi:BPMNShape id="{step.id}_di" bpmnElement="{step.id}">'
            f'<dc:Bounds x="{x}" y="{y}" width="{width}" height="{height}"/></bpmndi:BPMNShape>'
        )
        if previous is not None:
            source, source_x, _ = previous
            flows.append(f'<sequenceFlow id="flow_{index - 1}" sourceRef="{source}" targetRef="{step.id}"/>')
            edges.append(
                f'<bpmndi:BPMNEdge id="flow_{index - 1}_di" bpmnElement="flow_{index - 1}">'
                f'<di:waypoint x="{source_x}" y="{MIDDLE_Y}"/><di:waypoint x="{x}" y="{MIDDLE_Y}"/>'
                f"</bpmndi:BPMNEdge>"
            )
        previous = (step.id, x + width, MIDDLE_Y)
        x += width + GAP
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<definitions xmlns="{BPMN_NS}" '
        'xmlns:bpmndi="http://www.omg.org/spec/BPMN/20100524/DI" '
        'xmlns:dc="http://www.omg.org/spec/DD/20100524/DC" '
        'xmlns:di="http://www.omg.org/spec/DD/20100524/DI" '
        'xmlns:spiffworkflow="http://spiffworkflow.org/bpmn/schema/1.0/core" '
        'xmlns:camunda="http://camunda.org/schema/1.0/bpmn" '
        f'id="defs_{process_id}" targetNamespace="https://consultflow.example/console-test">\n'
        f'<process id="{process_id}" name={quoteattr(name)} isExecutable="true">\n'
        + "\n".join(nodes + flows)
        + "\n</process>\n"
        f'<bpmndi:BPMNDiagram id="diagram_{process_id}">'
        f'<bpmndi:BPMNPlane id="plane_{process_id}" bpmnElement="{process_id}">\n'
        + "\n".join(shapes + edges)
        + "\n</bpmndi:BPMNPlane></bpmndi:BPMNDiagram>\n</definitions>\n"
    ).encode()


def confirmation_form() -> str:
    return (
        "<extensionElements><camunda:formData>"
        '<camunda:formField id="confirmed_by" label="確認人 Confirmed by" type="string">'
        '<camunda:validation><camunda:constraint name="required"/></camunda:validation>'
        "</camunda:formField></camunda:formData></extensionElements>"
    )


def inquiry_check(process_id: str = "console_inquiry_check") -> bytes:
    """Records an inquiry in crm (a real operation, which writes to crm's database) without retries,
    then waits for business staff to confirm it: a failing write is an incident at once, and an instance
    whose write succeeded waits at `confirm_inquiry` for someone to complete it."""
    return drawn_line(
        process_id,
        "諮詢登記檢查 Inquiry check",
        [
            Step("startEvent", "check_started", "收到諮詢 Inquiry arrives"),
            Step(
                "serviceTask",
                "record_inquiry",
                "記錄客戶諮詢 Record the inquiry",
                operation("crm.record_inquiry", retries=0),
            ),
            Step(
                "userTask",
                "confirm_inquiry",
                "確認諮詢 Confirm the inquiry",
                confirmation_form(),
                ' camunda:candidateGroups="business"',
            ),
            Step("endEvent", "check_done", "完成 Done"),
        ],
    )


def one_task(process_id: str = "console_bench") -> bytes:
    """Start → one user task for business staff → end: the cheapest instance that stays open."""
    return drawn_line(
        process_id,
        "基準 Benchmark",
        [
            Step("startEvent", "bench_started", "開始 Start"),
            Step(
                "userTask",
                "bench_task",
                "待辦 To do",
                confirmation_form(),
                ' camunda:candidateGroups="business"',
            ),
            Step("endEvent", "bench_done", "完成 Done"),
        ],
    )


def inquiry_variables(key: str) -> dict[str, str]:
    """What crm.record_inquiry needs, as an engagement starts with it (demo/stories.py's shape)."""
    return {
        "engagement_id": key,
        "channel": "email",
        "client_name": f"測試客戶 Test client {key}",
        "client_industry": "manufacturing",
        "contact_name": "Lin Mei",
        "contact_email": "lin.mei@example.com",
        "contact_phone": "",
        "question": "How do we shorten our order-to-delivery time?",
    }


def review_versions(process_id: str = "console_review") -> tuple[bytes, bytes]:
    """Two versions of one process for the migration tests. Version 1: start → `review` (a user task) →
    end. Version 2 renames the wait to `check` and puts a new `triage` before it: an instance waiting at
    `review` cannot move to version 2 until a mapping `review` → `check` says where its task goes; start
    and end map by their ids; `triage` and `check` are new in version 2."""
    task = (confirmation_form(), ' camunda:candidateGroups="business"')
    first = drawn_line(
        process_id,
        "審閱 Review",
        [
            Step("startEvent", "review_started", "開始 Start"),
            Step("userTask", "review", "審閱 Review", *task),
            Step("endEvent", "review_done", "完成 Done"),
        ],
    )
    second = drawn_line(
        process_id,
        "審閱 Review",
        [
            Step("startEvent", "review_started", "開始 Start"),
            Step("userTask", "triage", "分流 Triage", *task),
            Step("userTask", "check", "審核 Check", *task),
            Step("endEvent", "review_done", "完成 Done"),
        ],
    )
    return first, second
