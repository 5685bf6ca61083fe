"""The survey service's tables: surveys with their questionnaire, responses, analyses, and the problems,
measures and progress reports of rectification."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Boolean, Date, DateTime, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class Survey(Base):
    """A satisfaction survey plan (5.1.1) and its questionnaire (5.1.2)."""

    __tablename__ = "surveys"
    survey_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    request_id: Mapped[str | None] = mapped_column(String(200), unique=True, nullable=True)
    engagement_id: Mapped[str] = mapped_column(String(100), index=True)
    client_id: Mapped[str] = mapped_column(String(100), index=True)
    method: Mapped[str] = mapped_column(String(30))
    respondents: Mapped[str] = mapped_column(Text)  # JSON list of names
    survey_date: Mapped[date] = mapped_column(Date)
    content: Mapped[str] = mapped_column(Text, default="")
    questions: Mapped[str] = mapped_column(Text)  # JSON: the questionnaire as planned
    status: Mapped[str] = mapped_column(String(20))
    reminders: Mapped[int] = mapped_column(Integer, default=0)
    planned_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    questionnaire_sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    last_reminded_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class Response(Base):
    """One respondent's answers (5.1.2)."""

    __tablename__ = "responses"
    response_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    request_id: Mapped[str | None] = mapped_column(String(200), unique=True, nullable=True)
    survey_id: Mapped[str] = mapped_column(ForeignKey("surveys.survey_id"), index=True)
    respondent: Mapped[str] = mapped_column(String(200), default="")
    service_quality: Mapped[int] = mapped_column(Integer)
    result_quality: Mapped[int] = mapped_column(Integer)
    team_performance: Mapped[int] = mapped_column(Integer)
    overall_satisfaction: Mapped[int] = mapped_column(Integer)
    comments: Mapped[str] = mapped_column(Text, default="{}")  # JSON: dimension or "general" → text
    recommendation: Mapped[int | None] = mapped_column(Integer, nullable=True)
    submitted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Analysis(Base):
    """The latest analysis of a survey (5.1.3); its figures feed the client's trend."""

    __tablename__ = "analyses"
    survey_id: Mapped[str] = mapped_column(ForeignKey("surveys.survey_id"), primary_key=True)
    client_id: Mapped[str] = mapped_column(String(100), index=True)
    response_count: Mapped[int] = mapped_column(Integer)
    satisfaction_score: Mapped[float] = mapped_column(Float)
    lowest_rating: Mapped[float] = mapped_column(Float)
    csat: Mapped[float] = mapped_column(Float)
    nps: Mapped[float | None] = mapped_column(Float, nullable=True)
    nps_answers: Mapped[int] = mapped_column(Integer)
    details: Mapped[str] = mapped_column(Text)  # JSON: dimension results and dissatisfaction reasons
    analysed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # 5.1.3: the causes of dissatisfaction as staff analysed them ("" until recorded)
    causes: Mapped[str] = mapped_column(Text, default="", server_default="")
    causes_recorded_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class Problem(Base):
    """A problem found in the survey or the client's feedback (5.2.1)."""

    __tablename__ = "problems"
    problem_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    request_id: Mapped[str | None] = mapped_column(String(200), unique=True, nullable=True)
    survey_id: Mapped[str] = mapped_column(ForeignKey("surveys.survey_id"), index=True)
    engagement_id: Mapped[str] = mapped_column(String(100), index=True)
    description: Mapped[str] = mapped_column(Text)
    nature: Mapped[str] = mapped_column(String(30))
    severity: Mapped[str] = mapped_column(String(30))
    status: Mapped[str] = mapped_column(String(20))
    recorded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    solved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class Measure(Base):
    """A rectification measure (5.2.2)."""

    __tablename__ = "measures"
    measure_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    request_id: Mapped[str | None] = mapped_column(String(200), unique=True, nullable=True)
    problem_id: Mapped[str] = mapped_column(ForeignKey("problems.problem_id"), index=True)
    engagement_id: Mapped[str] = mapped_column(String(100))
    measure: Mapped[str] = mapped_column(Text)
    responsible_department: Mapped[str] = mapped_column(String(200))
    responsible_person: Mapped[str] = mapped_column(String(200))
    deadline: Mapped[date] = mapped_column(Date)
    target: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(20))
    defined_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    # When `measure.overdue` was published, so it is published once.
    overdue_published_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    __table_args__ = (Index("ix_measures_due", "status", "deadline"),)


class ProgressReport(Base):
    """Progress reported to the client on a problem (5.2.3)."""

    __tablename__ = "progress_reports"
    report_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    problem_id: Mapped[str] = mapped_column(ForeignKey("problems.problem_id"), index=True)
    report: Mapped[str] = mapped_column(Text)
    solved: Mapped[bool] = mapped_column(Boolean)
    reported_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
