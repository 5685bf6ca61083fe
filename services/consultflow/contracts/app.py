"""Wires the contracts service into the shared runtime: its API, its job handlers, and crm as the
directory of clients."""

from __future__ import annotations

from consultflow.api.contracts.v1 import contracts_pb2_grpc as pb_grpc
from consultflow.contracts.adapters import CrmClients, Dependencies
from consultflow.contracts.jobs import operations
from consultflow.contracts.servicer import ContractsServicer
from consultflow.platform.bootstrap import CALL_TIMEOUT_SECONDS, Context, Parts
from consultflow.platform.grpcserver import Registration

SERVICE_NAME = "consultflow.api.contracts.v1.ContractsService"


def build(context: Context, call_timeout: float = CALL_TIMEOUT_SECONDS) -> Parts:
    """`call_timeout`: the deadline of each call to crm (tests shorten it)."""
    deps = Dependencies(crm=CrmClients(lambda: context.channel("crm"), timeout=call_timeout))
    return Parts(
        registrations=[
            Registration(
                pb_grpc.add_ContractsServiceServicer_to_server,
                ContractsServicer(context.uow, context.read, deps),
                SERVICE_NAME,
            )
        ],
        job_handlers=operations.bind(deps),
    )
