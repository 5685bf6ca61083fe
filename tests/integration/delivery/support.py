"""Helpers for the delivery tests: TEST STAND-INS for the contracts and risk services, a running delivery
component, and a reader of the STATUS stream.

The stand-ins implement only the two RPCs delivery calls (`ContractsService.GetContract`,
`RiskService.RegisterRisk`) on a real gRPC port with the generated servicers, so delivery's client code
runs unchanged against them. They exist because contracts and risk are being built in other branches:
once those land, tests should start the real services instead (and these stand-ins go).
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent import futures
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import grpc
import nats

from consultflow.api.contracts.v1 import contracts_pb2, contracts_pb2_grpc
from consultflow.api.delivery.v1 import delivery_pb2_grpc
from consultflow.api.events.v1 import events_pb2
from consultflow.api.risk.v1 import risk_pb2, risk_pb2_grpc
from consultflow.cli.system import free_port
from consultflow.delivery import app
from consultflow.platform.runtime import Context, Parts
from tests.support.components import ComponentThread, addresses, component_settings

TODAY = date.today()


def day(offset: int) -> str:
    """An ISO date `offset` days from today."""
    return (TODAY + timedelta(days=offset)).isoformat()


def signed_contract(
    contract_id: str = "C-1", engagement_id: str = "E-1", status: str = "signed"
) -> contracts_pb2.Contract:
    """A signed contract running from 30 days ago to 60 days ahead, two milestones, three deliverables."""
    return contracts_pb2.Contract(
        contract_id=contract_id,
        engagement_id=engagement_id,
        client_id="CL-1",
        status=status,
        version=2,
        service_content="Market entry consulting for Europe",
        service_start=day(-30),
        service_end=day(60),
        scope="Diagnosis of export readiness; entry strategy; implementation roadmap",
        milestones=[
            contracts_pb2.Milestone(name="Diagnosis", due_date=day(-10)),
            contracts_pb2.Milestone(name="Final report", due_date=day(50)),
        ],
        deliverables=["Diagnosis report", "Entry strategy", "Implementation roadmap"],
        quotation_id="Q-1",
        proposal_id="P-1",
    )


class StandInContractsService(contracts_pb2_grpc.ContractsServiceServicer):
    """TEST STAND-IN for the contracts service: answers GetContract from a dict."""

    def __init__(self) -> None:
        self.contracts: dict[str, contracts_pb2.Contract] = {}

    def GetContract(self, request: contracts_pb2.GetContractRequest, context: grpc.ServicerContext) -> Any:
        contract = self.contracts.get(request.contract_id)
        if contract is None:
            context.abort(grpc.StatusCode.NOT_FOUND, f"contract {request.contract_id!r} not found")
        return contract


class StandInRiskService(risk_pb2_grpc.RiskServiceServicer):
    """TEST STAND-IN for the risk service: RegisterRisk, idempotent per request id as the contract says."""

    def __init__(self) -> None:
        self.calls: list[risk_pb2.RegisterRiskRequest] = []
        self.risks: dict[str, risk_pb2.Risk] = {}
        self._lock = threading.Lock()

    def RegisterRisk(self, request: risk_pb2.RegisterRiskRequest, context: grpc.ServicerContext) -> Any:
        with self._lock:
            self.calls.append(request)
            key = request.request_id or str(uuid.uuid4())
            if key not in self.risks:
                self.risks[key] = risk_pb2.Risk(
                    risk_id=f"R-{len(self.risks) + 1}",
                    engagement_id=request.engagement_id,
                    description=request.description,
                    category=request.category,
                    stage=request.stage,
                    source=request.source,
                    status="registered",
                )
            return self.risks[key]


@dataclass
class StandInPeers:
    """Both stand-ins on one real gRPC server."""

    address: str
    contracts: StandInContractsService
    risk: StandInRiskService
    server: grpc.Server = field(repr=False)


@contextmanager
def stand_in_peers() -> Iterator[StandInPeers]:
    contracts, risk = StandInContractsService(), StandInRiskService()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    contracts_pb2_grpc.add_ContractsServiceServicer_to_server(contracts, server)
    risk_pb2_grpc.add_RiskServiceServicer_to_server(risk, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    contracts.contracts["C-1"] = signed_contract()
    try:
        yield StandInPeers(f"127.0.0.1:{port}", contracts, risk, server)
    finally:
        server.stop(grace=None)


@dataclass
class RunningDelivery:
    component: ComponentThread
    channel: grpc.Channel

    @property
    def stub(self) -> delivery_pb2_grpc.DeliveryServiceStub:
        return delivery_pb2_grpc.DeliveryServiceStub(self.channel)

    @property
    def context(self) -> Context:
        assert self.component.context is not None
        return self.component.context


@contextmanager
def running_delivery(
    tmp_path: Path,
    nats_url: str,
    database_url: str,
    peer_address: str,
    build: Callable[[Context], Parts] = app.build,
) -> Iterator[RunningDelivery]:
    """The delivery component in-process (real gRPC, NATS, database), its peers at `peer_address`; no
    orchestrator listens (these tests run jobs by calling `run_job` themselves)."""
    settings = component_settings("delivery", tmp_path, nats_url, database_url)
    peers = {"contracts": peer_address, "risk": peer_address, "orchestrator": closed_address()}
    with addresses(peers):
        component = ComponentThread(settings, build).start()
        channel = grpc.insecure_channel(component.address)
        try:
            yield RunningDelivery(component, channel)
        finally:
            channel.close()
            component.stop()


def closed_address() -> str:
    """A loopback address nobody listens on."""
    return f"127.0.0.1:{free_port()}"


def status_events(
    nats_url: str, until: Callable[[list[events_pb2.StatusEvent]], bool], timeout: float = 10.0
) -> list[events_pb2.StatusEvent]:
    """Every event on STATUS from `status.delivery.>`, read until `until` holds (the relay is async)."""

    async def read() -> list[events_pb2.StatusEvent]:
        nc = await nats.connect(nats_url)
        try:
            js = nc.jetstream()
            deadline = time.monotonic() + timeout
            while True:
                sub = await js.pull_subscribe("status.delivery.>", stream="STATUS")
                events: list[events_pb2.StatusEvent] = []
                while True:
                    try:
                        batch = await sub.fetch(500, timeout=0.3)
                    except TimeoutError:
                        break
                    events.extend(events_pb2.StatusEvent.FromString(m.data) for m in batch)
                await sub.unsubscribe()
                if until(events) or time.monotonic() > deadline:
                    return events
                await asyncio.sleep(0.1)
        finally:
            await nc.close()

    return asyncio.run(read())


def types_of(events: list[events_pb2.StatusEvent]) -> list[str]:
    return [e.type for e in events]
