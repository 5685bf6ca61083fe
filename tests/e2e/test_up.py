"""`consultflow up` as a user runs it: six SERVING endpoints and NATS, a real job, a clean stop.

The job comes from a test diagram deployed into the running system: start → `crm.record_inquiry` → end."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import grpc
import httpx
import nats
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from consultflow import COMPONENTS, CONSOLE
from consultflow.api.events.v1 import events_pb2
from consultflow.api.orchestrator.v1 import orchestrator_pb2 as pb
from consultflow.api.orchestrator.v1 import orchestrator_pb2_grpc as pb_grpc
from consultflow.cli.system import health_status
from consultflow.platform.local_identity import LocalIdentity
from consultflow.platform.messaging import STATUS_STREAM, NatsCredentials, connect_options
from consultflow.platform.nats_access import READER
from consultflow.platform.security import secure_channel
from tests.support import bpmn_builder
from tests.support.polling import eventually

CONSULTFLOW = str(Path(sys.executable).parent / "consultflow")
EXPECTED_SERVICES = {
    "orchestrator": "consultflow.api.orchestrator.v1.OrchestratorService",
    "crm": "consultflow.api.crm.v1.CrmService",
    "contracts": "consultflow.api.contracts.v1.ContractsService",
    "delivery": "consultflow.api.delivery.v1.DeliveryService",
    "survey": "consultflow.api.survey.v1.SurveyService",
    "risk": "consultflow.api.risk.v1.RiskService",
}


def start_up(data_dir: Path) -> tuple[subprocess.Popen[str], dict[str, str]]:
    process = subprocess.Popen(
        [CONSULTFLOW, "--data-dir", str(data_dir), "up"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "CONSULTFLOW_LOG_LEVEL": "INFO"},
    )
    assert process.stdout is not None
    output = []
    deadline = time.monotonic() + 90
    for line in process.stdout:
        output.append(line)
        if "press Ctrl-C to stop" in line:
            break
        assert time.monotonic() < deadline, "".join(output)
    else:
        raise AssertionError("consultflow up exited:\n" + "".join(output))
    return process, json.loads((data_dir / "endpoints.json").read_text())


def stop_up(process: subprocess.Popen[str], child_pids: list[int]) -> None:
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=60) == 0
    for pid in child_pids:
        assert not _alive(pid), f"process {pid} survived `consultflow up`"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie of an exited child is gone for our purposes
    status = Path(f"/proc/{pid}/status")
    return status.exists() and "State:\tZ" not in status.read_text()


def _children(pid: int) -> list[int]:
    result = subprocess.run(
        ["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True, check=False
    )
    return [int(p) for p in result.stdout.split()]


def up_channel(endpoints: dict[str, str], name: str, as_: str = "root") -> grpc.Channel:
    """A channel to a component of the `consultflow up` system, signed by that system's local issuer."""
    identity = LocalIdentity.existing(Path(endpoints["ca"]).parents[1])
    return secure_channel(endpoints[name], identity.ca, identity.token_of(as_))


def _reflected_services(endpoints: dict[str, str], name: str) -> list[str]:
    with up_channel(endpoints, name) as channel:
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        responses = stub.ServerReflectionInfo(
            iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=5
        )
        return [s.name for r in responses for s in r.list_services_response.service]


def _status_events(endpoints: dict[str, str]) -> list[tuple[str, str]]:
    reader = NatsCredentials.from_file(
        READER, Path(endpoints["nats_reader_password_file"]), Path(endpoints["ca"])
    )

    async def read() -> list[tuple[str, str]]:
        nc = await nats.connect(endpoints["nats"], **connect_options(reader))
        sub = await nc.jetstream().subscribe(
            "status.>",
            stream=STATUS_STREAM,
            ordered_consumer=True,
            deliver_policy=nats.js.api.DeliverPolicy.ALL,
        )
        seen = []
        try:
            while True:
                message = await sub.next_msg(timeout=1.0)
                event = events_pb2.StatusEvent.FromString(message.data)
                seen.append((message.subject, event.subject))
        except TimeoutError:
            pass
        await nc.close()
        return seen

    return asyncio.run(read())


def _nats_accepts_anonymous(url: str) -> bool:
    async def attempt() -> bool:
        try:
            nc = await nats.connect(url, allow_reconnect=False, max_reconnect_attempts=0)
        except Exception:
            return False
        await nc.close()
        return True

    return asyncio.run(attempt())


def test_up_runs_the_skeleton_and_stops_cleanly(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    process, endpoints = start_up(data_dir)
    pids = _children(process.pid)
    try:
        assert set(endpoints) == {"nats", "nats_reader_password_file", "ca", "metrics", *COMPONENTS, CONSOLE}
        assert set(endpoints["metrics"]) == {*COMPONENTS, CONSOLE}  # tests/e2e/test_metrics.py scrapes them
        assert endpoints["nats"] != "nats://127.0.0.1:4222", "must not need the machine's NATS"
        assert not _nats_accepts_anonymous(endpoints["nats"]), "NATS must refuse a client without credentials"
        for name in COMPONENTS:
            # a generous bound: on a busy machine a fresh TLS channel's first call can take seconds
            assert health_status(endpoints[name], Path(endpoints["ca"]), timeout=15) == 1, name
            assert EXPECTED_SERVICES[name] in _reflected_services(endpoints, name)
        with up_channel(endpoints, "orchestrator") as channel:
            created = _record_an_inquiry(pb_grpc.OrchestratorServiceStub(channel), "skeleton", timeout=30)
        events = _status_events(endpoints)
        subjects = [s for s, _ in events]
        assert "status.crm.inquiry.recorded" in subjects
        assert ("status.orchestrator.instance.completed", created.instance_id) in events
        _otto_sees_the_instance_in_the_console(data_dir, endpoints[CONSOLE], created.instance_id)
    finally:
        if process.poll() is None:
            stop_up(process, pids)
    assert len(pids) == 1 + len(COMPONENTS) + 1  # nats-server, the components, the console

    # Restarting keeps the data: the finished instance is still there.
    process, endpoints = start_up(data_dir)
    pids = _children(process.pid)
    try:
        with up_channel(endpoints, "orchestrator") as channel:
            instance = pb_grpc.OrchestratorServiceStub(channel).GetInstance(
                pb.GetInstanceRequest(instance_id=created.instance_id)
            )
            assert instance.state == pb.INSTANCE_STATE_COMPLETED
    finally:
        stop_up(process, pids)


def _otto_sees_the_instance_in_the_console(data_dir: Path, console: str, instance_id: str) -> None:
    """`consultflow console --as otto --print` prints a link that signs otto in once; the console then
    lists the instance, read from the orchestrator over gRPC with otto's token."""
    link = subprocess.run(
        [CONSULTFLOW, "--data-dir", str(data_dir), "console", "--as", "otto", "--print"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert link.startswith(f"{console}/signin?ticket=")
    with httpx.Client(timeout=20) as browser:
        assert browser.get(link).status_code == 303
        assert browser.get(f"{console}/api/me").json()["name"] == "otto"
        listed = browser.get(f"{console}/api/instances", params={"query": instance_id})
        assert [i["instance_id"] for i in listed.json()["instances"]] == [instance_id]
        assert httpx.get(link).status_code == 403  # the link worked once


def _record_an_inquiry(
    stub: pb_grpc.OrchestratorServiceStub, process_id: str, timeout: float
) -> pb.CreateInstanceResponse:
    """Deploys a one-job process (crm records an inquiry), runs it and waits until it completed: the
    orchestrator, NATS and crm all work."""
    variables = {
        "channel": "hotline",
        "client_name": "Hangzhou Tea Ltd.",
        "contact_name": "Mr Wang",
        "contact_email": "wang@example.cn",
        "question": "Digital transformation of our sales channels",
    }
    record = bpmn_builder.Task("record_inquiry", "crm.record_inquiry", {n: n for n in variables})
    diagram = bpmn_builder.line(process_id, [record])
    deployed = stub.DeployResources(
        pb.DeployResourcesRequest(resources=[pb.Resource(name=f"{process_id}.bpmn", content=diagram)])
    )
    assert [d.process_id for d in deployed.definitions] == [process_id]
    created = stub.CreateInstance(
        pb.CreateInstanceRequest(process_id=process_id, variables_json=json.dumps(variables))
    )
    eventually(
        lambda: (
            stub.GetInstance(pb.GetInstanceRequest(instance_id=created.instance_id)).state
            == pb.INSTANCE_STATE_COMPLETED
        ),
        f"the {process_id} instance to complete",
        timeout=timeout,
    )
    return created


def _pid_of(up_pid: int, command: str) -> int:
    """The child of `consultflow up` whose command line contains `command`."""
    for pid in _children(up_pid):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except FileNotFoundError:  # exited meanwhile
            continue
        if command in cmdline.replace(b"\0", b" ").decode(errors="replace"):
            return pid
    raise AssertionError(f"no {command} under consultflow up")


def test_killed_children_are_restarted_and_the_system_goes_on(tmp_path: Path) -> None:
    """`consultflow up` supervises every child alike: nats-server (same port, users and streams), the
    orchestrator and a service are killed outright, each is started again, says so, and a job runs."""
    process, endpoints = start_up(tmp_path / "data")
    pids = _children(process.pid)
    try:
        victims = {
            "nats": _pid_of(process.pid, "nats-server"),
            "orchestrator": _pid_of(process.pid, "consultflow.orchestrator"),
            "crm": _pid_of(process.pid, "consultflow.crm"),
        }
        for pid in victims.values():
            os.kill(pid, signal.SIGKILL)
        eventually(
            lambda: len([p for p in _children(process.pid) if p not in pids]) == len(victims),
            "consultflow up to start nats-server, the orchestrator and crm again",
            timeout=30,
        )
        for name, killed in victims.items():
            command = {"nats": "nats-server"}.get(name, f"consultflow.{name}")
            assert _pid_of(process.pid, command) != killed, name
        for name in ("orchestrator", "crm"):
            eventually(
                lambda n=name: health_status(endpoints[n], Path(endpoints["ca"])) == 1,  # type: ignore[misc]
                f"{name} to serve again",
                timeout=60,
            )
        with up_channel(endpoints, "orchestrator") as channel:
            _record_an_inquiry(pb_grpc.OrchestratorServiceStub(channel), "again", timeout=60)
        _kill_until_given_up(process.pid, "consultflow.crm")
        assert health_status(endpoints["orchestrator"], Path(endpoints["ca"]), timeout=15) == 1, (
            "the rest runs"
        )
    finally:
        if process.poll() is None:
            stop_up(process, [p for p in _children(process.pid)])
    assert process.stdout is not None
    output = process.stdout.read()
    for name in victims:
        assert f"{name} exited with -9; restarted" in output, output
    assert "ERROR crm exited with -9 within 10s of its start, 5 times in a row: crash loop" in output, output


def _kill_until_given_up(up_pid: int, command: str) -> None:
    """Kills the child each time it comes back, until `consultflow up` stops bringing it back (the crash
    loop limit: five deaths in a row within 10 s of a start, 0.5 + 1 + 2 + 4 s of back-off between)."""
    deadline = time.monotonic() + 60
    last_kill = time.monotonic()
    while time.monotonic() - last_kill < 6:  # longer than the longest back-off (4 s) before giving up
        assert time.monotonic() < deadline, f"{command} was restarted again and again"
        try:
            os.kill(_pid_of(up_pid, command), signal.SIGKILL)
            last_kill = time.monotonic()
        except AssertionError:
            pass  # not running now: waiting out its back-off, or given up
        time.sleep(0.05)
