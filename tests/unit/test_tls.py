"""TLS on a real gRPC server: a client trusting the local authority gets through, one that does not (or
speaks plaintext) does not, and a renewed certificate is served without a restart."""

from __future__ import annotations

import socket
import ssl
from collections.abc import Iterator
from concurrent import futures
from pathlib import Path

import grpc
import pytest
from cryptography import x509
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from consultflow.platform.tls import CertificateFiles, LocalAuthority, TlsFiles, channel_credentials


@pytest.fixture
def authority(tmp_path: Path) -> LocalAuthority:
    return LocalAuthority(tmp_path / "ca")


@pytest.fixture
def served(authority: LocalAuthority, tmp_path: Path) -> Iterator[tuple[int, TlsFiles]]:
    files = authority.issue(tmp_path / "server", "orchestrator")
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    health_pb2_grpc.add_HealthServicer_to_server(health.HealthServicer(), server)
    port = server.add_secure_port("127.0.0.1:0", CertificateFiles(files).credentials())
    server.start()
    yield port, files
    server.stop(None)


def check(port: int, credentials: grpc.ChannelCredentials | None) -> health_pb2.HealthCheckResponse:
    target = f"localhost:{port}"
    channel = grpc.secure_channel(target, credentials) if credentials else grpc.insecure_channel(target)
    with channel:
        return health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)


def served_serial(port: int, ca: Path) -> int:
    context = ssl.create_default_context(cafile=str(ca))
    context.set_alpn_protocols(["h2"])
    with (
        socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname="localhost") as wrapped,
    ):
        der = wrapped.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der).serial_number


def test_a_client_trusting_the_local_authority_is_served(served: tuple[int, TlsFiles]) -> None:
    port, files = served
    assert check(port, channel_credentials(files.ca)).status == health_pb2.HealthCheckResponse.SERVING


def test_a_client_that_does_not_trust_it_or_speaks_plaintext_is_not(
    served: tuple[int, TlsFiles], tmp_path: Path
) -> None:
    port, _ = served
    stranger = LocalAuthority(tmp_path / "other-ca")
    for credentials in (channel_credentials(stranger.ca_file), None):
        with pytest.raises(grpc.RpcError) as refused:
            check(port, credentials)
        assert refused.value.code() == grpc.StatusCode.UNAVAILABLE


def test_a_renewed_certificate_is_served_without_a_restart(
    served: tuple[int, TlsFiles], authority: LocalAuthority
) -> None:
    port, files = served
    before = served_serial(port, files.ca)
    authority.issue(files.certificate.parent, "orchestrator")  # as cert-manager rewrites the Secret
    after = served_serial(port, files.ca)
    assert after != before
    assert x509.load_pem_x509_certificate(files.certificate.read_bytes()).serial_number == after
    assert check(port, channel_credentials(files.ca)).status == health_pb2.HealthCheckResponse.SERVING


def test_the_authority_is_kept_and_its_keys_are_private(tmp_path: Path) -> None:
    first = LocalAuthority(tmp_path / "ca")
    again = LocalAuthority(tmp_path / "ca")
    assert first.ca_file.read_bytes() == again.ca_file.read_bytes()
    files = first.issue(tmp_path / "crm", "crm")
    for key in (tmp_path / "ca" / "ca.key", files.key):
        assert key.stat().st_mode & 0o777 == 0o600
    names = x509.load_pem_x509_certificate(files.certificate.read_bytes()).extensions.get_extension_for_class(
        x509.SubjectAlternativeName
    )
    assert "localhost" in names.value.get_values_for_type(x509.DNSName)
