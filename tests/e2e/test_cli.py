"""The `consultflow` CLI as staff and ops use it, against the running system: tables, JSON, validation
messages and exit codes scripts rely on."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from consultflow.cli.system import LocalSystem
from consultflow.demo import driver
from consultflow.demo.stories import common
from tests.support.groups import DEMO_SYSTEM
from tests.support.polling import eventually

pytestmark = DEMO_SYSTEM

CONSULTFLOW = str(Path(sys.executable).parent / "consultflow")
ROOT = Path(__file__).resolve().parents[2]
# Two business staff who are not in cli/people.toml: named with explicit roles and groups.
WANG = ("--as", "wang", "--roles", "staff", "--groups", "business")
LI = ("--as", "li", "--roles", "staff", "--groups", "business")


def cli(system: LocalSystem, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CONSULTFLOW, "--data-dir", str(system.data_dir), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def ok(system: LocalSystem, *args: str) -> str:
    done = cli(system, *args)
    assert done.returncode == 0, f"{args}: {done.returncode} {done.stderr}"
    return done.stdout


def inquiry_vars(key: str, email: str = "li@acme.example") -> list[str]:
    values = {
        "engagement_id": key,
        "channel": "email",
        "client_name": "ACME Trading",
        "client_industry": "retail",
        "contact_name": "Li Lei",
        "contact_email": email,
        "contact_phone": "",
        "question": "Can you review our supply chain?",
    }
    return [arg for name, value in values.items() for arg in ("--var", f"{name}={value}")]


def test_staff_do_their_tasks_with_the_cli(demo_system: LocalSystem) -> None:
    assert "engagement" in {d["process_id"] for d in json.loads(ok(demo_system, "definitions", "--json"))}
    assert "started engagement" in ok(
        demo_system, "start", "engagement", "--key", "CLI-1", *inquiry_vars("CLI-1")
    )
    assert "already running" in ok(
        demo_system, "start", "engagement", "--key", "CLI-1", *inquiry_vars("CLI-1")
    )

    def needs_task() -> list[dict[str, Any]]:
        tasks = json.loads(ok(demo_system, "tasks", "--group", "business", "--json"))
        return [
            t for t in tasks if t.get("business_key") == "CLI-1" and t["element_id"] == "understand_needs"
        ]

    task_id = eventually(needs_task, "the open user task", 20)[0]["user_task_id"]
    shown = ok(demo_system, "task", "show", task_id)
    assert "communication_mode" in shown and "phone, face_to_face" in shown

    unclaimed = cli(demo_system, "task", "complete", task_id, *WANG, "--set", "communication_mode=phone")
    assert unclaimed.returncode == 4 and "claim it before completing it" in unclaimed.stderr
    legal = cli(demo_system, "task", "claim", task_id, "--as", "lea")
    assert legal.returncode == 4 and "lea is not a candidate" in legal.stderr
    ops = cli(demo_system, "task", "claim", task_id)  # otto, an ops person, runs the system, not tasks
    assert ops.returncode == 4 and "needs one of the roles staff" in ops.stderr
    impostor = cli(demo_system, "task", "claim", task_id, "--as", "bella", "--roles", "staff")
    assert impostor.returncode == 4 and "not a candidate" in impostor.stderr, "groups come from the token"

    assert "assigned to wang" in ok(demo_system, "task", "claim", task_id, *WANG)
    bad = cli(demo_system, "task", "complete", task_id, *WANG, "--set", "communication_mode=telepathy")
    assert bad.returncode == 4 and "communication_mode" in bad.stderr and "telepathy" in bad.stderr
    unknown = cli(demo_system, "task", "complete", task_id, *WANG, "--set", "colour=red")
    assert unknown.returncode == 4 and "colour" in unknown.stderr
    malformed = cli(demo_system, "task", "complete", task_id, *WANG, "--set", "no-equals-sign")
    assert malformed.returncode == 2 and "NAME=VALUE" in malformed.stderr
    inbox = json.loads(ok(demo_system, "tasks", "--user", "wang", "--json"))
    assert task_id in [t["user_task_id"] for t in inbox]
    assert task_id not in [
        t["user_task_id"] for t in json.loads(ok(demo_system, "tasks", "--user", "li", "--json"))
    ]
    values = [
        "communication_mode=phone",
        "needs=Lower stock levels",
        "background=Three warehouses",
        "goals=Cut stock 20%",
    ]
    sets = [arg for value in [*values, "expected_results=A stock policy"] for arg in ("--set", value)]
    someone_else = cli(demo_system, "task", "complete", task_id, *LI, *sets)
    assert someone_else.returncode == 4 and "claimed by 'wang'" in someone_else.stderr
    assert "completed" in ok(demo_system, "task", "complete", task_id, *WANG, *sets)

    instances = json.loads(
        ok(demo_system, "instances", "--key", "CLI-1", "--process", "engagement", "--json")
    )
    assert [i["process_id"] for i in instances] == ["engagement"]
    shown = ok(demo_system, "instance", "show", instances[0]["instance_id"])
    assert "timeline:" in shown and "Understand client needs" in shown and "waiting at:" in shown
    assert "canceled" in ok(
        demo_system, "instance", "cancel", instances[0]["instance_id"], "--reason", "test over"
    )
    assert json.loads(ok(demo_system, "instance", "show", instances[0]["instance_id"], "--json"))[
        "state"
    ] == ("INSTANCE_STATE_CANCELED")
    audit = json.loads(ok(demo_system, "audit", "--key", "CLI-1", "--json"))
    who = [(e["actor"], e["action"]) for e in audit]
    assert ("wang", "usertask.claimed") in who and ("wang", "usertask.completed") in who, who
    assert ("otto", "instance.created") in who and ("otto", "instance.canceled") in who, who
    assert cli(demo_system, "audit", "--key", "CLI-1", "--as", "bella").returncode == 4, "staff do not audit"


def test_ops_commands_and_exit_codes(demo_system: LocalSystem) -> None:
    assert "unchanged engagement" in ok(demo_system, "deploy", str(ROOT / "bpmn"), "--as", "ana")
    refused = cli(demo_system, "deploy", str(ROOT / "bpmn"))  # otto runs the system; analysts deploy
    assert refused.returncode == 4 and "needs one of the roles analyst" in refused.stderr
    dropped = cli(demo_system, "message", "quotation.accepted", "--key", "NOBODY-WAITS")
    assert dropped.returncode == 3 and "dropped" in dropped.stdout
    assert cli(demo_system, "task", "show", "no-such-task").returncode == 3
    assert cli(demo_system, "instance", "show", "no-such-instance").returncode == 3

    # An inquiry crm refuses (the email is malformed) fails the engagement's first job, 2.1.2's
    # `record_inquiry`, without retries: an incident.
    ok(demo_system, "start", "engagement", "--key", "CLI-2", *inquiry_vars("CLI-2", email="not-an-email"))

    def incident() -> list[dict[str, Any]]:
        return [
            i for i in json.loads(ok(demo_system, "incidents", "--json")) if "contact_email" in i["message"]
        ]

    first = eventually(incident, "an incident", 20)[0]
    assert first["kind"] == "JOB_NO_RETRIES"
    assert "resolved" in ok(demo_system, "incident", "retry", first["incident_id"])
    again = eventually(
        lambda: [i for i in incident() if i["incident_id"] != first["incident_id"]], "a second incident", 20
    )
    assert again, "the retried job failed again and raised a new incident"
    assert cli(demo_system, "incident", "retry", first["incident_id"]).returncode == 4  # already resolved

    lines = ok(demo_system, "events", "--from-start", "--count", "3", "--json").splitlines()
    assert len(lines) == 3 and all("subject" in json.loads(line) for line in lines)


def test_a_reader_that_goes_away_is_no_error(demo_system: LocalSystem) -> None:
    """`consultflow events --from-start | head -1`: the pipe closes before the CLI writes."""
    process = subprocess.Popen(
        [CONSULTFLOW, "--data-dir", str(demo_system.data_dir), "events", "--from-start", "--count", "5"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    process.stdout.close()
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 0 and "Error" not in stderr, stderr


def test_exit_code_when_the_system_is_not_running(tmp_path: Path) -> None:
    done = subprocess.run(
        [CONSULTFLOW, "--data-dir", str(tmp_path), "tasks"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 5 and "consultflow up" in done.stderr


def test_acting_for_the_client(demo_system: LocalSystem, monkeypatch: pytest.MonkeyPatch) -> None:
    """The demo's staff take an engagement to the quote; the client's acceptance comes from the CLI."""
    monkeypatch.delitem(driver.CLIENT_ACTS, "await_quote_answer")  # the driver leaves the quote to us
    pairs = (arg.split("=", 1) for arg in inquiry_vars("CLI-3")[1::2])
    inquiry = {name: value for name, value in pairs if name != "engagement_id"}
    story = driver.Story(
        key="CLI-3", title="the quote is accepted from the CLI", inquiry=inquiry, decisions=common()
    )
    clients = driver.Clients(demo_system.endpoints())
    quote = "Wait for the client's answer to the quote"
    try:
        play = driver.Driver(clients, [story])
        play.start()
        eventually(lambda: quote in waiting(play, story), "the quotation to wait for the client", 60)

        nothing = cli(demo_system, "client", "sign", "--key", "CLI-3")
        assert nothing.returncode == 4 and "nothing to do" in nothing.stderr
        accepted = ok(demo_system, "client", "accept-quote", "--key", "CLI-3", "--name", "Li Lei")
        assert "the client accepts the quote" in accepted

        eventually(lambda: quote not in waiting(play, story), "the quotation to be answered", 30)
        assert not story.finished, f"the engagement goes on past the quote: {story.outcome}"
    finally:
        clients.close()


def waiting(play: driver.Driver, story: driver.Story) -> str:
    """Plays everyone else for one round; then where the story's engagement waits."""
    play.tick()
    return " | ".join(story.waiting)
