"""A component's replicas as one address (`consultflow up --replicas`): real TLS gRPC servers behind a
comma-separated list, called round robin; a stopped replica is skipped, and a list that is not IPv4
`host:port` pairs is refused with a message saying so."""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Iterator
from concurrent import futures
from pathlib import Path

import grpc
import pytest
from google.protobuf.descriptor_pb2 import MethodOptions
from google.protobuf.message import Message
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from consultflow import api
from consultflow.api.crm.v1 import crm_pb2, crm_pb2_grpc
from consultflow.platform.security import API_FILES, channel_target, safe_to_repeat, secure_channel
from consultflow.platform.tls import CertificateFiles, LocalAuthority


class UnavailableOnce:
    """crm's GetClient (a read) and AddContact (adds a record), each answered UNAVAILABLE the first time it
    is called on any replica, as by a replica that went away: counts every call that arrives."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def _answer(self, name: str, reply: Message) -> Callable[[Message, grpc.ServicerContext], Message]:
        def handle(_request: Message, context: grpc.ServicerContext) -> Message:
            self.calls.append(name)
            if self.calls.count(name) == 1:
                context.abort(grpc.StatusCode.UNAVAILABLE, "the replica is stopping")
            return reply

        return handle

    def handler(self) -> grpc.GenericRpcHandler:
        return grpc.method_handlers_generic_handler(
            crm_pb2.DESCRIPTOR.services_by_name["CrmService"].full_name,
            {
                "GetClient": grpc.unary_unary_rpc_method_handler(
                    self._answer("GetClient", crm_pb2.Client(client_id="c-1")),
                    request_deserializer=crm_pb2.GetClientRequest.FromString,
                    response_serializer=crm_pb2.Client.SerializeToString,
                ),
                "AddContact": grpc.unary_unary_rpc_method_handler(
                    self._answer("AddContact", crm_pb2.Contact(name="Li")),
                    request_deserializer=crm_pb2.AddContactRequest.FromString,
                    response_serializer=crm_pb2.Contact.SerializeToString,
                ),
            },
        )


unavailable_once = UnavailableOnce()


@pytest.fixture
def replicas(tmp_path: Path) -> Iterator[tuple[list[grpc.Server], list[int], Path]]:
    authority = LocalAuthority(tmp_path / "ca")
    files = authority.issue(tmp_path / "server", "consultflow")
    servers, ports = [], []
    for _ in range(2):
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
        health_pb2_grpc.add_HealthServicer_to_server(health.HealthServicer(), server)
        server.add_generic_rpc_handlers([unavailable_once.handler()])
        ports.append(server.add_secure_port("127.0.0.1:0", CertificateFiles(files).credentials()))
        server.start()
        servers.append(server)
    yield servers, ports, files.ca
    for server in servers:
        server.stop(None)


def test_a_list_of_replicas_is_served_by_whichever_runs(
    replicas: tuple[list[grpc.Server], list[int], Path],
) -> None:
    servers, ports, ca = replicas
    with secure_channel(",".join(f"127.0.0.1:{port}" for port in ports), ca) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        assert stub.Check(health_pb2.HealthCheckRequest(), timeout=5).status == 1
        servers[0].stop(None)
        for _ in range(5):  # each call reaches the replica that still runs
            assert stub.Check(health_pb2.HealthCheckRequest(), timeout=5, wait_for_ready=True).status == 1


def test_one_address_is_taken_as_it_is() -> None:
    assert channel_target("crm.consultflow.svc:50051") == ("crm.consultflow.svc:50051", [])


def test_a_list_of_names_is_refused() -> None:
    with pytest.raises(ValueError, match="IPv4 host:port"):
        channel_target("crm-0:50051,crm-1:50051")


def test_only_a_call_safe_to_repeat_is_repeated_after_unavailable(
    replicas: tuple[list[grpc.Server], list[int], Path],
) -> None:
    """The read is sent again and answered; the call that adds a contact fails to its caller, once."""
    _, ports, ca = replicas
    unavailable_once.calls.clear()
    with secure_channel(",".join(f"127.0.0.1:{port}" for port in ports), ca) as channel:
        stub = crm_pb2_grpc.CrmServiceStub(channel)
        assert stub.GetClient(crm_pb2.GetClientRequest(client_id="c-1"), timeout=5).client_id == "c-1"
        with pytest.raises(grpc.RpcError) as refused:
            stub.AddContact(crm_pb2.AddContactRequest(client_id="c-1", name="Li"), timeout=5)
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
    assert unavailable_once.calls == ["GetClient", "GetClient", "AddContact"]


def test_every_read_is_declared_free_of_side_effects() -> None:
    """A new Get/List/Search/Watch method without `option idempotency_level = NO_SIDE_EFFECTS` would
    silently lose the retry on a list of replicas."""
    undeclared = [
        f"{service.full_name}.{method.name}"
        for module in API_FILES
        for service in module.DESCRIPTOR.services_by_name.values()
        for method in service.methods
        if method.name.startswith(("Get", "List", "Search", "Watch"))
        and method.GetOptions().idempotency_level != MethodOptions.NO_SIDE_EFFECTS
    ]
    assert not undeclared
    declared = {(n["service"], n.get("method")) for n in safe_to_repeat()}
    assert ("consultflow.api.crm.v1.CrmService", "GetClient") in declared
    assert ("consultflow.api.crm.v1.CrmService", "AddContact") not in declared


def test_api_files_hold_every_service_of_ours() -> None:
    """safe_to_repeat (and the policy test) read the services from API_FILES: none may be missing."""
    with_services = {
        module.name
        for module in pkgutil.walk_packages(api.__path__, "consultflow.api.")
        if module.name.endswith("_pb2") and importlib.import_module(module.name).DESCRIPTOR.services_by_name
    }
    assert with_services == {module.__name__ for module in API_FILES}
