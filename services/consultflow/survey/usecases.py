"""Survey use cases: each runs in the caller's unit of work and emits the status events of what it changed.

Queries take a plain session, so read-only RPCs can run them in `Database.read()` (on SQLite a deferred
BEGIN, which takes no write lock) and use cases in `uow.session`.

Every event carries the engagement id as correlation; payload keys are the process variables the
diagrams use (`survey_id`, `problem_id`, …), because a status event that becomes a BPMN message merges
its payload into the receiving process.
"""

from __future__ import annotations

import json
import uuid
from collections import defaultdict
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import and_, func, select, update
from sqlalchemy.orm import Session

from consultflow.platform.db import UnitOfWork, by_request, one, where_given
from consultflow.platform.inputs import required_text
from consultflow.platform.timeutil import now
from consultflow.survey.domain import (
    RECOMMENDATION,
    Answers,
    Causes,
    Dimension,
    MeasureStatus,
    Method,
    NewMeasure,
    NewProblem,
    NewResponse,
    ProblemStatus,
    Scores,
    SurveyPlan,
    SurveyStatus,
    Trend,
    TrendPoint,
    analyse,
    check_analysed,
    check_can_solve,
    check_interview_method,
    check_measure_open,
    check_problem_unsolved,
    check_questionnaire_sent,
    check_recommendation_asked,
    questionnaire,
    status_after_response,
    trend,
)
from consultflow.survey.orm import Analysis, Measure, Problem, ProgressReport, Response, Survey

# --- views: the entity's state as event payloads (process variable names) ------------------------------


def questions_of(survey: Survey) -> list[dict[str, Any]]:
    return list(json.loads(survey.questions))


def asks_recommendation(survey: Survey) -> bool:
    return any(q["question_id"] == RECOMMENDATION for q in questions_of(survey))


def survey_payload(survey: Survey) -> dict[str, Any]:
    return {
        "survey_id": survey.survey_id,
        "engagement_id": survey.engagement_id,
        "client_id": survey.client_id,
        "survey_method": survey.method,
        "respondents": json.loads(survey.respondents),
        "survey_date": survey.survey_date,
        "survey_status": survey.status,
        "questionnaire_sent_at": survey.questionnaire_sent_at,
        "reminders": survey.reminders,
    }


def ratings_of(response: Response) -> dict[str, int]:
    return {d.value: int(getattr(response, d.value)) for d in Dimension}


def answers_of(response: Response) -> Answers:
    ratings = ratings_of(response)
    return Answers(
        {d: ratings[d.value] for d in Dimension}, json.loads(response.comments), response.recommendation
    )


def response_payload(response: Response, survey: Survey) -> dict[str, Any]:
    return {
        "response_id": response.response_id,
        "survey_id": survey.survey_id,
        "engagement_id": survey.engagement_id,
        "respondent": response.respondent,
        "ratings": ratings_of(response),
        "recommendation": response.recommendation,
        "submitted_at": response.submitted_at,
    }


def analysis_figures(analysis: Analysis) -> dict[str, Any]:
    """What `survey.analyse_responses` returns and `survey.analysed` carries."""
    return {
        "survey_id": analysis.survey_id,
        "response_count": analysis.response_count,
        "satisfaction_score": analysis.satisfaction_score,
        "lowest_rating": analysis.lowest_rating,
        "csat": analysis.csat,
        "nps": analysis.nps,
        "dissatisfaction_reasons": json.loads(analysis.details)["dissatisfaction_reasons"],
    }


def problem_payload(problem: Problem) -> dict[str, Any]:
    return {
        "problem_id": problem.problem_id,
        "survey_id": problem.survey_id,
        "engagement_id": problem.engagement_id,
        "problem_description": problem.description,
        "problem_nature": problem.nature,
        "problem_severity": problem.severity,
        "problem_status": problem.status,
        "problem_solved": problem.status == ProblemStatus.SOLVED.value,
    }


def measure_payload(measure: Measure) -> dict[str, Any]:
    return {
        "measure_id": measure.measure_id,
        "problem_id": measure.problem_id,
        "engagement_id": measure.engagement_id,
        "measure": measure.measure,
        "responsible_department": measure.responsible_department,
        "responsible_person": measure.responsible_person,
        "measure_deadline": measure.deadline,
        "measure_target": measure.target,
        "measure_status": measure.status,
    }


# --- surveys (5.1) ------------------------------------------------------------------------------------


def create_plan(uow: UnitOfWork, plan: SurveyPlan) -> Survey:
    """5.1.1: plans the survey and creates its questionnaire; the same request id returns the first."""
    existing = by_request(uow.session, Survey, plan.request_id)
    if existing is not None:
        return existing
    survey = Survey(
        survey_id=str(uuid.uuid4()),
        request_id=plan.request_id or None,
        engagement_id=plan.engagement_id,
        client_id=plan.client_id,
        method=plan.method.value,
        respondents=json.dumps(list(plan.respondents), ensure_ascii=False),
        survey_date=plan.survey_date,
        content=plan.content,
        questions=json.dumps([q.__dict__ for q in questionnaire(plan.include_recommendation)]),
        status=SurveyStatus.PLANNED.value,
        reminders=0,
        planned_at=now(),
    )
    uow.session.add(survey)
    uow.session.flush()
    uow.emit(
        "survey.planned", survey.survey_id, survey_payload(survey), {"engagement_id": survey.engagement_id}
    )
    return survey


def get_survey(session: Session, survey_id: str) -> Survey:
    return one(session, Survey, survey_id, "survey")


def list_surveys(
    session: Session, engagement_id: str, client_id: str, limit: int, offset: int
) -> list[Survey]:
    query = select(Survey)
    if engagement_id:
        query = query.where(Survey.engagement_id == engagement_id)
    if client_id:
        query = query.where(Survey.client_id == client_id)
    order = (Survey.planned_at, Survey.survey_id)
    return list(session.scalars(query.order_by(*order).offset(offset).limit(limit)))


def response_counts(session: Session, survey_ids: Sequence[str]) -> dict[str, int]:
    """How many responses each survey has, in one query for a whole page of surveys."""
    counts = dict.fromkeys(survey_ids, 0)
    if survey_ids:
        query = (
            select(Response.survey_id, func.count())
            .where(Response.survey_id.in_(survey_ids))
            .group_by(Response.survey_id)
        )
        counts.update((survey_id, count) for survey_id, count in session.execute(query))
    return counts


def response_count(session: Session, survey_id: str) -> int:
    return response_counts(session, [survey_id])[survey_id]


def send_questionnaire(uow: UnitOfWork, survey_id: str) -> Survey:
    """5.1.2: the questionnaire goes out (or the interview is arranged); sending twice changes nothing."""
    survey = get_survey(uow.session, survey_id)
    if survey.questionnaire_sent_at is None:
        survey.questionnaire_sent_at = now()
        survey.status = SurveyStatus.SENT.value
        uow.session.flush()
        uow.emit(
            "questionnaire.sent",
            survey.survey_id,
            survey_payload(survey),
            {"engagement_id": survey.engagement_id},
        )
    return survey


def send_reminder(uow: UnitOfWork, survey_id: str) -> datetime | None:
    """5.1.2: reminds respondents who have not answered; none is sent once a response arrived (None)."""
    survey = get_survey(uow.session, survey_id)
    check_questionnaire_sent(survey_id, survey.questionnaire_sent_at is not None)
    if response_count(uow.session, survey_id):
        return None
    survey.reminders += 1
    survey.last_reminded_at = now()
    uow.session.flush()
    uow.emit(
        "reminder.sent", survey.survey_id, survey_payload(survey), {"engagement_id": survey.engagement_id}
    )
    return survey.last_reminded_at


def submit_response(uow: UnitOfWork, command: NewResponse) -> tuple[Response, Survey]:
    """5.1.2: the client's answers; publishes `response.submitted` (→ message `survey.response_received`)."""
    existing = by_request(uow.session, Response, command.request_id)
    if existing is not None:
        return existing, get_survey(uow.session, existing.survey_id)
    survey = get_survey(uow.session, command.survey_id)
    answers = command.answers
    check_questionnaire_sent(command.survey_id, survey.questionnaire_sent_at is not None)
    check_recommendation_asked(answers, asks_recommendation(survey))
    response = Response(
        response_id=str(uuid.uuid4()),
        request_id=command.request_id or None,
        survey_id=survey.survey_id,
        respondent=command.respondent,
        **{d.value: answers.ratings[d] for d in Dimension},
        comments=json.dumps(dict(answers.comments), ensure_ascii=False),
        recommendation=answers.recommendation,
        submitted_at=now(),
    )
    uow.session.add(response)
    survey.status = status_after_response(SurveyStatus(survey.status)).value
    uow.session.flush()
    uow.emit(
        "response.submitted",
        response.response_id,
        response_payload(response, survey),
        {"engagement_id": survey.engagement_id},
    )
    return response, survey


def record_interview(uow: UnitOfWork, command: NewResponse) -> tuple[Response, Survey]:
    """5.1.2: the answers a staff member took down in a phone or face-to-face interview. The interview
    is the survey's sending (`questionnaire.sent`, once) and its answers are a response like any other
    (`response.submitted`); the same request id returns the first."""
    existing = by_request(uow.session, Response, command.request_id)
    if existing is not None:
        return existing, get_survey(uow.session, existing.survey_id)
    survey = get_survey(uow.session, command.survey_id)
    check_interview_method(survey.survey_id, Method(survey.method))
    send_questionnaire(uow, survey.survey_id)
    return submit_response(uow, command)


def list_responses(session: Session, survey_id: str) -> list[Response]:
    get_survey(session, survey_id)
    query = select(Response).where(Response.survey_id == survey_id)
    return list(session.scalars(query.order_by(Response.submitted_at, Response.response_id)))


def _details(scores: Scores) -> dict[str, Any]:
    return {
        "dimensions": [
            {
                "dimension": d.dimension.value,
                "weight": float(d.weight),
                "mean_rating": d.mean_rating,
                "csat": d.csat,
                "not_satisfied": d.not_satisfied,
            }
            for d in scores.dimensions
        ],
        "dissatisfaction_reasons": [
            {
                "dimension": r.dimension.value,
                "mean_rating": r.mean_rating,
                "not_satisfied": r.not_satisfied,
                "comments": list(r.comments),
            }
            for r in scores.reasons
        ],
    }


def analyse_survey(uow: UnitOfWork, survey_id: str) -> Analysis:
    """5.1.3: scores the responses so far and keeps the result; publishes `survey.analysed`."""
    survey = get_survey(uow.session, survey_id)
    scores = analyse([answers_of(r) for r in list_responses(uow.session, survey_id)])
    analysis = uow.session.get(Analysis, survey_id) or Analysis(survey_id=survey_id)
    analysis.client_id = survey.client_id
    analysis.response_count = scores.response_count
    analysis.satisfaction_score = scores.satisfaction_score
    analysis.lowest_rating = scores.lowest_rating
    analysis.csat = scores.csat
    analysis.nps = scores.nps
    analysis.nps_answers = scores.nps_answers
    analysis.details = json.dumps(_details(scores), ensure_ascii=False)
    analysis.analysed_at = now()
    uow.session.add(analysis)
    survey.status = SurveyStatus.ANALYSED.value
    uow.session.flush()
    uow.emit(
        "survey.analysed",
        survey.survey_id,
        {**analysis_figures(analysis), "engagement_id": survey.engagement_id, "client_id": survey.client_id},
        {"engagement_id": survey.engagement_id},
    )
    return analysis


def record_causes(uow: UnitOfWork, command: Causes) -> Analysis:
    """5.1.3: keeps the causes of dissatisfaction with the survey's analysis (recording again replaces
    them); publishes `causes.recorded`."""
    survey = get_survey(uow.session, command.survey_id)
    analysis = uow.session.get(Analysis, survey.survey_id)
    check_analysed(survey.survey_id, analysis is not None)
    assert analysis is not None
    analysis.causes = command.causes
    analysis.causes_recorded_at = now()
    uow.session.flush()
    uow.emit(
        "causes.recorded",
        survey.survey_id,
        {"survey_id": survey.survey_id, "dissatisfaction_causes": analysis.causes},
        {"engagement_id": survey.engagement_id},
    )
    return analysis


def get_analysis(session: Session, survey_id: str) -> Analysis:
    return one(session, Analysis, survey_id, "analysis of survey")


def client_trend(session: Session, client_id: str) -> Trend:
    """5.1.3: every analysed survey of the client, across its engagements."""
    client_id = required_text("client_id", client_id, 100)
    rows = session.execute(
        select(Analysis, Survey)
        .join(Survey, Survey.survey_id == Analysis.survey_id)
        .where(Analysis.client_id == client_id)
    ).all()
    points = []
    for analysis, survey in rows:
        dimensions = json.loads(analysis.details)["dimensions"]
        points.append(
            TrendPoint(
                survey_id=survey.survey_id,
                engagement_id=survey.engagement_id,
                survey_date=survey.survey_date,
                satisfaction_score=analysis.satisfaction_score,
                csat=analysis.csat,
                nps=analysis.nps,
                dimension_means={Dimension(d["dimension"]): d["mean_rating"] for d in dimensions},
            )
        )
    return trend(points)


# --- problems and rectification (5.2) ---------------------------------------------------------------


def record_problem(uow: UnitOfWork, command: NewProblem) -> Problem:
    """5.2.1: a problem, classified by nature and severity."""
    existing = by_request(uow.session, Problem, command.request_id)
    if existing is not None:
        return existing
    survey = get_survey(uow.session, command.survey_id)
    problem = Problem(
        problem_id=str(uuid.uuid4()),
        request_id=command.request_id or None,
        survey_id=survey.survey_id,
        engagement_id=survey.engagement_id,
        description=command.description,
        nature=command.nature.value,
        severity=command.severity.value,
        status=ProblemStatus.OPEN.value,
        recorded_at=now(),
    )
    uow.session.add(problem)
    uow.session.flush()
    uow.emit(
        "problem.recorded",
        problem.problem_id,
        problem_payload(problem),
        {"engagement_id": problem.engagement_id},
    )
    return problem


def get_problem(session: Session, problem_id: str) -> Problem:
    return one(session, Problem, problem_id, "problem")


def _unsolved(uow: UnitOfWork, problem_id: str) -> Problem:
    problem = get_problem(uow.session, problem_id)
    check_problem_unsolved(ProblemStatus(problem.status), problem_id)
    return problem


def list_problems(
    session: Session, engagement_id: str, survey_id: str, status: str, limit: int, offset: int
) -> list[Problem]:
    query = where_given(
        select(Problem),
        (Problem.engagement_id, engagement_id),
        (Problem.survey_id, survey_id),
        (Problem.status, status),
    )
    order = (Problem.recorded_at, Problem.problem_id)
    return list(session.scalars(query.order_by(*order).offset(offset).limit(limit)))


def unsolved_problem_ids(session: Session, survey_id: str) -> list[str]:
    """5.2.1: the survey's problems still to be rectified (5.2.2-5.2.3), in the order they were recorded."""
    query = (
        select(Problem.problem_id)
        .where(Problem.survey_id == survey_id, Problem.status != ProblemStatus.SOLVED.value)
        .order_by(Problem.recorded_at, Problem.problem_id)
    )
    return list(session.scalars(query))


def responsible_people(session: Session, problem_id: str) -> list[str]:
    """5.2.3: who rectifies a problem — the responsible people its open measures name (5.2.2), each once,
    in the order the measures were defined."""
    query = (
        select(Measure.responsible_person)
        .where(Measure.problem_id == problem_id, Measure.status == MeasureStatus.OPEN.value)
        .order_by(Measure.defined_at, Measure.measure_id)
    )
    return list(dict.fromkeys(session.scalars(query)))


def measures_of(session: Session, problem_ids: Sequence[str]) -> dict[str, list[Measure]]:
    """Every measure of the given problems, in the order they were defined (one query for a page)."""
    result: dict[str, list[Measure]] = defaultdict(list)
    if problem_ids:
        query = select(Measure).where(Measure.problem_id.in_(problem_ids))
        for measure in session.scalars(query.order_by(Measure.defined_at, Measure.measure_id)):
            result[measure.problem_id].append(measure)
    return result


def reports_of(session: Session, problem_ids: Sequence[str]) -> dict[str, list[ProgressReport]]:
    """Every progress report of the given problems, oldest first (one query for a page)."""
    result: dict[str, list[ProgressReport]] = defaultdict(list)
    if problem_ids:
        query = select(ProgressReport).where(ProgressReport.problem_id.in_(problem_ids))
        order = (ProgressReport.reported_at, ProgressReport.report_id)
        for report in session.scalars(query.order_by(*order)):
            result[report.problem_id].append(report)
    return result


def define_measure(uow: UnitOfWork, command: NewMeasure) -> Measure:
    """5.2.2: a measure with responsible department and person, deadline and target."""
    existing = by_request(uow.session, Measure, command.request_id)
    if existing is not None:
        return existing
    problem = _unsolved(uow, command.problem_id)
    measure = Measure(
        measure_id=str(uuid.uuid4()),
        request_id=command.request_id or None,
        problem_id=problem.problem_id,
        engagement_id=problem.engagement_id,
        measure=command.measure,
        responsible_department=command.responsible_department,
        responsible_person=command.responsible_person,
        deadline=command.deadline,
        target=command.target,
        status=MeasureStatus.OPEN.value,
        defined_at=now(),
    )
    uow.session.add(measure)
    problem.status = ProblemStatus.RECTIFYING.value
    uow.session.flush()
    uow.emit(
        "measure.defined",
        measure.measure_id,
        measure_payload(measure),
        {"engagement_id": measure.engagement_id},
    )
    return measure


def get_measure(session: Session, measure_id: str) -> Measure:
    return one(session, Measure, measure_id, "measure")


def _complete(uow: UnitOfWork, measure: Measure) -> None:
    measure.status = MeasureStatus.DONE.value
    measure.completed_at = now()
    uow.session.flush()
    uow.emit(
        "measure.completed",
        measure.measure_id,
        measure_payload(measure),
        {"engagement_id": measure.engagement_id},
    )


def complete_measure(uow: UnitOfWork, measure_id: str) -> Measure:
    """5.2.3: the responsible person carried the measure out."""
    measure = get_measure(uow.session, measure_id)
    check_measure_open(MeasureStatus(measure.status), measure_id)
    _complete(uow, measure)
    return measure


def report_progress(uow: UnitOfWork, problem_id: str, report: str, solved: bool) -> Problem:
    """5.2.3: progress reported to the client; "solved" closes the problem and completes its open
    measures. A problem cannot be solved before any measure was defined for it (5.2.2)."""
    report = required_text("report", report, 5000)
    problem = _unsolved(uow, problem_id)
    measures = measures_of(uow.session, [problem_id])[problem_id]
    check_can_solve(problem_id, solved, len(measures))
    uow.session.add(
        ProgressReport(
            report_id=str(uuid.uuid4()),
            problem_id=problem_id,
            report=report,
            solved=solved,
            reported_at=now(),
        )
    )
    if solved:
        problem.status = ProblemStatus.SOLVED.value
        problem.solved_at = now()
        for measure in measures:
            if measure.status != MeasureStatus.DONE.value:
                _complete(uow, measure)
    uow.session.flush()
    uow.emit(
        "progress.reported",
        problem.problem_id,
        {**problem_payload(problem), "progress_report": report},
        {"engagement_id": problem.engagement_id},
    )
    if solved:
        uow.emit(
            "problem.solved",
            problem.problem_id,
            problem_payload(problem),
            {"engagement_id": problem.engagement_id},
        )
    return problem


def _overdue(today: date) -> Any:
    """Open measures past their deadline (the SQL twin of `domain.measure_overdue`)."""
    return and_(Measure.status == MeasureStatus.OPEN.value, Measure.deadline < today)


def overdue_measures(
    session: Session, engagement_id: str, today: date, limit: int, offset: int
) -> list[Measure]:
    """5.2.2: open measures past their deadline, most overdue first."""
    query = select(Measure).where(_overdue(today))
    if engagement_id:
        query = query.where(Measure.engagement_id == engagement_id)
    order = (Measure.deadline, Measure.measure_id)
    return list(session.scalars(query.order_by(*order).offset(offset).limit(limit)))


def publish_overdue_measures(uow: UnitOfWork, today: date) -> list[Measure]:
    """5.2.2: publishes `measure.overdue` once for each measure that went past its deadline. The
    conditional update makes two service replicas that scan at once publish each measure once."""
    due = uow.session.scalars(
        select(Measure)
        .where(_overdue(today), Measure.overdue_published_at.is_(None))
        .order_by(Measure.deadline)
    ).all()
    published = []
    for measure in due:
        claimed = uow.session.execute(
            update(Measure)
            .where(Measure.measure_id == measure.measure_id, Measure.overdue_published_at.is_(None))
            .values(overdue_published_at=now())
            .execution_options(synchronize_session=False)
        )
        if claimed.rowcount != 1:  # type: ignore[attr-defined]
            continue
        payload = {**measure_payload(measure), "days_overdue": (today - measure.deadline).days}
        uow.emit("measure.overdue", measure.measure_id, payload, {"engagement_id": measure.engagement_id})
        published.append(measure)
    return published
