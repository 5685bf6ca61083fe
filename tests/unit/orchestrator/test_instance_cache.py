"""The live-workflow cache: keyed by revision, least recently used dropped first."""

from __future__ import annotations

from SpiffWorkflow.bpmn.workflow import BpmnWorkflow

from consultflow.orchestrator import engine
from consultflow.orchestrator.host import InstanceCache
from consultflow.orchestrator.timer_events import ClockedScriptEngine
from tests.support.bpmn_builder import bpmn

SPECS = engine.parse_resources({"p.bpmn": bpmn("p", '<startEvent id="s"/><endEvent id="e"/>', "s -> e")})["p"]
WORKFLOWS: dict[str, BpmnWorkflow] = {}


def workflow(name: str) -> BpmnWorkflow:
    """A distinct workflow per name (the cache never looks inside)."""
    return WORKFLOWS.setdefault(name, engine.new_workflow(SPECS, ClockedScriptEngine(), {}))


def test_a_workflow_is_found_only_at_its_revision() -> None:
    cache: InstanceCache[BpmnWorkflow] = InstanceCache(2)
    cache.put("a", 1, workflow("a1"))
    assert cache.get("a", 1) is workflow("a1")
    assert cache.get("a", 2) is None  # another step changed it since


def test_the_least_recently_used_is_dropped_first() -> None:
    cache: InstanceCache[BpmnWorkflow] = InstanceCache(2)
    cache.put("a", 1, workflow("a"))
    cache.put("b", 1, workflow("b"))
    cache.get("a", 1)
    cache.put("c", 1, workflow("c"))
    assert cache.get("a", 1) is workflow("a")
    assert cache.get("b", 1) is None
    assert cache.get("c", 1) is workflow("c")
    assert len(cache) == 2


def test_a_cache_of_size_zero_keeps_nothing_and_drop_forgets() -> None:
    off: InstanceCache[BpmnWorkflow] = InstanceCache(0)
    off.put("a", 1, workflow("a"))
    assert off.get("a", 1) is None
    cache: InstanceCache[BpmnWorkflow] = InstanceCache(1)
    cache.put("a", 1, workflow("a"))
    cache.drop("a")
    assert cache.get("a", 1) is None
