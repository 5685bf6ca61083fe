"""The survey rules without a server: questionnaire, response validation, the scoring formula of
survey.proto (score, lowest rating, csat, nps, dissatisfaction reasons), trends, problems and measures."""

from __future__ import annotations

from datetime import date
from fractions import Fraction

import pytest

from consultflow.platform.errors import FailedPrecondition, InvalidArgument
from consultflow.survey.domain import (
    WEIGHTS,
    Answers,
    Causes,
    Dimension,
    MeasureStatus,
    Method,
    NewMeasure,
    NewProblem,
    NewResponse,
    ProblemStatus,
    SurveyPlan,
    SurveyStatus,
    TrendPoint,
    analyse,
    check_analysed,
    check_can_solve,
    check_interview_method,
    check_measure_open,
    check_problem_unsolved,
    check_questionnaire_sent,
    check_recommendation_asked,
    measure_overdue,
    parse_respondents,
    questionnaire,
    rounded,
    status_after_response,
    trend,
)

SQ, RQ, TP, OS = (
    Dimension.SERVICE_QUALITY,
    Dimension.RESULT_QUALITY,
    Dimension.TEAM_PERFORMANCE,
    Dimension.OVERALL_SATISFACTION,
)


def answers(
    sq: int, rq: int, tp: int, os: int, recommendation: int | None = None, **comments: str
) -> Answers:
    ratings = {
        "service_quality": sq,
        "result_quality": rq,
        "team_performance": tp,
        "overall_satisfaction": os,
    }
    return Answers.parse(ratings=ratings, comments=comments, recommendation=recommendation)


def test_the_questionnaire_asks_the_four_dimensions_and_optionally_the_recommendation() -> None:
    with_nps = questionnaire(include_recommendation=True)
    assert [q.question_id for q in with_nps] == [
        "service_quality",
        "result_quality",
        "team_performance",
        "overall_satisfaction",
        "recommendation",
    ]
    assert all((q.scale_min, q.scale_max, q.required) == (1, 5, True) for q in with_nps[:4])
    assert (with_nps[4].scale_min, with_nps[4].scale_max, with_nps[4].required) == (0, 10, False)
    assert len(questionnaire(include_recommendation=False)) == 4


def test_the_weights_add_up_to_one() -> None:
    assert sum(WEIGHTS.values(), Fraction(0)) == 1


def test_all_fives_score_100_and_all_ones_score_0() -> None:
    top = analyse([answers(5, 5, 5, 5)])
    assert (top.satisfaction_score, top.csat, top.lowest_rating, top.reasons) == (100.0, 100.0, 5.0, ())
    bottom = analyse([answers(1, 1, 1, 1)])
    assert (bottom.satisfaction_score, bottom.csat, bottom.lowest_rating) == (0.0, 0.0, 1.0)


def test_a_worked_example_of_the_formula() -> None:
    a = answers(4, 5, 3, 4, recommendation=10, team_performance="juniors did most of the work")
    b = answers(
        2,
        4,
        4,
        3,
        recommendation=6,
        service_quality="replies took a week",
        result_quality="good report",  # rated 4: not a dissatisfaction reason
        overall_satisfaction="expected more",
        general="the kick-off was late",
    )
    scores = analyse([a, b])
    # means: service 3.0, result 4.5, team 3.5, overall 3.5
    # score = 100 × (0.25×2/4 + 0.25×3.5/4 + 0.20×2.5/4 + 0.30×2.5/4) = 65.625 → 65.6
    assert scores.satisfaction_score == 65.6
    assert scores.lowest_rating == 3.0
    assert scores.csat == 62.5  # 5 of 8 ratings are 4 or 5
    assert scores.nps == 0.0  # one promoter (10), one detractor (6)
    assert scores.nps_answers == 2
    assert [(d.dimension, d.mean_rating, d.csat, d.not_satisfied) for d in scores.dimensions] == [
        (SQ, 3.0, 50.0, 1),
        (RQ, 4.5, 100.0, 0),
        (TP, 3.5, 50.0, 1),
        (OS, 3.5, 50.0, 1),
    ]
    assert [(r.dimension, r.mean_rating, r.not_satisfied, r.comments) for r in scores.reasons] == [
        (SQ, 3.0, 1, ("replies took a week",)),
        (TP, 3.5, 1, ("juniors did most of the work",)),
        (OS, 3.5, 1, ("expected more", "the kick-off was late")),
    ]


@pytest.mark.parametrize(
    ("recommendations", "nps"),
    [([10, 9, 8, 7, 6, 0], 0.0), ([10, 10, 5], 33.3), ([9, 9], 100.0), ([0, 6, 8], -66.7), ([8, 7], 0.0)],
)
def test_nps_is_promoters_minus_detractors(recommendations: list[int], nps: float) -> None:
    assert analyse([answers(4, 4, 4, 4, r) for r in recommendations]).nps == nps


def test_nps_is_absent_when_nobody_answered_the_question() -> None:
    scores = analyse([answers(4, 4, 4, 4), answers(5, 5, 5, 5)])
    assert scores.nps is None and scores.nps_answers == 0


def test_only_answered_recommendations_count_for_nps() -> None:
    assert analyse([answers(4, 4, 4, 4, 10), answers(4, 4, 4, 4)]).nps == 100.0


def test_rounding_is_half_up_on_exact_values() -> None:
    assert rounded(Fraction(125, 100), 1) == 1.3  # binary floats and banker's rounding would give 1.2
    assert rounded(Fraction(2, 3), 2) == 0.67
    assert rounded(Fraction(-2, 3) * 100, 1) == -66.7


def test_no_responses_cannot_be_analysed() -> None:
    with pytest.raises(FailedPrecondition, match="no responses"):
        analyse([])


@pytest.mark.parametrize(
    ("ratings", "field"),
    [
        (
            {"service_quality": 4, "result_quality": 4, "team_performance": 0, "overall_satisfaction": 4},
            "team",
        ),
        (
            {"service_quality": 6, "result_quality": 4, "team_performance": 4, "overall_satisfaction": 4},
            "service",
        ),
        (
            {"service_quality": 4, "result_quality": -1, "team_performance": 4, "overall_satisfaction": 4},
            "result",
        ),
    ],
)
def test_every_rating_is_required_between_1_and_5(ratings: dict[str, int], field: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        Answers.parse(ratings=ratings, comments={}, recommendation=None)
    assert caught.value.field.startswith(f"ratings.{field}")


def test_the_recommendation_is_0_to_10() -> None:
    ratings = {d.value: 3 for d in Dimension}
    with pytest.raises(InvalidArgument) as caught:
        Answers.parse(ratings=ratings, comments={}, recommendation=11)
    assert caught.value.field == "recommendation"
    assert Answers.parse(ratings=ratings, comments={}, recommendation=0).recommendation == 0


def test_blank_comments_are_dropped() -> None:
    parsed = Answers.parse(
        ratings={d.value: 3 for d in Dimension},
        comments={"general": "  ", "service_quality": " slow "},
        recommendation=None,
    )
    assert parsed.comments == {"service_quality": "slow"}


def point(survey: str, day: int, score: float, **means: float) -> TrendPoint:
    return TrendPoint(
        survey,
        f"E-{survey}",
        date(2025, 1, day),
        score,
        0.0,
        None,
        {Dimension(k): v for k, v in means.items()},
    )


def test_a_trend_compares_the_latest_survey_with_the_one_before() -> None:
    result = trend(
        [
            point("c", 20, 85.0, team_performance=3.0, service_quality=4.0),
            point("a", 1, 60.0),
            point("b", 10, 75.0, team_performance=4.0, service_quality=4.2),
        ]
    )
    assert [p.survey_id for p in result.points] == ["a", "b", "c"]
    assert (result.average_score, result.score_change, result.direction) == (73.3, 10.0, "improving")
    assert result.declining_dimensions == (Dimension.TEAM_PERFORMANCE,)  # fell by 1.0; service only by 0.2


@pytest.mark.parametrize(
    ("scores", "direction"),
    [
        ((80.0, 75.0), "declining"),
        ((80.0, 75.1), "stable"),
        ((80.0, 84.9), "stable"),
        ((80.0, 85.0), "improving"),
    ],
)
def test_a_change_of_five_points_is_a_trend(scores: tuple[float, float], direction: str) -> None:
    assert trend([point("a", 1, scores[0]), point("b", 2, scores[1])]).direction == direction


def test_one_survey_has_no_direction_yet() -> None:
    result = trend([point("a", 1, 70.0)])
    assert (result.average_score, result.direction) == (70.0, "")
    assert trend([]).points == ()


def test_a_plan_names_its_invalid_field() -> None:
    good = {
        "engagement_id": "E-1",
        "client_id": "C-1",
        "method": "questionnaire",
        "respondents": "Ms Chen\nMr Wang, Ms Li",
        "survey_date": "2025-03-01",
        "content": "",
    }
    assert SurveyPlan.parse(**good).respondents == ("Ms Chen", "Mr Wang", "Ms Li")  # type: ignore[arg-type]
    for field, bad in [
        ("method", "carrier pigeon"),
        ("respondents", " , "),
        ("survey_date", "March"),
        ("client_id", ""),
        ("engagement_id", " "),
    ]:
        with pytest.raises(InvalidArgument) as caught:
            SurveyPlan.parse(**{**good, field: bad})  # type: ignore[arg-type]
        assert caught.value.field == field


MEASURE_FIELDS = (
    "problem_id",
    "measure",
    "responsible_department",
    "responsible_person",
    "deadline",
    "target",
)


def test_problems_and_measures_name_their_invalid_field() -> None:
    with pytest.raises(InvalidArgument) as caught:
        NewProblem.parse(survey_id="S-1", description="late replies", nature="weather", severity="major")
    assert caught.value.field == "nature"
    with pytest.raises(InvalidArgument) as caught:
        NewProblem.parse(survey_id="S-1", description="late replies", nature="service", severity="huge")
    assert caught.value.field == "severity"
    measure = (
        "P-1",
        "daily stand-up with the client",
        "delivery",
        "Mr Wang",
        "2025-05-01",
        "replies within 1 day",
    )
    assert NewMeasure.parse(**dict(zip(MEASURE_FIELDS, measure, strict=True))).deadline == date(2025, 5, 1)
    for index, field in [
        (2, "responsible_department"),
        (3, "responsible_person"),
        (4, "deadline"),
        (5, "target"),
    ]:
        values = list(measure)
        values[index] = ""
        with pytest.raises(InvalidArgument) as caught:
            NewMeasure.parse(**dict(zip(MEASURE_FIELDS, values, strict=True)))
        assert caught.value.field == field


def test_a_measure_is_overdue_when_open_past_its_deadline() -> None:
    deadline = date(2025, 5, 1)
    assert not measure_overdue(deadline, done=False, today=date(2025, 5, 1))
    assert measure_overdue(deadline, done=False, today=date(2025, 5, 2))
    assert not measure_overdue(deadline, done=True, today=date(2025, 5, 2))


def test_respondents_are_named_once_and_at_least_one() -> None:
    assert parse_respondents("respondents", ["Ms Chen", " Mr Wang ", "Ms Chen", ""]) == ("Ms Chen", "Mr Wang")
    assert parse_respondents("respondents", "Ms Chen; Mr Wang") == ("Ms Chen", "Mr Wang")
    for bad, problem in [(None, "at least one"), ([f"R{i}" for i in range(201)], "more than 200")]:
        with pytest.raises(InvalidArgument, match=problem) as caught:
            parse_respondents("respondents", bad)
        assert caught.value.field == "respondents"


def test_reminders_and_responses_follow_the_questionnaire() -> None:
    check_questionnaire_sent("S-1", sent=True)
    with pytest.raises(FailedPrecondition, match="survey 'S-1': the questionnaire has not been sent"):
        check_questionnaire_sent("S-1", sent=False)


def test_a_recommendation_answers_only_a_questionnaire_that_asks_it() -> None:
    check_recommendation_asked(answers(4, 4, 4, 4, 9), asked=True)
    check_recommendation_asked(answers(4, 4, 4, 4), asked=False)
    with pytest.raises(InvalidArgument) as caught:
        check_recommendation_asked(answers(4, 4, 4, 4, 9), asked=False)
    assert caught.value.field == "recommendation"


def test_the_first_response_moves_a_sent_survey_on() -> None:
    assert status_after_response(SurveyStatus.SENT) is SurveyStatus.RESPONDED
    assert status_after_response(SurveyStatus.RESPONDED) is SurveyStatus.RESPONDED
    assert status_after_response(SurveyStatus.ANALYSED) is SurveyStatus.ANALYSED  # a late response


def test_a_problem_is_solved_once_and_only_after_a_measure() -> None:
    check_problem_unsolved(ProblemStatus.OPEN, "P-1")
    check_problem_unsolved(ProblemStatus.RECTIFYING, "P-1")
    with pytest.raises(FailedPrecondition, match="problem 'P-1' is solved already"):
        check_problem_unsolved(ProblemStatus.SOLVED, "P-1")
    check_can_solve("P-1", solved=True, measures=1)
    check_can_solve("P-1", solved=False, measures=0)  # progress may be reported before any measure
    with pytest.raises(FailedPrecondition, match=r"no measure yet: define one \(5.2.2\)"):
        check_can_solve("P-1", solved=True, measures=0)


def test_a_measure_is_carried_out_once() -> None:
    check_measure_open(MeasureStatus.OPEN, "M-1")
    with pytest.raises(FailedPrecondition, match="measure 'M-1' is done already"):
        check_measure_open(MeasureStatus.DONE, "M-1")


def test_a_response_carries_checked_answers_and_names_its_invalid_field() -> None:
    ratings = {d.value: 4 for d in Dimension}
    response = NewResponse.parse(
        survey_id=" S-1 ", respondent=" Ms Chen ", ratings=ratings, comments={}, recommendation=9
    )
    assert (response.survey_id, response.respondent, response.answers.recommendation) == ("S-1", "Ms Chen", 9)
    for field, respondent, bad_ratings in [
        ("respondent", "x" * 201, ratings),
        ("ratings.team_performance", "", {**ratings, "team_performance": 6}),
    ]:
        with pytest.raises(InvalidArgument) as caught:
            NewResponse.parse(
                survey_id="S-1", respondent=respondent, ratings=bad_ratings, comments={}, recommendation=None
            )
        assert caught.value.field == field


def test_interview_answers_are_recorded_only_for_phone_and_face_to_face_surveys() -> None:
    check_interview_method("s-1", Method.PHONE_INTERVIEW)
    check_interview_method("s-1", Method.FACE_TO_FACE)
    with pytest.raises(FailedPrecondition, match="questionnaire survey"):
        check_interview_method("s-1", Method.QUESTIONNAIRE)


def test_the_causes_of_dissatisfaction_are_text_recorded_after_the_analysis() -> None:
    assert Causes.parse(survey_id="s-1", causes=" late replies ").causes == "late replies"
    with pytest.raises(InvalidArgument, match="causes"):
        Causes.parse(survey_id="s-1", causes="  ")
    check_analysed("s-1", True)
    with pytest.raises(FailedPrecondition, match="not been analysed"):
        check_analysed("s-1", False)
