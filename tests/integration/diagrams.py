"""Small BPMN diagrams for tests: a straight line of service tasks, message catches and error paths.

Written the way the real diagrams are (Spiff service task operators with parameters, messages
correlated on a process variable, coded error boundary events), so a test drives operations through the
real orchestrator exactly as `bpmn/` will.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from xml.sax.saxutils import quoteattr

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Task:
    """A service task `operation`; parameters map names to Python expressions on the process data.
    `catch` names a BPMN error code whose boundary event leads to an end event `<id>_caught`."""

    id: str
    operation: str
    parameters: dict[str, str] = field(default_factory=dict)
    catch: str = ""


@dataclass(frozen=True)
class Wait:
    """An intermediate message catch event for `message`, correlated on the variable `key`."""

    id: str
    message: str
    key: str = "engagement_id"


def line(process_id: str, steps: Sequence[Task | Wait]) -> str:
    """A process: start → steps in order → end."""
    messages = sorted({s.message for s in steps if isinstance(s, Wait)})
    errors = sorted({s.catch for s in steps if isinstance(s, Task) and s.catch})
    head = [f'<bpmn:message id="msg_{i}" name={quoteattr(name)}/>' for i, name in enumerate(messages)] + [
        f'<bpmn:error id="err_{code}" errorCode={quoteattr(code)}/>' for code in errors
    ]
    keys = sorted({s.key for s in steps if isinstance(s, Wait)})
    for key in keys:
        expressions = "".join(
            f'<bpmn:correlationPropertyRetrievalExpression messageRef="msg_{i}">'
            f"<bpmn:formalExpression>{key}</bpmn:formalExpression>"
            "</bpmn:correlationPropertyRetrievalExpression>"
            for i, name in enumerate(messages)
            if any(isinstance(s, Wait) and s.message == name and s.key == key for s in steps)
        )
        head.append(
            f'<bpmn:correlationProperty id="cp_{key}" name="{key}">{expressions}</bpmn:correlationProperty>'
        )
    body = ['<bpmn:startEvent id="start"><bpmn:outgoing>f_start</bpmn:outgoing></bpmn:startEvent>']
    flows = []
    previous, incoming = "start", "f_start"
    for step in steps:
        outgoing = f"f_{step.id}"
        flows.append(f'<bpmn:sequenceFlow id="{incoming}" sourceRef="{previous}" targetRef="{step.id}"/>')
        if isinstance(step, Task):
            parameters = "".join(
                f'<spiffworkflow:parameter id="{name}" type="any" value={quoteattr(expression)}/>'
                for name, expression in step.parameters.items()
            )
            body.append(
                f'<bpmn:serviceTask id="{step.id}" name="{step.operation}"><bpmn:extensionElements>'
                f'<spiffworkflow:serviceTaskOperator id="{step.operation}"><spiffworkflow:parameters>'
                f"{parameters}</spiffworkflow:parameters></spiffworkflow:serviceTaskOperator>"
                f"</bpmn:extensionElements><bpmn:incoming>{incoming}</bpmn:incoming>"
                f"<bpmn:outgoing>{outgoing}</bpmn:outgoing></bpmn:serviceTask>"
            )
            if step.catch:
                body.append(
                    f'<bpmn:boundaryEvent id="{step.id}_error" attachedToRef="{step.id}">'
                    f"<bpmn:outgoing>f_{step.id}_error</bpmn:outgoing>"
                    f'<bpmn:errorEventDefinition errorRef="err_{step.catch}"/></bpmn:boundaryEvent>'
                    f'<bpmn:endEvent id="{step.id}_caught"><bpmn:incoming>f_{step.id}_error</bpmn:incoming>'
                    "</bpmn:endEvent>"
                )
                flows.append(
                    f'<bpmn:sequenceFlow id="f_{step.id}_error" sourceRef="{step.id}_error" '
                    f'targetRef="{step.id}_caught"/>'
                )
        else:
            index = messages.index(step.message)
            body.append(
                f'<bpmn:intermediateCatchEvent id="{step.id}"><bpmn:incoming>{incoming}</bpmn:incoming>'
                f"<bpmn:outgoing>{outgoing}</bpmn:outgoing>"
                f'<bpmn:messageEventDefinition messageRef="msg_{index}"/>'
                "</bpmn:intermediateCatchEvent>"
            )
        previous, incoming = step.id, outgoing
    body.append(f'<bpmn:endEvent id="end"><bpmn:incoming>{incoming}</bpmn:incoming></bpmn:endEvent>')
    flows.append(f'<bpmn:sequenceFlow id="{incoming}" sourceRef="{previous}" targetRef="end"/>')
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" '
        'xmlns:spiffworkflow="http://spiffworkflow.org/bpmn/schema/1.0/core" '
        f'id="defs_{process_id}" targetNamespace="https://consultflow.example/tests">'
        + "".join(head)
        + f'<bpmn:process id="{process_id}" isExecutable="true">'
        + "".join(body)
        + "".join(flows)
        + "</bpmn:process></bpmn:definitions>\n"
    )


def bpmn_folder(tmp_path: Path, diagrams: dict[str, str]) -> Path:
    """A folder holding the given diagrams and the repository's status-to-message mapping."""
    folder = tmp_path / "bpmn"
    folder.mkdir(exist_ok=True)
    for process_id, xml in diagrams.items():
        (folder / f"{process_id}.bpmn").write_text(xml, encoding="utf-8")
    shutil.copy(ROOT / "bpmn" / "status-messages.toml", folder / "status-messages.toml")
    return folder
