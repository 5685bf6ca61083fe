"""Running crm and contracts together in-process, the requests a typical intake makes, and contracts made
through their gRPC APIs the way a client of the firm gets one (`signed_contract`, `contract_in_state`)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from consultflow.api.contracts.v1 import contracts_pb2 as pb
from consultflow.api.contracts.v1 import contracts_pb2_grpc as pb_grpc
from consultflow.api.crm.v1 import crm_pb2, crm_pb2_grpc
from consultflow.contracts.app import build as build_contracts
from consultflow.crm.app import build as build_crm
from tests.support.components import running
from tests.support.identity import signed_channel


@dataclass
class Services:
    contracts: pb_grpc.ContractsServiceStub
    crm: crm_pb2_grpc.CrmServiceStub
    contracts_address: str = ""
    crm_address: str = ""


@contextmanager
def crm_and_contracts(
    tmp_path: Path,
    nats_url: str,
    contracts_database_url: str,
    crm_address: str = "",
    call_timeout: float = 5.0,
) -> Iterator[Services]:
    """contracts on the database under test, with a real crm beside it (on its own SQLite database)
    unless `crm_address` points contracts elsewhere; `call_timeout` is the deadline of contracts' calls
    to crm (`contracts.app.build`)."""
    with ExitStack() as stack:
        if not crm_address:
            crm = stack.enter_context(
                running("crm", build_crm, tmp_path / "crm", nats_url, f"sqlite:///{tmp_path / 'crm.db'}")
            )
            crm_address = crm.address
        contracts = stack.enter_context(
            running(
                "contracts",
                partial(build_contracts, call_timeout=call_timeout),
                tmp_path / "contracts",
                nats_url,
                contracts_database_url,
                others={"crm": crm_address},
            )
        )
        contracts_channel = signed_channel(contracts.address)
        crm_channel = signed_channel(crm_address)
        stack.callback(contracts_channel.close)
        stack.callback(crm_channel.close)
        yield Services(
            pb_grpc.ContractsServiceStub(contracts_channel),
            crm_pb2_grpc.CrmServiceStub(crm_channel),
            contracts.address,
            crm_address,
        )


def new_client(crm: crm_pb2_grpc.CrmServiceStub, name: str = "Shenzhen Lighting Co.") -> crm_pb2.Client:
    client = crm.CreateClient(crm_pb2.CreateClientRequest(name=name, industry="lighting"))
    crm.AddContact(
        crm_pb2.AddContactRequest(
            client_id=client.client_id, name="Ms Chen", email="chen@example.cn", role="CFO"
        )
    )
    return crm.GetClient(crm_pb2.GetClientRequest(client_id=client.client_id))


def quotation_request(engagement_id: str, client_id: str) -> pb.PrepareQuotationRequest:
    return pb.PrepareQuotationRequest(
        engagement_id=engagement_id,
        client_id=client_id,
        currency="CNY",
        tax_rate="0.06",
        validity_days=30,
        lines=[
            pb.LineItemInput(
                category="consulting_fee", description="consultant days", quantity="20", unit_price="3500.00"
            ),
            pb.LineItemInput(
                category="travel", description="Shenzhen–Frankfurt", quantity="2", unit_price="6200.50"
            ),
            pb.LineItemInput(
                category="accommodation", description="hotel nights", quantity="12", unit_price="899.99"
            ),
        ],
    )


@dataclass(frozen=True)
class ContractTerms:
    """What an engagement's proposal and contract settle that later stages read back: the proposal's
    scope, schedule (milestones, in any order) and expected results (the contract's deliverables), and
    the contract's service content and period. The defaults are the intake tests' engagement."""

    scope: str = "market analysis for DE, FR, NL; distributor shortlist"
    milestones: tuple[tuple[str, str], ...] = (
        ("final report", "2025-09-30"),
        ("market analysis", "2025-06-30"),
    )
    expected_results: tuple[str, ...] = ("market entry strategy", "distributor shortlist")
    service_content: str = "market entry consulting as in the proposal"
    service_start: str = "2025-04-01"
    service_end: str = "2025-09-30"

    def clauses(self) -> pb.Clauses:
        """Every clause legal review needs (2.4.1): this content and period, standard terms besides."""
        return pb.Clauses(
            service_content=self.service_content,
            service_start=self.service_start,
            service_end=self.service_end,
            payment_terms=[
                pb.Instalment(percent="30", due="on signing"),
                pb.Instalment(percent="40", due="at the market analysis"),
                pb.Instalment(percent="30", due="on acceptance"),
            ],
            confidentiality="neither party discloses the other's information for five years",
            breach_liability="damages capped at the contract value",
        )


INTAKE_TERMS = ContractTerms()
COMPLETE_CLAUSES = INTAKE_TERMS.clauses()


def proposal_request(
    engagement_id: str, quotation_id: str, revision_note: str = "", terms: ContractTerms = INTAKE_TERMS
) -> pb.DraftProposalRequest:
    return pb.DraftProposalRequest(
        engagement_id=engagement_id,
        quotation_id=quotation_id,
        goals="an EU distributor within a year",
        scope=terms.scope,
        methods="desk research, interviews, site visits",
        schedule=[pb.Milestone(name=name, due_date=due) for name, due in terms.milestones],
        expected_results=terms.expected_results,
        project_manager="Li Si",
        team_members=["Wang Wu", "Zhao Liu"],
        revision_note=revision_note,
    )


def accepted_offer(
    services: Services, engagement_id: str, client_id: str, terms: ContractTerms = INTAKE_TERMS
) -> tuple[pb.Quotation, pb.Proposal]:
    """A quotation the client accepted, with its approved proposal."""
    contracts = services.contracts
    quotation = contracts.PrepareQuotation(quotation_request(engagement_id, client_id))
    proposal = contracts.DraftProposal(proposal_request(engagement_id, quotation.quotation_id, terms=terms))
    proposal = contracts.ReviewProposal(
        pb.ReviewProposalRequest(
            proposal_id=proposal.proposal_id, verdict="approved", reviewer="expert panel"
        )
    )
    contracts.SendOffer(
        pb.SendOfferRequest(quotation_id=quotation.quotation_id, proposal_id=proposal.proposal_id)
    )
    quotation = contracts.AcceptQuotation(
        pb.AnswerQuotationRequest(quotation_id=quotation.quotation_id, answered_by="Ms Chen")
    )
    return quotation, proposal


CONTRACT_STATES = ("draft", "in_legal_review", "approved", "signed_by_firm", "signed", "distributed")
"""The states a contract passes on its way to both signatures and distribution, in order (2.4)."""


def signed_contract(
    services: Services, engagement_id: str, terms: ContractTerms = INTAKE_TERMS
) -> pb.Contract:
    """A contract of `engagement_id` that the firm and the client signed (status `signed`), made through
    the crm and contracts APIs as `contract_in_state` describes."""
    return contract_in_state(services, engagement_id, "signed", terms)


def contract_in_state(
    services: Services, engagement_id: str, status: str, terms: ContractTerms = INTAKE_TERMS
) -> pb.Contract:
    """A contract of `engagement_id` taken, the way a client and the firm take one, as far as `status`
    (one of CONTRACT_STATES): the client's inquiry in crm (2.1.2); the quotation (2.3.1); the proposal
    with `terms`' scope, milestones and expected results, approved by its review (2.3.2); the offer and
    the client's acceptance; the contract drafted with every clause in one negotiation round (2.4.1);
    legal review and approval (2.4.2); the firm's signature, then the client's (2.4.3); distribution."""
    if status not in CONTRACT_STATES:
        raise ValueError(f"{status!r} is not one of {CONTRACT_STATES}")
    inquiry = services.crm.RecordInquiry(
        crm_pb2.RecordInquiryRequest(
            engagement_id=engagement_id,
            channel=crm_pb2.CHANNEL_EMAIL,
            client_name="Shenzhen Lighting Co.",
            client_industry="lighting",
            contact_name="Ms Chen",
            contact_email="chen@example.cn",
            question="Can you help us enter the European market?",
        )
    )
    quotation, proposal = accepted_offer(services, engagement_id, inquiry.client_id, terms)
    contracts = services.contracts
    contract = contracts.DraftContract(
        pb.DraftContractRequest(
            engagement_id=engagement_id,
            client_id=inquiry.client_id,
            quotation_id=quotation.quotation_id,
            proposal_id=proposal.proposal_id,
            clauses=terms.clauses(),
            negotiation_notes="terms agreed in one meeting",
        )
    )
    contract_id = contract.contract_id
    next_steps: list[Callable[[], pb.Contract]] = [
        lambda: contracts.SubmitForLegalReview(pb.SubmitForLegalReviewRequest(contract_id=contract_id)),
        lambda: contracts.RecordLegalReview(
            pb.RecordLegalReviewRequest(contract_id=contract_id, verdict="approved", reviewer="legal: Sun Qi")
        ),
        lambda: contracts.SignContract(
            pb.SignContractRequest(
                contract_id=contract_id, signatory="Zhang San", signatory_title="legal representative"
            )
        ),
        lambda: contracts.RecordClientSignature(
            pb.RecordClientSignatureRequest(
                contract_id=contract_id, signatory="Ms Chen", signatory_title="CFO"
            )
        ),
        lambda: contracts.DistributeContract(pb.DistributeContractRequest(contract_id=contract_id)),
    ]
    for step in next_steps:
        if contract.status == status:
            break
        contract = step()
    assert contract.status == status, f"the contract is {contract.status}, not {status}"
    return contract
