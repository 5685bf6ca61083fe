"""What delivery needs from outside: the peers (contracts, risk) over gRPC, the warning thresholds of a
decision table, and the `Dependencies` the servicer and the job handlers receive.

Use cases see frozen dataclasses and domain errors only; the generated stubs stay in this module. A peer
that cannot be reached is `Unavailable` (a job retries it; an RPC answers UNAVAILABLE).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Protocol

import grpc

from consultflow.api.contracts.v1 import contracts_pb2, contracts_pb2_grpc
from consultflow.api.risk.v1 import risk_pb2, risk_pb2_grpc
from consultflow.delivery.domain import Band
from consultflow.platform.bootstrap import CALL_TIMEOUT_SECONDS, call_options
from consultflow.platform.decisions import DecisionTables
from consultflow.platform.errors import FailedPrecondition, Unavailable
from consultflow.platform.grpcerrors import error_from_rpc

SIGNED_STATUSES = ("signed", "distributed")
"""Contract statuses in which both parties have signed (contracts.proto)."""


@dataclass(frozen=True)
class ContractMilestone:
    name: str
    due_date: date | None


@dataclass(frozen=True)
class ContractTerms:
    """What a project takes from its contract: scope, schedule, deliverables, deadline."""

    contract_id: str
    engagement_id: str
    client_id: str
    status: str
    service_content: str
    scope: str
    service_start: date | None
    service_end: date | None
    milestones: tuple[ContractMilestone, ...]
    deliverables: tuple[str, ...]

    @property
    def signed(self) -> bool:
        return self.status in SIGNED_STATUSES


@dataclass(frozen=True)
class RiskReport:
    """A risk found in delivery's data analysis (3.2.3), for the risk register (6.1.1)."""

    engagement_id: str
    description: str
    category: str
    source: str
    request_id: str
    stage: str = "implementation"


class Contracts(Protocol):
    def get_contract(self, contract_id: str) -> ContractTerms: ...


class Risks(Protocol):
    def register_risk(self, report: RiskReport) -> str:
        """Registers the risk (idempotent per `request_id`) and returns its id."""
        ...


ChannelSource = Callable[[], grpc.Channel]


def _channel(source: ChannelSource, peer: str) -> grpc.Channel:
    try:
        return source()
    except RuntimeError as exc:  # the address of the peer is not configured
        raise Unavailable(f"{peer}: {exc}") from exc


def _date(text: str) -> date | None:
    try:
        return date.fromisoformat(text) if text else None
    except ValueError:
        return None


class GrpcContracts:
    """ContractsService over gRPC."""

    def __init__(self, channel: ChannelSource, timeout: float = CALL_TIMEOUT_SECONDS) -> None:
        self._channel = channel
        self._timeout = timeout

    def get_contract(self, contract_id: str) -> ContractTerms:
        stub = contracts_pb2_grpc.ContractsServiceStub(_channel(self._channel, "contracts"))
        try:
            reply = stub.GetContract(
                contracts_pb2.GetContractRequest(contract_id=contract_id), **call_options(self._timeout)
            )
        except grpc.RpcError as error:
            raise error_from_rpc(error, "contracts.GetContract") from error
        return ContractTerms(
            contract_id=reply.contract_id,
            engagement_id=reply.engagement_id,
            client_id=reply.client_id,
            status=reply.status,
            service_content=reply.service_content,
            scope=reply.scope,
            service_start=_date(reply.service_start),
            service_end=_date(reply.service_end),
            milestones=tuple(ContractMilestone(m.name, _date(m.due_date)) for m in reply.milestones),
            deliverables=tuple(reply.deliverables),
        )


class GrpcRisks:
    """RiskService over gRPC."""

    def __init__(self, channel: ChannelSource, timeout: float = CALL_TIMEOUT_SECONDS) -> None:
        self._channel = channel
        self._timeout = timeout

    def register_risk(self, report: RiskReport) -> str:
        stub = risk_pb2_grpc.RiskServiceStub(_channel(self._channel, "risk"))
        try:
            reply = stub.RegisterRisk(
                risk_pb2.RegisterRiskRequest(
                    engagement_id=report.engagement_id,
                    description=report.description,
                    category=report.category,
                    stage=report.stage,
                    source=report.source,
                    request_id=report.request_id,
                ),
                **call_options(self._timeout),
            )
        except grpc.RpcError as error:
            raise error_from_rpc(error, "risk.RegisterRisk") from error
        return reply.risk_id


class Thresholds(Protocol):
    def band(self, indicator: str, value: Decimal) -> str:
        """green, amber or red."""
        ...


class DecisionThresholds:
    """The bands of `warning_thresholds.dmn`, the one place thresholds live."""

    def __init__(self, tables: DecisionTables) -> None:
        self._tables = tables

    def band(self, indicator: str, value: Decimal) -> str:
        result = self._tables.decide("warning_thresholds", {"indicator": indicator, "value": float(value)})
        status = str(result.get("status", ""))
        if status not in set(Band):
            raise FailedPrecondition(f"warning_thresholds gives no band for {indicator} = {value}")
        return status


@dataclass(frozen=True)
class Dependencies:
    """What the use cases need besides the database: the peers and the warning thresholds."""

    contracts: Contracts
    risks: Risks
    thresholds: Thresholds
