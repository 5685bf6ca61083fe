"""The survey operations that diagrams call as service tasks (`survey.<operation>`, docs/operations.md).

Each handler reads the catalogue's inputs, calls one use case and returns the catalogue's outputs.
Validation errors name the job's own variables (e.g. `survey_method`, not the API's `method`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from consultflow.platform.db import UnitOfWork
from consultflow.platform.errors import InvalidArgument
from consultflow.platform.inputs import renamed_fields, required_text, yes_no
from consultflow.platform.jobs import Job, Operations
from consultflow.platform.operation_spec import (
    ENGAGEMENT,
    date,
    decimal,
    flag,
    listing,
    one_of,
    optional,
    text,
)
from consultflow.survey import usecases
from consultflow.survey.domain import (
    GENERAL,
    Causes,
    Dimension,
    Method,
    Nature,
    NewMeasure,
    NewProblem,
    NewResponse,
    ProblemStatus,
    Severity,
    SurveyPlan,
)

operations = Operations[None]("survey")


def _required_id(job: Job, name: str) -> str:
    """An id the diagram must pass: empty is the diagram's mistake (InvalidArgument), not a missing row."""
    return required_text(name, job.text(name), 100)


@operations.handler(
    "create_plan",
    clauses=["5.1.1"],
    inputs=[
        ENGAGEMENT,
        text("client_id"),
        one_of("survey_method", Method),
        listing("respondents", "a list, or one name per line (commas also separate)"),
        date("survey_date"),
        optional(text("survey_content")),
        optional(flag("skip_recommendation", "a parameter only: leave out the 0–10 recommendation question")),
    ],
    outputs=[text("survey_id")],
    description="Creates the questionnaire: service quality, result quality, team performance, overall "
    "satisfaction, and the optional 0–10 recommendation question for NPS.",
)
def create_plan(uow: UnitOfWork, job: Job, deps: None) -> Mapping[str, Any]:
    """5.1.1: plans the survey and creates its questionnaire."""
    with renamed_fields(method="survey_method", content="survey_content"):
        plan = SurveyPlan.parse(
            engagement_id=job.engagement_id,
            client_id=job.text("client_id"),
            method=job.text("survey_method"),
            respondents=job.get("respondents"),
            survey_date=job.text("survey_date"),
            content=job.text("survey_content", ""),
            # an optional parameter of the service task only (docs/operations.md), never a process variable
            include_recommendation=not yes_no(
                "skip_recommendation", job.parameters.get("skip_recommendation", False)
            ),
            request_id=job.request_id,
        )
    survey = usecases.create_plan(uow, plan)
    return {"survey_id": survey.survey_id}


@operations.handler(
    "send_questionnaire",
    clauses=["5.1.2"],
    inputs=[text("survey_id")],
    outputs=[date("questionnaire_sent_at", "a timestamp; sending again returns the first time")],
)
def send_questionnaire(uow: UnitOfWork, job: Job, deps: None) -> Mapping[str, Any]:
    """5.1.2: sends the questionnaire (or arranges the interview)."""
    survey = usecases.send_questionnaire(uow, _required_id(job, "survey_id"))
    return {"questionnaire_sent_at": survey.questionnaire_sent_at}


@operations.handler(
    "send_reminder",
    clauses=["5.1.2"],
    inputs=[text("survey_id")],
    outputs=[optional(date("reminded_at", "a timestamp; null when a response arrived meanwhile"))],
)
def send_reminder(uow: UnitOfWork, job: Job, deps: None) -> Mapping[str, Any]:
    """5.1.2: reminds the respondents; `reminded_at` is null when a response had arrived meanwhile."""
    return {"reminded_at": usecases.send_reminder(uow, _required_id(job, "survey_id"))}


@operations.handler(
    "record_interview",
    clauses=["5.1.2"],
    inputs=[
        text("survey_id"),
        optional(text("interviewee")),
        *[one_of(d.value, [str(n) for n in range(1, 6)], "a rating 1–5") for d in Dimension],
        optional(text("interview_notes", "the response's general comment")),
    ],
    outputs=[text("response_id")],
    description="The interview counts as the survey's sending and its answers are a response; refused for "
    "a questionnaire survey.",
)
def record_interview(uow: UnitOfWork, job: Job, deps: None) -> Mapping[str, Any]:
    """5.1.2: records the answers of a phone or face-to-face interview as the client's response."""
    ratings = {d.value: _rating(job, d.value) for d in Dimension}
    renames = {f"ratings.{d}": d for d in ratings} | {f"comments.{GENERAL}": "interview_notes"}
    with renamed_fields(respondent="interviewee", **renames):
        command = NewResponse.parse(
            survey_id=_required_id(job, "survey_id"),
            respondent=job.text("interviewee", ""),
            ratings=ratings,
            comments={GENERAL: job.text("interview_notes", "")},
            recommendation=None,
            request_id=job.request_id,
        )
    response, _ = usecases.record_interview(uow, command)
    return {"response_id": response.response_id}


def _rating(job: Job, name: str) -> int:
    """A 1–5 rating from the interview form (an enum of digits, or a number)."""
    value = job.get(name)
    text = str(value).strip() if value is not None else ""
    if not text.isdigit():
        raise InvalidArgument(name, f"{value!r} is not a rating from 1 to 5")
    return int(text)


@operations.handler(
    "analyse_responses",
    clauses=["5.1.3"],
    inputs=[text("survey_id")],
    outputs=[
        decimal("satisfaction_score", "0–100"),
        decimal("lowest_rating", "the lowest dimension mean, 1–5 (read by satisfaction_followup.dmn)"),
        decimal("csat", "per cent"),
        optional(decimal("nps", "null when nobody answered the recommendation question")),
        listing("dissatisfaction_reasons", "{dimension, mean_rating, not_satisfied, comments}, worst first"),
    ],
    description="The formula is documented in the survey API (survey.proto).",
)
def analyse_responses(uow: UnitOfWork, job: Job, deps: None) -> Mapping[str, Any]:
    """5.1.3: analyses the responses: the satisfaction score and its companions (formula in survey.proto)."""
    analysis = usecases.analyse_survey(uow, _required_id(job, "survey_id"))
    figures = usecases.analysis_figures(analysis)
    return {
        key: figures[key]
        for key in ("satisfaction_score", "lowest_rating", "csat", "nps", "dissatisfaction_reasons")
    }


@operations.handler(
    "record_causes",
    clauses=["5.1.3"],
    inputs=[text("survey_id"), text("dissatisfaction_causes")],
    outputs=[date("causes_recorded_at", "a timestamp")],
    description="Recording again replaces them; refused before survey.analyse_responses.",
)
def record_causes(uow: UnitOfWork, job: Job, deps: None) -> Mapping[str, Any]:
    """5.1.3: records the causes of dissatisfaction staff found in the results."""
    with renamed_fields(causes="dissatisfaction_causes"):
        command = Causes.parse(survey_id=job.text("survey_id"), causes=job.text("dissatisfaction_causes"))
    analysis = usecases.record_causes(uow, command)
    assert analysis.causes_recorded_at is not None
    return {"causes_recorded_at": analysis.causes_recorded_at}


@operations.handler(
    "record_problem",
    clauses=["5.2.1"],
    inputs=[
        text("survey_id"),
        text("problem_description"),
        one_of("problem_nature", Nature),
        one_of("problem_severity", Severity),
    ],
    outputs=[
        text("problem_id"),
        listing("problem_ids", "every problem of the survey not yet solved, this one included"),
    ],
)
def record_problem(uow: UnitOfWork, job: Job, deps: None) -> Mapping[str, Any]:
    """5.2.1: records a problem with its nature and severity.

    `problem_ids` lists all the survey's problems still to be rectified (the diagram rectifies each)."""
    with renamed_fields(
        description="problem_description", nature="problem_nature", severity="problem_severity"
    ):
        command = NewProblem.parse(
            survey_id=job.text("survey_id"),
            description=job.text("problem_description"),
            nature=job.text("problem_nature"),
            severity=job.text("problem_severity"),
            request_id=job.request_id,
        )
    problem = usecases.record_problem(uow, command)
    problem_ids = usecases.unsolved_problem_ids(uow.session, problem.survey_id)
    return {"problem_id": problem.problem_id, "problem_ids": problem_ids}


@operations.handler(
    "define_measure",
    clauses=["5.2.2"],
    inputs=[
        text("problem_id"),
        text("measure"),
        text("responsible_department"),
        text("responsible_person"),
        date("measure_deadline"),
        text("measure_target"),
    ],
    outputs=[
        text("measure_id"),
        listing("responsible_people", "the people of the problem's open measures, in the order defined"),
    ],
    description="An open measure past its deadline is published once as measure.overdue.",
)
def define_measure(uow: UnitOfWork, job: Job, deps: None) -> Mapping[str, Any]:
    """5.2.2: defines a measure with responsible department and person, deadline and target.

    `responsible_people` names who rectifies the problem (5.2.3): the people of all its open measures."""
    with renamed_fields(deadline="measure_deadline", target="measure_target"):
        command = NewMeasure.parse(
            problem_id=job.text("problem_id"),
            measure=job.text("measure"),
            responsible_department=job.text("responsible_department"),
            responsible_person=job.text("responsible_person"),
            deadline=job.text("measure_deadline"),
            target=job.text("measure_target"),
            request_id=job.request_id,
        )
    measure = usecases.define_measure(uow, command)
    people = usecases.responsible_people(uow.session, measure.problem_id)
    return {"measure_id": measure.measure_id, "responsible_people": people}


@operations.handler(
    "report_progress",
    clauses=["5.2.3"],
    inputs=[text("problem_id"), text("progress_report"), flag("problem_solved")],
    outputs=[flag("problem_solved")],
    description="Solved closes the problem and completes its measures (refused before any measure).",
)
def report_progress(uow: UnitOfWork, job: Job, deps: None) -> Mapping[str, Any]:
    """5.2.3: reports progress to the client; solved closes the problem."""
    problem_id, solved = _required_id(job, "problem_id"), job.flag("problem_solved")
    with renamed_fields(report="progress_report"):
        problem = usecases.report_progress(uow, problem_id, job.text("progress_report"), solved)
    return {"problem_solved": problem.status == ProblemStatus.SOLVED.value}
