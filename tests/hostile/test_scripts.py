"""Hostile scripts: C-level CPU, string growth, memory, giant integers and variables end as an incident
naming the limit, names the sandbox lacks are refused at deploy naming the element, and the orchestrator
answers other callers while a hostile script is still running (it runs in a sandbox process, the GIL free).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from xml.sax.saxutils import escape

import pytest

from consultflow.orchestrator.engine import DeploymentError
from consultflow.platform.limits import Limits
from consultflow.platform.sandbox import pool_for
from tests.support.bpmn_builder import bpmn
from tests.support.liveness import answered_during_rounds
from tests.support.orchestrator_harness import Harness

LIMITS = Limits(script_cpu_ms=500)
"""Half a second of CPU keeps the suite fast; the kill path is the same at any budget."""

BUSY = "for i in range(100000):\n    for j in range(30):\n        pass\n"
"""A few hundred milliseconds of Python-level work in the sandbox before the hostile operation, so the
liveness probe runs while the script is under way even when a guard refuses the operation at once."""


def script_process(process_id: str, script: str) -> bytes:
    return bpmn(
        process_id,
        f'<startEvent id="s"/><scriptTask id="hostile"><script>{escape(script)}</script></scriptTask>'
        '<endEvent id="e"/>',
        "s -> hostile\nhostile -> e",
    )


HARMLESS = bpmn(
    "harmless",
    '<startEvent id="s"/><userTask id="wait"/><endEvent id="e"/>',
    "s -> wait\nwait -> e",
)


@pytest.fixture(scope="module")
def h(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Harness]:
    harness = Harness.sqlite(Path(tmp_path_factory.mktemp("hostile-scripts")), limits=LIMITS)
    harness.deploy(harmless=HARMLESS)
    yield harness
    harness.close()


def run_hostile(h: Harness, process_id: str, script: str) -> str:
    """Deploys and starts `script` in the background; asserts another caller (GetInstance of a harmless
    instance) is answered while the script still runs in a sandbox process; returns the incident's message.
    """
    h.deploy(**{process_id: script_process(process_id, script)})
    other = h.start("harmless")
    pool = pool_for(h.orchestrator.limits)
    instances = answered_during_rounds(
        lambda: h.start(process_id),
        lambda: h.view(other),
        what=f"GetInstance during {process_id}",
        under_way=lambda: pool.busy > 0,
    )
    views = [h.view(instance) for instance in instances]
    for view in views:
        assert view.instance.status == "ACTIVE"
        assert [(i.kind, i.element_id) for i in view.incidents] == [("SCRIPT_ERROR", "hostile")]
    return str(views[0].incidents[0].message)


C_LEVEL_CPU = {
    "decimal_to_integer_ratio": ("r = Decimal('1e99999999').as_integer_ratio()", "script_cpu_ms"),
    "hash_collisions_in_set": (
        "keys = [i * 2305843009213693951 for i in range(40000)]\ns = set(keys)",
        "script_cpu_ms",
    ),
    "factorial": (BUSY + "x = math.factorial(10 ** 6)", "max_int_bits"),
    "builtin_pow": (BUSY + "x = pow(3, 10 ** 8)", "max_int_bits"),
    "sorted_huge_range": (BUSY + "x = sorted(range(10 ** 9))", "max_collection_items"),
    "python_loop": ("while True:\n    pass", "script_cpu_ms"),
}
STRING_GROWTH = {
    "ljust": (BUSY + "s = 'a'.ljust(200000000)", "max_string_length"),
    "percent_width": (BUSY + "s = '%*d' % (10 ** 8, 1)", "max_string_length"),
    "format_spec_width": (BUSY + "x = 1\ns = f'{x:>100000000}'", "max_string_length"),
    "join": (
        BUSY + "p = []\nfor i in range(200):\n    p.append('x' * 10 ** 5)\ns = ''.join(p)",
        "max_string_length",
    ),
    "replace": (BUSY + "s = 'x' * 10 ** 5\ns = s.replace('x', 'xxxxxxxxxxxxxxxxxxxx')", "max_string_length"),
    "doubling_loop": (BUSY + "s = 'ab'\nwhile True:\n    s = s + s", "max_string_length"),
}
MEMORY = {
    "list_growth": ("l = []\nwhile True:\n    l.append('x' * 100000)", "script_memory_mb"),
    "dict_growth": ("d = {}\ni = 0\nwhile True:\n    d[i] = 'y' * 100000\n    i += 1", "script_memory_mb"),
}
BIG_VALUES = {
    "int_doubling": (BUSY + "x = 1\nfor i in range(100000):\n    x = x * 3", "max_int_bits"),
    "stored_big_int": (BUSY + "x = Decimal('1e5000').as_integer_ratio()[0]", "max_int_bits"),
    "big_variable": (BUSY + "s = 'x' * 900000\nd = {'a': s, 'b': s}", "max_variable_bytes"),
}


@pytest.mark.parametrize("case", [*C_LEVEL_CPU, *STRING_GROWTH, *BIG_VALUES])
def test_a_hostile_script_is_an_incident_naming_the_limit_and_others_are_answered(
    h: Harness, case: str
) -> None:
    script, limit = {**C_LEVEL_CPU, **STRING_GROWTH, **BIG_VALUES}[case]
    message = run_hostile(h, f"hostile_{case}", script)
    print(f"incident: {message}")
    assert limit in message, message


@pytest.fixture(scope="module")
def roomy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Harness]:
    """A CPU budget that filling the memory cannot spend first, even with page faults slowed by a busy
    machine (with half a second, CI saw the CPU limit hit before the memory limit)."""
    limits = Limits(script_cpu_ms=10_000)
    harness = Harness.sqlite(Path(tmp_path_factory.mktemp("hostile-memory")), limits=limits)
    harness.deploy(harmless=HARMLESS)
    yield harness
    harness.close()


@pytest.mark.parametrize("case", MEMORY)
def test_a_script_past_its_memory_is_an_incident_naming_the_limit_and_others_are_answered(
    roomy: Harness, case: str
) -> None:
    script, limit = MEMORY[case]
    message = run_hostile(roomy, f"hostile_{case}", script)
    print(f"incident: {message}")
    assert limit in message, message


def test_after_a_killed_worker_scripts_still_run(h: Harness) -> None:
    run_hostile(h, "burn", "r = Decimal('1e99999999').as_integer_ratio()")
    h.deploy(after=script_process("after", "total = sum([i for i in range(10)])\nprint(total)"))
    instance = h.start("after")
    assert h.status(instance) == "COMPLETED"


@pytest.mark.parametrize(
    "script",
    [
        "x = open('/etc/passwd').read()",
        "x = eval('1 + 1')",
        "exec('y = 1')",
        "x = getattr(total, 'real')",
        "x = globals()",
        "x = compile('1', 'f', 'eval')",
        "x = input()",
        "x = vars()",
        "class C:\n    pass",
    ],
)
def test_a_name_the_sandbox_does_not_provide_is_refused_at_deploy_naming_the_element(
    h: Harness, script: str
) -> None:
    with pytest.raises(DeploymentError) as refused:
        h.deploy(unknown=script_process("unknown", script))
    assert refused.value.element == "hostile"
    assert "refused script" in str(refused.value)


def test_a_condition_with_a_missing_builtin_is_refused_at_deploy(h: Harness) -> None:
    diagram = bpmn(
        "cond",
        '<startEvent id="s"/><exclusiveGateway id="g"/><endEvent id="a"/><endEvent id="b"/>',
        "s -> g\ng -> a: id(x) > 1\ng -> b: default",
    )
    with pytest.raises(DeploymentError) as refused:
        h.deploy(cond=diagram)
    assert refused.value.element == "g"
    assert "id" in str(refused.value)


def test_print_works_in_place_and_in_the_sandbox(h: Harness) -> None:
    h.deploy(
        printing=script_process("printing", "print('hello', total)\nfor i in range(2):\n    print(i)\ny = 1")
    )
    instance = h.start("printing", total=3)
    assert h.status(instance) == "COMPLETED"


def test_a_variable_named_like_a_python_builtin_is_still_legal_when_the_script_assigns_it(h: Harness) -> None:
    h.deploy(named=script_process("named", "input = 3\nresult = input + 1"))
    assert h.status(h.start("named")) == "COMPLETED"
