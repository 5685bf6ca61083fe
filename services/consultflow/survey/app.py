"""Wires the survey service into the shared runtime."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from functools import partial

from consultflow.api.survey.v1 import survey_pb2_grpc as pb_grpc
from consultflow.platform.bootstrap import Context, Parts
from consultflow.platform.db import UnitOfWork
from consultflow.platform.grpcserver import Registration
from consultflow.platform.timeutil import now
from consultflow.survey import usecases
from consultflow.survey.jobs import operations
from consultflow.survey.servicer import SurveyServicer

SERVICE_NAME = "consultflow.api.survey.v1.SurveyService"

OVERDUE_SCAN_SECONDS = 600.0
"""How often the service looks for measures that went past their deadline (deadlines are days)."""


def build(context: Context) -> Parts:
    return Parts(
        registrations=[
            Registration(
                pb_grpc.add_SurveyServiceServicer_to_server,
                SurveyServicer(context.uow, context.read),
                SERVICE_NAME,
            )
        ],
        job_handlers=operations.bind(None),
        background=[partial(publish_overdue_measures, context)],
    )


async def publish_overdue_measures(context: Context) -> None:
    """5.2.2: announces each measure that went past its deadline, once, soon after it did."""
    loop = asyncio.get_running_loop()
    while True:
        await loop.run_in_executor(context.executor, scan_overdue_measures, context.uow)
        await asyncio.sleep(OVERDUE_SCAN_SECONDS)


def scan_overdue_measures(uow_factory: Callable[[], UnitOfWork]) -> None:
    """One scan, in its own unit of work (on a worker thread: it touches the database)."""
    with uow_factory() as uow:
        usecases.publish_overdue_measures(uow, now().date())
        uow.commit()
