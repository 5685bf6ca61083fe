"""Deploy checks collected (orchestrator/deploy_checks.py, structure.problems): every problem a deploy
would refuse, each with its file, element and rule; the deploy itself refuses with the first."""

from __future__ import annotations

import pytest

from consultflow.orchestrator import engine, structure
from consultflow.platform.limits import Limits
from tests.support.bpmn_builder import bpmn

SMALL = Limits(max_fan_out=2)


def script(process_id: str, element: str, source: str) -> bytes:
    return bpmn(
        process_id,
        f'<startEvent id="s"/><scriptTask id="{element}"><script>{source}</script></scriptTask>'
        '<endEvent id="e"/>',
        f"s -> {element}\n{element} -> e",
    )


def rules(problems: list[engine.DeploymentError]) -> set[tuple[str, str, str]]:
    return {(p.resource, p.element, p.rule) for p in problems}


def test_one_file_with_several_shape_problems_reports_each() -> None:
    xml = bpmn(
        "p",
        '<startEvent id="s"/><parallelGateway id="split"/><task id="a"/><task id="b"/><task id="c"/>'
        '<task id="x"/><task id="y"/>',
        "s -> split\nsplit -> a\nsplit -> b\nsplit -> c\nx -> y\ny -> x",
    )
    trees = {"p.bpmn": engine.parse_xml("p.bpmn", xml)}
    found = structure.problems(trees, SMALL)
    assert {(p.element, p.rule) for p in found} == {
        ("split", "limit.max_fan_out"),
        ("x", "loop.no_wait_state"),
    }
    assert structure.first_problem(trees, SMALL) == found[0]


def test_scripts_of_every_file_are_reported_and_a_deploy_refuses_the_first() -> None:
    files = {
        "a.bpmn": script("a", "reads", 'x = open("f")'),
        "b.bpmn": script("b", "peeks", "x = ().__class__"),
    }
    specs, problems = engine.checked_resources(files)
    assert specs == {}
    assert rules(problems) == {("a.bpmn", "reads", "script.name"), ("b.bpmn", "peeks", "script.name")}
    with pytest.raises(engine.DeploymentError) as refused:
        engine.parse_resources(files)
    assert (refused.value.resource, refused.value.element) == (problems[0].resource, problems[0].element)


def test_a_file_that_does_not_parse_does_not_hide_the_others() -> None:
    loop = bpmn("loop", '<startEvent id="s"/><task id="a"/>', "s -> a\na -> a")
    files = {"bad.bpmn": b"<definitions", "worse.dmn": b"<?xml", "loop.bpmn": loop}
    _, problems = engine.checked_resources(files)
    assert rules(problems) == {
        ("bad.bpmn", "", "parse"),
        ("worse.dmn", "", "parse"),
        ("loop.bpmn", "a", "loop.no_wait_state"),
    }


def test_a_clean_file_has_no_problems() -> None:
    specs, problems = engine.checked_resources({"a.bpmn": script("a", "fine", "x = 1")})
    assert (list(specs), problems) == (["a"], [])
