"""Survey rules as plain code (regulation 5.1–5.2): the questionnaire, what a response must hold, how a
survey is scored, how a client's satisfaction trends, and what problems and measures must hold.

The scoring formula is stated once, in `protos/consultflow/api/survey/v1/survey.proto`; this module is
its implementation. Arithmetic is exact (fractions) and rounds half up only at the end.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum
from fractions import Fraction

from consultflow.platform.errors import FailedPrecondition, InvalidArgument
from consultflow.platform.inputs import choice, iso_date, names, optional_text, required_text


class Method(StrEnum):
    """5.1.2: how the client is asked."""

    QUESTIONNAIRE = "questionnaire"
    PHONE_INTERVIEW = "phone_interview"
    FACE_TO_FACE = "face_to_face"


INTERVIEW_METHODS = frozenset({Method.PHONE_INTERVIEW, Method.FACE_TO_FACE})
"""5.1.2: the methods in which a staff member asks the client and takes the answers down."""


class Dimension(StrEnum):
    """5.1.2: what the client rates."""

    SERVICE_QUALITY = "service_quality"
    RESULT_QUALITY = "result_quality"
    TEAM_PERFORMANCE = "team_performance"
    OVERALL_SATISFACTION = "overall_satisfaction"


WEIGHTS: Mapping[Dimension, Fraction] = {
    Dimension.SERVICE_QUALITY: Fraction(25, 100),
    Dimension.RESULT_QUALITY: Fraction(25, 100),
    Dimension.TEAM_PERFORMANCE: Fraction(20, 100),
    Dimension.OVERALL_SATISFACTION: Fraction(30, 100),
}
"""[assumption] The weight of each dimension in the satisfaction score; the client's overall verdict
weighs most. They add up to 1."""

RATING_MIN, RATING_MAX = 1, 5
SATISFIED_FROM = 4
"""A rating of 4 or 5 counts as satisfied (csat); 3 or lower as not satisfied (a dissatisfaction reason)."""
RECOMMENDATION_MIN, RECOMMENDATION_MAX = 0, 10
PROMOTER_FROM, DETRACTOR_UP_TO = 9, 6
RECOMMENDATION = "recommendation"
GENERAL = "general"
TREND_BAND = Fraction(5)
"""[assumption] A score change of 5 points or more between two surveys is a trend, not noise."""
DIMENSION_DECLINE = Fraction(1, 2)
"""[assumption] A dimension whose mean fell by half a point or more is declining."""

_QUESTION_TEXT = {
    Dimension.SERVICE_QUALITY: "How satisfied are you with the quality of our service?",
    Dimension.RESULT_QUALITY: "How satisfied are you with the quality of the results delivered?",
    Dimension.TEAM_PERFORMANCE: "How satisfied are you with the project team's performance?",
    Dimension.OVERALL_SATISFACTION: "Overall, how satisfied are you with this engagement?",
}


class SurveyStatus(StrEnum):
    """5.1: planned → sent (5.1.2) → responded (a first response) → analysed (5.1.3)."""

    PLANNED = "planned"
    SENT = "sent"
    RESPONDED = "responded"
    ANALYSED = "analysed"


class Nature(StrEnum):
    """5.2.1 [assumption]: what kind of problem it is."""

    SERVICE = "service"
    RESULT = "result"
    TEAM = "team"
    COMMUNICATION = "communication"
    OTHER = "other"


class Severity(StrEnum):
    """5.2.1 [assumption]: how bad it is, on the impact scale of 6.2.2."""

    MINOR = "minor"
    MODERATE = "moderate"
    MAJOR = "major"
    SEVERE = "severe"


class ProblemStatus(StrEnum):
    """5.2: open → rectifying (a measure is defined, 5.2.2) → solved (reported so, 5.2.3)."""

    OPEN = "open"
    RECTIFYING = "rectifying"
    SOLVED = "solved"


class MeasureStatus(StrEnum):
    """5.2.2-5.2.3: a measure is open until it is carried out (or its problem is solved)."""

    OPEN = "open"
    DONE = "done"


@dataclass(frozen=True)
class Question:
    question_id: str
    text: str
    scale_min: int
    scale_max: int
    required: bool


def questionnaire(include_recommendation: bool) -> list[Question]:
    """5.1.2: the four rated dimensions, and optionally the 0–10 recommendation question (for NPS)."""
    questions = [Question(d.value, _QUESTION_TEXT[d], RATING_MIN, RATING_MAX, True) for d in Dimension]
    if include_recommendation:
        text = "How likely are you to recommend us to a colleague or another company?"
        questions.append(Question(RECOMMENDATION, text, RECOMMENDATION_MIN, RECOMMENDATION_MAX, False))
    return questions


def parse_respondents(field: str, value: object) -> tuple[str, ...]:
    """Who is asked: a list, or a text with one name per line (commas and semicolons also separate);
    at least one, at most 200, each named once."""
    respondents = names(field, value, 200)
    if not respondents:
        raise InvalidArgument(field, "is required: at least one respondent")
    if len(respondents) > 200:
        raise InvalidArgument(field, "names more than 200 respondents")
    return respondents


@dataclass(frozen=True)
class SurveyPlan:
    """5.1.1: method, respondents, content and timing of a survey."""

    engagement_id: str
    client_id: str
    method: Method
    respondents: tuple[str, ...]
    survey_date: date
    content: str
    include_recommendation: bool = True
    request_id: str = ""

    @classmethod
    def parse(
        cls,
        *,
        engagement_id: str,
        client_id: str,
        method: str,
        respondents: object,
        survey_date: str,
        content: str,
        include_recommendation: bool = True,
        request_id: str = "",
    ) -> SurveyPlan:
        return cls(
            engagement_id=required_text("engagement_id", engagement_id, 100),
            client_id=required_text("client_id", client_id, 100),
            method=choice("method", method, Method),
            respondents=parse_respondents("respondents", respondents),
            survey_date=iso_date("survey_date", survey_date),
            content=optional_text("content", content, 5000),
            include_recommendation=include_recommendation,
            request_id=optional_text("request_id", request_id, 200),
        )


@dataclass(frozen=True)
class Answers:
    """5.1.2: one response: a 1–5 rating per dimension, optional comments, optional 0–10 recommendation."""

    ratings: Mapping[Dimension, int]
    comments: Mapping[str, str] = field(default_factory=dict)
    recommendation: int | None = None

    @classmethod
    def parse(
        cls, *, ratings: Mapping[str, int], comments: Mapping[str, str], recommendation: int | None
    ) -> Answers:
        checked: dict[Dimension, int] = {}
        for dimension in Dimension:
            rating = ratings.get(dimension.value, 0)
            if not RATING_MIN <= rating <= RATING_MAX:
                problem = "is required" if not rating else f"{rating} is out of range"
                raise InvalidArgument(
                    f"ratings.{dimension.value}", f"{problem}: {RATING_MIN} to {RATING_MAX}"
                )
            checked[dimension] = rating
        kept = {}
        for key in (*(d.value for d in Dimension), GENERAL):
            text = optional_text(f"comments.{key}", comments.get(key, ""), 5000)
            if text:
                kept[key] = text
        if recommendation is not None and not RECOMMENDATION_MIN <= recommendation <= RECOMMENDATION_MAX:
            raise InvalidArgument(
                RECOMMENDATION,
                f"{recommendation} is out of range: {RECOMMENDATION_MIN} to {RECOMMENDATION_MAX}",
            )
        return cls(checked, kept, recommendation)


@dataclass(frozen=True)
class NewResponse:
    """5.1.2: one respondent's answers to a survey."""

    survey_id: str
    respondent: str
    answers: Answers
    request_id: str = ""

    @classmethod
    def parse(
        cls,
        *,
        survey_id: str,
        respondent: str,
        ratings: Mapping[str, int],
        comments: Mapping[str, str],
        recommendation: int | None,
        request_id: str = "",
    ) -> NewResponse:
        answers = Answers.parse(ratings=ratings, comments=comments, recommendation=recommendation)
        return cls(
            # no id is a survey that does not exist (NotFound), as for every other survey RPC
            survey_id=optional_text("survey_id", survey_id, 100),
            respondent=optional_text("respondent", respondent, 200),
            answers=answers,
            request_id=optional_text("request_id", request_id, 200),
        )


@dataclass(frozen=True)
class DimensionResult:
    dimension: Dimension
    weight: Fraction
    mean_rating: float
    csat: float
    not_satisfied: int


@dataclass(frozen=True)
class Reason:
    """5.1.3: why clients were not satisfied with a dimension, in their words."""

    dimension: Dimension
    mean_rating: float
    not_satisfied: int
    comments: tuple[str, ...]


@dataclass(frozen=True)
class Scores:
    """5.1.3: a survey's analysis (the formula is in survey.proto)."""

    response_count: int
    satisfaction_score: float
    lowest_rating: float
    csat: float
    nps: float | None
    nps_answers: int
    dimensions: tuple[DimensionResult, ...]
    reasons: tuple[Reason, ...]


def rounded(value: Fraction, places: int) -> float:
    """Half-up rounding of an exact value, as people round by hand."""
    exact = Decimal(value.numerator) / Decimal(value.denominator)
    return float(exact.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP))


def percent(part: int, whole: int) -> Fraction:
    return Fraction(100 * part, whole)


def analyse(responses: Sequence[Answers]) -> Scores:
    """5.1.3: satisfaction score, lowest rating, csat, nps and dissatisfaction reasons."""
    if not responses:
        raise FailedPrecondition("no responses to analyse yet (5.1.3 follows 5.1.2)")
    count = len(responses)
    results: list[DimensionResult] = []
    reasons: list[Reason] = []
    score = Fraction(0)
    satisfied_all = 0
    for dimension in Dimension:
        ratings = [r.ratings[dimension] for r in responses]
        mean = Fraction(sum(ratings), count)
        satisfied = sum(1 for rating in ratings if rating >= SATISFIED_FROM)
        satisfied_all += satisfied
        score += WEIGHTS[dimension] * (mean - RATING_MIN) / (RATING_MAX - RATING_MIN) * 100
        results.append(
            DimensionResult(
                dimension,
                WEIGHTS[dimension],
                rounded(mean, 2),
                rounded(percent(satisfied, count), 1),
                count - satisfied,
            )
        )
        unhappy = [r for r in responses if r.ratings[dimension] < SATISFIED_FROM]
        if unhappy:
            comments = [r.comments.get(dimension.value, "") for r in unhappy]
            if dimension is Dimension.OVERALL_SATISFACTION:
                comments += [r.comments.get(GENERAL, "") for r in unhappy]
            reasons.append(Reason(dimension, rounded(mean, 2), len(unhappy), tuple(c for c in comments if c)))
    answers = [r.recommendation for r in responses if r.recommendation is not None]
    nps = None
    if answers:
        promoters = sum(1 for a in answers if a >= PROMOTER_FROM)
        detractors = sum(1 for a in answers if a <= DETRACTOR_UP_TO)
        nps = rounded(percent(promoters - detractors, len(answers)), 1)
    order = list(Dimension)
    return Scores(
        response_count=count,
        satisfaction_score=rounded(score, 1),
        lowest_rating=min(d.mean_rating for d in results),
        csat=rounded(percent(satisfied_all, count * len(Dimension)), 1),
        nps=nps,
        nps_answers=len(answers),
        dimensions=tuple(results),
        reasons=tuple(sorted(reasons, key=lambda r: (r.mean_rating, order.index(r.dimension)))),
    )


@dataclass(frozen=True)
class TrendPoint:
    """One analysed survey of a client."""

    survey_id: str
    engagement_id: str
    survey_date: date
    satisfaction_score: float
    csat: float
    nps: float | None
    dimension_means: Mapping[Dimension, float]


@dataclass(frozen=True)
class Trend:
    points: tuple[TrendPoint, ...]
    average_score: float
    score_change: float
    direction: str
    declining_dimensions: tuple[Dimension, ...]


def trend(points: Sequence[TrendPoint]) -> Trend:
    """5.1.3: a client's satisfaction across its engagements, oldest first; the change compares the
    latest survey with the one before (bands in survey.proto)."""
    ordered = tuple(sorted(points, key=lambda p: p.survey_date))
    if not ordered:
        return Trend((), 0.0, 0.0, "", ())
    scores = [Fraction(str(p.satisfaction_score)) for p in ordered]
    average = rounded(sum(scores, Fraction(0)) / len(scores), 1)
    if len(ordered) < 2:
        return Trend(ordered, average, 0.0, "", ())
    previous, latest = ordered[-2], ordered[-1]
    change = scores[-1] - scores[-2]
    direction = "improving" if change >= TREND_BAND else "declining" if change <= -TREND_BAND else "stable"
    declining = tuple(
        d
        for d in Dimension
        if d in latest.dimension_means
        and d in previous.dimension_means
        and Fraction(str(latest.dimension_means[d])) - Fraction(str(previous.dimension_means[d]))
        <= -DIMENSION_DECLINE
    )
    return Trend(ordered, average, rounded(change, 1), direction, declining)


@dataclass(frozen=True)
class NewProblem:
    """5.2.1: a problem found in the survey or the client's feedback, classified."""

    survey_id: str
    description: str
    nature: Nature
    severity: Severity
    request_id: str = ""

    @classmethod
    def parse(
        cls, *, survey_id: str, description: str, nature: str, severity: str, request_id: str = ""
    ) -> NewProblem:
        return cls(
            survey_id=required_text("survey_id", survey_id, 100),
            description=required_text("description", description, 5000),
            nature=choice("nature", nature, Nature),
            severity=choice("severity", severity, Severity),
            request_id=optional_text("request_id", request_id, 200),
        )


@dataclass(frozen=True)
class NewMeasure:
    """5.2.2: a rectification measure with its responsible department and person, deadline and target."""

    problem_id: str
    measure: str
    responsible_department: str
    responsible_person: str
    deadline: date
    target: str
    request_id: str = ""

    @classmethod
    def parse(
        cls,
        *,
        problem_id: str,
        measure: str,
        responsible_department: str,
        responsible_person: str,
        deadline: str,
        target: str,
        request_id: str = "",
    ) -> NewMeasure:
        return cls(
            problem_id=required_text("problem_id", problem_id, 100),
            measure=required_text("measure", measure, 5000),
            responsible_department=required_text("responsible_department", responsible_department, 200),
            responsible_person=required_text("responsible_person", responsible_person, 200),
            deadline=iso_date("deadline", deadline),
            target=required_text("target", target, 2000),
            request_id=optional_text("request_id", request_id, 200),
        )


def measure_overdue(deadline: date, done: bool, today: date) -> bool:
    """5.2.2: an open measure past its deadline."""
    return not done and deadline < today


@dataclass(frozen=True)
class Causes:
    """5.1.3: the causes of the client's dissatisfaction, as staff analysed them from the results."""

    survey_id: str
    causes: str

    @classmethod
    def parse(cls, *, survey_id: str, causes: str) -> Causes:
        return cls(
            survey_id=required_text("survey_id", survey_id, 100),
            causes=required_text("causes", causes, 5000),
        )


def check_analysed(survey_id: str, analysed: bool) -> None:
    """5.1.3: the causes are analysed from the survey's results, so after the score was computed."""
    if not analysed:
        raise FailedPrecondition(f"survey {survey_id!r} has not been analysed: analyse its results first")


# --- the rules of the survey's and the problem's life (5.1.2-5.2.3) -------------------------------------


def check_questionnaire_sent(survey_id: str, sent: bool) -> None:
    """5.1.2: reminders and responses follow the questionnaire."""
    if not sent:
        raise FailedPrecondition(f"survey {survey_id!r}: the questionnaire has not been sent")


def check_recommendation_asked(answers: Answers, asked: bool) -> None:
    """5.1.2: a recommendation answers the optional question only where the questionnaire asks it."""
    if answers.recommendation is not None and not asked:
        raise InvalidArgument(RECOMMENDATION, "this survey's questionnaire does not ask it")


def check_interview_method(survey_id: str, method: Method) -> None:
    """5.1.2: interview answers are recorded for a phone or face-to-face survey only; a questionnaire is
    answered by the client."""
    if method not in INTERVIEW_METHODS:
        raise FailedPrecondition(
            f"survey {survey_id!r} is a {method.value} survey: the client answers it (SubmitResponse)"
        )


def status_after_response(status: SurveyStatus) -> SurveyStatus:
    """5.1.2: the first response moves a sent survey on; later ones (or one after the analysis) do not."""
    return SurveyStatus.RESPONDED if status is SurveyStatus.SENT else status


def check_problem_unsolved(status: ProblemStatus, problem_id: str) -> None:
    """5.2.2-5.2.3: a solved problem takes no more measures or progress reports."""
    if status is ProblemStatus.SOLVED:
        raise FailedPrecondition(f"problem {problem_id!r} is solved already")


def check_can_solve(problem_id: str, solved: bool, measures: int) -> None:
    """5.2.3 after 5.2.2: a problem cannot be solved before any measure was defined for it."""
    if solved and not measures:
        raise FailedPrecondition(
            f"problem {problem_id!r} has no measure yet: define one (5.2.2) before solving it"
        )


def check_measure_open(status: MeasureStatus, measure_id: str) -> None:
    """5.2.3: a measure is carried out once."""
    if status is MeasureStatus.DONE:
        raise FailedPrecondition(f"measure {measure_id!r} is done already")
