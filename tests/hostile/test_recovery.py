"""Hostile cases of "always recoverable" and "bounded state" (issue 14).

- A poison instance (its steps keep failing with an engine error) is parked after
  `step_failures_before_parking` failures with an incident, the loops stop touching it, and a restarted
  orchestrator on the same database does not resume it.
- Oversize input is refused up front naming the variable and the limit, never echoing the value.
- A step whose state would pass a size limit is not written: the instance is parked with an incident
  naming the limit and the size.
- Any instance can be cancelled, however broken: through the engine if it can, else by its rows.

Each class asserts the outcome and, where hostile work goes on, that another caller is answered meanwhile.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import grpc
import pytest
from sqlalchemy import event, func, select, update
from sqlalchemy.exc import OperationalError

from consultflow.api.events.v1 import events_pb2
from consultflow.api.orchestrator.v1 import orchestrator_pb2 as pb
from consultflow.api.orchestrator.v1 import orchestrator_pb2_grpc as pb_grpc
from consultflow.orchestrator.app import build
from consultflow.orchestrator.orm import (
    Incident,
    Instance,
    JobRecord,
    Message,
    Resource,
    StartTimer,
    Subscription,
    Timer,
    UserTask,
)
from consultflow.orchestrator.parking import START_RETRY_DELAY, LoadFailed, Parked
from consultflow.orchestrator.records import MessageStatus
from consultflow.orchestrator.sizes import StateTooLarge
from consultflow.platform.db import UnitOfWork
from consultflow.platform.errors import FailedPrecondition, InvalidArgument, ResourceExhausted
from consultflow.platform.grpcerrors import field_violations
from consultflow.platform.limits import Limits
from consultflow.platform.metrics import REGISTRY
from consultflow.platform.tables import outbox
from tests.support.bpmn_builder import bpmn, field, form, message, service_task
from tests.support.components import ComponentThread, component_settings
from tests.support.identity import TESTER, signed_channel
from tests.support.liveness import Background, answered_while
from tests.support.orchestrator_harness import Harness
from tests.support.polling import eventually
from tests.support.regulation_world import FlowIndex, World
from tests.support.rpc import rpc_error

LIMITS = Limits(step_failures_before_parking=3)


@pytest.fixture
def db_url(database_url: str) -> str:
    """SQLite, and PostgreSQL when configured (tests/conftest.py)."""
    return database_url


@pytest.fixture
def h(db_url: str) -> Iterator[Harness]:
    harness = Harness(db_url, limits=LIMITS)
    yield harness
    harness.close()


# --------------------------------------------------------------------------------------------- diagrams


def after_timer(process_id: str, script: str) -> bytes:
    """Waits an hour, runs `script`, then waits for a person: the script runs in a timer's step."""
    return bpmn(
        process_id,
        f"""<startEvent id="s"/>
        <intermediateCatchEvent id="wait"><timerEventDefinition><timeDuration>"PT1H"</timeDuration>
        </timerEventDefinition></intermediateCatchEvent>
        <scriptTask id="grow"><script>{script}</script></scriptTask>
        <userTask id="review"/><endEvent id="e"/>""",
        "s -> wait\nwait -> grow\ngrow -> review\nreview -> e",
    )


# Stored states the engine cannot step: since scripts run in the sandbox, which refuses values the engine
# could not store, a poison instance comes from a state damaged outside the engine (a bad restore, a
# hand edit, a bug in an older release).
def not_a_workflow(state: str) -> str:
    return CORRUPT


def a_task_of_no_element(state: str) -> str:
    """The state of a task whose element the diagram does not have (a diagram edited under it)."""
    data = json.loads(state)
    task = next(t for t in data["tasks"].values() if t["task_spec"] == "wait")
    task["task_spec"] = "no_such_element"
    return json.dumps(data)


POISONS: dict[str, Callable[[str], str]] = {
    "not a workflow": not_a_workflow,
    "a task of no element": a_task_of_no_element,
}


def poison_after_start(h: Harness, process_id: str, damage: Callable[[str], str]) -> str:
    """Starts an instance (it waits on its timer) and damages its stored state."""
    instance_id = h.start(process_id)
    set_state(h, instance_id, damage(stored_state(h, instance_id)))
    return instance_id


WAITS_EVERYWHERE = bpmn(
    "waits",
    f"""<startEvent id="s"/><parallelGateway id="fork"/>
    {service_task("work", "crm.work")}
    <userTask id="review"/>
    <intermediateCatchEvent id="later"><timerEventDefinition><timeDuration>"P1D"</timeDuration>
    </timerEventDefinition></intermediateCatchEvent>
    <intermediateCatchEvent id="reply"><messageEventDefinition messageRef="m_reply"/></intermediateCatchEvent>
    <parallelGateway id="join"/><endEvent id="e"/>""",
    "s -> fork\nfork -> work\nfork -> review\nfork -> later\nfork -> reply\n"
    "work -> join\nreview -> join\nlater -> join\nreply -> join\njoin -> e",
    extra=message("m_reply", "client.replied", "key"),
)
"""An instance with a job, a user task, a timer and a subscription open at once."""


def one_job(process_id: str = "p") -> bytes:
    return bpmn(
        process_id,
        f'<startEvent id="s"/>{service_task("work", "crm.work")}<userTask id="review"/><endEvent id="e"/>',
        "s -> work\nwork -> review\nreview -> e",
    )


# ---------------------------------------------------------------------------------------------- helpers


def failures(h: Harness, instance_id: str) -> int:
    return len(h.history(instance_id, "step.failed"))


def parking_incident(h: Harness, instance_id: str) -> Incident | None:
    incidents = [i for i in h.view(instance_id).incidents if i.kind in ("STEP_FAILED", "STATE_TOO_LARGE")]
    return incidents[0] if incidents else None


def set_state(h: Harness, instance_id: str, state: str) -> None:
    """Replaces the stored state (a new revision, so no cached workflow stands in for it)."""
    with h.uow() as uow:
        uow.session.execute(
            update(Instance)
            .where(Instance.instance_id == instance_id)
            .values(state=state, revision=Instance.revision + 1)
        )
        uow.commit()


def stored_state(h: Harness, instance_id: str) -> str:
    with h.db.read() as session:
        state = session.scalar(select(Instance.state).where(Instance.instance_id == instance_id))
    assert state is not None
    return state


CORRUPT = '{"serializer_version": "1.4", "not": "a workflow"}'


class Scheduler:
    """The timer loop as the orchestrator runs it, in a thread, until stopped; counts the steps it tries
    on each instance (a parked one must not even be tried: each try would take the write lock)."""

    def __init__(self, h: Harness) -> None:
        self._stop = threading.Event()
        self.rounds = 0
        self.tried: Counter[str] = Counter()
        step = h.orchestrator.step

        def counted(instance_id: str, action: Any, **options: Any) -> Any:
            self.tried[instance_id] += 1
            return step(instance_id, action, **options)

        h.orchestrator.step = counted  # type: ignore[method-assign]

        def run() -> None:
            while not self._stop.is_set():
                h.orchestrator.fire_due_timers()
                self.rounds += 1
                time.sleep(0.01)

        self.background = Background(run)

    def stop(self) -> None:
        self._stop.set()
        self.background.join()


def wait_rounds(scheduler: Scheduler, rounds: int) -> None:
    target = scheduler.rounds + rounds
    eventually(lambda: scheduler.rounds >= target, f"{rounds} more scheduler rounds")


def probe_other_work(h: Harness) -> Callable[[], str]:
    """Another caller's work: start an instance and finish its job."""

    def probe() -> str:
        other = h.start("p")
        h.complete("crm.work", other)
        return other

    return probe


# ----------------------------------------------------------------- poison instances are parked (class 1)


@pytest.mark.parametrize("damage", POISONS.values(), ids=POISONS.keys())
def test_a_step_that_keeps_failing_parks_its_instance_while_others_are_answered(
    h: Harness, damage: Callable[[str], str]
) -> None:
    h.deploy(poison=after_timer("poison", "x = 1"), p=one_job())
    poison = poison_after_start(h, "poison", damage)
    h.clock.advance(timedelta(hours=2))
    scheduler = Scheduler(h)
    try:
        eventually(lambda: failures(h, poison) >= 1, "the poison step failing")
        other = answered_while(
            lambda: scheduler.background.running, probe_other_work(h), what="another instance's work"
        )
        assert h.status(other) == "ACTIVE" and h.task("review", other)
        incident = eventually(lambda: parking_incident(h, poison), "the poison instance parked")
        wait_rounds(scheduler, 2)
        tried = scheduler.tried[poison]
        wait_rounds(scheduler, 20)
        assert failures(h, poison) == 3 and scheduler.tried[poison] == tried, "parked: no longer tried"
    finally:
        scheduler.stop()
    assert incident.kind == "STEP_FAILED"
    assert "3 times in a row" in incident.message and "step_failures_before_parking" in incident.message
    assert "its workflow does not load" in incident.message
    view = h.view(poison)
    assert view.instance.status == "ACTIVE" and view.instance.open_incidents == 1
    assert h.history(poison, "instance.parked")
    assert h.orchestrator.next_timer_due() is None, "its overdue timer no longer wakes the scheduler"


def test_a_parked_instance_stays_parked_across_a_restart_and_others_run(db_url: str) -> None:
    first = Harness(db_url, limits=LIMITS)
    first.deploy(p=one_job(), timed=after_timer("timed", "x = 1"))
    poison = first.start("timed")
    set_state(first, poison, CORRUPT)
    first.clock.advance(timedelta(hours=2))
    for _ in range(3):
        first.orchestrator.fire_due_timers()
    assert parking_incident(first, poison) is not None
    first.close()

    restarted = Harness(db_url, limits=LIMITS)  # a new process: empty caches, the same database
    try:
        restarted.clock.advance(timedelta(hours=2))
        assert restarted.orchestrator.fire_due_timers() == 0
        assert restarted.orchestrator.next_timer_due() is None
        assert failures(restarted, poison) == 3, "the restart did not resume it"
        other = restarted.start("p")
        restarted.complete("crm.work", other)
        assert restarted.task("review", other)
        view = restarted.view(poison)  # its view still answers, without loading the workflow
        assert view.instance.status == "ACTIVE" and view.active == []
    finally:
        restarted.close()


def test_requests_on_a_parked_instance_are_refused_naming_its_incident(h: Harness) -> None:
    h.deploy(p=one_job())
    instance = h.start("p")
    job = h.job("crm.work", instance)
    good = stored_state(h, instance)
    set_state(h, instance, CORRUPT)
    for _ in range(2):
        with pytest.raises(LoadFailed):
            h.orchestrator.complete_job(job.job_key, {"done": True})
    with pytest.raises(Parked, match="3 steps failed in a row, the last with LoadFailed"):
        h.orchestrator.complete_job(job.job_key, {"done": True})
    incident = parking_incident(h, instance)
    assert incident is not None
    with pytest.raises(Parked, match=incident.incident_id):
        h.orchestrator.complete_job(job.job_key, {"done": True})
    assert failures(h, instance) == 3, "a refused request is not another failure"
    # the worker's reply is not lost: the job stays open for the redelivery after un-parking
    assert [j.job_key for j in h.jobs(instance)] == [job.job_key]
    h.clock.advance(timedelta(hours=1))
    assert h.orchestrator.redeliver_overdue_jobs() == 0, "a parked instance's jobs are not redelivered"
    set_state(h, instance, good)
    h.orchestrator.resolve_incident(incident.incident_id)
    assert h.orchestrator.redeliver_overdue_jobs() == 1
    h.orchestrator.complete_job(job.job_key, {"done": True})
    assert h.task("review", instance)


def test_other_incidents_of_a_parked_instance_wait_for_its_parking_incident(h: Harness) -> None:
    h.deploy(p=one_job())
    instance = h.start("p")
    job = h.job("crm.work", instance)
    h.orchestrator.fail_job(job.job_key, retries=0, backoff_ms=0, message="no answer")
    (job_incident,) = h.view(instance).incidents
    good = stored_state(h, instance)
    set_state(h, instance, CORRUPT)
    for expected in (LoadFailed, LoadFailed, Parked):
        with pytest.raises(expected):
            h.orchestrator.complete_job(job.job_key, {})  # a late reply still reaches an incident's job
    parking = parking_incident(h, instance)
    assert parking is not None
    with pytest.raises(Parked, match=parking.incident_id):
        h.orchestrator.resolve_incident(job_incident.incident_id)
    assert failures(h, instance) == 3, "refused before its workflow was loaded"
    set_state(h, instance, good)
    h.orchestrator.resolve_incident(parking.incident_id)
    h.orchestrator.resolve_incident(job_incident.incident_id)
    assert h.view(instance).incidents == [] and h.job("crm.work", instance)


def test_a_successful_step_resets_the_count(h: Harness) -> None:
    h.deploy(p=one_job())
    instance = h.start("p")
    job = h.job("crm.work", instance)
    good = stored_state(h, instance)
    for _ in range(2):
        set_state(h, instance, CORRUPT)
        for _ in range(2):
            with pytest.raises(LoadFailed):
                h.orchestrator.complete_job(job.job_key, {"done": True})
        set_state(h, instance, good)
        h.orchestrator.fail_job(job.job_key, retries=3, backoff_ms=0, message="busy")  # a step that works
    assert failures(h, instance) == 4
    assert parking_incident(h, instance) is None, "never 3 failures in a row"


def test_a_step_after_failures_costs_no_more_statements_than_any_other(h: Harness) -> None:
    """The hot path stays as it was: the count is reset with the row the step writes anyway."""
    h.deploy(p=one_job())
    healthy, recovered = h.start("p"), h.start("p")
    good = stored_state(h, recovered)
    set_state(h, recovered, CORRUPT)
    for _ in range(2):
        with pytest.raises(LoadFailed):
            h.orchestrator.complete_job(h.job("crm.work", recovered).job_key, {})
    set_state(h, recovered, good)
    statements: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(" ".join(statement.split()[:3]))

    costs = {}
    for instance in (healthy, recovered):
        key = h.job("crm.work", instance).job_key
        event.listen(h.db.engine, "before_cursor_execute", record)
        try:
            h.orchestrator.complete_job(key, {"done": True})
        finally:
            event.remove(h.db.engine, "before_cursor_execute", record)
        costs[instance], statements[:] = list(statements), []
    assert costs[recovered] == costs[healthy]
    with h.db.read() as session:
        waits = session.scalar(select(Instance.waits).where(Instance.instance_id == recovered))
    assert waits is not None and "failures" not in waits, "the count was reset"


def test_resolving_the_parking_incident_tries_again(h: Harness) -> None:
    h.deploy(timed=after_timer("timed", "x = 1"))
    instance = h.start("timed")
    good = stored_state(h, instance)
    set_state(h, instance, CORRUPT)
    h.clock.advance(timedelta(hours=2))
    for _ in range(3):
        h.orchestrator.fire_due_timers()
    incident = parking_incident(h, instance)
    assert incident is not None
    with pytest.raises(Parked, match="4 steps failed"):
        h.orchestrator.resolve_incident(incident.incident_id)  # still broken: it stays parked
    assert parking_incident(h, instance) is not None
    set_state(h, instance, good)
    h.orchestrator.resolve_incident(incident.incident_id)
    assert parking_incident(h, instance) is None
    assert h.task("review", instance), "un-parked, its due timer fired"
    assert h.history(instance, "instance.unparked")


# ------------------------------------------------------------------- oversize input is refused (class 2)

SMALL = Limits(max_variable_bytes=10_000, max_instance_state_bytes=100_000)
BIG = "x" * 20_000


@pytest.fixture
def small(db_url: str) -> Iterator[Harness]:
    harness = Harness(db_url, limits=SMALL)
    yield harness
    harness.close()


def assert_refused(error: InvalidArgument, field: str, variable: str) -> None:
    assert error.field == field
    assert repr(variable) in error.problem and "max_variable_bytes = 10,000" in error.problem
    assert "xxxxxxxxxx" not in error.message, "the value is never echoed"


def test_a_worker_cannot_store_an_oversize_variable(small: Harness) -> None:
    small.deploy(p=one_job())
    instance = small.start("p")
    job = small.job("crm.work", instance)
    with pytest.raises(InvalidArgument) as completed:
        small.orchestrator.complete_job(job.job_key, {"ok": 1, "report": BIG})
    assert_refused(completed.value, "variables_json", "report")
    with pytest.raises(InvalidArgument) as thrown:
        small.orchestrator.throw_error(job.job_key, "E1", "failed", {"trace": BIG})
    assert_refused(thrown.value, "variables_json", "trace")
    assert small.job("crm.work", instance).job_key == job.job_key, "nothing changed: the job still waits"
    assert failures(small, instance) == 0


def test_a_person_cannot_submit_an_oversize_field(small: Harness) -> None:
    small.deploy(
        p=bpmn(
            "p",
            f'<startEvent id="s"/><userTask id="note">{form(field("text"))}</userTask><endEvent id="e"/>',
            "s -> note\nnote -> e",
        )
    )
    instance = small.start("p")
    task = small.task("note", instance)
    small.orchestrator.claim_user_task(task.user_task_id, TESTER)
    with pytest.raises(InvalidArgument) as refused:
        small.orchestrator.complete_user_task(task.user_task_id, {"text": BIG}, TESTER)
    assert_refused(refused.value, "text", "text")
    assert small.task("note", instance), "the task still waits"


def test_a_message_or_a_start_cannot_bring_an_oversize_variable(small: Harness) -> None:
    small.deploy(p=one_job())
    with pytest.raises(InvalidArgument) as published:
        small.orchestrator.publish_message("client.replied", "K1", {"attachment": BIG}, timedelta(hours=1))
    assert_refused(published.value, "variables_json", "attachment")
    with pytest.raises(InvalidArgument) as created:
        small.orchestrator.create_instance("p", 0, {"brief": BIG})
    assert_refused(created.value, "variables_json", "brief")
    with pytest.raises(InvalidArgument, match="correlation_key"):
        small.orchestrator.publish_message("client.replied", "K" * 1000, {})
    with small.db.read() as session:
        assert session.scalar(select(func.count()).select_from(Message)) == 0
        assert session.scalar(select(func.count()).select_from(Instance)) == 0


def test_many_variables_within_their_limit_together_past_the_state_limit_are_refused(small: Harness) -> None:
    small.deploy(p=one_job())
    many = {f"v{i}": "y" * 9_000 for i in range(20)}  # each under 10,000 bytes, 180,000 together
    with pytest.raises(InvalidArgument, match="max_instance_state_bytes"):
        small.orchestrator.create_instance("p", 0, many)


def test_a_value_that_cannot_be_stored_is_refused_naming_it(small: Harness) -> None:
    small.deploy(p=one_job())
    instance = small.start("p")
    job = small.job("crm.work", instance)
    nested: list[Any] = []
    for _ in range(2 * sys.getrecursionlimit()):  # deeper than JSON can go (deep_walks raised the limit)
        nested = [nested]
    for name, value in (("nested", nested), ("huge", 10**5000), ("thing", object())):
        with pytest.raises(InvalidArgument, match=f"'{name}' cannot be stored as JSON"):
            small.orchestrator.complete_job(job.job_key, {name: value})
    assert failures(small, instance) == 0


# ------------------------------------------------------- state growth past the limit is an incident (class 3)


def test_a_script_growing_the_state_past_its_limit_parks_the_instance(small: Harness) -> None:
    grow = "\n".join(f"v{i} = 'z' * 9000" for i in range(15))  # each under the variable limit
    small.deploy(grown=after_timer("grown", grow), p=one_job())
    instance = small.start("grown")
    before = stored_state(small, instance)
    small.clock.advance(timedelta(hours=2))
    scheduler = Scheduler(small)
    try:
        eventually(lambda: parking_incident(small, instance), "the instance parked")
        answered_while(
            lambda: scheduler.background.running, probe_other_work(small), what="another instance's work"
        )
        tried = scheduler.tried[instance]
        wait_rounds(scheduler, 10)
        assert scheduler.tried[instance] == tried, "parked: no longer tried"
    finally:
        scheduler.stop()
    incident = parking_incident(small, instance)
    assert incident is not None and incident.kind == "STATE_TOO_LARGE"
    assert "max_instance_state_bytes = 100,000" in incident.message and "bytes as JSON" in incident.message
    assert stored_state(small, instance) == before, "the step was not written"
    assert failures(small, instance) == 1, "parked at once: a retry would only grow it again"
    with small.db.read() as session:
        longest = session.scalar(select(func.max(func.length(Instance.state) + Instance.parts_bytes)))
    assert longest is not None and longest <= SMALL.max_instance_state_bytes, "never a giant row"


def test_a_script_variable_past_its_limit_is_an_incident_on_the_script_naming_it(small: Harness) -> None:
    small.deploy(grown=after_timer("grown", "summary = 'z' * 30000"))
    instance = small.start("grown")
    small.fast_forward(instance)
    assert parking_incident(small, instance) is None, "the sandbox refuses it: the step itself is sound"
    [incident] = small.view(instance).incidents
    assert (incident.kind, incident.element_id) == ("SCRIPT_ERROR", "grow")
    assert "summary" in incident.message and "max_variable_bytes" in incident.message


# Variables each within max_variable_bytes that together pass max_instance_state_bytes (100,000).
MANY_VARIABLES = "\n".join(f"v{i} = 'z' * 9000" for i in range(12))


def test_variables_that_together_pass_the_state_limit_park_the_instance_naming_it(small: Harness) -> None:
    small.deploy(grown=after_timer("grown", MANY_VARIABLES))
    instance = small.start("grown")
    small.fast_forward(instance)
    incident = parking_incident(small, instance)
    assert incident is not None and incident.kind == "STATE_TOO_LARGE"
    assert "max_instance_state_bytes" in incident.message


def test_worker_results_that_together_pass_the_state_limit_park_the_instance(db_url: str) -> None:
    limits = Limits(max_variable_bytes=60_000, max_instance_state_bytes=100_000)
    h = Harness(db_url, limits=limits)
    try:
        h.deploy(
            p=bpmn(
                "p",
                f"""<startEvent id="s"/>{service_task("a", "crm.a")}{service_task("b", "crm.b")}
                <userTask id="review"/><endEvent id="e"/>""",
                "s -> a\na -> b\nb -> review\nreview -> e",
            )
        )
        instance = h.start("p")
        h.complete("crm.a", instance, first="q" * 50_000)
        job = h.job("crm.b", instance)
        with pytest.raises(ResourceExhausted, match="max_instance_state_bytes") as refused:
            h.orchestrator.complete_job(job.job_key, {"second": "r" * 50_000})
        incident = parking_incident(h, instance)
        assert incident is not None and incident.incident_id in refused.value.message
        assert h.job("crm.b", instance).job_key == job.job_key, "the step was not written: the job waits"
    finally:
        h.close()


# ---------------------------------------------------------------------- any instance can be cancelled (4, 5)


def assert_cancelled(h: Harness, instance_id: str) -> None:
    """What a cancel writes, through the engine or not: status, rows closed, history, audit, event."""
    view = h.view(instance_id)
    assert view.instance.status == "CANCELED" and view.instance.ended_at is not None
    assert view.jobs == [] and view.user_tasks == [] and view.incidents == []
    assert view.instance.open_incidents == 0
    with h.db.read() as session:
        for table in (Timer, Subscription):
            assert (
                session.scalar(
                    select(func.count()).select_from(table).where(table.instance_id == instance_id)
                )
                == 0
            )
        open_tasks = select(func.count()).select_from(UserTask)
        assert (
            session.scalar(open_tasks.where(UserTask.instance_id == instance_id, UserTask.status == "OPEN"))
            == 0
        )
        open_jobs = select(func.count()).select_from(JobRecord)
        assert (
            session.scalar(
                open_jobs.where(
                    JobRecord.instance_id == instance_id, JobRecord.status.in_(("ACTIVATABLE", "INCIDENT"))
                )
            )
            == 0
        )
        events = [
            events_pb2.StatusEvent.FromString(payload)
            for payload in session.scalars(
                select(outbox.c.payload).where(outbox.c.subject == "status.orchestrator.instance.canceled")
            )
        ]
    assert instance_id in [e.subject for e in events]
    assert h.history(instance_id, "instance.canceled")
    entries, _ = h.orchestrator.list_audit(instance_id=instance_id)
    assert "instance.canceled" in [e.action for e in entries]


def test_an_instance_whose_state_does_not_load_is_cancelled_by_its_rows(h: Harness) -> None:
    h.deploy(waits=WAITS_EVERYWHERE, p=one_job())
    instance = h.start("waits", "K1", key="K1")
    assert h.jobs(instance) and h.user_tasks(instance)
    set_state(h, instance, CORRUPT)
    h.orchestrator.cancel_instance(instance, "client withdrew")
    assert_cancelled(h, instance)
    (cancelled,) = [e for e in h.view(instance).history if e.type == "instance.canceled"]
    assert "without the engine" in cancelled.detail
    with pytest.raises(FailedPrecondition):  # a late reply is refused, not an INTERNAL error
        h.orchestrator.complete_job(h.jobs(instance, status="CANCELED")[0].job_key, {})
    assert h.publish("client.replied", "K1") == "DROPPED"


def test_an_instance_whose_definition_no_longer_parses_is_cancelled(db_url: str) -> None:
    first = Harness(db_url, limits=LIMITS)
    first.deploy(waits=WAITS_EVERYWHERE)
    instance = first.start("waits", "K2", key="K2")
    with first.uow() as uow:  # the stored diagram is damaged: no process can load it
        uow.session.execute(update(Resource).values(content=b"<definitions>broken"))
        uow.commit()
    first.close()
    restarted = Harness(db_url, limits=LIMITS)
    try:
        restarted.orchestrator.cancel_instance(instance, "cleanup")
        assert_cancelled(restarted, instance)
    finally:
        restarted.close()


def test_an_instance_whose_state_is_over_the_limit_is_cancelled(db_url: str) -> None:
    first = Harness(db_url)
    first.deploy(waits=WAITS_EVERYWHERE)
    instance = first.start("waits", "K3", key="K3", notes="n" * 50_000)
    first.close()
    lowered = Harness(db_url, limits=replace(LIMITS, max_instance_state_bytes=20_000))  # lowered since
    try:
        assert lowered.view(instance).instance.status == "ACTIVE", "its view answers without loading it"
        lowered.orchestrator.cancel_instance(instance, "too big")
        assert_cancelled(lowered, instance)
    finally:
        lowered.close()


def test_a_parked_instance_is_cancelled_while_others_are_answered(h: Harness) -> None:
    h.deploy(waits=WAITS_EVERYWHERE, p=one_job(), poison=after_timer("poison", "x = 1"))
    parked = h.start("waits", "K4", key="K4")
    job = h.job("crm.work", parked)
    set_state(h, parked, CORRUPT)
    for expected in (LoadFailed, LoadFailed, Parked):
        with pytest.raises(expected):
            h.orchestrator.complete_job(job.job_key, {})
    assert parking_incident(h, parked) is not None
    retried = poison_after_start(h, "poison", not_a_workflow)  # another poison instance, retried meanwhile
    h.clock.advance(timedelta(hours=2))
    scheduler = Scheduler(h)
    try:
        eventually(lambda: failures(h, retried) >= 1, "the other poison instance failing")
        answered_while(
            lambda: scheduler.background.running,
            lambda: h.orchestrator.cancel_instance(parked, "stuck"),
            what="cancelling a parked instance",
        )
    finally:
        scheduler.stop()
    assert_cancelled(h, parked)
    assert parking_incident(h, parked) is None


def test_an_instance_parked_for_its_size_is_cancelled(small: Harness) -> None:
    small.deploy(grown=after_timer("grown", MANY_VARIABLES))
    instance = small.start("grown")
    small.fast_forward(instance)
    assert parking_incident(small, instance) is not None
    small.orchestrator.cancel_instance(instance, "")
    assert_cancelled(small, instance)
    assert small.orchestrator.fire_due_timers() == 0


def engagement_and_risk() -> dict[str, bytes]:
    """An engagement whose message starts its risk management for the same key."""
    engagement = bpmn(
        "engagement",
        f"""<startEvent id="s"/>
        <intermediateThrowEvent id="start_risk"><messageEventDefinition messageRef="m_started">
          <extensionElements><spiffworkflow:messagePayload>{{"engagement_id": engagement_id}}
          </spiffworkflow:messagePayload></extensionElements>
        </messageEventDefinition></intermediateThrowEvent>
        {service_task("work", "crm.work")}<endEvent id="e"/>""",
        "s -> start_risk\nstart_risk -> work\nwork -> e",
        extra=message("m_started", "engagement.started", "engagement_id"),
    )
    risk = bpmn(
        "risk",
        """<startEvent id="rs"><messageEventDefinition messageRef="m_started"/></startEvent>
        <userTask id="review"/><endEvent id="re"/>""",
        "rs -> review\nreview -> re",
        extra=message("m_started", "engagement.started", "engagement_id"),
    )
    return {"engagement": engagement, "risk": risk}


def test_cancelling_a_broken_engagement_cancels_its_risk_management(h: Harness) -> None:
    h.deploy(**engagement_and_risk())
    engagement = h.start("engagement", "E1", engagement_id="E1")
    assert h.deliver_thrown() == 1
    (risk,) = h.orchestrator.list_instances(process_id="risk")[0]
    set_state(h, engagement, CORRUPT)
    set_state(h, risk.instance_id, CORRUPT)
    h.orchestrator.cancel_instance(engagement, "client withdrew")
    assert_cancelled(h, engagement)
    assert_cancelled(h, risk.instance_id)


def test_a_message_thrown_before_its_engagement_was_cancelled_does_not_start_risk_management(
    h: Harness,
) -> None:
    h.deploy(**engagement_and_risk())
    engagement = h.start("engagement", "E2", engagement_id="E2")
    h.orchestrator.cancel_instance(engagement, "client withdrew")  # before the dispatcher delivered it
    assert h.deliver_thrown() == 0
    assert h.orchestrator.list_instances(process_id="risk")[0] == []
    with h.db.read() as session:
        assert session.scalar(select(Message.status).where(Message.name == "engagement.started")) == "DROPPED"


def test_cancelling_a_real_engagement_that_does_not_load_cancels_its_risk_management(tmp_path: Path) -> None:
    """The regulation's own diagrams: the engagement starts its risk management for its key (6.1.1)."""
    world = World(tmp_path, FlowIndex.load())
    try:
        engagement = world.start(
            "engagement",
            "E-9",
            engagement_id="E-9",
            channel="email",
            client_name="深圳照明 Shenzhen Lighting",
            client_industry="manufacturing",
            contact_name="陳女士 Ms Chen",
            contact_email="chen@example.cn",
            contact_phone="",
            question="Can you help us enter the European market?",
        )
        risk = world.instance("risk_management")
        assert (risk.business_key, risk.status) == ("E-9", "ACTIVE")
        with UnitOfWork(world.db, "orchestrator") as uow:
            uow.session.execute(
                update(Instance)
                .where(Instance.instance_id == engagement)
                .values(state=CORRUPT, revision=Instance.revision + 1)
            )
            uow.commit()
        world.orchestrator.cancel_instance(engagement, "client withdrew")
        assert {row.process_id: row.status for row in world.instances()} == {
            "engagement": "CANCELED",
            "risk_management": "CANCELED",
        }
    finally:
        world.close()


def test_oversize_variables_are_refused_over_grpc_naming_the_field(tmp_path: Path, nats_url: str) -> None:
    """What a remote caller sees: INVALID_ARGUMENT with the field in the status details, no value echoed."""
    empty = tmp_path / "bpmn"
    empty.mkdir()
    settings = component_settings("orchestrator", tmp_path, nats_url, bpmn_dir=empty, limits=SMALL)
    component = ComponentThread(settings, build).start()
    try:
        with signed_channel(component.address) as channel:
            stub = pb_grpc.OrchestratorServiceStub(channel)
            stub.DeployResources(
                pb.DeployResourcesRequest(resources=[pb.Resource(name="p.bpmn", content=one_job())])
            )
            big = json.dumps({"brief": BIG})
            errors = [
                rpc_error(stub.CreateInstance, pb.CreateInstanceRequest(process_id="p", variables_json=big)),
                rpc_error(
                    stub.PublishMessage,
                    pb.PublishMessageRequest(name="m", correlation_key="k", variables_json=big),
                ),
            ]
            for error in errors:
                details = error.details() if isinstance(error, grpc.Call) else ""
                assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
                assert "'brief'" in details and "max_variable_bytes" in details
                assert "xxxxxxxxxx" not in details
                assert [f for f, _ in field_violations(error)] == ["variables_json"]
    finally:
        component.stop()


def test_a_timer_start_whose_start_keeps_failing_waits_before_it_is_tried_again(small: Harness) -> None:
    """No instance exists to park when a start fails, so the start timer itself steps back a minute: the
    timer loop must not try it on every round."""
    small.deploy(
        p=bpmn(
            "p",
            f"""<startEvent id="hourly"><timerEventDefinition><timeCycle>"R/PT1H"</timeCycle>
            </timerEventDefinition></startEvent>
            <scriptTask id="grow"><script>{MANY_VARIABLES}</script></scriptTask><endEvent id="e"/>""",
            "hourly -> grow\ngrow -> e",
        )
    )
    small.clock.advance(timedelta(hours=2))
    assert small.orchestrator.fire_start_timers() == 0, "its first step passes max_instance_state_bytes"
    due = small.orchestrator.next_timer_due()
    assert due is not None and due > small.clock.now(), "not due again at once"
    assert small.orchestrator.fire_start_timers() == 0
    with small.db.read() as session:
        assert session.scalar(select(func.count()).select_from(StartTimer)) == 1, "kept, to be tried again"


def growing_message_start() -> bytes:
    return bpmn(
        "p",
        f"""<startEvent id="asked"><messageEventDefinition messageRef="m_asked"/></startEvent>
        <scriptTask id="grow"><script>{MANY_VARIABLES}</script></scriptTask><endEvent id="e"/>""",
        "asked -> grow\ngrow -> e",
        extra=message("m_asked", "client.asked", "key"),
    )


def failed_message_starts() -> float:
    return REGISTRY.get_sample_value("consultflow_starts_failed_total", {"event": "message"}) or 0.0


def start_failures(caplog: pytest.LogCaptureFixture) -> int:
    return sum(
        1 for r in caplog.records if r.levelno >= logging.ERROR and "correlating message" in r.getMessage()
    )


def test_a_message_whose_start_keeps_failing_waits_before_it_is_tried_again(
    small: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    """Like a timer start: no instance exists to park, so the buffered message steps back a minute rather
    than run the failing start (and log its traceback) on every round of the message loop."""
    small.deploy(p=growing_message_start())
    counted = failed_message_starts()
    with pytest.raises(StateTooLarge):
        small.publish("client.asked", "K1", ttl_seconds=3600)
    with caplog.at_level(logging.ERROR):
        for _ in range(3):
            assert small.orchestrator.correlate_pending() == 0
        assert start_failures(caplog) == 0, "tried again at once"
        small.clock.advance(START_RETRY_DELAY + timedelta(seconds=1))
        assert small.orchestrator.correlate_pending() == 0
        assert small.orchestrator.correlate_pending() == 0
        assert start_failures(caplog) == 1, "tried again once after the delay, then waits again"
    assert failed_message_starts() == counted + 2, "the publish's try and the one after the delay"
    with small.db.read() as session:
        (status,) = session.scalars(select(Message.status)).all()
        assert status == MessageStatus.PENDING, "kept until its TTL, to be tried again"
        assert session.scalar(select(func.count()).select_from(Instance)) == 0


def test_a_message_whose_start_failed_still_reaches_an_instance_that_waits_for_it(small: Harness) -> None:
    """Stepping back delays only its start: an instance that comes to wait for it meanwhile takes it in
    that instance's own step (a buffered message meets a new subscription there)."""
    waiter = bpmn(
        "waiter",
        """<startEvent id="s"/>
        <intermediateCatchEvent id="asked"><messageEventDefinition messageRef="m_asked"/>
        </intermediateCatchEvent><userTask id="answer"/><endEvent id="e"/>""",
        "s -> asked\nasked -> answer\nanswer -> e",
        extra=message("m_asked", "client.asked", "key"),
    )
    small.deploy(p=growing_message_start(), waiter=waiter)
    with pytest.raises(StateTooLarge):
        small.publish("client.asked", "K1", ttl_seconds=3600)
    waiting = small.start("waiter", key="K1")
    small.orchestrator.correlate_pending()
    assert small.task("answer", waiting), "delivered now, not after the delay"


def test_a_message_start_that_met_a_busy_database_is_tried_again_at_once(
    small: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A busy database is no fault of the message: it does not step back a minute."""
    small.deploy(p=growing_message_start())
    real_start = small.orchestrator.start

    def busy(*args: Any, **kwargs: Any) -> str:
        raise OperationalError("BEGIN IMMEDIATE", {}, sqlite3.OperationalError("database is locked"))

    monkeypatch.setattr(small.orchestrator, "start", busy)
    counted = failed_message_starts()
    with pytest.raises(OperationalError):
        small.publish("client.asked", "K1", ttl_seconds=3600)
    assert failed_message_starts() == counted, "a busy database is not a failed start"
    with small.db.read() as session:
        assert session.scalars(select(Message.retry_at)).one() is None, "not stepped back"
    monkeypatch.setattr(small.orchestrator, "start", real_start)
    assert small.orchestrator.correlate_pending() == 0  # tried in the next round: now its own step fails
    with small.db.read() as session:
        assert session.scalars(select(Message.retry_at)).one() is not None, "now it steps back"
