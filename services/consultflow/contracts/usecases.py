"""Contracts use cases. A write use case runs in the unit of work it is given and emits the status events
of what it changed; the caller owns the unit of work and commits it, so a use case happens entirely or not
at all. A read use case takes a session (the servicer's read-only one) and changes nothing; a list reads
its page in a fixed number of queries, whatever the page size.

Event payloads name their fields after the entity (`quotation_status`, not `status`) because the
orchestrator merges the payload of a mapped event (`quotation.accepted`, `contract.signed`) into the
waiting process's variables.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any, TypeVar

from sqlalchemy import and_, select
from sqlalchemy.orm import InstrumentedAttribute, Session

from consultflow.contracts import domain
from consultflow.contracts.adapters import ClientInfo
from consultflow.contracts.domain import (
    NAME_LIMIT,
    TEXT_LIMIT,
    Clauses,
    ContractStatus,
    DraftContract,
    Instalment,
    Milestone,
    Opinion,
    ProposalContent,
    ProposalStatus,
    QuotationStatus,
    QuotationTerms,
    ReviewVerdict,
    Signatory,
)
from consultflow.contracts.orm import (
    Contract,
    ContractVersion,
    Distribution,
    LegalFinding,
    LegalOpinion,
    LegalReview,
    NegotiationRound,
    Proposal,
    ProposalReview,
    ProposalVersion,
    Quotation,
    QuotationCost,
    QuotationLine,
    QuotationVersion,
)
from consultflow.platform.db import UnitOfWork, one
from consultflow.platform.errors import FailedPrecondition, InvalidArgument
from consultflow.platform.inputs import optional_text, required_text
from consultflow.platform.timeutil import now

R = TypeVar("R")


def _new_id() -> str:
    return str(uuid.uuid4())


def _correlation(engagement_id: str) -> dict[str, str]:
    return {"engagement_id": engagement_id} if engagement_id else {}


def _today() -> date:
    return now().date()


def _children(
    session: Session, model: type[R], parent: InstrumentedAttribute[str], ids: Collection[str], *order: Any
) -> dict[str, list[R]]:
    """The rows of `model` whose `parent` column is one of `ids`, grouped by it, each group in `order`:
    one query for a whole page of parents."""
    groups: dict[str, list[R]] = defaultdict(list)
    if ids:
        for row in session.scalars(select(model).where(parent.in_(ids)).order_by(*order)):
            groups[getattr(row, parent.key)].append(row)
    return groups


# --- quotations (2.3.1) ----------------------------------------------------------------------------


@dataclass(frozen=True)
class QuotationView:
    quotation: Quotation
    versions: list[QuotationVersion]  # oldest first
    lines: list[QuotationLine]  # of the current version

    @property
    def current(self) -> QuotationVersion:
        return self.versions[-1]


def get_quotation(session: Session, quotation_id: str) -> QuotationView:
    return _quotation_views(session, [one(session, Quotation, quotation_id, "quotation")])[0]


def _quotation_views(session: Session, quotations: Sequence[Quotation]) -> list[QuotationView]:
    """The quotations with their versions and current lines, in two queries."""
    ids = [q.quotation_id for q in quotations]
    if not ids:
        return []
    versions = _children(
        session, QuotationVersion, QuotationVersion.quotation_id, ids, QuotationVersion.version
    )
    current = and_(
        Quotation.quotation_id == QuotationLine.quotation_id,
        Quotation.current_version == QuotationLine.version,
    )
    lines: dict[str, list[QuotationLine]] = defaultdict(list)
    for line in session.scalars(
        select(QuotationLine)
        .join(Quotation, current)
        .where(QuotationLine.quotation_id.in_(ids))
        .order_by(QuotationLine.position)
    ):
        lines[line.quotation_id].append(line)
    return [QuotationView(q, versions[q.quotation_id], lines[q.quotation_id]) for q in quotations]


def quotation_payload(view: QuotationView) -> dict[str, Any]:
    q, v = view.quotation, view.current
    return {
        "quotation_id": q.quotation_id,
        "engagement_id": q.engagement_id,
        "client_id": q.client_id,
        "quotation_status": q.status,
        "quotation_version": q.current_version,
        "quotation_total": v.total,
        "currency": v.currency,
        "quotation_valid_until": q.valid_until,
    }


def _emit_quotation(uow: UnitOfWork, event: str, view: QuotationView, **extra: Any) -> None:
    """Every quotation event carries the quotation's payload, then what is particular to the event."""
    q = view.quotation
    uow.emit(event, q.quotation_id, {**quotation_payload(view), **extra}, _correlation(q.engagement_id))


def _add_version(uow: UnitOfWork, quotation: Quotation, terms: QuotationTerms, note: str) -> None:
    totals = terms.totals()
    uow.session.add(
        QuotationVersion(
            quotation_id=quotation.quotation_id,
            version=quotation.current_version,
            currency=terms.currency,
            tax_rate=terms.tax_rate,
            validity_days=terms.validity_days,
            subtotal=totals.subtotal,
            tax=totals.tax,
            total=totals.total,
            note=note,
            created_at=now(),
        )
    )
    uow.session.add_all(
        QuotationLine(
            quotation_id=quotation.quotation_id,
            version=quotation.current_version,
            position=index,
            category=line.category.value,
            description=line.description,
            quantity=line.quantity,
            unit_price=line.unit_price,
            amount=line.amount(terms.currency),
        )
        for index, line in enumerate(terms.lines, start=1)
    )
    uow.session.flush()


def prepare_quotation(
    uow: UnitOfWork,
    engagement_id: str,
    client_id: str,
    terms: QuotationTerms,
    costs: domain.CostAccounting | None = None,
) -> QuotationView:
    """2.3.1: a draft quotation whose totals the service computes; valid for `validity_days` from today.
    The company's cost accounting it is based on, when given, is kept per category with the version."""
    client_id = required_text("client_id", client_id, domain.ID_LIMIT)
    quotation = Quotation(
        quotation_id=_new_id(),
        engagement_id=engagement_id,
        client_id=client_id,
        status=QuotationStatus.DRAFT.value,
        current_version=1,
        valid_until=terms.valid_until(_today()),
        created_at=now(),
    )
    uow.session.add(quotation)
    uow.session.flush()
    _add_version(uow, quotation, terms, "")
    cost_items: dict[str, str] = {}
    if costs is not None:
        uow.session.add_all(
            QuotationCost(
                quotation_id=quotation.quotation_id, version=1, category=category.value, amount=amount
            )
            for category, amount in costs.costs
        )
        cost_items = {category.value: format(amount, "f") for category, amount in costs.costs}
    view = get_quotation(uow.session, quotation.quotation_id)
    _emit_quotation(
        uow,
        "quotation.prepared",
        view,
        **({"cost_accounting": cost_items, "cost_total": format(costs.total, "f")} if costs else {}),
    )
    return view


def revise_quotation(uow: UnitOfWork, quotation_id: str, terms: QuotationTerms, note: str) -> QuotationView:
    """2.3.1: a new version; a sent quotation returns to draft and must be sent again."""
    quotation = one(uow.session, Quotation, quotation_id, "quotation")
    domain.check_quotation_revisable(QuotationStatus(quotation.status))
    quotation.current_version += 1
    quotation.status = QuotationStatus.DRAFT.value
    quotation.valid_until = terms.valid_until(_today())
    quotation.sent_at = None
    _add_version(uow, quotation, terms, optional_text("note", note, TEXT_LIMIT))
    view = get_quotation(uow.session, quotation_id)
    _emit_quotation(uow, "quotation.revised", view)
    return view


def send_offer(uow: UnitOfWork, quotation_id: str, proposal_id: str) -> QuotationView:
    """2.3.1/2.3.2: the formal quote goes to the client with the approved proposal."""
    quotation = one(uow.session, Quotation, quotation_id, "quotation")
    proposal = one(uow.session, Proposal, proposal_id, "proposal")
    if proposal.quotation_id != quotation.quotation_id:
        raise InvalidArgument("proposal_id", "belongs to another quotation")
    domain.check_offer_sendable(
        QuotationStatus(quotation.status),
        quotation.valid_until,
        _today(),
        proposal.status == ProposalStatus.APPROVED.value,
    )
    quotation.status = QuotationStatus.SENT.value
    quotation.sent_at = now()
    quotation.proposal_id = proposal.proposal_id
    view = get_quotation(uow.session, quotation_id)
    _emit_quotation(
        uow, "quotation.sent", view, proposal_id=proposal.proposal_id, offer_sent_at=quotation.sent_at
    )
    return view


def answer_quotation(
    uow: UnitOfWork, quotation_id: str, accepted: bool, answered_by: str, note: str
) -> QuotationView:
    """The client's answer. Repeating the same answer changes nothing (a retried call is safe)."""
    quotation = one(uow.session, Quotation, quotation_id, "quotation")
    status = QuotationStatus(quotation.status)
    wanted = QuotationStatus.ACCEPTED if accepted else QuotationStatus.REJECTED
    if status is wanted:
        return get_quotation(uow.session, quotation_id)
    domain.check_answerable(status, quotation.valid_until, _today())
    quotation.status = wanted.value
    quotation.answered_at = now()
    quotation.answered_by = optional_text("answered_by", answered_by, NAME_LIMIT)
    quotation.answer_note = optional_text("note", note, TEXT_LIMIT)
    view = get_quotation(uow.session, quotation_id)
    _emit_quotation(
        uow,
        f"quotation.{wanted.value}",
        view,
        answered_by=quotation.answered_by,
        answer_note=quotation.answer_note,
    )
    return view


def expire_quotation(uow: UnitOfWork, quotation_id: str) -> QuotationView:
    """2.3.1: the validity passed without an answer (the diagram's timer decides when)."""
    quotation = one(uow.session, Quotation, quotation_id, "quotation")
    domain.check_expirable(QuotationStatus(quotation.status))
    quotation.status = QuotationStatus.EXPIRED.value
    view = get_quotation(uow.session, quotation_id)
    _emit_quotation(uow, "quotation.expired", view)
    return view


def list_quotations(
    session: Session, engagement_id: str, status: QuotationStatus | None, limit: int, offset: int
) -> list[QuotationView]:
    """Newest first, optionally of one engagement or in one status."""
    query = select(Quotation)
    if engagement_id:
        query = query.where(Quotation.engagement_id == engagement_id)
    if status is not None:
        query = query.where(Quotation.status == status.value)
    query = query.order_by(Quotation.created_at.desc(), Quotation.quotation_id).offset(offset).limit(limit)
    return _quotation_views(session, list(session.scalars(query)))


# --- proposals (2.3.2) -----------------------------------------------------------------------------


@dataclass(frozen=True)
class ProposalView:
    proposal: Proposal
    versions: list[ProposalVersion]
    reviews: list[ProposalReview]

    @property
    def current(self) -> ProposalVersion:
        return self.versions[-1]


def get_proposal(session: Session, proposal_id: str) -> ProposalView:
    proposal = one(session, Proposal, proposal_id, "proposal")
    versions = list(
        session.scalars(
            select(ProposalVersion)
            .where(ProposalVersion.proposal_id == proposal_id)
            .order_by(ProposalVersion.version)
        )
    )
    reviews = list(
        session.scalars(
            select(ProposalReview)
            .where(ProposalReview.proposal_id == proposal_id)
            .order_by(ProposalReview.reviewed_at, ProposalReview.review_id)
        )
    )
    return ProposalView(proposal, versions, reviews)


def milestones_of(version: ProposalVersion) -> list[Milestone]:
    return [Milestone(str(m["name"]), date.fromisoformat(str(m["due_date"]))) for m in version.schedule]


def draft_proposal(
    uow: UnitOfWork, quotation_id: str, engagement_id: str, content: ProposalContent, revision_note: str = ""
) -> ProposalView:
    """2.3.2: the proposal for a quotation; drafting again adds a version (a revision after review)."""
    quotation = one(uow.session, Quotation, quotation_id, "quotation")
    if engagement_id and quotation.engagement_id and engagement_id != quotation.engagement_id:
        raise InvalidArgument("quotation_id", f"belongs to engagement {quotation.engagement_id!r}")
    proposal = uow.session.scalars(select(Proposal).where(Proposal.quotation_id == quotation_id)).first()
    if proposal is None:
        proposal = Proposal(
            proposal_id=_new_id(),
            engagement_id=quotation.engagement_id or engagement_id,
            quotation_id=quotation_id,
            status=ProposalStatus.DRAFT.value,
            current_version=1,
            created_at=now(),
        )
        uow.session.add(proposal)
        uow.session.flush()
        event = "proposal.drafted"
    else:
        domain.check_proposal_revisable(ProposalStatus(proposal.status))
        proposal.current_version += 1
        proposal.status = ProposalStatus.DRAFT.value
        event = "proposal.revised"
    uow.session.add(
        ProposalVersion(
            proposal_id=proposal.proposal_id,
            version=proposal.current_version,
            goals=content.goals,
            scope=content.scope,
            methods=content.methods,
            schedule=[{"name": m.name, "due_date": m.due_date.isoformat()} for m in content.schedule],
            expected_results=list(content.expected_results),
            project_manager=content.project_manager,
            team_members=list(content.team_members),
            revision_note=optional_text("revision_note", revision_note, TEXT_LIMIT),
            created_at=now(),
        )
    )
    uow.session.flush()
    uow.emit(
        event,
        proposal.proposal_id,
        {
            "proposal_id": proposal.proposal_id,
            "quotation_id": quotation_id,
            "proposal_version": proposal.current_version,
            "project_manager": content.project_manager,
        },
        _correlation(proposal.engagement_id),
    )
    return get_proposal(uow.session, proposal.proposal_id)


def review_proposal(
    uow: UnitOfWork, proposal_id: str, verdict: ReviewVerdict, comments: str, reviewer: str
) -> ProposalView:
    """2.3.2: the internal review of the current version: approved, or revise with comments."""
    proposal = one(uow.session, Proposal, proposal_id, "proposal")
    domain.check_proposal_reviewable(ProposalStatus(proposal.status))
    domain.check_review(verdict, comments)
    uow.session.add(
        ProposalReview(
            review_id=_new_id(),
            proposal_id=proposal_id,
            version=proposal.current_version,
            reviewer=optional_text("reviewer", reviewer, NAME_LIMIT),
            verdict=verdict.value,
            comments=optional_text("review_comments", comments, TEXT_LIMIT),
            reviewed_at=now(),
        )
    )
    status = domain.status_after_proposal_review(verdict)
    approved = status is ProposalStatus.APPROVED
    proposal.status = status.value
    if approved:
        proposal.approved_at = now()
    uow.session.flush()
    uow.emit(
        "proposal.approved" if approved else "proposal.revision_requested",
        proposal_id,
        {
            "proposal_id": proposal_id,
            "proposal_version": proposal.current_version,
            "proposal_verdict": verdict.value,
            "review_comments": comments,
        },
        _correlation(proposal.engagement_id),
    )
    return get_proposal(uow.session, proposal_id)


# --- contracts (2.4) -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReviewRecord:
    review: LegalReview
    opinions: list[LegalOpinion]
    findings: list[LegalFinding]


@dataclass(frozen=True)
class ContractView:
    contract: Contract
    versions: list[ContractVersion]
    rounds: list[NegotiationRound]
    reviews: list[ReviewRecord]
    distributions: list[Distribution]
    proposal: ProposalVersion | None  # the approved proposal's current version

    @property
    def current(self) -> ContractVersion:
        return self.versions[-1]

    @property
    def clauses(self) -> Clauses:
        return clauses_of(self.current)

    @property
    def instalment_amounts(self) -> list[Decimal]:
        c = self.contract
        return domain.instalment_amounts(self.clauses.payment_terms, c.contract_value, c.currency)


def clauses_of(version: ContractVersion) -> Clauses:
    return Clauses(
        service_content=version.service_content,
        service_start=version.service_start,
        service_end=version.service_end,
        payment_terms=tuple(Instalment(Decimal(i["percent"]), str(i["due"])) for i in version.payment_terms),
        confidentiality=version.confidentiality,
        breach_liability=version.breach_liability,
    )


def get_contract(session: Session, contract_id: str) -> ContractView:
    return _contract_views(session, [one(session, Contract, contract_id, "contract")])[0]


def _contract_views(session: Session, contracts: Sequence[Contract]) -> list[ContractView]:
    """The contracts with their versions, rounds, reviews, copies and proposal, in six queries."""
    ids = [c.contract_id for c in contracts]
    if not ids:
        return []
    versions = _children(session, ContractVersion, ContractVersion.contract_id, ids, ContractVersion.version)
    rounds = _children(session, NegotiationRound, NegotiationRound.contract_id, ids, NegotiationRound.round)
    reviews = _children(session, LegalReview, LegalReview.contract_id, ids, LegalReview.round)
    review_ids = [r.review_id for group in reviews.values() for r in group]
    opinions = _children(session, LegalOpinion, LegalOpinion.review_id, review_ids, LegalOpinion.position)
    findings = _children(session, LegalFinding, LegalFinding.review_id, review_ids, LegalFinding.position)
    distributions = _children(session, Distribution, Distribution.contract_id, ids, Distribution.department)
    current = and_(
        Proposal.proposal_id == ProposalVersion.proposal_id,
        Proposal.current_version == ProposalVersion.version,
    )
    proposals = {
        p.proposal_id: p
        for p in session.scalars(
            select(ProposalVersion)
            .join(Proposal, current)
            .where(ProposalVersion.proposal_id.in_(list({c.proposal_id for c in contracts})))
        )
    }
    return [
        ContractView(
            c,
            versions[c.contract_id],
            rounds[c.contract_id],
            [ReviewRecord(r, opinions[r.review_id], findings[r.review_id]) for r in reviews[c.contract_id]],
            distributions[c.contract_id],
            proposals.get(c.proposal_id),
        )
        for c in contracts
    ]


def contract_payload(view: ContractView) -> dict[str, Any]:
    c = view.contract
    return {
        "contract_id": c.contract_id,
        "engagement_id": c.engagement_id,
        "client_id": c.client_id,
        "contract_status": c.status,
        "contract_version": c.current_version,
        "contract_value": c.contract_value,
        "currency": c.currency,
    }


def _emit(uow: UnitOfWork, event: str, view: ContractView, **extra: Any) -> None:
    uow.emit(
        event,
        view.contract.contract_id,
        {**contract_payload(view), **extra},
        _correlation(view.contract.engagement_id),
    )


def _version_row(contract: Contract, clauses: Clauses, note: str) -> ContractVersion:
    return ContractVersion(
        contract_id=contract.contract_id,
        version=contract.current_version,
        service_content=clauses.service_content,
        service_start=clauses.service_start,
        service_end=clauses.service_end,
        payment_terms=[{"percent": format(i.percent, "f"), "due": i.due} for i in clauses.payment_terms],
        confidentiality=clauses.confidentiality,
        breach_liability=clauses.breach_liability,
        change_note=note,
        created_at=now(),
    )


def _client_contacts(client: ClientInfo) -> list[dict[str, str]]:
    return [{"name": c.name, "email": c.email, "phone": c.phone, "role": c.role} for c in client.contacts]


def draft_contract(uow: UnitOfWork, command: DraftContract, client: ClientInfo) -> ContractView:
    """2.4.1: records a negotiation round. The first round drafts the contract for the accepted quotation
    and the approved proposal; later rounds (while a draft, or when legal asked for revisions) add a
    version. The client's details are as crm gave them now."""
    quotation = one(uow.session, Quotation, command.quotation_id, "quotation")
    proposal = one(uow.session, Proposal, command.proposal_id, "proposal")
    domain.check_contract_draftable(
        QuotationStatus(quotation.status),
        ProposalStatus(proposal.status),
        same_quotation=proposal.quotation_id == quotation.quotation_id,
    )
    if quotation.client_id != command.client_id:
        raise InvalidArgument("client_id", "is not the client of the quotation")
    engagement_id = quotation.engagement_id or command.engagement_id
    contract = uow.session.scalars(
        select(Contract).where(Contract.quotation_id == quotation.quotation_id)
    ).first()
    if contract is None:
        version = uow.session.get(QuotationVersion, (quotation.quotation_id, quotation.current_version))
        assert version is not None
        contract = Contract(
            contract_id=_new_id(),
            engagement_id=engagement_id,
            client_id=client.client_id,
            client_name=client.name,
            client_contacts=_client_contacts(client),
            quotation_id=quotation.quotation_id,
            proposal_id=proposal.proposal_id,
            status=ContractStatus.DRAFT.value,
            current_version=1,
            legal_review_round=0,
            currency=version.currency,
            contract_value=version.total,
            created_at=now(),
        )
        uow.session.add(contract)
        uow.session.flush()
        clauses = command.clauses
        event = "contract.drafted"
    else:
        domain.check_negotiable(ContractStatus(contract.status))
        current = uow.session.get(ContractVersion, (contract.contract_id, contract.current_version))
        assert current is not None
        clauses = clauses_of(current).revised(command.clauses)
        contract.current_version += 1
        contract.status = ContractStatus.DRAFT.value
        contract.client_name = client.name
        contract.client_contacts = _client_contacts(client)
        event = "contract.negotiated"
    uow.session.add(_version_row(contract, clauses, command.negotiation_notes))
    round_number = (
        len(
            uow.session.scalars(
                select(NegotiationRound.round).where(NegotiationRound.contract_id == contract.contract_id)
            ).all()
        )
        + 1
    )
    uow.session.add(
        NegotiationRound(
            contract_id=contract.contract_id,
            round=round_number,
            version=contract.current_version,
            notes=command.negotiation_notes,
            held_at=now(),
        )
    )
    uow.session.flush()
    view = get_contract(uow.session, contract.contract_id)
    _emit(
        uow,
        event,
        view,
        negotiation_round=round_number,
        missing_clauses=[c.value for c in clauses.missing()],
    )
    return view


def submit_for_legal_review(uow: UnitOfWork, contract_id: str) -> ContractView:
    """2.4.2: sends a complete draft to the legal department (a new review round). A contract already
    under review answers with its current round, so a diagram may submit after a revision too."""
    view = get_contract(uow.session, contract_id)
    contract = view.contract
    if contract.status == ContractStatus.IN_LEGAL_REVIEW.value:
        return view
    domain.check_submittable(ContractStatus(contract.status), view.clauses)
    contract.status = ContractStatus.IN_LEGAL_REVIEW.value
    contract.legal_review_round += 1
    uow.session.flush()  # `view` holds the row just changed and lists nothing that changed
    _emit(uow, "contract.submitted", view, legal_review_round=contract.legal_review_round)
    return view


def record_legal_review(
    uow: UnitOfWork,
    contract_id: str,
    verdict: ReviewVerdict,
    opinions: Sequence[Opinion],
    reviewer: str,
    findings: Sequence[domain.Finding] = (),
) -> ContractView:
    """2.4.2: the legal department's verdict on the version under review, with opinions per clause and,
    when given, a verdict and opinion on each focus (completeness, accuracy, legality, risk safeguards)."""
    contract = one(uow.session, Contract, contract_id, "contract")
    domain.check_reviewable(ContractStatus(contract.status))
    domain.check_legal_review(verdict, opinions, findings)
    review = LegalReview(
        review_id=_new_id(),
        contract_id=contract_id,
        round=contract.legal_review_round,
        version=contract.current_version,
        reviewer=optional_text("reviewer", reviewer, NAME_LIMIT),
        verdict=verdict.value,
        reviewed_at=now(),
    )
    uow.session.add(review)
    uow.session.flush()
    uow.session.add_all(
        LegalOpinion(review_id=review.review_id, position=index, clause=o.clause, opinion=o.opinion)
        for index, o in enumerate(opinions, start=1)
    )
    uow.session.add_all(
        LegalFinding(
            review_id=review.review_id,
            focus=f.focus.value,
            position=index,
            verdict=f.verdict.value,
            opinion=f.opinion,
        )
        for index, f in enumerate(findings, start=1)
    )
    status = domain.status_after_legal_review(verdict)
    approved = status is ContractStatus.APPROVED
    contract.status = status.value
    uow.session.flush()
    view = get_contract(uow.session, contract_id)
    _emit(
        uow,
        "contract.legal_approved" if approved else "contract.revision_requested",
        view,
        legal_review_round=review.round,
        legal_opinions=[{"clause": o.clause, "opinion": o.opinion} for o in opinions],
        legal_findings=[
            {"focus": f.focus.value, "verdict": f.verdict.value, "opinion": f.opinion} for f in findings
        ],
    )
    return view


def revise_contract(uow: UnitOfWork, contract_id: str, changes: Clauses, revision_notes: str) -> ContractView:
    """2.4.3: a new version per the legal opinion; clauses given replace the current ones. The revision
    goes back to the legal department as a new review round."""
    view = get_contract(uow.session, contract_id)
    contract = view.contract
    domain.check_revisable(ContractStatus(contract.status))
    notes = required_text("revision_notes", revision_notes, TEXT_LIMIT)
    clauses = view.clauses.revised(changes)
    missing = clauses.missing()
    if missing:
        raise FailedPrecondition(domain.incomplete_message(missing))
    contract.current_version += 1
    contract.status = ContractStatus.IN_LEGAL_REVIEW.value
    contract.legal_review_round += 1
    uow.session.add(_version_row(contract, clauses, notes))
    uow.session.flush()
    view = get_contract(uow.session, contract_id)
    _emit(uow, "contract.revised", view, legal_review_round=contract.legal_review_round, revision_notes=notes)
    return view


def sign_contract(uow: UnitOfWork, contract_id: str, signatory: Signatory) -> ContractView:
    """2.4.3: the firm's legal or authorised representative signs the contract legal approved."""
    contract = one(uow.session, Contract, contract_id, "contract")
    status = ContractStatus(contract.status)
    domain.check_firm_can_sign(status)
    contract.firm_signatory, contract.firm_signatory_title = signatory.name, signatory.title
    contract.firm_signed_at = now()
    return _signed(
        uow, contract, domain.status_after_signature(status, by_firm=True), "contract.signed_by_firm"
    )


def record_client_signature(uow: UnitOfWork, contract_id: str, signatory: Signatory) -> ContractView:
    """2.4.3: the client's signature; a second call for a contract the client signed changes nothing."""
    contract = one(uow.session, Contract, contract_id, "contract")
    status = ContractStatus(contract.status)
    if domain.client_has_signed(status):
        return get_contract(uow.session, contract_id)
    domain.check_client_can_sign(status)
    contract.client_signatory, contract.client_signatory_title = signatory.name, signatory.title
    contract.client_signed_at = now()
    return _signed(
        uow, contract, domain.status_after_signature(status, by_firm=False), "contract.signed_by_client"
    )


def refuse_signature(uow: UnitOfWork, contract_id: str, refused_by: str, reason: str) -> ContractView:
    """2.4.3: the client refuses to sign; the contract goes back to negotiation (2.4.1). Publishes
    `contract.signature_refused`. Refusing a contract already back in negotiation changes nothing."""
    contract = one(uow.session, Contract, contract_id, "contract")
    if contract.status == ContractStatus.DRAFT.value:
        return get_contract(uow.session, contract_id)
    refused_by = required_text("refused_by", refused_by, NAME_LIMIT)
    reason = required_text("reason", reason, TEXT_LIMIT)
    return _reopen(
        uow,
        contract,
        f"client refused to sign ({refused_by}): {reason}",
        "contract.signature_refused",
        refused_by=refused_by,
        refusal_reason=reason,
    )


def reopen_negotiation(uow: UnitOfWork, contract_id: str, reason: str) -> ContractView:
    """2.4.3: the client did not sign within the signing period; the contract goes back to negotiation
    (2.4.1). A contract already back in negotiation (the client refused meanwhile) is left as it is."""
    contract = one(uow.session, Contract, contract_id, "contract")
    if contract.status == ContractStatus.DRAFT.value:
        return get_contract(uow.session, contract_id)
    reason = required_text("reason", reason, TEXT_LIMIT)
    return _reopen(uow, contract, reason, "contract.reopened", reopen_reason=reason)


def _reopen(uow: UnitOfWork, contract: Contract, note: str, event: str, **extra: Any) -> ContractView:
    """A new version with the same clauses and the reason as its note; the firm's signature, given to the
    version the client did not sign, is void."""
    domain.check_reopenable(ContractStatus(contract.status))
    current = uow.session.get(ContractVersion, (contract.contract_id, contract.current_version))
    assert current is not None
    contract.current_version += 1
    contract.status = ContractStatus.DRAFT.value
    contract.firm_signatory, contract.firm_signatory_title, contract.firm_signed_at = "", "", None
    uow.session.add(_version_row(contract, clauses_of(current), note))
    uow.session.flush()
    view = get_contract(uow.session, contract.contract_id)
    _emit(uow, event, view, **extra)
    return view


def _signed(uow: UnitOfWork, contract: Contract, status: ContractStatus, event: str) -> ContractView:
    contract.status = status.value
    if status is ContractStatus.SIGNED:
        contract.signed_at = now()
    uow.session.flush()
    view = get_contract(uow.session, contract.contract_id)
    signatures = {
        "firm_signatory": contract.firm_signatory,
        "firm_signed_at": contract.firm_signed_at,
        "client_signatory": contract.client_signatory,
        "client_signed_at": contract.client_signed_at,
    }
    _emit(uow, event, view, **signatures)
    if status is ContractStatus.SIGNED:
        _emit(uow, "contract.signed", view, signed_at=contract.signed_at, **signatures)
    return view


def distribute_contract(uow: UnitOfWork, contract_id: str, departments: Sequence[str]) -> ContractView:
    """2.4.3: copies of the signed contract go to the departments concerned as the basis for execution."""
    contract = one(uow.session, Contract, contract_id, "contract")
    domain.check_distributable(ContractStatus(contract.status))
    at = now()
    for department in departments or domain.DEFAULT_DEPARTMENTS:
        uow.session.add(Distribution(contract_id=contract_id, department=department, distributed_at=at))
    contract.status = ContractStatus.DISTRIBUTED.value
    contract.distributed_at = at
    uow.session.flush()
    view = get_contract(uow.session, contract_id)
    _emit(uow, "contract.distributed", view, distributed_to=[d.department for d in view.distributions])
    return view


def acknowledge_distribution(
    uow: UnitOfWork, contract_id: str, department: str, acknowledged_by: str
) -> ContractView:
    """A department confirms it received its copy; confirming again changes nothing."""
    department = required_text("department", department, 100)
    acknowledged_by = required_text("acknowledged_by", acknowledged_by, NAME_LIMIT)
    view = get_contract(uow.session, contract_id)
    domain.check_acknowledgeable(
        ContractStatus(view.contract.status), department, [d.department for d in view.distributions]
    )
    copy = next(d for d in view.distributions if d.department == department)
    if copy.acknowledged_at is not None:
        return view
    copy.acknowledged_by, copy.acknowledged_at = acknowledged_by, now()
    uow.session.flush()  # `copy` is one of `view.distributions`: the view is current
    _emit(uow, "contract.acknowledged", view, department=department, acknowledged_by=acknowledged_by)
    return view


def list_contracts(
    session: Session,
    engagement_id: str,
    client_id: str,
    status: ContractStatus | None,
    limit: int,
    offset: int,
) -> list[ContractView]:
    """Newest first, optionally of one engagement, one client or in one status."""
    query = select(Contract)
    if engagement_id:
        query = query.where(Contract.engagement_id == engagement_id)
    if client_id:
        query = query.where(Contract.client_id == client_id)
    if status is not None:
        query = query.where(Contract.status == status.value)
    query = query.order_by(Contract.created_at.desc(), Contract.contract_id).offset(offset).limit(limit)
    return _contract_views(session, list(session.scalars(query)))
