"""Delivery use cases of 4.2-4.3 delivery: the approved deliverables handed over on site or online, and the
client's
feedback."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from consultflow.delivery import deliverables_rules, domain
from consultflow.delivery.deliverables_rules import (
    DeliverableSetStatus,
    DeliveryMode,
    DeliveryStatus,
    OnlinePlan,
    OnsitePlan,
)
from consultflow.delivery.domain import (
    CommunicationKind,
    Direction,
)
from consultflow.delivery.orm import DeliverableSet, Delivery, Project
from consultflow.delivery.usecases.common import active, emit, get, log_entry, new_id, project_of, today
from consultflow.delivery.usecases.deliverables import current_set
from consultflow.platform.db import UnitOfWork
from consultflow.platform.errors import FailedPrecondition, InvalidArgument
from consultflow.platform.inputs import optional_text
from consultflow.platform.timeutil import now


def _approved_set(session: Session, project: Project) -> DeliverableSet:
    current = current_set(session, project.project_id)
    if current is None or current.status != DeliverableSetStatus.APPROVED:
        raise FailedPrecondition("the deliverables have not passed the internal review (4.1.2)")
    return current


def _new_delivery(project: Project, approved: DeliverableSet, mode: DeliveryMode) -> Delivery:
    return Delivery(
        delivery_id=new_id(),
        project_id=project.project_id,
        deliverable_set_id=approved.deliverable_set_id,
        mode=mode.value,
        status=DeliveryStatus.PLANNED.value,
        attendees=[],
        preparations=[],
        planned_at=now(),
    )


def plan_onsite_delivery(uow: UnitOfWork, project_id: str, plan: OnsitePlan) -> Delivery:
    """4.2.1: time, place and attendees agreed in advance, and the preparations."""
    project = active(uow, project_id)
    approved = _approved_set(uow.session, project)
    if plan.delivery_time.date() < today():
        raise InvalidArgument("delivery_time", "an on-site delivery is agreed in advance, not for a past day")
    delivery = _new_delivery(project, approved, DeliveryMode.ONSITE)
    delivery.delivery_time = plan.delivery_time
    delivery.place = plan.place.strip()
    delivery.attendees = list(plan.attendees)
    delivery.preparations = list(plan.preparations)
    uow.session.add(delivery)
    uow.session.flush()
    emit(
        uow,
        project,
        "delivery.planned",
        delivery.delivery_id,
        delivery_id=delivery.delivery_id,
        delivery_mode=DeliveryMode.ONSITE.value,
        delivery_time=plan.delivery_time,
        delivery_place=delivery.place,
        attendees=delivery.attendees,
    )
    return delivery


def plan_online_delivery(uow: UnitOfWork, project_id: str, plan: OnlinePlan) -> Delivery:
    """4.2.2: the platform chosen and the channel tested in advance (`ChannelNotTested` otherwise)."""
    project = active(uow, project_id)
    approved = _approved_set(uow.session, project)
    platform = plan.platform
    if not plan.channel_tested:
        raise deliverables_rules.ChannelNotTested()
    delivery = _new_delivery(project, approved, DeliveryMode.ONLINE)
    delivery.platform = platform.value
    delivery.channel_tested = True
    uow.session.add(delivery)
    uow.session.flush()
    emit(
        uow,
        project,
        "delivery.planned",
        delivery.delivery_id,
        delivery_id=delivery.delivery_id,
        delivery_mode=DeliveryMode.ONLINE.value,
        platform=platform.value,
    )
    return delivery


def send_deliverables_online(uow: UnitOfWork, delivery_id: str) -> Delivery:
    """4.3.2: the materials sent through the chosen platform."""
    delivery = get(uow.session, Delivery, delivery_id, "delivery_id", "delivery")
    project = active(uow, delivery.project_id)
    deliverables_rules.check_sendable(delivery.mode, delivery.status)
    delivery.status = DeliveryStatus.SENT.value
    delivery.sent_at = now()
    uow.session.flush()
    emit(
        uow,
        project,
        "delivery.sent",
        delivery.delivery_id,
        delivery_id=delivery.delivery_id,
        platform=delivery.platform,
        sent_at=delivery.sent_at,
    )
    return delivery


def record_delivery(
    uow: UnitOfWork, delivery_id: str, client_feedback: str, feedback_reply: str = ""
) -> Delivery:
    """4.3.1, 4.3.2: the delivery took place; the client's feedback is recorded and logged, and so are the
    firm's answers to it (4.3.2: 及時進行處理和回覆)."""
    delivery = get(uow.session, Delivery, delivery_id, "delivery_id", "delivery")
    project = active(uow, delivery.project_id)
    deliverables_rules.check_deliverable(delivery.mode, delivery.status)
    delivery.status = DeliveryStatus.DELIVERED.value
    delivery.delivered_at = now()
    delivery.client_feedback = optional_text("client_feedback", client_feedback, domain.TEXT_LIMIT)
    if delivery.client_feedback:
        log_entry(
            uow,
            project,
            Direction.EXTERNAL,
            CommunicationKind.CLIENT_FEEDBACK,
            "client",
            delivery.client_feedback,
        )
    reply = optional_text("feedback_reply", feedback_reply, domain.TEXT_LIMIT)
    if reply:
        log_entry(uow, project, Direction.EXTERNAL, CommunicationKind.ANSWER, "client", reply)
    uow.session.flush()
    emit(
        uow,
        project,
        "delivery.delivered",
        delivery.delivery_id,
        delivery_id=delivery.delivery_id,
        delivery_mode=delivery.mode,
        delivered_at=delivery.delivered_at,
        client_feedback=delivery.client_feedback,
    )
    return delivery


def deliveries(session: Session, project_id: str) -> list[Delivery]:
    project = project_of(session, project_id)
    return list(
        session.scalars(
            select(Delivery).where(Delivery.project_id == project.project_id).order_by(Delivery.planned_at)
        )
    )
