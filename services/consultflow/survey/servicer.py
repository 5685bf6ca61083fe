"""The survey gRPC API: thin translation between messages and use cases."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from typing import Any

import grpc
from sqlalchemy.orm import Session

from consultflow.api.survey.v1 import survey_pb2 as pb
from consultflow.api.survey.v1 import survey_pb2_grpc as pb_grpc
from consultflow.platform import policy
from consultflow.platform.authn import current_caller
from consultflow.platform.db import UnitOfWork
from consultflow.platform.paging import Page
from consultflow.platform.timeutil import now, timestamp
from consultflow.survey import usecases
from consultflow.survey.domain import (
    GENERAL,
    Dimension,
    MeasureStatus,
    NewMeasure,
    NewProblem,
    NewResponse,
    SurveyPlan,
    Trend,
    measure_overdue,
)
from consultflow.survey.orm import Analysis, Measure, Problem, ProgressReport, Response, Survey


def survey_message(survey: Survey, responses: int) -> pb.Survey:
    return pb.Survey(
        survey_id=survey.survey_id,
        engagement_id=survey.engagement_id,
        client_id=survey.client_id,
        method=survey.method,
        respondents=json.loads(survey.respondents),
        survey_date=survey.survey_date.isoformat(),
        content=survey.content,
        questions=[pb.Question(**q) for q in usecases.questions_of(survey)],
        status=survey.status,
        response_count=responses,
        reminders=survey.reminders,
        planned_at=timestamp(survey.planned_at),
        questionnaire_sent_at=timestamp(survey.questionnaire_sent_at),
        last_reminded_at=timestamp(survey.last_reminded_at),
    )


def response_message(response: Response, survey: Survey) -> pb.SurveyResponse:
    return pb.SurveyResponse(
        response_id=response.response_id,
        survey_id=survey.survey_id,
        engagement_id=survey.engagement_id,
        respondent=response.respondent,
        ratings=pb.Ratings(**usecases.ratings_of(response)),
        comments=pb.Comments(**json.loads(response.comments)),
        recommendation=response.recommendation,
        submitted_at=timestamp(response.submitted_at),
    )


def dimension_message(result: dict[str, Any]) -> pb.DimensionResult:
    return pb.DimensionResult(**result)


def analysis_message(analysis: Analysis, survey: Survey) -> pb.Analysis:
    details = json.loads(analysis.details)
    return pb.Analysis(
        survey_id=analysis.survey_id,
        engagement_id=survey.engagement_id,
        client_id=analysis.client_id,
        response_count=analysis.response_count,
        satisfaction_score=analysis.satisfaction_score,
        lowest_rating=analysis.lowest_rating,
        csat=analysis.csat,
        nps=analysis.nps,
        nps_answers=analysis.nps_answers,
        dimensions=[dimension_message(d) for d in details["dimensions"]],
        dissatisfaction_reasons=[pb.DissatisfactionReason(**r) for r in details["dissatisfaction_reasons"]],
        analysed_at=timestamp(analysis.analysed_at),
    )


def trend_message(client_id: str, trend: Trend) -> pb.ClientTrend:
    return pb.ClientTrend(
        client_id=client_id,
        points=[
            pb.TrendPoint(
                survey_id=p.survey_id,
                engagement_id=p.engagement_id,
                survey_date=p.survey_date.isoformat(),
                satisfaction_score=p.satisfaction_score,
                csat=p.csat,
                nps=p.nps,
                dimensions=[
                    pb.DimensionResult(dimension=d.value, mean_rating=mean)
                    for d, mean in p.dimension_means.items()
                ],
            )
            for p in trend.points
        ],
        average_score=trend.average_score,
        score_change=trend.score_change,
        direction=trend.direction,
        declining_dimensions=[d.value for d in trend.declining_dimensions],
    )


def measure_message(measure: Measure) -> pb.Measure:
    return pb.Measure(
        measure_id=measure.measure_id,
        problem_id=measure.problem_id,
        engagement_id=measure.engagement_id,
        measure=measure.measure,
        responsible_department=measure.responsible_department,
        responsible_person=measure.responsible_person,
        deadline=measure.deadline.isoformat(),
        target=measure.target,
        status=measure.status,
        overdue=measure_overdue(measure.deadline, measure.status == MeasureStatus.DONE.value, now().date()),
        defined_at=timestamp(measure.defined_at),
        completed_at=timestamp(measure.completed_at),
    )


def problem_message(problem: Problem, measures: list[Measure], reports: list[ProgressReport]) -> pb.Problem:
    return pb.Problem(
        problem_id=problem.problem_id,
        survey_id=problem.survey_id,
        engagement_id=problem.engagement_id,
        description=problem.description,
        nature=problem.nature,
        severity=problem.severity,
        status=problem.status,
        measures=[measure_message(m) for m in measures],
        progress_reports=[
            pb.ProgressReport(
                report_id=r.report_id, report=r.report, solved=r.solved, reported_at=timestamp(r.reported_at)
            )
            for r in reports
        ],
        recorded_at=timestamp(problem.recorded_at),
        solved_at=timestamp(problem.solved_at),
    )


def problem_messages(session: Session, problems: Sequence[Problem]) -> list[pb.Problem]:
    """Problems with their measures and progress reports, read in two queries however many there are."""
    ids = [p.problem_id for p in problems]
    measures, reports = usecases.measures_of(session, ids), usecases.reports_of(session, ids)
    return [problem_message(p, measures[p.problem_id], reports[p.problem_id]) for p in problems]


def response_from(request: pb.SubmitResponseRequest) -> NewResponse:
    return NewResponse.parse(
        survey_id=request.survey_id,
        respondent=request.respondent,
        ratings={d.value: getattr(request.ratings, d.value) for d in Dimension},
        comments={key: getattr(request.comments, key) for key in (*(d.value for d in Dimension), GENERAL)},
        recommendation=request.recommendation if request.HasField("recommendation") else None,
        request_id=request.request_id,
    )


class SurveyServicer(pb_grpc.SurveyServiceServicer):
    """Writes run in a unit of work; reads in a read-only session, which holds no write lock."""

    def __init__(
        self, uow: Callable[[], UnitOfWork], read: Callable[[], AbstractContextManager[Session]]
    ) -> None:
        self._uow = uow
        self._read = read

    def CreatePlan(self, request: pb.CreatePlanRequest, context: grpc.ServicerContext) -> pb.Survey:
        plan = SurveyPlan.parse(
            engagement_id=request.engagement_id,
            client_id=request.client_id,
            method=request.method,
            respondents=list(request.respondents),
            survey_date=request.survey_date,
            content=request.content,
            include_recommendation=not request.skip_recommendation,
            request_id=request.request_id,
        )
        with self._uow() as uow:
            survey = usecases.create_plan(uow, plan)
            message = survey_message(survey, usecases.response_count(uow.session, survey.survey_id))
            uow.commit()
            return message

    def GetSurvey(self, request: pb.GetSurveyRequest, context: grpc.ServicerContext) -> pb.Survey:
        with self._read() as session:
            survey = usecases.get_survey(session, request.survey_id)
            return survey_message(survey, usecases.response_count(session, survey.survey_id))

    def ListSurveys(
        self, request: pb.ListSurveysRequest, context: grpc.ServicerContext
    ) -> pb.ListSurveysResponse:
        page = Page.of(request.page_size, request.page_token)
        with self._read() as session:
            surveys = usecases.list_surveys(
                session, request.engagement_id, request.client_id, page.fetch, page.offset
            )
            shown = page.rows(surveys)
            counts = usecases.response_counts(session, [s.survey_id for s in shown])
            return pb.ListSurveysResponse(
                surveys=[survey_message(s, counts[s.survey_id]) for s in shown],
                next_page_token=page.next_token(surveys),
            )

    def SubmitResponse(
        self, request: pb.SubmitResponseRequest, context: grpc.ServicerContext
    ) -> pb.SurveyResponse:
        command = response_from(request)
        with self._uow() as uow:
            response, survey = usecases.submit_response(uow, command)
            policy.require_engagement(current_caller(), survey.engagement_id)  # before the commit
            uow.commit()
            return response_message(response, survey)

    def ListResponses(
        self, request: pb.ListResponsesRequest, context: grpc.ServicerContext
    ) -> pb.ListResponsesResponse:
        with self._read() as session:
            survey = usecases.get_survey(session, request.survey_id)
            responses = usecases.list_responses(session, survey.survey_id)
            return pb.ListResponsesResponse(responses=[response_message(r, survey) for r in responses])

    def AnalyseSurvey(self, request: pb.AnalyseSurveyRequest, context: grpc.ServicerContext) -> pb.Analysis:
        with self._uow() as uow:
            analysis = usecases.analyse_survey(uow, request.survey_id)
            message = analysis_message(analysis, usecases.get_survey(uow.session, analysis.survey_id))
            uow.commit()
            return message

    def GetAnalysis(self, request: pb.GetAnalysisRequest, context: grpc.ServicerContext) -> pb.Analysis:
        with self._read() as session:
            analysis = usecases.get_analysis(session, request.survey_id)
            return analysis_message(analysis, usecases.get_survey(session, analysis.survey_id))

    def GetClientTrend(
        self, request: pb.GetClientTrendRequest, context: grpc.ServicerContext
    ) -> pb.ClientTrend:
        with self._read() as session:
            return trend_message(request.client_id, usecases.client_trend(session, request.client_id))

    def RecordProblem(self, request: pb.RecordProblemRequest, context: grpc.ServicerContext) -> pb.Problem:
        command = NewProblem.parse(
            survey_id=request.survey_id,
            description=request.description,
            nature=request.nature,
            severity=request.severity,
            request_id=request.request_id,
        )
        with self._uow() as uow:
            problem = usecases.record_problem(uow, command)
            message = problem_messages(uow.session, [problem])[0]
            uow.commit()
            return message

    def GetProblem(self, request: pb.GetProblemRequest, context: grpc.ServicerContext) -> pb.Problem:
        with self._read() as session:
            return problem_messages(session, [usecases.get_problem(session, request.problem_id)])[0]

    def ListProblems(
        self, request: pb.ListProblemsRequest, context: grpc.ServicerContext
    ) -> pb.ListProblemsResponse:
        page = Page.of(request.page_size, request.page_token)
        with self._read() as session:
            problems = usecases.list_problems(
                session, request.engagement_id, request.survey_id, request.status, page.fetch, page.offset
            )
            return pb.ListProblemsResponse(
                problems=problem_messages(session, page.rows(problems)),
                next_page_token=page.next_token(problems),
            )

    def DefineMeasure(self, request: pb.DefineMeasureRequest, context: grpc.ServicerContext) -> pb.Measure:
        command = NewMeasure.parse(
            problem_id=request.problem_id,
            measure=request.measure,
            responsible_department=request.responsible_department,
            responsible_person=request.responsible_person,
            deadline=request.deadline,
            target=request.target,
            request_id=request.request_id,
        )
        with self._uow() as uow:
            measure = usecases.define_measure(uow, command)
            uow.commit()
            return measure_message(measure)

    def CompleteMeasure(
        self, request: pb.CompleteMeasureRequest, context: grpc.ServicerContext
    ) -> pb.Measure:
        with self._uow() as uow:
            measure = usecases.complete_measure(uow, request.measure_id)
            uow.commit()
            return measure_message(measure)

    def ReportProgress(self, request: pb.ReportProgressRequest, context: grpc.ServicerContext) -> pb.Problem:
        with self._uow() as uow:
            problem = usecases.report_progress(uow, request.problem_id, request.report, request.solved)
            message = problem_messages(uow.session, [problem])[0]
            uow.commit()
            return message

    def ListOverdueMeasures(
        self, request: pb.ListOverdueMeasuresRequest, context: grpc.ServicerContext
    ) -> pb.ListOverdueMeasuresResponse:
        page = Page.of(request.page_size, request.page_token)
        with self._read() as session:
            measures = usecases.overdue_measures(
                session, request.engagement_id, now().date(), page.fetch, page.offset
            )
            return pb.ListOverdueMeasuresResponse(
                measures=[measure_message(m) for m in page.rows(measures)],
                next_page_token=page.next_token(measures),
            )
