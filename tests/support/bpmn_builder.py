"""The one BPMN builder for tests: flow nodes as XML, sequence flows as `a -> b` lines.

    bpmn("p", '<startEvent id="s"/><endEvent id="e"/>', "s -> e")

A flow line may carry a condition after a colon (`g -> a: x > 1`) or `default` (`g -> b: default`).
For a service's own tests, `line("p", [Task(...), Wait(...)])` writes start → steps → end the way the
real diagrams do (Spiff service task operators, messages correlated on a process variable, coded error
boundary events), and `bpmn_folder` puts diagrams beside the real status-to-message mapping.
Test diagrams carry no diagram interchange: the engine does not need it (the regulation's diagrams do).
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from pathlib import Path
from xml.sax.saxutils import escape

from consultflow.platform.settings import repository_root

NAMESPACES = (
    'xmlns="http://www.omg.org/spec/BPMN/20100524/MODEL" '
    'xmlns:spiffworkflow="http://spiffworkflow.org/bpmn/schema/1.0/core" '
    'xmlns:camunda="http://camunda.org/schema/1.0/bpmn"'
)


def flows_xml(flows: str, prefix: str = "f") -> tuple[str, dict[str, str]]:
    """Sequence flow XML for the lines of `flows`, and the default flow of each gateway."""
    parts: list[str] = []
    defaults: dict[str, str] = {}
    for number, line in enumerate(text.strip() for text in flows.strip().splitlines() if text.strip()):
        match = re.fullmatch(r"(\w+)\s*->\s*(\w+)(?:\s*:\s*(.+))?", line)
        if match is None:
            raise ValueError(f"bad flow line: {line!r}")
        source, target, condition = match.groups()
        flow_id = f"{prefix}{number}_{source}_{target}"
        if condition == "default":
            defaults[source] = flow_id
            condition = None
        body = (
            f'<conditionExpression xsi:type="tFormalExpression" '
            f'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">{escape(condition)}</conditionExpression>'
            if condition
            else ""
        )
        parts.append(
            f'<sequenceFlow id="{flow_id}" sourceRef="{source}" targetRef="{target}">{body}</sequenceFlow>'
        )
    return "\n".join(parts), defaults


def process_xml(process_id: str, nodes: str, flows: str, executable: bool = True) -> str:
    flow_xml, defaults = flows_xml(flows, prefix=f"{process_id}_f")
    for gateway, flow_id in defaults.items():
        nodes = re.sub(rf'(<\w+Gateway id="{gateway}")', rf'\1 default="{flow_id}"', nodes)
    return (
        f'<process id="{process_id}" isExecutable="{"true" if executable else "false"}">\n'
        f"{nodes}\n{flow_xml}\n</process>"
    )


def bpmn(process_id: str, nodes: str, flows: str, extra: str = "") -> bytes:
    """A definitions document with one process; `extra` goes before it (messages, errors, signals)."""
    return definitions(extra + process_xml(process_id, nodes, flows))


def definitions(body: str) -> bytes:
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<definitions {NAMESPACES} id="defs" '
        f'targetNamespace="https://consultflow.example/test">\n{body}\n</definitions>\n'
    ).encode()


def operation(
    name: str,
    result_variable: str = "",
    retries: int | None = None,
    backoff: int | None = None,
    **params: str,
) -> str:
    """A `spiffworkflow:serviceTaskOperator` extension for a service task's body."""
    return operator_xml(name, params, result_variable, retries, backoff)


def operator_xml(
    name: str,
    params: dict[str, str],
    result_variable: str = "",
    retries: int | None = None,
    backoff: int | None = None,
) -> str:
    parameters = "".join(
        f'<spiffworkflow:parameter id="{key}" type="str" value="{escape(value, {chr(34): "&quot;"})}"/>'
        for key, value in params.items()
    )
    retry = ""
    if retries is not None or backoff is not None:
        attributes = (f' retries="{retries}"' if retries is not None else "") + (
            f' backoff_base="{backoff}"' if backoff is not None else ""
        )
        retry = f"<spiffworkflow:retry{attributes}/>"
    result = f' resultVariable="{result_variable}"' if result_variable else ""
    return (
        f'<extensionElements><spiffworkflow:serviceTaskOperator id="{name}"{result}>'
        f"<spiffworkflow:parameters>{parameters}</spiffworkflow:parameters>{retry}"
        f"</spiffworkflow:serviceTaskOperator></extensionElements>"
    )


def message(message_id: str, name: str, key_expression: str = "key") -> str:
    """A message with a correlation property whose retrieval expression is `key_expression`."""
    return (
        f'<message id="{message_id}" name="{name}"/>'
        f'<correlationProperty id="cp_{message_id}" name="{message_id}_key">'
        f'<correlationPropertyRetrievalExpression messageRef="{message_id}">'
        f"<formalExpression>{key_expression}</formalExpression>"
        f"</correlationPropertyRetrievalExpression></correlationProperty>"
    )


def service_task(task_id: str, op: str, **params: str) -> str:
    return f'<serviceTask id="{task_id}" name="{task_id}">{operator_xml(op, params)}</serviceTask>'


def form(*fields: str) -> str:
    """`camunda:formData` with the given `camunda:formField` elements."""
    return f"<extensionElements><camunda:formData>{''.join(fields)}</camunda:formData></extensionElements>"


def field(field_id: str, kind: str = "string", required: bool = False, values: tuple[str, ...] = ()) -> str:
    inner = "".join(f'<camunda:value id="{v}" name="{v}"/>' for v in values)
    if required:
        inner += '<camunda:validation><camunda:constraint name="required"/></camunda:validation>'
    return f'<camunda:formField id="{field_id}" label="{field_id}" type="{kind}">{inner}</camunda:formField>'


@dataclass(frozen=True)
class Task:
    """A service task `operation`; parameters map names to Python expressions on the process data.
    `catch` names a BPMN error code whose boundary event leads to an end event `<id>_caught`."""

    id: str
    operation: str
    parameters: Mapping[str, str] = dataclass_field(default_factory=dict)
    catch: str = ""


@dataclass(frozen=True)
class Wait:
    """An intermediate message catch event for `message`, correlated on the process variable `key`."""

    id: str
    message: str
    key: str = "engagement_id"


def line(process_id: str, steps: Sequence[Task | Wait]) -> bytes:
    """A process: start → steps in order → end."""
    declarations: dict[str, str] = {}
    message_ids: dict[str, str] = {}
    nodes = ['<startEvent id="start"/>']
    flows: list[str] = []
    previous = "start"
    for step in steps:
        if isinstance(step, Task):
            nodes.append(service_task(step.id, step.operation, **step.parameters))
            if step.catch:
                declarations[f"error {step.catch}"] = (
                    f'<error id="err_{step.catch}" errorCode="{escape(step.catch)}"/>'
                )
                nodes.append(
                    f'<boundaryEvent id="{step.id}_error" attachedToRef="{step.id}">'
                    f'<errorEventDefinition errorRef="err_{step.catch}"/></boundaryEvent>'
                    f'<endEvent id="{step.id}_caught"/>'
                )
                flows.append(f"{step.id}_error -> {step.id}_caught")
        else:
            message_id = message_ids.setdefault(step.message, f"msg_{len(message_ids)}")
            declarations[f"message {step.message}"] = message(message_id, step.message, step.key)
            nodes.append(
                f'<intermediateCatchEvent id="{step.id}">'
                f'<messageEventDefinition messageRef="{message_id}"/></intermediateCatchEvent>'
            )
        flows.append(f"{previous} -> {step.id}")
        previous = step.id
    nodes.append('<endEvent id="end"/>')
    flows.append(f"{previous} -> end")
    return bpmn(process_id, "\n".join(nodes), "\n".join(flows), "".join(declarations.values()))


def bpmn_folder(tmp_path: Path, diagrams: Mapping[str, bytes]) -> Path:
    """A bpmn/ folder for an orchestrator: these diagrams and the real status-to-message mapping."""
    folder = tmp_path / "bpmn"
    folder.mkdir(exist_ok=True)
    for process_id, xml in diagrams.items():
        (folder / f"{process_id}.bpmn").write_bytes(xml)
    shutil.copy(repository_root() / "bpmn" / "status-messages.toml", folder / "status-messages.toml")
    return folder
