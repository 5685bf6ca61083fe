"""Deliverables and their handover as plain code (regulation 4.1-4.3): a deliverable set compiled and
reviewed internally (logic, consistency, accuracy, contract conformance), then delivered on site or online
through a tested channel. A domain module beside `domain.py`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Self

from consultflow.delivery.domain import TEXT_LIMIT, ReviewCycle, http_link, split_fields
from consultflow.platform.errors import FailedPrecondition, InvalidArgument
from consultflow.platform.inputs import (
    choice,
    entries,
    iso_datetime,
    lines,
    names,
    renamed_fields,
    required_text,
    yes_no,
)


class DeliverableSetStatus(StrEnum):
    """4.1: a deliverable set version awaits its internal review, is superseded, or was reviewed."""

    COMPILED = "compiled"
    SUPERSEDED = "superseded"
    APPROVED = "approved"
    REVISE = "revise"


DELIVERABLES_REVIEW = ReviewCycle(
    DeliverableSetStatus.COMPILED,
    DeliverableSetStatus.SUPERSEDED,
    DeliverableSetStatus.APPROVED,
    DeliverableSetStatus.REVISE,
)


class DeliveryMode(StrEnum):
    ONSITE = "onsite"
    ONLINE = "online"


class Platform(StrEnum):
    """4.2.2: email, online documents, video conference."""

    EMAIL = "email"
    ONLINE_DOCUMENTS = "online_documents"
    VIDEO_CONFERENCE = "video_conference"


class DeliveryStatus(StrEnum):
    """4.2-4.3: planned; an online delivery is sent through its platform; then delivered."""

    PLANNED = "planned"
    SENT = "sent"
    DELIVERED = "delivered"


def check_sendable(mode: str, status: str) -> None:
    """4.3.2: only an online delivery is sent, once, after it was planned."""
    if mode != DeliveryMode.ONLINE:
        raise FailedPrecondition("an on-site delivery is not sent online")
    if status != DeliveryStatus.PLANNED:
        raise FailedPrecondition(f"the delivery was already {status}")


def check_deliverable(mode: str, status: str) -> None:
    """4.3.1-4.3.2: an on-site delivery takes place as planned; an online one once its materials were sent."""
    expected = DeliveryStatus.SENT if mode == DeliveryMode.ONLINE else DeliveryStatus.PLANNED
    if status != expected:
        raise FailedPrecondition(
            f"an {mode} delivery is recorded once it is {expected.value}; this one is {status}"
        )


@dataclass(frozen=True)
class OnlinePlan:
    """4.2.2: the platform chosen and whether the channel was tested in advance."""

    platform: Platform
    channel_tested: bool

    @classmethod
    def parse(cls, *, platform: object, channel_tested: object) -> Self:
        return cls(choice("platform", platform, Platform), yes_no("channel_tested", channel_tested))


class ChannelNotTested(FailedPrecondition):
    """4.2.2: an online delivery needs a secure, stable channel tested in advance."""

    def __init__(self) -> None:
        super().__init__("channel_tested: the online channel must be tested before the delivery (4.2.2)")


@dataclass(frozen=True)
class DeliverableItem:
    """4.1.1: a deliverable by name, with a link to it."""

    name: str
    link: str = ""

    @classmethod
    def parse(cls, *, name: object, link: object = "") -> Self:
        return cls(required_text("name", name, 300), http_link("link", link))


def deliverable_items(field: str, value: object) -> list[DeliverableItem]:
    """4.1.1 from a diagram: one deliverable per line, `name | link`; errors name `field`."""
    items = []
    for line in lines(field, value, TEXT_LIMIT):
        name, link = split_fields(line, 2)
        with renamed_fields(name=field, link=field):
            items.append(DeliverableItem.parse(name=name, link=link))
    return items


def check_deliverables(items: Sequence[DeliverableItem]) -> None:
    if not items:
        raise InvalidArgument("deliverables", "name at least one deliverable")
    seen: set[str] = set()
    for item in items:
        if item.name.lower() in seen:
            raise InvalidArgument("deliverables", f"{item.name!r} is listed twice")
        seen.add(item.name.lower())


def missing_contract_deliverables(contracted: Sequence[str], items: Sequence[DeliverableItem]) -> list[str]:
    """The contract's deliverables that no compiled item is named after (case-insensitive)."""
    have = {i.name.strip().lower() for i in items}
    return [name for name in contracted if name.strip().lower() not in have]


@dataclass(frozen=True)
class MaterialsReview:
    """4.1.2: logic, consistency, accuracy and contract conformance; a failed review says what to revise."""

    logic_ok: bool
    consistency_ok: bool
    accuracy_ok: bool
    contract_conformance_ok: bool
    comments: str

    @classmethod
    def parse(
        cls,
        *,
        logic_ok: object,
        consistency_ok: object,
        accuracy_ok: object,
        contract_conformance_ok: object,
        comments: object,
    ) -> Self:
        review = cls(
            logic_ok=yes_no("logic_ok", logic_ok),
            consistency_ok=yes_no("consistency_ok", consistency_ok),
            accuracy_ok=yes_no("accuracy_ok", accuracy_ok),
            contract_conformance_ok=yes_no("contract_conformance_ok", contract_conformance_ok),
            comments="" if comments is None else str(comments).strip(),
        )
        if not review.approved and not review.comments:
            raise InvalidArgument("review_comments", "say what failed the review and what to revise")
        return review

    @property
    def approved(self) -> bool:
        return self.logic_ok and self.consistency_ok and self.accuracy_ok and self.contract_conformance_ok


@dataclass(frozen=True)
class OnsitePlan:
    """4.2.1: time, place and attendees agreed in advance; the preparations made."""

    delivery_time: datetime
    place: str
    attendees: tuple[str, ...]
    preparations: tuple[str, ...]

    @classmethod
    def parse(cls, *, delivery_time: object, place: object, attendees: object, preparations: object) -> Self:
        """Attendees and preparations: lists, or text separated by commas, semicolons or new lines."""
        plan = cls(
            delivery_time=iso_datetime("delivery_time", delivery_time),
            place=required_text("delivery_place", place, 500),
            attendees=names("attendees", attendees),
            preparations=entries("preparations", preparations, ",;\n", TEXT_LIMIT),
        )
        if not plan.attendees:
            raise InvalidArgument("attendees", "is required")
        return plan
