"""The policy table against every method every server offers, and its sensitive rows against
expectations written here by hand (not read from the table they check)."""

from __future__ import annotations

import pytest
from grpc_health.v1 import health_pb2
from grpc_reflection.v1alpha import reflection_pb2

from consultflow.platform import policy
from consultflow.platform.errors import PermissionDenied
from consultflow.platform.identity import Caller
from consultflow.platform.policy import POLICY, Role, authorize
from consultflow.platform.security import API_FILES

MODULES = (*API_FILES, health_pb2, reflection_pb2)
"""Our services (every one under consultflow.api: test_replica_targets checks), health and reflection."""


def served_methods() -> set[str]:
    """Every method of every server, from the compiled descriptors (health and reflection included)."""
    methods = {
        f"/{service.full_name}/{method.name}"
        for module in MODULES
        for service in module.DESCRIPTOR.services_by_name.values()
        for method in service.methods
    }
    methods.add("/grpc.reflection.v1.ServerReflection/ServerReflectionInfo")  # grpcio serves both versions
    return methods


def test_the_table_names_every_served_method_and_nothing_else() -> None:
    served = served_methods()
    assert sorted(served - set(POLICY)) == [], "methods nobody may call (refused by default): add a row"
    assert sorted(set(POLICY) - served) == [], "rows for methods no server offers"


def test_a_method_missing_from_the_table_is_refused_even_for_admins() -> None:
    with pytest.raises(PermissionDenied, match="not in the policy table"):
        authorize({Role.ADMIN}, "/consultflow.api.crm.v1.CrmService/DropEverything")


ORCHESTRATOR = "/consultflow.api.orchestrator.v1.OrchestratorService/"
# method → the roles that may call it, written from the issue's role list, not from the table
SENSITIVE: dict[str, set[str]] = {
    ORCHESTRATOR + "DeployResources": {"analyst", "admin"},
    ORCHESTRATOR + "CancelInstance": {"ops", "admin"},
    ORCHESTRATOR + "PublishMessage": {"ops", "admin"},
    ORCHESTRATOR + "ResolveIncident": {"ops", "admin"},
    ORCHESTRATOR + "ClaimUserTask": {"staff", "admin"},
    ORCHESTRATOR + "CompleteUserTask": {"staff", "admin"},
    ORCHESTRATOR + "CompleteJob": {"component", "admin"},
    ORCHESTRATOR + "FailJob": {"component", "admin"},
    ORCHESTRATOR + "ThrowError": {"component", "admin"},
    "/consultflow.api.contracts.v1.ContractsService/AcceptQuotation": {"client", "staff", "admin"},
    "/consultflow.api.contracts.v1.ContractsService/RecordClientSignature": {"client", "staff", "admin"},
    "/consultflow.api.delivery.v1.DeliveryService/RecordAcceptanceReport": {"client", "staff", "admin"},
    "/consultflow.api.survey.v1.SurveyService/SubmitResponse": {"client", "staff", "admin"},
    "/consultflow.api.contracts.v1.ContractsService/SignContract": {"ops", "admin"},
    "/consultflow.api.crm.v1.CrmService/RecordInquiry": {"ops", "admin"},
}


@pytest.mark.parametrize("method", sorted(SENSITIVE))
@pytest.mark.parametrize("role", [r.value for r in Role])
def test_sensitive_rows_allow_exactly_the_roles_the_issue_names(method: str, role: str) -> None:
    if role in SENSITIVE[method]:
        assert authorize({role}, method).roles
    else:
        with pytest.raises(PermissionDenied, match="needs one of the roles"):
            authorize({role}, method)


def test_a_client_reaches_only_client_facing_methods() -> None:
    client_methods = {m for m, rule in POLICY.items() if Role.CLIENT in rule.roles and not rule.public}
    assert {m.rsplit("/", 1)[1] for m in client_methods} == {
        "AcceptQuotation",
        "RejectQuotation",
        "RecordClientSignature",
        "RefuseSignature",
        "RequestChange",
        "RecordAcceptanceReport",
        "SubmitResponse",
    }


def staff(name: str, *groups: str) -> Caller:
    return Caller(name, roles=frozenset({"staff"}), groups=frozenset(groups))


def test_conditions_the_use_cases_check_with_data() -> None:
    bella, lea = staff("bella", "business"), staff("lea", "legal")
    ops, admin = Caller("otto", roles=frozenset({"ops"})), Caller("root", roles=frozenset({"admin"}))
    client = Caller("c", roles=frozenset({"client"}), engagement="E-1")
    # tasks: seen and taken by candidates only (groups, named users, the assignee)
    assert policy.sees_task(bella, "", ",business,", "") and not policy.sees_task(lea, "", ",business,", "")
    assert policy.sees_task(lea, "", ",business,", ",lea,") and policy.sees_task(ops, "", ",x,", "")
    # the engagement's named people narrow the role's group: another team's member is not a candidate
    tom = staff("tom", "team")
    assert not policy.sees_task(tom, "", ",team,", ",Wang Fang,Li Ming,")
    assert policy.sees_task(staff("Li Ming", "team"), "", ",team,", ",Wang Fang,Li Ming,")
    with pytest.raises(PermissionDenied, match="offered to Li Ming, Wang Fang"):
        policy.require_candidate(tom, "t", "", ",team,", ",Wang Fang,Li Ming,")
    with pytest.raises(PermissionDenied, match="lea is not a candidate"):
        policy.require_candidate(lea, "t", "", ",business,", "")
    policy.require_candidate(admin, "t", "", ",business,", "")
    with pytest.raises(PermissionDenied, match="not claimed"):
        policy.require_claimant(bella, "t", "")
    with pytest.raises(PermissionDenied, match="claimed by 'lea'"):
        policy.require_claimant(bella, "t", "lea")
    with pytest.raises(PermissionDenied, match="nobody may act as 'lea'"):
        policy.require_self(bella, "completed_by", "lea")
    policy.require_self(bella, "completed_by", "")
    # jobs: by operation prefix
    owners = {"crm": ("crm.",), "billing-worker": ("billing.",)}
    policy.require_operation(Caller("billing-worker", roles=frozenset({"component"})), "billing.send", owners)
    with pytest.raises(PermissionDenied):
        policy.require_operation(Caller("crm", roles=frozenset({"component"})), "contracts.sign", owners)
    # clients: their engagement only; the firm's staff are not limited by it
    policy.require_engagement(client, "E-1")
    with pytest.raises(PermissionDenied, match="not for engagement 'E-2'"):
        policy.require_engagement(client, "E-2")
    policy.require_engagement(bella, "E-2")
    # starting: business staff start engagements, ops anything
    policy.require_may_start(bella, "engagement")
    policy.require_may_start(ops, "market_research")
    for who, process in ((lea, "engagement"), (bella, "risk_management")):
        with pytest.raises(PermissionDenied, match="staff may start only"):
            policy.require_may_start(who, process)
    # the project's team as recorded
    policy.require_team_member(staff("Li Ming", "team"), "P-1", ["Wang Fang", "Li Ming"])
    with pytest.raises(PermissionDenied, match="not in the recorded team"):
        policy.require_team_member(staff("tom", "team"), "P-1", ["Wang Fang", "Li Ming"])
