"""Delivery use cases of 4.1 deliverables: versions of the deliverable set and their internal reviews."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from consultflow.delivery import deliverables_rules, domain
from consultflow.delivery.deliverables_rules import DeliverableItem, DeliverableSetStatus, MaterialsReview
from consultflow.delivery.domain import Phase
from consultflow.delivery.orm import DeliverableReview, DeliverableSet
from consultflow.delivery.usecases.common import active, emit, move, new_id, project_of, quality_check
from consultflow.delivery.usecases.versions import DELIVERABLE_SETS
from consultflow.platform.db import UnitOfWork
from consultflow.platform.errors import FailedPrecondition
from consultflow.platform.inputs import optional_text, required_text
from consultflow.platform.timeutil import now


def current_set(session: Session, project_id: str) -> DeliverableSet | None:
    """The project's newest deliverable set version."""
    return DELIVERABLE_SETS.current(session, project_id)


def compile_deliverables(
    uow: UnitOfWork, project_id: str, items: Sequence[DeliverableItem], results_summary: str
) -> DeliverableSet:
    """4.1.1: the results compiled into a new version of the deliverable set."""
    project = active(uow, project_id)
    if project.execution_completed_at is None:
        raise FailedPrecondition("execution is not complete (3.4.1): nothing to compile yet")
    deliverables_rules.check_deliverables(items)
    version = DELIVERABLE_SETS.next_version(uow.session, project.project_id)
    earlier = uow.session.scalars(
        select(DeliverableSet.items).where(DeliverableSet.project_id == project.project_id)
    ).all()
    counts = Counter(str(old["name"]).lower() for old_items in earlier for old in old_items)
    deliverable_set = DeliverableSet(
        deliverable_set_id=new_id(),
        project_id=project.project_id,
        version=version,
        results_summary=required_text("results_summary", results_summary, domain.TEXT_LIMIT),
        status=DeliverableSetStatus.COMPILED.value,
        items=[{"name": i.name, "link": i.link, "version": counts[i.name.lower()] + 1} for i in items],
        missing_contract_deliverables=deliverables_rules.missing_contract_deliverables(
            project.contract_deliverables, items
        ),
        compiled_at=now(),
    )
    uow.session.add(deliverable_set)
    move(project, Phase.DELIVERY)
    uow.session.flush()
    emit(
        uow,
        project,
        "deliverables.compiled",
        deliverable_set.deliverable_set_id,
        deliverable_set_id=deliverable_set.deliverable_set_id,
        deliverable_set_version=deliverable_set.version,
        deliverables=[i["name"] for i in deliverable_set.items],
        missing_contract_deliverables=deliverable_set.missing_contract_deliverables,
    )
    return deliverable_set


def review_deliverables(
    uow: UnitOfWork, project_id: str, review: MaterialsReview, reviewer: str = ""
) -> DeliverableSet:
    """4.1.2: the internal review of the current set; approved only when all four checks pass. The review
    is a quality check (quality pass rate)."""
    project = active(uow, project_id)
    current = current_set(uow.session, project.project_id)
    if current is None:
        raise FailedPrecondition("no deliverables compiled yet (4.1.1)")
    row = DELIVERABLE_SETS.review(
        uow.session,
        current,
        f"deliverable set version {current.version}",
        review.approved,
        lambda: DeliverableReview(
            review_id=new_id(),
            deliverable_set_id=current.deliverable_set_id,
            logic_ok=review.logic_ok,
            consistency_ok=review.consistency_ok,
            accuracy_ok=review.accuracy_ok,
            contract_conformance_ok=review.contract_conformance_ok,
            approved=review.approved,
            comments=review.comments.strip(),
            reviewer=optional_text("reviewer", reviewer, domain.NAME_LIMIT),
            reviewed_at=now(),
        ),
    )
    quality_check(uow, project, "deliverables", current.deliverable_set_id, review.approved, row.comments)
    uow.session.flush()
    emit(
        uow,
        project,
        "deliverables.approved" if review.approved else "deliverables.revision_requested",
        current.deliverable_set_id,
        deliverable_set_id=current.deliverable_set_id,
        deliverable_set_version=current.version,
        logic_ok=review.logic_ok,
        consistency_ok=review.consistency_ok,
        accuracy_ok=review.accuracy_ok,
        contract_conformance_ok=review.contract_conformance_ok,
        review_comments=row.comments,
    )
    return current


def deliverable_reviews(session: Session, deliverable_set_id: str) -> list[DeliverableReview]:
    """The reviews of one deliverable set version, oldest first."""
    return DELIVERABLE_SETS.reviews_of(session, deliverable_set_id)


def deliverable_sets(
    session: Session, project_id: str
) -> list[tuple[DeliverableSet, list[DeliverableReview]]]:
    """The project's deliverable set versions, oldest first, each with its reviews."""
    return DELIVERABLE_SETS.with_reviews(session, project_of(session, project_id).project_id)
