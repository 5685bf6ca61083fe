"""More hostile scripts, other members of the classes test_scripts.py covers: values that share one item
many times (cheap to build, huge to compare, render or store), sources too long or too deeply nested to
compile, and script errors whose argument is not a string. Each ends as a deploy refusal naming the
element or an incident naming the limit, never an engine error; where the work runs in a sandbox process
another caller is answered while it still runs.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from xml.sax.saxutils import escape

import pytest

from consultflow.orchestrator.engine import DeploymentError
from consultflow.platform.limits import Limits
from consultflow.platform.sandbox import pool_for
from consultflow.platform.sandbox_policy import MAX_NESTING, MAX_TRIVIAL_REFERENCES
from consultflow.platform.sandbox_rules import compile_source
from consultflow.platform.scripting import RestrictedEnvironment, ScriptViolation
from tests.support.bpmn_builder import bpmn
from tests.support.liveness import answered_during_rounds
from tests.support.orchestrator_harness import Harness

LIMITS = Limits(script_cpu_ms=500)

HARMLESS = bpmn(
    "harmless",
    '<startEvent id="s"/><userTask id="wait"/><endEvent id="e"/>',
    "s -> wait\nwait -> e",
)


def script_process(process_id: str, script: str) -> bytes:
    return bpmn(
        process_id,
        f'<startEvent id="s"/><scriptTask id="hostile"><script>{escape(script)}</script></scriptTask>'
        '<endEvent id="e"/>',
        "s -> hostile\nhostile -> e",
    )


def condition_process(process_id: str, condition: str) -> bytes:
    return bpmn(
        process_id,
        '<startEvent id="s"/><exclusiveGateway id="g"/><userTask id="a"/><userTask id="b"/>'
        '<endEvent id="e"/>',
        f"s -> g\ng -> a: {condition}\ng -> b: default\na -> e\nb -> e",
    )


@pytest.fixture(scope="module")
def h(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Harness]:
    harness = Harness.sqlite(Path(tmp_path_factory.mktemp("hostile-scripts-more")), limits=LIMITS)
    harness.deploy(harmless=HARMLESS)
    yield harness
    harness.close()


def incident(h: Harness, process_id: str, script: str) -> tuple[str, str]:
    """Deploys and runs `script`; returns the incident's kind and message (the instance stays ACTIVE)."""
    h.deploy(**{process_id: script_process(process_id, script)})
    view = h.view(h.start(process_id))
    assert view.instance.status == "ACTIVE"
    assert [i.element_id for i in view.incidents] == ["hostile"], view.incidents
    return str(view.incidents[0].kind), str(view.incidents[0].message)


# -- shared items: `[a] * n` at every level, `a + a` repeated, `extend`, `str()` of a shared value

SHARED_IN_PROCESS = {
    "repeat_at_the_second_level": "a = [0] * 100000\nb = [a] * 9\nc = [b] * 100000",
    "repeat_in_one_expression": "n = len([[[0] * 100000] * 9] * 100000)",
    "concatenate_repeatedly": "a = [[0] * 100000] * 9\nb = a + a",
    "extend_by_itself": "a = [[0] * 100000] * 9\na.extend(a)",
    "add_in_place": "a = [[0] * 100000] * 9\na += a",
    "str_of_a_shared_value": "a = 'x' * 100000\nb = [a] * 9\nc = str(b) + str(b)",
    "tuples_repeated": "a = ((0,) * 100000,) * 9\nb = (a,) * 1000",
}


@pytest.mark.parametrize("name", sorted(SHARED_IN_PROCESS))
def test_a_shared_value_is_refused_before_it_is_built(h: Harness, name: str) -> None:
    """Trivially safe code runs in the orchestrator: its guards measure a shared item every time it is
    repeated, at every level, so nothing huge to walk in C code is ever built here."""
    script = SHARED_IN_PROCESS[name]
    assert compile_source(script, "exec").trivial
    kind, message = incident(h, f"shared_{name}", script)
    assert kind == "SCRIPT_ERROR"
    assert "(limit max_string_length)" in message


def test_a_stored_value_sharing_items_is_measured_without_writing_it(h: Harness) -> None:
    kind, message = incident(h, "shared_stored", "a = [0] * 100000\nb = [a, a, a]\nc = [b, b]")
    assert kind == "SCRIPT_ERROR"
    assert "(limit max_variable_bytes)" in message


def test_an_expression_whose_value_shares_items_is_measured() -> None:
    """A payload or parameter expression's value may be stored: measured like a variable, without JSON."""
    env = RestrictedEnvironment(Limits(max_string_length=10**8))
    assert compile_source("[x] * 20", "eval").trivial
    with pytest.raises(ScriptViolation) as raised:
        env.evaluate("[x] * 20", {"x": list(range(100000))})
    assert raised.value.limit == "max_variable_bytes"


def test_many_references_into_containers_run_in_a_sandbox_process(h: Harness) -> None:
    """Ten names in a list at each of three levels multiply a value a thousand times for free; compared,
    it is walked in C code. Such code is not trivially safe: it runs where the OS stops it, and the
    orchestrator answers meanwhile."""
    script = (
        "a = [0] * 100000\n"
        "b = [a, a, a, a, a, a, a, a, a, a]\n"
        "c = [b, b, b, b, b, b, b, b, b, b]\n"
        "d = [c, c, c, c, c, c, c, c, c, c]\n"
        "same = d == [c, c, c, c, c, c, c, c, c, c]\n"
    )
    compiled = compile_source(script, "exec")
    assert not compiled.trivial and "placed into containers" in compiled.why_pooled
    h.deploy(shared_pooled=script_process("shared_pooled", script))
    other = h.start("harmless")
    pool = pool_for(LIMITS)
    instances = answered_during_rounds(
        lambda: h.start("shared_pooled"),
        lambda: h.view(other),
        what="GetInstance during a shared compare",
        under_way=lambda: pool.busy > 0,
    )
    for view in map(h.view, instances):
        assert [(i.kind, i.element_id) for i in view.incidents] == [("SCRIPT_ERROR", "hostile")]
        assert "(limit script_cpu_ms)" in view.incidents[0].message


def test_a_few_references_stay_trivially_safe() -> None:
    """Conditions and payloads naming a handful of variables stay in-process (cheap on every step)."""
    assert MAX_TRIVIAL_REFERENCES >= 6
    assert compile_source("status in [a, b, c]", "eval").trivial
    assert compile_source("{'customer': customer_id, 'amount': amount, 'due': due}", "eval").trivial
    assert compile_source("x = {'k': 1, 'l': [1, 2, 3]}", "exec").trivial


# -- sources: too long, too deeply nested (both sites: a script and a gateway condition)

LONG = "x = 1\n" * 4000
DEEP = "x = " + " + ".join(["1"] * (MAX_NESTING + 50))


@pytest.mark.parametrize(
    ("source", "expected"),
    [(LONG, "limit max_script_length"), (DEEP, f"more than {MAX_NESTING} levels")],
    ids=["long", "deep"],
)
def test_a_source_too_long_or_too_deep_is_refused_at_deploy_naming_the_element(
    h: Harness, source: str, expected: str
) -> None:
    with pytest.raises(DeploymentError) as raised:
        h.deploy(src_script=script_process("src_script", source))
    assert raised.value.element == "hostile"
    assert expected in str(raised.value)
    condition = source.removeprefix("x = ").replace("\n", " ") if source is DEEP else "x " * 12000
    with pytest.raises(DeploymentError) as raised:
        h.deploy(src_condition=condition_process("src_condition", condition))
    assert raised.value.element == "g"


def test_a_chain_far_deeper_than_the_recursion_limit_is_refused_not_a_crash(h: Harness) -> None:
    source = "x = " + "-" * 15000 + "1"
    with pytest.raises(DeploymentError) as raised:
        h.deploy(src_unary=script_process("src_unary", source))
    assert raised.value.element == "hostile"
    with pytest.raises(ScriptViolation, match="levels deep"):
        compile_source("x = " + "not " * 5000 + "1", "exec")


def test_a_chain_just_under_the_nesting_limit_compiles_quickly() -> None:
    """Compiling a chain is linear (it was quadratic: 900 operands took seconds)."""
    compiled = compile_source("x = " + " + ".join(["a"] * (MAX_NESTING - 10)), "exec")
    assert compiled.trivial


# -- a script's error whose argument is not a string

ERRORS = {
    "key_error_of_an_int": ("x = {}[5]", "KeyError"),
    "raise_with_an_int": ("raise ValueError(5)", "ValueError"),
    "raise_with_a_big_list": ("raise ValueError(['x' * 1000] * 1000)", "ValueError"),
    "decimal_invalid_operation": ("x = Decimal('1e999999999').quantize(Decimal(1))", "InvalidOperation"),
    "decimal_overflow": ("x = Decimal(10) ** 10 ** 6", "Overflow"),
}


@pytest.mark.parametrize("pooled", [False, True], ids=["in_process", "pooled"])
@pytest.mark.parametrize("name", sorted(ERRORS))
def test_a_script_error_with_any_argument_is_a_script_incident(h: Harness, name: str, pooled: bool) -> None:
    script, error = ERRORS[name]
    if pooled:
        script = "for i in range(1):\n    pass\n" + script
    assert compile_source(script, "exec").trivial is not pooled
    kind, message = incident(h, f"error_{name}_{pooled}", script)
    assert kind == "SCRIPT_ERROR"
    assert error in message
    assert len(message) < 2000


# -- timer expressions: Spiff adds up a duration's months one at a time; a value of the wrong kind


def timer_process(process_id: str, kind: str, expression: str) -> bytes:
    return bpmn(
        process_id,
        f'<startEvent id="s"/><intermediateCatchEvent id="wait"><timerEventDefinition><{kind}>'
        f"{escape(expression)}</{kind}></timerEventDefinition></intermediateCatchEvent><endEvent id='e'/>",
        "s -> wait\nwait -> e",
    )


@pytest.mark.parametrize("duration", ["P9999999999Y", "P99999999999M", "P8000Y"])
def test_a_literal_duration_of_ages_is_refused_at_deploy_at_once(h: Harness, duration: str) -> None:
    """It looped month by month for hours inside DeployDefinition."""
    with pytest.raises(DeploymentError) as raised:
        h.deploy(ages=timer_process("ages", "timeDuration", f'"{duration}"'))
    assert raised.value.element == "wait"
    assert "year 9999" in str(raised.value)


@pytest.mark.parametrize(
    ("kind", "value", "expected"),
    [
        ("timeDuration", "P9999999999Y", "year 9999"),
        ("timeDuration", 12345, "int is not str"),
        ("timeDuration", "R2/2020-01-01T00:00:00Z/PT1S", "ISO 8601 duration"),
        ("timeCycle", "R3/P9999999999Y", "year 9999"),
        ("timeCycle", "every day", "repeating interval"),
        ("timeDate", "tomorrow", "ISO 8601 date"),
    ],
)
def test_a_computed_timer_value_of_the_wrong_kind_is_the_timers_incident(
    h: Harness, kind: str, value: object, expected: str
) -> None:
    """Passes deploy (a variable), fails where the expression ran: an incident on the timer naming the
    problem, not an engine error (nor hours in a step holding the write transaction)."""
    process_id = f"computed_{kind}"
    h.deploy(**{process_id: timer_process(process_id, kind, "when")})
    view = h.view(h.start(process_id, when=value))
    assert view.instance.status == "ACTIVE"
    assert [(i.kind, i.element_id) for i in view.incidents] == [("SCRIPT_ERROR", "wait")]
    assert expected in view.incidents[0].message


def test_durations_are_computed_as_spiff_computes_them() -> None:
    from datetime import UTC, datetime, timedelta

    from consultflow.platform.scripting import timedelta_from_end, timedelta_from_start

    start = datetime(2024, 1, 31, 10, tzinfo=UTC)
    assert timedelta_from_start({"months": 1}, start) == timedelta(days=31)
    assert timedelta_from_start({"years": 1, "days": 2, "hours": 3}, start) == timedelta(days=368, hours=3)
    assert timedelta_from_start({"months": 13}, datetime(2023, 12, 5, tzinfo=UTC)) == timedelta(days=397)
    assert timedelta_from_end({"months": 2}, datetime(2024, 3, 15, tzinfo=UTC)) == timedelta(days=60)
    with pytest.raises(ValueError, match="year 9999"):
        timedelta_from_start({"years": 9999999999}, start)


# -- assignee and candidate users: a megabyte of names on the task's row, de-duplicated quadratically


def user_task_process(process_id: str, attribute: str) -> bytes:
    return bpmn(
        process_id,
        f'<startEvent id="s"/><userTask id="ut" camunda:{attribute}="${{who}}"/><endEvent id="e"/>',
        "s -> ut\nut -> e",
    )


@pytest.mark.parametrize(
    ("attribute", "who", "limit"),
    [
        ("assignee", "x" * 900_000, "max_user_name_length"),
        ("candidateUsers", ",".join(f"u{i}" for i in range(120_000)), "max_task_candidates"),
        ("candidateUsers", [f"u{i}" for i in range(100_000)], "max_task_candidates"),
    ],
    ids=["long_name", "many_names_in_a_string", "many_names_in_a_list"],
)
def test_names_from_an_expression_are_bounded(h: Harness, attribute: str, who: object, limit: str) -> None:
    process_id = f"names_{attribute}_{limit}_{type(who).__name__}"
    h.deploy(**{process_id: user_task_process(process_id, attribute)})
    view = h.view(h.start(process_id, who=who))
    assert [(i.kind, i.element_id) for i in view.incidents] == [("ASSIGNMENT", "ut")]
    assert f"(limit {limit})" in view.incidents[0].message
    assert not h.user_tasks(view.instance.instance_id)


# -- str.format: nested specs number their automatic fields as Python does, and stay size-checked


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("'{:{}}'.format('ab', 5)", "ab   "),
        ("'{}{:{}}'.format('a', 'b', 3)", "ab  "),
        ("'{0:{1}}|{2}'.format('a', 4, 'z')", "a   |z"),
    ],
)
def test_nested_format_specs_number_fields_as_python_does(source: str, expected: str) -> None:
    assert RestrictedEnvironment(LIMITS).evaluate(source, {}) == expected == eval(source)


@pytest.mark.parametrize("source", ["'{:{}}'.format(1, 10**8)", "'{:{}{}}'.format(1, '>', 10**7)"])
def test_a_nested_format_width_is_still_checked(source: str) -> None:
    with pytest.raises(ScriptViolation) as raised:
        RestrictedEnvironment(LIMITS).evaluate(source, {})
    assert raised.value.limit == "max_string_length"


@pytest.mark.parametrize(
    ("source", "expected"),
    [("round(10**1000, -10**9)", 0), ("round(-(10**1200), -10**18)", 0), ("round(12345, -2)", 12300)],
)
def test_rounding_an_integer_to_a_huge_negative_place_is_answered_at_once(source: str, expected: int) -> None:
    """Trivially safe, so in the orchestrator: Python computed 10 ** 10**9 first, in C code, forever."""
    assert compile_source(source, "eval").trivial
    assert RestrictedEnvironment(LIMITS).evaluate(source, {}) == expected


# -- hashing a stored list of colliding integers: seconds inside one C call


COLLIDING = [i * 2305843009213693951 for i in range(40000)]
"""Multiples of 2**61 - 1 all hash to 0: under a megabyte as JSON, a legal variable."""


@pytest.mark.parametrize(
    "condition", ["len(set(keys)) > 0", "len(frozenset(keys)) > 0", "len(dict(zip(keys, keys))) > 0"]
)
def test_a_condition_hashing_colliding_keys_runs_in_a_sandbox_process(h: Harness, condition: str) -> None:
    """It held the orchestrator's GIL for 8-13 s in-process; now the OS stops it and others are answered."""
    compiled = compile_source(condition, "eval")
    assert not compiled.trivial
    h.deploy(colliding=condition_process("colliding", condition))
    other = h.start("harmless")
    pool = pool_for(LIMITS)
    instances = answered_during_rounds(
        lambda: h.start("colliding", keys=COLLIDING),
        lambda: h.view(other),
        what="GetInstance during a colliding set",
        under_way=lambda: pool.busy > 0,
    )
    for view in map(h.view, instances):
        assert [(i.kind, i.element_id) for i in view.incidents] == [("SCRIPT_ERROR", "g")]
        assert "(limit script_cpu_ms)" in view.incidents[0].message


@pytest.mark.parametrize("source", ["{*keys}", "a.union(keys)", "a.issubset(keys)", "d.update(pairs)"])
def test_hashing_many_items_is_not_trivially_safe(source: str) -> None:
    assert not compile_source(source, "eval").trivial


@pytest.mark.parametrize(
    ("condition", "limit"),
    [("len('x' * 10**7) > 0", "max_string_length"), ("2 ** 10**6 > 0", "max_int_bits")],
)
def test_a_condition_over_a_limit_is_an_incident_naming_the_limit(
    h: Harness, condition: str, limit: str
) -> None:
    """Spiff words an expression's failure as only "Error evaluating expression ...": the cause is added."""
    process_id = f"condition_{limit}"
    h.deploy(**{process_id: condition_process(process_id, condition)})
    view = h.view(h.start(process_id))
    assert [(i.kind, i.element_id) for i in view.incidents] == [("SCRIPT_ERROR", "g")]
    assert f"(limit {limit})" in view.incidents[0].message
