"""The skeleton travels every layer: BPMN → orchestrator → JetStream job → crm → CompleteJob → STATUS.

The process is a test diagram whose one service task reaches `crm.record_inquiry` (2.1.2's operation, which
the engagement's `record_inquiry` calls): start → record the inquiry → end."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import nats
from sqlalchemy import func, select

from consultflow.api.crm.v1 import crm_pb2, crm_pb2_grpc
from consultflow.api.orchestrator.v1 import orchestrator_pb2 as pb
from consultflow.crm.orm import Inquiry
from consultflow.platform.db import Database
from consultflow.platform.tables import outbox, processed_jobs
from tests.support.bpmn_builder import Task, bpmn_folder, line
from tests.support.nats import wait_consumed
from tests.support.status import wait_for_types
from tests.support.system import in_process_system

INQUIRY = {
    "channel": "email",
    "client_name": "Shenzhen Lighting Co.",
    "contact_name": "Ms Chen",
    "contact_email": "chen@example.cn",
    "question": "Can you help us enter the European market?",
}
SKELETON = line("skeleton", [Task("record_inquiry", "crm.record_inquiry", {name: name for name in INQUIRY})])


def test_inquiry_instance_completes_through_a_real_job(
    tmp_path: Path, nats_url: str, database_url: str
) -> None:
    folder = bpmn_folder(tmp_path, {"skeleton": SKELETON})
    with in_process_system(
        tmp_path, nats_url, ["crm"], bpmn_dir=folder, database_urls={"crm": database_url}
    ) as system:
        created = system.orchestrator.CreateInstance(
            pb.CreateInstanceRequest(
                process_id="skeleton", variables_json=json.dumps(INQUIRY), business_key="E-100"
            )
        )
        instance = system.wait_completed(created.instance_id)
        variables = json.loads(instance.variables_json)
        inquiry = crm_pb2_grpc.CrmServiceStub(system.channel("crm")).GetInquiry(
            crm_pb2.GetInquiryRequest(inquiry_id=variables["inquiry_id"])
        )
        assert inquiry.client_name == INQUIRY["client_name"]
        assert inquiry.engagement_id == "E-100"
        types = [e.type for e in instance.history]
        assert types.index("job.created") < types.index("job.completed") < types.index("instance.completed")
        again = system.orchestrator.CreateInstance(
            pb.CreateInstanceRequest(
                process_id="skeleton", variables_json=json.dumps(INQUIRY), business_key="E-100"
            )
        )
        assert not again.created and again.instance_id == created.instance_id
    events = wait_for_types(
        nats_url, ["orchestrator.instance.created", "crm.inquiry.recorded", "orchestrator.instance.completed"]
    )
    seen = [(e.source, e.type) for e in events]
    assert ("orchestrator", "instance.created") in seen
    assert ("crm", "inquiry.recorded") in seen
    # Two components' relays publish independently, so the stream's order is not the order of the changes:
    # each event carries the time its change was made.
    recorded = next(e for e in events if e.type == "inquiry.recorded")
    completed = next(e for e in events if e.type == "instance.completed")
    assert recorded.time.ToDatetime() <= completed.time.ToDatetime()
    assert recorded.correlation["engagement_id"] == "E-100"


def test_a_redelivered_job_acts_once(tmp_path: Path, nats_url: str) -> None:
    """The same job delivered again (as after a worker crash) records one inquiry and changes nothing."""
    crm_db = f"sqlite:///{tmp_path / 'crm-dup.db'}"
    folder = bpmn_folder(tmp_path, {"skeleton": SKELETON})
    with in_process_system(
        tmp_path, nats_url, ["crm"], bpmn_dir=folder, database_urls={"crm": crm_db}
    ) as system:
        created = system.orchestrator.CreateInstance(
            pb.CreateInstanceRequest(process_id="skeleton", variables_json=json.dumps(INQUIRY))
        )
        before = system.wait_completed(created.instance_id)
        orchestrator_db = Database(system.components["orchestrator"].settings.database_url)
        with orchestrator_db.read() as session:
            row = session.execute(
                select(outbox.c.subject, outbox.c.payload).where(
                    outbox.c.subject == "jobs.crm.record_inquiry"
                )
            ).one()
        orchestrator_db.dispose()

        async def redeliver() -> None:
            nc = await nats.connect(nats_url)
            await nc.jetstream().publish(row.subject, row.payload, headers={"Nats-Msg-Id": "redelivery-1"})
            await nc.close()

        asyncio.run(redeliver())
        wait_consumed(nats_url, "worker-crm")
        after = system.orchestrator.GetInstance(pb.GetInstanceRequest(instance_id=created.instance_id))
        assert after.revision == before.revision, "a repeated CompleteJob changed the instance"
    db = Database(crm_db)
    with db.read() as session:
        assert session.scalar(select(func.count()).select_from(Inquiry)) == 1
        assert session.scalar(select(func.count()).select_from(processed_jobs)) == 1
    db.dispose()
