"""The orchestrator's scrape-time gauges and timer metrics, read from a real database (SQLite and
PostgreSQL): open and overdue user tasks by group, open incidents, how late a timer fired."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from consultflow.orchestrator.observability import gauges
from consultflow.platform.metrics import REGISTRY
from tests.support.bpmn_builder import bpmn
from tests.support.orchestrator_harness import Harness

TASKS = bpmn(
    "p",
    '<startEvent id="s"/><parallelGateway id="fork"/>'
    '<userTask id="late" camunda:candidateGroups="team,legal" camunda:dueDate="2020-01-01T00:00:00+00:00"/>'
    '<userTask id="named" camunda:candidateUsers="ann"/>'
    '<userTask id="later" camunda:candidateGroups="team" camunda:dueDate="P30D"/>'
    '<intermediateCatchEvent id="wait"><timerEventDefinition><timeDuration>"PT1H"</timeDuration>'
    "</timerEventDefinition></intermediateCatchEvent>"
    '<parallelGateway id="join"/><endEvent id="e"/>',
    "s -> fork\nfork -> late\nfork -> named\nfork -> later\nfork -> wait\n"
    "late -> join\nnamed -> join\nlater -> join\nwait -> join\njoin -> e",
)


@pytest.fixture
def h(database_url: str) -> Iterator[Harness]:
    harness = Harness(database_url)
    yield harness
    harness.close()


def test_open_and_overdue_tasks_by_group_and_open_incidents(h: Harness) -> None:
    h.deploy(p=TASKS)
    h.start("p")
    readings = {(r.name, r.labels): r.value for r in gauges(h.db)()}
    assert readings == {
        ("consultflow_incidents_open", ()): 0,
        ("consultflow_user_tasks_open", (("group", ""),)): 1,  # for named people only
        ("consultflow_user_tasks_open", (("group", "legal"),)): 1,
        ("consultflow_user_tasks_open", (("group", "team"),)): 2,  # a task of two groups counts in each
        ("consultflow_user_tasks_overdue", (("group", ""),)): 0,
        ("consultflow_user_tasks_overdue", (("group", "legal"),)): 1,
        ("consultflow_user_tasks_overdue", (("group", "team"),)): 1,
    }


def test_a_timer_fired_late_is_observed_once_its_step_commits(h: Harness) -> None:
    h.deploy(p=TASKS)
    instance = h.start("p")

    def lateness() -> tuple[float, float]:
        count = REGISTRY.get_sample_value("consultflow_timer_lateness_seconds_count") or 0.0
        total = REGISTRY.get_sample_value("consultflow_timer_lateness_seconds_sum") or 0.0
        return count, total

    before = lateness()
    h.fast_forward(instance, "wait")  # the clock moves one second past the timer's due time
    after = lateness()
    assert after[0] - before[0] == 1
    assert after[1] - before[1] == pytest.approx(1.0, abs=0.1)
    assert "wait" in h.completed_elements(instance)
