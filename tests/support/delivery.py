"""Helpers for the delivery tests: delivery's real peers (crm, contracts, risk) with signed contracts
made through their APIs, a running delivery component, and a reader of the STATUS stream."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import grpc

from consultflow.api.contracts.v1 import contracts_pb2
from consultflow.api.delivery.v1 import delivery_pb2_grpc
from consultflow.api.events.v1 import events_pb2
from consultflow.api.risk.v1 import risk_pb2, risk_pb2_grpc
from consultflow.delivery import app
from consultflow.platform.bootstrap import Context, Parts
from consultflow.risk.app import build as build_risk
from tests.support.components import ComponentThread, running
from tests.support.contracts import (
    ContractTerms,
    Services,
    contract_in_state,
    crm_and_contracts,
    signed_contract,
)
from tests.support.dates import day
from tests.support.identity import signed_channel
from tests.support.nats import nats_server
from tests.support.status import read_status

DELIVERY_TERMS = ContractTerms(
    scope="Diagnosis of export readiness; entry strategy; implementation roadmap",
    milestones=(("Diagnosis", day(-10)), ("Final report", day(50))),
    expected_results=("Diagnosis report", "Entry strategy", "Implementation roadmap"),
    service_content="Market entry consulting for Europe",
    service_start=day(-30),
    service_end=day(60),
)
"""A contract running from 30 days ago to 60 days ahead, two milestones, three deliverables."""


@dataclass
class Peers:
    """The services delivery calls, real and running: contracts (with the crm it calls) and risk."""

    services: Services
    risk: risk_pb2_grpc.RiskServiceStub
    risk_address: str

    @property
    def contracts_address(self) -> str:
        return self.services.contracts_address

    def signed_contract(self, engagement_id: str) -> contracts_pb2.Contract:
        """A contract of the engagement on `DELIVERY_TERMS` that both parties signed."""
        return signed_contract(self.services, engagement_id, DELIVERY_TERMS)

    def contract_in_state(self, engagement_id: str, status: str) -> contracts_pb2.Contract:
        """A contract of the engagement on `DELIVERY_TERMS`, taken through the contracts API to `status`."""
        return contract_in_state(self.services, engagement_id, status, DELIVERY_TERMS)

    def risks_of(self, engagement_id: str) -> list[risk_pb2.Risk]:
        """The engagement's risk register."""
        return list(self.risk.ListRisks(risk_pb2.ListRisksRequest(engagement_id=engagement_id)).risks)

    def risk_registered_under(self, request_id: str, engagement_id: str) -> str:
        """The id of the risk registered under `request_id`: RegisterRisk answers a request id it has seen
        with the risk registered first (a request id it has not seen registers a new risk, which a
        count of the register then shows)."""
        return self.risk.RegisterRisk(
            risk_pb2.RegisterRiskRequest(
                engagement_id=engagement_id,
                description="asked again with the same request id",
                stage="implementation",
                request_id=request_id,
            )
        ).risk_id


@contextmanager
def delivery_peers(folder: Path) -> Iterator[Peers]:
    """crm, contracts and risk in-process on SQLite under `folder`, meant to outlive single tests (a
    module's). They use a NATS server of their own, so the per-test reset of the session's streams
    (`nats_url`) does not pull the streams from under their relays and job workers."""
    with ExitStack() as stack:
        nats_url = stack.enter_context(nats_server(folder / "nats"))
        services = stack.enter_context(
            crm_and_contracts(folder, nats_url, f"sqlite:///{folder / 'contracts.db'}")
        )
        risk = stack.enter_context(
            running("risk", build_risk, folder / "risk", nats_url, f"sqlite:///{folder / 'risk.db'}")
        )
        channel = stack.enter_context(signed_channel(risk.address))
        yield Peers(services, risk_pb2_grpc.RiskServiceStub(channel), risk.address)


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
    contracts_address: str,
    risk_address: str,
    build: Callable[[Context], Parts] = app.build,
) -> Iterator[RunningDelivery]:
    """The delivery component in-process (real gRPC, NATS, database) with its peers at these addresses;
    no orchestrator listens (these tests run jobs by calling `run_job` themselves)."""
    peers = {"contracts": contracts_address, "risk": risk_address}
    with (
        running("delivery", build, tmp_path, nats_url, database_url, peers) as component,
        signed_channel(component.address) as channel,
    ):
        yield RunningDelivery(component, channel)


def status_events(
    nats_url: str, until: Callable[[list[events_pb2.StatusEvent]], bool], timeout: float = 10.0
) -> list[events_pb2.StatusEvent]:
    """Every event on STATUS from `status.delivery.>`, read until `until` holds (the relay is async)."""
    return read_status(nats_url, until, timeout, subject="status.delivery.>")


def types_of(events: list[events_pb2.StatusEvent]) -> list[str]:
    return [e.type for e in events]
