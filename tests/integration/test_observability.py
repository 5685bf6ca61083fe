"""Metrics and traces of a real run: the orchestrator and crm in-process, a job over JetStream, the reply
over gRPC; /metrics scraped over HTTP, spans taken by an in-memory exporter, log lines as JSON."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import grpc
import nats
import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client.parser import text_string_to_metric_families

from consultflow.api.orchestrator.v1 import orchestrator_pb2 as pb
from consultflow.api.orchestrator.v1 import orchestrator_pb2_grpc as pb_grpc
from consultflow.platform import metrics, tracing
from consultflow.platform.logging import JsonFormatter
from tests.integration.test_skeleton_flow import INQUIRY, SKELETON
from tests.support.bpmn_builder import bpmn, bpmn_folder
from tests.support.identity import anonymous_channel
from tests.support.polling import eventually
from tests.support.system import in_process_system

COMPLETE_JOB = "/consultflow.api.orchestrator.v1.OrchestratorService/CompleteJob"
GET_INSTANCE = "/consultflow.api.orchestrator.v1.OrchestratorService/GetInstance"


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    """Every span this process finishes during the test (the provider is the process's one)."""
    exporter = InMemorySpanExporter()
    tracing.configure("tests", exporters=[exporter])
    yield exporter
    exporter.shutdown()  # stops keeping spans; the provider stays (OpenTelemetry sets it once)


@pytest.fixture
def json_logs() -> Iterator[io.StringIO]:
    """The JSON lines every logger writes during the test, worker DEBUG lines included."""
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(JsonFormatter("tests"))
    root, worker = logging.getLogger(), logging.getLogger("consultflow.platform.worker")
    level = worker.level
    root.addHandler(handler)
    worker.setLevel(logging.DEBUG)
    yield out
    root.removeHandler(handler)
    worker.setLevel(level)


def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """The samples /metrics serves, by name and labels."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
        text = answer.read().decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def run_skeleton(tmp_path: Path, nats_url: str, business_key: str) -> str:
    """Runs the one-job skeleton process to its end; returns the instance id."""
    folder = bpmn_folder(tmp_path, {"skeleton": SKELETON})
    with in_process_system(tmp_path, nats_url, ["crm"], bpmn_dir=folder) as system:
        created = system.orchestrator.CreateInstance(
            pb.CreateInstanceRequest(
                process_id="skeleton", variables_json=json.dumps(INQUIRY), business_key=business_key
            )
        )
        system.wait_completed(created.instance_id)
        return created.instance_id


def test_a_job_a_step_and_a_grpc_call_move_the_scraped_metrics(
    tmp_path: Path, nats_url: str, database_url: str
) -> None:
    """The orchestrator on SQLite and on PostgreSQL (its scrape-time gauges are its own SQL)."""
    port, server = metrics.serve(0, "127.0.0.1")
    try:
        before = scrape(port)
        folder = bpmn_folder(tmp_path, {"skeleton": SKELETON})
        dbs = {"orchestrator": database_url}
        with in_process_system(tmp_path, nats_url, ["crm"], bpmn_dir=folder, database_urls=dbs) as system:
            created = system.orchestrator.CreateInstance(
                pb.CreateInstanceRequest(
                    process_id="skeleton", variables_json=json.dumps(INQUIRY), business_key="M-1"
                )
            )
            system.wait_completed(created.instance_id)
            with pytest.raises(grpc.RpcError):  # NOT_FOUND, counted with its code
                system.orchestrator.GetInstance(pb.GetInstanceRequest(instance_id="no-such-instance"))
            anonymous = pb_grpc.OrchestratorServiceStub(
                anonymous_channel(system.components["orchestrator"].address)
            )
            with pytest.raises(grpc.RpcError):  # refused before any servicer: counted all the same
                anonymous.GetInstance(pb.GetInstanceRequest(instance_id="no-such-instance"))
            during = scrape(port)  # the scrape-time gauges exist while their components run
        after = scrape(port)
    finally:
        server.shutdown()
        server.server_close()

    def moved(name: str, **labels: str) -> float:
        key = (name, tuple(sorted(labels.items())))
        return after.get(key, 0.0) - before.get(key, 0.0)

    operation = {"operation": "crm.record_inquiry"}
    assert moved("consultflow_jobs_created_total", **operation) == 1
    assert moved("consultflow_jobs_completed_total", **operation) == 1
    assert moved("consultflow_jobs_handled_total", service="crm", outcome="completed", **operation) == 1
    assert moved("consultflow_job_dispatch_seconds_count", service="crm") == 1
    assert moved("consultflow_steps_total", outcome="committed") >= 2  # the start, the reply
    assert moved("consultflow_step_duration_seconds_count") >= 2
    assert moved("consultflow_grpc_server_handled_total", method=COMPLETE_JOB, code="OK") == 1
    assert moved("consultflow_grpc_server_handling_seconds_count", method=COMPLETE_JOB) == 1
    assert moved("consultflow_grpc_server_handled_total", method=GET_INSTANCE, code="NOT_FOUND") == 1
    assert moved("consultflow_grpc_server_handled_total", method=GET_INSTANCE, code="UNAUTHENTICATED") == 1
    assert ("consultflow_outbox_backlog", (("component", "crm"),)) in during
    assert ("consultflow_outbox_backlog", (("component", "orchestrator"),)) in during
    assert during[("consultflow_incidents_open", ())] == 0
    assert ("consultflow_outbox_backlog", (("component", "crm"),)) not in after  # removed at stop


def test_one_engagement_is_one_trace_across_nats_and_grpc(
    tmp_path: Path, nats_url: str, spans: InMemorySpanExporter, json_logs: io.StringIO
) -> None:
    instance_id = run_skeleton(tmp_path, nats_url, "T-1")
    root = tracing.instance_root(instance_id)
    finished = spans.get_finished_spans()
    ours = [s for s in finished if s.context is not None and s.context.trace_id == root.trace_id]

    def one(name: str) -> ReadableSpan:
        found = [s for s in ours if s.name == name]
        assert len(found) == 1, f"{name}: {[s.name for s in ours]}"
        return found[0]

    start = one("start skeleton: CreateInstance")
    job = one("job crm.record_inquiry")
    reply = one(COMPLETE_JOB.lstrip("/"))
    step = one("step skeleton: CompleteJob")
    assert start.context is not None and start.context.span_id == root.span_id and start.parent is None
    assert job.parent is not None and job.parent.span_id == start.context.span_id  # over NATS
    assert job.context is not None and reply.parent is not None
    assert reply.parent.span_id == job.context.span_id  # over gRPC
    assert reply.context is not None and step.parent is not None
    assert step.parent.span_id == reply.context.span_id
    assert job.attributes is not None and job.attributes["consultflow.outcome"] == "completed"
    create = next(s for s in finished if s.name.endswith("/CreateInstance"))
    assert create.context is not None and create.context.trace_id != root.trace_id
    assert [link.context.span_id for link in start.links] == [create.context.span_id]

    # the status event crm emitted while handling the job carries the job's trace context
    async def last_inquiry_headers() -> dict[str, str]:
        nc = await nats.connect(nats_url)
        try:
            message = await nc.jetstream().get_last_msg("STATUS", "status.crm.inquiry.recorded")
            return dict(message.headers or {})
        finally:
            await nc.close()

    headers = asyncio.run(last_inquiry_headers())
    assert headers["traceparent"].split("-")[1] == format(root.trace_id, "032x")

    trace_id = format(root.trace_id, "032x")
    lines = [json.loads(line) for line in json_logs.getvalue().splitlines()]
    handled = [line for line in lines if line["logger"] == "consultflow.platform.worker"]
    assert handled and all(line.get("trace_id") == trace_id for line in handled), handled
    assert handled[0]["instance_id"] == instance_id and handled[0]["business_key"] == "T-1"


NOTED = bpmn(
    "noted",
    '<startEvent id="s"><messageEventDefinition messageRef="m_noted"/></startEvent><endEvent id="e"/>',
    "s -> e",
    extra='<message id="m_noted" name="inquiry.noted"/>',
)


def test_a_status_event_mapped_to_a_message_stays_in_the_trace_that_emitted_it(
    tmp_path: Path, nats_url: str, spans: InMemorySpanExporter
) -> None:
    """crm's status event (emitted inside the skeleton's job) starts another process through the STATUS
    bridge: the bridge's span is a child of the event's trace context, and the started instance's own
    trace links back to it."""
    folder = bpmn_folder(tmp_path, {"skeleton": SKELETON, "noted": NOTED})
    (folder / "status-messages.toml").write_text(
        '[[map]]\nsubject = "status.crm.inquiry.recorded"\nmessage = "inquiry.noted"\n'
        'correlation = "engagement_id"\n',
        encoding="utf-8",
    )
    with in_process_system(tmp_path, nats_url, ["crm"], bpmn_dir=folder) as system:
        created = system.orchestrator.CreateInstance(
            pb.CreateInstanceRequest(
                process_id="skeleton", variables_json=json.dumps(INQUIRY), business_key="T-2"
            )
        )
        system.wait_completed(created.instance_id)
        noted = eventually(
            lambda: system.orchestrator.ListInstances(pb.ListInstancesRequest(process_id="noted")).instances,
            "the status event to start 'noted'",
            15.0,
            0.05,
        )
    skeleton_trace = tracing.instance_root(created.instance_id).trace_id
    finished = spans.get_finished_spans()
    (bridge,) = [s for s in finished if s.name == "status status.crm.inquiry.recorded"]
    assert bridge.context is not None and bridge.context.trace_id == skeleton_trace
    job = next(s for s in finished if s.name == "job crm.record_inquiry")
    assert bridge.parent is not None and job.context is not None
    assert bridge.parent.trace_id == skeleton_trace
    noted_root = tracing.instance_root(noted[0].instance_id)
    (start,) = [s for s in finished if s.context is not None and s.context.span_id == noted_root.span_id]
    assert [link.context.span_id for link in start.links] == [bridge.context.span_id]


def test_log_lines_outside_any_trace_carry_no_trace_id(json_logs: io.StringIO) -> None:
    logging.getLogger("consultflow.platform.worker").debug("no job here")
    line = json.loads(json_logs.getvalue().splitlines()[-1])
    assert "trace_id" not in line and "instance_id" not in line
