"""Who may call what: the one policy table, role → RPC → condition, refused unless listed (default deny).

Read it as the regulation's people would: analysts change the process, the firm's staff do the tasks the
diagrams give their groups, ops run the system, clients act on their own engagement, components do the
jobs of their own operations. The transport layer (`platform/authn.py`'s interceptor) checks only the
role column; a `Condition` that needs data (is this caller a candidate for that task, is this the
client's engagement, is this job one of the caller's operations) is checked by the use case through the
functions at the end of this module, so the interceptor reads no tables and the use cases read no
metadata.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum

from consultflow.platform.errors import PermissionDenied
from consultflow.platform.identity import Caller


class Role(StrEnum):
    ANALYST = "analyst"  # models the process: deploys and reads diagrams, reads instances
    STAFF = "staff"  # the firm's people: their tasks, their engagements' records
    OPS = "ops"  # runs the system: starts, cancels, messages, incidents; reads everything
    CLIENT = "client"  # the client's own actions on its own engagement
    COMPONENT = "component"  # a service or an outside job worker: its own jobs, declared peer calls
    ADMIN = "admin"  # everything


class Condition(StrEnum):
    """What the use case checks with data once the role has let the call through."""

    NONE = "—"
    TASK_CANDIDATE = "staff: only tasks whose candidate groups or users include the caller, or assigned to it"
    TASK_CLAIMED = "staff: only a task the caller has claimed"
    OWN_ENGAGEMENT = "client: only the engagement named in its token"
    ENGAGEMENT_MEMBER = "staff: only engagements whose recorded team includes the caller"
    OWN_OPERATIONS = "component: only jobs of the operations its identity is mapped to"
    BUSINESS_STAFF = "staff: only members of group `business` (2.1.2 inquiries are theirs)"


@dataclass(frozen=True)
class Rule:
    roles: frozenset[Role]
    condition: Condition = Condition.NONE
    public: bool = False  # answered without credentials (health, reflection)


def _rules(service: str, rules: Mapping[str, tuple[Iterable[Role], Condition]]) -> dict[str, Rule]:
    return {
        f"/{service}/{method}": Rule(frozenset(roles) | {Role.ADMIN}, condition)
        for method, (roles, condition) in rules.items()
    }


ORCHESTRATOR = "consultflow.api.orchestrator.v1.OrchestratorService"
CRM = "consultflow.api.crm.v1.CrmService"
CONTRACTS = "consultflow.api.contracts.v1.ContractsService"
DELIVERY = "consultflow.api.delivery.v1.DeliveryService"
SURVEY = "consultflow.api.survey.v1.SurveyService"
RISK = "consultflow.api.risk.v1.RiskService"
CATALOG = "consultflow.api.catalog.v1.OperationCatalog"  # served by every service

ANALYST, STAFF, OPS, CLIENT, COMPONENT = Role.ANALYST, Role.STAFF, Role.OPS, Role.CLIENT, Role.COMPONENT
N = Condition.NONE
# The services' records across engagements: ops and peer components read them. Staff read what their tasks
# show (GetUserTask gives a candidate the task's data), not every engagement's records.
READERS = (OPS, COMPONENT)
RECORDS = (OPS,)  # writes a diagram's job makes inside the service; by hand only to repair


def _reads(service: str, methods: Iterable[str], condition: Condition = N) -> dict[str, Rule]:
    return _rules(service, {m: (READERS, condition) for m in methods})


def _records(service: str, methods: Iterable[str]) -> dict[str, Rule]:
    return _rules(service, {m: (RECORDS, N) for m in methods})


POLICY: dict[str, Rule] = {
    # Health and reflection answer anyone who reached the port: probes and grpcurl need them, and they
    # reveal only what the public protos say.
    "/grpc.health.v1.Health/Check": Rule(frozenset(Role), public=True),
    "/grpc.health.v1.Health/Watch": Rule(frozenset(Role), public=True),
    "/grpc.health.v1.Health/List": Rule(frozenset(Role), public=True),
    "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo": Rule(frozenset(Role), public=True),
    "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo": Rule(frozenset(Role), public=True),
    **_rules(
        ORCHESTRATOR,
        {
            "DeployResources": ((ANALYST,), N),
            "ListDefinitions": ((ANALYST, OPS), N),
            "GetDefinition": ((ANALYST, OPS), N),
            "ValidateResources": ((ANALYST,), N),
            "GetProcessStatistics": ((ANALYST, OPS), N),
            "CreateInstance": ((OPS, STAFF), Condition.BUSINESS_STAFF),
            "GetInstance": ((ANALYST, OPS), N),
            "ListInstances": ((ANALYST, OPS), N),
            "WatchInstance": ((ANALYST, OPS), N),
            "CancelInstance": ((OPS,), N),
            "PublishMessage": ((OPS,), N),
            "ListUserTasks": ((STAFF, OPS), Condition.TASK_CANDIDATE),
            "GetUserTask": ((STAFF, OPS), Condition.TASK_CANDIDATE),
            "ClaimUserTask": ((STAFF,), Condition.TASK_CANDIDATE),
            "UnclaimUserTask": ((STAFF, OPS), Condition.TASK_CLAIMED),
            "CompleteUserTask": ((STAFF,), Condition.TASK_CLAIMED),
            "CompleteJob": ((COMPONENT,), Condition.OWN_OPERATIONS),
            "FailJob": ((COMPONENT,), Condition.OWN_OPERATIONS),
            "ThrowError": ((COMPONENT,), Condition.OWN_OPERATIONS),
            "ExtendJobDeadline": ((COMPONENT,), Condition.OWN_OPERATIONS),
            "ListIncidents": ((OPS,), N),
            "ResolveIncident": ((OPS,), N),
            "ListAuditEntries": ((OPS,), N),
            "PlanMigration": ((OPS,), N),
            "StartMigration": ((OPS,), N),
            "GetMigration": ((OPS,), N),
            "ListMigrations": ((OPS,), N),
            "ModifyInstance": ((OPS,), N),
        },
    ),
    # what the modeler offers when an analyst picks a service task's operation
    **_rules(CATALOG, {"ListOperations": ((ANALYST, OPS, COMPONENT), N)}),
    **_reads(
        CRM,
        (
            "GetClient",
            "SearchClients",
            "GetInquiry",
            "ListInquiries",
            "GetRequirements",
            "GetFeasibility",
            "GetIntakeHistory",
            "ListMarketInsights",
            "ListLeads",
            "ListDueRevisits",
            "GetRelationship",
        ),
    ),
    **_records(
        CRM,
        (
            "CreateClient",
            "AddContact",
            "RecordInquiry",
            "RecordRequirements",
            "RecordFeasibility",
            "DeclineInquiry",
            "RecordMarketInsight",
            "RecordLead",
            "PlanRevisit",
            "RecordRevisit",
            "RecordValueAddedService",
            "RecordOpportunity",
        ),
    ),
    **_reads(CONTRACTS, ("GetQuotation", "ListQuotations", "GetProposal", "GetContract", "ListContracts")),
    **_rules(
        CONTRACTS,
        {
            # the client's own answers (2.3.1, 2.4.3); staff of group business may record one given on paper
            "AcceptQuotation": ((CLIENT, STAFF), Condition.OWN_ENGAGEMENT),
            "RejectQuotation": ((CLIENT, STAFF), Condition.OWN_ENGAGEMENT),
            "RecordClientSignature": ((CLIENT, STAFF), Condition.OWN_ENGAGEMENT),
            "RefuseSignature": ((CLIENT, STAFF), Condition.OWN_ENGAGEMENT),
        },
    ),
    **_records(
        CONTRACTS,
        (
            "PrepareQuotation",
            "ReviseQuotation",
            "SendOffer",
            "ExpireQuotation",
            "DraftProposal",
            "ReviewProposal",
            "DraftContract",
            "SubmitForLegalReview",
            "RecordLegalReview",
            "ReviseContract",
            "SignContract",
            "DistributeContract",
            "AcknowledgeDistribution",
        ),
    ),
    **_reads(
        DELIVERY,
        (
            "GetProject",
            "ListProjects",
            "ListDocuments",
            "ListSolutions",
            "GetWorkPlan",
            "ListIndicatorSnapshots",
            "ListCommunications",
            "ListChangeRequests",
            "ListDeliverableSets",
            "ListDeliveries",
            "ListAcceptances",
        ),
    ),
    **_rules(
        DELIVERY,
        {
            # the team's own work during execution (3.4.1, 3.5.1), outside any single user task
            "AddTask": ((STAFF,), Condition.ENGAGEMENT_MEMBER),
            "UpdateTask": ((STAFF,), Condition.ENGAGEMENT_MEMBER),
            "RecordMilestoneReached": ((STAFF,), Condition.ENGAGEMENT_MEMBER),
            "RecordQualityCheck": ((STAFF,), Condition.ENGAGEMENT_MEMBER),
            "LogCommunication": ((STAFF,), Condition.ENGAGEMENT_MEMBER),
            "AddDocument": ((STAFF,), Condition.ENGAGEMENT_MEMBER),
            # the client's own requests and reports (3.5.2, 4.4.2)
            "RequestChange": ((CLIENT, STAFF), Condition.OWN_ENGAGEMENT),
            "RecordAcceptanceReport": ((CLIENT, STAFF), Condition.OWN_ENGAGEMENT),
        },
    ),
    **_records(
        DELIVERY,
        (
            "OpenProject",
            "FormTeam",
            "RecordKickoff",
            "ArchiveDocument",
            "RecordSiteVisit",
            "RecordAnalysis",
            "SubmitSolution",
            "ReviewSolution",
            "StartExecution",
            "RecordMeeting",
            "EvaluateIndicators",
            "RecordCorrectiveAction",
            "CompleteExecution",
            "SendProgressReport",
            "RespondToChange",
            "CompileDeliverables",
            "ReviewDeliverables",
            "PlanOnsiteDelivery",
            "PlanOnlineDelivery",
            "SendDeliverablesOnline",
            "RecordDelivery",
            "RequestAcceptance",
            "RecordRectificationItems",
            "CloseRectificationItem",
            "CloseAcceptance",
        ),
    ),
    **_reads(
        SURVEY,
        (
            "GetSurvey",
            "ListSurveys",
            "ListResponses",
            "GetAnalysis",
            "GetClientTrend",
            "GetProblem",
            "ListProblems",
            "ListOverdueMeasures",
        ),
    ),
    **_rules(
        SURVEY, {"SubmitResponse": ((CLIENT, STAFF), Condition.OWN_ENGAGEMENT)}
    ),  # the client's answers (5.1.2)
    **_records(
        SURVEY,
        (
            "CreatePlan",
            "AnalyseSurvey",
            "RecordProblem",
            "DefineMeasure",
            "CompleteMeasure",
            "ReportProgress",
        ),
    ),
    **_reads(RISK, ("GetRisk", "ListRisks", "GetRiskMatrix", "ListResponses", "GetRegister", "ListReviews")),
    **_reads(RISK, ("GetWarning", "ListWarnings")),
    # delivery's analysis finds risks (3.2.3), and anyone who sees one may register it (6.1.1)
    **_rules(RISK, {"RegisterRisk": ((COMPONENT, STAFF), N)}),
    **_records(
        RISK,
        (
            "AssessRisk",
            "PlanResponse",
            "DecideDeviation",
            "CompleteResponse",
            "CloseRisk",
            "ReportRiskOccurred",
            "RecordReview",
            "RaiseWarning",
            "AcknowledgeWarning",
        ),
    ),
}


def rule_for(method: str) -> Rule | None:
    return POLICY.get(method)


def authorize(roles: Iterable[str], method: str) -> Rule:
    """The rule that lets a caller with `roles` call `method`, or PermissionDenied naming what is missing."""
    rule = POLICY.get(method)
    if rule is None:
        raise PermissionDenied(f"{method} is not in the policy table, so nobody may call it")
    held = set(roles)
    if not held.intersection(rule.roles):
        needed = ", ".join(sorted(r.value for r in rule.roles if r is not Role.ADMIN))
        raise PermissionDenied(f"{method} needs one of the roles {needed}")
    return rule


# ------------------------------------------------------------------ conditions the use cases check with data


def _list(text: str) -> set[str]:
    """`,a,b,` (how the orchestrator stores candidates) or `a,b` → {a, b}."""
    return {part for part in text.split(",") if part}


def is_candidate(caller: Caller, assignee: str, candidate_groups: str, candidate_users: str) -> bool:
    """The task's assignee is; else its named users, when it names any (the engagement's own people
    narrow the role's firm-wide group: "the project team" of 3.1.1 is this engagement's team, not every
    team member of the firm); else the members of its candidate groups."""
    if caller.name == assignee:
        return True
    named = _list(candidate_users)
    if named:
        return caller.name in named
    return bool(caller.groups & _list(candidate_groups))


def sees_task(caller: Caller, assignee: str, candidate_groups: str, candidate_users: str) -> bool:
    """Ops and admins see every task; staff see the tasks they are a candidate for or hold."""
    return caller.has_role(Role.ADMIN, Role.OPS) or is_candidate(
        caller, assignee, candidate_groups, candidate_users
    )


def require_candidate(
    caller: Caller, task: str, assignee: str, candidate_groups: str, candidate_users: str
) -> None:
    """Only a candidate takes a task (`is_candidate`); admins may take any."""
    if caller.has_role(Role.ADMIN) or is_candidate(caller, assignee, candidate_groups, candidate_users):
        return
    offered = sorted(_list(candidate_users)) or sorted(_list(candidate_groups))
    raise PermissionDenied(f"{caller.name} is not a candidate for {task} (offered to {', '.join(offered)})")


def require_claimant(caller: Caller, task: str, assignee: str) -> None:
    """A task is completed by the person who holds it, so every completion has one accountable name."""
    if not assignee:
        raise PermissionDenied(f"{task} is not claimed: claim it before completing it")
    if assignee != caller.name:
        raise PermissionDenied(f"{task} is claimed by {assignee!r}, not by {caller.name!r}")


def require_self(caller: Caller, field: str, named: str) -> None:
    """A request field that names a person may only name the caller: nobody acts as somebody else."""
    if named and named != caller.name:
        raise PermissionDenied(f"{field}: you are {caller.name!r}; nobody may act as {named!r}")


def require_operation(caller: Caller, operation: str, owners: Mapping[str, tuple[str, ...]]) -> None:
    """A component or outside worker finishes (or extends) only jobs of the operations its identity is
    mapped to."""
    if caller.has_role(Role.ADMIN):
        return
    if not any(operation.startswith(prefix) for prefix in owners.get(caller.name, ())):
        raise PermissionDenied(f"{caller.name} may not finish jobs of operation {operation!r}")


def require_engagement(caller: Caller, engagement_id: str) -> None:
    """A client acts only on the engagement its token names; the firm's people are not limited here."""
    if caller.has_role(Role.STAFF, Role.ADMIN) or not caller.has_role(Role.CLIENT):
        return
    if not caller.engagement or caller.engagement != engagement_id:
        raise PermissionDenied(f"this client's token is not for engagement {engagement_id!r}")


STAFF_STARTS = {"engagement": "business"}
"""Processes staff may start, and the group that does (2.1.2: business staff record a client's inquiry)."""


def require_may_start(caller: Caller, process_id: str) -> None:
    """Ops start anything; staff start only the processes their group's work begins with."""
    if caller.has_role(Role.OPS, Role.ADMIN):
        return
    group = STAFF_STARTS.get(process_id)
    if group is None or group not in caller.groups:
        starts = ", ".join(f"{p} (group {g})" for p, g in sorted(STAFF_STARTS.items()))
        raise PermissionDenied(f"staff may start only {starts}, not {process_id!r}")


def require_team_member(caller: Caller, project: str, members: Iterable[str]) -> None:
    """The project's own records during execution are written by its team as recorded in 3.1.1."""
    if caller.has_role(Role.OPS, Role.ADMIN):
        return
    if caller.name not in set(members):
        raise PermissionDenied(f"{caller.name} is not in the recorded team of project {project}")
