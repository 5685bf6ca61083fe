"""The contracts operations that diagrams call as service tasks (`contracts.<operation>`,
docs/operations.md).

Each handler reads its inputs from the job, builds the same command the gRPC API builds, and runs one use
case in the unit of work `run_job` gives it (which also makes a redelivered job act once). Validation
errors name the job's own variables (`proposal_verdict`, not the API's `verdict`). A crm that cannot be
reached is the platform's `Unavailable`: the job fails with retries left.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from consultflow.contracts import usecases
from consultflow.contracts.adapters import Dependencies
from consultflow.contracts.domain import (
    COST_BASIS,
    Clauses,
    ContractStatus,
    CostAccounting,
    DraftContract,
    LegalFocus,
    ProposalContent,
    ProposalStatus,
    QuotationTerms,
    ReviewVerdict,
    Signatory,
    incomplete_message,
    missing_for_review,
    parse_findings,
    parse_opinions,
)
from consultflow.platform.db import UnitOfWork
from consultflow.platform.errors import BpmnError
from consultflow.platform.inputs import choice, names
from consultflow.platform.jobs import Job, Operations
from consultflow.platform.operation_spec import (
    ENGAGEMENT,
    date,
    decimal,
    error,
    flag,
    integer,
    listing,
    one_of,
    optional,
    text,
)
from consultflow.platform.timeutil import aware

operations = Operations[Dependencies]("contracts")


def _iso(moment: datetime | None) -> str:
    """Outputs are plain JSON values, so a replayed job answers exactly what the first run did."""
    stamp = aware(moment)
    return stamp.isoformat() if stamp else ""


@operations.handler(
    "prepare_quotation",
    clauses=["2.3.1"],
    inputs=[
        ENGAGEMENT,
        text("client_id"),
        decimal("consulting_fee"),
        optional(decimal("travel_cost", "empty or 0: no line")),
        optional(decimal("accommodation_cost", "empty or 0: no line")),
        optional(decimal("other_cost", "empty or 0: no line")),
        *[
            optional(decimal(name, "the firm's own cost of the category (cost accounting)"))
            for name, _ in COST_BASIS
        ],
        text("currency", "an ISO 4217 code"),
        optional(decimal("tax_rate", 'a fraction ("0.06" for 6 %); empty for none')),
        integer("validity_days", "1–365, from today"),
    ],
    outputs=[
        text("quotation_id"),
        text("quotation_status", '"draft"'),
        decimal("quotation_total"),
        date("quotation_valid_until"),
        decimal("quotation_cost_total", '"" without cost accounting'),
    ],
    description="Totals are computed here with exact decimals (floats and negatives are refused). Any cost "
    "basis given needs the consulting cost basis.",
)
def prepare_quotation(uow: UnitOfWork, job: Job, deps: Dependencies) -> Mapping[str, Any]:
    """2.3.1: prepares the quotation, one line per cost category given; totals computed here."""
    terms = QuotationTerms.parse_costs(
        currency=job.get("currency"),
        consulting_fee=job.get("consulting_fee"),
        travel_cost=job.get("travel_cost", None),
        accommodation_cost=job.get("accommodation_cost", None),
        other_cost=job.get("other_cost", None),
        tax_rate=job.get("tax_rate", None),
        validity_days=job.get("validity_days"),
    )
    costs = CostAccounting.parse({name: job.get(name, None) for name, _ in COST_BASIS}, job.get("currency"))
    view = usecases.prepare_quotation(uow, job.engagement_id, job.text("client_id"), terms, costs)
    return {
        "quotation_cost_total": format(costs.total, "f") if costs else "",
        "quotation_id": view.quotation.quotation_id,
        "quotation_status": view.quotation.status,
        "quotation_total": format(view.current.total, "f"),
        "quotation_valid_until": view.quotation.valid_until.isoformat(),
    }


@operations.handler(
    "draft_proposal",
    clauses=["2.3.2"],
    inputs=[
        ENGAGEMENT,
        text("quotation_id"),
        text("project_manager"),
        optional(listing("team_members", "names separated by commas")),
        text("goals"),
        text("scope"),
        text("methods"),
        text("schedule", "one milestone per line with its date (`2025-06-30 market analysis`)"),
        text("expected_results", "one per line"),
        optional(text("revision_note")),
    ],
    outputs=[text("proposal_id"), integer("proposal_version")],
    description="Drafting again for the same quotation is a new version; refused once approved.",
)
def draft_proposal(uow: UnitOfWork, job: Job, deps: Dependencies) -> Mapping[str, Any]:
    """2.3.2: drafts the proposal, or a new version of it after a review asked for a revision."""
    content = ProposalContent.parse(
        goals=job.text("goals"),
        scope=job.text("scope"),
        methods=job.text("methods"),
        schedule=job.get("schedule"),
        expected_results=job.get("expected_results"),
        project_manager=job.text("project_manager"),
        team_members=job.get("team_members", None),
    )
    view = usecases.draft_proposal(
        uow, job.text("quotation_id"), job.engagement_id, content, job.text("revision_note", "")
    )
    return {"proposal_id": view.proposal.proposal_id, "proposal_version": view.proposal.current_version}


@operations.handler(
    "record_proposal_review",
    clauses=["2.3.2"],
    inputs=[
        text("proposal_id"),
        one_of("proposal_verdict", ReviewVerdict),
        optional(text("review_comments", "required to revise")),
        optional(text("reviewer")),
    ],
    outputs=[flag("proposal_approved")],
    description="Reviews the current version only once.",
)
def record_proposal_review(uow: UnitOfWork, job: Job, deps: Dependencies) -> Mapping[str, Any]:
    """2.3.2: records the internal review's verdict on the proposal."""
    verdict = choice("proposal_verdict", job.get("proposal_verdict"), ReviewVerdict)
    view = usecases.review_proposal(
        uow,
        job.text("proposal_id"),
        verdict,
        job.text("review_comments", ""),
        job.text("reviewer", ""),
    )
    return {"proposal_approved": view.proposal.status == ProposalStatus.APPROVED.value}


@operations.handler(
    "send_offer",
    clauses=["2.3.1", "2.3.2"],
    inputs=[ENGAGEMENT, text("quotation_id"), text("proposal_id")],
    outputs=[date("offer_sent_at", "a timestamp")],
    description="Quotation draft → sent; refuses an unapproved proposal and a quotation past its validity. "
    "The client answers through ContractsService.AcceptQuotation / RejectQuotation.",
)
def send_offer(uow: UnitOfWork, job: Job, deps: Dependencies) -> Mapping[str, Any]:
    """2.3.1/2.3.2: sends the quotation to the client with the approved proposal."""
    view = usecases.send_offer(uow, job.text("quotation_id"), job.text("proposal_id"))
    return {"offer_sent_at": _iso(view.quotation.sent_at)}


@operations.handler(
    "expire_quotation",
    clauses=["2.3.1"],
    inputs=[ENGAGEMENT, text("quotation_id")],
    outputs=[text("intake_outcome", '"declined"'), text("decline_reason", '"offer_expired"')],
    description="Sent → expired; the diagram's timer decides when.",
)
def expire_quotation(uow: UnitOfWork, job: Job, deps: Dependencies) -> Mapping[str, Any]:
    """2.3.1: expires a quotation the client did not answer within its validity."""
    usecases.expire_quotation(uow, job.text("quotation_id"))
    return {"intake_outcome": "declined", "decline_reason": "offer_expired"}


@operations.handler(
    "draft_contract",
    clauses=["2.4.1"],
    inputs=[
        ENGAGEMENT,
        text("client_id"),
        text("quotation_id"),
        text("proposal_id"),
        optional(text("service_content")),
        optional(date("service_start")),
        optional(date("service_end")),
        optional(text("payment_terms", "one instalment per line (`30% on signing`), adding up to 100 %")),
        optional(text("confidentiality")),
        optional(text("breach_liability")),
        optional(text("negotiation_notes")),
    ],
    outputs=[text("contract_id"), integer("contract_version")],
    description="A negotiation round: needs the accepted quotation and the approved proposal; again for the "
    "same quotation is the next version (clauses given replace the current ones). The client comes from "
    "crm (unreachable: the job fails with retries left).",
)
def draft_contract(uow: UnitOfWork, job: Job, deps: Dependencies) -> Mapping[str, Any]:
    """2.4.1: drafts the contract for a negotiation round; the client's details come from crm."""
    command = DraftContract.parse(
        engagement_id=job.engagement_id,
        client_id=job.text("client_id"),
        quotation_id=job.text("quotation_id"),
        proposal_id=job.text("proposal_id"),
        clauses=Clauses.parse(
            service_content=job.text("service_content", ""),
            service_start=job.get("service_start", None),
            service_end=job.get("service_end", None),
            payment_terms=job.get("payment_terms", None),
            confidentiality=job.text("confidentiality", ""),
            breach_liability=job.text("breach_liability", ""),
        ),
        negotiation_notes=job.text("negotiation_notes", ""),
    )
    # Before the first statement: the unit of work has not begun its transaction yet, so no lock waits on
    # crm (platform/jobs.py `run_job`). crm unreachable is `Unavailable`: the job fails with retries left.
    client = deps.crm.client(command.client_id)
    view = usecases.draft_contract(uow, command, client)
    return {"contract_id": view.contract.contract_id, "contract_version": view.contract.current_version}


@operations.handler(
    "submit_for_legal_review",
    clauses=["2.4.2"],
    inputs=[text("contract_id")],
    outputs=[integer("legal_review_round")],
    errors=[
        error("contract_incomplete", "a required clause is missing (variable missing_clauses lists them)")
    ],
    description="A contract already under review answers its current round.",
)
def submit_for_legal_review(uow: UnitOfWork, job: Job, deps: Dependencies) -> Mapping[str, Any]:
    """2.4.2: submits the contract for legal review.

    A draft missing a required clause is the BPMN error `contract_incomplete`."""
    contract_id = job.text("contract_id")
    current = usecases.get_contract(uow.session, contract_id)
    missing = missing_for_review(ContractStatus(current.contract.status), current.clauses)
    if missing:
        raise BpmnError(
            "contract_incomplete",
            incomplete_message(missing),
            {"missing_clauses": [c.value for c in missing]},
        )
    view = usecases.submit_for_legal_review(uow, contract_id)
    return {"legal_review_round": view.contract.legal_review_round}


@operations.handler(
    "record_legal_review",
    clauses=["2.4.2"],
    inputs=[
        text("contract_id"),
        one_of("legal_verdict", ReviewVerdict),
        optional(text("legal_opinions", "one per line, `clause: opinion`; required to revise")),
        optional(text("legal_reviewer")),
        *[
            field
            for focus in LegalFocus
            for field in (
                optional(one_of(f"{focus.value}_verdict", ReviewVerdict, "all four foci or none")),
                optional(text(f"{focus.value}_opinion", "required when the focus is to revise")),
            )
        ],
    ],
    outputs=[flag("legal_approved")],
    description="The four foci of 2.4.2 (completeness, accuracy, legality, risk safeguards) each have a "
    "verdict and an opinion; a focus to revise makes an approved overall verdict invalid.",
)
def record_legal_review(uow: UnitOfWork, job: Job, deps: Dependencies) -> Mapping[str, Any]:
    """2.4.2: records the legal department's verdict and opinions."""
    verdict = choice("legal_verdict", job.get("legal_verdict"), ReviewVerdict)
    findings = parse_findings(
        {focus: job.get(f"{focus.value}_verdict", None) for focus in LegalFocus},
        {focus: job.text(f"{focus.value}_opinion", "") for focus in LegalFocus},
    )
    view = usecases.record_legal_review(
        uow,
        job.text("contract_id"),
        verdict,
        parse_opinions("legal_opinions", job.get("legal_opinions", None)),
        job.text("legal_reviewer", ""),
        findings,
    )
    return {"legal_approved": view.contract.status == ContractStatus.APPROVED.value}


@operations.handler(
    "revise_contract",
    clauses=["2.4.2", "2.4.3"],
    inputs=[
        text("contract_id"),
        text("revision_notes"),
        optional(text("payment_terms", "replaces the current clause")),
        optional(text("confidentiality", "replaces the current clause")),
        optional(text("breach_liability", "replaces the current clause")),
    ],
    outputs=[integer("contract_version")],
    description="The revision goes back to legal review as a new round by itself.",
)
def revise_contract(uow: UnitOfWork, job: Job, deps: Dependencies) -> Mapping[str, Any]:
    """2.4.2/2.4.3: revises the contract per the legal opinion; it goes back to legal review."""
    changes = Clauses.parse(
        payment_terms=job.get("payment_terms", None),
        confidentiality=job.text("confidentiality", ""),
        breach_liability=job.text("breach_liability", ""),
    )
    view = usecases.revise_contract(uow, job.text("contract_id"), changes, job.text("revision_notes"))
    return {"contract_version": view.contract.current_version}


@operations.handler(
    "sign_contract",
    clauses=["2.4.3"],
    inputs=[text("contract_id"), text("signatory"), text("signatory_title")],
    outputs=[date("signed_by_firm_at", "a timestamp")],
    description="Refused without legal approval; contract.signed is published once both parties signed.",
)
def sign_contract(uow: UnitOfWork, job: Job, deps: Dependencies) -> Mapping[str, Any]:
    """2.4.3: the firm's authorised signatory signs the contract."""
    signatory = Signatory.parse(signatory=job.text("signatory"), signatory_title=job.text("signatory_title"))
    view = usecases.sign_contract(uow, job.text("contract_id"), signatory)
    return {"signed_by_firm_at": _iso(view.contract.firm_signed_at)}


@operations.handler(
    "reopen_negotiation",
    clauses=["2.4.3", "2.4.1"],
    inputs=[text("contract_id"), text("reopen_reason")],
    outputs=[integer("contract_version")],
    description="A contract waiting for the client's signature goes back to negotiation as a new version; "
    "one already back in negotiation is left as it is.",
)
def reopen_negotiation(uow: UnitOfWork, job: Job, deps: Dependencies) -> Mapping[str, Any]:
    """2.4.3: reopens the negotiation when the signing period ended without the client's signature."""
    view = usecases.reopen_negotiation(uow, job.text("contract_id"), job.text("reopen_reason"))
    return {"contract_version": view.contract.current_version}


@operations.handler(
    "distribute_contract",
    clauses=["2.4.3"],
    inputs=[
        text("contract_id"),
        optional(
            listing("departments", "names separated by commas; default business, delivery, finance, legal")
        ),
    ],
    outputs=[text("intake_outcome", '"contracted"'), listing("distributed_to")],
    description="Refused before both parties signed.",
)
def distribute_contract(uow: UnitOfWork, job: Job, deps: Dependencies) -> Mapping[str, Any]:
    """2.4.3: distributes copies of the signed contract to the departments concerned."""
    departments = names("departments", job.get("departments", None))
    view = usecases.distribute_contract(uow, job.text("contract_id"), departments)
    return {"intake_outcome": "contracted", "distributed_to": [d.department for d in view.distributions]}
