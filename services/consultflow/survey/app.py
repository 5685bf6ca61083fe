"""Wires the survey service into the shared runtime."""

from __future__ import annotations

from consultflow.api.survey.v1 import survey_pb2_grpc as pb_grpc
from consultflow.platform.grpcserver import Registration
from consultflow.platform.runtime import Context, Parts

SERVICE_NAME = "consultflow.api.survey.v1.SurveyService"


def build(context: Context) -> Parts:
    servicer = pb_grpc.SurveyServiceServicer()
    return Parts(
        registrations=[Registration(pb_grpc.add_SurveyServiceServicer_to_server, servicer, SERVICE_NAME)]
    )
