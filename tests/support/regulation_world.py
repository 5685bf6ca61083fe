"""Runs the diagrams in `bpmn/` in-process on the real orchestrator, playing the services, people, the
client and the clock, and measures which sequence flows the instances took.

- Services: every open job is answered by `Worker`, which computes the outputs an operation of
  docs/operations.md returns from the job's parameters (read from the job message in the outbox, as a real
  worker would), using the decision tables in bpmn/ where the service does; a scenario can plan a BPMN error
  or override outputs for the next job of an operation. Where a service would publish a status event that
  bpmn/status-messages.toml maps to a message, the worker publishes that message.
- People: `submit` completes a user task through the form validation; decisions (enum and boolean fields
  without a default) must be given by the scenario, other required fields are filled with sample values.
- Clock: `elapse` brings one named waiting timer forward (`timer_events.bring_forward`) and fires due
  timers. It does not move the orchestrator's clock: a scenario makes one timer due while others that
  would come due on the way (a 14-day cycle beside a 7-day one) must not fire, which no single clock
  can express.

Nothing needs NATS: jobs and messages are rows; outbox rows simply stay.
"""

from __future__ import annotations

import json
import tomllib
from collections import defaultdict, deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from lxml import etree
from SpiffWorkflow.bpmn.specs.mixins.events.end_event import EndEvent
from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
from SpiffWorkflow.task import Task
from SpiffWorkflow.util.task import TaskState
from sqlalchemy import select, update

from consultflow.api.events.v1 import events_pb2
from consultflow.orchestrator import engine, state_parts, timer_events
from consultflow.orchestrator.orm import Instance, JobRecord, Message, StartTimer, Timer
from consultflow.orchestrator.runtime import Orchestrator
from consultflow.orchestrator.step import CONTINUATION, Step
from consultflow.platform.db import Database, UnitOfWork, migrate
from consultflow.platform.decisions import DecisionTables
from consultflow.platform.tables import outbox
from tests.support.identity import TESTER, person

ROOT = Path(__file__).resolve().parents[2]
BPMN_DIR = ROOT / "bpmn"
NS = {"bpmn": "http://www.omg.org/spec/BPMN/20100524/MODEL"}
MESSAGE_TTL = timedelta(days=1)
MAX_SETTLE_ROUNDS = 200
STAGES = ("intake", "implementation", "delivery", "follow_up")  # 6.1.1, in the order they happen


def resources() -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(BPMN_DIR.iterdir()) if p.suffix in (".bpmn", ".dmn")}


# ------------------------------------------------------------------------------------ the diagrams' flows


@dataclass(frozen=True)
class FlowIndex:
    """Every sequence flow of every diagram, and which file each process or subprocess belongs to."""

    flows: dict[str, dict[str, tuple[str, str]]]  # file -> flow id -> (source, target)
    scopes: dict[str, str]  # process or subprocess id -> file

    @classmethod
    def load(cls, folder: Path = BPMN_DIR) -> FlowIndex:
        flows: dict[str, dict[str, tuple[str, str]]] = {}
        scopes: dict[str, str] = {}
        for path in sorted(folder.glob("*.bpmn")):
            root = etree.parse(str(path)).getroot()
            flows[path.name] = {
                f.get("id"): (f.get("sourceRef"), f.get("targetRef"))
                for f in root.iterfind(".//bpmn:sequenceFlow", NS)
            }
            for scope in [*root.iterfind(".//bpmn:process", NS), *root.iterfind(".//bpmn:subProcess", NS)]:
                scope_id = scope.get("id")
                assert scope_id not in scopes, f"{scope_id} is defined twice"
                scopes[scope_id] = path.name
        return cls(flows, scopes)

    def flow_id(self, file: str, source: str, target: str) -> str | None:
        for flow_id, pair in self.flows[file].items():
            if pair == (source, target):
                return flow_id
        return None


REACHED = TaskState.READY | TaskState.STARTED | TaskState.WAITING | TaskState.COMPLETED | TaskState.ERROR


ParentOf = Callable[[Task], "Task | None"]


def _parent(task: Task) -> Task | None:
    return task.parent


def _real_ancestor(task: Task, parent_of: ParentOf = _parent) -> Task | None:
    """The nearest ancestor that is a BPMN element (Spiff inserts its own split, join and start specs)."""
    parent = parent_of(task)
    while parent is not None and parent.task_spec.bpmn_id is None:
        parent = parent_of(parent)
    return parent


def every_task(workflow: BpmnWorkflow) -> list[Task]:
    """Every task an instance's state holds, in every process and subprocess."""
    return engine.tasks_in(workflow, TaskState.ANY_MASK)


def flows_taken(
    tasks: Iterable[Task], index: FlowIndex, parent_of: ParentOf = _parent
) -> dict[str, set[str]]:
    """Sequence flows taken: a reached task whose nearest BPMN ancestor is a flow's source."""
    taken: dict[str, set[str]] = defaultdict(set)
    for task in tasks:
        if not task.state & REACHED or task.task_spec.bpmn_id is None:
            continue
        source = _real_ancestor(task, parent_of)
        if source is None:
            continue
        file = index.scopes[task.workflow.spec.name]
        flow_id = index.flow_id(file, source.task_spec.bpmn_id, task.task_spec.bpmn_id)
        if flow_id is not None:
            taken[file].add(flow_id)
    return taken


def elements_reached(
    tasks: Iterable[Task], index: FlowIndex, parent_of: ParentOf = _parent
) -> dict[str, set[str]]:
    """BPMN elements reached (and the processes and subprocesses run), by file."""
    reached: dict[str, set[str]] = defaultdict(set)
    for task in tasks:
        if not task.state & REACHED:
            continue
        file = index.scopes[task.workflow.spec.name]
        reached[file].add(task.workflow.spec.name)
        if task.task_spec.bpmn_id is not None:
            reached[file].add(task.task_spec.bpmn_id)
            source = _real_ancestor(task, parent_of)  # e.g. a cycle timer, cancelled at the end, once fired
            if source is not None:
                reached[file].add(source.task_spec.bpmn_id)
    return reached


def ends_reached(tasks: Iterable[Task]) -> list[str]:
    """End events completed, sorted."""
    return sorted(
        task.task_spec.bpmn_id
        for task in tasks
        if task.state == TaskState.COMPLETED and isinstance(task.task_spec, EndEvent)
    )


class DroppedRounds:
    """What the cycle timer rounds a step dropped from an instance's state (cycle_rounds.py) had done, so
    that the scenarios' ends and coverage count everything the instances did. It watches each write of
    the real steps while the world is open (a write that fails counts nothing: its retry drops the rounds
    again)."""

    def __init__(self, index: FlowIndex) -> None:
        self.index = index
        self.flows: dict[str, set[str]] = defaultdict(set)
        self.elements: dict[str, set[str]] = defaultdict(set)
        self.ends: dict[str, list[str]] = defaultdict(list)  # by instance id
        self._real_save = Step._save

        def observed_save(step: Step, waiting_for: engine.Snapshot) -> None:
            before = every_task(step.workflow)
            # a dropped task's parent is looked up in its workflow's tasks, which no longer hold it
            parents = {id(task): task.parent for task in before}
            self._real_save(step, waiting_for)
            kept = {id(task) for task in every_task(step.workflow)}
            dropped = [task for task in before if id(task) not in kept]
            self._add(step.instance_id, dropped, lambda task: parents.get(id(task)))

        setattr(Step, "_save", observed_save)  # noqa: B010 - a method replaced while the world is open

    def _add(self, instance_id: str, dropped: list[Task], parent_of: ParentOf) -> None:
        for file, flows in flows_taken(dropped, self.index, parent_of).items():
            self.flows[file] |= flows
        for file, element_ids in elements_reached(dropped, self.index, parent_of).items():
            self.elements[file] |= element_ids
        self.ends[instance_id].extend(ends_reached(dropped))

    def close(self) -> None:
        setattr(Step, "_save", self._real_save)  # noqa: B010


# ---------------------------------------------------------------------------------------------- services


@dataclass(frozen=True)
class PlannedError:
    code: str
    message: str


Outputs = dict[str, Any]
Handler = Callable[["World", Mapping[str, Any]], Outputs]


class Worker:
    """What each service operation returns (docs/operations.md), computed from the job's parameters."""

    def __init__(self, world: World) -> None:
        self.world = world
        self._ids: dict[str, int] = defaultdict(int)
        self.prescribed: dict[str, str] = {}  # risk id → the strategy its matrix cell prescribes
        self.responses: dict[str, str] = {}  # response id → risk id
        self.stage_of: dict[str, str] = {}  # engagement id → the stage its register records (6.3.1)
        self.manager_of: dict[str, str] = {}  # engagement id → its project manager the register records
        self.engagement_of_risk: dict[str, str] = {}  # risk id → engagement id
        self.engagement_of: dict[str, str] = {}  # project id → engagement id
        self.project_of: dict[str, str] = {}  # delivery id → project id
        self.teams: dict[str, list[str]] = {}  # project id → the team's names (3.1.1), PM first
        self.executing: set[str] = set()  # projects whose execution started (a work plan is set)
        self.open_warnings: dict[tuple[str, str], tuple[str, str]] = {}  # (engagement, indicator) → id, level
        self.problems: dict[str, list[str]] = {}  # survey id -> its unsolved problems (survey.record_problem)
        self.responsible: dict[str, list[str]] = {}  # problem id -> the people its open measures name
        self.leads: dict[str, list[str]] = {}  # research round (insight id) → its leads (crm.record_lead)
        self.referrals: dict[str, tuple[str, str]] = {}  # new engagement id → (lead id, referring engagement)

    def new_id(self, kind: str) -> str:
        self._ids[kind] += 1
        return f"{kind}-{self._ids[kind]}"

    def outputs(self, operation: str, params: Mapping[str, Any]) -> Outputs:
        method = getattr(self, operation.replace(".", "__"), None)
        if method is None:
            raise AssertionError(f"the harness does not know operation {operation}")
        result: Outputs = method(params)
        return result

    # -- crm
    def crm__record_inquiry(self, p: Mapping[str, Any]) -> Outputs:
        assert p["contact_email"] or p["contact_phone"], "an email or a phone number is required"
        return {"inquiry_id": self.new_id("inquiry"), "client_id": self.new_id("client")}

    def crm__record_requirements(self, p: Mapping[str, Any]) -> Outputs:
        return {"requirements_id": self.new_id("requirements"), "requirements_version": 1}

    def crm__record_feasibility(self, p: Mapping[str, Any]) -> Outputs:
        verdicts = [p[f"{dimension}_feasible"] for dimension in ("technical", "economic", "time")]
        assert all(isinstance(v, bool) for v in verdicts), "feasibility verdicts are booleans"
        # 2.2.2: the experts' conclusion decides; without one, all three dimensions must be feasible
        worth = p.get("worth_taking_on")
        assert worth is None or p["worth_reason"], "the conclusion needs its reasons"
        feasible = all(verdicts) if worth is None else worth
        return {
            "feasibility_id": self.new_id("feasibility"),
            "feasible": feasible,
            "feasibility_summary": "feasible" if feasible else "infeasible",
        }

    def crm__decline_inquiry(self, p: Mapping[str, Any]) -> Outputs:
        assert p["decline_reason"] in ("infeasible", "offer_rejected", "offer_expired", "risk_avoided")
        return {"intake_outcome": "declined", "decline_reason": p["decline_reason"]}

    def crm__record_market_insight(self, p: Mapping[str, Any]) -> Outputs:
        return {"insight_id": self.new_id("insight")}

    def crm__record_lead(self, p: Mapping[str, Any]) -> Outputs:
        assert p["lead_source"] in ("trade_fair", "seminar", "online_platform", "other")
        lead_id = self.new_id("lead")
        round_leads = self.leads.setdefault(str(p.get("insight_id") or lead_id), [])
        round_leads.append(lead_id)
        return {"lead_id": lead_id, "lead_ids": list(round_leads)}

    def crm__refer_inquiry(self, p: Mapping[str, Any]) -> Outputs:
        assert bool(p["lead_id"]) != bool(p["referred_by"]), "a lead or the referring engagement, not both"
        assert p["contact_email"] or p["contact_phone"], "an email or a phone number is required"
        engagement_id = self.new_id("E-REFERRED")
        self.referrals[engagement_id] = (p["lead_id"], p["referred_by"])
        return {"referred_engagement_id": engagement_id}

    def crm__record_revisit(self, p: Mapping[str, Any]) -> Outputs:
        return {"revisit_id": self.new_id("revisit")}

    def crm__record_value_added_service(self, p: Mapping[str, Any]) -> Outputs:
        assert p["value_added_service"] in ("industry_news", "free_training")
        return {"value_added_service_id": self.new_id("vas")}

    def crm__record_opportunity(self, p: Mapping[str, Any]) -> Outputs:
        if p.get("opportunity_kind") == "referral":
            assert p.get("referred_company"), "a referral names the company referred"
        return {"opportunity_id": self.new_id("opportunity")}

    # -- contracts
    def contracts__prepare_quotation(self, p: Mapping[str, Any]) -> Outputs:
        subtotal = sum(
            Decimal(p[k]) for k in ("consulting_fee", "travel_cost", "accommodation_cost", "other_cost")
        )
        total = subtotal * (1 + Decimal(p["tax_rate"]))
        valid_until = (datetime.now(UTC) + timedelta(days=int(p["validity_days"]))).date().isoformat()
        return {
            "quotation_id": self.new_id("quotation"),
            "quotation_status": "draft",
            "quotation_cost_total": str(
                sum(Decimal(p[f"{k}_cost_basis"]) for k in ("consulting", "travel", "accommodation", "other"))
            ),
            "quotation_total": str(total),
            "quotation_valid_until": valid_until,
        }

    def contracts__draft_proposal(self, p: Mapping[str, Any]) -> Outputs:
        return {"proposal_id": "proposal-1", "proposal_version": self.world.count("contracts.draft_proposal")}

    def contracts__record_proposal_review(self, p: Mapping[str, Any]) -> Outputs:
        return {"proposal_approved": p["proposal_verdict"] == "approved"}

    def contracts__send_offer(self, p: Mapping[str, Any]) -> Outputs:
        return {"offer_sent_at": _now()}

    def contracts__expire_quotation(self, p: Mapping[str, Any]) -> Outputs:
        return {"intake_outcome": "declined", "decline_reason": "offer_expired"}

    def contracts__draft_contract(self, p: Mapping[str, Any]) -> Outputs:
        return {"contract_id": "contract-1", "contract_version": self.world.count("contracts.draft_contract")}

    def contracts__submit_for_legal_review(self, p: Mapping[str, Any]) -> Outputs:
        return {"legal_review_round": self.world.count("contracts.submit_for_legal_review")}

    def contracts__record_legal_review(self, p: Mapping[str, Any]) -> Outputs:
        for focus in ("completeness", "accuracy", "legality", "risk_safeguards"):  # 2.4.2, each recorded
            assert p[f"{focus}_verdict"] in ("approved", "revise") and p[f"{focus}_opinion"], focus
        return {"legal_approved": p["legal_verdict"] == "approved"}

    def contracts__revise_contract(self, p: Mapping[str, Any]) -> Outputs:
        return {"contract_version": 1 + self.world.count("contracts.revise_contract")}

    def contracts__sign_contract(self, p: Mapping[str, Any]) -> Outputs:
        return {"signed_by_firm_at": _now()}

    def contracts__reopen_negotiation(self, p: Mapping[str, Any]) -> Outputs:
        assert p["contract_id"] and p["reopen_reason"]
        return {"contract_version": self.world.count("contracts.draft_contract") + 1}

    def contracts__distribute_contract(self, p: Mapping[str, Any]) -> Outputs:
        assert p["departments"], "2.4.3: the copies go to the departments and people named when signing"
        return {"intake_outcome": "contracted", "distributed_to": p["departments"]}

    # -- delivery
    def delivery__open_project(self, p: Mapping[str, Any]) -> Outputs:
        project_id = self.new_id("project")
        self.engagement_of[project_id] = p["engagement_id"]
        return {"project_id": project_id}

    def delivery__form_team(self, p: Mapping[str, Any]) -> Outputs:
        names = [
            p["project_manager"],
            *(f"{p[k]}".split(",") for k in ("consultants", "analysts", "assistants")),
        ]
        self.teams[p["project_id"]] = [str(p["project_manager"])] + [
            n.strip()
            for k in ("consultants", "analysts", "assistants")
            for n in f"{p[k]}".split(",")
            if n.strip()
        ]
        return {"team_size": len(names)}

    def delivery__record_kickoff(self, p: Mapping[str, Any]) -> Outputs:
        # delivery status kickoff.recorded → messages project.monitoring_started, project.reporting_started
        if engagement_id := self.engagement_of.get(p["project_id"]):
            for message in ("project.monitoring_started", "project.reporting_started"):
                self.world.publish(message, engagement_id, project_id=p["project_id"])
        return {"kickoff_id": self.new_id("kickoff")}

    def delivery__archive_research_data(self, p: Mapping[str, Any]) -> Outputs:
        return {"documents_archived": 3}

    def delivery__record_site_visit(self, p: Mapping[str, Any]) -> Outputs:
        return {"site_visit_id": self.new_id("visit")}

    def delivery__record_analysis(self, p: Mapping[str, Any]) -> Outputs:
        # the diagram registers a risk found itself (risk.register_risk); older versions passed it here
        assert "risk_found" not in p, "the diagram registers the analysis' risk with risk.register_risk"
        return {"analysis_id": self.new_id("analysis"), "risks_reported": 0}

    def delivery__submit_solution(self, p: Mapping[str, Any]) -> Outputs:
        return {"solution_id": "solution-1", "solution_version": self.world.count("delivery.submit_solution")}

    def delivery__record_solution_review(self, p: Mapping[str, Any]) -> Outputs:
        for criterion in ("soundness", "feasibility", "innovation", "risk_response"):  # 3.3.2, each recorded
            assert p[f"{criterion}_verdict"] in ("met", "not_met"), criterion
            assert p[f"{criterion}_verdict"] == "met" or p[f"{criterion}_comments"], criterion
        return {"solution_approved": p["solution_verdict"] == "approved"}

    def delivery__start_execution(self, p: Mapping[str, Any]) -> Outputs:
        self.executing.add(p["project_id"])
        return {"work_plan_id": self.new_id("plan")}

    def delivery__record_meeting(self, p: Mapping[str, Any]) -> Outputs:
        return {"meeting_id": self.new_id("meeting")}

    def delivery__record_work_report(self, p: Mapping[str, Any]) -> Outputs:
        assert p["project_id"] in self.executing, "the team works to the work plan (3.4.1)"
        return {"work_report_id": self.new_id("work-report")}

    def delivery__check_work_quality(self, p: Mapping[str, Any]) -> Outputs:
        assert p["work_report_id"] and isinstance(p["quality_passed"], bool)
        return {"quality_check_id": self.new_id("quality-check")}

    def delivery__record_coordination(self, p: Mapping[str, Any]) -> Outputs:
        assert p["departments"] and p["support_needed"] and p["coordination_outcome"]
        return {"coordination_id": self.new_id("coordination")}

    def delivery__evaluate_indicators(self, p: Mapping[str, Any]) -> Outputs:
        if p["project_id"] not in self.executing:  # monitoring from the kick-off: no work plan to measure yet
            return {"indicators_measured": False, "indicators_breached": False, "breached_indicators": ""}
        rates = dict(self.world.indicators)
        statuses = {
            name: self.world.decide("warning_thresholds", {"indicator": name, "value": value})["status"]
            for name, value in rates.items()
        }
        breached = sorted(name for name, status in statuses.items() if status != "green")
        for name in breached:  # delivery status indicator.breached → message risk.indicator_breached
            self.world.publish(
                "risk.indicator_breached",
                p["engagement_id"],
                indicator=name,
                value=rates[name],
                status=statuses[name],
            )
        return {
            **rates,
            "indicators_measured": True,
            "indicators_breached": bool(breached),
            "breached_indicators": ",".join(breached),
        }

    def delivery__record_corrective_action(self, p: Mapping[str, Any]) -> Outputs:
        return {"corrective_action_id": self.new_id("action")}

    def delivery__send_progress_report(self, p: Mapping[str, Any]) -> Outputs:
        return {"progress_report_id": self.new_id("report")}

    def delivery__record_change_response(self, p: Mapping[str, Any]) -> Outputs:
        assert p["change_decision"] in ("accepted", "rejected", "deferred")
        return {"change_request_status": p["change_decision"]}

    def delivery__complete_execution(self, p: Mapping[str, Any]) -> Outputs:
        return {"execution_completed_at": _now()}

    def delivery__compile_deliverables(self, p: Mapping[str, Any]) -> Outputs:
        return {"deliverable_set_version": self.world.count("delivery.compile_deliverables")}

    def delivery__record_deliverable_review(self, p: Mapping[str, Any]) -> Outputs:
        checks = ("logic_ok", "consistency_ok", "accuracy_ok", "contract_conformance_ok")
        return {"deliverables_approved": all(p[c] for c in checks)}

    def delivery__plan_onsite_delivery(self, p: Mapping[str, Any]) -> Outputs:
        return {"delivery_id": self._delivery(p["project_id"])}

    def delivery__plan_online_delivery(self, p: Mapping[str, Any]) -> Outputs:
        if not p["channel_tested"]:
            raise BusinessError("channel_not_tested", "the delivery channel was not tested")
        return {"delivery_id": self._delivery(p["project_id"])}

    def _delivery(self, project_id: str) -> str:
        delivery_id = self.new_id("delivery")
        self.project_of[delivery_id] = project_id
        return delivery_id

    def delivery__send_deliverables_online(self, p: Mapping[str, Any]) -> Outputs:
        return {"sent_at": _now()}

    def delivery__record_acceptance_support(self, p: Mapping[str, Any]) -> Outputs:
        assert p["support_notes"]
        return {"acceptance_support_id": self.new_id("support")}

    def delivery__record_delivery(self, p: Mapping[str, Any]) -> Outputs:
        # delivery status delivery.delivered → messages project.monitoring_ended, project.reporting_ended
        project_id = self.project_of.get(p["delivery_id"], "")
        if engagement_id := self.engagement_of.get(project_id):
            for message in ("project.monitoring_ended", "project.reporting_ended"):
                self.world.publish(message, engagement_id, project_id=project_id)
        return {"delivered_at": _now()}

    def delivery__request_acceptance(self, p: Mapping[str, Any]) -> Outputs:
        # delivery status acceptance.requested → message acceptance.support_requested (4.4.2)
        if engagement_id := self.engagement_of.get(p["project_id"]):
            self.world.publish(
                "acceptance.support_requested",
                engagement_id,
                project_id=p["project_id"],
                project_team=self.teams.get(p["project_id"], []),
            )
        return {
            "acceptance_id": "acceptance-1",
            "acceptance_round": self.world.count("delivery.request_acceptance"),
        }

    def delivery__send_acceptance_reminder(self, p: Mapping[str, Any]) -> Outputs:
        return {"reminded_at": _now()}

    def delivery__record_rectification_items(self, p: Mapping[str, Any]) -> Outputs:
        return {"open_rectification_items": len(str(p["rectification_items"]).splitlines())}

    def delivery__close_rectification_items(self, p: Mapping[str, Any]) -> Outputs:
        return {"open_rectification_items": 0}

    def delivery__close_acceptance(self, p: Mapping[str, Any]) -> Outputs:
        return {"project_status": "follow_up"}

    # -- survey
    def survey__create_plan(self, p: Mapping[str, Any]) -> Outputs:
        return {"survey_id": self.new_id("survey")}

    def survey__send_questionnaire(self, p: Mapping[str, Any]) -> Outputs:
        return {"questionnaire_sent_at": _now()}

    def survey__send_reminder(self, p: Mapping[str, Any]) -> Outputs:
        return {"reminded_at": _now()}

    def survey__record_interview(self, p: Mapping[str, Any]) -> Outputs:
        dimensions = ("service_quality", "result_quality", "team_performance", "overall_satisfaction")
        self.world.survey_ratings = {d: int(p[d]) for d in dimensions}
        return {"response_id": self.new_id("response")}

    def survey__analyse_responses(self, p: Mapping[str, Any]) -> Outputs:
        ratings: dict[str, int] = self.world.survey_ratings
        score = round(sum(ratings.values()) / (5 * len(ratings)) * 100)
        lowest = min(ratings.values())
        return {
            "satisfaction_score": score,
            "lowest_rating": lowest,
            "csat": score,
            "nps": 0,
            "dissatisfaction_reasons": ",".join(k for k, v in ratings.items() if v <= 3),
        }

    def survey__record_causes(self, p: Mapping[str, Any]) -> Outputs:
        return {"causes_recorded_at": _now()}

    def survey__record_problem(self, p: Mapping[str, Any]) -> Outputs:
        problem_id = self.new_id("problem")
        problems = self.problems.setdefault(str(p["survey_id"]), [])
        problems.append(problem_id)
        return {"problem_id": problem_id, "problem_ids": list(problems)}

    def survey__define_measure(self, p: Mapping[str, Any]) -> Outputs:
        people = self.responsible.setdefault(str(p["problem_id"]), [])
        if p["responsible_person"] not in people:
            people.append(str(p["responsible_person"]))
        return {"measure_id": self.new_id("measure"), "responsible_people": list(people)}

    def survey__report_progress(self, p: Mapping[str, Any]) -> Outputs:
        solved = bool(p["problem_solved"])
        if solved:  # a solved problem is no longer among its survey's problem_ids, nor its measures open
            for problems in self.problems.values():
                if p["problem_id"] in problems:
                    problems.remove(p["problem_id"])
            self.responsible.pop(str(p["problem_id"]), None)
        return {"problem_solved": solved}

    # -- risk
    def risk__open_register(self, p: Mapping[str, Any]) -> Outputs:
        return {"register_id": self.new_id("register")}

    def advance(self, engagement_id: str, stage: str) -> str:
        """The register's stage only moves forward (risk.record_stage, risk.register_risk)."""
        current = self.stage_of.get(engagement_id, STAGES[0])
        self.stage_of[engagement_id] = max(current, stage, key=STAGES.index)
        return self.stage_of[engagement_id]

    def risk__register_risk(self, p: Mapping[str, Any]) -> Outputs:
        assert p["risk_stage"] in STAGES
        risk_id = self.world.register_risk(
            p["engagement_id"], p["risk_stage"], p["risk_description"], p["risk_source"]
        )
        return {"risk_id": risk_id}

    def risk__record_stage(self, p: Mapping[str, Any]) -> Outputs:
        assert p["engagement_stage"] in STAGES
        eid = p["engagement_id"]
        if str(p["project_manager"]).strip():  # no name (the intake before 2.3.2) keeps the recorded one
            self.manager_of[eid] = str(p["project_manager"]).strip()
        stage = self.advance(eid, p["engagement_stage"])
        return {"register_stage": stage, "project_manager": self.manager(eid)}

    def manager(self, engagement_id: str) -> str:
        """The engagement's project manager as its register records it ("" before one is named)."""
        return self.manager_of.get(engagement_id, "")

    def risk__record_identification(self, p: Mapping[str, Any]) -> Outputs:
        assert p["session_method"] in ("brainstorming", "delphi", "checklist", "other")
        assert p["team_participants"] and p["department_participants"] and p["expert_participants"]
        found = [r.strip() for r in str(p["risks_found"]).split(";") if r.strip() not in ("", "無 none")]
        for description in found:  # each registered risk publishes risk.registered → risk.identified
            self.world.register_risk(p["engagement_id"], p["engagement_stage"], description)
        return {"identification_id": self.new_id("identification"), "risks_registered": len(found)}

    def risk__assess_risk(self, p: Mapping[str, Any]) -> Outputs:
        matrix = self.world.decide("risk_matrix", {"likelihood": p["likelihood"], "impact": p["impact"]})
        self.prescribed[p["risk_id"]] = matrix["suggested_strategy"]
        manager = self.manager(self.engagement_of_risk.get(p["risk_id"], ""))
        return {k: matrix[k] for k in ("risk_level", "risk_priority", "suggested_strategy")} | {
            "project_manager": manager
        }

    def risk__plan_response(self, p: Mapping[str, Any]) -> Outputs:
        assert p["strategy"] in ("avoid", "mitigate", "transfer", "accept")
        deviates = p["strategy"] != self.prescribed[p["risk_id"]]  # 6.3: the matrix prescribes the strategy
        if deviates:
            assert p["deviation_reason"], "another strategy than the prescribed one needs its reason"
        eid = self.engagement_of_risk.get(p["risk_id"], "")
        stage = self.stage_of.get(eid, STAGES[0])
        self.responses[response_id := self.new_id("response")] = p["risk_id"]
        return {
            "response_id": response_id,
            "deviates": deviates,
            "register_stage": stage,
            "project_manager": self.manager(eid),
        }

    def risk__decide_deviation(self, p: Mapping[str, Any]) -> Outputs:
        if not p["deviation_approved"]:
            assert p["deviation_note"], "a rejection needs its note"
        eid = self.engagement_of_risk.get(self.responses.get(p["response_id"], ""), "")
        stage = self.stage_of.get(eid, STAGES[0])
        return {
            "deviation_approved": p["deviation_approved"],
            "register_stage": stage,
            "project_manager": self.manager(eid),
        }

    def risk__complete_response(self, p: Mapping[str, Any]) -> Outputs:
        assert p["response_id"] and p["follow_through_notes"]
        return {"response_completed_at": _now()}

    def risk__review_register(self, p: Mapping[str, Any]) -> Outputs:
        return {"open_risks": 1, "overdue_measures": 0, "project_manager": self.manager(p["engagement_id"])}

    def risk__record_review(self, p: Mapping[str, Any]) -> Outputs:
        if p["new_risk_found"]:
            self.world.register_risk(p["engagement_id"], "implementation", p["new_risk_description"])
        return {"review_id": self.new_id("review")}

    def risk__raise_warning(self, p: Mapping[str, Any]) -> Outputs:
        level = "red" if p["status"] == "red" else "amber"
        breach = (p["engagement_id"], p["indicator"])
        if breach in self.open_warnings:  # one lasting breach: the open warning is updated (warning.updated)
            warning_id, was = self.open_warnings[breach]
            worst = "red" if "red" in (was, level) else "amber"
            self.open_warnings[breach] = (warning_id, worst)
            return {"warning_id": warning_id, "warning_level": worst, "warning_new": False}
        warning_id = self.new_id("warning")
        self.open_warnings[breach] = (warning_id, level)
        # risk status warning.raised → messages engagement.risk_warning and risk.warning_raised
        self.world.publish(
            "engagement.risk_warning",
            p["engagement_id"],
            warning_id=warning_id,
            warning_level=level,
            indicator=p["indicator"],
            indicator_value=p["value"],
        )
        self.world.publish(
            "risk.warning_raised", p["engagement_id"], warning_id=warning_id, warning_level=level
        )
        return {"warning_id": warning_id, "warning_level": level, "warning_new": True}

    def risk__escalate_warning(self, p: Mapping[str, Any]) -> Outputs:
        return {"escalated_at": _now(), "warning_status": "escalated"}

    def risk__acknowledge_warning(self, p: Mapping[str, Any]) -> Outputs:
        self.open_warnings = {k: v for k, v in self.open_warnings.items() if v[0] != p["warning_id"]}
        # risk status warning.acknowledged → message risk.warning_acknowledged (keyed by warning_id)
        self.world.publish("risk.warning_acknowledged", p["warning_id"], acknowledged_by=p["acknowledged_by"])
        return {"acknowledged_at": _now()}

    def risk__close_register(self, p: Mapping[str, Any]) -> Outputs:
        return {"register_closed_at": _now()}


class BusinessError(Exception):
    """A handler's refusal that the diagram catches (a BPMN error)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def _now() -> str:
    return datetime.now(UTC).isoformat()


# ------------------------------------------------------------------------------------------- the world

SAMPLE = {"string": "sample text", "date": "2026-12-01", "decimal": "1000.00", "long": "30"}


@dataclass
class World:
    """One scenario's orchestrator on its own SQLite file, with the actors around it."""

    path: Path
    index: FlowIndex
    orchestrator: Orchestrator = field(init=False)
    indicators: dict[str, float] = field(default_factory=dict)
    survey_ratings: dict[str, int] = field(default_factory=dict)
    log: list[str] = field(default_factory=list)
    risk_ids: list[str] = field(default_factory=list)  # registered, in order

    def __post_init__(self) -> None:
        self.db = Database(f"sqlite:///{self.path / 'orchestrator.db'}")
        migrate(self.db, "orchestrator")
        self.orchestrator = Orchestrator(self.db, lambda: UnitOfWork(self.db, "orchestrator"))
        self.orchestrator.deploy(resources())
        self.tables = DecisionTables(BPMN_DIR)
        self.worker = Worker(self)
        self._plans: dict[str, deque[Outputs | PlannedError]] = defaultdict(deque)
        self._counts: dict[str, int] = defaultdict(int)
        self.status_messages = {m["message"] for m in _status_mappings()}
        self.dropped = DroppedRounds(self.index)

    def close(self) -> None:
        self.dropped.close()
        self.db.dispose()

    # -- services

    def decide(self, decision_id: str, inputs: Mapping[str, Any]) -> dict[str, Any]:
        return self.tables.decide(decision_id, inputs)

    def count(self, operation: str) -> int:
        return self._counts[operation]

    def plan(self, operation: str, **outputs: Any) -> None:
        """The next job of `operation` returns these outputs on top of the worker's."""
        self._plans[operation].append(outputs)

    def plan_error(self, operation: str, code: str, message: str = "refused") -> None:
        """The next job of `operation` fails with a BPMN error."""
        self._plans[operation].append(PlannedError(code, message))

    def register_risk(self, engagement_id: str, stage: str, description: str, source: str = "") -> str:
        """The risk service registers a risk and reports risk.registered (→ message risk.identified)."""
        risk_id = self.worker.new_id("risk")
        self.risk_ids.append(risk_id)
        self.worker.engagement_of_risk[risk_id] = engagement_id
        self.worker.advance(engagement_id, stage)
        self.publish(
            "risk.identified",
            engagement_id,
            risk_id=risk_id,
            risk_stage=stage,
            risk_description=description,
            risk_category="",
            risk_source=source,
        )
        return risk_id

    def publish(self, name: str, key: str, *, thrown: bool = False, **variables: Any) -> str:
        """A message from outside (a mapped status event or the client), buffered for a day like those;
        `thrown`: a message a process throws, sent here in place of that process."""
        assert thrown or name in self.status_messages, f"{name} is not mapped in status-messages.toml"
        outcome = self.orchestrator.publish_message(name, key, variables, MESSAGE_TTL).outcome
        self.log.append(f"message {name} [{key}]: {outcome}")
        return outcome

    def _parameters(self, job: JobRecord) -> dict[str, Any]:
        with self.db.read() as session:
            payload = session.scalars(
                select(outbox.c.payload)
                .where(outbox.c.msg_id.like(f"{job.job_key}:%"))
                .order_by(outbox.c.seq.desc())
                .limit(1)
            ).one()
        activated = events_pb2.JobActivated.FromString(payload)
        parameters: dict[str, Any] = json.loads(activated.parameters_json)
        return parameters

    def open_jobs(self) -> list[JobRecord]:
        with self.db.read() as session:
            return list(
                session.scalars(
                    select(JobRecord).where(JobRecord.status == "ACTIVATABLE").order_by(JobRecord.created_at)
                )
            )

    def _answer(self, job: JobRecord) -> None:
        self._counts[job.operation] += 1
        plan = self._plans[job.operation].popleft() if self._plans[job.operation] else {}
        if isinstance(plan, PlannedError):
            self.log.append(f"job {job.operation}: error {plan.code}")
            self.orchestrator.throw_error(job.job_key, plan.code, plan.message, {})
            return
        try:
            outputs = {**self.worker.outputs(job.operation, self._parameters(job)), **plan}
        except BusinessError as error:
            self.log.append(f"job {job.operation}: error {error.code}")
            self.orchestrator.throw_error(job.job_key, error.code, str(error), {})
            return
        self.log.append(f"job {job.operation}")
        self.orchestrator.complete_job(job.job_key, outputs)

    def settle(self) -> None:
        """Lets everything automatic happen: thrown messages correlate, services answer their jobs."""
        for _ in range(MAX_SETTLE_ROUNDS):
            self.orchestrator.correlate_pending()
            if self._run_continuations():
                continue
            jobs = self.open_jobs()
            if not jobs:
                return
            self._answer(jobs[0])
        raise AssertionError(f"still busy after {MAX_SETTLE_ROUNDS} rounds: {self.log[-10:]}")

    def _run_continuations(self) -> bool:
        """Runs the rest of engine work a step yielded (`max_step_engine_ms`, which a loaded machine reaches
        in one long walk) now, as the scheduler would a moment later; True when there was some."""
        with self.db.session() as session:
            moved = session.execute(
                update(Timer)
                .where(Timer.task_id == CONTINUATION)
                .values(due_at=datetime.now(UTC) - timedelta(seconds=1))
            )
            session.commit()
        if not getattr(moved, "rowcount", 0):
            return False
        self.orchestrator.fire_due_timers()
        return True

    # -- people

    def user_tasks(self, element_id: str = "") -> list[Any]:
        rows, _ = self.orchestrator.list_user_tasks(page_size=500)
        return [r for r in rows if not element_id or r.element_id == element_id]

    def submit(self, element_id: str, **values: Any) -> None:
        """Completes the oldest open user task `element_id` with `values` (sample data for the rest)."""
        tasks = self.user_tasks(element_id)
        assert tasks, f"no open user task {element_id}; open: {[t.element_id for t in self.user_tasks()]}"
        task = tasks[0]
        form = {**_sample_form(json.loads(task.form_fields), values), **values}
        # a task the diagram assigned to the engagement's own person is completed by that person
        actor = person(task.assignee) if task.assignee else TESTER
        if not task.assignee:
            self.orchestrator.claim_user_task(task.user_task_id, TESTER)
        self.orchestrator.complete_user_task(task.user_task_id, form, actor)
        self.log.append(f"task {element_id} {sorted(values.items())}")
        self.settle()

    # -- the client

    def client(self, name: str, key: str, **variables: Any) -> None:
        self.publish(name, key, **variables)
        self.settle()

    # -- the clock

    def elapse(self, element_id: str, process_id: str = "") -> None:
        """The waiting timer `element_id` comes due (in each instance of `process_id`, default any)."""
        moved = 0
        for row in self.instances(process_id, status="ACTIVE"):

            def move(step: Step) -> int:
                past = datetime.now(UTC) - timedelta(seconds=1)
                count = 0
                for timer in engine.snapshot(step.workflow).timers:
                    if timer.element_id != element_id:
                        continue
                    task = engine.find_task(step.workflow, timer.task_id)
                    assert task is not None
                    timer_events.bring_forward(task, past)
                    count += 1
                return count

            moved += self.orchestrator.step(row.instance_id, move)
        assert moved, f"no waiting timer {element_id}"
        self.orchestrator.fire_due_timers()
        self.log.append(f"timer {element_id}")
        self.settle()

    def fire_start_timer(self, process_id: str) -> None:
        """The timer start event of `process_id` comes due: a new instance starts."""
        with self.db.session() as session:
            session.execute(
                update(StartTimer)
                .where(StartTimer.process_id == process_id)
                .values(due_at=datetime.now(UTC) - timedelta(seconds=1))
            )
            session.commit()
        assert self.orchestrator.fire_start_timers() == 1
        self.settle()

    # -- instances

    def start(self, process_id: str, business_key: str = "", **variables: Any) -> str:
        instance_id = self.orchestrator.create_instance(process_id, 0, variables, business_key).instance_id
        self.settle()
        return instance_id

    def instances(self, process_id: str = "", status: str = "") -> list[Instance]:
        rows, _ = self.orchestrator.list_instances(process_id=process_id, status=status, page_size=500)
        return rows

    def instance(self, process_id: str) -> Instance:
        rows = self.instances(process_id)
        assert len(rows) == 1, f"{len(rows)} instances of {process_id}"
        return rows[0]

    def variables(self, process_id: str) -> dict[str, Any]:
        result: dict[str, Any] = json.loads(self.instance(process_id).variables)
        return result

    def workflow(self, row: Instance) -> BpmnWorkflow:
        with self.db.read() as session:
            return state_parts.load_stored(
                session.connection(),
                row.instance_id,
                row.state,
                self.orchestrator.specs_for(row.definition_id),
                self.orchestrator.script_engine,
            )

    def ends(self, process_id: str) -> list[str]:
        """End events the one instance of `process_id` reached."""
        return self.ends_of(self.instance(process_id))

    def ends_of(self, row: Instance) -> list[str]:
        """End events the instance completed, in every process and subprocess (and in the rounds of cycle
        timers its state no longer holds), sorted."""
        return sorted(ends_reached(every_task(self.workflow(row))) + self.dropped.ends[row.instance_id])

    def messages(self, name: str) -> list[tuple[str, dict[str, Any]]]:
        """Every message named `name` an instance threw or the world published: (key, variables)."""
        with self.db.session() as session:
            rows = session.scalars(select(Message).where(Message.name == name)).all()
            return [(row.correlation_key, json.loads(row.variables)) for row in rows]

    def incidents(self) -> list[str]:
        return [f"{i.element_id}: {i.message}" for i in self.orchestrator.list_incidents()]

    def flows(self) -> dict[str, set[str]]:
        taken: dict[str, set[str]] = defaultdict(set, {k: set(v) for k, v in self.dropped.flows.items()})
        for row in self.instances():
            for file, flows in flows_taken(every_task(self.workflow(row)), self.index).items():
                taken[file] |= flows
        return taken

    def elements(self) -> dict[str, set[str]]:
        reached: dict[str, set[str]] = defaultdict(set, {k: set(v) for k, v in self.dropped.elements.items()})
        for row in self.instances():
            for file, element_ids in elements_reached(every_task(self.workflow(row)), self.index).items():
                reached[file] |= element_ids
        return reached


def _sample_form(fields: list[dict[str, Any]], given: Mapping[str, Any]) -> dict[str, Any]:
    """Sample values for required data fields; decisions (enum, boolean) must come from the scenario."""
    values: dict[str, Any] = {}
    for f in fields:
        if f["id"] in given or not f["required"]:
            continue
        if f["type"] in ("enum", "boolean"):
            raise AssertionError(f"the scenario must decide {f['id']} ({f['label']})")
        values[f["id"]] = SAMPLE[f["type"]]
    return values


def _status_mappings() -> list[dict[str, Any]]:
    with (BPMN_DIR / "status-messages.toml").open("rb") as handle:
        mappings: list[dict[str, Any]] = tomllib.load(handle)["map"]
    return mappings
