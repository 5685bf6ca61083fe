"""The job-operation registry: declared per operation, dependencies bound once; the job's own keys."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pytest

from consultflow.platform.db import UnitOfWork
from consultflow.platform.errors import InvalidArgument
from consultflow.platform.jobs import Job, Operations


@dataclass(frozen=True)
class Deps:
    greeting: str


operations = Operations[Deps]("demo")


@operations.handler("greet")
def greet(uow: UnitOfWork, job: Job, deps: Deps) -> Mapping[str, Any]:
    """Says hello."""
    return {"said": f"{deps.greeting} {job.text('name')}"}


def job(**variables: Any) -> Job:
    return Job("k1", "demo.greet", "i1", "p", "e", {}, variables, 1, 3, business_key="E-9")


def test_bound_handlers_are_named_after_the_service_and_receive_the_dependencies() -> None:
    bound = operations.bind(Deps("hello"))
    assert operations.names == ["demo.greet"] == list(bound)
    unit_of_work: Any = None  # the handler does not touch it
    assert bound["demo.greet"](unit_of_work, job(name="Li")) == {"said": "hello Li"}
    assert bound["demo.greet"].__doc__ == "Says hello."


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
