"""A version deployed before a limit was lowered or the sandbox grew stricter still loads: deploy checks
run at deploy only (`parse_resources(checks=None)` is how a stored version is read again)."""

import pytest

from consultflow.orchestrator import engine
from consultflow.platform.limits import Limits
from tests.support.bpmn_builder import bpmn

# Reads a variable named like a builtin the sandbox leaves out, and has a path of four elements.
STORED = {
    "p.bpmn": bpmn(
        "p",
        '<startEvent id="s"/><scriptTask id="t"><script>y = id</script></scriptTask><endEvent id="e"/>',
        "s -> t\nt -> e",
    )
}


def test_a_deploy_refuses_what_a_stored_version_may_hold() -> None:
    with pytest.raises(engine.DeploymentError, match="'t'"):
        engine.parse_resources(STORED)
    with pytest.raises(engine.DeploymentError, match="max_path_length"):
        engine.parse_resources(STORED, checks=Limits(max_path_length=2))


def test_a_stored_version_is_read_again_without_the_deploy_checks() -> None:
    assert set(engine.parse_resources(STORED, checks=None)) == {"p"}
