"""Every CrmService RPC against a real database (SQLite, PostgreSQL) and real NATS."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import grpc
import pytest

from consultflow.api.crm.v1 import crm_pb2 as pb
from consultflow.api.crm.v1 import crm_pb2_grpc as pb_grpc
from consultflow.crm.app import build
from tests.support import dates
from tests.support.components import running
from tests.support.identity import signed_channel
from tests.support.rpc import rpc_code
from tests.support.status import payload, wait_for_types

INVALID = grpc.StatusCode.INVALID_ARGUMENT
NOT_FOUND = grpc.StatusCode.NOT_FOUND
PRECONDITION = grpc.StatusCode.FAILED_PRECONDITION


@pytest.fixture
def crm(tmp_path: Path, nats_url: str, database_url: str) -> Iterator[pb_grpc.CrmServiceStub]:
    with running("crm", build, tmp_path, nats_url, database_url) as component:
        channel = signed_channel(component.address)
        yield pb_grpc.CrmServiceStub(channel)
        channel.close()


def _inquiry(
    crm: pb_grpc.CrmServiceStub, engagement: str, client: str = "Shenzhen Lighting Co."
) -> pb.Inquiry:
    return crm.RecordInquiry(
        pb.RecordInquiryRequest(
            engagement_id=engagement,
            channel=pb.CHANNEL_HOTLINE,
            client_name=client,
            client_industry="lighting",
            contact_name="Ms Chen",
            contact_phone="+86 755 1234 5678",
            question="Can you help us enter the European market?",
        )
    )


def _requirements(inquiry_id: str, needs: str = "market entry plan") -> pb.RecordRequirementsRequest:
    return pb.RecordRequirementsRequest(
        inquiry_id=inquiry_id,
        communication_mode="face_to_face",
        needs=needs,
        background="exports to Asia only",
        goals="first EU distributor within a year",
        expected_results="an entry strategy and a shortlist of distributors",
        recorded_by="Zhang San",
    )


def _verdict(feasible: bool, reason: str = "") -> pb.DimensionVerdict:
    return pb.DimensionVerdict(
        verdict=pb.VERDICT_FEASIBLE if feasible else pb.VERDICT_INFEASIBLE, reason=reason
    )


def test_clients_and_contacts(crm: pb_grpc.CrmServiceStub, nats_url: str) -> None:
    client = crm.CreateClient(pb.CreateClientRequest(name="Hangzhou Tea Ltd", industry="food"))
    code, details = rpc_code(lambda: crm.CreateClient(pb.CreateClientRequest(name="hangzhou tea ltd")))
    assert code == grpc.StatusCode.ALREADY_EXISTS and client.client_id in details
    assert rpc_code(lambda: crm.CreateClient(pb.CreateClientRequest(name=" ")))[0] == INVALID

    contact = crm.AddContact(
        pb.AddContactRequest(client_id=client.client_id, name="Wang Fang", email="wf@tea.example", role="CEO")
    )
    code, details = rpc_code(
        lambda: crm.AddContact(pb.AddContactRequest(client_id=client.client_id, name="Li Na"))
    )
    assert code == INVALID and details.startswith("email:")
    assert (
        rpc_code(lambda: crm.AddContact(pb.AddContactRequest(client_id="nope", name="X", phone="12345")))[0]
        == NOT_FOUND
    )
    again = pb.AddContactRequest(client_id=client.client_id, name="wang fang", phone="12345")
    assert rpc_code(lambda: crm.AddContact(again))[0] == grpc.StatusCode.ALREADY_EXISTS

    got = crm.GetClient(pb.GetClientRequest(client_id=client.client_id))
    assert (got.name, got.industry) == ("Hangzhou Tea Ltd", "food")
    assert [(c.contact_id, c.name, c.role) for c in got.contacts] == [
        (contact.contact_id, "Wang Fang", "CEO")
    ]
    assert rpc_code(lambda: crm.GetClient(pb.GetClientRequest(client_id="missing")))[0] == NOT_FOUND

    for name in ("Tea Traders", "Tianjin Steel", "Teal_Design 100%"):
        crm.CreateClient(pb.CreateClientRequest(name=name, industry="food" if "Tea" in name else "steel"))
    first = crm.SearchClients(pb.SearchClientsRequest(text="TEA", page_size=2))
    assert [c.name for c in first.clients] == ["Hangzhou Tea Ltd", "Tea Traders"]
    assert first.clients[0].contacts[0].name == "Wang Fang"
    second = crm.SearchClients(
        pb.SearchClientsRequest(text="tea", page_size=2, page_token=first.next_page_token)
    )
    assert [c.name for c in second.clients] == ["Teal_Design 100%"] and not second.next_page_token
    assert [c.name for c in crm.SearchClients(pb.SearchClientsRequest(text="100%")).clients] == [
        "Teal_Design 100%"
    ]
    assert [c.name for c in crm.SearchClients(pb.SearchClientsRequest(industry="STEEL")).clients] == [
        "Tianjin Steel"
    ]
    assert rpc_code(lambda: crm.SearchClients(pb.SearchClientsRequest(page_token="x")))[0] == INVALID

    events = wait_for_types(nats_url, ["crm.client.created"] * 4 + ["crm.contact.added"])
    created = next(e for e in events if e.type == "client.created")
    assert payload(created)["client_name"] == "Hangzhou Tea Ltd"


def test_intake_from_inquiry_to_feasibility_and_decline(crm: pb_grpc.CrmServiceStub, nats_url: str) -> None:
    inquiry = _inquiry(crm, "E-1")
    assert inquiry.status == "open" and inquiry.contact_id
    same_client = _inquiry(crm, "E-2", client="SHENZHEN LIGHTING CO.")
    assert same_client.client_id == inquiry.client_id and same_client.contact_id == inquiry.contact_id
    client = crm.GetClient(pb.GetClientRequest(client_id=inquiry.client_id))
    assert [c.phone for c in client.contacts] == ["+86 755 1234 5678"]

    bad_channel = pb.RecordInquiryRequest(
        client_name="X", contact_name="Y", contact_email="y@x.cn", question="?"
    )
    code, details = rpc_code(lambda: crm.RecordInquiry(bad_channel))
    assert code == INVALID and details.startswith("channel:")

    # 2.2.2 needs 2.2.1 first
    code, details = rpc_code(
        lambda: crm.RecordFeasibility(
            pb.RecordFeasibilityRequest(
                inquiry_id=inquiry.inquiry_id,
                technical=_verdict(True),
                economic=_verdict(True),
                time=_verdict(True),
                assessors=["Wang Wu"],
            )
        )
    )
    assert code == PRECONDITION and "2.2.1" in details

    v1 = crm.RecordRequirements(_requirements(inquiry.inquiry_id))
    v2 = crm.RecordRequirements(_requirements(inquiry.inquiry_id, needs="entry plan and pricing"))
    assert (v1.current_version, v2.current_version) == (1, 2) and v1.requirements_id == v2.requirements_id
    assert [v.needs for v in v2.versions] == ["market entry plan", "entry plan and pricing"]
    by_inquiry = crm.GetRequirements(pb.GetRequirementsRequest(inquiry_id=inquiry.inquiry_id))
    assert by_inquiry.requirements_id == v1.requirements_id and by_inquiry.engagement_id == "E-1"
    bad_mode = _requirements(inquiry.inquiry_id)
    bad_mode.communication_mode = "letter"
    code, details = rpc_code(lambda: crm.RecordRequirements(bad_mode))
    assert code == INVALID and details.startswith("communication_mode:")
    assert rpc_code(lambda: crm.RecordRequirements(_requirements("unknown")))[0] == NOT_FOUND
    assert rpc_code(lambda: crm.GetRequirements(pb.GetRequirementsRequest()))[0] == INVALID

    listed = crm.ListInquiries(pb.ListInquiriesRequest(open_only=True))
    assert {i.inquiry_id: i.status for i in listed.inquiries} == {
        inquiry.inquiry_id: "in_assessment",
        same_client.inquiry_id: "open",
    }

    no_reason = pb.RecordFeasibilityRequest(
        inquiry_id=inquiry.inquiry_id,
        technical=_verdict(True),
        economic=_verdict(False),
        time=_verdict(True),
        assessors=["Wang Wu"],
    )
    code, details = rpc_code(lambda: crm.RecordFeasibility(no_reason))
    assert code == INVALID and details.startswith("economic_reason:")
    no_verdict = pb.RecordFeasibilityRequest(inquiry_id=inquiry.inquiry_id, assessors=["Wang Wu"])
    assert rpc_code(lambda: crm.RecordFeasibility(no_verdict))[1].startswith("technical.verdict:")

    go = crm.RecordFeasibility(
        pb.RecordFeasibilityRequest(
            inquiry_id=inquiry.inquiry_id,
            technical=_verdict(True),
            economic=_verdict(True),
            time=_verdict(True),
            assessors=["Wang Wu", "Zhao Liu"],
            report="Worth taking on.",
        )
    )
    assert go.feasible and go.requirements_version == 2 and list(go.assessors) == ["Wang Wu", "Zhao Liu"]
    assert [(v.dimension, v.feasible) for v in go.verdicts] == [
        ("technical", True),
        ("economic", True),
        ("time", True),
    ]
    assert crm.GetFeasibility(pb.GetFeasibilityRequest(feasibility_id=go.feasibility_id)) == go
    assert crm.GetInquiry(pb.GetInquiryRequest(inquiry_id=inquiry.inquiry_id)).status == "accepted"
    assert rpc_code(lambda: crm.GetFeasibility(pb.GetFeasibilityRequest(feasibility_id="x")))[0] == NOT_FOUND

    infeasible = pb.DeclineInquiryRequest(inquiry_id=inquiry.inquiry_id, decline_reason="infeasible")
    code, details = rpc_code(lambda: crm.DeclineInquiry(infeasible))
    assert code == PRECONDITION and "no-go" in details
    bad_reason = pb.DeclineInquiryRequest(inquiry_id=inquiry.inquiry_id, decline_reason="bored")
    assert rpc_code(lambda: crm.DeclineInquiry(bad_reason))[0] == INVALID
    declined = crm.DeclineInquiry(
        pb.DeclineInquiryRequest(inquiry_id=inquiry.inquiry_id, decline_reason="offer_rejected")
    )
    assert declined.status == "declined" and declined.decline_reason == "offer_rejected"
    assert declined.HasField("closed_at")
    assert (
        rpc_code(
            lambda: crm.DeclineInquiry(
                pb.DeclineInquiryRequest(inquiry_id=inquiry.inquiry_id, decline_reason="risk_avoided")
            )
        )[0]
        == PRECONDITION
    )
    assert rpc_code(lambda: crm.RecordRequirements(_requirements(inquiry.inquiry_id)))[0] == PRECONDITION

    history = crm.GetIntakeHistory(pb.GetIntakeHistoryRequest(engagement_id="E-1"))
    assert [i.inquiry_id for i in history.inquiries] == [inquiry.inquiry_id]
    assert [r.current_version for r in history.requirements] == [2]
    assert [a.feasibility_id for a in history.assessments] == [go.feasibility_id]
    assert rpc_code(lambda: crm.GetIntakeHistory(pb.GetIntakeHistoryRequest()))[0] == INVALID

    events = wait_for_types(
        nats_url,
        [
            "crm.inquiry.recorded",
            "crm.inquiry.recorded",
            "crm.requirements.recorded",
            "crm.requirements.recorded",
            "crm.feasibility.assessed",
            "crm.inquiry.accepted",
            "crm.inquiry.declined",
        ],
    )
    for event in events:
        if event.type in (
            "requirements.recorded",
            "feasibility.assessed",
            "inquiry.accepted",
            "inquiry.declined",
        ):
            assert event.correlation["engagement_id"] == "E-1", event
    assessed = next(e for e in events if e.type == "feasibility.assessed")
    assert payload(assessed)["feasible"] is True
    assert (
        payload(next(e for e in events if e.type == "inquiry.declined"))["decline_reason"] == "offer_rejected"
    )


def test_a_no_go_declines_as_infeasible(crm: pb_grpc.CrmServiceStub) -> None:
    inquiry = _inquiry(crm, "E-3")
    crm.RecordRequirements(_requirements(inquiry.inquiry_id))
    nogo = crm.RecordFeasibility(
        pb.RecordFeasibilityRequest(
            inquiry_id=inquiry.inquiry_id,
            technical=_verdict(True),
            economic=_verdict(False, "budget below our cost"),
            time=_verdict(True),
            assessors=["Wang Wu"],
        )
    )
    assert not nogo.feasible and nogo.summary == "no-go: economic: budget below our cost"
    assert crm.GetInquiry(pb.GetInquiryRequest(inquiry_id=inquiry.inquiry_id)).status == "in_assessment"
    declined = crm.DeclineInquiry(
        pb.DeclineInquiryRequest(inquiry_id=inquiry.inquiry_id, decline_reason="infeasible")
    )
    assert declined.status == "declined"
    assert (
        crm.ListInquiries(pb.ListInquiriesRequest(status="declined")).inquiries[0].inquiry_id
        == inquiry.inquiry_id
    )
    assert rpc_code(lambda: crm.ListInquiries(pb.ListInquiriesRequest(status="closed")))[0] == INVALID


def test_the_experts_conclusion_decides_over_the_rpc_too(crm: pb_grpc.CrmServiceStub) -> None:
    """2.2.2: feasible in all three dimensions and still not worth taking on, as the experts conclude."""
    inquiry = _inquiry(crm, "E-31")
    crm.RecordRequirements(_requirements(inquiry.inquiry_id))
    request = pb.RecordFeasibilityRequest(
        inquiry_id=inquiry.inquiry_id,
        technical=_verdict(True),
        economic=_verdict(True),
        time=_verdict(True),
        assessors=["Wang Wu"],
        worth_taking_on=False,
    )
    assert rpc_code(lambda: crm.RecordFeasibility(request))[0] == INVALID, "a conclusion needs its reasons"
    request.worth_reason = "a one-off job far from our practice"
    verdict = crm.RecordFeasibility(request)
    assert not verdict.feasible and verdict.summary.startswith("no-go: a one-off job")


def test_market_research(crm: pb_grpc.CrmServiceStub, nats_url: str) -> None:
    insight = crm.RecordMarketInsight(
        pb.RecordMarketInsightRequest(
            industry="lighting", industry_trends="LED retrofit demand", competitors="two new local firms"
        )
    )
    crm.RecordMarketInsight(pb.RecordMarketInsightRequest(industry="steel", market_demand="flat"))
    assert (
        rpc_code(lambda: crm.RecordMarketInsight(pb.RecordMarketInsightRequest(industry="x")))[0] == INVALID
    )
    listed = crm.ListMarketInsights(pb.ListMarketInsightsRequest(industry="Lighting"))
    assert [i.insight_id for i in listed.insights] == [insight.insight_id]
    assert len(crm.ListMarketInsights(pb.ListMarketInsightsRequest()).insights) == 2

    lead = crm.RecordLead(
        pb.RecordLeadRequest(
            lead_source="trade_fair",
            lead_company="Guangzhou Lamps",
            lead_contact="Mr Huang",
            lead_notes="hall 3",
        )
    )
    assert lead.status == "new"
    code, details = rpc_code(
        lambda: crm.RecordLead(pb.RecordLeadRequest(lead_source="radio", lead_company="Y"))
    )
    assert code == INVALID and details.startswith("lead_source:")
    converted = crm.RecordInquiry(
        pb.RecordInquiryRequest(
            channel=pb.CHANNEL_MARKET_RESEARCH,
            client_name="Guangzhou Lamps",
            contact_name="Mr Huang",
            contact_email="huang@lamps.example",
            question="Interested in your export programme",
            lead_id=lead.lead_id,
        )
    )
    assert converted.lead_id == lead.lead_id
    leads = crm.ListLeads(pb.ListLeadsRequest(status="converted")).leads
    assert [(x.lead_id, x.inquiry_id) for x in leads] == [(lead.lead_id, converted.inquiry_id)]
    again = pb.RecordInquiryRequest(
        channel=pb.CHANNEL_MARKET_RESEARCH,
        client_name="Guangzhou Lamps",
        contact_name="Mr Huang",
        contact_email="huang@lamps.example",
        question="again",
        lead_id=lead.lead_id,
    )
    assert rpc_code(lambda: crm.RecordInquiry(again))[0] == PRECONDITION
    again.lead_id = "unknown"
    assert rpc_code(lambda: crm.RecordInquiry(again))[0] == NOT_FOUND
    assert crm.ListLeads(pb.ListLeadsRequest(status="new")).leads == []
    wait_for_types(
        nats_url, ["crm.insight.recorded", "crm.insight.recorded", "crm.lead.recorded", "crm.lead.converted"]
    )


def test_relationship_maintenance(crm: pb_grpc.CrmServiceStub, nats_url: str) -> None:
    inquiry = _inquiry(crm, "E-9")
    client_id = inquiry.client_id
    today = dates.today()
    overdue = crm.PlanRevisit(
        pb.PlanRevisitRequest(
            client_id=client_id,
            engagement_id="E-9",
            revisit_method="phone",
            due_date=(today - timedelta(days=3)).isoformat(),
            purpose="how is the plan used?",
        )
    )
    later = crm.PlanRevisit(
        pb.PlanRevisitRequest(
            client_id=client_id, revisit_method="visit", due_date=(today + timedelta(days=90)).isoformat()
        )
    )
    bad_date = pb.PlanRevisitRequest(client_id=client_id, revisit_method="visit", due_date="soon")
    assert rpc_code(lambda: crm.PlanRevisit(bad_date))[1].startswith("due_date:")
    unknown = pb.PlanRevisitRequest(client_id="x", revisit_method="visit", due_date=today.isoformat())
    assert rpc_code(lambda: crm.PlanRevisit(unknown))[0] == NOT_FOUND

    due = crm.ListDueRevisits(pb.ListDueRevisitsRequest())
    assert [(p.plan_id, p.client_name, p.due) for p in due.plans] == [
        (overdue.plan_id, "Shenzhen Lighting Co.", True)
    ]
    future = crm.ListDueRevisits(pb.ListDueRevisitsRequest(as_of=(today + timedelta(days=100)).isoformat()))
    assert [p.plan_id for p in future.plans] == [overdue.plan_id, later.plan_id]

    revisit = crm.RecordRevisit(
        pb.RecordRevisitRequest(
            client_id=client_id,
            engagement_id="E-9",
            revisit_method="phone",
            revisit_findings="the distributor shortlist is in use",
            new_needs="pricing study for Germany",
        )
    )
    assert revisit.plan_id == overdue.plan_id, "the due plan is fulfilled"
    assert crm.ListDueRevisits(pb.ListDueRevisitsRequest()).plans == []
    done_plan = pb.RecordRevisitRequest(
        client_id=client_id, revisit_method="email", revisit_findings="ok", plan_id=overdue.plan_id
    )
    assert rpc_code(lambda: crm.RecordRevisit(done_plan))[0] == PRECONDITION
    no_findings = pb.RecordRevisitRequest(client_id=client_id, revisit_method="email")
    assert rpc_code(lambda: crm.RecordRevisit(no_findings))[1].startswith("revisit_findings:")

    service = crm.RecordValueAddedService(
        pb.RecordValueAddedServiceRequest(
            client_id=client_id,
            engagement_id="E-9",
            value_added_service="free_training",
            description="EU labelling",
        )
    )
    bad_kind = pb.RecordValueAddedServiceRequest(client_id=client_id, value_added_service="lunch")
    assert rpc_code(lambda: crm.RecordValueAddedService(bad_kind))[0] == INVALID
    opportunity = crm.RecordOpportunity(
        pb.RecordOpportunityRequest(
            client_id=client_id,
            engagement_id="E-9",
            opportunity="their partner needs an audit",
            opportunity_kind="referral",
            referred_company="Foshan Glass",
        )
    )
    assert opportunity.status == "open"
    referral = pb.RecordOpportunityRequest(client_id=client_id, opportunity="x", opportunity_kind="referral")
    assert rpc_code(lambda: crm.RecordOpportunity(referral))[1].startswith("referred_company:")
    missing = pb.RecordOpportunityRequest(client_id="nobody", opportunity="phase two")
    assert rpc_code(lambda: crm.RecordOpportunity(missing))[0] == NOT_FOUND

    relationship = crm.GetRelationship(pb.GetRelationshipRequest(client_id=client_id))
    assert [p.status for p in relationship.plans] == ["done", "planned"]
    assert [(r.revisit_id, r.plan_id) for r in relationship.revisits] == [
        (revisit.revisit_id, overdue.plan_id)
    ]
    assert [s.value_added_service_id for s in relationship.value_added_services] == [
        service.value_added_service_id
    ]
    assert [o.opportunity_id for o in relationship.opportunities] == [opportunity.opportunity_id]
    assert rpc_code(lambda: crm.GetRelationship(pb.GetRelationshipRequest(client_id="x")))[0] == NOT_FOUND

    events = wait_for_types(
        nats_url,
        [
            "crm.revisit.planned",
            "crm.revisit.planned",
            "crm.revisit.recorded",
            "crm.value_added_service.recorded",
            "crm.opportunity.recorded",
        ],
    )
    recorded = next(e for e in events if e.type == "revisit.recorded")
    assert recorded.correlation["engagement_id"] == "E-9"
    assert payload(recorded)["new_needs"] == "pricing study for Germany"
