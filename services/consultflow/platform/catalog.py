"""`OperationCatalog`: a service's job operations as its jobs module declares them, over gRPC.

Thin: the specs (platform/operation_spec.py) are turned into messages once, at start; every call answers
the same list. The shared bootstrap registers it for every component whose job handlers carry a
catalogue (`Operations.bind`), so no service wires it by hand.
"""

from __future__ import annotations

from collections.abc import Iterable

import grpc

from consultflow.api.catalog.v1 import catalog_pb2 as pb
from consultflow.api.catalog.v1 import catalog_pb2_grpc as pb_grpc
from consultflow.platform.grpcserver import Registration
from consultflow.platform.operation_spec import Field, OperationSpec

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["OperationCatalog"].full_name

ASSUMPTION = "[assumption]"


def field_message(field: Field) -> pb.Field:
    return pb.Field(
        name=field.name,
        type=field.type,
        required=field.required,
        description=field.description,
        values=list(field.values),
    )


def operation_message(spec: OperationSpec) -> pb.Operation:
    """One operation; an assumption (the firm's rule, not the regulation's) says so in its description."""
    description = spec.description
    if spec.assumption and ASSUMPTION not in description:
        description = f"{ASSUMPTION} {description}".strip()
    return pb.Operation(
        name=spec.name,
        service=spec.service,
        summary=spec.summary,
        description=description,
        clauses=list(spec.clauses),
        inputs=[field_message(f) for f in spec.inputs],
        outputs=[field_message(f) for f in spec.outputs],
        errors=[pb.BpmnErrorSpec(code=e.code, description=e.description) for e in spec.errors],
    )


class OperationCatalogServicer(pb_grpc.OperationCatalogServicer):
    """Answers the catalogue built at start; who may read it is the policy table's business."""

    def __init__(self, catalogue: Iterable[OperationSpec]) -> None:
        self._response = pb.ListOperationsResponse(operations=[operation_message(s) for s in catalogue])

    def ListOperations(
        self, request: pb.ListOperationsRequest, context: grpc.ServicerContext
    ) -> pb.ListOperationsResponse:
        return self._response


def catalog_registration(catalogue: Iterable[OperationSpec]) -> Registration:
    """The registration the bootstrap adds for a component with operations."""
    return Registration(
        pb_grpc.add_OperationCatalogServicer_to_server, OperationCatalogServicer(catalogue), SERVICE_NAME
    )
