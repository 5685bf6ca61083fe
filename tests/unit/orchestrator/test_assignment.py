"""Reading `camunda:assignee` and `camunda:candidateUsers` values (assignment.py)."""

from __future__ import annotations

import pytest

from consultflow.orchestrator import assignment


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("${project_manager}", "project_manager"),
        ("  ${ a + b }  ", "a + b"),
        ("${x.split(',')}", "x.split(',')"),
        ("project_manager", None),
        ("#{project_manager}", None),
        ("$project_manager", None),
    ],
)
def test_only_the_dollar_brace_form_is_an_expression(value: str, expected: str | None) -> None:
    assert assignment.expression(value) == expected


@pytest.mark.parametrize(
    ("value", "entries"),
    [
        (None, ()),
        ("  ", ()),
        ("wang, li,", ("wang", "li")),
        ("${[a, b][0].split(',')}", ("${[a, b][0].split(',')}",)),
        ("zhao, ${consultants}", ("zhao", "${consultants}")),
    ],
)
def test_candidate_users_are_one_expression_or_a_comma_separated_list(
    value: str | None, entries: tuple[str, ...]
) -> None:
    assert assignment.user_entries(value) == entries


@pytest.mark.parametrize(
    ("attribute", "value", "fragment"),
    [
        ("assignee", "${import os}", "refused expression"),
        ("assignee", "${_hidden}", "refused expression"),
        ("assignee", "${ }", "empty expression"),
        ("candidateUsers", "li, ${x", "neither a name nor one"),
        ("assignee", "wang}", "neither a name nor one"),
    ],
)
def test_problems_found_before_deployment(attribute: str, value: str, fragment: str) -> None:
    problem = assignment.problem(attribute, value)
    assert problem is not None and fragment in problem and f"camunda:{attribute}" in problem


@pytest.mark.parametrize(
    "value", [None, "", "wang", "wang, li", "${project_manager}", "${consultants.split(',') + [pm]}"]
)
def test_names_and_good_expressions_have_no_problem(value: str | None) -> None:
    assert assignment.problem("candidateUsers", value) is None
    assert assignment.problem("assignee", value) is None
