"""CRM rules as plain code: what makes an inquiry valid (regulation 2.1.2)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from consultflow.platform.errors import InvalidArgument

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class Channel(StrEnum):
    """Where an inquiry came from: 2.1.2 hotline, mailbox, online service; referrals; 2.1.1 leads."""

    HOTLINE = "hotline"
    EMAIL = "email"
    ONLINE = "online"
    REFERRAL = "referral"
    MARKET_RESEARCH = "market_research"


@dataclass(frozen=True)
class NewInquiry:
    """2.1.2: each inquiry records the client's basic information, the question and contact details."""

    channel: Channel
    client_name: str
    client_industry: str
    contact_name: str
    contact_email: str
    contact_phone: str
    question: str
    engagement_id: str = ""
    request_id: str = ""

    def __post_init__(self) -> None:
        _required("client_name", self.client_name, 300)
        _required("contact_name", self.contact_name, 200)
        _required("question", self.question, 10_000)
        if not self.contact_email and not self.contact_phone:
            raise InvalidArgument("contact_email", "an email address or a phone number is required (2.1.2)")
        if self.contact_email and not _EMAIL.match(self.contact_email):
            raise InvalidArgument("contact_email", f"{self.contact_email!r} is not an email address")
        if self.contact_phone and not re.fullmatch(r"[0-9+()\-. ]{5,30}", self.contact_phone):
            raise InvalidArgument("contact_phone", f"{self.contact_phone!r} is not a phone number")


def parse_channel(value: str, field: str = "channel") -> Channel:
    try:
        return Channel(value)
    except ValueError:
        allowed = ", ".join(c.value for c in Channel)
        raise InvalidArgument(field, f"{value!r} is not one of {allowed}") from None


def _required(field: str, value: str, limit: int) -> None:
    if not value or not value.strip():
        raise InvalidArgument(field, "is required")
    if len(value) > limit:
        raise InvalidArgument(field, f"is longer than {limit} characters")
