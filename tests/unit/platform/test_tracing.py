"""The trace of an instance is derived from its id alone, and trace context travels only when there is one."""

from __future__ import annotations

import uuid

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import NonRecordingSpan

from consultflow.platform import tracing
from consultflow.platform.logging import bind, bound_fields, unbind


def test_an_instance_trace_is_its_uuid_and_stable() -> None:
    instance_id = str(uuid.uuid4())
    root = tracing.instance_root(instance_id)
    assert root.trace_id == uuid.UUID(instance_id).int
    assert tracing.instance_root(instance_id) == root
    other = tracing.instance_root(str(uuid.uuid4()))
    assert other.trace_id != root.trace_id and other.span_id != root.span_id
    assert tracing.instance_root("not-a-uuid").is_valid


def test_headers_gain_a_traceparent_only_inside_a_trace() -> None:
    headers = {"Content-Type": "x"}
    assert tracing.with_trace_context(headers) == headers
    assert tracing.metadata_with_context(None) is None
    root = tracing.instance_root(str(uuid.uuid4()))
    token = otel_context.attach(trace.set_span_in_context(NonRecordingSpan(root)))
    try:
        sent = tracing.with_trace_context(headers)
        metadata = tracing.metadata_with_context([("authorization", "Bearer t")])
    finally:
        otel_context.detach(token)
    assert sent is not None and sent["Content-Type"] == "x"
    assert sent["traceparent"] == f"00-{root.trace_id:032x}-{root.span_id:016x}-01"
    assert metadata == [("authorization", "Bearer t"), ("traceparent", sent["traceparent"])]
    carried = trace.get_current_span(tracing.context_from(sent)).get_span_context()
    assert (carried.trace_id, carried.span_id) == (root.trace_id, root.span_id)


def test_a_later_step_outside_any_trace_joins_the_instance_trace() -> None:
    """A timer firing (no caller) still lands in the instance's trace, provider or not."""
    instance_id = str(uuid.uuid4())
    span = tracing.start_instance_span("step", instance_id, new=False)
    assert span.get_span_context().trace_id == uuid.UUID(instance_id).int


def test_bound_log_fields_end_with_their_scope() -> None:
    token = bind(instance_id="i-1", business_key="")
    assert bound_fields() == {"instance_id": "i-1"}  # an unknown business key is left out
    unbind(token)
    assert bound_fields() == {}
