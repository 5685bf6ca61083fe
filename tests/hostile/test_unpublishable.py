"""Hostile: an instance whose job message can never be published (its variables, together, exceed the
largest message NATS and the JOBS stream take). It becomes an incident naming the limit, and the relay
goes on: other instances' jobs are published and done while the hostile one waits (no head-of-line
blocking, no retry loop). Real NATS, the orchestrator and crm in-process, default limits."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from consultflow.api.orchestrator.v1 import orchestrator_pb2 as pb
from tests.support.bpmn_builder import Task, bpmn, bpmn_folder, line, service_task
from tests.support.liveness import answered_while
from tests.support.system import InProcessSystem, in_process_system

INQUIRY = {
    "channel": "email",
    "client_name": "Hostile Holdings",
    "contact_name": "Mr Big",
    "contact_email": "big@example.cn",
    "question": "How large may a job be?",
}
# A script makes variables each below max_variable_bytes (1 MiB) that together exceed the 1 MiB message
# limit; the service task after it carries them all in its job message.
CASES = {
    "two_large_variables": "s = 'x' * 100000\na = s + s + s + s + s + s\nb = a + ''",
    "three_medium_variables": "s = 'y' * 100000\na = s + s + s + s\nb = a + 'b'\nc = a + 'c'",
}
PARAMS = {name: name for name in INQUIRY}


def diagram(process_id: str, script: str) -> bytes:
    return bpmn(
        process_id,
        f'<startEvent id="s"/><scriptTask id="grow"><script>{script}</script></scriptTask>'
        + service_task("record_inquiry", "crm.record_inquiry", **PARAMS)
        + '<endEvent id="e"/>',
        "s -> grow\ngrow -> record_inquiry\nrecord_inquiry -> e",
    )


@pytest.fixture
def system(tmp_path: Path, nats_url: str) -> Iterator[InProcessSystem]:
    diagrams = {case: diagram(case, script) for case, script in CASES.items()}
    folder = bpmn_folder(
        tmp_path, {**diagrams, "skeleton": line("skeleton", [Task("r", "crm.record_inquiry", PARAMS)])}
    )
    with in_process_system(tmp_path, nats_url, ["crm"], bpmn_dir=folder) as running:
        yield running


def _start(system: InProcessSystem, process_id: str) -> str:
    created = system.orchestrator.CreateInstance(
        pb.CreateInstanceRequest(process_id=process_id, variables_json=json.dumps(INQUIRY))
    )
    return created.instance_id


@pytest.mark.parametrize("case", sorted(CASES))
def test_an_unpublishable_job_is_an_incident_and_others_go_on(system: InProcessSystem, case: str) -> None:
    hostile = _start(system, case)
    instance = system.wait_for(hostile, lambda i: len(i.incidents) > 0)
    [incident] = instance.incidents
    assert "stream_max_message_bytes" in incident.message and "cannot be published" in incident.message
    assert instance.state == pb.INSTANCE_STATE_ACTIVE, "it waits visibly: nothing retries it in a loop"

    def still_stuck() -> bool:
        get = pb.GetInstanceRequest(instance_id=hostile)
        return system.orchestrator.GetInstance(get).state == pb.INSTANCE_STATE_ACTIVE

    done = answered_while(
        still_stuck,
        lambda: system.wait_completed(_start(system, "skeleton")),
        bound=15.0,
        what="another instance's job, start to completion",
    )
    assert json.loads(done.variables_json)["inquiry_id"]
