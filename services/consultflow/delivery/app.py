"""Wires the delivery service into the shared runtime."""

from __future__ import annotations

from consultflow.api.delivery.v1 import delivery_pb2_grpc as pb_grpc
from consultflow.platform.grpcserver import Registration
from consultflow.platform.runtime import Context, Parts

SERVICE_NAME = "consultflow.api.delivery.v1.DeliveryService"


def build(context: Context) -> Parts:
    servicer = pb_grpc.DeliveryServiceServicer()
    return Parts(
        registrations=[Registration(pb_grpc.add_DeliveryServiceServicer_to_server, servicer, SERVICE_NAME)]
    )
