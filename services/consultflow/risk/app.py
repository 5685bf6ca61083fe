"""Wires the risk service into the shared runtime."""

from __future__ import annotations

from consultflow.api.risk.v1 import risk_pb2_grpc as pb_grpc
from consultflow.platform.bootstrap import Context, Parts
from consultflow.platform.grpcserver import Registration
from consultflow.risk.adapters import Dependencies, RiskTables
from consultflow.risk.jobs import operations
from consultflow.risk.servicer import RiskServicer

SERVICE_NAME = "consultflow.api.risk.v1.RiskService"


def build(context: Context) -> Parts:
    deps = Dependencies(tables=RiskTables(context.settings.bpmn_dir))
    return Parts(
        registrations=[
            Registration(
                pb_grpc.add_RiskServiceServicer_to_server,
                RiskServicer(context.uow, context.read, deps),
                SERVICE_NAME,
            )
        ],
        job_handlers=operations.bind(deps),
    )
