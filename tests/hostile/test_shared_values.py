"""A value that shares one part many times is small in memory and huge as JSON (`x = [s, s]`, doubled):
such a script runs in-process (it is trivially safe: no loop, no call) and its variables are measured
without being written out, so it ends at once as an incident naming max_variable_bytes. Measured by
writing the JSON out, the check itself held the orchestrator for seconds."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.bpmn_builder import bpmn
from tests.support.orchestrator_harness import Harness

BIG = 's = "a" * 900000\n'
DOUBLINGS = {
    "lists": BIG + "x0 = [s, s]\n" + "".join(f"x{i} = [x{i - 1}, x{i - 1}]\n" for i in range(1, 40)),
    "dicts": BIG
    + "x0 = {'a': s, 'b': s}\n"
    + "".join(f"x{i} = {{'a': x{i - 1}, 'b': x{i - 1}}}\n" for i in range(1, 40)),
    "tuples in one expression": BIG + "x = ((((s, s), (s, s)), ((s, s), (s, s))), (((s, s), (s, s)),))\n",
}


@pytest.fixture
def h(tmp_path: Path) -> Iterator[Harness]:
    harness = Harness.sqlite(tmp_path)
    yield harness
    harness.close()


@pytest.mark.parametrize("script", DOUBLINGS.values(), ids=DOUBLINGS.keys())
def test_a_value_sharing_its_parts_is_refused_naming_the_limit(h: Harness, script: str) -> None:
    h.deploy(
        p=bpmn(
            "p",
            f'<startEvent id="s"/><scriptTask id="double"><script>{script}</script></scriptTask>'
            '<userTask id="after"/><endEvent id="e"/>',
            "s -> double\ndouble -> after\nafter -> e",
        )
    )
    instance = h.start("p")  # 2**40 copies of 900 kB as JSON: this returns only if nothing writes them out
    [incident] = h.view(instance).incidents
    assert (incident.kind, incident.element_id) == ("SCRIPT_ERROR", "double")
    assert "max_variable_bytes" in incident.message
