"""Hostile requests get answers that mean something, from every component (issue 14, "errors mean
something"): invalid UTF-8 and control characters are INVALID_ARGUMENT naming the field, a megabyte of input
is never echoed, a busy database is UNAVAILABLE with a retry hint, and overload is answered, never a silent
CANCELLED. Each case checks the component still answers others."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import grpc
import pytest

from consultflow.api.crm.v1 import crm_pb2, crm_pb2_grpc
from consultflow.api.orchestrator.v1 import orchestrator_pb2 as pb
from consultflow.api.orchestrator.v1 import orchestrator_pb2_grpc as pb_grpc
from consultflow.crm.app import build as build_crm
from consultflow.platform.grpcerrors import field_violations, retry_delay
from consultflow.platform.limits import Limits
from tests.support.bpmn_builder import bpmn
from tests.support.components import ComponentThread, running
from tests.support.identity import signed_aio_channel, signed_channel
from tests.support.liveness import Background, answered_while
from tests.support.rpc import rpc_error
from tests.support.system import InProcessSystem, in_process_system

ORCHESTRATOR = "/consultflow.api.orchestrator.v1.OrchestratorService"
CRM = "/consultflow.api.crm.v1.CrmService"
MEGABYTE = "é" * 1_000_000
DETAILS_LIMIT = 1500


def wire(number: int, payload: bytes) -> bytes:
    """One length-delimited field in protobuf's wire format, its payload unchecked."""
    length = len(payload)
    assert length < 128
    return bytes([number << 3 | 2, length]) + payload


def field_number(message: type, name: str) -> int:
    return int(message.DESCRIPTOR.fields_by_name[name].number)  # type: ignore[attr-defined]


def raw_call(channel: grpc.Channel, method: str, data: bytes) -> grpc.Call:
    """Sends hand-made bytes as a request, as a hostile client would; returns the failed call."""
    call: grpc.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(
        method, request_serializer=None, response_deserializer=None
    )
    try:
        call(data, timeout=10)
    except grpc.RpcError as error:
        assert isinstance(error, grpc.Call)
        return error
    raise AssertionError(f"{method} accepted {data!r}")


def waiting_process(tmp_path: Path) -> Path:
    folder = tmp_path / "bpmn"
    folder.mkdir(exist_ok=True)
    nodes = '<startEvent id="s"/><userTask id="u"/><endEvent id="e"/>'
    (folder / "wait.bpmn").write_bytes(bpmn("wait", nodes, "s -> u\nu -> e"))
    return folder


@pytest.fixture
def system(tmp_path: Path, nats_url: str) -> Iterator[InProcessSystem]:
    with in_process_system(tmp_path, nats_url, services=(), bpmn_dir=waiting_process(tmp_path)) as started:
        yield started


@pytest.fixture
def crm(tmp_path: Path, nats_url: str) -> Iterator[ComponentThread]:
    with running("crm", build_crm, tmp_path / "crm", nats_url, "") as component:
        yield component


def invalid_argument(error: grpc.Call, field: str) -> str:
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, error.details()
    assert [f for f, _ in field_violations(error)] == [field], error.details()  # type: ignore[arg-type]
    return error.details() or ""


def still_answers(system: InProcessSystem) -> None:
    created = system.orchestrator.CreateInstance(pb.CreateInstanceRequest(process_id="wait"))
    assert created.instance_id


# -- invalid UTF-8: refused where requests are decoded, naming the field, in every component


def test_invalid_utf8_is_invalid_argument_naming_the_field_in_the_orchestrator(
    system: InProcessSystem,
) -> None:
    channel = system.channel("orchestrator")
    create = wire(field_number(pb.CreateInstanceRequest, "process_id"), b"wait") + wire(
        field_number(pb.CreateInstanceRequest, "business_key"), b"engagement-\xff\xfe"
    )
    details = invalid_argument(raw_call(channel, f"{ORCHESTRATOR}/CreateInstance", create), "business_key")
    assert "not valid UTF-8" in details
    publish = wire(field_number(pb.PublishMessageRequest, "name"), b"paid\xc3\x28")
    invalid_argument(raw_call(channel, f"{ORCHESTRATOR}/PublishMessage", publish), "name")
    still_answers(system)


def test_invalid_utf8_is_invalid_argument_naming_the_field_in_a_service(crm: ComponentThread) -> None:
    channel = signed_channel(crm.address)
    try:
        create = wire(field_number(crm_pb2.CreateClientRequest, "name"), b"Acme \xed\xa0\x80")
        invalid_argument(raw_call(channel, f"{CRM}/CreateClient", create), "name")
        get = wire(field_number(crm_pb2.GetClientRequest, "client_id"), b"\x80")
        invalid_argument(raw_call(channel, f"{CRM}/GetClient", get), "client_id")
        stub = crm_pb2_grpc.CrmServiceStub(channel)
        assert stub.CreateClient(crm_pb2.CreateClientRequest(name="Acme", industry="retail")).client_id
    finally:
        channel.close()


# -- control characters in names, ids, keys and variable names


@pytest.mark.parametrize(
    ("method", "request_", "field"),
    [
        ("CreateInstance", pb.CreateInstanceRequest(process_id="wait\x00"), "process_id"),
        (
            "CreateInstance",
            pb.CreateInstanceRequest(process_id="wait", business_key="e-1\nINFO forged"),
            "business_key",
        ),
        (
            "PublishMessage",
            pb.PublishMessageRequest(name="paid", correlation_key="k\x1b[2J"),
            "correlation_key",
        ),
        ("PublishMessage", pb.PublishMessageRequest(name="pa\u202eid", correlation_key="k"), "name"),
        ("ListUserTasks", pb.ListUserTasksRequest(candidate_group="consultants\t"), "candidate_group"),
        ("CompleteJob", pb.CompleteJobRequest(job_key="j\x7f"), "job_key"),
    ],
)
def test_control_characters_in_orchestrator_requests_are_refused_naming_the_field(
    system: InProcessSystem, method: str, request_: object, field: str
) -> None:
    call = getattr(system.orchestrator, method)
    error = rpc_error(call, request_)
    assert "control character" in invalid_argument(error, field)  # type: ignore[arg-type]


def test_control_characters_in_variable_names_and_service_requests_are_refused(
    system: InProcessSystem, crm: ComponentThread
) -> None:
    create = pb.CreateInstanceRequest(process_id="wait", variables_json='{"fee\\u0000": 1}')
    error = rpc_error(system.orchestrator.CreateInstance, create)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT and "variables_json" in (error.details() or "")
    channel = signed_channel(crm.address)
    try:
        stub = crm_pb2_grpc.CrmServiceStub(channel)
        refused = rpc_error(
            stub.CreateClient, crm_pb2.CreateClientRequest(name="Acme\r\nLtd", industry="retail")
        )
        invalid_argument(refused, "name")  # type: ignore[arg-type]
        refused = rpc_error(stub.GetClient, crm_pb2.GetClientRequest(client_id="c\x00"))
        invalid_argument(refused, "client_id")  # type: ignore[arg-type]
    finally:
        channel.close()
    still_answers(system)


# -- a megabyte of input is never echoed back


def test_a_megabyte_value_is_not_echoed_by_the_orchestrator(system: InProcessSystem) -> None:
    calls: list[tuple[Callable[[Any], Any], object]] = [
        (system.orchestrator.CreateInstance, pb.CreateInstanceRequest(process_id=MEGABYTE)),
        (
            system.orchestrator.CreateInstance,
            pb.CreateInstanceRequest(process_id="wait", business_key=MEGABYTE),
        ),
        (system.orchestrator.GetInstance, pb.GetInstanceRequest(instance_id=MEGABYTE)),
        (system.orchestrator.CancelInstance, pb.CancelInstanceRequest(instance_id=MEGABYTE)),
        (system.orchestrator.GetUserTask, pb.GetUserTaskRequest(user_task_id=MEGABYTE)),
    ]
    for call, request in calls:
        error = rpc_error(call, request)
        details = error.details() or ""
        assert error.code() not in (grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN), details
        assert len(details) < DETAILS_LIMIT, f"{len(details)} characters echoed"
        print(f"{type(request).__name__}: {error.code().name} {details[:100]}…")
    still_answers(system)


def test_a_megabyte_value_is_not_echoed_by_a_service(crm: ComponentThread) -> None:
    channel = signed_channel(crm.address)
    try:
        stub = crm_pb2_grpc.CrmServiceStub(channel)
        calls: list[tuple[Callable[[Any], Any], object]] = [
            (stub.GetClient, crm_pb2.GetClientRequest(client_id=MEGABYTE)),
            (stub.CreateClient, crm_pb2.CreateClientRequest(name="Acme", industry=MEGABYTE)),
            (stub.CreateClient, crm_pb2.CreateClientRequest(name=MEGABYTE, industry="retail")),
        ]
        for call, request in calls:
            error = rpc_error(call, request)
            details = error.details() or ""
            assert error.code() not in (grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN), details
            assert len(details) < DETAILS_LIMIT, f"{len(details)} characters echoed"
            assert all(len(d) < DETAILS_LIMIT for _, d in field_violations(error))
    finally:
        channel.close()


# -- a busy database is UNAVAILABLE with a retry hint, and readers are still answered


@contextmanager
def write_lock(database: Path) -> Iterator[None]:
    """Holds SQLite's write lock from another connection, as a long transaction elsewhere would."""
    holder = sqlite3.connect(database, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        yield
    finally:
        holder.execute("ROLLBACK")
        holder.close()


def unavailable_with_retry_info(error: BaseException) -> None:
    assert isinstance(error, grpc.Call)
    assert error.code() == grpc.StatusCode.UNAVAILABLE, error.details()
    delay = retry_delay(error)  # type: ignore[arg-type]
    assert delay is not None and delay > 0
    assert "retry in" in (error.details() or "")


def test_a_locked_orchestrator_database_is_unavailable_with_retry_info(
    system: InProcessSystem, tmp_path: Path
) -> None:
    existing = system.orchestrator.CreateInstance(pb.CreateInstanceRequest(process_id="wait")).instance_id
    with write_lock(tmp_path / "orchestrator.db"):
        start = Background(
            lambda: system.orchestrator.CreateInstance(pb.CreateInstanceRequest(process_id="wait"))
        )
        answered_while(
            lambda: start.running,
            lambda: system.orchestrator.GetInstance(pb.GetInstanceRequest(instance_id=existing)),
            what="GetInstance while the write lock is held",
        )
        with pytest.raises(grpc.RpcError) as busy:
            start.join()
    unavailable_with_retry_info(busy.value)
    still_answers(system)


def test_a_locked_service_database_is_unavailable_with_retry_info(
    crm: ComponentThread, tmp_path: Path
) -> None:
    channel = signed_channel(crm.address)
    try:
        stub = crm_pb2_grpc.CrmServiceStub(channel)
        client = stub.CreateClient(crm_pb2.CreateClientRequest(name="Acme", industry="retail"))
        with write_lock(tmp_path / "crm" / "crm.db"):
            create = Background(
                lambda: stub.CreateClient(crm_pb2.CreateClientRequest(name="Beta", industry="retail"))
            )
            answered_while(
                lambda: create.running,
                lambda: stub.GetClient(crm_pb2.GetClientRequest(client_id=client.client_id)),
                what="GetClient while the write lock is held",
            )
            with pytest.raises(grpc.RpcError) as busy:
                create.join()
        unavailable_with_retry_info(busy.value)
        assert stub.CreateClient(crm_pb2.CreateClientRequest(name="Beta", industry="retail")).client_id
    finally:
        channel.close()


# -- overload: every call is answered (OK or refused with a retry hint), never CANCELLED


def test_a_burst_beyond_capacity_is_refused_with_retry_info_not_cancelled(
    tmp_path: Path, nats_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    small = Limits(max_queued_calls=2)
    with in_process_system(
        tmp_path, nats_url, services=(), bpmn_dir=waiting_process(tmp_path), limits=small, db_threads=1
    ) as system:
        address = system.components["orchestrator"].address

        async def burst() -> list[grpc.aio.AioRpcError | None]:
            channel = signed_aio_channel(address)
            stub = pb_grpc.OrchestratorServiceStub(channel)

            async def one(i: int) -> grpc.aio.AioRpcError | None:
                try:
                    await stub.CreateInstance(pb.CreateInstanceRequest(process_id="wait"), timeout=30)
                    return None
                except grpc.aio.AioRpcError as error:
                    return error

            try:
                return await asyncio.gather(*(one(i) for i in range(60)))
            finally:
                await channel.close()

        outcomes = asyncio.run(burst())
        refused = [o for o in outcomes if o is not None]
        assert refused, "60 calls at once against 1 thread and 2 places must overflow"
        for error in refused:
            assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, error.details()
            assert retry_delay(error) == 1.0
        print(
            f"{len(outcomes) - len(refused)} answered OK, {len(refused)} RESOURCE_EXHAUSTED with a retry hint"
        )
        still_answers(system)
    assert "overloaded" in caplog.text, "overload is logged"
