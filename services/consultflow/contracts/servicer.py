"""The contracts gRPC API: thin translation between messages and use cases (errors map in the bootstrap).

Writes run in a unit of work, reads in a read-only session that never takes the write lock; answers are
built inside either, while what was loaded is still attached. crm is asked before a transaction opens.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from decimal import Decimal

import grpc
from sqlalchemy.orm import Session

from consultflow.api.contracts.v1 import contracts_pb2 as pb
from consultflow.api.contracts.v1 import contracts_pb2_grpc as pb_grpc
from consultflow.contracts import domain, usecases
from consultflow.contracts.adapters import Dependencies
from consultflow.contracts.domain import (
    Clauses,
    ContractStatus,
    DraftContract,
    ProposalContent,
    QuotationStatus,
    QuotationTerms,
    ReviewVerdict,
    Signatory,
)
from consultflow.contracts.orm import ProposalVersion
from consultflow.contracts.usecases import ContractView, ProposalView, QuotationView
from consultflow.platform import policy
from consultflow.platform.authn import current_caller
from consultflow.platform.db import UnitOfWork
from consultflow.platform.inputs import choice, names, optional_choice
from consultflow.platform.paging import Page
from consultflow.platform.timeutil import timestamp


def money(value: Decimal) -> str:
    return format(value, "f")


# --- requests to commands --------------------------------------------------------------------------


def quotation_terms(
    currency: str, tax_rate: str, validity_days: int, items: Sequence[pb.LineItemInput]
) -> QuotationTerms:
    return QuotationTerms.parse(
        currency=currency,
        tax_rate=tax_rate,
        validity_days=validity_days,
        lines=[
            {
                "category": item.category,
                "description": item.description,
                "quantity": item.quantity,
                "unit_price": item.unit_price,
            }
            for item in items
        ],
    )


def clauses_from(message: pb.Clauses) -> Clauses:
    instalments = [{"percent": i.percent, "due": i.due} for i in message.payment_terms]
    return Clauses.parse(
        service_content=message.service_content,
        service_start=message.service_start,
        service_end=message.service_end,
        payment_terms=instalments or None,
        confidentiality=message.confidentiality,
        breach_liability=message.breach_liability,
    )


# --- views to messages -----------------------------------------------------------------------------


def quotation_message(view: QuotationView) -> pb.Quotation:
    q, v = view.quotation, view.current
    categories: dict[str, Decimal] = {}
    for line in view.lines:
        categories[line.category] = categories.get(line.category, Decimal(0)) + line.amount
    return pb.Quotation(
        quotation_id=q.quotation_id,
        engagement_id=q.engagement_id,
        client_id=q.client_id,
        status=q.status,
        version=q.current_version,
        currency=v.currency,
        tax_rate=money(v.tax_rate),
        lines=[
            pb.LineItem(
                position=line.position,
                category=line.category,
                description=line.description,
                quantity=money(line.quantity),
                unit_price=money(line.unit_price),
                amount=money(line.amount),
            )
            for line in view.lines
        ],
        category_totals=[
            pb.CategoryTotal(category=c.value, amount=money(categories[c.value]))
            for c in domain.Category
            if c.value in categories
        ],
        subtotal=money(v.subtotal),
        tax=money(v.tax),
        total=money(v.total),
        validity_days=v.validity_days,
        valid_until=q.valid_until.isoformat(),
        proposal_id=q.proposal_id or "",
        sent_at=timestamp(q.sent_at),
        answered_at=timestamp(q.answered_at),
        answered_by=q.answered_by,
        answer_note=q.answer_note,
        versions=[
            pb.QuotationVersionSummary(
                version=x.version,
                subtotal=money(x.subtotal),
                tax=money(x.tax),
                total=money(x.total),
                note=x.note,
                created_at=timestamp(x.created_at),
            )
            for x in view.versions
        ],
        created_at=timestamp(q.created_at),
    )


def milestones(version: ProposalVersion) -> list[pb.Milestone]:
    return [
        pb.Milestone(name=m.name, due_date=m.due_date.isoformat()) for m in usecases.milestones_of(version)
    ]


def proposal_version_message(version: ProposalVersion) -> pb.ProposalVersion:
    return pb.ProposalVersion(
        version=version.version,
        goals=version.goals,
        scope=version.scope,
        methods=version.methods,
        schedule=milestones(version),
        expected_results=[str(r) for r in version.expected_results],
        project_manager=version.project_manager,
        team_members=[str(m) for m in version.team_members],
        revision_note=version.revision_note,
        created_at=timestamp(version.created_at),
    )


def proposal_message(view: ProposalView) -> pb.Proposal:
    p = view.proposal
    return pb.Proposal(
        proposal_id=p.proposal_id,
        engagement_id=p.engagement_id,
        quotation_id=p.quotation_id,
        status=p.status,
        version=p.current_version,
        current=proposal_version_message(view.current),
        versions=[proposal_version_message(v) for v in view.versions],
        reviews=[
            pb.ProposalReview(
                version=r.version,
                reviewer=r.reviewer,
                verdict=r.verdict,
                comments=r.comments,
                reviewed_at=timestamp(r.reviewed_at),
            )
            for r in view.reviews
        ],
        approved_at=timestamp(p.approved_at),
    )


def clauses_message(clauses: Clauses, amounts: list[Decimal] | None = None) -> pb.Clauses:
    return pb.Clauses(
        service_content=clauses.service_content,
        service_start=clauses.service_start.isoformat() if clauses.service_start else "",
        service_end=clauses.service_end.isoformat() if clauses.service_end else "",
        payment_terms=[
            pb.Instalment(percent=money(i.percent), due=i.due, amount=money(amounts[n]) if amounts else "")
            for n, i in enumerate(clauses.payment_terms)
        ],
        confidentiality=clauses.confidentiality,
        breach_liability=clauses.breach_liability,
    )


def _signature(name: str, title: str, at: datetime | None) -> pb.Signature | None:
    return pb.Signature(signatory=name, signatory_title=title, signed_at=timestamp(at)) if name else None


def contract_message(view: ContractView) -> pb.Contract:
    c, clauses = view.contract, view.clauses
    current = clauses_message(clauses, view.instalment_amounts)
    proposal = view.proposal
    return pb.Contract(
        contract_id=c.contract_id,
        engagement_id=c.engagement_id,
        client_id=c.client_id,
        status=c.status,
        version=c.current_version,
        service_content=current.service_content,
        service_start=current.service_start,
        service_end=current.service_end,
        payment_terms=domain.render_instalments(clauses.payment_terms),
        confidentiality=current.confidentiality,
        breach_liability=current.breach_liability,
        scope=proposal.scope if proposal else "",
        milestones=milestones(proposal) if proposal else [],
        deliverables=[str(r) for r in proposal.expected_results] if proposal else [],
        signed_at=timestamp(c.signed_at),
        quotation_id=c.quotation_id,
        proposal_id=c.proposal_id,
        client_name=c.client_name,
        client_contacts=[
            pb.Party(
                name=p.get("name", ""),
                email=p.get("email", ""),
                phone=p.get("phone", ""),
                role=p.get("role", ""),
            )
            for p in c.client_contacts
        ],
        currency=c.currency,
        contract_value=money(c.contract_value),
        instalments=list(current.payment_terms),
        missing_clauses=[m.value for m in clauses.missing()],
        legal_review_round=c.legal_review_round,
        versions=[
            pb.ContractVersion(
                version=v.version,
                clauses=clauses_message(usecases.clauses_of(v)),
                change_note=v.change_note,
                created_at=timestamp(v.created_at),
            )
            for v in view.versions
        ],
        negotiation_rounds=[
            pb.NegotiationRound(round=r.round, version=r.version, notes=r.notes, held_at=timestamp(r.held_at))
            for r in view.rounds
        ],
        legal_reviews=[
            pb.LegalReview(
                round=r.review.round,
                version=r.review.version,
                reviewer=r.review.reviewer,
                verdict=r.review.verdict,
                opinions=[pb.LegalOpinion(clause=o.clause, opinion=o.opinion) for o in r.opinions],
                findings=[
                    pb.LegalFinding(focus=f.focus, verdict=f.verdict, opinion=f.opinion) for f in r.findings
                ],
                reviewed_at=timestamp(r.review.reviewed_at),
            )
            for r in view.reviews
        ],
        firm_signature=_signature(c.firm_signatory, c.firm_signatory_title, c.firm_signed_at),
        client_signature=_signature(c.client_signatory, c.client_signatory_title, c.client_signed_at),
        distributions=[
            pb.Distribution(
                department=d.department,
                distributed_at=timestamp(d.distributed_at),
                acknowledged_by=d.acknowledged_by,
                acknowledged_at=timestamp(d.acknowledged_at),
            )
            for d in view.distributions
        ],
        created_at=timestamp(c.created_at),
    )


class ContractsServicer(pb_grpc.ContractsServiceServicer):
    """Each method: validate into a command, run the use case (a write in one unit of work, a read in a
    read-only session), answer."""

    def __init__(
        self,
        uow: Callable[[], UnitOfWork],
        read: Callable[[], AbstractContextManager[Session]],
        deps: Dependencies,
    ) -> None:
        self._uow = uow
        self._read = read
        self._deps = deps

    # --- quotations

    def PrepareQuotation(
        self, request: pb.PrepareQuotationRequest, context: grpc.ServicerContext
    ) -> pb.Quotation:
        terms = quotation_terms(request.currency, request.tax_rate, request.validity_days, request.lines)
        with self._uow() as uow:
            view = usecases.prepare_quotation(uow, request.engagement_id, request.client_id, terms)
            uow.commit()
            return quotation_message(view)

    def ReviseQuotation(
        self, request: pb.ReviseQuotationRequest, context: grpc.ServicerContext
    ) -> pb.Quotation:
        terms = quotation_terms(request.currency, request.tax_rate, request.validity_days, request.lines)
        with self._uow() as uow:
            view = usecases.revise_quotation(uow, request.quotation_id, terms, request.note)
            uow.commit()
            return quotation_message(view)

    def SendOffer(self, request: pb.SendOfferRequest, context: grpc.ServicerContext) -> pb.Quotation:
        with self._uow() as uow:
            view = usecases.send_offer(uow, request.quotation_id, request.proposal_id)
            uow.commit()
            return quotation_message(view)

    def AcceptQuotation(
        self, request: pb.AnswerQuotationRequest, context: grpc.ServicerContext
    ) -> pb.Quotation:
        return self._answer(request, accepted=True)

    def RejectQuotation(
        self, request: pb.AnswerQuotationRequest, context: grpc.ServicerContext
    ) -> pb.Quotation:
        return self._answer(request, accepted=False)

    def _answer(self, request: pb.AnswerQuotationRequest, accepted: bool) -> pb.Quotation:
        with self._uow() as uow:
            view = usecases.answer_quotation(
                uow, request.quotation_id, accepted, request.answered_by, request.note
            )
            policy.require_engagement(current_caller(), view.quotation.engagement_id)  # before the commit
            uow.commit()
            return quotation_message(view)

    def ExpireQuotation(
        self, request: pb.ExpireQuotationRequest, context: grpc.ServicerContext
    ) -> pb.Quotation:
        with self._uow() as uow:
            view = usecases.expire_quotation(uow, request.quotation_id)
            uow.commit()
            return quotation_message(view)

    def GetQuotation(self, request: pb.GetQuotationRequest, context: grpc.ServicerContext) -> pb.Quotation:
        with self._read() as session:
            return quotation_message(usecases.get_quotation(session, request.quotation_id))

    def ListQuotations(
        self, request: pb.ListQuotationsRequest, context: grpc.ServicerContext
    ) -> pb.ListQuotationsResponse:
        page = Page.of(request.page_size, request.page_token)
        status = optional_choice("status", request.status, QuotationStatus)
        with self._read() as session:
            views = usecases.list_quotations(session, request.engagement_id, status, page.fetch, page.offset)
            return pb.ListQuotationsResponse(
                quotations=[quotation_message(v) for v in page.rows(views)],
                next_page_token=page.next_token(views),
            )

    # --- proposals

    def DraftProposal(self, request: pb.DraftProposalRequest, context: grpc.ServicerContext) -> pb.Proposal:
        content = ProposalContent.parse(
            goals=request.goals,
            scope=request.scope,
            methods=request.methods,
            schedule=[{"name": m.name, "due_date": m.due_date} for m in request.schedule],
            expected_results=list(request.expected_results),
            project_manager=request.project_manager,
            team_members=list(request.team_members),
        )
        with self._uow() as uow:
            view = usecases.draft_proposal(
                uow, request.quotation_id, request.engagement_id, content, request.revision_note
            )
            uow.commit()
            return proposal_message(view)

    def ReviewProposal(self, request: pb.ReviewProposalRequest, context: grpc.ServicerContext) -> pb.Proposal:
        verdict = choice("verdict", request.verdict, ReviewVerdict)
        with self._uow() as uow:
            view = usecases.review_proposal(
                uow, request.proposal_id, verdict, request.comments, request.reviewer
            )
            uow.commit()
            return proposal_message(view)

    def GetProposal(self, request: pb.GetProposalRequest, context: grpc.ServicerContext) -> pb.Proposal:
        with self._read() as session:
            return proposal_message(usecases.get_proposal(session, request.proposal_id))

    # --- contracts

    def DraftContract(self, request: pb.DraftContractRequest, context: grpc.ServicerContext) -> pb.Contract:
        command = DraftContract.parse(
            engagement_id=request.engagement_id,
            client_id=request.client_id,
            quotation_id=request.quotation_id,
            proposal_id=request.proposal_id,
            clauses=clauses_from(request.clauses),
            negotiation_notes=request.negotiation_notes,
        )
        client = self._deps.crm.client(command.client_id)  # before the transaction: no lock held meanwhile
        with self._uow() as uow:
            view = usecases.draft_contract(uow, command, client)
            uow.commit()
            return contract_message(view)

    def SubmitForLegalReview(
        self, request: pb.SubmitForLegalReviewRequest, context: grpc.ServicerContext
    ) -> pb.Contract:
        with self._uow() as uow:
            view = usecases.submit_for_legal_review(uow, request.contract_id)
            uow.commit()
            return contract_message(view)

    def RecordLegalReview(
        self, request: pb.RecordLegalReviewRequest, context: grpc.ServicerContext
    ) -> pb.Contract:
        verdict = choice("verdict", request.verdict, ReviewVerdict)
        opinions = domain.parse_opinions(
            "opinions", [{"clause": o.clause, "opinion": o.opinion} for o in request.opinions]
        )
        with self._uow() as uow:
            view = usecases.record_legal_review(uow, request.contract_id, verdict, opinions, request.reviewer)
            uow.commit()
            return contract_message(view)

    def ReviseContract(self, request: pb.ReviseContractRequest, context: grpc.ServicerContext) -> pb.Contract:
        changes = clauses_from(request.clauses)
        with self._uow() as uow:
            view = usecases.revise_contract(uow, request.contract_id, changes, request.revision_notes)
            uow.commit()
            return contract_message(view)

    def SignContract(self, request: pb.SignContractRequest, context: grpc.ServicerContext) -> pb.Contract:
        signatory = Signatory.parse(signatory=request.signatory, signatory_title=request.signatory_title)
        with self._uow() as uow:
            view = usecases.sign_contract(uow, request.contract_id, signatory)
            uow.commit()
            return contract_message(view)

    def RecordClientSignature(
        self, request: pb.RecordClientSignatureRequest, context: grpc.ServicerContext
    ) -> pb.Contract:
        signatory = Signatory.parse(signatory=request.signatory, signatory_title=request.signatory_title)
        with self._uow() as uow:
            view = usecases.record_client_signature(uow, request.contract_id, signatory)
            policy.require_engagement(current_caller(), view.contract.engagement_id)  # before the commit
            uow.commit()
            return contract_message(view)

    def RefuseSignature(
        self, request: pb.RefuseSignatureRequest, context: grpc.ServicerContext
    ) -> pb.Contract:
        with self._uow() as uow:
            view = usecases.refuse_signature(uow, request.contract_id, request.refused_by, request.reason)
            policy.require_engagement(current_caller(), view.contract.engagement_id)  # before the commit
            uow.commit()
            return contract_message(view)

    def DistributeContract(
        self, request: pb.DistributeContractRequest, context: grpc.ServicerContext
    ) -> pb.Contract:
        departments = names("departments", list(request.departments))
        with self._uow() as uow:
            view = usecases.distribute_contract(uow, request.contract_id, departments)
            uow.commit()
            return contract_message(view)

    def AcknowledgeDistribution(
        self, request: pb.AcknowledgeDistributionRequest, context: grpc.ServicerContext
    ) -> pb.Contract:
        with self._uow() as uow:
            view = usecases.acknowledge_distribution(
                uow, request.contract_id, request.department, request.acknowledged_by
            )
            uow.commit()
            return contract_message(view)

    def GetContract(self, request: pb.GetContractRequest, context: grpc.ServicerContext) -> pb.Contract:
        with self._read() as session:
            return contract_message(usecases.get_contract(session, request.contract_id))

    def ListContracts(
        self, request: pb.ListContractsRequest, context: grpc.ServicerContext
    ) -> pb.ListContractsResponse:
        page = Page.of(request.page_size, request.page_token)
        status = optional_choice("status", request.status, ContractStatus)
        with self._read() as session:
            views = usecases.list_contracts(
                session, request.engagement_id, request.client_id, status, page.fetch, page.offset
            )
            return pb.ListContractsResponse(
                contracts=[contract_message(v) for v in page.rows(views)],
                next_page_token=page.next_token(views),
            )
