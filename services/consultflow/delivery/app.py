"""Wires the delivery service into the shared runtime: its gRPC API, its job operations, and the peers
(contracts, risk) and decision tables they use."""

from __future__ import annotations

from consultflow.api.delivery.v1 import delivery_pb2_grpc as pb_grpc
from consultflow.delivery.adapters import DecisionThresholds, Dependencies, GrpcContracts, GrpcRisks
from consultflow.delivery.jobs import bind
from consultflow.delivery.servicer import DeliveryServicer
from consultflow.platform.decisions import DecisionTables
from consultflow.platform.grpcserver import Registration
from consultflow.platform.runtime import CALL_TIMEOUT_SECONDS, Context, Parts

SERVICE_NAME = "consultflow.api.delivery.v1.DeliveryService"


def dependencies(context: Context, call_timeout: float = CALL_TIMEOUT_SECONDS) -> Dependencies:
    """The real peers over gRPC (channels opened on first use) and `warning_thresholds.dmn`."""
    return Dependencies(
        contracts=GrpcContracts(lambda: context.channel("contracts"), call_timeout),
        risks=GrpcRisks(lambda: context.channel("risk"), call_timeout),
        thresholds=DecisionThresholds(DecisionTables(context.settings.bpmn_dir)),
    )


def parts(context: Context, deps: Dependencies) -> Parts:
    """The gRPC API and the job operations, both over the same use cases and dependencies."""
    servicer = DeliveryServicer(context.uow, context.read, deps)
    return Parts(
        registrations=[Registration(pb_grpc.add_DeliveryServiceServicer_to_server, servicer, SERVICE_NAME)],
        job_handlers=bind(deps),
    )


def build(context: Context) -> Parts:
    return parts(context, dependencies(context))
