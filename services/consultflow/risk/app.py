"""Wires the risk service into the shared runtime."""

from __future__ import annotations

from consultflow.api.risk.v1 import risk_pb2_grpc as pb_grpc
from consultflow.platform.grpcserver import Registration
from consultflow.platform.runtime import Context, Parts

SERVICE_NAME = "consultflow.api.risk.v1.RiskService"


def build(context: Context) -> Parts:
    # Until this service's issue lands, every RPC answers UNIMPLEMENTED (the generated base class).
    servicer = pb_grpc.RiskServiceServicer()  # type: ignore[abstract]
    return Parts(
        registrations=[Registration(pb_grpc.add_RiskServiceServicer_to_server, servicer, SERVICE_NAME)]
    )
