"""Every delivery job operation, run the way the worker runs it (`run_job`), against a real database
(SQLite, PostgreSQL) and real contracts (with crm) and risk services, with status events relayed to NATS,
and each job delivered twice."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from consultflow.api.contracts.v1 import contracts_pb2
from consultflow.api.delivery.v1 import delivery_pb2 as pb
from consultflow.delivery import app, orm
from consultflow.delivery.adapters import DecisionThresholds, Dependencies, GrpcContracts, GrpcRisks
from consultflow.delivery.jobs import operations
from consultflow.platform.db import Database, UnitOfWork, migrate
from consultflow.platform.decisions import DecisionTables
from consultflow.platform.jobs import JobHandler, Outcome, run_job
from consultflow.platform.tables import processed_jobs
from tests.support import jobs as job_factory
from tests.support.components import closed_address
from tests.support.dates import day
from tests.support.delivery import (
    Peers,
    RunningDelivery,
    running_delivery,
    status_events,
    types_of,
)
from tests.support.identity import signed_channel

ROOT = Path(__file__).resolve().parents[3]


class Jobs:
    """Runs delivery jobs of one engagement as the worker would, each delivered twice (as after a lost
    acknowledgement). Job keys name the engagement: like the orchestrator's, they are unique everywhere."""

    def __init__(self, uow: Any, handlers: Mapping[str, JobHandler], engagement_id: str) -> None:
        self._uow = uow
        self._handlers = handlers
        self._engagement_id = engagement_id
        self._count = 0
        self.recorded = 0  # jobs that completed or threw a BPMN error: the ones the platform records

    def key(self, number: int) -> str:
        """The key of the `number`th job run."""
        return f"{self._engagement_id}-job-{number}"

    def run(self, operation: str, **parameters: Any) -> Outcome:
        self._count += 1
        job = job_factory.job(
            f"delivery.{operation}", key=self.key(self._count), business_key=self._engagement_id, **parameters
        )
        first = run_job(self._uow, self._handlers, job)
        again = run_job(self._uow, self._handlers, job)
        assert again.kind == first.kind and again.error_code == first.error_code
        if first.kind != "failed":
            self.recorded += 1
            assert again.replayed, "a redelivered job acted again"
            assert again.variables == json.loads(json.dumps(first.variables))
        return first

    def ok(self, operation: str, **parameters: Any) -> dict[str, Any]:
        outcome = self.run(operation, **parameters)
        assert outcome.kind == "completed", outcome.message
        return dict(outcome.variables)

    def refused(self, operation: str, *words: str, **parameters: Any) -> str:
        outcome = self.run(operation, **parameters)
        assert outcome.kind == "failed" and outcome.retries == 0, outcome
        for word in words:
            assert word in outcome.message, outcome.message
        return outcome.message


@pytest.fixture
def delivery(tmp_path: Path, nats_url: str, database_url: str, peers: Peers) -> Iterator[RunningDelivery]:
    with running_delivery(
        tmp_path, nats_url, database_url, peers.contracts_address, peers.risk_address
    ) as running:
        yield running


@pytest.fixture
def jobs(delivery: RunningDelivery, engagement_id: str) -> Jobs:
    return Jobs(delivery.context.uow, app.build(delivery.context).job_handlers, engagement_id)


def test_every_operation_of_the_catalogue_has_a_handler() -> None:
    catalogue = (ROOT / "docs" / "operations.md").read_text(encoding="utf-8")
    documented = {line.split("`")[1] for line in catalogue.splitlines() if line.startswith("| `delivery.")}
    assert documented == set(operations.names)


def test_the_operations_carry_a_project_through_chapters_3_and_4(
    jobs: Jobs,
    delivery: RunningDelivery,
    peers: Peers,
    contract: contracts_pb2.Contract,
    engagement_id: str,
    nats_url: str,
    database_url: str,
) -> None:
    engagement = engagement_id
    project_id = jobs.ok("open_project", engagement_id=engagement, contract_id=contract.contract_id)[
        "project_id"
    ]
    p = {"project_id": project_id}
    assert jobs.ok(
        "form_team",
        **p,
        project_manager="Wang Fang",
        consultants="Li Lei, Zhao Min",
        analysts="Chen Jing",
        assistants="Liu Yang",
        duties="consultant: design the entry strategy",
    ) == {"team_size": 5}
    jobs.ok(
        "record_kickoff",
        **p,
        kickoff_date=day(-29),
        attendees="Wang Fang, Li Lei, Chen Jing",
        briefing="Background, goals, tasks, schedule, quality requirements",
        rules_agreed="Daily stand-up; shared drive",
        materials_handed_out="contract, proposal, work manual",
    )
    assert jobs.ok(
        "archive_research_data",
        **p,
        industry_data="EU lighting outlook | Eurostat",
        client_data="Sales ledger 2024\nOrg chart | HR department | internal",
        market_data="",
    ) == {"documents_archived": 3}
    jobs.ok(
        "record_site_visit",
        **p,
        visit_date=day(-20),
        interviewees="COO, Export manager",
        processes_observed="Order handling",
        observations="Manual customs paperwork",
    )
    analysis = jobs.ok(
        "record_analysis",
        engagement_id=engagement,
        **p,
        problems="Manual customs paperwork\nNo EU distributor",
        opportunities="Energy-label demand",
        risk_found=True,
        risk_description="CE certification may take 6 months",
        risk_category="technical",
    )
    assert analysis["risks_reported"] == 1
    # the duplicate job registered nothing again; the risk is registered under the job's request id
    (registered,) = peers.risks_of(engagement)
    assert (registered.stage, registered.category, registered.description) == (
        "implementation",
        "technical",
        "CE certification may take 6 months",
    )
    assert peers.risk_registered_under(f"delivery:job:{jobs.key(6)}:3", engagement) == registered.risk_id
    assert len(peers.risks_of(engagement)) == 1
    # today's diagram registers a risk found with risk.register_risk itself and passes none here
    again = jobs.ok(
        "record_analysis", engagement_id=engagement, **p, problems="Slow approvals", opportunities=""
    )
    assert again["risks_reported"] == 0 and len(peers.risks_of(engagement)) == 1

    links = {"flow_chart_link": "https://wiki.example/flow", "mind_map_link": "https://wiki.example/map"}
    first = jobs.ok("submit_solution", **p, solution_summary="Distributors", **links)
    assert first["solution_version"] == 1
    assert jobs.ok(
        "record_solution_review",
        solution_id=first["solution_id"],
        solution_verdict="revise",
        review_comments="Add risk responses",
    ) == {"solution_approved": False}
    second = jobs.ok("submit_solution", **p, solution_summary="Distributors + hub", flow_chart_link="")
    assert second["solution_version"] == 2
    criteria = {f"{c}_verdict": "met" for c in ("soundness", "feasibility", "innovation", "risk_response")}
    assert jobs.ok(
        "record_solution_review",
        solution_id=second["solution_id"],
        solution_verdict="approved",
        **criteria,
        soundness_comments="Fits the client's channels",
        feasibility_comments="Team and budget suffice",
        innovation_comments="Hub model new to the sector",
        risk_response_comments="Fallback distributor named",
    ) == {"solution_approved": True}
    # 3.3.2: the first review came from a diagram without criteria, the second has all four
    solutions = delivery.stub.ListSolutions(pb.ListSolutionsRequest(project_id=project_id)).solutions
    assert list(solutions[0].reviews[0].criteria) == []
    assert [(c.criterion, c.verdict, c.comments) for c in solutions[1].reviews[0].criteria] == [
        ("soundness", "met", "Fits the client's channels"),
        ("feasibility", "met", "Team and budget suffice"),
        ("innovation", "met", "Hub model new to the sector"),
        ("risk_response", "met", "Fallback distributor named"),
    ]

    jobs.ok("start_execution", **p)
    # 3.4.1: the team reports its work and the project manager checks its quality (it counts in the pass rate)
    work = jobs.ok("record_work_report", **p, work_report="Diagnosis interviews held")
    assert jobs.ok(
        "check_work_quality",
        **p,
        work_report_id=work["work_report_id"],
        quality_passed=True,
        quality_notes="",
    )["quality_check_id"]
    # 3.5.1: work that needs other departments' support is coordinated with them
    coordination = jobs.ok(
        "record_coordination",
        **p,
        departments="finance, legal",
        support_needed="A contract with a customs broker",
        coordination_outcome="Legal drafts it this week",
    )
    logged = delivery.stub.ListCommunications(pb.ListCommunicationsRequest(project_id=project_id))
    entries = {c.communication_id: c for c in logged.communications}
    assert (entries[work["work_report_id"]].direction, entries[work["work_report_id"]].kind) == (
        "internal",
        "report",
    )
    coordinated = entries[coordination["coordination_id"]]
    assert (coordinated.direction, coordinated.kind, coordinated.counterpart) == (
        "internal",
        "coordination",
        "finance, legal",
    )
    jobs.ok(
        "record_meeting",
        **p,
        progress_report="Diagnosis late",
        problems="Data arrived late",
        decisions="Hire a customs broker\nWeekly client calls",
        internal_updates="",
    )
    # Baseline tasks without budgets weigh the same: the first (day −30 … −10) should be done, the second
    # (day −10 … 50, 61 days) 11/61 done; nothing is reported done, so the schedule deviation is 100 %.
    indicators = jobs.ok("evaluate_indicators", engagement_id=engagement, **p)
    assert indicators == {
        "indicators_measured": True,
        "schedule_deviation_rate": 1.0,
        "quality_pass_rate": 1.0,
        "cost_overrun_rate": 0.0,
        "indicators_breached": True,
        "breached_indicators": ["schedule_deviation_rate"],
    }
    jobs.ok("record_corrective_action", **p, corrective_action="Add an analyst", action_owner="Wang Fang")
    report = jobs.ok("send_progress_report", **p, report_notes="Told the client about the customs delay")
    logged = delivery.stub.ListCommunications(pb.ListCommunicationsRequest(project_id=project_id))
    sent = next(c for c in logged.communications if c.communication_id == report["progress_report_id"])
    assert sent.kind == "progress_report" and sent.summary.endswith("Told the client about the customs delay")
    change = delivery.stub.RequestChange(
        pb.RequestChangeRequest(project_id=project_id, description="Add the UK")
    )
    assert jobs.ok(
        "record_change_response",
        **p,
        change_request_id=change.change_request_id,
        change_decision="accepted",
        change_response="Added as phase 2",
    ) == {"change_request_status": "accepted"}
    assert jobs.ok("complete_execution", **p, completion_summary="Roadmap agreed")["execution_completed_at"]

    assert jobs.ok(
        "compile_deliverables",
        **p,
        deliverables="Diagnosis report\nEntry strategy | https://dms.example/s\nImplementation roadmap",
        results_summary="All results",
    ) == {"deliverable_set_version": 1}
    assert jobs.ok(
        "record_deliverable_review",
        **p,
        logic_ok=True,
        consistency_ok="yes",
        accuracy_ok=True,
        contract_conformance_ok=True,
        review_comments="",
    ) == {"deliverables_approved": True}
    onsite = jobs.ok(
        "plan_onsite_delivery",
        **p,
        delivery_time=f"{day(1)}T09:30:00+08:00",
        delivery_place="Client HQ",
        attendees="Wang Fang, COO",
        preparations="projector, bound reports",
    )
    assert jobs.ok("record_delivery", delivery_id=onsite["delivery_id"], client_feedback="Clear")[
        "delivered_at"
    ]
    untested = jobs.run("plan_online_delivery", **p, platform="video_conference", channel_tested=False)
    assert (untested.kind, untested.error_code) == ("error", "channel_not_tested")
    online = jobs.ok("plan_online_delivery", **p, platform="video_conference", channel_tested=True)
    assert jobs.ok("send_deliverables_online", delivery_id=online["delivery_id"])["sent_at"]
    jobs.ok(
        "record_delivery",
        delivery_id=online["delivery_id"],
        client_feedback="Please add the export figures",
        feedback_reply="Added to the appendix and sent again",
    )
    logged = delivery.stub.ListCommunications(pb.ListCommunicationsRequest(project_id=project_id))
    kinds = {(c.kind, c.summary) for c in logged.communications}
    assert {
        ("client_feedback", "Please add the export figures"),
        ("answer", "Added to the appendix and sent again"),
    } <= kinds, "4.3.2: the feedback and the answer given are both logged"

    acceptance = {
        **p,
        "acceptance_date": day(3),
        "acceptance_content": "The three deliverables",
        "acceptance_criteria": "Report complete\nRoadmap feasible",
    }
    round_one = jobs.ok("request_acceptance", **acceptance)
    assert round_one["acceptance_round"] == 1
    first_id = round_one["acceptance_id"]
    assert jobs.ok("send_acceptance_reminder", acceptance_id=first_id)["reminded_at"]
    delivery.stub.RecordAcceptanceReport(
        pb.RecordAcceptanceReportRequest(
            acceptance_id=first_id,
            results=[
                pb.CriterionResult(criterion="Report complete", passed=True),
                pb.CriterionResult(criterion="Roadmap feasible", passed=False),
            ],
            conclusion="failed",
        )
    )
    assert jobs.ok("send_acceptance_reminder", acceptance_id=first_id) == {"reminded_at": None}
    jobs.refused("request_acceptance", "record its rectification items first", **acceptance)
    assert jobs.ok(
        "record_rectification_items",
        acceptance_id=first_id,
        rectification_items=f"Cost the roadmap\nAdd a pilot plan | Chen Jing | {day(9)}",
        rectification_owner="Li Lei",
        rectification_due=day(7),
    ) == {"open_rectification_items": 2}
    jobs.refused("request_acceptance", "2 rectification item(s) are still open", **acceptance)
    jobs.refused("close_acceptance", "only a passed report", **p, acceptance_id=first_id)
    assert jobs.ok("close_rectification_items", acceptance_id=first_id, rectification_notes="Done") == {
        "open_rectification_items": 0
    }
    round_two = jobs.ok("request_acceptance", **acceptance)
    assert round_two["acceptance_round"] == 2
    delivery.stub.RecordAcceptanceReport(
        pb.RecordAcceptanceReportRequest(
            acceptance_id=round_two["acceptance_id"],
            results=[
                pb.CriterionResult(criterion=c, passed=True) for c in ("Report complete", "Roadmap feasible")
            ],
            conclusion="passed",
        )
    )
    assert jobs.ok("close_acceptance", **p, acceptance_id=round_two["acceptance_id"]) == {
        "project_status": "follow_up"
    }
    # 4.4.2: the team's support runs beside the check; recorded even after the report closed it
    assert "acceptance_support_id" in jobs.ok(
        "record_acceptance_support", **p, support_notes="Walked the client through the hub costs"
    )

    # nothing was created twice, every completed job is recorded once
    project = delivery.stub.GetProject(pb.GetProjectRequest(project_id=project_id))
    assert len(project.team) == 5
    consultant = next(m for m in project.team if m.name == "Li Lei")
    assert consultant.duties == "design the entry strategy"
    db = Database(database_url)
    with db.read() as session:
        counts = {
            model.__tablename__: session.scalar(select(func.count()).select_from(model))
            for model in (
                orm.Project,
                orm.Analysis,
                orm.Solution,
                orm.Document,
                orm.IndicatorSnapshot,
                orm.Delivery,
                orm.Acceptance,
                orm.RectificationItem,
            )
        }
        recorded = session.scalar(select(func.count()).select_from(processed_jobs))
    db.dispose()
    assert counts == {
        "projects": 1,
        "analyses": 2,
        "solutions": 2,
        "documents": 3,
        "indicator_snapshots": 1,
        "deliveries": 2,
        "acceptances": 2,
        "rectification_items": 2,
    }
    assert recorded == jobs.recorded == 37  # 40 jobs, 3 of them refused (not recorded)

    events = status_events(nats_url, lambda es: "project.follow_up" in types_of(es))
    seen = types_of(events)
    assert seen.count("project.opened") == 1 and seen.count("acceptance.requested") == 2
    assert all(e.correlation["engagement_id"] == engagement for e in events)
    breach = next(json.loads(e.payload_json) for e in events if e.type == "indicator.breached")
    assert (breach["indicator"], breach["value"], breach["status"]) == ("schedule_deviation_rate", 1.0, "red")


def test_bad_parameters_fail_the_job_without_retries_naming_the_field(
    jobs: Jobs,
    delivery: RunningDelivery,
    peers: Peers,
    contract: contracts_pb2.Contract,
    engagement_id: str,
) -> None:
    jobs.refused("open_project", "contract_id", engagement_id=engagement_id, contract_id="")
    jobs.refused("open_project", "the diagram passes no 'contract_id'", engagement_id=engagement_id)
    project_id = jobs.ok("open_project", engagement_id=engagement_id, contract_id=contract.contract_id)[
        "project_id"
    ]
    jobs.refused("form_team", "project_manager", project_id=project_id, consultants="Li Lei")
    jobs.refused("record_kickoff", "kickoff_date", project_id=project_id, kickoff_date="soon", attendees="x")
    jobs.refused("archive_research_data", "industry_data", project_id=project_id)
    jobs.refused("record_analysis", "risk_description", project_id=project_id, risk_found="yes")
    jobs.refused("record_analysis", "risk_found", project_id=project_id, risk_found="perhaps")
    jobs.refused("record_work_report", "execution has not started", project_id=project_id, work_report="x")
    jobs.refused(
        "check_work_quality",
        "work report",
        project_id=project_id,
        work_report_id="nope",
        quality_passed=False,
    )
    jobs.refused("record_coordination", "departments", project_id=project_id, support_needed="x")
    jobs.refused("record_solution_review", "solution_verdict", solution_id="x", solution_verdict="ok")
    jobs.refused(
        "record_solution_review",
        "innovation_verdict",
        solution_id="x",
        solution_verdict="approved",
        soundness_verdict="met",
        feasibility_verdict="met",
    )
    jobs.refused("evaluate_indicators", "project_id", project_id="")
    jobs.refused("record_acceptance_support", "support_notes", project_id=project_id, support_notes=" ")
    support = jobs.ok("record_acceptance_support", project_id=project_id, support_notes="Explained chart 3")
    logged = delivery.stub.ListCommunications(pb.ListCommunicationsRequest(project_id=project_id))
    answer = next(c for c in logged.communications if c.communication_id == support["acceptance_support_id"])
    assert (answer.direction, answer.kind, answer.summary) == ("external", "answer", "Explained chart 3")
    # monitoring runs from the kick-off (3.4.2): before execution there is no work plan to measure against
    assert jobs.ok("evaluate_indicators", project_id=project_id) == {
        "indicators_measured": False,
        "indicators_breached": False,
        "breached_indicators": [],
    }
    jobs.refused("plan_online_delivery", "platform", project_id=project_id, platform="fax")
    jobs.refused("record_deliverable_review", "logic_ok", project_id=project_id, logic_ok="fine")
    jobs.refused("request_acceptance", "acceptance_criteria", project_id=project_id, acceptance_date=day(1))
    jobs.refused("send_acceptance_reminder", "acceptance 'nope' not found", acceptance_id="nope")
    # a second contract of the engagement, signed and already distributed (2.4.3), opens a second project
    distributed = peers.contract_in_state(engagement_id, "distributed")
    other = jobs.ok("open_project", engagement_id=engagement_id, contract_id=distributed.contract_id)[
        "project_id"
    ]
    change = delivery.stub.RequestChange(pb.RequestChangeRequest(project_id=project_id, description="More"))
    jobs.refused(
        "record_change_response",
        "change_request_id",
        "another project",
        project_id=other,
        change_request_id=change.change_request_id,
        change_decision="accepted",
        change_response="Yes",
    )


def test_an_unreachable_contracts_service_fails_the_job_for_a_retry(
    sqlite_url: str, peers: Peers, contract: contracts_pb2.Contract, engagement_id: str
) -> None:
    db = Database(sqlite_url)
    migrate(db, "delivery")
    job = job_factory.job(
        "delivery.open_project", key="open-1", engagement_id=engagement_id, contract_id=contract.contract_id
    )
    outcome = run_job(
        lambda: UnitOfWork(db, "delivery"), operations.bind(_deps(closed_address(), closed_address())), job
    )
    assert outcome.kind == "failed" and outcome.retries == 2
    assert "Unavailable: contracts.GetContract" in outcome.message
    retried = run_job(
        lambda: UnitOfWork(db, "delivery"),
        operations.bind(_deps(peers.contracts_address, peers.risk_address)),
        job,
    )
    assert retried.kind == "completed" and retried.variables["project_id"]
    with db.read() as session:
        assert session.scalar(select(func.count()).select_from(orm.Project)) == 1
    db.dispose()


def _deps(contracts_address: str, risk_address: str) -> Dependencies:
    """Dependencies whose peers are at these addresses, with a short call deadline."""
    contracts, risk = signed_channel(contracts_address), signed_channel(risk_address)
    return Dependencies(
        contracts=GrpcContracts(lambda: contracts, timeout=0.5),
        risks=GrpcRisks(lambda: risk, timeout=0.5),
        thresholds=DecisionThresholds(DecisionTables(ROOT / "bpmn")),
    )


class WriteLockProbe:
    """A peer port that, each time delivery calls it, checks that another writer could take SQLite's write
    lock at once: the calling job holds no lock while it waits on the network."""

    def __init__(self, database_file: str, peer: Any) -> None:
        self._file = database_file
        self._peer = peer
        self.calls = 0

    def _lock_is_free(self) -> None:
        self.calls += 1
        other = sqlite3.connect(self._file, timeout=0)
        try:
            other.execute("BEGIN IMMEDIATE")  # "database is locked" at once if a writer holds it
            other.rollback()
        finally:
            other.close()

    def get_contract(self, contract_id: str) -> Any:
        self._lock_is_free()
        return self._peer.get_contract(contract_id)

    def register_risk(self, report: Any) -> str:
        self._lock_is_free()
        return str(self._peer.register_risk(report))


def test_no_write_lock_is_held_while_contracts_or_risk_answer(
    tmp_path: Path, peers: Peers, contract: contracts_pb2.Contract, engagement_id: str
) -> None:
    """open_project asks contracts, record_analysis registers a risk with risk: both before their
    transaction's first statement. A repeat asks nobody."""
    database_file = str(tmp_path / "delivery.db")
    db = Database(f"sqlite:///{database_file}")
    migrate(db, "delivery")
    real = _deps(peers.contracts_address, peers.risk_address)
    contracts = WriteLockProbe(database_file, real.contracts)
    risks = WriteLockProbe(database_file, real.risks)
    handlers = operations.bind(Dependencies(contracts=contracts, risks=risks, thresholds=real.thresholds))
    runs = Jobs(lambda: UnitOfWork(db, "delivery"), handlers, engagement_id)
    project_id = runs.ok("open_project", contract_id=contract.contract_id)["project_id"]
    found = runs.ok(
        "record_analysis",
        project_id=project_id,
        problems="Stock counts disagree",
        risk_found=True,
        risk_description="Key user leaves mid-project",
        risk_category="technical",
    )
    assert found["risks_reported"] == 1
    assert (contracts.calls, risks.calls) == (1, 1)  # each job ran twice; the repeat asked nobody
    db.dispose()
