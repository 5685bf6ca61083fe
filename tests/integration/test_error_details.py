"""Validation errors travel machine-readable: a BadRequest field violation in the status details."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest

from consultflow.api.crm.v1 import crm_pb2 as pb
from consultflow.api.crm.v1 import crm_pb2_grpc as pb_grpc
from consultflow.crm.app import build
from consultflow.platform.errors import InvalidArgument, NotFound
from consultflow.platform.grpcerrors import error_from_rpc, field_violations
from tests.support.components import running
from tests.support.identity import signed_channel


def test_an_invalid_field_is_named_in_the_details_and_a_missing_record_is_not(
    tmp_path: Path, nats_url: str, database_url: str
) -> None:
    with running("crm", build, tmp_path, nats_url, database_url) as component:
        channel = signed_channel(component.address)
        crm = pb_grpc.CrmServiceStub(channel)
        with pytest.raises(grpc.RpcError) as invalid:
            crm.CreateClient(pb.CreateClientRequest(name="  ", industry="retail"))
        with pytest.raises(grpc.RpcError) as missing:
            crm.GetClient(pb.GetClientRequest(client_id="no-such-client"))
        channel.close()

    assert isinstance(invalid.value, grpc.Call)
    assert invalid.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field_violations(invalid.value) == [("name", "is required")]
    assert invalid.value.details() == "name: is required"
    assert field_violations(missing.value) == []
    assert isinstance(error_from_rpc(missing.value, "crm.GetClient"), NotFound)
    translated = error_from_rpc(invalid.value, "crm.CreateClient")
    assert isinstance(translated, InvalidArgument)
