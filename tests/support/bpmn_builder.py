"""Compact BPMN for engine tests: write the flow nodes as XML, the sequence flows as `a -> b` lines.

    bpmn("p", '<startEvent id="s"/><endEvent id="e"/>', "s -> e")

A flow line may carry a condition after a colon (`g -> a: x > 1`) or `default` (`g -> b: default`).
Test diagrams carry no diagram interchange: the engine does not need it (the regulation's diagrams do).
"""

from __future__ import annotations

import re
from xml.sax.saxutils import escape

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
