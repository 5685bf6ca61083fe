"""Dates relative to today, as the services count them: in UTC (platform/timeutil.py), and taken when asked,
not when a module was imported — a run that crosses midnight must not compare yesterday's "today" with
the service's."""

from __future__ import annotations

from datetime import date, timedelta

from consultflow.platform import timeutil


def today() -> date:
    return timeutil.now().date()


def day(offset: int) -> str:
    """An ISO date `offset` days from today."""
    return (today() + timedelta(days=offset)).isoformat()


def days_since(deadline: str, since: date) -> range:
    """The whole days from `deadline` to each day from `since` through today: what a service that counted
    them in between may have found."""
    start = date.fromisoformat(deadline)
    return range((since - start).days, (today() - start).days + 1)
