"""More hostile members of the engine's classes (issue 14), beyond tests/hostile/test_engine.py: cycles
that fell behind, an instance held by its size limit while timers and messages keep coming, buffered
messages nobody receives, and timer values that are absurd rather than short.

Each case asserts its outcome and liveness: while the hostile work still runs, another caller's deploy,
start and cancel are answered (tests/support/liveness.py).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from consultflow.orchestrator.orm import Instance, Message, Timer
from consultflow.platform.clock import ManualClock
from consultflow.platform.limits import Limits
from tests.hostile.test_deploy import refused_while_others_are_answered
from tests.hostile.test_engine import (
    chain,
    completions_in_ten_seconds,
    drive,
    open_incidents,
    other_caller,
    run_hostile,
    the_incident,
    while_probed,
)
from tests.support.bpmn_builder import bpmn
from tests.support.liveness import Background, answered_while
from tests.support.orchestrator_harness import Harness


@pytest.fixture
def make_harness(tmp_path: Path) -> Iterator[Callable[..., Harness]]:
    made: list[Harness] = []

    def make(
        clock: ManualClock | None = None, options: dict[str, Any] | None = None, **limits: Any
    ) -> Harness:
        folder = tmp_path / str(len(made))
        folder.mkdir()
        harness = Harness.sqlite(folder, clock=clock, limits=Limits(**limits), **(options or {}))
        made.append(harness)
        return harness

    yield make
    for harness in made:
        harness.close()


def count(harness: Harness, model: Any, *where: Any) -> int:
    with harness.db.read() as session:
        return int(session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


def cycling(process_id: str, cycle: str, round_waits: bool = False) -> bytes:
    """A user task with a non-interrupting boundary cycle that runs a script each firing (and then, with
    `round_waits`, leaves a user task open: a round that stays in the state, where a finished one
    leaves it)."""
    nodes = (
        '<startEvent id="s"/><userTask id="work"/><boundaryEvent id="tick" attachedToRef="work" '
        f'cancelActivity="false"><timerEventDefinition><timeCycle>{cycle}</timeCycle></timerEventDefinition>'
        '</boundaryEvent><scriptTask id="note"><script>pings = 1</script></scriptTask>'
        '<endEvent id="e"/><endEvent id="noted"/>' + ('<userTask id="follow_up"/>' if round_waits else "")
    )
    round_flows = "note -> follow_up\nfollow_up -> noted" if round_waits else "note -> noted"
    return bpmn(process_id, nodes, "s -> work\nwork -> e\ntick -> note\n" + round_flows)


class TestCyclesThatFellBehind:
    """A cycle an hour behind (the orchestrator was down) catches up at most `max_timer_catch_up` firings,
    not 3,600: a legal one-second cycle used to grow a healthy instance past `max_instance_tasks` (an
    incident) and a one-second timer start event to start an instance per missed second in a tight loop."""

    @pytest.mark.parametrize(
        ("cycle", "variables", "most"),
        [
            ('"R/PT1S"', {}, 10),
            ("cycle", {"cycle": "R100000/PT0.001S"}, 10),
            # began long ago: ten missed firings caught up at the start, ten more an hour later
            ("cycle", {"cycle": "R/2000-01-01T00:00:00+00:00/PT1S"}, 20),
        ],
        ids=str,
    )
    def test_a_boundary_cycle_an_hour_behind(
        self, make_harness: Callable[..., Harness], cycle: str, variables: dict[str, Any], most: int
    ) -> None:
        clock = ManualClock()
        harness = make_harness(clock, max_timer_catch_up=10, max_instance_tasks=2000)
        harness.deploy(cyc=cycling("cyc", cycle))
        instance_id = harness.start("cyc", **variables)
        clock.advance(timedelta(hours=1))
        while_probed(harness, harness.orchestrator.fire_due_timers)
        fired = harness.completed_elements(instance_id).count("note")
        assert 1 <= fired <= most, fired
        assert not open_incidents(harness, instance_id) and harness.status(instance_id) == "ACTIVE"
        due = harness.orchestrator.next_timer_due()
        assert due is not None and due >= clock.now()  # caught up: nothing overdue keeps the scheduler busy
        clock.advance(timedelta(seconds=1.5))
        harness.orchestrator.fire_due_timers()
        assert fired < harness.completed_elements(instance_id).count("note") <= fired + 2  # it goes on

    @pytest.mark.parametrize(
        ("cycle", "options"),
        [
            ('"R/PT1S"', {}),
            ('"R100000/PT5S"', {}),
            ('"R/P1D"', {"timer_overrides": {"tick": "R/PT0.01S"}}),
            ('"R/2000-01-01T00:00:00+00:00/PT1S"', {}),  # began long ago: behind from the start
        ],
        ids=["unbounded", "bounded", "override", "since-2000"],
    )
    def test_a_timer_start_event_an_hour_behind(
        self, make_harness: Callable[..., Harness], cycle: str, options: dict[str, Any]
    ) -> None:
        clock = ManualClock()
        harness = make_harness(clock, options, max_timer_catch_up=10)
        timer = f"<timerEventDefinition><timeCycle>{cycle}</timeCycle></timerEventDefinition>"
        start = f'<startEvent id="tick">{timer}</startEvent><userTask id="u"/>'
        harness.deploy(ticking=bpmn("ticking", start, "tick -> u"))
        clock.advance(timedelta(hours=1))

        def scheduler_round() -> None:
            harness.orchestrator.fire_start_timers()
            harness.orchestrator.fire_due_timers()

        while_probed(harness, scheduler_round)
        for _ in range(20):  # the scheduler's next rounds: the catch-up is over within ten
            scheduler_round()
        started = count(harness, Instance, Instance.process_id == "ticking")
        assert 1 <= started <= 10, started  # not 720 to 3,600
        due = harness.orchestrator.next_timer_due()
        assert due is not None and due >= clock.now()


class TestAnInstanceHeldByItsSize:
    """Once `max_instance_tasks` stops an instance, timers and messages no longer run its engine: one
    incident, not one more task and incident per firing or message, and no overdue timer row that would
    wake the scheduler without pause. Cancelling works; resolving the incident tries again."""

    def test_a_cycle_keeps_firing_after_the_limit(self, make_harness: Callable[..., Harness]) -> None:
        clock = ManualClock()
        harness = make_harness(clock, max_instance_tasks=60)
        harness.deploy(cyc=cycling("cyc", '"R/PT1S"', round_waits=True))  # open rounds grow the instance
        instance_id = harness.start("cyc")

        def seconds_pass() -> None:
            for _ in range(10):
                clock.advance(timedelta(seconds=1.01))
                harness.orchestrator.fire_due_timers()

        while_probed(harness, seconds_pass)
        for _ in range(3):
            seconds_pass()
        incident = the_incident(harness, instance_id)
        assert len(open_incidents(harness, instance_id)) == 1, [
            i.message for i in open_incidents(harness, instance_id)
        ]
        assert "max_instance_tasks (60)" in incident.message
        assert count(harness, Timer, Timer.instance_id == instance_id) == 0
        assert harness.orchestrator.next_timer_due() is None
        harness.orchestrator.resolve_incident(incident.incident_id)  # tries again: stopped again, once
        assert len(open_incidents(harness, instance_id)) == 1
        harness.orchestrator.cancel_instance(instance_id, "enough")
        assert harness.status(instance_id) == "CANCELED"

    def test_a_non_interrupting_event_sub_process_triggered_again_and_again(
        self, make_harness: Callable[..., Harness]
    ) -> None:
        harness = make_harness(max_instance_tasks=150)
        extra = '<message id="m_poke" name="poke"/>'
        nodes = (
            '<startEvent id="s"/><userTask id="work"/><endEvent id="e"/>'
            '<subProcess id="on_poke" triggeredByEvent="true"><startEvent id="poked" isInterrupting="false">'
            '<messageEventDefinition messageRef="m_poke"/></startEvent>'
            '<scriptTask id="note"><script>pokes = 1</script></scriptTask><endEvent id="noted"/>'
            '<sequenceFlow id="p1" sourceRef="poked" targetRef="note"/>'
            '<sequenceFlow id="p2" sourceRef="note" targetRef="noted"/></subProcess>'
        )
        harness.deploy(pokes=bpmn("pokes", nodes, "s -> work\nwork -> e", extra=extra))
        instance_id = harness.start("pokes")
        outcomes: list[str] = []

        def storm() -> None:
            outcomes.extend(str(harness.publish("poke")) for _ in range(20))

        while_probed(harness, storm)
        for _ in range(5):
            storm()
        incidents = open_incidents(harness, instance_id)
        assert len(incidents) == 1 and "max_instance_tasks (150)" in incidents[0].message
        assert outcomes[-1] == "DROPPED"  # held: it no longer waits for the message (nothing buffered it)
        assert harness.view(instance_id).instance.status == "ACTIVE"
        harness.orchestrator.cancel_instance(instance_id, "enough")
        assert harness.status(instance_id) == "CANCELED"


class TestBufferedMessagesNobodyReceives:
    """Buffered messages without a receiver (a storm with a long TTL) must not starve the ones behind them:
    the dispatcher used to try the 200 oldest pending messages every round, and only those."""

    def starter(self) -> bytes:
        extra = '<message id="m_go" name="go"/>'
        nodes = (
            '<startEvent id="s"><messageEventDefinition messageRef="m_go"/></startEvent><userTask id="u"/>'
        )
        return bpmn("started", nodes, "s -> u", extra=extra)

    def test_a_message_behind_a_storm_of_unreceived_ones_starts_its_process(
        self, make_harness: Callable[..., Harness]
    ) -> None:
        clock = ManualClock()
        harness = make_harness(clock)
        for number in range(250):
            harness.publish("nobody", key=f"k{number}", ttl_seconds=3600)
        clock.advance(timedelta(seconds=1))
        assert harness.publish("go", key="g1", ttl_seconds=3600) == "BUFFERED"  # no process yet
        harness.deploy(started=self.starter())

        def storm_and_dispatch() -> None:
            harness.publish("nobody", key="again", ttl_seconds=3600)
            harness.deliver_thrown()

        while_probed(harness, storm_and_dispatch)
        assert count(harness, Instance, Instance.process_id == "started") == 1

    def test_messages_whose_receiver_keeps_refusing_them_do_not_starve_the_rest(
        self, make_harness: Callable[..., Harness]
    ) -> None:
        # A message start event for a business key whose instance exists (and does not wait for it) cannot
        # start anything: such messages have a receiver, yet stay pending until their TTL.
        clock = ManualClock()
        harness = make_harness(clock)
        harness.deploy(started=self.starter())
        assert harness.publish("go", key="taken") == "STARTED"
        for _ in range(250):
            assert harness.publish("go", key="taken", ttl_seconds=3600) == "BUFFERED"
        clock.advance(timedelta(seconds=1))
        assert harness.publish("late", key="l1", ttl_seconds=3600) == "BUFFERED"  # no process yet
        extra = '<message id="m_late" name="late"/>'
        nodes = (
            '<startEvent id="s"><messageEventDefinition messageRef="m_late"/></startEvent><userTask id="u"/>'
        )
        harness.deploy(late=bpmn("late", nodes, "s -> u", extra=extra))
        while_probed(harness, harness.deliver_thrown)
        for _ in range(2):  # each round goes on where the last one stopped: 251 messages, 200 a round
            harness.deliver_thrown()
        assert count(harness, Instance, Instance.process_id == "late") == 1
        assert count(harness, Message, Message.name == "go", Message.status == "PENDING") == 250


class TestAbsurdTimerValues:
    """Timer values that are not short but absurd: ten thousand years and more used to hold the thread
    (Spiff adds up the days of each month one by one: `P99999999Y` ran for minutes inside a step's write
    transaction, or a deploy), and values that do not parse were an incident on no element."""

    def waiting(self, process_id: str, kind: str) -> bytes:
        nodes = (
            f'<startEvent id="s"/><intermediateCatchEvent id="w"><timerEventDefinition><{kind}>value</{kind}>'
            '</timerEventDefinition></intermediateCatchEvent><endEvent id="e"/>'
        )
        return bpmn(process_id, nodes, "s -> w\nw -> e")

    @pytest.mark.parametrize(
        ("kind", "value", "says"),
        [
            ("timeDuration", "P99999999Y", "beyond the year 9999"),
            ("timeDuration", "P99999999.5Y", "beyond the year 9999"),
            ("timeCycle", "R/P999999999M", "beyond the year 9999"),
            ("timeCycle", "R/P99999999Y/2030-01-01T00:00:00+00:00", "beyond the year 9999"),
            ("timeDuration", "P9000Y", "beyond the year 9999"),
            ("timeDuration", "PT-5S", "Invalid duration"),
            ("timeCycle", "R/garbage", "Invalid isoformat"),
            ("timeCycle", "R-5/PT1S", "repeat count"),
            ("timeDate", "2030-13-45", "month must be"),
        ],
    )
    def test_a_computed_value_is_an_incident_on_the_timer(
        self, make_harness: Callable[..., Harness], kind: str, value: str, says: str
    ) -> None:
        harness = make_harness()
        harness.deploy(absurd=self.waiting("absurd", kind))
        instance_id = run_hostile(harness, lambda: harness.start("absurd", value=value))[0]
        incident = the_incident(harness, instance_id)
        assert incident.element_id == "w" and says in incident.message, incident.message

    @pytest.mark.parametrize(
        ("where", "definition", "says"),
        [
            ("intermediate", '<timeDuration>"P99999999Y"</timeDuration>', "beyond the year 9999"),
            ("start", '<timeDuration>"P99999999Y"</timeDuration>', "beyond the year 9999"),
            ("intermediate", '<timeCycle>"R-5/PT1S"</timeCycle>', "repeat count"),
        ],
    )
    def test_a_literal_value_is_refused_at_deploy(
        self, make_harness: Callable[..., Harness], where: str, definition: str, says: str
    ) -> None:
        harness = make_harness()
        harness.deploy(
            normal=bpmn(
                "normal", '<startEvent id="s"/><userTask id="u"/><endEvent id="e"/>', "s -> u\nu -> e"
            )
        )
        timer = f"<timerEventDefinition>{definition}</timerEventDefinition>"
        if where == "start":
            nodes, flows = f'<startEvent id="w">{timer}</startEvent><endEvent id="e"/>', "w -> e"
        else:
            catch = f'<intermediateCatchEvent id="w">{timer}</intermediateCatchEvent>'
            nodes = f'<startEvent id="s"/>{catch}<endEvent id="e"/>'
            flows = "s -> w\nw -> e"
        error = refused_while_others_are_answered(harness, {"absurd.bpmn": bpmn("absurd", nodes, flows)})
        assert error.element == "w" and says in str(error)


class TestTimersBehindInstancesThatKeepContinuing:
    """The timer loop takes at most `limit` due instances a round: the longest overdue first. In instance
    id order (as before), instances whose engine work continues step after step (each due again soon)
    could take every round from a timer behind them."""

    def test_an_overdue_timer_fires_while_more_instances_than_a_round_takes_keep_continuing(
        self, make_harness: Callable[..., Harness]
    ) -> None:
        harness = make_harness(max_tasks_per_step=5)
        nodes = (
            '<startEvent id="s"/><intermediateCatchEvent id="w"><timerEventDefinition>'
            '<timeDuration>"PT0.2S"</timeDuration></timerEventDefinition></intermediateCatchEvent>'
            '<endEvent id="e"/>'
        )
        harness.deploy(long=chain("long", 600), wait=bpmn("wait", nodes, "s -> w\nw -> e"))
        hostile = [harness.start("long") for _ in range(4)]
        waiting = harness.start("wait")

        def round_of_two() -> None:
            harness.orchestrator.fire_due_timers(limit=2)

        while_probed(harness, round_of_two)
        deadline = time.monotonic() + 30
        while harness.status(waiting) == "ACTIVE" and time.monotonic() < deadline:
            round_of_two()
        assert harness.status(waiting) == "COMPLETED"
        statuses = [harness.status(i) for i in hostile]
        assert "ACTIVE" in statuses, statuses  # the timer fired while they still continued
        for instance_id in hostile:
            harness.orchestrator.cancel_instance(instance_id, "enough")


class TestTimersInLoopsThroughActivities:
    """A duration computed at run time on a timer reached again in a loop waits at least
    `min_timer_cycle_seconds`, also when the loop passes through the sub-process or call activity that
    holds the timer (each pass is a new sub-workflow, so the timer's own ancestors never repeat)."""

    def sub_process_loop(self) -> bytes:
        inner = (
            '<subProcess id="sub"><startEvent id="ss"/>'
            '<intermediateCatchEvent id="wait"><timerEventDefinition>'
            "<timeDuration>delay</timeDuration></timerEventDefinition></intermediateCatchEvent>"
            '<endEvent id="se"/><sequenceFlow id="i1" sourceRef="ss" targetRef="wait"/>'
            '<sequenceFlow id="i2" sourceRef="wait" targetRef="se"/></subProcess>'
        )
        nodes = f'<startEvent id="s"/>{inner}<exclusiveGateway id="g"/><endEvent id="e"/>'
        return bpmn("loop", nodes, "s -> sub\nsub -> g\ng -> e: delay == ''\ng -> sub: default")

    def call_loop(self) -> dict[str, bytes]:
        waits = (
            '<startEvent id="ss"/><intermediateCatchEvent id="wait"><timerEventDefinition>'
            "<timeDuration>delay</timeDuration></timerEventDefinition></intermediateCatchEvent>"
            '<endEvent id="se"/>'
        )
        call = '<callActivity id="call" calledElement="waits"/>'
        nodes = f'<startEvent id="s"/>{call}<exclusiveGateway id="g"/><endEvent id="e"/>'
        return {
            "waits": bpmn("waits", waits, "ss -> wait\nwait -> se"),
            "loop": bpmn("loop", nodes, "s -> call\ncall -> g\ng -> e: delay == ''\ng -> call: default"),
        }

    @pytest.mark.parametrize("through", ["sub-process", "call-activity"])
    @pytest.mark.parametrize("delay", ["PT0S", "PT0.001S"])
    def test_a_tiny_computed_duration_waits_a_second_a_pass(
        self, make_harness: Callable[..., Harness], through: str, delay: str
    ) -> None:
        clock = ManualClock()
        harness = make_harness(clock, min_timer_cycle_seconds=1.0)
        resources = self.call_loop() if through == "call-activity" else {"loop": self.sub_process_loop()}
        harness.deploy(**resources)
        instance_id = harness.start("loop", delay=delay)

        passes = completions_in_ten_seconds(harness, clock, instance_id, "wait")
        assert 5 <= passes <= 11, passes  # once a second at most (not once a step)
        assert harness.status(instance_id) == "ACTIVE" and not open_incidents(harness, instance_id)


class TestEventSubProcessCycles:
    """A non-interrupting event sub-process started by a cycle computed at run time fires no more often
    than `min_timer_cycle_seconds`, like a boundary cycle (test_engine.py)."""

    @pytest.mark.parametrize("cycle", ["R/PT0.001S", "R/PT0S", "R999999999/PT0.0001S"])
    def test_a_tiny_computed_cycle_fires_at_most_once_a_second(
        self, make_harness: Callable[..., Harness], cycle: str
    ) -> None:
        clock = ManualClock()
        harness = make_harness(clock, min_timer_cycle_seconds=1.0)
        nodes = (
            '<startEvent id="s"/><userTask id="work"/><endEvent id="e"/>'
            '<subProcess id="every" triggeredByEvent="true"><startEvent id="tick" isInterrupting="false">'
            "<timerEventDefinition><timeCycle>cycle</timeCycle></timerEventDefinition></startEvent>"
            '<scriptTask id="note"><script>pings = 1</script></scriptTask><endEvent id="noted"/>'
            '<sequenceFlow id="p1" sourceRef="tick" targetRef="note"/>'
            '<sequenceFlow id="p2" sourceRef="note" targetRef="noted"/></subProcess>'
        )
        harness.deploy(evs=bpmn("evs", nodes, "s -> work\nwork -> e"))
        instance_id = harness.start("evs", cycle=cycle)

        fired = completions_in_ten_seconds(harness, clock, instance_id, "note")
        assert 5 <= fired <= 11, fired
        assert harness.status(instance_id) == "ACTIVE" and not open_incidents(harness, instance_id)
        harness.orchestrator.cancel_instance(instance_id, "enough")
        assert harness.status(instance_id) == "CANCELED"


class TestContinuationsAcrossCancelAndRestart:
    """Engine work left for a later transaction (a continuation row) ends with a cancel, and survives a
    restart: a new orchestrator on the same database runs the rest."""

    def test_cancelled_mid_continuation(self, make_harness: Callable[..., Harness]) -> None:
        harness = make_harness(max_tasks_per_step=50)
        harness.deploy(long=chain("long", 1200))
        instance_id = harness.start("long")
        harness.orchestrator.fire_due_timers()
        assert count(harness, Timer, Timer.instance_id == instance_id) == 1  # its continuation
        harness.orchestrator.cancel_instance(instance_id, "enough")
        assert harness.status(instance_id) == "CANCELED"
        assert count(harness, Timer, Timer.instance_id == instance_id) == 0
        assert harness.orchestrator.next_timer_due() is None

    def test_a_restarted_orchestrator_runs_the_rest(self, tmp_path: Path) -> None:
        limits = Limits(max_tasks_per_step=50)
        first = Harness.sqlite(tmp_path, limits=limits)
        first.deploy(long=chain("long", 1200))
        instance_id = first.start("long")
        first.close()  # the orchestrator stops with engine work pending
        restarted = Harness.sqlite(tmp_path, limits=limits)
        try:
            work = Background(lambda: drive(restarted, instance_id))
            answered_while(
                lambda: work.running, lambda: other_caller(restarted), what="deploy, start, cancel"
            )
            work.join()
            assert restarted.status(instance_id) == "COMPLETED"
            assert restarted.completed_elements(instance_id)[-2:] == ["t1199", "e"]
        finally:
            restarted.close()


class TestMessagesNobodyWaitsFor:
    """A storm of messages without a TTL, an id or a receiver leaves no rows behind (each was kept a day,
    only to remember an id it did not have); one with an id is still remembered to refuse a repeat."""

    def test_a_storm_without_ids_leaves_no_rows(self, make_harness: Callable[..., Harness]) -> None:
        harness = make_harness()
        outcomes: list[str] = []

        def storm() -> None:
            outcomes.extend(str(harness.publish("nobody", key="k")) for _ in range(50))

        while_probed(harness, storm)
        assert set(outcomes) == {"DROPPED"} and len(outcomes) >= 50
        assert count(harness, Message) == 0
        assert harness.publish("nobody", message_id="m-1") == "DROPPED"
        assert harness.publish("nobody", message_id="m-1") == "DUPLICATE"
        assert count(harness, Message) == 1
