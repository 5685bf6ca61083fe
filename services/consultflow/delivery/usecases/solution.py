"""Delivery use cases of 3.3 solution: versions of the solution and their expert reviews."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.orm import Session

from consultflow.delivery import domain
from consultflow.delivery.domain import Artefact, ExpertReview, Phase, SolutionStatus, Verdict
from consultflow.delivery.orm import Solution, SolutionReview
from consultflow.delivery.usecases.common import active, emit, get, move, new_id, project_of
from consultflow.delivery.usecases.versions import SOLUTIONS
from consultflow.platform.db import UnitOfWork
from consultflow.platform.errors import FailedPrecondition
from consultflow.platform.inputs import required_text
from consultflow.platform.timeutil import now


def submit_solution(
    uow: UnitOfWork, project_id: str, summary: str, artefacts: Sequence[Artefact]
) -> Solution:
    """3.3.1: a new solution version; one still awaiting review is superseded by it."""
    project = active(uow, project_id)
    if project.execution_started_at is not None:
        raise FailedPrecondition("execution has started on the approved solution")
    solution = Solution(
        solution_id=new_id(),
        project_id=project.project_id,
        version=SOLUTIONS.next_version(uow.session, project.project_id),
        summary=required_text("solution_summary", summary, domain.TEXT_LIMIT),
        status=SolutionStatus.SUBMITTED.value,
        artefacts=[{"kind": a.kind.value, "title": a.title, "link": a.link} for a in artefacts],
        submitted_at=now(),
    )
    uow.session.add(solution)
    move(project, Phase.SOLUTION_DESIGN)
    uow.session.flush()
    emit(
        uow,
        project,
        "solution.submitted",
        solution.solution_id,
        solution_id=solution.solution_id,
        solution_version=solution.version,
        artefacts=solution.artefacts,
    )
    return solution


def review_solution(uow: UnitOfWork, solution_id: str, verdict: ExpertReview) -> Solution:
    """3.3.2: the expert review of a version: approved, or revise with comments (until approved); the
    verdict and comment per review criterion are kept with it."""
    solution = get(uow.session, Solution, solution_id, "solution_id", "solution")
    project = active(uow, solution.project_id)
    approved = verdict.verdict is Verdict.APPROVED
    review = SOLUTIONS.review(
        uow.session,
        solution,
        "solution",
        approved,
        lambda: SolutionReview(
            review_id=new_id(),
            solution_id=solution.solution_id,
            reviewer=verdict.reviewer,
            verdict=verdict.verdict.value,
            comments=verdict.comments,
            **{
                f"{a.criterion.value}_{part}": value
                for a in verdict.criteria
                for part, value in (("verdict", a.verdict.value), ("comments", a.comments))
            },
            reviewed_at=now(),
        ),
    )
    uow.session.flush()
    emit(
        uow,
        project,
        "solution.approved" if approved else "solution.revision_requested",
        solution.solution_id,
        solution_id=solution.solution_id,
        solution_version=solution.version,
        review_comments=review.comments,
        review_criteria=[
            {"criterion": a.criterion.value, "verdict": a.verdict.value, "comments": a.comments}
            for a in verdict.criteria
        ],
    )
    return solution


def solution_reviews(session: Session, solution_id: str) -> list[SolutionReview]:
    """The reviews of one solution version, oldest first (a reply after a review needs only these)."""
    return SOLUTIONS.reviews_of(session, solution_id)


def solutions(session: Session, project_id: str) -> list[tuple[Solution, list[SolutionReview]]]:
    """The project's solution versions, oldest first, each with its reviews."""
    return SOLUTIONS.with_reviews(session, project_of(session, project_id).project_id)
