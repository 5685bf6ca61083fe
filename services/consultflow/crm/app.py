"""Wires the crm service into the shared runtime."""

from __future__ import annotations

from consultflow.api.crm.v1 import crm_pb2_grpc as pb_grpc
from consultflow.crm.jobs import operations
from consultflow.crm.servicer import CrmServicer
from consultflow.platform.bootstrap import Context, Parts
from consultflow.platform.grpcserver import Registration

SERVICE_NAME = "consultflow.api.crm.v1.CrmService"


def build(context: Context) -> Parts:
    """crm calls no peers and has no background loops: the servicer and the job handlers."""
    return Parts(
        registrations=[
            Registration(
                pb_grpc.add_CrmServiceServicer_to_server,
                CrmServicer(context.uow, context.read),
                SERVICE_NAME,
            )
        ],
        job_handlers=operations.bind(None),
    )
