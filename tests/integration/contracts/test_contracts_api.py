"""Every ContractsService RPC against a real database (SQLite, PostgreSQL), real NATS, and a real crm
over gRPC (including crm being unreachable)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import grpc
import pytest
from sqlalchemy import event
from sqlalchemy.orm import Session

from consultflow.api.contracts.v1 import contracts_pb2 as pb
from consultflow.api.contracts.v1 import contracts_pb2_grpc as pb_grpc
from consultflow.contracts import usecases
from consultflow.platform.db import Database
from tests.support.components import closed_address
from tests.support.contracts import (
    COMPLETE_CLAUSES,
    CONTRACT_STATES,
    ContractTerms,
    Services,
    accepted_offer,
    contract_in_state,
    crm_and_contracts,
    new_client,
    proposal_request,
    quotation_request,
    signed_contract,
)
from tests.support.identity import signed_channel
from tests.support.rpc import rpc_code
from tests.support.status import payload, read_status, wait_for_types

INVALID = grpc.StatusCode.INVALID_ARGUMENT
NOT_FOUND = grpc.StatusCode.NOT_FOUND
PRECONDITION = grpc.StatusCode.FAILED_PRECONDITION


@pytest.fixture
def services(tmp_path: Path, nats_url: str, database_url: str) -> Iterator[Services]:
    with crm_and_contracts(tmp_path, nats_url, database_url) as running:
        yield running


def test_quotations_and_proposals(services: Services, nats_url: str) -> None:
    contracts = services.contracts
    client = new_client(services.crm)
    quotation = contracts.PrepareQuotation(quotation_request("E-1", client.client_id))
    assert (quotation.status, quotation.version, quotation.currency) == ("draft", 1, "CNY")
    assert [(line.category, line.amount) for line in quotation.lines] == [
        ("consulting_fee", "70000.00"),
        ("travel", "12401.00"),
        ("accommodation", "10799.88"),
    ]
    assert (quotation.subtotal, quotation.tax, quotation.total) == ("93200.88", "5592.05", "98792.93")
    assert quotation.valid_until and quotation.validity_days == 30

    for broken, field in [
        (dict(unit_price="12.345"), "lines[0].unit_price"),
        (dict(unit_price="-1"), "lines[0].unit_price"),
        (dict(unit_price="1.2e3"), "lines[0].unit_price"),
        (dict(category="bribes"), "lines[0].category"),
        (dict(category="travel"), "consulting_fee"),
    ]:
        request = quotation_request("E-1", client.client_id)
        for key, value in broken.items():
            setattr(request.lines[0], key, value)
        code, details = rpc_code(lambda request=request: contracts.PrepareQuotation(request))  # type: ignore[misc]
        assert (code, details.split(":")[0]) == (INVALID, field), details
    no_currency = quotation_request("E-1", client.client_id)
    no_currency.currency = "yuan"
    assert rpc_code(lambda: contracts.PrepareQuotation(no_currency))[1].startswith("currency:")
    percent = quotation_request("E-1", client.client_id)
    percent.tax_rate = "6"
    assert rpc_code(lambda: contracts.PrepareQuotation(percent))[1].startswith("tax_rate:")

    revision = pb.ReviseQuotationRequest(
        quotation_id=quotation.quotation_id,
        currency="CNY",
        tax_rate="0.06",
        validity_days=45,
        lines=[pb.LineItemInput(category="consulting_fee", quantity="18", unit_price="3500")],
        note="fewer consultant days",
    )
    revised = contracts.ReviseQuotation(revision)
    assert (revised.version, revised.total, revised.tax) == (2, "66780.00", "3780.00")
    assert [(v.version, v.total) for v in revised.versions] == [(1, "98792.93"), (2, "66780.00")]

    proposal = contracts.DraftProposal(proposal_request("E-1", quotation.quotation_id))
    assert (proposal.status, proposal.version) == ("draft", 1)
    assert [m.name for m in proposal.current.schedule] == ["market analysis", "final report"]
    no_pm = proposal_request("E-1", quotation.quotation_id)
    no_pm.project_manager = ""
    assert rpc_code(lambda: contracts.DraftProposal(no_pm))[1].startswith("project_manager:")
    unknown = proposal_request("E-1", "nope")
    assert rpc_code(lambda: contracts.DraftProposal(unknown))[0] == NOT_FOUND

    send = pb.SendOfferRequest(quotation_id=quotation.quotation_id, proposal_id=proposal.proposal_id)
    code, details = rpc_code(lambda: contracts.SendOffer(send))
    assert code == PRECONDITION and details.startswith("2.3.2")
    silent = pb.ReviewProposalRequest(proposal_id=proposal.proposal_id, verdict="revise")
    assert rpc_code(lambda: contracts.ReviewProposal(silent))[1].startswith("review_comments:")
    revise = pb.ReviewProposalRequest(
        proposal_id=proposal.proposal_id,
        verdict="revise",
        comments="add a German site visit",
        reviewer="Dr Qian",
    )
    assert contracts.ReviewProposal(revise).status == "revising"
    assert rpc_code(lambda: contracts.ReviewProposal(revise))[0] == PRECONDITION
    second = contracts.DraftProposal(proposal_request("E-1", quotation.quotation_id, "site visit added"))
    assert (second.proposal_id, second.version, second.status) == (proposal.proposal_id, 2, "draft")
    approved = contracts.ReviewProposal(
        pb.ReviewProposalRequest(proposal_id=proposal.proposal_id, verdict="approved", reviewer="Dr Qian")
    )
    assert approved.status == "approved" and [r.verdict for r in approved.reviews] == ["revise", "approved"]
    assert [r.version for r in approved.reviews] == [1, 2]
    assert (
        rpc_code(lambda: contracts.DraftProposal(proposal_request("E-1", quotation.quotation_id)))[0]
        == PRECONDITION
    )
    assert contracts.GetProposal(pb.GetProposalRequest(proposal_id=proposal.proposal_id)) == approved

    sent = contracts.SendOffer(send)
    assert (sent.status, sent.proposal_id) == ("sent", proposal.proposal_id) and sent.HasField("sent_at")
    assert rpc_code(lambda: contracts.SendOffer(send))[0] == PRECONDITION
    answer = pb.AnswerQuotationRequest(quotation_id=quotation.quotation_id, answered_by="Ms Chen")
    accepted = contracts.AcceptQuotation(answer)
    assert accepted.status == "accepted" and accepted.answered_by == "Ms Chen"
    assert contracts.AcceptQuotation(answer) == accepted, "a repeated answer changes nothing"
    assert rpc_code(lambda: contracts.RejectQuotation(answer))[0] == PRECONDITION
    expire = pb.ExpireQuotationRequest(quotation_id=quotation.quotation_id)
    assert rpc_code(lambda: contracts.ExpireQuotation(expire))[0] == PRECONDITION
    assert rpc_code(lambda: contracts.ReviseQuotation(revision))[1].startswith("2.3.1")

    listed = contracts.ListQuotations(pb.ListQuotationsRequest(engagement_id="E-1", status="accepted"))
    assert [q.quotation_id for q in listed.quotations] == [quotation.quotation_id]
    assert rpc_code(lambda: contracts.ListQuotations(pb.ListQuotationsRequest(status="won")))[0] == INVALID
    assert rpc_code(lambda: contracts.GetQuotation(pb.GetQuotationRequest(quotation_id="x")))[0] == NOT_FOUND

    events = wait_for_types(
        nats_url,
        [
            "contracts.quotation.prepared",
            "contracts.quotation.revised",
            "contracts.proposal.drafted",
            "contracts.proposal.revision_requested",
            "contracts.proposal.revised",
            "contracts.proposal.approved",
            "contracts.quotation.sent",
            "contracts.quotation.accepted",
        ],
    )
    accepted_events = [e for e in events if e.type == "quotation.accepted"]
    assert len(accepted_events) == 1, "accepting twice published once"
    assert accepted_events[0].correlation["engagement_id"] == "E-1"
    assert payload(accepted_events[0])["quotation_total"] == "66780.00"
    assert {e.correlation["engagement_id"] for e in events if e.source == "contracts"} == {"E-1"}


def test_rejected_and_expired_offers(services: Services, nats_url: str) -> None:
    contracts = services.contracts
    client = new_client(services.crm)
    outcomes = []
    for engagement, answer in (("E-2", "reject"), ("E-3", "expire")):
        quotation = contracts.PrepareQuotation(quotation_request(engagement, client.client_id))
        proposal = contracts.DraftProposal(proposal_request(engagement, quotation.quotation_id))
        contracts.ReviewProposal(
            pb.ReviewProposalRequest(proposal_id=proposal.proposal_id, verdict="approved")
        )
        contracts.SendOffer(
            pb.SendOfferRequest(quotation_id=quotation.quotation_id, proposal_id=proposal.proposal_id)
        )
        if answer == "reject":
            done = contracts.RejectQuotation(
                pb.AnswerQuotationRequest(quotation_id=quotation.quotation_id, note="too expensive")
            )
        else:
            done = contracts.ExpireQuotation(pb.ExpireQuotationRequest(quotation_id=quotation.quotation_id))
        outcomes.append(done.status)
        late = pb.AnswerQuotationRequest(quotation_id=quotation.quotation_id)
        if answer == "expire":
            code, details = rpc_code(lambda late=late: contracts.AcceptQuotation(late))  # type: ignore[misc]
            assert code == PRECONDITION and "expired" in details
    assert outcomes == ["rejected", "expired"]
    events = wait_for_types(nats_url, ["contracts.quotation.rejected", "contracts.quotation.expired"])
    rejected = next(e for e in events if e.type == "quotation.rejected")
    assert (
        rejected.correlation["engagement_id"] == "E-2" and payload(rejected)["answer_note"] == "too expensive"
    )


def test_a_contract_from_negotiation_to_distribution(services: Services, nats_url: str) -> None:
    contracts = services.contracts
    client = new_client(services.crm)
    quotation, proposal = accepted_offer(services, "E-5", client.client_id)
    draft = contracts.DraftContract(
        pb.DraftContractRequest(
            engagement_id="E-5",
            client_id=client.client_id,
            quotation_id=quotation.quotation_id,
            proposal_id=proposal.proposal_id,
            clauses=pb.Clauses(service_content="market entry consulting"),
            negotiation_notes="first meeting: scope agreed",
        )
    )
    assert (draft.status, draft.version, draft.contract_value, draft.currency) == (
        "draft",
        1,
        "98792.93",
        "CNY",
    )
    assert draft.client_name == "Shenzhen Lighting Co."
    assert [(p.name, p.email, p.role) for p in draft.client_contacts] == [
        ("Ms Chen", "chen@example.cn", "CFO")
    ]
    assert list(draft.missing_clauses) == [
        "service_period",
        "payment_terms",
        "confidentiality",
        "breach_liability",
    ]
    assert (draft.scope, [m.name for m in draft.milestones]) == (
        proposal.current.scope,
        ["market analysis", "final report"],
    )
    assert list(draft.deliverables) == ["market entry strategy", "distributor shortlist"]

    submit = pb.SubmitForLegalReviewRequest(contract_id=draft.contract_id)
    code, details = rpc_code(lambda: contracts.SubmitForLegalReview(submit))
    assert code == PRECONDITION
    assert details == (
        "2.4.2: legal review needs every required clause (2.4.1); the draft lacks service_period, "
        "payment_terms, confidentiality, breach_liability"
    )
    sign = pb.SignContractRequest(
        contract_id=draft.contract_id, signatory="Zhang San", signatory_title="legal representative"
    )
    code, details = rpc_code(lambda: contracts.SignContract(sign))
    assert code == PRECONDITION and "only after the legal department approved it" in details
    client_sign = pb.RecordClientSignatureRequest(
        contract_id=draft.contract_id, signatory="Ms Chen", signatory_title="CFO"
    )
    assert rpc_code(lambda: contracts.RecordClientSignature(client_sign))[0] == PRECONDITION

    bad_terms = pb.DraftContractRequest(
        engagement_id="E-5",
        client_id=client.client_id,
        quotation_id=quotation.quotation_id,
        proposal_id=proposal.proposal_id,
        clauses=pb.Clauses(
            payment_terms=[pb.Instalment(percent="30", due="now"), pb.Instalment(percent="60", due="later")]
        ),
    )
    code, details = rpc_code(lambda: contracts.DraftContract(bad_terms))
    assert code == INVALID and details == "payment_terms: the instalments add up to 90%, not 100%"
    round_two = pb.DraftContractRequest(
        engagement_id="E-5",
        client_id=client.client_id,
        quotation_id=quotation.quotation_id,
        proposal_id=proposal.proposal_id,
        clauses=COMPLETE_CLAUSES,
        negotiation_notes="second meeting: terms agreed",
    )
    negotiated = contracts.DraftContract(round_two)
    assert (negotiated.contract_id, negotiated.version) == (draft.contract_id, 2)
    assert not negotiated.missing_clauses
    assert [(r.round, r.version) for r in negotiated.negotiation_rounds] == [(1, 1), (2, 2)]
    assert [(i.percent, i.amount) for i in negotiated.instalments] == [
        ("30", "29637.88"),
        ("40", "39517.17"),
        ("30", "29637.88"),
    ]
    assert negotiated.payment_terms == "30% on signing\n40% at the market analysis\n30% on acceptance"

    in_review = contracts.SubmitForLegalReview(submit)
    assert (in_review.status, in_review.legal_review_round) == ("in_legal_review", 1)
    assert contracts.SubmitForLegalReview(submit) == in_review, "submitting again answers the current round"
    assert rpc_code(lambda: contracts.DraftContract(round_two))[0] == PRECONDITION
    silent = pb.RecordLegalReviewRequest(contract_id=draft.contract_id, verdict="revise")
    assert rpc_code(lambda: contracts.RecordLegalReview(silent))[1].startswith("legal_opinions:")
    bad_clause = pb.RecordLegalReviewRequest(
        contract_id=draft.contract_id,
        verdict="revise",
        opinions=[pb.LegalOpinion(clause="price", opinion="x")],
    )
    assert rpc_code(lambda: contracts.RecordLegalReview(bad_clause))[1].startswith("opinions[0].clause:")
    revising = contracts.RecordLegalReview(
        pb.RecordLegalReviewRequest(
            contract_id=draft.contract_id,
            verdict="revise",
            reviewer="legal: Sun Qi",
            opinions=[
                pb.LegalOpinion(clause="breach_liability", opinion="cap must exclude wilful misconduct"),
                pb.LegalOpinion(opinion="otherwise sound"),
            ],
        )
    )
    assert revising.status == "revising"
    assert [(o.clause, o.opinion) for o in revising.legal_reviews[0].opinions] == [
        ("breach_liability", "cap must exclude wilful misconduct"),
        ("general", "otherwise sound"),
    ]
    assert rpc_code(lambda: contracts.SignContract(sign))[0] == PRECONDITION
    assert rpc_code(lambda: contracts.SubmitForLegalReview(submit))[1].startswith("2.4.3: revise")
    no_notes = pb.ReviseContractRequest(contract_id=draft.contract_id)
    assert rpc_code(lambda: contracts.ReviseContract(no_notes))[1].startswith("revision_notes:")
    revised = contracts.ReviseContract(
        pb.ReviseContractRequest(
            contract_id=draft.contract_id,
            revision_notes="cap excludes wilful misconduct",
            clauses=pb.Clauses(
                breach_liability="damages capped at the contract value, except wilful misconduct"
            ),
        )
    )
    assert (revised.status, revised.version, revised.legal_review_round) == ("in_legal_review", 3, 2)
    assert revised.breach_liability.endswith("except wilful misconduct")
    assert revised.confidentiality == COMPLETE_CLAUSES.confidentiality
    approved = contracts.RecordLegalReview(
        pb.RecordLegalReviewRequest(
            contract_id=draft.contract_id, verdict="approved", reviewer="legal: Sun Qi"
        )
    )
    assert approved.status == "approved" and [r.round for r in approved.legal_reviews] == [1, 2]

    by_client = contracts.RecordClientSignature(client_sign)
    assert by_client.status == "signed_by_client" and not by_client.HasField("signed_at")
    no_title = pb.SignContractRequest(contract_id=draft.contract_id, signatory="Zhang San")
    assert rpc_code(lambda: contracts.SignContract(no_title))[1].startswith("signatory_title:")
    signed = contracts.SignContract(sign)
    assert signed.status == "signed" and signed.HasField("signed_at")
    assert (signed.firm_signature.signatory, signed.client_signature.signatory) == ("Zhang San", "Ms Chen")
    assert contracts.RecordClientSignature(client_sign) == signed, "recording it again changes nothing"
    assert rpc_code(lambda: contracts.SignContract(sign))[0] == PRECONDITION

    distributed = contracts.DistributeContract(pb.DistributeContractRequest(contract_id=draft.contract_id))
    assert distributed.status == "distributed"
    assert [d.department for d in distributed.distributions] == ["business", "delivery", "finance", "legal"]
    assert (
        rpc_code(
            lambda: contracts.DistributeContract(pb.DistributeContractRequest(contract_id=draft.contract_id))
        )[0]
        == PRECONDITION
    )
    ack = pb.AcknowledgeDistributionRequest(
        contract_id=draft.contract_id, department="finance", acknowledged_by="Qian Ba"
    )
    acknowledged = contracts.AcknowledgeDistribution(ack)
    finance = next(d for d in acknowledged.distributions if d.department == "finance")
    assert finance.acknowledged_by == "Qian Ba" and finance.HasField("acknowledged_at")
    assert contracts.AcknowledgeDistribution(ack) == acknowledged
    ack.department = "hr"
    assert rpc_code(lambda: contracts.AcknowledgeDistribution(ack))[0] == PRECONDITION

    got = contracts.GetContract(pb.GetContractRequest(contract_id=draft.contract_id))
    assert got == acknowledged and len(got.versions) == 3
    assert rpc_code(lambda: contracts.GetContract(pb.GetContractRequest(contract_id="x")))[0] == NOT_FOUND
    listed = contracts.ListContracts(
        pb.ListContractsRequest(client_id=client.client_id, status="distributed")
    )
    assert [c.contract_id for c in listed.contracts] == [draft.contract_id]

    events = wait_for_types(
        nats_url,
        [
            "contracts.contract.drafted",
            "contracts.contract.negotiated",
            "contracts.contract.submitted",
            "contracts.contract.revision_requested",
            "contracts.contract.revised",
            "contracts.contract.legal_approved",
            "contracts.contract.signed_by_client",
            "contracts.contract.signed_by_firm",
            "contracts.contract.signed",
            "contracts.contract.distributed",
            "contracts.contract.acknowledged",
        ],
    )
    signed_events = [e for e in events if e.type == "contract.signed"]
    assert len(signed_events) == 1 and signed_events[0].correlation["engagement_id"] == "E-5"
    assert payload(signed_events[0])["contract_status"] == "signed"


def test_a_contract_needs_an_accepted_quotation_and_a_known_client(services: Services) -> None:
    contracts = services.contracts
    client = new_client(services.crm)
    quotation = contracts.PrepareQuotation(quotation_request("E-6", client.client_id))
    proposal = contracts.DraftProposal(proposal_request("E-6", quotation.quotation_id))
    request = pb.DraftContractRequest(
        engagement_id="E-6",
        client_id=client.client_id,
        quotation_id=quotation.quotation_id,
        proposal_id=proposal.proposal_id,
        clauses=COMPLETE_CLAUSES,
    )
    code, details = rpc_code(lambda: contracts.DraftContract(request))
    assert code == PRECONDITION and details.startswith("2.4.1")
    request.client_id = "someone-else"
    assert rpc_code(lambda: contracts.DraftContract(request))[0] == NOT_FOUND, "crm does not know the client"

    ghost_quotation, ghost_proposal = accepted_offer(services, "E-7", "ghost-client")
    ghost = pb.DraftContractRequest(
        engagement_id="E-7",
        client_id="ghost-client",
        quotation_id=ghost_quotation.quotation_id,
        proposal_id=ghost_proposal.proposal_id,
    )
    code, details = rpc_code(lambda: contracts.DraftContract(ghost))
    assert code == NOT_FOUND and "ghost-client" in details
    assert rpc_code(lambda: contracts.DraftContract(pb.DraftContractRequest()))[1].startswith("client_id:")


def test_crm_unavailable_is_answered_unavailable(tmp_path: Path, nats_url: str, database_url: str) -> None:
    nobody = closed_address()
    with crm_and_contracts(
        tmp_path, nats_url, database_url, crm_address=nobody, call_timeout=0.5
    ) as services:
        quotation, proposal = accepted_offer(services, "E-8", "client-1")
        request = pb.DraftContractRequest(
            engagement_id="E-8",
            client_id="client-1",
            quotation_id=quotation.quotation_id,
            proposal_id=proposal.proposal_id,
            clauses=COMPLETE_CLAUSES,
        )
        code, details = rpc_code(lambda: services.contracts.DraftContract(request))
        assert code == grpc.StatusCode.UNAVAILABLE
        assert details.startswith("crm is unavailable") and "try again later" in details
        assert services.contracts.ListContracts(pb.ListContractsRequest()).contracts == []
    events = read_status(nats_url, lambda events: False, timeout=1.0)
    assert not [e for e in events if e.type.startswith("contract.")], "nothing half-written"


def test_contracts_made_for_other_tests_follow_the_intake(services: Services) -> None:
    terms = ContractTerms(
        scope="diagnosis; roadmap",
        milestones=(("roadmap", "2026-03-31"), ("diagnosis", "2026-01-31")),
        expected_results=("diagnosis report", "roadmap"),
        service_content="advice",
        service_start="2026-01-01",
        service_end="2026-04-30",
    )
    signed = signed_contract(services, "E-10", terms)
    assert (signed.status, signed.engagement_id, signed.scope) == ("signed", "E-10", "diagnosis; roadmap")
    assert [(m.name, m.due_date) for m in signed.milestones] == [
        ("diagnosis", "2026-01-31"),
        ("roadmap", "2026-03-31"),
    ]
    assert list(signed.deliverables) == ["diagnosis report", "roadmap"]
    assert (signed.service_content, signed.service_start, signed.service_end) == (
        "advice",
        "2026-01-01",
        "2026-04-30",
    )
    assert signed.firm_signature.signatory and signed.client_signature.signatory
    for status in CONTRACT_STATES:
        contract = contract_in_state(services, "E-11", status)
        assert (
            services.contracts.GetContract(pb.GetContractRequest(contract_id=contract.contract_id))
            == contract
        )
        assert contract.status == status


def test_a_list_page_reads_in_a_fixed_number_of_queries(services: Services, database_url: str) -> None:
    """A page of quotations or contracts costs the same few statements whether it shows one or many."""
    for engagement, status in (("E-20", "distributed"), ("E-21", "signed"), ("E-22", "in_legal_review")):
        contract_in_state(services, engagement, status)
    db = Database(database_url)
    statements: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *rest: Any) -> None:
        statements.append(statement)

    event.listen(db.engine, "before_cursor_execute", count)

    def statements_for(read: Callable[[Session], Sequence[object]], shown: int) -> int:
        statements.clear()
        with db.read() as session:
            assert len(read(session)) == shown
        return len(statements)

    try:
        one_contract = statements_for(lambda s: usecases.list_contracts(s, "E-20", "", None, 51, 0), 1)
        every_contract = statements_for(lambda s: usecases.list_contracts(s, "", "", None, 51, 0), 3)
        one_quotation = statements_for(lambda s: usecases.list_quotations(s, "E-20", None, 51, 0), 1)
        every_quotation = statements_for(lambda s: usecases.list_quotations(s, "", None, 51, 0), 3)
    finally:
        db.dispose()
    # the page, then its children: versions, rounds, reviews, opinions, findings, copies, proposals
    # (+ BEGIN on SQLite)
    assert 8 <= every_contract == one_contract <= 9, statements
    assert 3 <= every_quotation == one_quotation <= 4, statements  # the page, versions, current lines
    listed = services.contracts.ListContracts(pb.ListContractsRequest(page_size=2))
    assert [c.engagement_id for c in listed.contracts] == ["E-22", "E-21"] and listed.next_page_token


def test_a_client_answers_only_for_its_own_engagement(services: Services) -> None:
    """The client's token names its engagement: the quote of another engagement is refused and stays sent;
    its own is accepted, and the acceptance is recorded."""
    contracts = services.contracts
    client = new_client(services.crm)
    quotation = contracts.PrepareQuotation(quotation_request("E-9", client.client_id))
    proposal = contracts.DraftProposal(proposal_request("E-9", quotation.quotation_id))
    contracts.ReviewProposal(
        pb.ReviewProposalRequest(proposal_id=proposal.proposal_id, verdict="approved", reviewer="panel")
    )
    contracts.SendOffer(
        pb.SendOfferRequest(quotation_id=quotation.quotation_id, proposal_id=proposal.proposal_id)
    )
    answer = pb.AnswerQuotationRequest(quotation_id=quotation.quotation_id, answered_by="Ms Chen")

    def as_client_of(engagement: str) -> pb_grpc.ContractsServiceStub:
        channel = signed_channel(
            services.contracts_address, f"client-{engagement}", roles=["client"], engagement=engagement
        )
        return pb_grpc.ContractsServiceStub(channel)

    for stranger in (as_client_of("E-8"), as_client_of("")):
        code, details = rpc_code(partial(stranger.AcceptQuotation, answer))
        assert code == grpc.StatusCode.PERMISSION_DENIED and "E-9" in details
    assert (
        contracts.GetQuotation(pb.GetQuotationRequest(quotation_id=quotation.quotation_id)).status == "sent"
    )
    assert as_client_of("E-9").AcceptQuotation(answer).status == "accepted"
