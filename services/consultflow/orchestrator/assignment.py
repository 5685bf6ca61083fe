"""Who does a user task: the engagement's own people, named by expressions on the task's data.

`camunda:assignee` and `camunda:candidateUsers` are literal names, or expressions in the form Camunda
Modeler writes, `${project_manager}`: the text between `${` and `}` is a Python expression evaluated with
the restricted script engine on the task's data when the task becomes ready. `candidateUsers` is either
one expression (which may yield a list, or a comma-separated string such as the team recorded in 3.1.1)
or a comma-separated list whose entries are names or `${…}` expressions without commas.

An expression that fails, or yields no one, is an `AssignmentError`: the step opens an incident instead
of leaving the task to no one. One exception: an assignee expression that yields no name (an empty string
or None, e.g. a project manager not named yet) on a task that has candidate groups or candidate users leaves
the task unassigned, with them — as Camunda does for an assignee that evaluates to null — so a task of a
role whose person is not known yet still reaches the role.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from SpiffWorkflow.exceptions import SpiffWorkflowException
from SpiffWorkflow.task import Task

from consultflow.platform.limits import DEFAULT_LIMITS, Limits
from consultflow.platform.scripting import ScriptEngine, ScriptViolation, check

_EXPRESSION = re.compile(r"\$\{(.*)\}", re.DOTALL)


class AssignmentError(Exception):
    """An assignee or candidate-users expression failed or named no one."""


@dataclass(frozen=True)
class Assignment:
    """Who a ready user task is for: a person it is assigned to, and people who may claim it."""

    assignee: str = ""
    candidate_users: tuple[str, ...] = ()


def expression(value: str) -> str | None:
    """The Python expression of `${…}`, or None when `value` is a literal name."""
    match = _EXPRESSION.fullmatch(value.strip())
    return match.group(1).strip() if match else None


def user_entries(value: str | None) -> tuple[str, ...]:
    """The entries of a `camunda:candidateUsers` value: one `${…}` as a whole, else its comma-separated
    parts (names, or `${…}` expressions without commas)."""
    text = (value or "").strip()
    if not text:
        return ()
    if expression(text) is not None:
        return (text,)
    return tuple(part.strip() for part in text.split(",") if part.strip())


def problem(attribute: str, value: str | None) -> str | None:
    """Why an assignee or candidate-users value can never be evaluated (checked at deploy time), or None."""
    entries = (value.strip(),) if attribute == "assignee" and value and value.strip() else user_entries(value)
    for entry in entries:
        source = expression(entry)
        if source is None:
            if "${" in entry or "}" in entry:
                return f"camunda:{attribute}: {entry!r} is neither a name nor one ${{expression}}"
            continue
        if not source:
            return f"camunda:{attribute}: {entry!r} is an empty expression"
        try:
            check(source, "eval")
        except ScriptViolation as exc:
            return f"camunda:{attribute}: refused expression {source!r}: {exc}"
    return None


def assign(
    assignee: str | None,
    candidate_users: str | None,
    task: Task,
    engine: ScriptEngine,
    candidate_groups: Sequence[str] = (),
) -> Assignment:
    """Evaluates a ready task's assignee and candidate users on its data; an assignee expression that names
    no one leaves the task to its candidate groups or users, if it has any (see the module's docstring)."""
    users: list[str] = []
    for entry in user_entries(candidate_users):
        for name in _evaluate("candidateUsers", entry, task, engine):
            if name not in users:
                users.append(name)
    person = ""
    if assignee and assignee.strip():
        names = _evaluate("assignee", assignee.strip(), task, engine, nobody=bool(candidate_groups or users))
        if len(names) > 1:
            raise AssignmentError(f"camunda:assignee {assignee.strip()!r} named {len(names)} people, not one")
        person = names[0] if names else ""
    return Assignment(person, tuple(users))


def _evaluate(
    attribute: str, entry: str, task: Task, engine: ScriptEngine, *, nobody: bool = False
) -> list[str]:
    """The names `entry` yields; `nobody`: an expression yielding "" or None names no one without an error."""
    source = expression(entry)
    if source is None:
        return [entry]
    try:
        value = engine.evaluate(task, source)
    except Exception as exc:
        raise AssignmentError(f"camunda:{attribute} {entry!r} failed: {_text(exc)}") from exc
    if nobody and (value is None or (isinstance(value, str) and not value.strip())):
        return []
    names = _names(value, getattr(engine, "limits", DEFAULT_LIMITS))
    if names is None:
        raise AssignmentError(
            f"camunda:{attribute} {entry!r} yielded a {type(value).__name__}, not a name or a list of names"
        )
    if not names:
        raise AssignmentError(f"camunda:{attribute} {entry!r} named no one (it yielded {value!r})")
    return names


def _names(value: Any, limits: Limits = DEFAULT_LIMITS) -> list[str] | None:
    """Names in a string (comma separated) or a list, tuple or set of strings; None for anything else.
    Raises AssignmentError past `max_task_candidates` names or `max_user_name_length` characters in one:
    the names are stored on the task's row, and an expression may yield a megabyte of them."""
    if isinstance(value, str):
        items: Iterable[Any] = value.split(",")
    elif isinstance(value, list | tuple | set | frozenset):
        items = sorted(value) if isinstance(value, set | frozenset) else value
        if not all(isinstance(item, str) for item in items):
            return None
        items = [part for item in items for part in item.split(",")]
    else:
        return None
    names: dict[str, None] = {}  # ordered and de-duplicated in linear time (a list's `in` is quadratic)
    for item in items:
        name = str(item).strip()
        if len(name) > limits.max_user_name_length:
            raise AssignmentError(
                f"a name of {len(name)} characters, more than {limits.max_user_name_length}"
                " (limit max_user_name_length)"
            )
        if name:
            names[name] = None
            if len(names) > limits.max_task_candidates:
                raise AssignmentError(
                    f"more than {limits.max_task_candidates} names (limit max_task_candidates)"
                )
    return list(names)


def _text(exc: BaseException) -> str:
    if isinstance(exc, SpiffWorkflowException):
        notes = "; ".join(getattr(exc, "notes", []) or [])
        base = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return f"{base}{' — ' + notes if notes else ''}"
    return f"{type(exc).__name__}: {exc}"
