"""Paging for List RPCs: a page size with a sane default and cap, and opaque offset tokens."""

from __future__ import annotations

from consultflow.platform.errors import InvalidArgument

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 500


def page_size(size: int) -> int:
    if size < 0:
        raise InvalidArgument("page_size", "must not be negative")
    return min(size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)


def page_offset(token: str) -> int:
    if not token:
        return 0
    if not token.isdigit():
        raise InvalidArgument("page_token", "is not a token this server issued")
    return int(token)


def next_token(offset: int, size: int, fetched: int) -> str:
    """The token of the next page when `fetched` (asked for size + 1) shows there is one."""
    return str(offset + size) if fetched > size else ""
