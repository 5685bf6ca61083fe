"""Two orchestrators on one database: the optimistic revision keeps an instance consistent when both
advance it, whatever either has cached; on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from consultflow.orchestrator.runtime import Orchestrator
from consultflow.platform.db import Database, UnitOfWork, migrate
from tests.support.bpmn_builder import bpmn, service_task

PROCESS = bpmn(
    "p",
    f"""<startEvent id="s"/><parallelGateway id="split"/>
    {service_task("a", "crm.a")}{service_task("b", "crm.b")}{service_task("c", "crm.c")}
    <parallelGateway id="join"/>{service_task("last", "crm.last")}<endEvent id="e"/>""",
    "s -> split\nsplit -> a\nsplit -> b\nsplit -> c\na -> join\nb -> join\nc -> join\njoin -> last\nlast -> e",
)


@pytest.fixture
def two(database_url: str) -> Iterator[tuple[Orchestrator, Orchestrator, Database]]:
    db = Database(database_url)
    migrate(db, "orchestrator")
    first = Orchestrator(db, lambda: UnitOfWork(db, "orchestrator"))
    second = Orchestrator(db, lambda: UnitOfWork(db, "orchestrator"))
    first.deploy({"p.bpmn": PROCESS})
    assert second.deploy({"p.bpmn": PROCESS}).unchanged == ["p"]
    yield first, second, db
    db.dispose()


def open_jobs(orchestrator: Orchestrator, instance_id: str) -> dict[str, str]:
    return {j.operation: j.job_key for j in orchestrator.get_instance(instance_id).jobs}


def test_stale_cache_is_detected_and_reloaded(two: tuple[Orchestrator, Orchestrator, Database]) -> None:
    first, second, _ = two
    instance_id = first.create_instance("p", 0, {}, "").instance_id
    jobs = open_jobs(first, instance_id)
    second.complete_job(jobs["crm.a"], {"a": 1})  # second loads and caches it
    first.complete_job(jobs["crm.b"], {"b": 2})  # first's cache is a revision behind: reload, retry
    second.complete_job(jobs["crm.c"], {"c": 3})  # and now second's is
    last = open_jobs(first, instance_id)["crm.last"]
    first.complete_job(last, {})
    view = second.get_instance(instance_id)
    assert view.instance.status == "COMPLETED"
    assert view.instance.revision == 5  # created + four replies, none lost
    variables = view.instance.variables
    assert all(f'"{k}":' in variables for k in "abc")


def test_concurrent_replies_from_two_orchestrators(two: tuple[Orchestrator, Orchestrator, Database]) -> None:
    first, second, _ = two
    instances = [first.create_instance("p", 0, {}, "").instance_id for _ in range(6)]
    replies = [
        (orchestrator, key)
        for instance_id in instances
        for orchestrator, key in zip(
            (first, second, first), open_jobs(first, instance_id).values(), strict=True
        )
    ]
    errors: list[BaseException] = []

    def reply(orchestrator: Orchestrator, job_key: str) -> None:
        try:
            orchestrator.complete_job(job_key, {})
        except BaseException as error:  # surfaced below
            errors.append(error)

    threads = [threading.Thread(target=reply, args=pair) for pair in replies]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    for instance_id in instances:
        assert list(open_jobs(second, instance_id)) == ["crm.last"], "a reply was lost"
