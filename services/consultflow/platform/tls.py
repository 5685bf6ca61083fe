"""Transport security: the local certificate authority `consultflow up` makes, and gRPC credentials that
follow certificate renewals without a restart.

Why server TLS only, with a bearer token from every caller (people, tools and components alike): grpcio's
Python server cannot ask for a client certificate without requiring one, so one port could not serve both
certificate-bearing components and token-bearing people. One listener and one way to prove identity keeps
the interceptor, the policy table and the tests single; on Kubernetes components present their projected
service-account tokens, locally `consultflow up` mints them (docs/security.md).

A renewed certificate (cert-manager rewrites the mounted Secret) is picked up on the next handshake:
`dynamic_ssl_server_credentials` asks `CertificateFiles.fetch` before every new connection, and the files
are re-read only when their modification time changed.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import grpc
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from consultflow.platform import files

LOCAL_HOSTS = ("localhost", "127.0.0.1", "::1")


@dataclass(frozen=True)
class TlsFiles:
    """The files of one listener, in the shape of a Kubernetes TLS Secret (ca.crt, tls.crt, tls.key)."""

    ca: Path
    certificate: Path
    key: Path

    @classmethod
    def in_folder(cls, folder: Path) -> TlsFiles:
        return cls(folder / "ca.crt", folder / "tls.crt", folder / "tls.key")


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _san(hosts: Iterable[str]) -> x509.SubjectAlternativeName:
    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    return x509.SubjectAlternativeName(names)


class LocalAuthority:
    """A throwaway certificate authority for one laptop's system, kept under the data folder."""

    def __init__(self, folder: Path, now: dt.datetime | None = None) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.ca_file = folder / "ca.crt"
        key_file = folder / "ca.key"
        if key_file.exists() and self.ca_file.exists():
            loaded = serialization.load_pem_private_key(key_file.read_bytes(), password=None)
            if not isinstance(loaded, ec.EllipticCurvePrivateKey):
                raise ValueError(f"{key_file} is not an EC private key")
            self._key = loaded
            self._certificate = x509.load_pem_x509_certificate(self.ca_file.read_bytes())
            return
        self._key = ec.generate_private_key(ec.SECP256R1())
        start = now or dt.datetime.now(dt.UTC)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "consultflow local CA")])
        self._certificate = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self._key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start - dt.timedelta(minutes=5))
            .not_valid_after(start + dt.timedelta(days=365))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=False,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .sign(self._key, hashes.SHA256())
        )
        files.replace_file(key_file, _pem_key(self._key))
        files.replace_file(
            self.ca_file, self._certificate.public_bytes(serialization.Encoding.PEM), files.PUBLIC
        )

    def issue(
        self,
        folder: Path,
        name: str,
        hosts: Iterable[str] = LOCAL_HOSTS,
        valid_for: dt.timedelta = dt.timedelta(days=30),
        now: dt.datetime | None = None,
    ) -> TlsFiles:
        """A server certificate for `hosts`, written as ca.crt/tls.crt/tls.key into `folder`."""
        folder.mkdir(parents=True, exist_ok=True)
        tls_files = TlsFiles.in_folder(folder)
        key = ec.generate_private_key(ec.SECP256R1())
        start = now or dt.datetime.now(dt.UTC)
        certificate = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
            .issuer_name(self._certificate.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start - dt.timedelta(minutes=5))
            .not_valid_after(start + valid_for)
            .add_extension(_san(hosts), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .sign(self._key, hashes.SHA256())
        )
        ca = self._certificate.public_bytes(serialization.Encoding.PEM)
        files.replace_file(tls_files.ca, ca, files.PUBLIC)
        # key before certificate: a reader that sees the new certificate finds its key already there
        files.replace_file(tls_files.key, _pem_key(key))
        files.replace_file(
            tls_files.certificate, certificate.public_bytes(serialization.Encoding.PEM), files.PUBLIC
        )
        return tls_files


class CertificateFiles:
    """Server credentials read from files, re-read when they change (certificate renewal)."""

    def __init__(self, files: TlsFiles) -> None:
        self.files = files
        self._seen: tuple[int, int] = (-1, -1)
        self._lock = threading.Lock()

    def _stamp(self) -> tuple[int, int]:
        return (self.files.certificate.stat().st_mtime_ns, self.files.key.stat().st_mtime_ns)

    def _configuration(self) -> grpc.ServerCertificateConfiguration:
        pair = (self.files.key.read_bytes(), self.files.certificate.read_bytes())
        return grpc.ssl_server_certificate_configuration([pair])

    def fetch(self) -> grpc.ServerCertificateConfiguration | None:
        """Called by gRPC before each new connection: a new configuration when the files changed."""
        with self._lock:
            try:
                stamp = self._stamp()
                if stamp == self._seen:
                    return None
                configuration = self._configuration()
            except OSError:
                return None  # mid-rewrite: keep serving the current certificate
            self._seen = stamp
            return configuration

    def credentials(self) -> grpc.ServerCredentials:
        with self._lock:
            self._seen = self._stamp()
            initial = self._configuration()
        # the stubs type the fetcher without None, which gRPC documents as "keep the current certificate"
        fetch = self.fetch
        return grpc.dynamic_ssl_server_credentials(initial, fetch, require_client_authentication=False)  # type: ignore[arg-type]


def channel_credentials(ca: Path | None) -> grpc.ChannelCredentials:
    """TLS to a component: trusting `ca` (the local authority, or the cluster's), else the system roots."""
    return grpc.ssl_channel_credentials(root_certificates=ca.read_bytes() if ca else None)
