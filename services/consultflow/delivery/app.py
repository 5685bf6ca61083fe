"""Wires the delivery service into the shared runtime: its gRPC API, its job operations, and the peers
(contracts, risk) and decision tables they use."""

from __future__ import annotations

from consultflow.api.delivery.v1 import delivery_pb2_grpc as pb_grpc
from consultflow.delivery.adapters import DecisionThresholds, Dependencies, GrpcContracts, GrpcRisks
from consultflow.delivery.jobs import operations
from consultflow.delivery.servicer import DeliveryServicer
from consultflow.platform.bootstrap import CALL_TIMEOUT_SECONDS, Context, Parts
from consultflow.platform.decisions import DecisionTables
from consultflow.platform.grpcserver import Registration

SERVICE_NAME = "consultflow.api.delivery.v1.DeliveryService"


def build(context: Context, call_timeout: float = CALL_TIMEOUT_SECONDS) -> Parts:
    """The gRPC API and the job operations over the same use cases and dependencies: the real peers over
    gRPC (channels opened on first use, calls with `call_timeout`) and `warning_thresholds.dmn`."""
    deps = Dependencies(
        contracts=GrpcContracts(lambda: context.channel("contracts"), call_timeout),
        risks=GrpcRisks(lambda: context.channel("risk"), call_timeout),
        thresholds=DecisionThresholds(DecisionTables(context.settings.bpmn_dir)),
    )
    servicer = DeliveryServicer(context.uow, context.read, deps)
    return Parts(
        registrations=[Registration(pb_grpc.add_DeliveryServiceServicer_to_server, servicer, SERVICE_NAME)],
        job_handlers=operations.bind(deps),
    )
