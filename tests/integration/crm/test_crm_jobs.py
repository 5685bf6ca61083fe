"""Every crm.* operation as a job: through the real orchestrator and NATS, and the handler contract
(idempotent redelivery, errors that name the input) against real databases."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Table, func, select

from consultflow.api.crm.v1 import crm_pb2, crm_pb2_grpc
from consultflow.api.orchestrator.v1 import orchestrator_pb2 as pb
from consultflow.crm import orm
from consultflow.crm.app import build
from consultflow.crm.jobs import operations
from consultflow.platform.tables import outbox
from tests.support.bpmn_builder import Task, bpmn_folder, line
from tests.support.components import ComponentThread, running
from tests.support.jobs import completed, job, refused_job, run
from tests.support.status import payload, wait_for_types
from tests.support.system import in_process_system

HANDLERS = operations.bind(None)

START = {
    "engagement_id": "E-42",
    "channel": "email",
    "client_name": "Shenzhen Lighting Co.",
    "client_industry": "lighting",
    "contact_name": "Ms Chen",
    "contact_email": "chen@example.cn",
    "contact_phone": "",
    "question": "Can you help us enter the European market?",
    "communication_mode": "phone",
    "needs": "market entry plan",
    "background": "exports to Asia",
    "goals": "an EU distributor",
    "expected_results": "strategy and shortlist",
    "technical_feasible": True,
    "technical_reason": "",
    "economic_feasible": False,
    "economic_reason": "budget below cost",
    "time_feasible": True,
    "time_reason": "",
    "assessors": "Wang Wu, Zhao Liu",
    "decline_reason": "infeasible",
    "industry_trends": "LED retrofits",
    "market_demand": "growing",
    "competitors": "two new firms",
    "lead_source": "seminar",
    "lead_company": "Foshan Glass",
    "lead_contact": "Mr Lu",
    "lead_notes": "asked for a brochure",
    "revisit_method": "visit",
    "revisit_findings": "the plan is in use",
    "new_needs": "a pricing study",
    "value_added_service": "industry_news",
    "opportunity": "phase two in Germany",
}


def _same(*names: str) -> dict[str, str]:
    return {name: name for name in names}


CRM_LINE = [
    Task(
        "record_inquiry",
        "crm.record_inquiry",
        _same(
            "engagement_id",
            "channel",
            "client_name",
            "client_industry",
            "contact_name",
            "contact_email",
            "contact_phone",
            "question",
        ),
    ),
    Task(
        "record_requirements",
        "crm.record_requirements",
        _same(
            "engagement_id",
            "inquiry_id",
            "communication_mode",
            "needs",
            "background",
            "goals",
            "expected_results",
        ),
    ),
    Task(
        "record_feasibility",
        "crm.record_feasibility",
        _same(
            "engagement_id",
            "inquiry_id",
            "technical_feasible",
            "technical_reason",
            "economic_feasible",
            "economic_reason",
            "time_feasible",
            "time_reason",
            "assessors",
        ),
    ),
    Task("decline_inquiry", "crm.decline_inquiry", _same("engagement_id", "inquiry_id", "decline_reason")),
    Task(
        "record_market_insight",
        "crm.record_market_insight",
        _same("industry_trends", "market_demand", "competitors"),
    ),
    Task(
        "record_lead", "crm.record_lead", _same("lead_source", "lead_company", "lead_contact", "lead_notes")
    ),
    Task(
        "refer_inquiry",
        "crm.refer_inquiry",
        {
            **_same("client_industry", "contact_name", "contact_email", "contact_phone", "question"),
            "lead_id": "lead_id",
            "client_name": "lead_company",
            "referred_by": '""',
        },
    ),
    Task(
        "record_revisit",
        "crm.record_revisit",
        _same("engagement_id", "client_id", "revisit_method", "revisit_findings", "new_needs"),
    ),
    Task(
        "record_value_added_service",
        "crm.record_value_added_service",
        _same("engagement_id", "client_id", "value_added_service"),
    ),
    Task("record_opportunity", "crm.record_opportunity", _same("engagement_id", "client_id", "opportunity")),
]


def test_every_crm_operation_through_the_orchestrator(
    tmp_path: Path, nats_url: str, database_url: str
) -> None:
    assert {t.operation for t in CRM_LINE} == set(operations.names), "the test diagram covers every operation"
    folder = bpmn_folder(tmp_path, {"crm_line": line("crm_line", CRM_LINE)})
    with in_process_system(
        tmp_path, nats_url, ["crm"], bpmn_dir=folder, database_urls={"crm": database_url}
    ) as system:
        created = system.orchestrator.CreateInstance(
            pb.CreateInstanceRequest(
                process_id="crm_line", variables_json=json.dumps(START), business_key="E-42"
            )
        )
        instance = system.wait_completed(created.instance_id)
        variables = json.loads(instance.variables_json)
        crm = crm_pb2_grpc.CrmServiceStub(system.channel("crm"))
        history = crm.GetIntakeHistory(crm_pb2.GetIntakeHistoryRequest(engagement_id="E-42"))
        relationship = crm.GetRelationship(crm_pb2.GetRelationshipRequest(client_id=variables["client_id"]))

    assert variables["requirements_version"] == 1
    assert variables["feasible"] is False
    assert variables["feasibility_summary"] == "no-go: economic: budget below cost"
    assert (variables["intake_outcome"], variables["decline_reason"]) == ("declined", "infeasible")
    for output in ("inquiry_id", "requirements_id", "feasibility_id", "insight_id", "lead_id", "revisit_id"):
        assert variables[output], output
    assert variables["value_added_service_id"] and variables["opportunity_id"]

    assert [i.status for i in history.inquiries] == ["declined"]
    assert list(history.assessments[0].assessors) == ["Wang Wu", "Zhao Liu"]
    assert [r.revisit_id for r in relationship.revisits] == [variables["revisit_id"]]
    assert [o.opportunity_kind for o in relationship.opportunities] == ["follow_on"]

    events = wait_for_types(
        nats_url,
        [
            "crm.client.created",
            "crm.contact.added",
            "crm.inquiry.recorded",
            "crm.requirements.recorded",
            "crm.feasibility.assessed",
            "crm.inquiry.declined",
            "crm.insight.recorded",
            "crm.lead.recorded",
            "crm.revisit.recorded",
            "crm.value_added_service.recorded",
            "crm.opportunity.recorded",
            "orchestrator.instance.completed",
        ],
    )
    assert variables["referred_engagement_id"].startswith("E-")
    unrelated = ("insight.recorded", "lead.recorded", "client.created", "contact.added", "inquiry.referred")
    engagement_events = [e for e in events if e.source == "crm" and e.type not in unrelated]
    assert len(engagement_events) == 7
    assert {e.correlation["engagement_id"] for e in engagement_events} == {"E-42"}
    declined = next(e for e in events if e.type == "inquiry.declined")
    assert payload(declined)["inquiry_id"] == variables["inquiry_id"]


# --- the handler contract, against real databases ---------------------------------------------------


@pytest.fixture
def crm(tmp_path: Path, nats_url: str, database_url: str) -> Iterator[ComponentThread]:
    with running("crm", build, tmp_path, nats_url, database_url) as thread:
        yield thread


def _done(crm: ComponentThread, operation: str, key: str, **parameters: Any) -> Mapping[str, Any]:
    """Runs a job of engagement E-7 that must complete; returns its outputs."""
    return completed(run(crm, HANDLERS, job(operation, key, business_key="E-7", **parameters)))


def _count(crm: ComponentThread, table: type[orm.Base] | Table) -> int:
    assert crm.context is not None
    with crm.context.read() as session:
        return int(session.scalar(select(func.count()).select_from(table)) or 0)


INQUIRY = {k: START[k] for k in ("channel", "client_name", "contact_name", "contact_email", "question")}
REQUIREMENTS = {
    k: START[k] for k in ("communication_mode", "needs", "background", "goals", "expected_results")
}


def test_a_redelivered_job_creates_nothing_twice(crm: ComponentThread) -> None:
    first = _done(crm, "crm.record_inquiry", "job-1", **INQUIRY)
    assert _done(crm, "crm.record_inquiry", "job-1", **INQUIRY) == first
    inquiry_id, client_id = first["inquiry_id"], first["client_id"]
    v1 = _done(crm, "crm.record_requirements", "job-2", inquiry_id=inquiry_id, **REQUIREMENTS)
    assert _done(crm, "crm.record_requirements", "job-2", inquiry_id=inquiry_id, **REQUIREMENTS) == v1
    assert v1["requirements_version"] == 1
    relationship = {"client_id": client_id}
    repeated = [
        ("crm.record_revisit", {**relationship, "revisit_method": "phone", "revisit_findings": "fine"}),
        ("crm.record_value_added_service", {**relationship, "value_added_service": "free_training"}),
        ("crm.record_opportunity", {**relationship, "opportunity": "phase two"}),
        ("crm.record_lead", {"lead_source": "trade_fair", "lead_company": "X"}),
        ("crm.record_market_insight", {"market_demand": "up"}),
    ]
    for index, (operation, parameters) in enumerate(repeated):
        once = _done(crm, operation, f"job-r{index}", **parameters)
        assert _done(crm, operation, f"job-r{index}", **parameters) == once
    for table in (
        orm.Client,
        orm.Contact,
        orm.Inquiry,
        orm.RequirementsVersion,
        orm.Revisit,
        orm.ValueAddedService,
        orm.Opportunity,
        orm.Lead,
        orm.MarketInsight,
    ):
        assert _count(crm, table) == 1, table.__tablename__
    events = _count(crm, outbox)
    _done(crm, "crm.record_opportunity", "job-r2", **relationship, opportunity="phase two")
    assert _count(crm, outbox) == events, "a replay publishes nothing"
    # a new job (another key) is a new version
    v2 = _done(crm, "crm.record_requirements", "job-3", inquiry_id=inquiry_id, **REQUIREMENTS)
    assert v2 == {"requirements_id": v1["requirements_id"], "requirements_version": 2}


def test_refused_jobs_name_the_input_and_are_not_retried(crm: ComponentThread) -> None:
    assert "client_name" in refused_job(crm, HANDLERS, "crm.record_inquiry", {"channel": "email"})
    bad = refused_job(crm, HANDLERS, "crm.record_inquiry", {**INQUIRY, "channel": "fax"})
    assert bad.startswith("InvalidArgument: channel:")

    inquiry = _done(crm, "crm.record_inquiry", "j-3", **INQUIRY)
    early = refused_job(
        crm,
        HANDLERS,
        "crm.record_feasibility",
        {
            "inquiry_id": inquiry["inquiry_id"],
            "technical_feasible": True,
            "economic_feasible": True,
            "time_feasible": True,
            "assessors": ["A"],
        },
    )
    assert "FailedPrecondition" in early and "2.2.1" in early
    _done(crm, "crm.record_requirements", "j-5", inquiry_id=inquiry["inquiry_id"], **REQUIREMENTS)
    no_reason = refused_job(
        crm,
        HANDLERS,
        "crm.record_feasibility",
        {
            "inquiry_id": inquiry["inquiry_id"],
            "technical_feasible": "no",
            "economic_feasible": True,
            "time_feasible": True,
            "assessors": "A",
        },
    )
    assert "technical_reason" in no_reason
    go = _done(
        crm,
        "crm.record_feasibility",
        "j-7",
        inquiry_id=inquiry["inquiry_id"],
        technical_feasible="yes",
        economic_feasible=True,
        time_feasible="true",
        assessors="A, B",
    )
    assert go["feasible"] is True
    infeasible = refused_job(
        crm,
        HANDLERS,
        "crm.decline_inquiry",
        {"inquiry_id": inquiry["inquiry_id"], "decline_reason": "infeasible"},
    )
    assert "no-go" in infeasible
    assert _done(
        crm,
        "crm.decline_inquiry",
        "j-9",
        inquiry_id=inquiry["inquiry_id"],
        decline_reason="offer_expired",
    ) == {"intake_outcome": "declined", "decline_reason": "offer_expired"}
    unknown = refused_job(
        crm,
        HANDLERS,
        "crm.record_revisit",
        {"client_id": "nobody", "revisit_method": "phone", "revisit_findings": "x"},
    )
    assert "NotFound" in unknown
    assert _count(crm, orm.Revisit) == 0


def test_a_lead_or_an_engagement_is_referred_to_a_new_engagement(crm: ComponentThread) -> None:
    lead = _done(crm, "crm.record_lead", "l-1", lead_source="other", lead_company="Foshan Glass")
    lead_id = lead["lead_id"]
    contact = {k: INQUIRY[k] for k in ("client_name", "contact_name", "contact_email", "question")}
    referred = _done(crm, "crm.refer_inquiry", "r-1", **contact, lead_id=lead_id, referred_by="")
    assert _done(crm, "crm.refer_inquiry", "r-1", **contact, lead_id=lead_id, referred_by="") == referred
    new_engagement = referred["referred_engagement_id"]
    again = refused_job(crm, HANDLERS, "crm.refer_inquiry", {**contact, "lead_id": lead_id})
    assert "FailedPrecondition" in again and "2.1.1" in again
    # the new engagement records its inquiry with the lead: the lead is converted, the referral linked
    from_lead: dict[str, Any] = {
        **INQUIRY,
        "channel": "market_research",
        "engagement_id": new_engagement,
        "lead_id": lead_id,
    }
    inquiry = completed(
        run(
            crm,
            HANDLERS,
            job("crm.record_inquiry", "i-1", **from_lead),
        )
    )
    from_follow_up = _done(crm, "crm.refer_inquiry", "r-2", **contact, referred_by="E-7", lead_id="")
    from_engagement: dict[str, Any] = {
        **INQUIRY,
        "channel": "referral",
        "engagement_id": from_follow_up["referred_engagement_id"],
        "referred_by": "E-7",
    }
    referral_inquiry = completed(
        run(
            crm,
            HANDLERS,
            job("crm.record_inquiry", "i-2", **from_engagement),
        )
    )
    assert crm.context is not None
    with crm.context.read() as session:
        row = session.get(orm.Lead, lead_id)
        assert row is not None and (row.status, row.inquiry_id) == ("converted", inquiry["inquiry_id"])
        links = {
            r.referred_engagement_id: (r.lead_id, r.referred_by, r.inquiry_id)
            for r in session.scalars(select(orm.Referral))
        }
        referred_inquiry = session.get(orm.Inquiry, referral_inquiry["inquiry_id"])
        assert referred_inquiry is not None and referred_inquiry.referred_by == "E-7"
    assert links == {
        new_engagement: (lead_id, "", inquiry["inquiry_id"]),
        from_follow_up["referred_engagement_id"]: (None, "E-7", referral_inquiry["inquiry_id"]),
    }
    neither = refused_job(crm, HANDLERS, "crm.refer_inquiry", contact)
    assert neither.startswith("InvalidArgument: lead_id:")
    wrong_channel = refused_job(crm, HANDLERS, "crm.record_inquiry", {**INQUIRY, "referred_by": "E-7"})
    assert wrong_channel.startswith("InvalidArgument: channel:")


def test_a_feasible_project_the_experts_judge_not_worth_taking_on_is_declined(crm: ComponentThread) -> None:
    """2.2.2: the report's go/no-go is the experts' conclusion, with its reasons."""
    inquiry = _done(crm, "crm.record_inquiry", "w-1", **INQUIRY)
    _done(crm, "crm.record_requirements", "w-2", inquiry_id=inquiry["inquiry_id"], **REQUIREMENTS)
    feasible: dict[str, Any] = {"technical_feasible": True, "economic_feasible": True, "time_feasible": True}
    feasible["assessors"] = "A"
    no_reasons = refused_job(
        crm,
        HANDLERS,
        "crm.record_feasibility",
        {"inquiry_id": inquiry["inquiry_id"], **feasible, "worth_taking_on": False},
    )
    assert "worth_reason" in no_reasons
    nogo = _done(
        crm,
        "crm.record_feasibility",
        "w-3",
        inquiry_id=inquiry["inquiry_id"],
        **feasible,
        worth_taking_on=False,
        worth_reason="the fee does not cover our cost",
    )
    assert nogo["feasible"] is False
    assert nogo["feasibility_summary"] == "no-go: the fee does not cover our cost"
    assert _done(
        crm, "crm.decline_inquiry", "w-4", inquiry_id=inquiry["inquiry_id"], decline_reason="infeasible"
    ) == {"intake_outcome": "declined", "decline_reason": "infeasible"}
