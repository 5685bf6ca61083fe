"""Paging: one row more than the page shows tells whether there is a next page."""

from __future__ import annotations

import pytest

from consultflow.platform.errors import InvalidArgument
from consultflow.platform.paging import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, Page


def test_a_page_reads_one_row_more_than_it_shows() -> None:
    page = Page.of(2, "")
    fetched = ["a", "b", "c"]
    assert (page.fetch, page.offset) == (3, 0)
    assert page.rows(fetched) == ["a", "b"]
    assert page.next_token(fetched) == "2"
    second = Page.of(2, page.next_token(fetched))
    assert second.offset == 2
    assert second.next_token(["c"]) == ""


def test_sizes_default_and_cap_and_bad_values_name_their_field() -> None:
    assert Page.of(0, "").size == DEFAULT_PAGE_SIZE
    assert Page.of(10_000, "").size == MAX_PAGE_SIZE
    with pytest.raises(InvalidArgument, match="page_size"):
        Page.of(-1, "")
    with pytest.raises(InvalidArgument, match="page_token"):
        Page.of(5, "abc")
