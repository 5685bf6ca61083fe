"""A versioned artefact with reviews (3.3 solutions, 4.1 deliverable sets): a new version supersedes the one
awaiting review, only that version is reviewed, and each version is listed with its reviews."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from sqlalchemy import select
from sqlalchemy.orm import InstrumentedAttribute, Session

from consultflow.delivery.deliverables_rules import DELIVERABLES_REVIEW
from consultflow.delivery.domain import SOLUTION_REVIEW, ReviewCycle
from consultflow.delivery.orm import DeliverableReview, DeliverableSet, Solution, SolutionReview

V = TypeVar("V", Solution, DeliverableSet)
R = TypeVar("R", SolutionReview, DeliverableReview)


@dataclass(frozen=True)
class Versions(Generic[V, R]):
    """The versions of one kind of artefact of a project and their reviews; the rules are `cycle`'s."""

    model: type[V]
    review_model: type[R]
    cycle: ReviewCycle
    key: Callable[[V], str]
    """A version's id."""
    reviewed: InstrumentedAttribute[str]
    """The column of a review naming the version it reviews."""

    def current(self, session: Session, project_id: str) -> V | None:
        """The project's newest version."""
        query = select(self.model).where(self.model.project_id == project_id)
        return session.scalars(query.order_by(self.model.version.desc()).limit(1)).first()

    def next_version(self, session: Session, project_id: str) -> int:
        """The number of a new version; the version awaiting review, if any, is superseded by it."""
        previous = self.current(session, project_id)
        if previous is not None and self.cycle.superseded_by_new_version(previous.status):
            previous.status = self.cycle.superseded
        return (previous.version if previous else 0) + 1

    def review(self, session: Session, version: V, what: str, approved: bool, review: Callable[[], R]) -> R:
        """Records the review `review()` makes of `version` (refused unless it awaits review) and sets the
        status its verdict gives."""
        self.cycle.check_reviewable(version.status, what)
        row = review()
        session.add(row)
        version.status = self.cycle.after_review(approved)
        return row

    def reviews_of(self, session: Session, version_id: str) -> list[R]:
        """The reviews of one version, oldest first (a reply after a review needs only these)."""
        query = select(self.review_model).where(self.reviewed == version_id)
        return list(session.scalars(query.order_by(self.review_model.reviewed_at)))

    def with_reviews(self, session: Session, project_id: str) -> list[tuple[V, list[R]]]:
        """Every version of the project, oldest first, each with its reviews."""
        query = select(self.model).where(self.model.project_id == project_id).order_by(self.model.version)
        return [(v, self.reviews_of(session, self.key(v))) for v in session.scalars(query)]


SOLUTIONS = Versions(
    Solution, SolutionReview, SOLUTION_REVIEW, lambda s: s.solution_id, SolutionReview.solution_id
)
DELIVERABLE_SETS = Versions(
    DeliverableSet,
    DeliverableReview,
    DELIVERABLES_REVIEW,
    lambda s: s.deliverable_set_id,
    DeliverableReview.deliverable_set_id,
)
