"""Every request is checked before a servicer sees it: undecodable strings and control characters are
refused naming the field, whatever the component."""

from __future__ import annotations

import pytest

from consultflow.api.crm.v1 import crm_pb2
from consultflow.api.orchestrator.v1 import orchestrator_pb2 as pb
from consultflow.platform.errors import InvalidArgument
from consultflow.platform.inputs import is_name_field, refuse_control_characters
from consultflow.platform.requestcheck import Undecodable, check_request, invalid_utf8_field, tolerant


def field_bytes(number: int, payload: bytes) -> bytes:
    """A length-delimited field in protobuf's wire format (the payload is not checked)."""
    return bytes([number << 3 | 2, len(payload)]) + payload


def number_of(message: type, name: str) -> int:
    return int(message.DESCRIPTOR.fields_by_name[name].number)  # type: ignore[attr-defined]


def test_the_field_that_is_not_utf8_is_named_even_inside_a_list() -> None:
    resource = field_bytes(number_of(pb.Resource, "name"), b"ok.bpmn") + field_bytes(
        number_of(pb.Resource, "content"), b"\xff\xfe"
    )
    bad_resource = field_bytes(number_of(pb.Resource, "name"), b"bad\xc3(.bpmn")
    data = field_bytes(number_of(pb.DeployResourcesRequest, "resources"), resource) + field_bytes(
        number_of(pb.DeployResourcesRequest, "resources"), bad_resource
    )
    assert invalid_utf8_field(data, pb.DeployResourcesRequest.DESCRIPTOR) == "resources.name"


def test_a_tolerant_deserializer_answers_with_the_field_instead_of_failing() -> None:
    data = field_bytes(number_of(pb.CreateInstanceRequest, "process_id"), b"p") + field_bytes(
        number_of(pb.CreateInstanceRequest, "business_key"),
        b"\xed\xa0\x80",  # a lone surrogate
    )
    request = tolerant(pb.CreateInstanceRequest.FromString)(data)  # type: ignore[misc]
    assert isinstance(request, Undecodable)
    assert (request.error.field, request.error.problem) == ("business_key", "is not valid UTF-8")
    plain = crm_pb2.GetClientRequest(client_id="c")
    assert tolerant(crm_pb2.GetClientRequest.FromString)(plain.SerializeToString()) == plain  # type: ignore[misc]


@pytest.mark.parametrize(
    ("request_", "field"),
    [
        (pb.CreateInstanceRequest(process_id="p\x00"), "process_id"),
        (pb.CreateInstanceRequest(process_id="p", business_key="k\nforged log line"), "business_key"),
        (pb.PublishMessageRequest(name="m\x1b[31m", correlation_key="k"), "name"),
        (pb.PublishMessageRequest(name="m", correlation_key="k\u202e"), "correlation_key"),
        (pb.ClaimUserTaskRequest(user_task_id="t", assignee="ann\r"), "assignee"),
        (pb.DeployResourcesRequest(resources=[pb.Resource(name="a\tb.bpmn")]), "resources.name"),
        (pb.CancelInstanceRequest(instance_id="i", reason="stuck\x07"), "reason"),
    ],
)
def test_control_characters_are_refused_naming_the_field(request_: object, field: str) -> None:
    with pytest.raises(InvalidArgument) as refused:
        check_request(request_)  # type: ignore[arg-type]
    assert refused.value.field == field
    assert "control character" in refused.value.problem


def test_free_text_keeps_its_line_breaks_and_tabs() -> None:
    check_request(pb.CancelInstanceRequest(instance_id="i", reason="first line\nsecond\tline"))
    check_request(crm_pb2.CreateClientRequest(name="Acme 株式会社", industry="retail"))


def test_names_ids_and_keys_are_told_from_free_text() -> None:
    assert all(is_name_field(f) for f in ("process_id", "business_key", "name", "operation", "assignee"))
    assert all(is_name_field(f) for f in ("correlation_key", "resources.name", "completed_by", "page_token"))
    assert not any(is_name_field(f) for f in ("description", "reason", "variables_json", "notes"))
    assert refuse_control_characters("f", "a\nb", name=False) == "a\nb"
    with pytest.raises(InvalidArgument, match="U\\+000A at position 1"):
        refuse_control_characters("f", "a\nb", name=True)
