"""Hostile diagrams a deploy must refuse, naming the element, while other callers are still answered.

Each case deploys its diagram again and again in a background thread (each attempt refused) while another
caller starts and reads an instance: a refusal must be cheap enough never to stop the engine for others.
The shapes are members of the classes issue 14 names (orchestrator/structure.py); none reaches
SpiffWorkflow's recursive parser.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from consultflow.orchestrator.engine import MAX_RESOURCE_BYTES, DeploymentError
from consultflow.orchestrator.usecases.deployments import MAX_PROBLEMS
from consultflow.platform.errors import InvalidArgument
from tests.support.bpmn_builder import bpmn, definitions, process_xml
from tests.support.liveness import Background, answered_while
from tests.support.orchestrator_harness import Harness
from tests.support.polling import eventually

NORMAL = bpmn(
    "normal", '<startEvent id="s"/><userTask id="review"/><endEvent id="e"/>', "s -> review\nreview -> e"
)


@pytest.fixture
def harness(tmp_path: Path) -> Iterator[Harness]:
    harness = Harness.sqlite(tmp_path)
    harness.deploy(normal=NORMAL)
    yield harness
    harness.close()


def refused_while_others_are_answered(harness: Harness, resources: dict[str, bytes]) -> DeploymentError:
    """Deploys `resources` over and over in the background (each attempt must be refused), asserts an
    instance is started and read meanwhile, and returns the refusal (every attempt gave the same one)."""
    stop = threading.Event()
    refusals: list[DeploymentError] = []

    def hostile() -> None:
        deadline = time.monotonic() + 60
        while not stop.is_set() and time.monotonic() < deadline:
            try:
                harness.orchestrator.deploy(resources)
            except DeploymentError as refusal:
                refusals.append(refusal)
            else:
                raise AssertionError("the hostile diagram was deployed")

    work = Background(hostile)
    try:
        eventually(lambda: refusals or work.error, "the first refusal", timeout=30)

        def probe() -> str:
            instance_id = harness.start("normal")
            return harness.status(instance_id)

        assert answered_while(lambda: work.running, probe, what="start and read an instance") == "ACTIVE"
    finally:
        stop.set()
        work.join()
    assert len({str(r) for r in refusals}) == 1, "every attempt is refused the same way"
    assert not [d for d in harness.orchestrator.list_definitions() if d.process_id != "normal"]
    return refusals[0]


def chain(process_id: str, length: int, kind: str = "scriptTask") -> tuple[str, str]:
    body = "<script>x = 1</script>" if kind == "scriptTask" else ""
    nodes = '<startEvent id="s"/>' + "".join(f'<{kind} id="t{i}">{body}</{kind}>' for i in range(length))
    flows = ["s -> t0", *(f"t{i} -> t{i + 1}" for i in range(length - 1)), f"t{length - 1} -> e"]
    return nodes + '<endEvent id="e"/>', "\n".join(flows)


# ---------------------------------------------------------------------------------------- path length


def test_a_chain_longer_than_max_path_length_is_refused_where_the_limit_is_passed(harness: Harness) -> None:
    error = refused_while_others_are_answered(harness, {"long.bpmn": bpmn("long", *chain("long", 2500))})
    assert error.element == "t1999"  # the start event and t0 … t1998 are the first 2,000 elements
    assert "max_path_length (2000)" in str(error) and "call activities" in str(error)


def test_a_long_chain_of_user_tasks_inside_a_sub_process_is_refused(harness: Harness) -> None:
    nodes, flows = chain("inner", 2100, "userTask")
    inner = nodes + "".join(
        f'<sequenceFlow id="sf{i}" sourceRef="{a.strip()}" targetRef="{b.strip()}"/>'
        for i, (a, b) in enumerate(line.split("->") for line in flows.splitlines())
    )
    outer = f'<startEvent id="start"/><subProcess id="chapter">{inner}</subProcess><endEvent id="end"/>'
    resources = {"deep.bpmn": bpmn("deep", outer, "start -> chapter\nchapter -> end")}
    assert refused_while_others_are_answered(harness, resources).element == "t1999"


# ---------------------------------------------------------------------------- loops that never wait


def test_an_exclusive_gateway_whose_only_flow_leads_back_to_itself_is_refused(harness: Harness) -> None:
    xml = bpmn("spin", '<startEvent id="s"/><exclusiveGateway id="again"/>', "s -> again\nagain -> again")
    error = refused_while_others_are_answered(harness, {"spin.bpmn": xml})
    assert error.element == "again" and "no way out and no wait state" in str(error)


def test_a_script_loop_through_a_parallel_split_is_refused_naming_its_elements(harness: Harness) -> None:
    nodes = (
        '<startEvent id="s"/><scriptTask id="count"><script>n = 1</script></scriptTask>'
        '<parallelGateway id="split"/><scriptTask id="tick"><script>m = 2</script></scriptTask>'
        '<userTask id="never_reached"/>'
    )
    flows = "s -> count\ncount -> split\nsplit -> tick\nsplit -> count\ntick -> count"
    error = refused_while_others_are_answered(harness, {"spin.bpmn": bpmn("spin", nodes, flows)})
    assert "'count', 'split', 'tick'" in str(error)


def test_a_busy_loop_in_a_sub_process_with_a_boundary_timer_is_refused(harness: Harness) -> None:
    """The timer could only fire if the loop ever waited."""
    inner = (
        '<startEvent id="ss"/><scriptTask id="poll"><script>x = 1</script></scriptTask>'
        '<exclusiveGateway id="ready"/><endEvent id="se"/>'
        '<sequenceFlow id="a" sourceRef="ss" targetRef="poll"/>'
        '<sequenceFlow id="b" sourceRef="poll" targetRef="ready"/>'
        '<sequenceFlow id="c" sourceRef="ready" targetRef="poll"/>'
    )
    nodes = (
        f'<startEvent id="s"/><subProcess id="wait_for_it">{inner}</subProcess><endEvent id="e"/>'
        '<boundaryEvent id="give_up" attachedToRef="wait_for_it"><timerEventDefinition>'
        '<timeDuration>"PT1H"</timeDuration></timerEventDefinition></boundaryEvent><endEvent id="gave_up"/>'
    )
    xml = bpmn("poller", nodes, "s -> wait_for_it\nwait_for_it -> e\ngive_up -> gave_up")
    assert refused_while_others_are_answered(harness, {"poller.bpmn": xml}).element == "poll"


# ---------------------------------------------------------------------------------------------- timers


def test_a_non_interrupting_boundary_cycle_of_a_millisecond_is_refused(harness: Harness) -> None:
    nodes = (
        '<startEvent id="s"/><userTask id="work"/><endEvent id="e"/>'
        '<boundaryEvent id="nag" attachedToRef="work" cancelActivity="false"><timerEventDefinition>'
        '<timeCycle>"R/PT0.001S"</timeCycle></timerEventDefinition></boundaryEvent>'
        '<scriptTask id="note"><script>x = 1</script></scriptTask><endEvent id="noted"/>'
    )
    xml = bpmn("nagging", nodes, "s -> work\nwork -> e\nnag -> note\nnote -> noted")
    error = refused_while_others_are_answered(harness, {"nagging.bpmn": xml})
    assert error.element == "nag" and "min_timer_cycle_seconds" in str(error)


def test_a_fast_cycle_on_a_timer_start_event_is_refused(harness: Harness) -> None:
    cycle = '<timerEventDefinition><timeCycle>"R5/PT0.5S"</timeCycle></timerEventDefinition>'
    start = f'<startEvent id="often">{cycle}</startEvent>'
    xml = bpmn("often", start + '<endEvent id="e"/>', "often -> e")
    assert refused_while_others_are_answered(harness, {"often.bpmn": xml}).element == "often"


def test_a_literal_duration_that_does_not_parse_is_refused(harness: Harness) -> None:
    nodes = (
        '<startEvent id="s"/><intermediateCatchEvent id="pause"><timerEventDefinition>'
        '<timeDuration>"PT-1S"</timeDuration></timerEventDefinition></intermediateCatchEvent>'
        '<endEvent id="e"/>'
    )
    error = refused_while_others_are_answered(
        harness, {"pause.bpmn": bpmn("pause", nodes, "s -> pause\npause -> e")}
    )
    assert error.element == "pause" and "does not parse" in str(error)


def test_a_timer_loop_with_a_tiny_duration_is_refused(harness: Harness) -> None:
    """It waits, but a millisecond at a time: a cycle in all but name."""
    timer = '<timerEventDefinition><timeDuration>"PT0.001S"</timeDuration></timerEventDefinition>'
    nodes = (
        f'<startEvent id="s"/><intermediateCatchEvent id="tick">{timer}</intermediateCatchEvent>'
        '<scriptTask id="count"><script>n = 1</script></scriptTask>'
        '<exclusiveGateway id="more"/><endEvent id="e"/>'
    )
    flows = "s -> tick\ntick -> count\ncount -> more\nmore -> tick: n < 10**9\nmore -> e: default"
    error = refused_while_others_are_answered(harness, {"ticker.bpmn": bpmn("ticker", nodes, flows)})
    assert error.element == "tick" and "min_timer_cycle_seconds" in str(error)


# --------------------------------------------------------------------------------------------- fan-out


def fan(process_id: str, gateway: str, branches: int) -> bytes:
    ends = "".join(f'<endEvent id="e{i}"/>' for i in range(branches))
    flows = "s -> split\n" + "\n".join(f"split -> e{i}" for i in range(branches))
    return bpmn(process_id, f'<startEvent id="s"/><{gateway} id="split"/>{ends}', flows)


def test_a_parallel_split_into_5000_branches_is_refused(harness: Harness) -> None:
    error = refused_while_others_are_answered(harness, {"wide.bpmn": fan("wide", "parallelGateway", 5000)})
    assert error.element == "split" and "max_fan_out (1000)" in str(error)


def test_an_inclusive_split_one_past_the_limit_is_refused(harness: Harness) -> None:
    error = refused_while_others_are_answered(harness, {"wide.bpmn": fan("wide", "inclusiveGateway", 1001)})
    assert error.element == "split"


def test_a_multi_instance_cardinality_past_the_limit_is_refused(harness: Harness) -> None:
    marker = (
        "<multiInstanceLoopCharacteristics><loopCardinality>100000</loopCardinality>"
        "</multiInstanceLoopCharacteristics>"
    )
    nodes = f'<startEvent id="s"/><userTask id="ask_everyone">{marker}</userTask><endEvent id="e"/>'
    xml = bpmn("many", nodes, "s -> ask_everyone\nask_everyone -> e")
    assert refused_while_others_are_answered(harness, {"many.bpmn": xml}).element == "ask_everyone"


def test_nested_multi_instances_whose_product_passes_the_limit_are_refused(harness: Harness) -> None:
    """100 parallel copies of a sub-process, each asking 100 people: 10,000 tasks at once."""

    def multi(n: int) -> str:
        cardinality = f"<loopCardinality>{n}</loopCardinality>"
        return f"<multiInstanceLoopCharacteristics>{cardinality}</multiInstanceLoopCharacteristics>"

    inner = (
        f'<startEvent id="is"/><userTask id="ask">{multi(100)}</userTask>'
        '<sequenceFlow id="i" sourceRef="is" targetRef="ask"/>'
    )
    nodes = (
        f'<startEvent id="s"/><subProcess id="each_office">{multi(100)}{inner}</subProcess><endEvent id="e"/>'
    )
    xml = bpmn("offices", nodes, "s -> each_office\neach_office -> e")
    error = refused_while_others_are_answered(harness, {"offices.bpmn": xml})
    assert error.element == "ask" and "× 100 parallel copies" in str(error)


# ------------------------------------------------------------------------------------- call activities


def caller(process_id: str, called: str) -> str:
    nodes = (
        f'<startEvent id="{process_id}_s"/><callActivity id="{process_id}_call" calledElement="{called}"/>'
        f'<endEvent id="{process_id}_e"/>'
    )
    return process_xml(
        process_id, nodes, f"{process_id}_s -> {process_id}_call\n{process_id}_call -> {process_id}_e"
    )


def test_a_process_that_calls_itself_is_refused(harness: Harness) -> None:
    error = refused_while_others_are_answered(harness, {"again.bpmn": definitions(caller("again", "again"))})
    assert error.element == "again_call" and "again → again" in str(error)


def test_processes_that_call_each_other_across_files_are_refused(harness: Harness) -> None:
    resources = {
        "ping.bpmn": definitions(caller("ping", "pong")),
        "pong.bpmn": definitions(caller("pong", "ping")),
    }
    error = refused_while_others_are_answered(harness, resources)
    assert error.element == "ping_call" and "ping → pong → ping" in str(error)


# ----------------------------------------------------------------------------------------------- names


def test_a_terminal_escape_in_a_task_name_is_refused(harness: Harness) -> None:
    nodes = '<startEvent id="s"/><userTask id="review" name="Review\u009b2J"/><endEvent id="e"/>'
    error = refused_while_others_are_answered(
        harness, {"named.bpmn": bpmn("named", nodes, "s -> review\nreview -> e")}
    )
    assert error.element == "review" and "U+009B" in str(error)


def test_a_tab_in_a_message_name_is_refused(harness: Harness) -> None:
    extra = '<message id="m" name="order&#9;placed"/>'
    nodes = '<startEvent id="s"><messageEventDefinition messageRef="m"/></startEvent><endEvent id="e"/>'
    error = refused_while_others_are_answered(harness, {"named.bpmn": bpmn("named", nodes, "s -> e", extra)})
    assert error.element == "m" and "U+0009" in str(error)


def test_a_control_character_in_a_resource_name_is_refused(harness: Harness) -> None:
    with pytest.raises(InvalidArgument, match="plain file name"):
        harness.orchestrator.deploy({"p\x1b[2J.bpmn": NORMAL})


# ------------------------------------------------------------------------------------ a huge diagram


def test_a_diagram_near_the_size_limit_is_refused_while_others_are_answered(harness: Harness) -> None:
    """About 2 MiB: a loop of thousands of plain tasks that never waits, with a path far past the limit."""
    count = 17_000
    nodes = '<startEvent id="s"/>' + "".join(f'<task id="t{i}"/>' for i in range(count))
    flows = "\n".join(["s -> t0", *(f"t{i} -> t{i + 1}" for i in range(count - 1)), f"t{count - 1} -> t0"])
    xml = bpmn("huge", nodes, flows)
    assert MAX_RESOURCE_BYTES * 0.75 < len(xml) <= MAX_RESOURCE_BYTES
    started = time.perf_counter()
    error = refused_while_others_are_answered(harness, {"huge.bpmn": xml})
    print(
        f"huge diagram: {len(xml)} bytes, {count} tasks, refused again and again while others were "
        f"answered, {time.perf_counter() - started:.2f} s in all"
    )
    assert "max_path_length" in str(error)


def test_validating_a_diagram_with_thousands_of_problems_answers_a_bounded_list(harness: Harness) -> None:
    """Every sub-process a busy loop: validation goes on past each problem, but answers at most
    MAX_PROBLEMS of them, each naming its element, and stores nothing."""
    count = 2000
    loops = "".join(
        f'<subProcess id="sub{i}"><startEvent id="s{i}"/><task id="a{i}"/><task id="b{i}"/>'
        f'<sequenceFlow id="f{i}a" sourceRef="s{i}" targetRef="a{i}"/>'
        f'<sequenceFlow id="f{i}b" sourceRef="a{i}" targetRef="b{i}"/>'
        f'<sequenceFlow id="f{i}c" sourceRef="b{i}" targetRef="a{i}"/></subProcess>'
        for i in range(count)
    )
    xml = bpmn("many", '<startEvent id="s"/>' + loops, "s -> sub0")
    started = time.perf_counter()
    found = harness.orchestrator.validate({"many.bpmn": xml})
    print(f"{count} looping sub-processes validated in {time.perf_counter() - started:.2f} s")
    assert len(found.problems) == MAX_PROBLEMS
    assert all(p.rule == "loop.no_wait_state" and p.element.startswith("a") for p in found.problems)
    assert not [d for d in harness.orchestrator.list_definitions() if d.process_id != "normal"]
