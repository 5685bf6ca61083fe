"""The log carries no personal data: a client's contact details never reach a log line at INFO or WARNING,
and at DEBUG only redacted."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from SpiffWorkflow.util.task import TaskState

from consultflow.orchestrator import engine
from consultflow.orchestrator.timer_events import ClockedScriptEngine
from consultflow.platform.logging import (
    REDACTED,
    SPIFF_LOGGERS,
    configure_logging,
    mask_personal_data,
    redact,
)
from tests.support.bpmn_builder import bpmn
from tests.support.orchestrator_harness import Harness


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


EMAIL = "ann.lee@acme.example"
PHONE = "+86 138 0013 8000"


def run_a_flow_with_contact_details(tmp_path: Path) -> None:
    """A client's e-mail and phone in the variables, a person's form, and a script whose error quotes them."""
    diagram = bpmn(
        "intake",
        '<startEvent id="s"/><userTask id="review"/>'
        '<scriptTask id="greet"><script>greeting = "Dear " + contact_email</script></scriptTask>'
        '<scriptTask id="fee"><script>fee = int(contact_email + " " + note)</script></scriptTask>'
        '<endEvent id="e"/>',
        "s -> review\nreview -> greet\ngreet -> fee\nfee -> e",
    )
    harness = Harness.sqlite(tmp_path)
    try:
        harness.deploy(intake=diagram)
        instance = harness.start("intake", "client-1", contact_email=EMAIL, client_name="Ann Lee")
        harness.submit("review", instance, contact_phone=PHONE, note=f"call {PHONE} or write to {EMAIL}")
        assert harness.view(instance).incidents, "the failing script is an incident"
    finally:
        harness.close()


def log_lines(output: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in output.splitlines() if line.startswith("{")]


@pytest.mark.usefixtures("restore_logging")
@pytest.mark.parametrize("level", ["INFO", "DEBUG"])
def test_contact_details_never_reach_the_log_unredacted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, level: str
) -> None:
    captured = io.StringIO()
    monkeypatch.setattr("sys.stderr", captured)
    configure_logging("orchestrator", level, "json")
    run_a_flow_with_contact_details(tmp_path)
    lines = log_lines(captured.getvalue())
    assert any(line["level"] == "INFO" for line in lines), "the capture works"
    for line in lines:
        text = json.dumps(line, ensure_ascii=False)
        assert EMAIL not in text and "138 0013" not in text, text
    assert not [line for line in lines if line["level"] != "DEBUG" and "data" in line], "data at DEBUG only"
    debug = [json.dumps(line, ensure_ascii=False) for line in lines if line["level"] == "DEBUG"]
    if level == "DEBUG":
        assert any(REDACTED in text for text in debug), "variables are logged at DEBUG, redacted"
        assert any("[e-mail]" in text for text in debug), "an address in a free-text value is masked"
    else:
        assert not debug


def test_redaction_covers_contact_like_names_at_any_depth_and_masks_free_text() -> None:
    data = {
        "contactEmail": EMAIL,
        "lead": {"phone_number": PHONE, "company": "Acme"},
        "attendees": [{"contact": "Ann"}],
        "note": f"write to {EMAIL} on 2026-12-06",
        "fee": 1200,
    }
    assert redact(data) == {
        "contactEmail": REDACTED,
        "lead": {"phone_number": REDACTED, "company": "Acme"},
        "attendees": [{"contact": REDACTED}],
        "note": "write to [e-mail] on 2026-12-06",
        "fee": 1200,
    }
    assert redact({"iban": "DE89"}, fields=("email",)) == {"iban": "DE89"}
    assert mask_personal_data(f"instance 3f2a at 127.0.0.1:4222 tel {PHONE}") == (
        "instance 3f2a at 127.0.0.1:4222 tel [phone]"
    )
    assert mask_personal_data("13800138000 20261206 2026-12-06 1048576 bytes") == (
        "[phone] 20261206 2026-12-06 1048576 bytes"
    )
    assert mask_personal_data("call (010) 6552-8888 or +44 20 7946 0958") == "call ([phone] or [phone]"


def test_a_warning_that_quotes_an_address_is_masked_for_every_logger(
    monkeypatch: pytest.MonkeyPatch, restore_logging: None
) -> None:
    captured = io.StringIO()
    monkeypatch.setattr("sys.stderr", captured)
    configure_logging("crm", "INFO", "json")
    try:
        raise ValueError(f"invalid literal for int(): {EMAIL!r}")
    except ValueError:
        logging.getLogger("consultflow.crm").warning("job failed: %s", f"{EMAIL} / {PHONE}", exc_info=True)
    output = captured.getvalue()
    assert "job failed: [e-mail] / [phone]" in output
    assert EMAIL not in output and "138 0013" not in output


def test_a_huge_value_in_a_log_message_is_clipped(
    monkeypatch: pytest.MonkeyPatch, restore_logging: None
) -> None:
    captured = io.StringIO()
    monkeypatch.setattr("sys.stderr", captured)
    configure_logging("orchestrator", "INFO", "json")
    logging.getLogger("consultflow.test").warning("refused %s", "x" * 1_000_000)
    line = json.loads(captured.getvalue().splitlines()[-1])
    assert len(line["message"]) < 5000 and line["message"].endswith("(1000008 characters)")
