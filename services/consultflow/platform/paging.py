"""Paging for List RPCs: a page size with a sane default and cap, and opaque offset tokens.

A servicer asks for one row more than it shows; that extra row says whether a next page exists:

    page = Page.of(request.page_size, request.page_token)
    rows = usecases.list_things(session, ..., page.fetch, page.offset)
    return pb.ListThingsResponse(things=[message(r) for r in page.rows(rows)],
                                 next_page_token=page.next_token(rows))
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar

from consultflow.platform.errors import InvalidArgument

T = TypeVar("T")

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 500


@dataclass(frozen=True)
class Page:
    """One page of a List RPC: how many rows to show and where they start."""

    size: int
    offset: int

    @classmethod
    def of(cls, size: int, token: str) -> Page:
        """The page a request's `page_size` and `page_token` ask for; bad values name their field."""
        if size < 0:
            raise InvalidArgument("page_size", "must not be negative")
        if token and not token.isdigit():
            raise InvalidArgument("page_token", "is not a token this server issued")
        return cls(min(size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE), int(token or 0))

    @property
    def fetch(self) -> int:
        """How many rows to read: one more than the page shows."""
        return self.size + 1

    def rows(self, fetched: Sequence[T]) -> Sequence[T]:
        """The rows this page shows."""
        return fetched[: self.size]

    def next_token(self, fetched: Sequence[object]) -> str:
        """The next page's token, or "" when `fetched` shows this is the last page."""
        return str(self.offset + self.size) if len(fetched) > self.size else ""
