"""Running crm and contracts together in-process, and the requests a typical intake makes."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import grpc

from consultflow.api.contracts.v1 import contracts_pb2 as pb
from consultflow.api.contracts.v1 import contracts_pb2_grpc as pb_grpc
from consultflow.api.crm.v1 import crm_pb2, crm_pb2_grpc
from consultflow.contracts.app import build as build_contracts
from consultflow.crm.app import build as build_crm
from tests.support.components import running


@dataclass
class Services:
    contracts: pb_grpc.ContractsServiceStub
    crm: crm_pb2_grpc.CrmServiceStub


@contextmanager
def crm_and_contracts(
    tmp_path: Path,
    nats_url: str,
    contracts_database_url: str,
    crm_address: str = "",
    crm_timeout: float = 5.0,
) -> Iterator[Services]:
    """contracts on the database under test, with a real crm beside it (on its own SQLite database)
    unless `crm_address` points contracts elsewhere."""
    with ExitStack() as stack:
        if not crm_address:
            crm = stack.enter_context(
                running("crm", build_crm, tmp_path / "crm", nats_url, f"sqlite:///{tmp_path / 'crm.db'}")
            )
            crm_address = crm.address
        contracts = stack.enter_context(
            running(
                "contracts",
                partial(build_contracts, crm_timeout=crm_timeout),
                tmp_path / "contracts",
                nats_url,
                contracts_database_url,
                others={"crm": crm_address},
            )
        )
        contracts_channel = grpc.insecure_channel(contracts.address)
        crm_channel = grpc.insecure_channel(crm_address)
        stack.callback(contracts_channel.close)
        stack.callback(crm_channel.close)
        yield Services(
            pb_grpc.ContractsServiceStub(contracts_channel), crm_pb2_grpc.CrmServiceStub(crm_channel)
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


def proposal_request(
    engagement_id: str, quotation_id: str, revision_note: str = ""
) -> pb.DraftProposalRequest:
    return pb.DraftProposalRequest(
        engagement_id=engagement_id,
        quotation_id=quotation_id,
        goals="an EU distributor within a year",
        scope="market analysis for DE, FR, NL; distributor shortlist",
        methods="desk research, interviews, site visits",
        schedule=[
            pb.Milestone(name="final report", due_date="2025-09-30"),
            pb.Milestone(name="market analysis", due_date="2025-06-30"),
        ],
        expected_results=["market entry strategy", "distributor shortlist"],
        project_manager="Li Si",
        team_members=["Wang Wu", "Zhao Liu"],
        revision_note=revision_note,
    )


COMPLETE_CLAUSES = pb.Clauses(
    service_content="market entry consulting as in the proposal",
    service_start="2025-04-01",
    service_end="2025-09-30",
    payment_terms=[
        pb.Instalment(percent="30", due="on signing"),
        pb.Instalment(percent="40", due="at the market analysis"),
        pb.Instalment(percent="30", due="on acceptance"),
    ],
    confidentiality="neither party discloses the other's information for five years",
    breach_liability="damages capped at the contract value",
)


def accepted_offer(
    services: Services, engagement_id: str, client_id: str
) -> tuple[pb.Quotation, pb.Proposal]:
    """A quotation the client accepted, with its approved proposal."""
    contracts = services.contracts
    quotation = contracts.PrepareQuotation(quotation_request(engagement_id, client_id))
    proposal = contracts.DraftProposal(proposal_request(engagement_id, quotation.quotation_id))
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
