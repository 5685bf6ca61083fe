"""The job-operation registry: declared per operation with its contract, dependencies bound once; the job's
own keys."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pytest

from consultflow.platform.db import UnitOfWork
from consultflow.platform.errors import InvalidArgument
from consultflow.platform.jobs import BoundOperations, Job, Operations
from consultflow.platform.operation_spec import Field, error, one_of, optional, summary_of, text


@dataclass(frozen=True)
class Deps:
    greeting: str


operations = Operations[Deps]("demo")


@operations.handler(
    "greet",
    clauses=["2.1.2"],
    inputs=[text("name", "who is greeted"), optional(one_of("tone", ["warm", "dry"]))],
    outputs=[text("said")],
    errors=[error("nobody_there", "no name was given")],
)
def greet(uow: UnitOfWork, job: Job, deps: Deps) -> Mapping[str, Any]:
    """2.1.2: says hello.

    Only the first sentence of the first paragraph becomes the summary."""
    return {"said": f"{deps.greeting} {job.text('name')}"}


def job(**variables: Any) -> Job:
    return Job("k1", "demo.greet", "i1", "p", "e", {}, variables, 1, 3, business_key="E-9")


def test_bound_handlers_are_named_after_the_service_and_receive_the_dependencies() -> None:
    bound = operations.bind(Deps("hello"))
    assert operations.names == ["demo.greet"] == list(bound)
    unit_of_work: Any = None  # the handler does not touch it
    assert bound["demo.greet"](unit_of_work, job(name="Li")) == {"said": "hello Li"}
    assert bound["demo.greet"].__doc__ == greet.__doc__


def test_each_operation_publishes_its_contract_with_the_bound_handlers() -> None:
    bound = operations.bind(Deps("hello"))
    assert isinstance(bound, BoundOperations) and len(bound) == 1
    (spec,) = bound.catalogue
    assert (spec.name, spec.service, spec.summary, spec.clauses) == (
        "demo.greet",
        "demo",
        "Says hello.",
        ("2.1.2",),
    )
    assert spec.inputs == (
        Field("name", "string", True, "who is greeted"),
        Field("tone", "string", False, "", ("warm", "dry")),
    )
    assert [e.code for e in spec.errors] == ["nobody_there"]
    assert spec.input("tone") is not None and spec.input("mood") is None


def test_a_summary_drops_the_clause_reference_and_keeps_the_first_sentence() -> None:
    assert summary_of("6.3 [assumption]: management decides. More text.") == "Management decides."
    assert summary_of("Ch. 6: opens the register;\n    when it starts.\n\n    Details.") == (
        "Opens the register; when it starts."
    )
    assert summary_of(None) == ""


def test_an_unsound_contract_is_refused_where_it_is_declared() -> None:
    other = Operations[None]("demo2")

    def undocumented(uow: UnitOfWork, job: Job, deps: None) -> Mapping[str, Any]:
        return {}

    with pytest.raises(ValueError, match=r"demo2\.x: the summary must be one non-empty line"):
        other.handler("x")(undocumented)
    with pytest.raises(ValueError, match="input 'a' is declared twice"):
        other.handler("y", summary="Does y.", inputs=[text("a"), text("a")])(undocumented)
    with pytest.raises(ValueError, match="lists values but is not a string"):
        other.handler("z", summary="Does z.", inputs=[Field("n", "integer", values=("1",))])(undocumented)
    assert other.names == []


def test_an_operation_declared_twice_is_refused() -> None:
    with pytest.raises(ValueError, match=r"demo\.greet"):
        operations.handler("greet")(greet)


def test_a_job_reads_text_flags_and_its_engagement() -> None:
    assert job(engagement_id="E-1").engagement_id == "E-1"
    assert job().engagement_id == "E-9"
    assert job(ok="yes").flag("ok") is True
    assert job(note=None).text("note") == ""
    assert job().text("note", "") == ""
    assert job().request_id == "job:k1"
    with pytest.raises(InvalidArgument, match="passes no 'note'"):
        job().text("note")
