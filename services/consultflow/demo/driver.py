"""Plays the people and the client around running engagements, through the public APIs only.

The driver is a client like any other: it reads open user tasks and where each engagement waits from the
orchestrator, answers tasks the way a story says (forms are validated by the orchestrator), and acts for
the client through the services' own RPCs (accept the quote, sign, report on acceptance, answer the
survey). It never touches a database or a component's internals, so the end-to-end tests can use it too.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import grpc

from consultflow.api.contracts.v1 import contracts_pb2
from consultflow.api.contracts.v1 import contracts_pb2_grpc as contracts_grpc
from consultflow.api.crm.v1 import crm_pb2_grpc as crm_grpc
from consultflow.api.delivery.v1 import delivery_pb2
from consultflow.api.delivery.v1 import delivery_pb2_grpc as delivery_grpc
from consultflow.api.orchestrator.v1 import orchestrator_pb2 as pb
from consultflow.api.orchestrator.v1 import orchestrator_pb2_grpc as pb_grpc
from consultflow.api.risk.v1 import risk_pb2
from consultflow.api.risk.v1 import risk_pb2_grpc as risk_grpc
from consultflow.api.survey.v1 import survey_pb2
from consultflow.api.survey.v1 import survey_pb2_grpc as survey_grpc
from consultflow.platform.local_identity import LocalIdentity, people
from consultflow.platform.security import secure_channel

TIMEOUT = 15.0
WORKERS = 8
"""How many of the firm's people act at once (threads): a hundred engagements at once need more than one
person answering their tasks one after the other."""


def day(offset: int) -> str:
    """An ISO date `offset` days from today."""
    return (date.today() + timedelta(days=offset)).isoformat()


class Clients:
    """gRPC stubs for every component, from the endpoints `consultflow up` wrote, signed in as people.

    The stubs on the object act as `ops` (otto): reading records and starting engagements.
    `staff(name, groups)` is the orchestrator as one of the firm's people, who claims and completes a task;
    `client(engagement)` is the services as that engagement's client (role client)."""

    def __init__(self, endpoints: Mapping[str, str], identity: LocalIdentity | None = None) -> None:
        self._addresses = {n: a for n, a in endpoints.items() if n not in ("nats", "ca", "timers")}
        self.identity = identity or LocalIdentity.existing(Path(endpoints["ca"]).parents[1])
        self._channels: list[grpc.Channel] = []
        self._staff: dict[tuple[str, tuple[str, ...]], pb_grpc.OrchestratorServiceStub] = {}
        self._clients: dict[str, ClientStubs] = {}
        self._team: dict[str, delivery_grpc.DeliveryServiceStub] = {}
        self._lock = threading.Lock()  # the driver's workers ask for stubs side by side
        ops = self.identity.token_of("otto")
        self.orchestrator = pb_grpc.OrchestratorServiceStub(self._channel("orchestrator", ops))
        self.crm = crm_grpc.CrmServiceStub(self._channel("crm", ops))
        self.contracts = contracts_grpc.ContractsServiceStub(self._channel("contracts", ops))
        self.delivery = delivery_grpc.DeliveryServiceStub(self._channel("delivery", ops))
        self.survey = survey_grpc.SurveyServiceStub(self._channel("survey", ops))
        self.risk = risk_grpc.RiskServiceStub(self._channel("risk", ops))

    def _channel(self, component: str, token: str) -> grpc.Channel:
        channel = secure_channel(self._addresses[component], self.identity.ca, token)
        self._channels.append(channel)
        return channel

    def staff(self, name: str, groups: tuple[str, ...]) -> pb_grpc.OrchestratorServiceStub:
        key = (name, groups)
        with self._lock:
            if key not in self._staff:
                token = self.identity.token(name, ["staff"], groups)
                self._staff[key] = pb_grpc.OrchestratorServiceStub(self._channel("orchestrator", token))
            return self._staff[key]

    def team(self, project: delivery_pb2.Project) -> delivery_grpc.DeliveryServiceStub:
        """Delivery as a member of the project's team as recorded in 3.1.1, who reports on its work."""
        member = project.team[-1].name
        with self._lock:
            if member not in self._team:
                token = self.identity.token(member, ["staff"], ["team"])
                self._team[member] = delivery_grpc.DeliveryServiceStub(self._channel("delivery", token))
            return self._team[member]

    def client(self, engagement: str) -> ClientStubs:
        with self._lock:
            return self._client(engagement)

    def _client(self, engagement: str) -> ClientStubs:
        if engagement not in self._clients:
            token = self.identity.token(f"client-of-{engagement}", ["client"], engagement=engagement)
            self._clients[engagement] = ClientStubs(
                contracts_grpc.ContractsServiceStub(self._channel("contracts", token)),
                delivery_grpc.DeliveryServiceStub(self._channel("delivery", token)),
                survey_grpc.SurveyServiceStub(self._channel("survey", token)),
            )
        return self._clients[engagement]

    def close(self) -> None:
        for channel in self._channels:
            channel.close()


@dataclass(frozen=True)
class ClientStubs:
    """What a client may call: its answers to the quote and contract, its acceptance, its survey."""

    contracts: contracts_grpc.ContractsServiceStub
    delivery: delivery_grpc.DeliveryServiceStub
    survey: survey_grpc.SurveyServiceStub


def person_for(task: pb.UserTask) -> tuple[str, tuple[str, ...]]:
    """Who of the firm does a task: its assignee, else its first candidate user, else the sample person
    of its first candidate group (cli/people.toml)."""
    groups = tuple(task.candidate_groups)
    if task.assignee:
        return task.assignee, groups
    if task.candidate_users:
        return task.candidate_users[0], groups
    for person in people().values():
        if set(person.groups) & set(groups):
            return person.name, person.groups
    raise LookupError(f"nobody in people.toml is in the groups {groups} of task {task.element_id}")


@dataclass
class Story:
    """One scripted engagement: what people decide at each task and what the client does."""

    key: str
    title: str
    inquiry: dict[str, Any]
    # element id → successive decisions (the last one repeats); other required fields get sample values
    decisions: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    expect_outcome: str = "closed"  # closed, not taken on, declined (risk avoided)
    acceptance: list[str] = field(default_factory=lambda: ["passed"])  # the client's conclusion per round
    # the client's answer to each contract version the firm signed (2.4.3): sign, refuse, or let_lapse
    # (no answer: the signing period ends); the last one repeats
    signatures: list[str] = field(default_factory=lambda: ["sign"])
    ratings: dict[str, int] = field(
        default_factory=lambda: {
            "service_quality": 5,
            "result_quality": 5,
            "team_performance": 5,
            "overall_satisfaction": 5,
        }
    )
    held: set[str] = field(default_factory=set)  # tasks nobody answers (the story ends before them)
    # tasks answered only once a condition holds (e.g. the solution review waits until monitoring ran)
    hold_until: dict[str, Callable[[Clients, Story], bool]] = field(default_factory=dict)
    kind: str = ""  # INFEASIBLE, ONSITE, …: the key's second part unless given
    # Execution is confirmed complete only when this holds (e.g. after a warning was acknowledged).
    execution_done_when: Callable[[Clients, Story], bool] | None = None
    # What the team does when execution starts (default: report progress on every work package).
    on_execution: Callable[[Clients, Story], None] | None = None

    # what happened (filled by the driver)
    instance_id: str = ""
    answered: Counter[str] = field(default_factory=Counter)
    client_acts: set[str] = field(default_factory=set)
    steps: list[tuple[float, str]] = field(default_factory=list)
    waiting: list[str] = field(default_factory=list)
    outcome: str = ""
    executed: bool = False

    def __post_init__(self) -> None:
        if not self.kind:
            self.kind = self.key.split("-")[1]

    @property
    def finished(self) -> bool:
        return bool(self.outcome)

    def note(self, text: str) -> None:
        self.steps.append((time.monotonic(), text))

    def decision(self, element_id: str) -> dict[str, Any]:
        script = self.decisions.get(element_id, [{}])
        return script[min(self.answered[element_id], len(script) - 1)]


SAMPLES: dict[str, Any] = {
    "take_on_reasons": "Within our practice, the fee covers the cost and the client's goals are realistic",
    "distribution_recipients": "business, delivery, finance, legal",
    "needs": "Enter three EU markets within 18 months",
    "background": "Family-owned LED maker, 400 staff, 60 % of sales in China",
    "goals": "A market entry strategy and a partner shortlist",
    "expected_results": "Market entry strategy\nPartner shortlist\nImplementation roadmap",
    "technical_reason": "Our team has done six comparable entry studies",
    "economic_reason": "Fee covers cost with a 25 % margin",
    "time_reason": "Fits the client's budget cycle",
    "assessors": "Dr Li Ming, Zhou Hua",
    "risk_description": "Key client staff may leave during the project",
    "dissatisfaction_causes": "The results were hard to read: charts without labels, no summary",
    "consulting_fee": "180000.00",
    "travel_cost": "12000.00",
    "accommodation_cost": "8000.00",
    "consulting_cost_basis": "120000.00",
    "travel_cost_basis": "10000.00",
    "accommodation_cost_basis": "7000.00",
    "project_manager": "Wang Fang",
    "team_members": "Wang Fang, Li Ming, Zhao Lei",
    "scope": "Diagnosis of export readiness; entry strategy; implementation roadmap",
    "methods": "Interviews, market sizing, partner screening",
    "review_comments": "Sound and workable",
    "service_content": "Market entry consulting for Europe",
    "payment_terms": "30% on signing\n40% on the strategy report\n30% on acceptance",
    "confidentiality": "Both parties keep all project information confidential for five years",
    "breach_liability": "Liability capped at the contract value",
    "negotiation_notes": "Client asked for a staged payment; agreed",
    "legal_opinions": "payment_terms: acceptable\nbreach_liability: cap agreed",
    "revision_notes": "Liability cap clarified per the legal opinion",
    "completeness_opinion": "All five negotiated terms are present",
    "accuracy_opinion": "Amounts and dates match the quotation and the proposal",
    "legality_opinion": "Conforms to contract law; no prohibited clauses",
    "risk_safeguards_opinion": "Liability cap and confidentiality protect the firm",
    "signatory": "Zhang Wei",
    "signatory_title": "Managing director",
    "consultants": "Li Ming",
    "analysts": "Zhao Lei",
    "assistants": "Chen Jing",
    "duties": "Li Ming leads research; Zhao Lei analyses; Chen Jing coordinates",
    "attendees": "Wang Fang, Li Ming, Zhao Lei, Chen Jing",
    "briefing": "Background, goals, tasks, schedule and quality requirements",
    "rules_agreed": "Weekly report every Friday; shared drive; replies within a day",
    "industry_data": "EU lighting market reports 2024-2026",
    "client_data": "Sales by product line, export licences",
    "market_data": "Distributor lists for Germany, France, Poland",
    "interviewees": "Sales director, export manager",
    "processes_observed": "Order handling, export documentation",
    "observations": "Export paperwork is manual and slow",
    "problems": "No EU certification for two product lines",
    "opportunities": "Strong demand for smart lighting in Germany",
    "solution_summary": "Phased entry: Germany first through two distributors",
    "flow_chart_link": "https://files.consultflow.example/flow.png",
    "mind_map_link": "https://files.consultflow.example/mindmap.png",
    "completion_summary": "All work packages done; final report drafted",
    "progress_report": "On plan; partner interviews under way",
    "decisions": "Shortlist four distributors",
    "internal_updates": "Shared drive reorganised",
    "corrective_action": "Add an analyst for two weeks to catch up",
    "action_owner": "Wang Fang",
    "deliverables": "Diagnosis report\nEntry strategy\nImplementation roadmap",
    "results_summary": "Three deliverables, reviewed and formatted",
    "delivery_time": "10:00 on the agreed day",
    "delivery_place": "Client headquarters, Shenzhen",
    "preparations": "Projector tested; 12 bound copies",
    "client_feedback": "Clear and actionable",
    "acceptance_content": "The three deliverables of the contract",
    "acceptance_criteria": "Complete\nAccurate\nActionable",
    "follow_up_notes": "Called the client's PMO",
    "rectification_items": "Update the market sizing chart\nAdd the Polish distributor list",
    "rectification_owner": "Li Ming",
    "rectification_notes": "Both items done and sent",
    "respondents": "Ms Chen (sponsor), Mr Sun (export manager)",
    "problem_description": "Roadmap lacked cost estimates",
    "measure": "Add cost estimates per phase",
    "responsible_department": "Delivery",
    "responsible_person": "Wang Fang",
    "measure_target": "Client confirms the estimates are usable",
    "revisit_findings": "The Germany entry is under way",
    "value_added_need": "The client's export team wants to follow EU lighting standards",
    "value_added_resources": "Our standards consultant runs a half-day training",
    "warning_action": "Extra analyst assigned; plan re-baselined",
    "acknowledged_by": "Wang Fang",
    "change_response": "Accepted within the current budget",
    "measures": "Weekly check of the risk with the sponsor",
    "measure_owner": "Wang Fang",
    "management_action": "Director reviewed the plan with the PM",
    "industry_trends": "Smart lighting grows 12 % a year",
    "market_demand": "Manufacturers seek EU certification help",
    "competitors": "Two Shanghai firms offer entry studies",
    "lead_company": "Foshan Ceramics Ltd.",
    "lead_contact": "Mr Guo, guo@foshan.example",
    "lead_notes": "Met at the Canton Fair; wants a Middle East study",
    "refusal_reason": "The liability cap is too low for a project of this size",
}
SAMPLE_BY_TYPE = {"string": "as agreed", "decimal": "1000.00", "long": "30", "boolean": False}
DELIVERY_TIME_AHEAD = 5  # seconds between agreeing the on-site delivery time and the presentation
DATE_OFFSETS = {
    "service_start": 0,
    "service_end": 120,
    "kickoff_date": 0,
    "visit_date": 0,  # a visit is recorded after it took place
    "acceptance_date": 7,
    "rectification_due": 14,
    "survey_date": 0,  # the demo surveys on the day the plan is made (the survey waits for its date, 5.1.2)
    "measure_deadline": 21,
    "measure_due": 30,
}


MARKET_RESEARCH_DECISIONS: dict[str, dict[str, Any]] = {
    "collect_market_intelligence_form": {"lead_found": True},
    "record_lead_form": {"lead_source": "trade_fair"},
    "contact_lead_form": {"lead_outcome": "no_need"},  # the business staff's follow-up of the lead (2.1.1)
}


def sample_form(fields: list[pb.FormField], decisions: Mapping[str, Any]) -> dict[str, Any]:
    """The story's decisions, plus realistic values for the other required fields."""
    values: dict[str, Any] = {}
    for f in fields:
        if f.id in decisions or not f.required:
            continue
        if f.id == "delivery_time":
            # the agreed on-site delivery time (4.2.1), which the presentation waits for: soon, for a demo
            values[f.id] = (datetime.now(UTC) + timedelta(seconds=DELIVERY_TIME_AHEAD)).isoformat()
        elif f.type == "date":
            values[f.id] = day(DATE_OFFSETS.get(f.id, 7))
        elif f.id == "schedule":
            values[f.id] = f"{day(30)} Diagnosis\n{day(75)} Entry strategy\n{day(110)} Roadmap"
        elif f.id in SAMPLES:
            values[f.id] = SAMPLES[f.id]
        elif f.type == "enum" and f.values:
            values[f.id] = f.values[0].id
        else:
            values[f.id] = SAMPLE_BY_TYPE.get(f.type, "as agreed")
    return {**values, **decisions}


class Driver:
    """Starts the stories' engagements and plays everyone around them until each has ended."""

    def __init__(
        self,
        clients: Clients,
        stories: list[Story],
        on_progress: Callable[[list[Story]], None] | None = None,
        workers: int = WORKERS,
    ) -> None:
        self.clients = clients
        self.stories = {s.key: s for s in stories}
        self.on_progress = on_progress
        self.other_tasks = 0
        self.workers = workers

    def start(self) -> None:
        for story in self.stories.values():
            variables = {"engagement_id": story.key, **story.inquiry}
            created = self.clients.orchestrator.CreateInstance(
                pb.CreateInstanceRequest(
                    process_id="engagement", business_key=story.key, variables_json=json.dumps(variables)
                ),
                timeout=TIMEOUT,
            )
            story.instance_id = created.instance_id
            story.note("engagement started")

    def run(self, timeout: float = 600.0, poll: float = 0.25) -> None:
        deadline = time.monotonic() + timeout
        while not all(s.finished for s in self.stories.values()):
            if time.monotonic() > deadline:
                raise TimeoutError(
                    "stories still running: "
                    + ", ".join(f"{s.key} at {s.waiting}" for s in self.stories.values() if not s.finished)
                )
            self.tick()
            if self.on_progress is not None:
                self.on_progress(list(self.stories.values()))
            time.sleep(poll)

    def tick(self) -> None:
        """One round: every story followed, then every open task answered by whoever it is for. The
        stories go on side by side, as the firm's people work side by side; one story's own calls stay in
        order (a story's record is touched by one thread at a time)."""
        unfinished = [story for story in self.stories.values() if not story.finished]
        self._side_by_side([partial(self._follow, story) for story in unfinished])
        by_story: dict[str, list[pb.UserTask]] = {}
        others: list[pb.UserTask] = []
        for task in open_user_tasks(self.clients.orchestrator):
            owner = self.stories.get(task.business_key)
            if owner is not None and not owner.finished:
                by_story.setdefault(owner.key, []).append(task)
            elif task.process_id == "market_research" or task.element_id == "contact_lead_form":
                others.append(task)
        rounds = [partial(self._answer_all, self.stories[key], tasks) for key, tasks in by_story.items()]
        rounds.append(partial(self._answer_market_research_tasks, others))
        self._side_by_side(rounds)

    def _side_by_side(self, calls: Sequence[Callable[[], None]]) -> None:
        """Runs the calls on `workers` threads (for this round only: nothing outlives a tick); the first
        failure is raised once all have ended."""
        with ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="demo-driver") as pool:
            futures = [pool.submit(call) for call in calls]
        for future in futures:
            future.result()

    def _answer_all(self, story: Story, tasks: list[pb.UserTask]) -> None:
        for task in tasks:
            self._answer(story, task)

    def _answer_market_research_tasks(self, tasks: list[pb.UserTask]) -> None:
        for task in tasks:
            self._answer_market_research(task)

    # ---------------------------------------------------------------------------------- engagements

    def _follow(self, story: Story) -> None:
        instance = self.clients.orchestrator.GetInstance(
            pb.GetInstanceRequest(instance_id=story.instance_id, history_limit=1), timeout=TIMEOUT
        )
        story.waiting = [a.name for a in instance.active_elements if a.type != "boundaryEvent"]
        if instance.incidents:
            incident = instance.incidents[0]
            story.outcome = f"stuck: {incident.kind} at {incident.element_id}: {incident.message}"
            story.note(story.outcome)
            return
        if instance.state != pb.INSTANCE_STATE_ACTIVE:
            if self._risk_management_done(story):
                variables = json.loads(instance.variables_json or "{}")
                story.outcome = outcome_of(instance, variables)
                story.note(f"ended: {story.outcome}")
            return
        for element in instance.active_elements:
            act = CLIENT_ACTS.get(element.element_id)
            if act is not None:
                act(self.clients, story)

    def _risk_management_done(self, story: Story) -> bool:
        """The engagement's risk management closes with it (engagement.closed)."""
        found = self.clients.orchestrator.ListInstances(
            pb.ListInstancesRequest(process_id="risk_management", business_key=story.key), timeout=TIMEOUT
        ).instances
        return all(i.state != pb.INSTANCE_STATE_ACTIVE for i in found)

    def _answer(self, story: Story, summary: pb.UserTask) -> None:
        element = summary.element_id
        if element in story.held:
            return
        condition = story.hold_until.get(element)
        if condition is not None and not condition(self.clients, story):
            return
        if element == "carry_out_work_form" and not self._execution_may_end(story):
            return
        task = self.clients.orchestrator.GetUserTask(
            pb.GetUserTaskRequest(user_task_id=summary.user_task_id), timeout=TIMEOUT
        )
        decided = story.decision(element)
        values = sample_form(list(task.form_fields), decided)
        try:
            self._do(task, values)
        except grpc.RpcError as error:
            if error.code() == grpc.StatusCode.FAILED_PRECONDITION:
                return  # withdrawn meanwhile (a timer or a message moved the process on)
            raise
        story.answered[element] += 1
        story.note(
            f"{task.name}" + (f" → {', '.join(f'{k}={v}' for k, v in decided.items())}" if decided else "")
        )

    def _execution_may_end(self, story: Story) -> bool:
        if not story.executed:
            story.executed = True
            (story.on_execution or report_progress)(self.clients, story)
        check = story.execution_done_when or monitored_once
        return check(self.clients, story)

    def _answer_market_research(self, summary: pb.UserTask) -> None:
        decisions = MARKET_RESEARCH_DECISIONS.get(summary.element_id, {})
        task = self.clients.orchestrator.GetUserTask(
            pb.GetUserTaskRequest(user_task_id=summary.user_task_id), timeout=TIMEOUT
        )
        values = sample_form(list(task.form_fields), decisions)
        self._do(task, values)
        self.other_tasks += 1

    def _do(self, task: pb.UserTask, values: Mapping[str, Any]) -> None:
        """The person the task is for claims it and submits the form, signed in as themselves."""
        name, groups = person_for(task)
        orchestrator = self.clients.staff(name, groups)
        if task.assignee != name:
            orchestrator.ClaimUserTask(
                pb.ClaimUserTaskRequest(user_task_id=task.user_task_id), timeout=TIMEOUT
            )
        orchestrator.CompleteUserTask(
            pb.CompleteUserTaskRequest(user_task_id=task.user_task_id, variables_json=json.dumps(values)),
            timeout=TIMEOUT,
        )


def open_user_tasks(orchestrator: pb_grpc.OrchestratorServiceStub, page_size: int = 500) -> list[pb.UserTask]:
    """Every open user task, all pages read first: with many engagements at once, the first page alone
    can hold only tasks the stories hold back, and the ones they wait for would never be seen."""
    tasks: list[pb.UserTask] = []
    token = ""
    while True:
        page = orchestrator.ListUserTasks(
            pb.ListUserTasksRequest(page_size=page_size, page_token=token), timeout=TIMEOUT
        )
        tasks.extend(page.user_tasks)
        token = page.next_page_token
        if not token:
            return tasks


def outcome_of(instance: pb.Instance, variables: Mapping[str, Any]) -> str:
    if instance.state == pb.INSTANCE_STATE_CANCELED:
        return "canceled"
    if variables.get("decline_reason") == "risk_avoided":
        return "declined (risk avoided)"
    if variables.get("intake_outcome") == "declined":
        return f"not taken on ({variables.get('decline_reason', '')})"
    return "closed"


def project_of(clients: Clients, story: Story) -> delivery_pb2.Project | None:
    projects = clients.delivery.ListProjects(
        delivery_pb2.ListProjectsRequest(engagement_id=story.key), timeout=TIMEOUT
    ).projects
    return projects[0] if projects else None


def monitored_once(clients: Clients, story: Story) -> bool:
    """Execution goes on until the weekly monitoring has evaluated the indicators at least once (3.4.2)."""
    project = project_of(clients, story)
    if project is None:
        return False
    snapshots = clients.delivery.ListIndicatorSnapshots(
        delivery_pb2.ListIndicatorSnapshotsRequest(project_id=project.project_id), timeout=TIMEOUT
    )
    return len(snapshots.snapshots) > 0


def completed_elements(clients: Clients, story: Story) -> dict[str, list[datetime]]:
    """When each element of the engagement's own process (its event sub-processes included) completed."""
    instance = clients.orchestrator.GetInstance(
        pb.GetInstanceRequest(instance_id=story.instance_id, history_limit=0), timeout=TIMEOUT
    )
    done: dict[str, list[datetime]] = {}
    for event in instance.history:
        if event.type == "element.completed":
            done.setdefault(event.element_id, []).append(event.time.ToDatetime(tzinfo=UTC))
    return done


def monitored_before_execution(clients: Clients, story: Story) -> bool:
    """The solution review (3.3.2, before execution) waits until the monitoring that runs from the kick-off
    has evaluated the indicators (3.4.2) and the client has had a progress report (3.5.2)."""
    done = completed_elements(clients, story)
    return "evaluate_indicators" in done and "send_progress_report" in done


def warning_acknowledged(clients: Clients, story: Story) -> bool:
    """Execution goes on until risk management raised a warning and the project manager acknowledged it."""
    warnings = clients.risk.ListWarnings(
        risk_pb2.ListWarningsRequest(engagement_id=story.key), timeout=TIMEOUT
    ).warnings
    return any(w.status == "acknowledged" and w.trigger == "indicator" for w in warnings)


def report_progress(clients: Clients, story: Story) -> None:
    """The team starts every work package of the plan and reports some progress: on schedule (3.4.1)."""
    project = project_of(clients, story)
    assert project is not None
    plan = clients.delivery.GetWorkPlan(
        delivery_pb2.GetWorkPlanRequest(project_id=project.project_id), timeout=TIMEOUT
    )
    for task in plan.tasks:
        clients.team(project).UpdateTask(
            delivery_pb2.UpdateTaskRequest(task_id=task.task_id, actual_start=day(0), progress=5),
            timeout=TIMEOUT,
        )
    story.note(f"the team reports progress on {len(plan.tasks)} work packages")


def fall_behind_schedule(clients: Clients, story: Story) -> None:
    """A work package that should have finished last week has not started: the schedule deviates (3.4.2)."""
    report_progress(clients, story)
    project = project_of(clients, story)
    assert project is not None
    clients.team(project).AddTask(
        delivery_pb2.AddTaskRequest(
            project_id=project.project_id,
            name="Partner interviews",
            planned_start=day(-20),
            planned_end=day(-5),
            budget="30000",
        ),
        timeout=TIMEOUT,
    )
    story.note("a work package fell behind schedule")


# ------------------------------------------------------------------------------------ the client's acts


def accept_quote(clients: Clients, story: Story) -> None:
    for quotation in clients.contracts.ListQuotations(
        contracts_pb2.ListQuotationsRequest(engagement_id=story.key, status="sent"), timeout=TIMEOUT
    ).quotations:
        if quotation.quotation_id not in story.client_acts:
            clients.client(story.key).contracts.AcceptQuotation(
                contracts_pb2.AnswerQuotationRequest(
                    quotation_id=quotation.quotation_id, answered_by=story.inquiry["contact_name"]
                ),
                timeout=TIMEOUT,
            )
            story.client_acts.add(quotation.quotation_id)
            story.note("the client accepts the quote")


def sign_contract(clients: Clients, story: Story) -> None:
    """The client answers each version the firm signed as the story says: signs it, refuses it, or lets
    the signing period end without an answer (2.4.3)."""
    for contract in clients.contracts.ListContracts(
        contracts_pb2.ListContractsRequest(engagement_id=story.key, status="signed_by_firm"), timeout=TIMEOUT
    ).contracts:
        version = f"{contract.contract_id}@{contract.version}"
        if version in story.client_acts:
            continue
        answered = sum(1 for act in story.client_acts if act.startswith(f"{contract.contract_id}@"))
        answer = story.signatures[min(answered, len(story.signatures) - 1)]
        if answer == "sign":
            clients.client(story.key).contracts.RecordClientSignature(
                contracts_pb2.RecordClientSignatureRequest(
                    contract_id=contract.contract_id,
                    signatory=story.inquiry["contact_name"],
                    signatory_title="CEO",
                ),
                timeout=TIMEOUT,
            )
            story.note("the client signs the contract")
        elif answer == "refuse":
            clients.client(story.key).contracts.RefuseSignature(
                contracts_pb2.RefuseSignatureRequest(
                    contract_id=contract.contract_id,
                    refused_by=story.inquiry["contact_name"],
                    reason=SAMPLES["refusal_reason"],
                ),
                timeout=TIMEOUT,
            )
            story.note(f"the client refuses to sign contract version {contract.version}")
        else:
            story.note(f"the client leaves contract version {contract.version} unsigned")
        story.client_acts.add(version)


def report_acceptance(clients: Clients, story: Story) -> None:
    project = project_of(clients, story)
    if project is None:
        return
    for acceptance in clients.delivery.ListAcceptances(
        delivery_pb2.ListAcceptancesRequest(project_id=project.project_id), timeout=TIMEOUT
    ).acceptances:
        if acceptance.status != "requested" or acceptance.acceptance_id in story.client_acts:
            continue
        conclusion = story.acceptance[min(acceptance.round - 1, len(story.acceptance) - 1)]
        results = [
            delivery_pb2.CriterionResult(
                criterion=c,
                passed=conclusion == "passed" or i > 0,
                comment="ok" if conclusion == "passed" or i > 0 else "chart outdated",
            )
            for i, c in enumerate(acceptance.criteria)
        ]
        clients.client(story.key).delivery.RecordAcceptanceReport(
            delivery_pb2.RecordAcceptanceReportRequest(
                acceptance_id=acceptance.acceptance_id,
                results=results,
                conclusion=conclusion,
                comments="" if conclusion == "passed" else "Market sizing chart is outdated",
                reported_by=story.inquiry["contact_name"],
                request_id=f"demo:{acceptance.acceptance_id}",
            ),
            timeout=TIMEOUT,
        )
        story.client_acts.add(acceptance.acceptance_id)
        story.note(f"the client reports acceptance round {acceptance.round}: {conclusion}")


def answer_survey(clients: Clients, story: Story) -> None:
    for survey in clients.survey.ListSurveys(
        survey_pb2.ListSurveysRequest(engagement_id=story.key), timeout=TIMEOUT
    ).surveys:
        if survey.status != "sent" or survey.survey_id in story.client_acts:
            continue
        low = min(story.ratings.values()) <= 2
        clients.client(story.key).survey.SubmitResponse(
            survey_pb2.SubmitResponseRequest(
                survey_id=survey.survey_id,
                respondent=story.inquiry["contact_name"],
                ratings=survey_pb2.Ratings(**story.ratings),
                comments=survey_pb2.Comments(
                    result_quality="The roadmap lacks cost estimates" if low else "", general="Thank you"
                ),
                recommendation=5 if low else 9,
                request_id=f"demo:{survey.survey_id}",
            ),
            timeout=TIMEOUT,
        )
        story.client_acts.add(survey.survey_id)
        story.note(
            f"the client answers the survey ({', '.join(f'{k}={v}' for k, v in story.ratings.items())})"
        )


CLIENT_ACTS: dict[str, Callable[[Clients, Story], None]] = {
    "await_quote_answer": accept_quote,
    "await_client_signature": sign_contract,
    "client_acceptance": report_acceptance,
    "await_survey_response": answer_survey,
}
"""Receive tasks in the `客戶 Client` lanes and what the client does there, through the services' RPCs."""
