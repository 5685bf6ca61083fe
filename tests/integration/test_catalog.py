"""`OperationCatalog.ListOperations` on the five services as they really start (the shared bootstrap, TLS,
the policy table, real NATS and SQLite): each answers its own operations with their contracts, lists the
catalogue in reflection, and refuses callers the table does not name."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator

import grpc
import pytest
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from consultflow.api.catalog.v1 import catalog_pb2 as pb
from consultflow.api.catalog.v1 import catalog_pb2_grpc as pb_grpc
from consultflow.platform.bootstrap import Context, Parts
from consultflow.platform.catalog import SERVICE_NAME, operation_message
from consultflow.platform.jobs import Operations
from tests.support.components import ComponentThread, running
from tests.support.identity import anonymous_channel, signed_channel

SERVICES = ("crm", "contracts", "delivery", "survey", "risk")


@pytest.fixture(scope="module")
def services(
    tmp_path_factory: pytest.TempPathFactory, nats_session_url: str
) -> Iterator[dict[str, ComponentThread]]:
    with (
        running("crm", _build("crm"), tmp_path_factory.mktemp("crm"), nats_session_url, "") as crm,
        running(
            "contracts", _build("contracts"), tmp_path_factory.mktemp("contracts"), nats_session_url, ""
        ) as contracts,
        running(
            "delivery", _build("delivery"), tmp_path_factory.mktemp("delivery"), nats_session_url, ""
        ) as delivery,
        running(
            "survey", _build("survey"), tmp_path_factory.mktemp("survey"), nats_session_url, ""
        ) as survey,
        running("risk", _build("risk"), tmp_path_factory.mktemp("risk"), nats_session_url, "") as risk,
    ):
        yield {"crm": crm, "contracts": contracts, "delivery": delivery, "survey": survey, "risk": risk}


def _build(service: str) -> Callable[[Context], Parts]:
    build: Callable[[Context], Parts] = importlib.import_module(f"consultflow.{service}.app").build
    return build


def _declared(service: str) -> Operations[object]:
    declared: Operations[object] = importlib.import_module(f"consultflow.{service}.jobs").operations
    return declared


def list_operations(address: str, as_: str = "ana", **claims: object) -> pb.ListOperationsResponse:
    with signed_channel(address, as_, **claims) as channel:
        return pb_grpc.OperationCatalogStub(channel).ListOperations(pb.ListOperationsRequest(), timeout=10)


@pytest.mark.parametrize("service", SERVICES)
def test_each_service_answers_its_own_operations_with_their_contracts(
    services: dict[str, ComponentThread], service: str
) -> None:
    answer = list_operations(services[service].address)  # ana: an analyst
    declared = _declared(service)
    assert [o.name for o in answer.operations] == declared.names
    assert list(answer.operations) == [operation_message(spec) for spec in declared.catalogue]
    for operation in answer.operations:
        assert operation.service == service and operation.summary and operation.inputs and operation.outputs


def test_the_answer_carries_types_choices_and_bpmn_errors(services: dict[str, ComponentThread]) -> None:
    delivery = {o.name: o for o in list_operations(services["delivery"].address).operations}
    online = delivery["delivery.plan_online_delivery"]
    inputs = {f.name: f for f in online.inputs}
    assert (inputs["platform"].type, inputs["platform"].required, list(inputs["platform"].values)) == (
        "string",
        True,
        ["email", "online_documents", "video_conference"],
    )
    assert (inputs["channel_tested"].type, inputs["channel_tested"].required) == ("boolean", False)
    assert [e.code for e in online.errors] == ["channel_not_tested"]
    contracts = {o.name: o for o in list_operations(services["contracts"].address).operations}
    assert [e.code for e in contracts["contracts.submit_for_legal_review"].errors] == ["contract_incomplete"]
    assert list(contracts["contracts.prepare_quotation"].clauses) == ["2.3.1"]


def test_ops_and_components_may_read_the_catalogue(services: dict[str, ComponentThread]) -> None:
    address = services["risk"].address
    assert list_operations(address, "otto").operations, "ops"
    assert list_operations(address, "console", roles=["component"]).operations, "a component (the console)"


@pytest.mark.parametrize(
    ("caller", "claims"),
    [("bella", {}), ("client-e1", {"roles": ["client"], "engagement": "E-1"})],
    ids=["staff", "client"],
)
def test_staff_and_clients_are_refused(
    services: dict[str, ComponentThread], caller: str, claims: dict[str, object]
) -> None:
    for service in SERVICES:
        with pytest.raises(grpc.RpcError) as refused:
            list_operations(services[service].address, caller, **claims)
        assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED, service


def test_a_caller_without_credentials_is_unauthenticated(services: dict[str, ComponentThread]) -> None:
    with anonymous_channel(services["crm"].address) as channel, pytest.raises(grpc.RpcError) as refused:
        pb_grpc.OperationCatalogStub(channel).ListOperations(pb.ListOperationsRequest(), timeout=10)
    assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED


def test_reflection_lists_the_catalogue(services: dict[str, ComponentThread]) -> None:
    with signed_channel(services["survey"].address) as channel:
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        answers = stub.ServerReflectionInfo(
            iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=10
        )
        names = [s.name for a in answers for s in a.list_services_response.service]
    assert SERVICE_NAME in names and "consultflow.api.survey.v1.SurveyService" in names
