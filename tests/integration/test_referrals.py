"""2.1.1 → 2.1.2 and 5.3.3 → 2.1.2 through the real orchestrator, crm and NATS: a market-research lead and an
earlier engagement's referral each start a new engagement (the real engagement.bpmn, through its message
start event) whose inquiry crm records with the link back.

The referring side is a test diagram doing what market_research and follow_up do: `crm.refer_inquiry`, then
throw `inquiry.referred` with the payload the catalogue names.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from consultflow.api.crm.v1 import crm_pb2, crm_pb2_grpc
from consultflow.api.orchestrator.v1 import orchestrator_pb2 as pb
from consultflow.platform.settings import repository_root
from tests.support.bpmn_builder import bpmn, message, service_task
from tests.support.polling import eventually
from tests.support.system import InProcessSystem, in_process_system

CLIENT = {
    "client_name": "Foshan Glass",
    "client_industry": "building materials",
    "contact_name": "Mr Lu",
    "contact_email": "lu@example.cn",
    "contact_phone": "",
    "question": "Can you review our export pricing?",
}
PAYLOAD = (
    '{"referred_engagement_id": referred_engagement_id, "engagement_id": referred_engagement_id, '
    '"channel": channel, "client_name": client_name, "client_industry": client_industry, '
    '"contact_name": contact_name, "contact_email": contact_email, "contact_phone": contact_phone, '
    '"question": question, "lead_id": lead_id, "referred_by": referred_by}'
)
REFERRER = bpmn(
    "referrer",
    f"""<startEvent id="s"/>
    {service_task("refer", "crm.refer_inquiry", **{n: n for n in (*CLIENT, "lead_id", "referred_by")})}
    <intermediateThrowEvent id="hand_over"><messageEventDefinition messageRef="m_referred">
      <extensionElements><spiffworkflow:messagePayload>{PAYLOAD}</spiffworkflow:messagePayload></extensionElements>
    </messageEventDefinition></intermediateThrowEvent>
    <endEvent id="e"/>""",
    "s -> refer\nrefer -> hand_over\nhand_over -> e",
    extra=message("m_referred", "inquiry.referred", "referred_engagement_id"),
)


def _folder(tmp_path: Path) -> Path:
    folder = tmp_path / "bpmn"
    shutil.copytree(repository_root() / "bpmn", folder)
    (folder / "referrer.bpmn").write_bytes(REFERRER)
    return folder


def _refer(system: InProcessSystem, **variables: Any) -> tuple[str, dict[str, Any]]:
    """Runs the referrer; returns the new engagement's id and that engagement's variables once its inquiry is
    recorded."""
    created = system.orchestrator.CreateInstance(
        pb.CreateInstanceRequest(process_id="referrer", variables_json=json.dumps({**CLIENT, **variables}))
    )
    referrer = system.wait_completed(created.instance_id)
    engagement_id = json.loads(referrer.variables_json)["referred_engagement_id"]

    def recorded() -> dict[str, Any] | None:
        rows = system.orchestrator.ListInstances(
            pb.ListInstancesRequest(process_id="engagement", business_key=engagement_id)
        ).instances
        if not rows:
            return None
        instance = system.orchestrator.GetInstance(pb.GetInstanceRequest(instance_id=rows[0].instance_id))
        values: dict[str, Any] = json.loads(instance.variables_json)
        return values if "inquiry_id" in values else None

    return engagement_id, eventually(recorded, f"engagement {engagement_id} to record its inquiry", 15, 0.05)


def test_a_lead_and_a_referral_each_start_an_engagement_that_links_back(
    tmp_path: Path, nats_url: str, database_url: str
) -> None:
    with in_process_system(
        tmp_path, nats_url, ["crm"], bpmn_dir=_folder(tmp_path), database_urls={"crm": database_url}
    ) as system:
        crm = crm_pb2_grpc.CrmServiceStub(system.channel("crm"))
        lead = crm.RecordLead(
            crm_pb2.RecordLeadRequest(lead_source="other", lead_company="Foshan Glass", lead_contact="Mr Lu")
        )
        from_lead, variables = _refer(system, channel="market_research", lead_id=lead.lead_id, referred_by="")
        inquiry = crm.GetInquiry(crm_pb2.GetInquiryRequest(inquiry_id=variables["inquiry_id"]))
        assert (inquiry.engagement_id, inquiry.lead_id, inquiry.channel) == (
            from_lead,
            lead.lead_id,
            crm_pb2.CHANNEL_MARKET_RESEARCH,
        )
        (converted,) = crm.ListLeads(crm_pb2.ListLeadsRequest(status="converted")).leads
        assert (converted.lead_id, converted.inquiry_id) == (lead.lead_id, inquiry.inquiry_id)

        from_referral, variables = _refer(system, channel="referral", lead_id="", referred_by="E-EARLIER")
        referred = crm.GetInquiry(crm_pb2.GetInquiryRequest(inquiry_id=variables["inquiry_id"]))
        assert (referred.engagement_id, referred.referred_by, referred.channel) == (
            from_referral,
            "E-EARLIER",
            crm_pb2.CHANNEL_REFERRAL,
        )
        assert from_lead != from_referral
        # each new engagement went on like any inquiry: risk management started (by the message the step
        # after record_inquiry threw, which the orchestrator's message loop delivers after that step)
        for engagement_id in (from_lead, from_referral):

            def risk_management(engagement_id: str = engagement_id) -> list[pb.InstanceSummary]:
                return list(
                    system.orchestrator.ListInstances(
                        pb.ListInstancesRequest(process_id="risk_management", business_key=engagement_id)
                    ).instances
                )

            assert len(eventually(risk_management, f"risk management of {engagement_id}", 15)) == 1
