"""User task due dates: literal ones are checked at deploy time; what cannot be read is said, not hidden."""

from __future__ import annotations

from consultflow.orchestrator.forms import due_date_problem


def test_literal_durations_and_dates_are_accepted() -> None:
    assert due_date_problem("P2D") is None
    assert due_date_problem("PT4H") is None
    assert due_date_problem("2027-01-01T00:00:00+00:00") is None


def test_expressions_are_left_to_run_time() -> None:
    assert due_date_problem("deadline") is None
    assert due_date_problem(None) is None and due_date_problem("  ") is None


def test_a_literal_that_cannot_be_read_says_why() -> None:
    problem = due_date_problem("P2X")
    assert problem is not None and "'P2X'" in problem
    assert due_date_problem("2027-13-45") is not None
