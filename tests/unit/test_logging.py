"""The log carries no process data: a client's contact details never reach the orchestrator's log."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest
from SpiffWorkflow.util.task import TaskState

from consultflow.orchestrator import engine
from consultflow.orchestrator.timer_events import ClockedScriptEngine
from consultflow.platform.logging import SPIFF_LOGGERS, configure_logging
from tests.support.bpmn_builder import bpmn


@pytest.fixture
def restore_logging() -> Iterator[None]:
    saved = {name: logging.getLogger(name).level for name in ("", *SPIFF_LOGGERS)}
    root_handlers = logging.getLogger().handlers[:]
    yield
    logging.getLogger().handlers[:] = root_handlers
    for name, level in saved.items():
        logging.getLogger(name).setLevel(level)


@pytest.mark.usefixtures("restore_logging")
def test_a_running_process_logs_no_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    captured = io.StringIO()
    monkeypatch.setattr("sys.stderr", captured)
    configure_logging("orchestrator", "INFO", "json")
    diagram = bpmn("p", '<startEvent id="s"/><userTask id="u"/><endEvent id="e"/>', "s -> u\nu -> e")
    specs = engine.parse_resources({"p.bpmn": diagram})["p"]
    workflow = engine.new_workflow(specs, ClockedScriptEngine(), {"contact_email": "li.lei@acme.example"})
    workflow.do_engine_steps()
    for task in workflow.get_tasks(state=TaskState.READY):
        task.data["contact_phone"] = "+86 138 0000 0000"
        task.run()
    workflow.do_engine_steps()
    assert workflow.is_completed()
    logging.getLogger("consultflow.test").info("the handler writes here")
    output = captured.getvalue()
    assert "the handler writes here" in output, "the capture works"
    assert "acme.example" not in output and "138 0000" not in output
