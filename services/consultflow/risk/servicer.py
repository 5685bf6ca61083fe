"""The risk gRPC API: thin translation between messages and use cases."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager

import grpc
from sqlalchemy.orm import Session

from consultflow.api.risk.v1 import risk_pb2 as pb
from consultflow.api.risk.v1 import risk_pb2_grpc as pb_grpc
from consultflow.platform.db import UnitOfWork
from consultflow.platform.paging import Page
from consultflow.platform.timeutil import now, timestamp
from consultflow.risk import usecases
from consultflow.risk.adapters import Dependencies
from consultflow.risk.domain import (
    Assessment,
    DeviationDecision,
    NewRisk,
    Occurrence,
    Reading,
    ResponseChoice,
    ReviewFindings,
)
from consultflow.risk.orm import EarlyWarning, Register, ResponsePlan, Review, Risk


def risk_message(risk: Risk) -> pb.Risk:
    return pb.Risk(
        risk_id=risk.risk_id,
        engagement_id=risk.engagement_id,
        description=risk.description,
        category=risk.category,
        stage=risk.stage,
        source=risk.source,
        owner=risk.owner,
        identification_method=risk.identification_method,
        status=risk.status,
        likelihood=risk.likelihood,
        impact=risk.impact,
        level=risk.level,
        priority=risk.priority or 0,
        suggested_strategy=risk.suggested_strategy,
        strategy=risk.strategy,
        registered_at=timestamp(risk.registered_at),
        strategy_basis=risk.strategy_basis,
        assessed_at=timestamp(risk.assessed_at),
        closed_at=timestamp(risk.closed_at),
        close_reason=risk.close_reason,
        occurred_at=timestamp(risk.occurred_at),
        occurrence=risk.occurrence,
    )


def plan_message(plan: ResponsePlan) -> pb.ResponsePlan:
    return pb.ResponsePlan(
        response_id=plan.response_id,
        risk_id=plan.risk_id,
        engagement_id=plan.engagement_id,
        strategy=plan.strategy,
        suggested_strategy=plan.suggested_strategy,
        measures=plan.measures,
        owner=plan.owner,
        due_date=plan.due_date.isoformat() if plan.due_date else "",
        status=plan.status,
        overdue=usecases.response_overdue(plan, now().date()),
        effective=bool(plan.effective),
        decided_by=plan.decided_by,
        planned_at=timestamp(plan.planned_at),
        completed_at=timestamp(plan.completed_at),
        completion_notes=plan.completion_notes,
        deviation=plan.deviation,
        deviation_reason=plan.deviation_reason,
        deviation_decided_by=plan.deviation_decided_by,
        deviation_note=plan.deviation_note,
        deviation_decided_at=timestamp(plan.deviation_decided_at),
    )


def warning_message(warning: EarlyWarning) -> pb.Warning:
    return pb.Warning(
        warning_id=warning.warning_id,
        engagement_id=warning.engagement_id,
        risk_id=warning.risk_id,
        indicator=warning.indicator,
        value=warning.value,
        level=warning.level,
        trigger=warning.trigger,
        status=warning.status,
        raised_at=timestamp(warning.raised_at),
        acknowledged_at=timestamp(warning.acknowledged_at),
        acknowledged_by=warning.acknowledged_by,
        action=warning.action,
        escalated_at=timestamp(warning.escalated_at),
        escalations=warning.escalations,
        readings=warning.readings,
    )


def review_message(review: Review) -> pb.Review:
    return pb.Review(
        review_id=review.review_id,
        engagement_id=review.engagement_id,
        measures_carried_out=review.measures_carried_out,
        measures_effective=review.measures_effective,
        new_risk_found=review.new_risk_found,
        new_risk_id=review.new_risk_id,
        open_risks=review.open_risks,
        overdue_measures=review.overdue_measures,
        reviewed_by=review.reviewed_by,
        notes=review.notes,
        reviewed_at=timestamp(review.reviewed_at),
    )


def register_message(register: Register, counts: usecases.RegisterCounts) -> pb.Register:
    return pb.Register(
        register_id=register.register_id,
        engagement_id=register.engagement_id,
        client_name=register.client_name,
        stage=register.stage,
        status=register.status,
        open_risks=counts.open_risks,
        overdue_measures=counts.overdue_measures,
        open_warnings=counts.open_warnings,
        opened_at=timestamp(register.opened_at),
        closed_at=timestamp(register.closed_at),
        project_manager=register.project_manager,
    )


def matrix_message(view: usecases.MatrixView) -> pb.RiskMatrix:
    return pb.RiskMatrix(
        likelihoods=view.likelihoods,
        impacts=view.impacts,
        cells=[
            pb.MatrixCell(
                likelihood=c.cell.likelihood,
                impact=c.cell.impact,
                level=c.cell.level,
                priority=c.cell.priority,
                suggested_strategy=c.cell.suggested_strategy.value,
                strategy_basis=c.cell.strategy_basis,
                count=len(c.risks),
                risks=[
                    pb.RiskSummary(
                        risk_id=r.risk_id,
                        engagement_id=r.engagement_id,
                        description=r.description,
                        status=r.status,
                    )
                    for r in c.risks
                ],
            )
            for c in view.cells
        ],
        total=view.total,
        unassessed=view.unassessed,
    )


class RiskServicer(pb_grpc.RiskServiceServicer):
    """Writes run in a unit of work; reads in a read-only session, which holds no write lock."""

    def __init__(
        self,
        uow: Callable[[], UnitOfWork],
        read: Callable[[], AbstractContextManager[Session]],
        deps: Dependencies,
    ) -> None:
        self._uow = uow
        self._read = read
        self._deps = deps

    def RegisterRisk(self, request: pb.RegisterRiskRequest, context: grpc.ServicerContext) -> pb.Risk:
        command = NewRisk.parse(
            engagement_id=request.engagement_id,
            description=request.description,
            stage=request.stage,
            category=request.category,
            identification_method=request.identification_method,
            source=request.source,
            owner=request.owner,
            request_id=request.request_id,
        )
        with self._uow() as uow:
            risk = usecases.register_risk(uow, command)
            uow.commit()
            return risk_message(risk)

    def GetRisk(self, request: pb.GetRiskRequest, context: grpc.ServicerContext) -> pb.Risk:
        with self._read() as session:
            return risk_message(usecases.get_risk(session, request.risk_id))

    def ListRisks(self, request: pb.ListRisksRequest, context: grpc.ServicerContext) -> pb.ListRisksResponse:
        page = Page.of(request.page_size, request.page_token)
        with self._read() as session:
            risks = usecases.list_risks(
                session,
                request.engagement_id,
                request.status,
                request.category,
                request.stage,
                page.fetch,
                page.offset,
            )
            return pb.ListRisksResponse(
                risks=[risk_message(r) for r in page.rows(risks)], next_page_token=page.next_token(risks)
            )

    def AssessRisk(
        self, request: pb.AssessRiskRequest, context: grpc.ServicerContext
    ) -> pb.AssessRiskResponse:
        command = Assessment.parse(
            risk_id=request.risk_id,
            likelihood=request.likelihood,
            impact=request.impact,
            category=request.category,
            identification_method=request.identification_method,
        )
        with self._uow() as uow:
            risk, warning = usecases.assess_risk(uow, command, self._deps.tables)
            uow.commit()
            return pb.AssessRiskResponse(
                risk=risk_message(risk), warning=warning_message(warning) if warning else None
            )

    def GetRiskMatrix(self, request: pb.GetRiskMatrixRequest, context: grpc.ServicerContext) -> pb.RiskMatrix:
        with self._read() as session:
            view = usecases.risk_matrix(
                session, request.engagement_id, request.include_closed, self._deps.tables
            )
            return matrix_message(view)

    def PlanResponse(self, request: pb.PlanResponseRequest, context: grpc.ServicerContext) -> pb.ResponsePlan:
        choice = ResponseChoice.parse(
            risk_id=request.risk_id,
            strategy=request.strategy,
            measures=request.measures,
            owner=request.owner,
            due_date=request.due_date,
            decided_by=request.decided_by,
            deviation_reason=request.deviation_reason,
        )
        with self._uow() as uow:
            plan = usecases.plan_response(uow, choice)
            uow.commit()
            return plan_message(plan)

    def DecideDeviation(
        self, request: pb.DecideDeviationRequest, context: grpc.ServicerContext
    ) -> pb.ResponsePlan:
        decision = DeviationDecision.parse(
            response_id=request.response_id,
            approved=request.approved,
            decided_by=request.decided_by,
            note=request.note,
        )
        with self._uow() as uow:
            plan = usecases.decide_deviation(uow, decision)
            uow.commit()
            return plan_message(plan)

    def CompleteResponse(
        self, request: pb.CompleteResponseRequest, context: grpc.ServicerContext
    ) -> pb.ResponsePlan:
        with self._uow() as uow:
            plan = usecases.complete_response(uow, request.response_id, request.effective, request.notes)
            uow.commit()
            return plan_message(plan)

    def ListResponses(
        self, request: pb.ListResponsesRequest, context: grpc.ServicerContext
    ) -> pb.ListResponsesResponse:
        page = Page.of(request.page_size, request.page_token)
        with self._read() as session:
            plans = usecases.list_responses(
                session,
                request.engagement_id,
                request.risk_id,
                request.overdue_only,
                now().date(),
                page.fetch,
                page.offset,
            )
            return pb.ListResponsesResponse(
                responses=[plan_message(p) for p in page.rows(plans)], next_page_token=page.next_token(plans)
            )

    def CloseRisk(self, request: pb.CloseRiskRequest, context: grpc.ServicerContext) -> pb.Risk:
        with self._uow() as uow:
            risk = usecases.close_risk(uow, request.risk_id, request.reason)
            uow.commit()
            return risk_message(risk)

    def ReportRiskOccurred(
        self, request: pb.ReportRiskOccurredRequest, context: grpc.ServicerContext
    ) -> pb.Risk:
        occurrence = Occurrence.parse(
            risk_id=request.risk_id, description=request.description, reported_by=request.reported_by
        )
        with self._uow() as uow:
            risk = usecases.report_risk_occurred(uow, occurrence)
            uow.commit()
            return risk_message(risk)

    def GetRegister(self, request: pb.GetRegisterRequest, context: grpc.ServicerContext) -> pb.Register:
        with self._read() as session:
            register = usecases.get_register(session, request.engagement_id)
            counts = usecases.register_counts(session, register.engagement_id, now().date())
            return register_message(register, counts)

    def RecordReview(self, request: pb.RecordReviewRequest, context: grpc.ServicerContext) -> pb.Review:
        findings = ReviewFindings.parse(
            engagement_id=request.engagement_id,
            measures_carried_out=request.measures_carried_out,
            measures_effective=request.measures_effective,
            new_risk_found=request.new_risk_found,
            new_risk_description=request.new_risk_description,
            reviewed_by=request.reviewed_by,
            notes=request.notes,
        )
        with self._uow() as uow:
            review, _new_risk = usecases.record_review(uow, findings, now().date())
            uow.commit()
            return review_message(review)

    def ListReviews(
        self, request: pb.ListReviewsRequest, context: grpc.ServicerContext
    ) -> pb.ListReviewsResponse:
        page = Page.of(request.page_size, request.page_token)
        with self._read() as session:
            reviews = usecases.list_reviews(session, request.engagement_id, page.fetch, page.offset)
            return pb.ListReviewsResponse(
                reviews=[review_message(r) for r in page.rows(reviews)],
                next_page_token=page.next_token(reviews),
            )

    def RaiseWarning(self, request: pb.RaiseWarningRequest, context: grpc.ServicerContext) -> pb.Warning:
        reading = Reading.parse(
            engagement_id=request.engagement_id,
            indicator=request.indicator,
            value=request.value,
            status=request.status,
            risk_id=request.risk_id,
            request_id=request.request_id,
        )
        with self._uow() as uow:
            warning = usecases.raise_warning(uow, reading, self._deps.tables)
            uow.commit()
            return warning_message(warning)

    def AcknowledgeWarning(
        self, request: pb.AcknowledgeWarningRequest, context: grpc.ServicerContext
    ) -> pb.Warning:
        with self._uow() as uow:
            warning = usecases.acknowledge_warning(
                uow, request.warning_id, request.action, request.acknowledged_by
            )
            uow.commit()
            return warning_message(warning)

    def GetWarning(self, request: pb.GetWarningRequest, context: grpc.ServicerContext) -> pb.Warning:
        with self._read() as session:
            return warning_message(usecases.get_warning(session, request.warning_id))

    def ListWarnings(
        self, request: pb.ListWarningsRequest, context: grpc.ServicerContext
    ) -> pb.ListWarningsResponse:
        page = Page.of(request.page_size, request.page_token)
        with self._read() as session:
            warnings = usecases.list_warnings(
                session, request.engagement_id, request.status, request.level, page.fetch, page.offset
            )
            return pb.ListWarningsResponse(
                warnings=[warning_message(w) for w in page.rows(warnings)],
                next_page_token=page.next_token(warnings),
            )
