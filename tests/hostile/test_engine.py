"""Hostile diagrams against the engine's bounds: long walks, fan-out, self-calling call activities, loops
that never wait or never exit, timers that would fire too often.

Each case asserts its outcome (runs to its end in bounded transactions, or an incident naming the limit)
and liveness: while the hostile instance is still being worked on, another caller's deploy, start and
cancel are answered (tests/support/liveness.py). A driver thread plays the scheduler's timer loop: it fires
due timers and continuation rows until the hostile instance ends or holds an incident.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from consultflow.orchestrator import deep_walks
from consultflow.orchestrator.orm import Incident
from consultflow.platform.clock import ManualClock
from consultflow.platform.limits import Limits
from tests.support.bpmn_builder import bpmn
from tests.support.liveness import HANG_SECONDS, Background, answered_during_rounds, answered_while
from tests.support.orchestrator_harness import Harness

_probes = itertools.count()


@pytest.fixture
def make_harness(tmp_path: Path) -> Iterator[Callable[..., Harness]]:
    made: list[Harness] = []

    def make(clock: ManualClock | None = None, **limits: Any) -> Harness:
        harness = Harness.sqlite(tmp_path, clock=clock, limits=Limits(**limits))
        made.append(harness)
        return harness

    yield make
    for harness in made:
        harness.close()


def chain(process_id: str, length: int) -> bytes:
    nodes = '<startEvent id="s"/>' + "".join(
        f'<scriptTask id="t{i}"><script>x = {i}</script></scriptTask>' for i in range(length)
    )
    flows = "s -> t0\n" + "".join(f"t{i} -> t{i + 1}\n" for i in range(length - 1))
    return bpmn(process_id, nodes + '<endEvent id="e"/>', flows + f"t{length - 1} -> e")


def open_incidents(harness: Harness, instance_id: str) -> list[Incident]:
    return harness.orchestrator.list_incidents(instance_id)


def drive(
    harness: Harness, instance_id: str, clock_step: timedelta | None = None, seconds: float = HANG_SECONDS
) -> None:
    """The scheduler's timer loop for one hostile instance: fire what is due until it ends or holds an
    incident (`clock_step`: a manual clock moved on by that much each round)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if harness.status(instance_id) != "ACTIVE" or open_incidents(harness, instance_id):
            return
        if clock_step is not None:
            assert isinstance(harness.clock, ManualClock)
            harness.clock.advance(clock_step)
        harness.orchestrator.fire_due_timers()
    raise AssertionError(f"{instance_id} neither ended nor raised an incident within {seconds} s")


def other_caller(harness: Harness) -> None:
    """What another caller does meanwhile: deploy a new version, start it, cancel it."""
    number = next(_probes)
    harness.deploy(probe=bpmn("probe", f'<startEvent id="s"/><userTask id="u{number}"/>', f"s -> u{number}"))
    instance_id = harness.start("probe")
    harness.orchestrator.cancel_instance(instance_id, "probe")


def while_probed(harness: Harness, hostile_round: Callable[[], object]) -> None:
    """Runs `hostile_round` again and again in the background until another caller's deploy, start and
    cancel were answered meanwhile (so the calls overlap the hostile work whatever the machine's speed)."""
    answered_during_rounds(hostile_round, lambda: other_caller(harness), what="deploy, start, cancel")


def completions_in_ten_seconds(harness: Harness, clock: ManualClock, instance_id: str, element: str) -> int:
    """Fires timers a tenth of a second at a time until another caller was answered meanwhile (see
    `while_probed`), then counts how often `element` completed in ten more seconds."""

    def tenth_of_a_second() -> None:
        clock.advance(timedelta(milliseconds=100))
        harness.orchestrator.fire_due_timers()

    while_probed(harness, tenth_of_a_second)
    before = harness.completed_elements(instance_id).count(element)
    for _ in range(100):
        tenth_of_a_second()
    return harness.completed_elements(instance_id).count(element) - before


def run_hostile(harness: Harness, begin: Callable[[], str], clock_step: timedelta | None = None) -> list[str]:
    """Starts hostile instances (`begin`) and drives each to its end or incident, again and again until
    another caller's calls were answered, in the background: the calls overlap hostile work whatever the
    speed of the machine. Returns the hostile instances."""
    started: list[str] = []
    probed = threading.Event()

    def hostile() -> None:
        while not started or not probed.is_set():
            if started:
                # A client's next start, not a tight loop of writers: SQLite's lock is not fair between
                # two writers that never pause (that is overload, answered UNAVAILABLE elsewhere).
                time.sleep(0.2)
            started.append(begin())
            drive(harness, started[-1], clock_step)

    work = Background(hostile)
    try:
        answered_while(lambda: work.running, lambda: other_caller(harness), what="deploy, start, cancel")
    finally:
        probed.set()
    work.join()
    return started


def the_incident(harness: Harness, instance_id: str) -> Incident:
    incidents = open_incidents(harness, instance_id)
    assert len(incidents) >= 1, f"no incident on {instance_id}"
    assert harness.status(instance_id) == "ACTIVE"
    return incidents[0]


class TestLongWalks:
    """Longer than SpiffWorkflow's walks used to go (depth 1000): they run to their end event."""

    def test_a_chain_of_600_tasks_reaches_its_end_event(self, make_harness: Callable[..., Harness]) -> None:
        harness = make_harness(max_tasks_per_step=50)
        harness.deploy(long=chain("long", 600))
        instance_id = run_hostile(harness, lambda: harness.start("long"))[0]
        assert harness.status(instance_id) == "COMPLETED"
        assert harness.completed_elements(instance_id)[-2:] == ["t599", "e"]
        assert len(harness.history(instance_id, "engine.yielded")) >= 600 // 50 - 1  # bounded transactions

    def test_a_loop_run_600_times_deepens_the_tree_past_1000_and_exits(
        self, make_harness: Callable[..., Harness]
    ) -> None:
        harness = make_harness(max_tasks_per_step=100)
        nodes = (
            '<startEvent id="s"/><scriptTask id="count"><script>n = n + 1</script></scriptTask>'
            '<exclusiveGateway id="g"/><endEvent id="e"/>'
        )
        harness.deploy(
            loop=bpmn("loop", nodes, "s -> count\ncount -> g\ng -> e: n >= 600\ng -> count: default")
        )
        instance_id = run_hostile(harness, lambda: harness.start("loop", n=0))[0]
        assert harness.status(instance_id) == "COMPLETED"
        assert harness.variables(instance_id)["n"] == 600

    def test_a_walk_cut_short_never_reports_completed(self, make_harness: Callable[..., Harness]) -> None:
        harness = make_harness()
        harness.deploy(cut=chain("cut", 60))
        previous = deep_walks.set_walk_depth(30)  # as Spiff's default of 1000 did to longer diagrams
        try:
            instance_id = harness.start("cut")
        finally:
            deep_walks.set_walk_depth(previous)
        incident = the_incident(harness, instance_id)
        assert incident.kind == "ENGINE_ERROR"
        assert "reported complete" in incident.message
        assert "instance.completed" not in harness.history(instance_id)


class TestFanOut:
    """Multi-instance activities whose size is computed at run time are held to `max_fan_out`."""

    def many(self, process_id: str, loop: str) -> bytes:
        nodes = (
            f'<startEvent id="s"/><scriptTask id="each"><multiInstanceLoopCharacteristics>{loop}'
            '</multiInstanceLoopCharacteristics><script>y = 1</script></scriptTask><endEvent id="e"/>'
        )
        return bpmn(process_id, nodes, "s -> each\neach -> e")

    def test_a_cardinality_above_the_limit_is_an_incident(self, make_harness: Callable[..., Harness]) -> None:
        harness = make_harness(max_fan_out=1000)
        harness.deploy(fan=self.many("fan", "<loopCardinality>n</loopCardinality>"))
        instance_id = run_hostile(harness, lambda: harness.start("fan", n=5000))[0]
        incident = the_incident(harness, instance_id)
        assert (incident.kind, incident.element_id) == ("LIMIT_EXCEEDED", "each")
        assert "max_fan_out (1000)" in incident.message and "5000" in incident.message

    def test_a_collection_above_the_limit_is_an_incident_again_when_resolved(
        self, make_harness: Callable[..., Harness]
    ) -> None:
        harness = make_harness(max_fan_out=100)
        loop = '<loopDataInputRef>items</loopDataInputRef><inputDataItem id="item"/>'
        harness.deploy(coll=self.many("coll", loop))
        instance_id = run_hostile(harness, lambda: harness.start("coll", items=list(range(500))))[0]
        incident = the_incident(harness, instance_id)
        assert "max_fan_out (100)" in incident.message
        harness.orchestrator.resolve_incident(incident.incident_id)
        again = the_incident(harness, instance_id)
        assert again.incident_id != incident.incident_id and "max_fan_out" in again.message

    def test_as_many_branches_as_the_limit_allows_proceed_in_bounded_transactions(
        self, make_harness: Callable[..., Harness]
    ) -> None:
        harness = make_harness(max_fan_out=1000)
        harness.deploy(wide=self.many("wide", "<loopCardinality>n</loopCardinality>"))
        instance_id = run_hostile(harness, lambda: harness.start("wide", n=1000))[0]
        assert harness.status(instance_id) == "COMPLETED"
        assert len(harness.history(instance_id, "engine.yielded")) >= 1000 // 200


class TestCallDepth:
    """Call activities nested deeper than `max_call_depth` stop with an incident on the call activity.

    A process calling itself, directly or through others, is refused at deploy (structure.py); what is
    left for run time is a chain of distinct processes deeper than the limit (or a version stored before
    the check), which the engine would otherwise instantiate level after level."""

    def call_chain(self, depth: int, work: int = 0) -> dict[str, bytes]:
        """Processes c0 … c{depth}: each runs `work` script tasks, then calls the next; the last ends."""
        resources = {}
        for level in range(depth + 1):
            scripts = "".join(
                f'<scriptTask id="w{i}"><script>x = {i}</script></scriptTask>' for i in range(work)
            )
            steps = [f"w{i}" for i in range(work)]
            if level < depth:
                scripts += f'<callActivity id="call{level + 1}" calledElement="c{level + 1}"/>'
                steps.append(f"call{level + 1}")
            path = ["s", *steps, "e"]
            flows = "\n".join(f"{a} -> {b}" for a, b in itertools.pairwise(path))
            nodes = f'<startEvent id="s"/>{scripts}<endEvent id="e"/>'
            resources[f"c{level}"] = bpmn(f"c{level}", nodes, flows)
        return resources

    def test_a_chain_of_calls_deeper_than_the_limit(self, make_harness: Callable[..., Harness]) -> None:
        harness = make_harness(max_call_depth=6)
        harness.deploy(**self.call_chain(10, work=20))
        instance_id = run_hostile(harness, lambda: harness.start("c0"))[0]
        incident = the_incident(harness, instance_id)
        assert (incident.kind, incident.element_id) == ("LIMIT_EXCEEDED", "call7")
        assert "max_call_depth (6)" in incident.message

    def test_the_default_depth_stops_a_chain_of_twenty(self, make_harness: Callable[..., Harness]) -> None:
        harness = make_harness()
        harness.deploy(**self.call_chain(20))
        instance_id = run_hostile(harness, lambda: harness.start("c0"))[0]
        incident = the_incident(harness, instance_id)
        assert incident.kind == "LIMIT_EXCEEDED" and "max_call_depth (16)" in incident.message
        assert incident.element_id == "call17"

    def test_a_chain_within_the_limit_runs_to_its_end(self, make_harness: Callable[..., Harness]) -> None:
        harness = make_harness(max_call_depth=6)
        harness.deploy(**self.call_chain(6, work=20))
        instance_id = run_hostile(harness, lambda: harness.start("c0"))[0]
        assert harness.status(instance_id) == "COMPLETED"


class TestLoopsThatNeverWaitOrExit:
    """A loop whose exit is never taken grows the instance until `max_instance_tasks`: an incident."""

    def test_a_script_loop_whose_exit_is_unreachable(self, make_harness: Callable[..., Harness]) -> None:
        harness = make_harness(max_instance_tasks=600)
        nodes = (
            '<startEvent id="s"/><scriptTask id="count"><script>n = n + 1</script></scriptTask>'
            '<exclusiveGateway id="g"/><endEvent id="e"/>'
        )
        harness.deploy(spin=bpmn("spin", nodes, "s -> count\ncount -> g\ng -> e: n < 0\ng -> count: default"))
        instance_id = run_hostile(harness, lambda: harness.start("spin", n=0))[0]
        incident = the_incident(harness, instance_id)
        assert incident.kind == "LIMIT_EXCEEDED" and "max_instance_tasks (600)" in incident.message

    def test_a_gateway_loop_through_a_parallel_split(self, make_harness: Callable[..., Harness]) -> None:
        harness = make_harness(max_instance_tasks=250)  # Spiff's joins in a loop cost: ~10 tasks a step
        nodes = (
            '<startEvent id="s"/><parallelGateway id="split"/><task id="a"/><task id="b"/>'
            '<parallelGateway id="join"/><exclusiveGateway id="g"/><endEvent id="e"/>'
        )
        flows = (
            "s -> split\nsplit -> a\nsplit -> b\na -> join\nb -> join\njoin -> g\n"
            "g -> e: stop\ng -> split: default"
        )
        harness.deploy(fork=bpmn("fork", nodes, flows))
        instance_id = run_hostile(harness, lambda: harness.start("fork", stop=False))[0]
        incident = the_incident(harness, instance_id)
        assert "max_instance_tasks" in incident.message


class TestTimersThatWouldFireTooOften:
    """Timer loops with tiny durations end in the size limit; cycles computed at run time are held to
    `min_timer_cycle_seconds`."""

    def timer_loop(self, process_id: str) -> bytes:
        nodes = (
            '<startEvent id="s"/><intermediateCatchEvent id="wait"><timerEventDefinition>'
            "<timeDuration>delay</timeDuration></timerEventDefinition></intermediateCatchEvent>"
            '<exclusiveGateway id="g"/><endEvent id="e"/>'
        )
        return bpmn(process_id, nodes, "s -> wait\nwait -> g\ng -> e: delay == ''\ng -> wait: default")

    @pytest.mark.parametrize("delay", ["PT0.001S", "PT0S"])
    def test_a_timer_loop_with_a_tiny_computed_duration_waits_a_second_a_pass(
        self, tmp_path: Path, delay: str
    ) -> None:
        # A literal duration like this in a loop is refused at deploy; a computed one is held at run time.
        clock = ManualClock()
        harness = Harness.sqlite(tmp_path, clock=clock, limits=Limits(min_timer_cycle_seconds=1.0))
        try:
            harness.deploy(tick=self.timer_loop("tick"))
            instance_id = harness.start("tick", delay=delay)

            passes = completions_in_ten_seconds(harness, clock, instance_id, "wait")
            assert 5 <= passes <= 11, passes  # once a second at most (not 10,000 times)
            assert harness.status(instance_id) == "ACTIVE" and not open_incidents(harness, instance_id)
        finally:
            harness.close()

    def test_a_timer_loop_on_the_wall_clock_ends_in_the_size_limit(
        self, make_harness: Callable[..., Harness]
    ) -> None:
        # Held to a second a pass, a loop that never exits still grows the instance: the size limit ends
        # it. (A timer that comes due during the engine's own closing refresh must still run, too.)
        harness = make_harness(max_instance_tasks=40, min_timer_cycle_seconds=0.01)
        harness.deploy(tick=self.timer_loop("tick"))
        instance_id = run_hostile(harness, lambda: harness.start("tick", delay="PT0.001S"))[0]
        incident = the_incident(harness, instance_id)
        assert incident.kind == "LIMIT_EXCEEDED" and "max_instance_tasks (40)" in incident.message

    def cycling(self, process_id: str) -> bytes:
        nodes = (
            '<startEvent id="s"/><userTask id="work"/><boundaryEvent id="tick" attachedToRef="work" '
            'cancelActivity="false"><timerEventDefinition><timeCycle>cycle</timeCycle></timerEventDefinition>'
            '</boundaryEvent><scriptTask id="note"><script>pings = 1</script></scriptTask>'
            '<endEvent id="e"/><endEvent id="noted"/>'
        )
        return bpmn(process_id, nodes, "s -> work\nwork -> e\ntick -> note\nnote -> noted")

    @pytest.mark.parametrize(
        ("cycle", "options"),
        [("R/PT0.001S", {}), ("R/P1D", {"timer_overrides": {"tick": "R/PT0.01S"}})],
        ids=["expression", "override"],
    )
    def test_a_millisecond_cycle_computed_at_run_time_fires_at_most_once_a_second(
        self, tmp_path: Path, cycle: str, options: dict[str, Any]
    ) -> None:
        clock = ManualClock()
        harness = Harness.sqlite(tmp_path, clock=clock, limits=Limits(min_timer_cycle_seconds=1.0), **options)
        try:
            harness.deploy(cyc=self.cycling("cyc"))
            instance_id = harness.start("cyc", cycle=cycle)

            fired = completions_in_ten_seconds(harness, clock, instance_id, "note")
            assert 5 <= fired <= 11, fired  # once a second at most (not 1,000 times)
            assert harness.status(instance_id) == "ACTIVE" and not open_incidents(harness, instance_id)
        finally:
            harness.close()


class TestEngineErrorsWhilePreparingATask:
    """Errors SpiffWorkflow raises while it prepares a task (not while running one) are incidents on that
    task, not an instance left ACTIVE with nothing to show (the gap docs/architecture.md recorded)."""

    def multi_instance(self, process_id: str, prepare: str, loop: str) -> bytes:
        nodes = (
            f'<startEvent id="s"/><scriptTask id="prep"><script>{prepare}</script></scriptTask>'
            f'<scriptTask id="each"><multiInstanceLoopCharacteristics isSequential="false">{loop}'
            '</multiInstanceLoopCharacteristics><script>y = 1</script></scriptTask><endEvent id="e"/>'
        )
        return bpmn(process_id, nodes, "s -> prep\nprep -> each\neach -> e")

    @pytest.mark.parametrize(
        ("prepare", "loop", "says"),
        [
            (
                "item = 5\nitems = [1, 2]",
                '<loopDataInputRef>items</loopDataInputRef><inputDataItem id="item"/>',
                "already exists",
            ),
            ("n = 2", "<loopCardinality>n + missing</loopCardinality>", "missing"),
        ],
        ids=["input-item-named-like-a-variable", "failing-cardinality"],
    )
    def test_an_engine_error_is_an_incident_on_its_task(
        self, make_harness: Callable[..., Harness], prepare: str, loop: str, says: str
    ) -> None:
        harness = make_harness()
        harness.deploy(mi=self.multi_instance("mi", prepare, loop))
        instance_id = run_hostile(harness, lambda: harness.start("mi"))[0]
        incident = the_incident(harness, instance_id)
        assert incident.element_id == "each" and says in incident.message
