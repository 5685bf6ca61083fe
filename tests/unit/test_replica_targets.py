"""A component's replicas as one address (`consultflow up --replicas`): real TLS gRPC servers behind a
comma-separated list, called round robin; a stopped replica is skipped, and a list that is not IPv4
`host:port` pairs is refused with a message saying so."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent import futures
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from consultflow.platform.security import channel_target, secure_channel
from consultflow.platform.tls import CertificateFiles, LocalAuthority


@pytest.fixture
def replicas(tmp_path: Path) -> Iterator[tuple[list[grpc.Server], list[int], Path]]:
    authority = LocalAuthority(tmp_path / "ca")
    files = authority.issue(tmp_path / "server", "consultflow")
    servers, ports = [], []
    for _ in range(2):
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
        health_pb2_grpc.add_HealthServicer_to_server(health.HealthServicer(), server)
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
