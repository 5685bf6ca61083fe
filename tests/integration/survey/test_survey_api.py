"""The survey service against a real database (SQLite, and PostgreSQL when configured) and real NATS:
every RPC and job operation, the status events on STATUS, idempotency and precise errors."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from functools import partial
from pathlib import Path
from typing import Any

import grpc
import pytest
from sqlalchemy import func, select

from consultflow.api.survey.v1 import survey_pb2 as pb
from consultflow.api.survey.v1 import survey_pb2_grpc as pb_grpc
from consultflow.survey import app
from consultflow.survey.jobs import operations
from consultflow.survey.orm import Problem, Survey
from tests.support.components import ComponentThread, running
from tests.support.dates import day, days_since, today
from tests.support.identity import signed_channel
from tests.support.jobs import completed, job, refused_job, run
from tests.support.rpc import refused, rpc_error
from tests.support.status import events_including

HANDLERS = operations.bind(None)


@pytest.fixture
def survey(
    tmp_path: Path, nats_url: str, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[ComponentThread]:
    monkeypatch.setattr(app, "OVERDUE_SCAN_SECONDS", 0.2)  # so a test sees overdue measures published
    with running("survey", app.build, tmp_path, nats_url, database_url) as thread:
        yield thread


def stub(thread: ComponentThread) -> pb_grpc.SurveyServiceStub:
    return pb_grpc.SurveyServiceStub(signed_channel(thread.address))


def plan(
    api: pb_grpc.SurveyServiceStub, engagement: str, client: str, day: str, request_id: str = ""
) -> pb.Survey:
    return api.CreatePlan(
        pb.CreatePlanRequest(
            engagement_id=engagement,
            client_id=client,
            method="phone_interview",
            respondents=["Ms Chen (sponsor)", "Mr Wang"],
            survey_date=day,
            content="how the market-entry study is used",
            request_id=request_id,
        )
    )


def ratings(sq: int, rq: int, tp: int, os: int) -> pb.Ratings:
    return pb.Ratings(service_quality=sq, result_quality=rq, team_performance=tp, overall_satisfaction=os)


def test_a_survey_from_plan_to_analysis_and_trend_over_grpc(survey: ComponentThread, nats_url: str) -> None:
    api = stub(survey)
    planned = plan(api, "E-1", "C-1", "2025-03-01", request_id="plan-1")
    assert plan(api, "E-1", "C-1", "2025-03-01", request_id="plan-1").survey_id == planned.survey_id
    assert (planned.status, planned.method, list(planned.respondents)) == (
        "planned",
        "phone_interview",
        ["Ms Chen (sponsor)", "Mr Wang"],
    )
    assert [q.question_id for q in planned.questions][-1] == "recommendation"

    completed(run(survey, HANDLERS, job("survey.send_questionnaire", survey_id=planned.survey_id)))
    first = api.SubmitResponse(
        pb.SubmitResponseRequest(
            survey_id=planned.survey_id,
            respondent="Ms Chen",
            ratings=ratings(4, 5, 3, 4),
            comments=pb.Comments(team_performance="juniors did most of the work"),
            recommendation=10,
            request_id="chen-1",
        )
    )
    again = api.SubmitResponse(
        pb.SubmitResponseRequest(
            survey_id=planned.survey_id, ratings=ratings(1, 1, 1, 1), request_id="chen-1"
        )
    )
    assert again.response_id == first.response_id
    api.SubmitResponse(
        pb.SubmitResponseRequest(
            survey_id=planned.survey_id,
            respondent="Mr Wang",
            ratings=ratings(2, 4, 4, 3),
            comments=pb.Comments(service_quality="replies took a week", general="kick-off was late"),
            recommendation=6,
        )
    )
    assert len(api.ListResponses(pb.ListResponsesRequest(survey_id=planned.survey_id)).responses) == 2
    analysis = api.AnalyseSurvey(pb.AnalyseSurveyRequest(survey_id=planned.survey_id))
    assert (analysis.satisfaction_score, analysis.lowest_rating, analysis.csat, analysis.nps) == (
        65.6,
        3.0,
        62.5,
        0.0,
    )
    assert analysis.HasField("nps") and analysis.nps_answers == 2
    assert [(r.dimension, list(r.comments)) for r in analysis.dissatisfaction_reasons] == [
        ("service_quality", ["replies took a week"]),
        ("team_performance", ["juniors did most of the work"]),
        ("overall_satisfaction", ["kick-off was late"]),
    ]
    assert api.GetAnalysis(pb.GetAnalysisRequest(survey_id=planned.survey_id)) == analysis
    assert api.GetSurvey(pb.GetSurveyRequest(survey_id=planned.survey_id)).status == "analysed"

    later = plan(api, "E-2", "C-1", "2025-09-01")
    completed(run(survey, HANDLERS, job("survey.send_questionnaire", survey_id=later.survey_id)))
    api.SubmitResponse(pb.SubmitResponseRequest(survey_id=later.survey_id, ratings=ratings(5, 5, 4, 5)))
    api.AnalyseSurvey(pb.AnalyseSurveyRequest(survey_id=later.survey_id))
    trend = api.GetClientTrend(pb.GetClientTrendRequest(client_id="C-1"))
    assert [p.engagement_id for p in trend.points] == ["E-1", "E-2"]
    assert not trend.points[1].HasField("nps")  # nobody answered the recommendation question
    assert (trend.points[1].satisfaction_score, trend.direction, trend.score_change) == (
        95.0,
        "improving",
        29.4,
    )
    assert [s.survey_id for s in api.ListSurveys(pb.ListSurveysRequest(client_id="C-1")).surveys] == [
        planned.survey_id,
        later.survey_id,
    ]

    problem = api.RecordProblem(
        pb.RecordProblemRequest(
            survey_id=planned.survey_id,
            description="Replies take a week",
            nature="communication",
            severity="major",
        )
    )
    assert (problem.status, problem.engagement_id) == ("open", "E-1")
    defined_on, two_days_ago = today(), day(-2)
    late = api.DefineMeasure(
        pb.DefineMeasureRequest(
            problem_id=problem.problem_id,
            measure="A named contact answers within a day",
            responsible_department="delivery",
            responsible_person="Mr Wang",
            deadline=two_days_ago,
            target="every reply within one working day",
        )
    )
    on_time = api.DefineMeasure(
        pb.DefineMeasureRequest(
            problem_id=problem.problem_id,
            measure="Weekly status mail",
            responsible_department="delivery",
            responsible_person="Ms Li",
            deadline=day(30),
            target="a mail every Friday",
        )
    )
    assert (late.overdue, on_time.overdue) == (True, False)
    overdue = api.ListOverdueMeasures(pb.ListOverdueMeasuresRequest(engagement_id="E-1"))
    assert [m.measure_id for m in overdue.measures] == [late.measure_id]
    published = events_including(nats_url, ["measure.overdue"], "survey")  # by the service's own scan
    overdue_event = next(e for e in published if e.type == "measure.overdue")
    assert overdue_event.subject == late.measure_id
    assert json.loads(overdue_event.payload_json)["days_overdue"] in days_since(two_days_ago, defined_on)
    assert api.CompleteMeasure(pb.CompleteMeasureRequest(measure_id=on_time.measure_id)).status == "done"
    progressed = api.ReportProgress(
        pb.ReportProgressRequest(problem_id=problem.problem_id, report="contact named")
    )
    assert (progressed.status, len(progressed.progress_reports)) == ("rectifying", 1)
    solved = api.ReportProgress(
        pb.ReportProgressRequest(problem_id=problem.problem_id, report="replies within a day", solved=True)
    )
    assert (solved.status, [m.status for m in solved.measures]) == ("solved", ["done", "done"])
    assert api.ListOverdueMeasures(pb.ListOverdueMeasuresRequest()).measures == []
    assert [p.problem_id for p in api.ListProblems(pb.ListProblemsRequest(status="solved")).problems] == [
        problem.problem_id
    ]

    expected = [
        "survey.planned",
        "questionnaire.sent",
        "response.submitted",
        "response.submitted",
        "survey.analysed",
        "survey.planned",
        "questionnaire.sent",
        "response.submitted",
        "survey.analysed",
        "problem.recorded",
        "measure.defined",
        "measure.defined",
        "measure.overdue",
        "measure.completed",
        "progress.reported",
        "measure.completed",
        "progress.reported",
        "problem.solved",
    ]
    events = events_including(nats_url, expected, "survey")
    assert sorted(e.type for e in events) == sorted(expected)
    assert {e.correlation["engagement_id"] for e in events} == {"E-1", "E-2"}
    submitted = next(e for e in events if e.type == "response.submitted")
    payload = json.loads(submitted.payload_json)
    assert (payload["survey_id"], payload["engagement_id"], submitted.correlation["engagement_id"]) == (
        planned.survey_id,
        "E-1",
        "E-1",
    )
    overdue_event = next(e for e in events if e.type == "measure.overdue")
    assert overdue_event.subject == late.measure_id
    assert json.loads(overdue_event.payload_json)["days_overdue"] in days_since(two_days_ago, defined_on)


def test_every_job_operation(survey: ComponentThread, nats_url: str) -> None:
    api = stub(survey)
    survey_id = completed(
        run(
            survey,
            HANDLERS,
            job(
                "survey.create_plan",
                business_key="E-5",
                client_id="C-5",
                survey_method="questionnaire",
                respondents="Ms Chen\nMr Wang",
                survey_date="2025-04-01",
                survey_content="",
            ),
        )
    )["survey_id"]
    stored = api.GetSurvey(pb.GetSurveyRequest(survey_id=survey_id))
    assert (stored.engagement_id, stored.method, len(stored.questions)) == ("E-5", "questionnaire", 5)
    assert completed(run(survey, HANDLERS, job("survey.send_questionnaire", survey_id=survey_id)))[
        "questionnaire_sent_at"
    ]
    assert completed(run(survey, HANDLERS, job("survey.send_reminder", survey_id=survey_id)))["reminded_at"]
    api.SubmitResponse(
        pb.SubmitResponseRequest(survey_id=survey_id, ratings=ratings(3, 2, 4, 3), recommendation=3)
    )
    assert completed(run(survey, HANDLERS, job("survey.send_reminder", survey_id=survey_id))) == {
        "reminded_at": None
    }
    analysed = completed(run(survey, HANDLERS, job("survey.analyse_responses", survey_id=survey_id)))
    assert (analysed["satisfaction_score"], analysed["lowest_rating"], analysed["csat"], analysed["nps"]) == (
        48.8,  # 25 × (0.25×2 + 0.25×1 + 0.20×3 + 0.30×2)
        2.0,
        25.0,
        -100.0,
    )
    assert [r["dimension"] for r in analysed["dissatisfaction_reasons"]] == [
        "result_quality",
        "service_quality",
        "overall_satisfaction",
    ]
    problem_id = completed(
        run(
            survey,
            HANDLERS,
            job(
                "survey.record_problem",
                survey_id=survey_id,
                problem_description="The report missed the client's export markets",
                problem_nature="result",
                problem_severity="severe",
            ),
        )
    )["problem_id"]
    second = completed(
        run(
            survey,
            HANDLERS,
            job(
                "survey.record_problem",
                survey_id=survey_id,
                problem_description="Nobody answered the client's calls for a week",
                problem_nature="communication",
                problem_severity="moderate",
            ),
        )
    )
    assert second["problem_ids"] == [problem_id, second["problem_id"]]
    measure_id = completed(
        run(
            survey,
            HANDLERS,
            job(
                "survey.define_measure",
                problem_id=problem_id,
                measure="Add a chapter on the export markets",
                responsible_department="research",
                responsible_person="Ms Li",
                measure_deadline=day(30),
                measure_target="the client signs off the chapter",
            ),
        )
    )["measure_id"]
    assert measure_id

    # 5.2.2: several measures per problem; 5.2.3: the people they name rectify it, each once
    def measure(person: str, text: str) -> Mapping[str, Any]:
        return completed(
            run(
                survey,
                HANDLERS,
                job(
                    "survey.define_measure",
                    problem_id=problem_id,
                    measure=text,
                    responsible_department="delivery",
                    responsible_person=person,
                    measure_deadline=day(30),
                    measure_target="the client confirms",
                ),
            )
        )

    assert measure("Mr Wu", "Walk the client through the chapter")["responsible_people"] == ["Ms Li", "Mr Wu"]
    assert measure("Ms Li", "Send a summary")["responsible_people"] == ["Ms Li", "Mr Wu"]
    report = job(
        "survey.report_progress", problem_id=problem_id, progress_report="draft sent", problem_solved=False
    )
    assert completed(run(survey, HANDLERS, report)) == {"problem_solved": False}
    solved = job(
        "survey.report_progress", problem_id=problem_id, progress_report="signed off", problem_solved="yes"
    )
    assert completed(run(survey, HANDLERS, solved)) == {"problem_solved": True}
    again = {"problem_id": problem_id, "progress_report": "x", "problem_solved": True}
    assert "solved already" in refused_job(survey, HANDLERS, "survey.report_progress", again)

    expected = [
        "survey.planned",
        "questionnaire.sent",
        "reminder.sent",
        "response.submitted",
        "survey.analysed",
        "problem.recorded",
        "problem.recorded",
        "measure.defined",
        "measure.defined",
        "measure.defined",
        "progress.reported",
        "measure.completed",
        "measure.completed",
        "measure.completed",
        "progress.reported",
        "problem.solved",
    ]
    events = events_including(nats_url, expected, "survey")
    assert sorted(e.type for e in events) == sorted(expected)
    assert {e.correlation["engagement_id"] for e in events} == {"E-5"}


def test_interview_answers_recorded_as_a_job(survey: ComponentThread, nats_url: str) -> None:
    """5.1.2: a phone interview needs no questionnaire sent: the recorded interview is the sending and the
    response; a questionnaire survey refuses interview answers. 5.1.3: the causes of dissatisfaction are
    recorded after the analysis."""
    api = stub(survey)
    plan = {
        "business_key": "E-6",
        "client_id": "C-6",
        "respondents": "Ms Chen",
        "survey_date": "2025-04-01",
        "survey_content": "",
    }
    survey_id = completed(
        run(survey, HANDLERS, job("survey.create_plan", survey_method="phone_interview", **plan))
    )["survey_id"]
    answers = {
        "survey_id": survey_id,
        "interviewee": "Ms Chen",
        "service_quality": "4",
        "result_quality": "2",
        "team_performance": "4",
        "overall_satisfaction": "3",
        "interview_notes": "The charts were hard to read",
    }
    recorded = completed(run(survey, HANDLERS, job("survey.record_interview", **answers)))
    assert recorded["response_id"]
    stored = api.GetSurvey(pb.GetSurveyRequest(survey_id=survey_id))
    assert stored.status == "responded"
    analysed = completed(run(survey, HANDLERS, job("survey.analyse_responses", survey_id=survey_id)))
    assert analysed["lowest_rating"] == 2.0
    reasons = {r["dimension"]: r["comments"] for r in analysed["dissatisfaction_reasons"]}
    assert "result_quality" in reasons
    causes = {"survey_id": survey_id, "dissatisfaction_causes": "charts without labels; no summary"}
    assert completed(run(survey, HANDLERS, job("survey.record_causes", **causes)))["causes_recorded_at"]
    out_of_range = {**answers, "result_quality": "9"}
    assert "result_quality" in refused_job(survey, HANDLERS, "survey.record_interview", out_of_range)

    questionnaire_id = completed(
        run(survey, HANDLERS, job("survey.create_plan", survey_method="questionnaire", **plan))
    )["survey_id"]
    refused = refused_job(
        survey, HANDLERS, "survey.record_interview", {**answers, "survey_id": questionnaire_id}
    )
    assert "questionnaire survey" in refused
    unanalysed = {"survey_id": questionnaire_id, "dissatisfaction_causes": "x"}
    assert "not been analysed" in refused_job(survey, HANDLERS, "survey.record_causes", unanalysed)
    expected = [
        "survey.planned",
        "questionnaire.sent",
        "response.submitted",
        "survey.analysed",
        "causes.recorded",
        "survey.planned",
    ]
    events = events_including(nats_url, expected, "survey")
    of_interview = [e.type for e in events if e.correlation["engagement_id"] == "E-6"]
    assert sorted(of_interview) == sorted(expected)


def test_a_job_delivered_twice_acts_once(survey: ComponentThread) -> None:
    planning = job(
        "survey.create_plan",
        key="job-1",
        engagement_id="E-6",
        client_id="C-6",
        survey_method="face_to_face",
        respondents=["Ms Chen"],
        survey_date="2025-04-01",
        survey_content="",
    )
    first = completed(run(survey, HANDLERS, planning))
    second = run(survey, HANDLERS, planning)
    assert second.replayed and second.variables == first
    problem = job(
        "survey.record_problem",
        key="job-2",
        survey_id=first["survey_id"],
        problem_description="late",
        problem_nature="service",
        problem_severity="minor",
    )
    assert run(survey, HANDLERS, problem).variables == run(survey, HANDLERS, problem).variables
    assert survey.context is not None
    with survey.context.read() as session:
        assert session.scalar(select(func.count()).select_from(Survey)) == 1
        assert session.scalar(select(func.count()).select_from(Problem)) == 1


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_bad_requests_get_precise_codes_naming_the_field(survey: ComponentThread) -> None:
    api = stub(survey)
    planned = plan(api, "E-7", "C-7", "2025-05-01")
    no_nps = api.CreatePlan(
        pb.CreatePlanRequest(
            engagement_id="E-7",
            client_id="C-7",
            method="questionnaire",
            respondents=["x"],
            survey_date="2025-05-01",
            skip_recommendation=True,
        )
    )
    bad_plan = pb.CreatePlanRequest(
        engagement_id="E-7", client_id="C-7", method="telegram", respondents=["x"], survey_date="2025-05-01"
    )
    cases: list[tuple[Callable[[Any], Any], Any, grpc.StatusCode, str]] = [
        (api.CreatePlan, bad_plan, grpc.StatusCode.INVALID_ARGUMENT, "method: 'telegram' is not one of"),
        (
            api.CreatePlan,
            pb.CreatePlanRequest(
                engagement_id="E-7", client_id="C-7", method="questionnaire", survey_date="2025-05-01"
            ),
            grpc.StatusCode.INVALID_ARGUMENT,
            "respondents: is required",
        ),
        (
            api.CreatePlan,
            pb.CreatePlanRequest(
                engagement_id="E-7",
                client_id="C-7",
                method="questionnaire",
                respondents=["x"],
                survey_date="1 May",
            ),
            grpc.StatusCode.INVALID_ARGUMENT,
            "survey_date: '1 May' is not a date",
        ),
        (
            api.SubmitResponse,
            pb.SubmitResponseRequest(survey_id=planned.survey_id, ratings=ratings(4, 4, 4, 4)),
            grpc.StatusCode.FAILED_PRECONDITION,
            "has not been sent",
        ),
        (
            api.SubmitResponse,
            pb.SubmitResponseRequest(survey_id="nope", ratings=ratings(4, 4, 4, 4)),
            grpc.StatusCode.NOT_FOUND,
            "survey 'nope' not found",
        ),
        (
            api.SubmitResponse,
            pb.SubmitResponseRequest(survey_id=planned.survey_id, ratings=ratings(4, 0, 4, 4)),
            grpc.StatusCode.INVALID_ARGUMENT,
            "ratings.result_quality: is required",
        ),
        (
            api.SubmitResponse,
            pb.SubmitResponseRequest(
                survey_id=planned.survey_id, ratings=ratings(4, 4, 4, 4), recommendation=12
            ),
            grpc.StatusCode.INVALID_ARGUMENT,
            "recommendation: 12 is out of range",
        ),
        (
            api.AnalyseSurvey,
            pb.AnalyseSurveyRequest(survey_id=planned.survey_id),
            grpc.StatusCode.FAILED_PRECONDITION,
            "no responses",
        ),
        (
            api.GetAnalysis,
            pb.GetAnalysisRequest(survey_id=planned.survey_id),
            grpc.StatusCode.NOT_FOUND,
            "analysis",
        ),
        (
            api.GetClientTrend,
            pb.GetClientTrendRequest(),
            grpc.StatusCode.INVALID_ARGUMENT,
            "client_id: is required",
        ),
        (
            api.RecordProblem,
            pb.RecordProblemRequest(
                survey_id=planned.survey_id, description="x", nature="service", severity="awful"
            ),
            grpc.StatusCode.INVALID_ARGUMENT,
            "severity: 'awful'",
        ),
        (
            api.DefineMeasure,
            pb.DefineMeasureRequest(
                problem_id="nope",
                measure="x",
                responsible_department="d",
                responsible_person="p",
                deadline="2025-01-01",
                target="t",
            ),
            grpc.StatusCode.NOT_FOUND,
            "problem 'nope'",
        ),
        (
            api.ReportProgress,
            pb.ReportProgressRequest(problem_id="nope", report="x"),
            grpc.StatusCode.NOT_FOUND,
            "problem 'nope'",
        ),
        (api.ListSurveys, pb.ListSurveysRequest(page_size=-1), grpc.StatusCode.INVALID_ARGUMENT, "page_size"),
    ]
    for call, request, code, text in cases:
        refused(partial(call, request), code, text)

    completed(run(survey, HANDLERS, job("survey.send_questionnaire", survey_id=no_nps.survey_id)))
    error = rpc_error(
        api.SubmitResponse,
        pb.SubmitResponseRequest(survey_id=no_nps.survey_id, ratings=ratings(4, 4, 4, 4), recommendation=9),
    )
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT and (error.details() or "").startswith(
        "recommendation:"
    )
    problem = api.RecordProblem(
        pb.RecordProblemRequest(survey_id=planned.survey_id, description="x", nature="team", severity="minor")
    )
    error = rpc_error(
        api.ReportProgress,
        pb.ReportProgressRequest(problem_id=problem.problem_id, report="done", solved=True),
    )
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION and "no measure yet" in (error.details() or "")
    error = rpc_error(api.ReportProgress, pb.ReportProgressRequest(problem_id=problem.problem_id, report=" "))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT and (error.details() or "").startswith("report:")

    # Jobs name the diagram's variables, and a refused job is not retried.
    refusals: list[tuple[str, dict[str, Any], str]] = [
        (
            "survey.create_plan",
            {
                "engagement_id": "E-7",
                "client_id": "C-7",
                "survey_method": "fax",
                "respondents": "x",
                "survey_date": "2025-05-01",
                "survey_content": "",
            },
            "survey_method: 'fax'",
        ),
        (
            "survey.create_plan",
            {"engagement_id": "E-7", "client_id": "C-7", "survey_method": "fax", "survey_date": "2025-05-01"},
            "respondents: the diagram passes no",
        ),
        ("survey.send_reminder", {"survey_id": planned.survey_id}, "has not been sent"),
        ("survey.send_questionnaire", {"survey_id": ""}, "survey_id: is required"),
        (
            "survey.record_problem",
            {
                "survey_id": planned.survey_id,
                "problem_description": "x",
                "problem_nature": "bad",
                "problem_severity": "minor",
            },
            "problem_nature: 'bad'",
        ),
        (
            "survey.define_measure",
            {
                "problem_id": problem.problem_id,
                "measure": "x",
                "responsible_department": "d",
                "responsible_person": "",
                "measure_deadline": "2025-01-01",
                "measure_target": "t",
            },
            "responsible_person: is required",
        ),
        (
            "survey.define_measure",
            {
                "problem_id": problem.problem_id,
                "measure": "x",
                "responsible_department": "d",
                "responsible_person": "p",
                "measure_deadline": "tomorrow",
                "measure_target": "t",
            },
            "measure_deadline: 'tomorrow'",
        ),
        (
            "survey.report_progress",
            {"problem_id": problem.problem_id, "progress_report": "", "problem_solved": False},
            "progress_report: is required",
        ),
        (
            "survey.report_progress",
            {"problem_id": problem.problem_id, "progress_report": "x", "problem_solved": "perhaps"},
            "problem_solved: 'perhaps'",
        ),
    ]
    for operation, parameters, text in refusals:
        message = refused_job(survey, HANDLERS, operation, parameters)
        assert text in message, message
