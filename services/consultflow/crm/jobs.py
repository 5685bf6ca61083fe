"""The crm operations that diagrams call as service tasks (`crm.<operation>`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from consultflow.crm import service
from consultflow.crm.domain import NewInquiry, parse_channel
from consultflow.platform.db import UnitOfWork
from consultflow.platform.jobs import Job, JobHandler


def record_inquiry(uow: UnitOfWork, job: Job) -> Mapping[str, Any]:
    """2.1.2: records the inquiry the process was started with; returns its id and the client's."""
    command = NewInquiry(
        channel=parse_channel(str(job.get("channel")), "channel"),
        client_name=str(job.get("client_name")),
        client_industry=str(job.get("client_industry", "")),
        contact_name=str(job.get("contact_name")),
        contact_email=str(job.get("contact_email", "")),
        contact_phone=str(job.get("contact_phone", "")),
        question=str(job.get("question")),
        engagement_id=str(job.get("engagement_id", "") or job.business_key),
        request_id=f"job:{job.key}",
    )
    inquiry, client = service.record_inquiry(uow, command)
    return {"inquiry_id": inquiry.inquiry_id, "client_id": client.client_id}


HANDLERS: dict[str, JobHandler] = {
    "crm.record_inquiry": record_inquiry,
}
