"""Every contracts.* operation as a job: through the real orchestrator, NATS and crm (the client's answer
and signature arriving as RPCs that release the waiting instance), and the handler contract
(idempotent redelivery, BPMN errors, refusals, crm unavailable) against real databases."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import nats
import pytest
from sqlalchemy import func, select

from consultflow.api.contracts.v1 import contracts_pb2, contracts_pb2_grpc
from consultflow.api.orchestrator.v1 import orchestrator_pb2 as pb
from consultflow.contracts import orm
from consultflow.contracts.adapters import ClientInfo, ContactInfo, CrmClients, Dependencies
from consultflow.contracts.app import build
from consultflow.contracts.jobs import operations
from consultflow.platform.db import Database
from consultflow.platform.tables import outbox
from tests.support.bpmn_builder import Task, Wait, bpmn_folder, line
from tests.support.components import ComponentThread, closed_address, running
from tests.support.identity import signed_channel
from tests.support.jobs import completed, job, refused_job, run
from tests.support.nats import wait_consumed
from tests.support.polling import eventually
from tests.support.status import wait_for_types
from tests.support.system import InProcessSystem, in_process_system

START: dict[str, Any] = {
    "channel": "email",
    "client_name": "Shenzhen Lighting Co.",
    "contact_name": "Ms Chen",
    "contact_email": "chen@example.cn",
    "question": "Can you help us enter the European market?",
    "consulting_fee": "70000.00",
    "travel_cost": "12401.00",
    "accommodation_cost": "10799.88",
    "other_cost": "",
    "consulting_cost_basis": "52000.00",
    "travel_cost_basis": "12401.00",
    "accommodation_cost_basis": "",
    "other_cost_basis": "",
    "currency": "CNY",
    "tax_rate": "0.06",
    "validity_days": 30,
    "project_manager": "Li Si",
    "team_members": "Wang Wu, Zhao Liu",
    "goals": "an EU distributor within a year",
    "scope": "market analysis for DE, FR, NL",
    "methods": "desk research, interviews",
    "schedule": "2025-06-30 market analysis\n2025-09-30 final report",
    "expected_results": "market entry strategy\ndistributor shortlist",
    "proposal_verdict": "approved",
    "review_comments": "",
    "service_content": "market entry consulting",
    "service_start": "2025-04-01",
    "service_end": "2025-09-30",
    "payment_terms": "30% on signing\n70% on acceptance",
    "confidentiality": "five years",
    "breach_liability": "capped at the contract value",
    "negotiation_notes": "terms agreed in one meeting",
    "signatory": "Zhang San",
    "signatory_title": "legal representative",
}


def _same(*names: str) -> dict[str, str]:
    return {name: name for name in names}


OFFER: list[Task | Wait] = [
    Task(
        "record_inquiry",
        "crm.record_inquiry",
        _same("engagement_id", "channel", "client_name", "contact_name", "contact_email", "question"),
    ),
    Task(
        "prepare_quotation",
        "contracts.prepare_quotation",
        _same(
            "engagement_id",
            "client_id",
            "consulting_fee",
            "travel_cost",
            "accommodation_cost",
            "other_cost",
            "currency",
            "tax_rate",
            "validity_days",
            "consulting_cost_basis",
            "travel_cost_basis",
            "accommodation_cost_basis",
            "other_cost_basis",
        ),
    ),
    Task(
        "draft_proposal",
        "contracts.draft_proposal",
        _same(
            "engagement_id",
            "quotation_id",
            "project_manager",
            "team_members",
            "goals",
            "scope",
            "methods",
            "schedule",
            "expected_results",
        ),
    ),
    Task(
        "record_proposal_review",
        "contracts.record_proposal_review",
        _same("proposal_id", "proposal_verdict", "review_comments"),
    ),
    Task("send_offer", "contracts.send_offer", _same("engagement_id", "quotation_id", "proposal_id")),
]
CLAUSES = _same(
    "engagement_id",
    "client_id",
    "quotation_id",
    "proposal_id",
    "service_content",
    "service_start",
    "service_end",
    "payment_terms",
    "confidentiality",
    "breach_liability",
    "negotiation_notes",
)
FOCI = ("completeness", "accuracy", "legality", "risk_safeguards")
CONTRACT: list[Task | Wait] = [
    *OFFER,
    Wait("accepted", "quotation.accepted"),
    Task("draft_contract", "contracts.draft_contract", CLAUSES),
    Task("submit", "contracts.submit_for_legal_review", _same("contract_id"), catch="contract_incomplete"),
    Task(
        "legal_review_1",
        "contracts.record_legal_review",
        {
            "contract_id": "contract_id",
            "legal_verdict": "'revise'",
            "legal_opinions": "'breach liability: exclude wilful misconduct'",
        },
    ),
    Task(
        "revise_contract",
        "contracts.revise_contract",
        {
            "contract_id": "contract_id",
            "revision_notes": "'cap excludes wilful misconduct'",
            "payment_terms": "''",
            "confidentiality": "''",
            "breach_liability": "'capped, except wilful misconduct'",
        },
    ),
    Task(
        "legal_review_2",
        "contracts.record_legal_review",
        {
            "contract_id": "contract_id",
            "legal_verdict": "'approved'",
            "legal_opinions": "''",
            **{f"{focus}_verdict": "'approved'" for focus in FOCI},
            **{f"{focus}_opinion": f"'{focus} checked'" for focus in FOCI},
        },
    ),
    Task("sign_contract", "contracts.sign_contract", _same("contract_id", "signatory", "signatory_title")),
    Wait("client_signed", "contract.signed"),
    Task("distribute_contract", "contracts.distribute_contract", _same("contract_id")),
]
REFUSED: list[Task | Wait] = [
    *OFFER,
    Wait("accepted", "quotation.accepted"),
    Task("draft_contract", "contracts.draft_contract", CLAUSES),
    Task("submit", "contracts.submit_for_legal_review", _same("contract_id")),
    Task(
        "legal_review",
        "contracts.record_legal_review",
        {"contract_id": "contract_id", "legal_verdict": "'approved'", "legal_opinions": "''"},
    ),
    Task("sign_contract", "contracts.sign_contract", _same("contract_id", "signatory", "signatory_title")),
    Wait("refused", "contract.signature_refused"),
    Task(
        "reopen_negotiation",
        "contracts.reopen_negotiation",
        {"contract_id": "contract_id", "reopen_reason": "'the signing period ended'"},
    ),
    Task("renegotiate", "contracts.draft_contract", CLAUSES),
]
EXPIRES: list[Task | Wait] = [
    *OFFER,
    Task("expire_quotation", "contracts.expire_quotation", _same("engagement_id", "quotation_id")),
]


def _start(system: InProcessSystem, process_id: str, engagement: str, **changes: Any) -> str:
    variables = {**START, "engagement_id": engagement, **changes}
    created = system.orchestrator.CreateInstance(
        pb.CreateInstanceRequest(
            process_id=process_id, variables_json=json.dumps(variables), business_key=engagement
        )
    )
    return str(created.instance_id)


def _quotation_sent(contracts: contracts_pb2_grpc.ContractsServiceStub, engagement: str) -> str:
    found: list[str] = []

    def sent() -> bool:
        listed = contracts.ListQuotations(
            contracts_pb2.ListQuotationsRequest(engagement_id=engagement, status="sent")
        )
        found.extend(q.quotation_id for q in listed.quotations)
        return bool(found)

    eventually(sent, f"the offer of {engagement}")
    return found[0]


def _contract_in(contracts: contracts_pb2_grpc.ContractsServiceStub, engagement: str, status: str) -> str:
    found: list[str] = []

    def reached() -> bool:
        listed = contracts.ListContracts(
            contracts_pb2.ListContractsRequest(engagement_id=engagement, status=status)
        )
        found.extend(c.contract_id for c in listed.contracts)
        return bool(found)

    eventually(reached, f"the contract of {engagement} {status}")
    return found[0]


def test_every_contracts_operation_through_the_orchestrator(
    tmp_path: Path, nats_url: str, database_url: str
) -> None:
    used = {t.operation for t in [*CONTRACT, *EXPIRES, *REFUSED] if isinstance(t, Task)}
    assert {op for op in used if op.startswith("contracts.")} == set(operations.names)
    folder = bpmn_folder(
        tmp_path,
        {
            "contract_line": line("contract_line", CONTRACT),
            "offer_expires": line("offer_expires", EXPIRES),
            "signature_refused": line("signature_refused", REFUSED),
        },
    )
    with in_process_system(
        tmp_path, nats_url, ["crm", "contracts"], bpmn_dir=folder, database_urls={"contracts": database_url}
    ) as system:
        contracts = contracts_pb2_grpc.ContractsServiceStub(system.channel("contracts"))
        happy = _start(system, "contract_line", "E-10")
        incomplete = _start(system, "contract_line", "E-11", confidentiality="", breach_liability="")
        expires = _start(system, "offer_expires", "E-12")
        refused = _start(system, "signature_refused", "E-13")

        for engagement in ("E-10", "E-11", "E-13"):
            quotation_id = _quotation_sent(contracts, engagement)
            contracts.AcceptQuotation(
                contracts_pb2.AnswerQuotationRequest(quotation_id=quotation_id, answered_by="Ms Chen")
            )
        contract_id = _contract_in(contracts, "E-10", "signed_by_firm")
        contracts.RecordClientSignature(
            contracts_pb2.RecordClientSignatureRequest(
                contract_id=contract_id, signatory="Ms Chen", signatory_title="CFO"
            )
        )
        unsigned = _contract_in(contracts, "E-13", "signed_by_firm")
        refusal = contracts_pb2.RefuseSignatureRequest(
            contract_id=unsigned, refused_by="Ms Chen", reason="payment terms too short"
        )
        reopened = contracts.RefuseSignature(refusal)
        assert contracts.RefuseSignature(refusal) == reopened, "refusing again changes nothing"
        renegotiated = json.loads(system.wait_completed(refused).variables_json)
        after_refusal = contracts.GetContract(contracts_pb2.GetContractRequest(contract_id=unsigned))
        done = json.loads(system.wait_completed(happy).variables_json)
        caught = system.wait_completed(incomplete)
        expired = json.loads(system.wait_completed(expires).variables_json)
        contract = contracts.GetContract(contracts_pb2.GetContractRequest(contract_id=contract_id))
        _redeliver_a_job(system, nats_url, "jobs.contracts.prepare_quotation")

    assert done["quotation_total"] == "98792.93" and done["quotation_valid_until"]
    assert done["quotation_status"] == "accepted", "the answer's payload replaces the draft (2.4.1)"
    assert done["quotation_cost_total"] == "64401.00", "2.3.1: the cost accounting's total"
    assert done["proposal_version"] == 1 and done["proposal_approved"] is True and done["offer_sent_at"]
    assert done["legal_review_round"] == 1 and done["contract_version"] == 2
    assert done["legal_approved"] is True and done["signed_by_firm_at"]
    assert done["intake_outcome"] == "contracted"
    assert done["distributed_to"] == ["business", "delivery", "finance", "legal"]
    assert done["contract_status"] == "signed", "the contract.signed payload reached the instance"
    assert (contract.status, contract.version, contract.legal_review_round) == ("distributed", 2, 2)
    assert contract.breach_liability == "capped, except wilful misconduct"
    assert [(o.clause, o.opinion) for o in contract.legal_reviews[0].opinions] == [
        ("breach_liability", "exclude wilful misconduct")
    ]
    assert [(f.focus, f.verdict, f.opinion) for f in contract.legal_reviews[1].findings] == [
        (focus, "approved", f"{focus} checked") for focus in FOCI
    ], "2.4.2: each focus recorded with its verdict and opinion"
    assert not contract.legal_reviews[0].findings, "a review without the foci is still recorded"
    assert contract.client_name == "Shenzhen Lighting Co."
    assert [p.name for p in contract.client_contacts] == ["Ms Chen"]

    assert "submit_caught" in [e.element_id for e in caught.history]
    assert json.loads(caught.variables_json)["missing_clauses"] == ["confidentiality", "breach_liability"]
    assert (expired["intake_outcome"], expired["decline_reason"]) == ("declined", "offer_expired")

    assert (reopened.status, reopened.version) == ("draft", 2), "2.4.3 → 2.4.1"
    assert not reopened.HasField("firm_signature"), "the firm's signature on the refused version is void"
    assert renegotiated["contract_version"] == 3, "the reopened contract is negotiated as its next version"
    assert (after_refusal.status, after_refusal.version) == ("draft", 3)

    db = Database(database_url)
    with db.read() as session:
        assert session.scalar(select(func.count()).select_from(orm.Quotation)) == 4, "redelivery acted once"
        costs = session.scalars(select(orm.QuotationCost).order_by(orm.QuotationCost.category)).all()
        assert len(costs) == 4 * 4, "2.3.1: each quotation keeps its cost per category"
        assert {(c.category, str(c.amount)) for c in costs} == {
            ("consulting_fee", "52000.00"),
            ("travel", "12401.00"),
            ("accommodation", "0"),
            ("other", "0"),
        }
    db.dispose()
    wait_for_types(
        nats_url,
        [
            "contracts.quotation.accepted",
            "contracts.quotation.accepted",
            "contracts.quotation.expired",
            "contracts.contract.signed",
            "contracts.contract.distributed",
            "orchestrator.instance.completed",
            "orchestrator.instance.completed",
            "orchestrator.instance.completed",
        ],
    )


def _redeliver_a_job(system: InProcessSystem, nats_url: str, subject: str) -> None:
    """Publishes a job the worker already handled again (as after a crash before the ack)."""
    orchestrator_db = Database(system.components["orchestrator"].settings.database_url)
    with orchestrator_db.read() as session:
        row = session.execute(select(outbox.c.payload).where(outbox.c.subject == subject).limit(1)).one()
    orchestrator_db.dispose()

    async def redeliver() -> None:
        nc = await nats.connect(nats_url)
        await nc.jetstream().publish(subject, row.payload, headers={"Nats-Msg-Id": "redelivery-contracts"})
        await nc.close()

    asyncio.run(redeliver())
    wait_consumed(nats_url, "worker-contracts")


# --- the handler contract, against real databases ---------------------------------------------------


class _Directory:
    """crm as a fixed answer (the real gRPC path is tested above and in test_contracts_api)."""

    def client(self, client_id: str) -> ClientInfo:
        return ClientInfo(
            client_id, "ACME", "lighting", (ContactInfo("Li Lei", "li@acme.example", "", "CEO"),)
        )


HANDLERS = operations.bind(Dependencies(crm=_Directory()))
ENGAGEMENT = "E-20"


@pytest.fixture
def contracts(tmp_path: Path, nats_url: str, database_url: str) -> Iterator[ComponentThread]:
    """The contracts service on the database under test: jobs run in its units of work (`helpers.run`)."""
    with running("contracts", build, tmp_path / "contracts", nats_url, database_url) as thread:
        yield thread


def _twice(contracts: ComponentThread, operation: str, key: str, **parameters: Any) -> Mapping[str, Any]:
    """Runs a job, then delivers it again: the second delivery answers the same and publishes nothing."""
    delivered = job(operation, key, business_key=ENGAGEMENT, **parameters)
    first = completed(run(contracts, HANDLERS, delivered))
    events = _count(contracts, outbox)
    again = run(contracts, HANDLERS, delivered)
    assert (again.kind, again.replayed, dict(again.variables)) == ("completed", True, dict(first))
    assert _count(contracts, outbox) == events
    return first


def _count(contracts: ComponentThread, table: Any) -> int:
    assert contracts.context is not None
    with contracts.context.read() as session:
        return int(session.scalar(select(func.count()).select_from(table)) or 0)


QUOTATION = {k: START[k] for k in ("consulting_fee", "travel_cost", "currency", "tax_rate", "validity_days")}
PROPOSAL = {
    k: START[k]
    for k in ("project_manager", "team_members", "goals", "scope", "methods", "schedule", "expected_results")
}


def _accepted(contracts: ComponentThread) -> dict[str, Any]:
    quotation = _twice(contracts, "contracts.prepare_quotation", "q", client_id="c-1", **QUOTATION)
    assert quotation["quotation_total"] == "87345.06"  # (70000.00 + 12401.00) × 1.06
    proposal = _twice(
        contracts, "contracts.draft_proposal", "p", quotation_id=quotation["quotation_id"], **PROPOSAL
    )
    assert _twice(
        contracts,
        "contracts.record_proposal_review",
        "r",
        proposal_id=proposal["proposal_id"],
        proposal_verdict="approved",
    ) == {"proposal_approved": True}
    ids = {"quotation_id": quotation["quotation_id"], "proposal_id": proposal["proposal_id"]}
    _twice(contracts, "contracts.send_offer", "s", **ids)
    assert contracts.context is not None
    with contracts.context.uow() as uow:
        row = uow.session.get(orm.Quotation, quotation["quotation_id"])
        assert row is not None
        row.status = "accepted"  # the client's answer arrives by RPC (tested elsewhere)
        uow.commit()
    return ids


def test_a_redelivered_job_creates_nothing_twice(contracts: ComponentThread) -> None:
    ids = _accepted(contracts)
    clauses = {
        k: START[k]
        for k in (
            "service_content",
            "service_start",
            "service_end",
            "payment_terms",
            "confidentiality",
            "breach_liability",
        )
    }
    contract = _twice(contracts, "contracts.draft_contract", "d", client_id="c-1", **ids, **clauses)
    assert contract["contract_version"] == 1
    contract_id = contract["contract_id"]
    assert _twice(contracts, "contracts.submit_for_legal_review", "l", contract_id=contract_id) == {
        "legal_review_round": 1
    }
    assert _twice(
        contracts, "contracts.record_legal_review", "v", contract_id=contract_id, legal_verdict="approved"
    ) == {"legal_approved": True}
    signed = _twice(
        contracts,
        "contracts.sign_contract",
        "g",
        contract_id=contract_id,
        signatory="Zhang San",
        signatory_title="legal representative",
    )
    assert signed["signed_by_firm_at"]
    for table, rows in (
        (orm.Quotation, 1),
        (orm.QuotationLine, 2),
        (orm.Proposal, 1),
        (orm.ProposalVersion, 1),
        (orm.ProposalReview, 1),
        (orm.Contract, 1),
        (orm.ContractVersion, 1),
        (orm.NegotiationRound, 1),
        (orm.LegalReview, 1),
    ):
        assert _count(contracts, table) == rows, table.__tablename__
    early = refused_job(contracts, HANDLERS, "contracts.distribute_contract", {"contract_id": contract_id})
    assert "both parties signed" in early


def test_an_incomplete_draft_is_the_bpmn_error_contract_incomplete(contracts: ComponentThread) -> None:
    ids = _accepted(contracts)
    draft = completed(
        run(
            contracts,
            HANDLERS,
            job("contracts.draft_contract", "d", client_id="c-1", **ids, service_content="advice"),
        )
    )
    submit = job("contracts.submit_for_legal_review", "l", contract_id=draft["contract_id"])
    outcome = run(contracts, HANDLERS, submit)
    assert (outcome.kind, outcome.error_code) == ("error", "contract_incomplete")
    assert outcome.message.startswith("2.4.2: legal review needs every required clause")
    assert outcome.variables == {
        "missing_clauses": ["service_period", "payment_terms", "confidentiality", "breach_liability"]
    }
    replay = run(contracts, HANDLERS, submit)
    assert (replay.kind, replay.error_code, replay.replayed) == ("error", "contract_incomplete", True)
    sign = refused_job(
        contracts,
        HANDLERS,
        "contracts.sign_contract",
        {"contract_id": draft["contract_id"], "signatory": "Z", "signatory_title": "T"},
    )
    assert "2.4.3: a contract is signed only after the legal department approved it" in sign


def test_refused_jobs_name_the_input(contracts: ComponentThread) -> None:
    quotation = "contracts.prepare_quotation"
    as_float = refused_job(
        contracts, HANDLERS, quotation, {"client_id": "c", **QUOTATION, "consulting_fee": 70000.5}
    )
    assert "consulting_fee: must be an amount string" in as_float
    negative = refused_job(
        contracts, HANDLERS, quotation, {"client_id": "c", **QUOTATION, "travel_cost": "-5"}
    )
    assert "travel_cost: must not be negative" in negative
    missing = refused_job(contracts, HANDLERS, quotation, {"client_id": "c", "currency": "CNY"})
    assert "consulting_fee" in missing
    unsent = refused_job(contracts, HANDLERS, "contracts.expire_quotation", {"quotation_id": "nope"})
    assert "NotFound" in unsent
    assert _count(contracts, orm.Quotation) == 0


def test_crm_unavailable_fails_the_job_with_retries_left(contracts: ComponentThread) -> None:
    ids = _accepted(contracts)
    channel = signed_channel(closed_address())
    unreachable = operations.bind(Dependencies(crm=CrmClients(lambda: channel, timeout=0.3)))
    draft = job("contracts.draft_contract", "d", client_id="c-1", **ids, service_content="advice")
    try:
        outcome = run(contracts, unreachable, draft)
    finally:
        channel.close()
    assert outcome.kind == "failed" and outcome.retries == 2, "retried later, not an incident at once"
    assert outcome.message.startswith("Unavailable: crm is unavailable"), outcome.message
    assert _count(contracts, orm.Contract) == 0
    retried = completed(run(contracts, HANDLERS, draft))
    assert retried["contract_version"] == 1, "the retry (crm back) does the work"
