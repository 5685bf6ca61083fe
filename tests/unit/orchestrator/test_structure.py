"""The shape checks of a deploy (orchestrator/structure.py): the graph algorithms and each refusal."""

from __future__ import annotations

from pathlib import Path

import pytest

from consultflow.orchestrator import engine, structure
from consultflow.platform.limits import Limits
from consultflow.platform.settings import repository_root
from tests.support.bpmn_builder import bpmn, definitions, process_xml

LIMITS = Limits()


def problem(resources: dict[str, bytes], limits: Limits = LIMITS) -> structure.Problem | None:
    return structure.first_problem({n: engine.parse_xml(n, c) for n, c in resources.items()}, limits)


def check(resources: dict[str, bytes], limits: Limits = LIMITS) -> None:
    found = problem(resources, limits)
    assert found is None, found


def refused(xml: bytes, limits: Limits = LIMITS, name: str = "p.bpmn") -> structure.Problem:
    found = problem({name: xml}, limits)
    assert found is not None, "accepted"
    assert found.resource == name
    return found


def chain(length: int, kind: str = "scriptTask") -> bytes:
    """start → `length` tasks → end: `length + 2` elements."""
    body = "<script>x = 1</script>" if kind == "scriptTask" else ""
    nodes = '<startEvent id="s"/>' + "".join(f'<{kind} id="t{i}">{body}</{kind}>' for i in range(length))
    flows = ["s -> t0", *(f"t{i} -> t{i + 1}" for i in range(length - 1)), f"t{length - 1} -> e"]
    return bpmn("p", nodes + '<endEvent id="e"/>', "\n".join(flows))


# ------------------------------------------------------------------------------------------ graphs


def test_components_come_after_the_components_they_reach() -> None:
    successors = {"a": ["b"], "b": ["c", "a"], "c": ["d"], "d": []}
    components = structure.strongly_connected(["a", "b", "c", "d"], successors)
    assert [sorted(c) for c in components] == [["d"], ["c"], ["a", "b"]]


def test_components_of_a_long_chain_need_no_recursion() -> None:
    n = 50_000
    successors = {str(i): [str(i + 1)] for i in range(n - 1)} | {str(n - 1): ["0"]}
    components = structure.strongly_connected([str(i) for i in range(n)], successors)
    assert len(components) == 1 and len(components[0]) == n


def test_a_single_node_loops_only_with_a_flow_to_itself() -> None:
    assert structure.is_cycle(["g"], {"g": ["g"]})
    assert not structure.is_cycle(["g"], {"g": ["h"]})


def test_longest_path_counts_each_loop_member_once_and_names_where_the_limit_is_passed() -> None:
    successors = {"s": ["a"], "a": ["b"], "b": ["a", "c"], "c": ["e"], "e": [], "x": ["e"]}
    components = structure.strongly_connected(list(successors), successors)
    path = structure.longest_path(components, successors, limit=3)
    assert (path.length, path.first) == (5, "s")
    assert path.passes_limit == "c"  # s, a+b (a loop: two elements) reach 3; c is the fourth
    assert structure.longest_path(components, successors, limit=5).passes_limit == ""


# ------------------------------------------------------------------------------------- path length


def test_a_path_of_exactly_the_limit_is_accepted_and_one_more_is_refused() -> None:
    limits = Limits(max_path_length=50)
    check({"p.bpmn": chain(48)}, limits)  # 50 elements
    error = refused(chain(49), limits)
    assert error.element == "e"  # s, t0 … t48 are 50 elements: the end event is the 51st
    assert "max_path_length (50)" in error.text and "call activities" in error.text


def test_a_path_inside_a_sub_process_is_measured_on_its_own() -> None:
    inner = "".join(f'<task id="i{i}"/>' for i in range(30))
    inner_flows = "".join(
        f'<sequenceFlow id="if{i}" sourceRef="i{i}" targetRef="i{i + 1}"/>' for i in range(29)
    )
    nodes = f'<startEvent id="s"/><subProcess id="sub">{inner}{inner_flows}</subProcess><endEvent id="e"/>'
    xml = bpmn("p", nodes, "s -> sub\nsub -> e")
    check({"p.bpmn": xml}, Limits(max_path_length=30))
    assert refused(xml, Limits(max_path_length=29)).element == "i29"


# ------------------------------------------------------------------------------------------- loops


def test_an_exclusive_gateway_whose_only_flow_leads_back_to_itself_is_refused() -> None:
    xml = bpmn("p", '<startEvent id="s"/><exclusiveGateway id="g"/>', "s -> g\ng -> g")
    error = refused(xml)
    assert error.element == "g" and "no way out and no wait state" in error.text


@pytest.mark.parametrize("passing", ["scriptTask", "task", "manualTask", "businessRuleTask", "sendTask"])
def test_a_loop_of_elements_that_pass_through_is_refused(passing: str) -> None:
    nodes = f'<startEvent id="s"/><{passing} id="a"/><parallelGateway id="g"/><endEvent id="e"/>'
    error = refused(bpmn("p", nodes, "s -> a\na -> g\ng -> a"))
    assert error.element == "a" and "'a', 'g'" in error.text


@pytest.mark.parametrize(
    "waiting",
    [
        '<userTask id="w"/>',
        '<serviceTask id="w"/>',
        '<receiveTask id="w"/>',
        '<callActivity id="w" calledElement="other"/>',
        '<eventBasedGateway id="w"/>',
        '<intermediateCatchEvent id="w"><timerEventDefinition><timeDuration>"PT1H"</timeDuration>'
        "</timerEventDefinition></intermediateCatchEvent>",
        '<subProcess id="w"><startEvent id="ss"/><userTask id="u"/>'
        '<sequenceFlow id="sf" sourceRef="ss" targetRef="u"/></subProcess>',
    ],
)
def test_a_loop_with_a_wait_state_is_legal(waiting: str) -> None:
    nodes = f'<startEvent id="s"/>{waiting}<exclusiveGateway id="g"/>'
    check({"p.bpmn": bpmn("p", nodes, "s -> w\nw -> g\ng -> w")})


@pytest.mark.parametrize(
    ("nodes", "flows"),
    [
        ('<exclusiveGateway id="g"/><scriptTask id="a"/><endEvent id="e"/>', "a -> g\ng -> a\ng -> e"),
        (
            '<scriptTask id="a"/><boundaryEvent id="b" attachedToRef="a"><timerEventDefinition>'
            '<timeDuration>"PT1H"</timeDuration></timerEventDefinition></boundaryEvent><endEvent id="e"/>',
            "a -> a\nb -> e",
        ),
        (
            '<scriptTask id="a"/><intermediateThrowEvent id="x"><escalationEventDefinition/>'
            "</intermediateThrowEvent>",
            "a -> x\nx -> a",
        ),
    ],
)
def test_a_loop_with_an_exit_is_legal(nodes: str, flows: str) -> None:
    check({"p.bpmn": bpmn("p", '<startEvent id="s"/>' + nodes, "s -> a\n" + flows)})


def test_a_sub_process_without_a_wait_state_does_not_make_a_loop_wait() -> None:
    inner = '<startEvent id="ss"/><scriptTask id="x"/><sequenceFlow id="sf" sourceRef="ss" targetRef="x"/>'
    nodes = f'<startEvent id="s"/><subProcess id="sub">{inner}</subProcess><exclusiveGateway id="g"/>'
    assert refused(bpmn("p", nodes, "s -> sub\nsub -> g\ng -> sub")).element == "g"


def test_an_event_sub_process_that_waits_does_not_make_its_parent_wait() -> None:
    timer = '<timerEventDefinition><timeDuration>"PT1H"</timeDuration></timerEventDefinition>'
    event_sub = (
        f'<subProcess id="ev" triggeredByEvent="true"><startEvent id="es">{timer}</startEvent>'
        '<userTask id="u"/><sequenceFlow id="ef" sourceRef="es" targetRef="u"/></subProcess>'
    )
    inner = (
        f'<startEvent id="ss"/><task id="x"/><sequenceFlow id="sf" sourceRef="ss" targetRef="x"/>{event_sub}'
    )
    nodes = f'<startEvent id="s"/><subProcess id="sub">{inner}</subProcess><exclusiveGateway id="g"/>'
    assert refused(bpmn("p", nodes, "s -> sub\nsub -> g\ng -> sub")).element == "g"


def test_a_loop_inside_a_sub_process_is_refused_even_when_a_boundary_timer_could_interrupt_it() -> None:
    """The timer can never fire: the loop never lets the engine wait."""
    inner = (
        '<startEvent id="ss"/><exclusiveGateway id="spin"/>'
        '<sequenceFlow id="f1" sourceRef="ss" targetRef="spin"/>'
        '<sequenceFlow id="f2" sourceRef="spin" targetRef="spin"/>'
    )
    nodes = (
        f'<startEvent id="s"/><subProcess id="sub">{inner}</subProcess><endEvent id="e"/>'
        '<boundaryEvent id="late" attachedToRef="sub"><timerEventDefinition><timeDuration>"PT1H"'
        '</timeDuration></timerEventDefinition></boundaryEvent><endEvent id="timed_out"/>'
    )
    assert refused(bpmn("p", nodes, "s -> sub\nsub -> e\nlate -> timed_out")).element == "spin"


# ------------------------------------------------------------------------------------------ timers


def timer(kind: str, expression: str, place: str = "start") -> bytes:
    definition = f"<timerEventDefinition><{kind}>{expression}</{kind}></timerEventDefinition>"
    if place == "start":
        return bpmn("p", f'<startEvent id="s">{definition}</startEvent><endEvent id="e"/>', "s -> e")
    nodes = (
        f'<startEvent id="s"/><userTask id="u"/><boundaryEvent id="b" attachedToRef="u" '
        f'cancelActivity="false">{definition}</boundaryEvent><endEvent id="e"/><endEvent id="e2"/>'
    )
    return bpmn("p", nodes, "s -> u\nu -> e\nb -> e2")


@pytest.mark.parametrize("expression", ['"R/PT0.001S"', '"R5/PT0.5S"', "'R/PT0S'"])
def test_a_literal_cycle_below_the_minimum_is_refused(expression: str) -> None:
    for place in ("start", "boundary"):
        error = refused(timer("timeCycle", expression, place))
        assert error.element == ("s" if place == "start" else "b")
        assert "min_timer_cycle_seconds (1 s)" in error.text


def test_cycles_at_the_minimum_and_computed_cycles_are_accepted() -> None:
    check({"p.bpmn": timer("timeCycle", '"R/PT1S"')})
    check({"p.bpmn": timer("timeCycle", "cycle")})  # read at run time
    check({"p.bpmn": timer("timeCycle", '"R/PT0.5S"')}, Limits(min_timer_cycle_seconds=0.5))


@pytest.mark.parametrize(
    ("kind", "expression"),
    [
        ("timeCycle", '"R/soon"'),
        ("timeCycle", '"every minute"'),
        ("timeDuration", '"P1Q"'),
        ("timeDate", '"tomorrow"'),
    ],
)
def test_a_literal_timer_that_does_not_parse_is_refused(kind: str, expression: str) -> None:
    error = refused(timer(kind, expression, "boundary"))
    assert error.element == "b" and "does not parse" in error.text


# ---------------------------------------------------------------------------------------- fan-out


@pytest.mark.parametrize("gateway", ["parallelGateway", "inclusiveGateway", "exclusiveGateway", "task"])
def test_more_outgoing_flows_than_max_fan_out_are_refused(gateway: str) -> None:
    ends = "".join(f'<endEvent id="e{i}"/>' for i in range(6))
    xml = bpmn(
        "p",
        f'<startEvent id="s"/><{gateway} id="g"/>{ends}',
        "s -> g\n" + "\n".join(f"g -> e{i}" for i in range(6)),
    )
    check({"p.bpmn": xml}, Limits(max_fan_out=6))
    error = refused(xml, Limits(max_fan_out=5))
    assert error.element == "g" and "max_fan_out (5)" in error.text


def test_a_literal_cardinality_above_max_fan_out_is_refused() -> None:
    def multi(cardinality: str) -> bytes:
        marker = (
            f"<multiInstanceLoopCharacteristics><loopCardinality>{cardinality}</loopCardinality>"
            "</multiInstanceLoopCharacteristics>"
        )
        return bpmn(
            "p", f'<startEvent id="s"/><task id="m">{marker}</task><endEvent id="e"/>', "s -> m\nm -> e"
        )

    check({"p.bpmn": multi("1000")})
    check({"p.bpmn": multi("n_reviewers")})  # read at run time
    assert refused(multi("1001")).element == "m"


# ---------------------------------------------------------------------------------- call activities


def caller(process_id: str, called: str) -> str:
    nodes = (
        f'<startEvent id="{process_id}_s"/><callActivity id="{process_id}_call" calledElement="{called}"/>'
        f'<endEvent id="{process_id}_e"/>'
    )
    return process_xml(
        process_id, nodes, f"{process_id}_s -> {process_id}_call\n{process_id}_call -> {process_id}_e"
    )


def test_a_process_calling_itself_is_refused_naming_the_call_activity() -> None:
    error = refused(definitions(caller("p", "p")))
    assert error.element == "p_call" and "p → p" in error.text


def test_a_call_cycle_across_resources_is_refused() -> None:
    resources = {
        "a.bpmn": definitions(caller("a", "b")),
        "b.bpmn": definitions(caller("b", "c")),
        "c.bpmn": definitions(caller("c", "a")),
    }
    found = problem(resources)
    assert found is not None and found.resource == "a.bpmn"
    assert found.element == "a_call" and "a → b → c → a" in found.text


def test_calls_without_a_cycle_are_accepted() -> None:
    leaf = process_xml("c", '<startEvent id="cs"/><endEvent id="ce"/>', "cs -> ce")
    check({"a.bpmn": definitions(caller("a", "b") + caller("b", "c") + leaf)})


# --------------------------------------------------------------------------------------------- names


@pytest.mark.parametrize(
    ("where", "extra"),
    [
        ('<startEvent id="s" name="Start&#9;here"/>', ""),
        ('<startEvent id="s" name="Start\u009bhere"/>', ""),
        ('<startEvent id="s"/><task id="t\u007f"/>', ""),
        ('<startEvent id="s"/>', '<message id="m" name="order&#10;placed"/>'),
        ('<startEvent id="s"/>', '<error id="err" errorCode="E&#13;1"/>'),
    ],
)
def test_control_characters_in_ids_names_and_codes_are_refused(where: str, extra: str) -> None:
    xml = bpmn("p", where + '<endEvent id="e"/>', "s -> e", extra)
    error = refused(xml)
    assert "control character" in error.text
    assert "\t" not in error.text and "\u009b" not in error.text


def test_a_line_feed_in_an_element_label_is_accepted() -> None:
    check({"p.bpmn": bpmn("p", '<startEvent id="s" name="Start&#10;here"/><endEvent id="e"/>', "s -> e")})


# ------------------------------------------------------------------------------------ the real ones


def test_every_diagram_of_the_regulation_passes() -> None:
    folder: Path = repository_root() / "bpmn"
    check({p.name: p.read_bytes() for p in [*folder.glob("*.bpmn"), *folder.glob("*.dmn")]})


def test_a_process_that_is_not_executable_is_not_checked() -> None:
    """SpiffWorkflow never runs it (a participant drawn as documentation), so its shape cannot hurt."""
    loop = process_xml("client", '<startEvent id="cs"/><exclusiveGateway id="g"/>', "cs -> g\ng -> g", False)
    check({"p.bpmn": definitions(loop)})


def test_a_flow_to_a_missing_element_is_left_for_the_parser_to_name() -> None:
    dangling = '<sequenceFlow id="x" sourceRef="g" targetRef="nowhere"/>'
    nodes = f'<startEvent id="s"/><exclusiveGateway id="g"/>{dangling}'
    check({"p.bpmn": bpmn("p", nodes, "s -> g\ng -> g")})


# ------------------------------------------------------------------------- timers and fan-out in context


def timer_loop(kind: str, expression: str, place: str) -> bytes:
    definition = f"<timerEventDefinition><{kind}>{expression}</{kind}></timerEventDefinition>"
    if place == "catch":
        nodes = f'<startEvent id="s"/><intermediateCatchEvent id="t">{definition}</intermediateCatchEvent>'
        return bpmn("p", nodes + '<scriptTask id="a"/>', "s -> t\nt -> a\na -> t")
    boundary = f'<boundaryEvent id="t" attachedToRef="u">{definition}</boundaryEvent>'
    nodes = f'<startEvent id="s"/><userTask id="u"/>{boundary}'
    return bpmn("p", nodes + '<endEvent id="e"/>', "s -> u\nu -> e\nt -> u")


@pytest.mark.parametrize("place", ["catch", "boundary"])
def test_a_short_literal_duration_in_a_loop_is_held_to_the_cycle_minimum(place: str) -> None:
    error = refused(timer_loop("timeDuration", '"PT0.01S"', place))
    assert error.element == "t" and "min_timer_cycle_seconds" in error.text
    check({"p.bpmn": timer_loop("timeDuration", '"PT1S"', place)})
    check({"p.bpmn": timer_loop("timeDuration", "pause", place)})  # read at run time


def test_a_fixed_date_in_a_loop_is_refused_but_outside_one_it_is_legal() -> None:
    error = refused(timer_loop("timeDate", '"2030-01-01T00:00:00+00:00"', "catch"))
    assert error.element == "t" and "fixed date" in error.text
    check({"p.bpmn": timer("timeDate", '"2030-01-01T00:00:00+00:00"', "boundary")})


def test_a_short_duration_outside_a_loop_is_legal() -> None:
    check({"p.bpmn": timer("timeDuration", '"PT0.001S"', "boundary")})


def multi_sub_process(outer: int, inner: str) -> bytes:
    marker = (
        f"<multiInstanceLoopCharacteristics><loopCardinality>{outer}</loopCardinality>"
        "</multiInstanceLoopCharacteristics>"
    )
    body = f'<startEvent id="ss"/>{inner}<sequenceFlow id="sf" sourceRef="ss" targetRef="work"/>'
    return bpmn(
        "p",
        f'<startEvent id="s"/><subProcess id="each">{marker}{body}</subProcess><endEvent id="e"/>',
        "s -> each\neach -> e",
    )


def test_fan_out_inside_a_parallel_multi_instance_sub_process_multiplies() -> None:
    inner_multi = (
        '<userTask id="work"><multiInstanceLoopCharacteristics><loopCardinality>40</loopCardinality>'
        "</multiInstanceLoopCharacteristics></userTask>"
    )
    check({"p.bpmn": multi_sub_process(25, inner_multi)})  # 1,000 at once
    error = refused(multi_sub_process(26, inner_multi))
    assert error.element == "work" and "× 26 parallel copies" in error.text
    ends = "".join(f'<endEvent id="x{i}"/>' for i in range(10))
    split = (
        '<parallelGateway id="work"/>'
        + ends
        + "".join(f'<sequenceFlow id="g{i}" sourceRef="work" targetRef="x{i}"/>' for i in range(10))
    )
    assert refused(multi_sub_process(101, split)).element == "work"
    sequential = multi_sub_process(101, split).replace(
        b"<multiInstanceLoopCharacteristics>", b'<multiInstanceLoopCharacteristics isSequential="true">'
    )
    check({"p.bpmn": sequential})


def test_sub_processes_nested_deeper_than_the_limit_are_refused() -> None:
    def nested(depth: int) -> bytes:
        inner = '<startEvent id="s0"/><userTask id="u"/><sequenceFlow id="f0" sourceRef="s0" targetRef="u"/>'
        for level in range(1, depth + 1):
            flow = f'<sequenceFlow id="f{level}" sourceRef="s{level}" targetRef="sub{level}"/>'
            inner = f'<startEvent id="s{level}"/><subProcess id="sub{level}">{inner}</subProcess>{flow}'
        return definitions(f'<process id="p">{inner}</process>')

    limits = Limits(max_sub_process_depth=5)
    check({"p.bpmn": nested(5)}, limits)
    error = refused(nested(6), limits)
    assert error.element == "sub1" and "nested 6 deep" in error.text
