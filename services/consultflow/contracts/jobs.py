"""The contracts operations that diagrams call as service tasks (`contracts.<operation>`,
docs/operations.md).

Each handler reads its inputs from the job, builds the same command the gRPC API builds, and runs the
use case in the unit of work `run_job` gives it (which also makes a redelivered job act once).
`contracts.draft_contract` needs crm, so the handlers are built around a `ClientDirectory`.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

from consultflow.contracts import domain, usecases
from consultflow.contracts.adapters import ClientDirectory
from consultflow.contracts.domain import (
    Category,
    Clauses,
    LineItem,
    ProposalContent,
    QuotationTerms,
    ReviewVerdict,
    Signatory,
)
from consultflow.platform.db import UnitOfWork
from consultflow.platform.errors import BpmnError, Unavailable
from consultflow.platform.jobs import Job, JobHandler
from consultflow.platform.timeutil import aware


class DependencyUnavailable(RuntimeError):
    """Another service could not be reached. Not a domain error on purpose: the platform fails a job
    that raises it with retries left (domain errors are final), so the orchestrator tries again later."""


def _iso(moment: datetime | None) -> str:
    """Outputs are plain JSON values, so a replayed job answers exactly what the first run did."""
    stamp = aware(moment)
    return stamp.isoformat() if stamp else ""


def _engagement(job: Job) -> str:
    return str(job.get("engagement_id", "") or job.business_key)


_COSTS = (
    ("consulting_fee", Category.CONSULTING_FEE, "consulting fee"),
    ("travel_cost", Category.TRAVEL, "travel"),
    ("accommodation_cost", Category.ACCOMMODATION, "accommodation"),
    ("other_cost", Category.OTHER, "other costs"),
)


def prepare_quotation(uow: UnitOfWork, job: Job) -> Mapping[str, Any]:
    """2.3.1: one line per cost category given (consulting fee required); totals computed here."""
    currency = domain.parse_currency(job.get("currency"))
    lines = []
    for name, category, description in _COSTS:
        raw = job.get(name) if category is Category.CONSULTING_FEE else job.get(name, None)
        amount = domain.parse_optional_money(raw, name, currency)
        if amount > 0:
            lines.append(LineItem(category, description, Decimal(1), amount))
    terms = QuotationTerms(
        currency=currency,
        tax_rate=domain.parse_tax_rate(job.get("tax_rate", None)),
        validity_days=domain.parse_validity_days(job.get("validity_days")),
        lines=tuple(lines),
    )
    view = usecases.prepare_quotation(uow, _engagement(job), job.text("client_id"), terms)
    return {
        "quotation_id": view.quotation.quotation_id,
        "quotation_total": format(view.current.total, "f"),
        "quotation_valid_until": view.quotation.valid_until.isoformat(),
    }


def draft_proposal(uow: UnitOfWork, job: Job) -> Mapping[str, Any]:
    """2.3.2: the proposal, or a new version of it after a review asked for a revision."""
    content = ProposalContent(
        goals=job.text("goals"),
        scope=job.text("scope"),
        methods=job.text("methods"),
        schedule=domain.parse_schedule(job.get("schedule")),
        expected_results=domain.parse_lines(job.get("expected_results"), "expected_results"),
        project_manager=job.text("project_manager"),
        team_members=domain.parse_names(job.get("team_members", None), "team_members"),
    )
    view = usecases.draft_proposal(
        uow, job.text("quotation_id"), _engagement(job), content, job.text("revision_note", "")
    )
    return {"proposal_id": view.proposal.proposal_id, "proposal_version": view.proposal.current_version}


def record_proposal_review(uow: UnitOfWork, job: Job) -> Mapping[str, Any]:
    """2.3.2: the internal review's verdict."""
    verdict = domain.parse_choice(ReviewVerdict, job.get("proposal_verdict"), "proposal_verdict")
    view = usecases.review_proposal(
        uow,
        job.text("proposal_id"),
        verdict,
        job.text("review_comments", ""),
        job.text("reviewer", ""),
    )
    return {"proposal_approved": view.proposal.status == domain.ProposalStatus.APPROVED.value}


def send_offer(uow: UnitOfWork, job: Job) -> Mapping[str, Any]:
    """2.3.1/2.3.2: the quotation goes out with the approved proposal."""
    view = usecases.send_offer(uow, job.text("quotation_id"), job.text("proposal_id"))
    return {"offer_sent_at": _iso(view.quotation.sent_at)}


def expire_quotation(uow: UnitOfWork, job: Job) -> Mapping[str, Any]:
    """2.3.1: no answer within the validity."""
    usecases.expire_quotation(uow, job.text("quotation_id"))
    return {"intake_outcome": "declined", "decline_reason": "offer_expired"}


def _clauses(job: Job) -> Clauses:
    return Clauses(
        service_content=job.text("service_content", ""),
        service_start=domain.parse_optional_date(job.get("service_start", None), "service_start"),
        service_end=domain.parse_optional_date(job.get("service_end", None), "service_end"),
        payment_terms=domain.parse_instalments(job.get("payment_terms", None)),
        confidentiality=job.text("confidentiality", ""),
        breach_liability=job.text("breach_liability", ""),
    )


def _draft_contract(clients: ClientDirectory) -> JobHandler:
    def draft_contract(uow: UnitOfWork, job: Job) -> Mapping[str, Any]:
        """2.4.1: a negotiation round; the client's details come from crm."""
        command = usecases.DraftContract(
            engagement_id=_engagement(job),
            client_id=job.text("client_id"),
            quotation_id=job.text("quotation_id"),
            proposal_id=job.text("proposal_id"),
            clauses=_clauses(job),
            negotiation_notes=job.text("negotiation_notes", ""),
        )
        try:
            client = clients.client(command.client_id)
        except Unavailable as error:
            raise DependencyUnavailable(error.message) from error
        view = usecases.draft_contract(uow, command, client)
        return {"contract_id": view.contract.contract_id, "contract_version": view.contract.current_version}

    return draft_contract


def submit_for_legal_review(uow: UnitOfWork, job: Job) -> Mapping[str, Any]:
    """2.4.2: a draft missing a required clause is the BPMN error `contract_incomplete`."""
    contract_id = job.text("contract_id")
    current = usecases.get_contract(uow, contract_id)
    missing = current.clauses.missing()
    if current.contract.status == domain.ContractStatus.DRAFT.value and missing:
        raise BpmnError(
            "contract_incomplete",
            domain.incomplete_message(missing),
            {"missing_clauses": [c.value for c in missing]},
        )
    view = usecases.submit_for_legal_review(uow, contract_id)
    return {"legal_review_round": view.contract.legal_review_round}


def record_legal_review(uow: UnitOfWork, job: Job) -> Mapping[str, Any]:
    """2.4.2: the legal department's verdict and opinions."""
    verdict = domain.parse_choice(ReviewVerdict, job.get("legal_verdict"), "legal_verdict")
    view = usecases.record_legal_review(
        uow,
        job.text("contract_id"),
        verdict,
        domain.parse_opinions(job.get("legal_opinions", None)),
        job.text("legal_reviewer", ""),
    )
    return {"legal_approved": view.contract.status == domain.ContractStatus.APPROVED.value}


def revise_contract(uow: UnitOfWork, job: Job) -> Mapping[str, Any]:
    """2.4.2/2.4.3: a revision per the legal opinion, back to legal review."""
    changes = Clauses(
        payment_terms=domain.parse_instalments(job.get("payment_terms", None)),
        confidentiality=job.text("confidentiality", ""),
        breach_liability=job.text("breach_liability", ""),
    )
    view = usecases.revise_contract(uow, job.text("contract_id"), changes, job.text("revision_notes"))
    return {"contract_version": view.contract.current_version}


def sign_contract(uow: UnitOfWork, job: Job) -> Mapping[str, Any]:
    """2.4.3: the firm's authorised signatory signs."""
    signatory = Signatory(job.text("signatory"), job.text("signatory_title"))
    view = usecases.sign_contract(uow, job.text("contract_id"), signatory)
    return {"signed_by_firm_at": _iso(view.contract.firm_signed_at)}


def distribute_contract(uow: UnitOfWork, job: Job) -> Mapping[str, Any]:
    """2.4.3: copies to the departments concerned."""
    departments = domain.parse_names(job.get("departments", None), "departments")
    view = usecases.distribute_contract(uow, job.text("contract_id"), departments)
    return {"intake_outcome": "contracted", "distributed_to": [d.department for d in view.distributions]}


def handlers(clients: ClientDirectory) -> dict[str, JobHandler]:
    """Every contracts.* operation of the catalogue, with crm reached through `clients`."""
    return {
        "contracts.prepare_quotation": prepare_quotation,
        "contracts.draft_proposal": draft_proposal,
        "contracts.record_proposal_review": record_proposal_review,
        "contracts.send_offer": send_offer,
        "contracts.expire_quotation": expire_quotation,
        "contracts.draft_contract": _draft_contract(clients),
        "contracts.submit_for_legal_review": submit_for_legal_review,
        "contracts.record_legal_review": record_legal_review,
        "contracts.revise_contract": revise_contract,
        "contracts.sign_contract": sign_contract,
        "contracts.distribute_contract": distribute_contract,
    }
