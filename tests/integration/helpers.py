"""Helpers for service tests: the status events a component published, jobs run through the platform's
idempotent path, and tiny linear diagrams for the orchestrator. (A component itself starts with
`tests.support.components.running`.)"""

from __future__ import annotations

import itertools
import shutil
import uuid
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any
from xml.sax.saxutils import quoteattr

import grpc

from consultflow.api.events.v1 import events_pb2
from consultflow.platform.jobs import Job, JobHandler, Outcome, run_job
from consultflow.platform.settings import repository_root
from tests.integration.status_events import wait_for_types
from tests.support.components import ComponentThread

StatusEvent = events_pb2.StatusEvent
REPOSITORY = repository_root()


def run(thread: ComponentThread, handlers: Mapping[str, JobHandler], job: Job) -> Outcome:
    """Runs a job exactly as the service's worker does (idempotent, in the service's own database)."""
    assert thread.context is not None
    return run_job(thread.context.uow, handlers, job)


def job(operation: str, key: str = "", business_key: str = "", **parameters: Any) -> Job:
    """A job as the orchestrator would send it for a service task with these parameters."""
    return Job(
        key=key or str(uuid.uuid4()),
        operation=operation,
        instance_id="instance-1",
        process_id="test",
        element_id=operation.split(".")[1],
        parameters=parameters,
        variables={},
        attempt=1,
        retries=3,
        business_key=business_key,
    )


def refused(
    thread: ComponentThread, handlers: Mapping[str, JobHandler], operation: str, parameters: Mapping[str, Any]
) -> str:
    """Runs a job the service must refuse without retries; returns the failure message."""
    outcome = run(thread, handlers, job(operation, **parameters))
    assert (outcome.kind, outcome.retries) == ("failed", 0), outcome
    return outcome.message


def rpc_error(call: Callable[[Any], Any], request: Any) -> grpc.RpcError:
    """The error a call must end in."""
    try:
        call(request)
    except grpc.RpcError as error:
        return error
    raise AssertionError(f"{request!r} was accepted")


def assert_rpc_error(call: Callable[[Any], Any], request: Any, code: grpc.StatusCode, text: str) -> None:
    """The call fails with `code`, and its details contain `text` (which names the field)."""
    error = rpc_error(call, request)
    assert (error.code(), text in (error.details() or "")) == (code, True), (request, error.details())


def completed(outcome: Outcome) -> Mapping[str, Any]:
    assert outcome.kind == "completed", outcome
    return outcome.variables


def events_including(nats_url: str, expected: Sequence[str], source: str) -> list[StatusEvent]:
    """Read STATUS until `source` has published at least these event types (with repeats counted)."""
    events = wait_for_types(nats_url, [f"{source}.{event_type}" for event_type in expected])
    return [e for e in events if e.source == source]


# --- tiny diagrams ----------------------------------------------------------------------------------

NAMESPACES = (
    'xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" '
    'xmlns:spiffworkflow="http://spiffworkflow.org/bpmn/schema/1.0/core"'
)


def service_task(element_id: str, operation: str, **parameters: str) -> str:
    """A service task; each parameter is a Python expression on the task's data."""
    params = "".join(
        f'<spiffworkflow:parameter id="{name}" type="any" value={quoteattr(expression)} />'
        for name, expression in parameters.items()
    )
    return (
        f'<bpmn:serviceTask id="{element_id}"><bpmn:extensionElements>'
        f'<spiffworkflow:serviceTaskOperator id="{operation}"><spiffworkflow:parameters>{params}'
        "</spiffworkflow:parameters></spiffworkflow:serviceTaskOperator></bpmn:extensionElements>"
        "</bpmn:serviceTask>"
    )


def message_catch(element_id: str, message: str) -> str:
    """Waits for message `message` (declared by `linear_process`)."""
    return (
        f'<bpmn:intermediateCatchEvent id="{element_id}">'
        f'<bpmn:messageEventDefinition messageRef="msg_{_ident(message)}" /></bpmn:intermediateCatchEvent>'
    )


def linear_process(process_id: str, steps: Sequence[str], messages: Mapping[str, str] | None = None) -> str:
    """start → steps… → end; `messages` maps each message name to the variable its correlation key is in."""
    declarations = []
    for name, key in (messages or {}).items():
        ident = _ident(name)
        declarations.append(
            f'<bpmn:message id="msg_{ident}" name="{name}" />'
            f'<bpmn:correlationProperty id="key_{ident}" name="{key}">'
            f'<bpmn:correlationPropertyRetrievalExpression messageRef="msg_{ident}">'
            f"<bpmn:formalExpression>{key}</bpmn:formalExpression>"
            "</bpmn:correlationPropertyRetrievalExpression></bpmn:correlationProperty>"
        )
    ids = ["start", *(_element_id(step) for step in steps), "end"]
    flows = "".join(
        f'<bpmn:sequenceFlow id="f{i}" sourceRef="{a}" targetRef="{b}" />'
        for i, (a, b) in enumerate(itertools.pairwise(ids))
    )
    return (
        f'<?xml version="1.0" encoding="UTF-8"?><bpmn:definitions {NAMESPACES} id="defs_{process_id}" '
        f'targetNamespace="https://consultflow.example/test">{"".join(declarations)}'
        f'<bpmn:process id="{process_id}" isExecutable="true"><bpmn:startEvent id="start" />'
        f'{"".join(steps)}<bpmn:endEvent id="end" />{flows}</bpmn:process></bpmn:definitions>'
    )


def diagram_folder(tmp_path: Path, name: str, xml: str) -> Path:
    """A bpmn/ folder for the orchestrator with one diagram and the real status-to-message mapping."""
    folder = tmp_path / "bpmn"
    folder.mkdir()
    (folder / f"{name}.bpmn").write_text(xml, encoding="utf-8")
    shutil.copy(REPOSITORY / "bpmn" / "status-messages.toml", folder)
    return folder


def _ident(name: str) -> str:
    return name.replace(".", "_")


def _element_id(step: str) -> str:
    return step.split('id="', 1)[1].split('"', 1)[0]
