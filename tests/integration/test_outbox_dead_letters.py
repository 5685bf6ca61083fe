"""Outbox rows that can never be published are set aside, not retried forever, on a real nats-server:
too large, a subject no stream or no permission allows, a publish the stream refuses every time. The rows
after them still go out (no head-of-line blocking); a NATS that is away is only ever retried."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nats
import pytest
from sqlalchemy import select

from consultflow.api.orchestrator.v1 import orchestrator_pb2 as pb
from consultflow.cli.main import main
from consultflow.platform.db import Database, UnitOfWork, migrate
from consultflow.platform.limits import Limits
from consultflow.platform.messaging import connect
from consultflow.platform.outbox import DeadLetter, OutboxRelay
from consultflow.platform.tables import outbox
from tests.integration.test_skeleton_flow import INQUIRY, SKELETON
from tests.support.bpmn_builder import bpmn_folder
from tests.support.nats import nats_server
from tests.support.system import in_process_system


def _db(url: str) -> Database:
    db = Database(url)
    migrate(db, "crm")
    return db


def _rows(db: Database) -> dict[str, tuple[bool, bool, int, str]]:
    """msg_id → (sent, dead, attempts, last_error)."""
    with db.read() as session:
        return {
            r.msg_id: (r.sent_at is not None, r.dead_at is not None, r.attempts, r.last_error or "")
            for r in session.execute(select(outbox))
        }


def _write(db: Database, *rows: tuple[str, str, bytes, dict[str, str] | None]) -> None:
    with UnitOfWork(db, "crm") as uow:
        for subject, msg_id, payload, headers in rows:
            uow.publish(subject, msg_id, payload, headers)
        uow.commit()


def _flush(db: Database, url: str, publisher: str | None, limits: Limits, times: int = 1) -> list[DeadLetter]:
    dead: list[DeadLetter] = []

    async def run() -> None:
        nc, js = await connect(url, "test")
        executor = ThreadPoolExecutor(2)
        relay = OutboxRelay(db, js, executor, nc=nc, publisher=publisher, limits=limits)
        relay.on_dead_letter = dead.append
        for _ in range(times):
            await relay.flush_once()
        await nc.close()
        executor.shutdown()

    asyncio.run(run())
    return dead


def test_what_can_never_be_published_is_set_aside_at_once(
    database_url: str, nats_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    db = _db(database_url)
    _write(
        db,
        ("status.crm.a.recorded", "before", b"ok", None),
        ("status.crm.a.recorded", "too-large", b"x" * 2_000_000, None),
        ("status.contracts.a.recorded", "not-mine", b"ok", None),
        ("elsewhere.a", "no-stream", b"ok", None),
        ("status.crm.a.recorded", "after", b"ok", None),
    )
    with caplog.at_level(logging.ERROR, logger="consultflow.platform.outbox"):
        dead = _flush(db, nats_url, "crm", Limits())
    rows = _rows(db)
    assert rows["before"][:2] == (True, False) and rows["after"][:2] == (True, False), "the others went out"
    assert {d.msg_id for d in dead} == {"too-large", "not-mine", "no-stream"}
    assert rows["too-large"][1] and "2000000 bytes exceeds" in rows["too-large"][3]
    assert rows["not-mine"][1] and "may not publish to status.contracts" in rows["not-mine"][3]
    assert rows["no-stream"][1] and "no stream takes" in rows["no-stream"][3]
    assert sum("set aside" in r.message for r in caplog.records if r.levelno == logging.ERROR) == 3
    # set aside for good: a later flush leaves them alone
    assert _flush(db, nats_url, "crm", Limits()) == []
    assert all(r[1] for k, r in _rows(db).items() if k not in ("before", "after"))
    db.dispose()


def test_a_publish_refused_every_time_is_set_aside_after_the_attempts(
    database_url: str, nats_url: str
) -> None:
    """JetStream refuses this message on every try (its expected last sequence never matches)."""
    db = _db(database_url)
    _write(
        db,
        ("status.crm.a.recorded", "refused", b"ok", {"Nats-Expected-Last-Sequence": "999"}),
        ("status.crm.a.recorded", "fine", b"ok", None),
    )
    limits = Limits(outbox_publish_attempts=3)
    dead = _flush(db, nats_url, "crm", limits)
    rows = _rows(db)
    assert rows["fine"][:2] == (True, False)
    assert rows["refused"][:3] == (False, False, 1), "counted once, held back, not dead yet"
    deadline = time.monotonic() + 30
    while not dead:
        assert time.monotonic() < deadline, _rows(db)
        time.sleep(0.3)
        dead = _flush(db, nats_url, "crm", limits)
    assert [d.msg_id for d in dead] == ["refused"]
    sent, is_dead, attempts, reason = _rows(db)["refused"]
    assert (sent, is_dead, attempts) == (False, True, 3)
    assert "refused 3 times" in reason and "wrong last sequence" in reason.lower()
    db.dispose()


def test_nats_away_is_retried_and_never_set_aside(database_url: str, tmp_path: Path) -> None:
    db = _db(database_url)
    _write(db, ("status.crm.a.recorded", "m", b"ok", None))
    limits = Limits(outbox_publish_attempts=1)

    async def run(url: str, server: contextlib.ExitStack) -> None:
        nc = await nats.connect(url, max_reconnect_attempts=-1, reconnect_time_wait=0.2)
        js = nc.jetstream(timeout=0.5)
        executor = ThreadPoolExecutor(2)
        relay = OutboxRelay(db, js, executor, nc=nc, publisher="crm", limits=limits)
        server.close()  # the server is gone: every flush fails, none counts
        for _ in range(3):
            assert (await relay.flush_once())[0] == 0
        with contextlib.suppress(ConnectionError):
            await nc.close()
        executor.shutdown()

    with contextlib.ExitStack() as server:
        url = server.enter_context(nats_server(tmp_path / "nats"))
        asyncio.run(run(url, server))
    assert _rows(db)["m"] == (False, False, 0, "")
    db.dispose()


def test_a_job_message_too_large_becomes_an_incident_on_its_instance(tmp_path: Path, nats_url: str) -> None:
    """The orchestrator's dead job message is an incident on the instance (no retry loop, nothing hidden),
    while the next instance's job is published and done."""
    folder = bpmn_folder(tmp_path, {"skeleton": SKELETON})
    small = Limits(stream_max_message_bytes=20_000)
    with in_process_system(tmp_path, nats_url, ["crm"], bpmn_dir=folder, limits=small) as system:
        stuck = system.orchestrator.CreateInstance(
            pb.CreateInstanceRequest(
                process_id="skeleton", variables_json=json.dumps({**INQUIRY, "notes": "n" * 30_000})
            )
        )
        fine = system.orchestrator.CreateInstance(
            pb.CreateInstanceRequest(process_id="skeleton", variables_json=json.dumps(INQUIRY))
        )
        system.wait_completed(fine.instance_id)
        instance = system.wait_for(stuck.instance_id, lambda i: len(i.incidents) > 0)
        assert instance.state == pb.INSTANCE_STATE_ACTIVE
        [incident] = instance.incidents
        assert "cannot be published" in incident.message and "exceeds the largest message" in incident.message


def _cli(data_dir: Path, *args: str) -> int:
    with pytest.raises(SystemExit) as exited:
        main(["--data-dir", str(data_dir), *args])
    return int(exited.value.code or 0)


def test_consultflow_outbox_lists_and_requeues(
    tmp_path: Path, nats_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    db = _db(f"sqlite:///{tmp_path / 'crm.db'}")
    _write(db, ("status.crm.a.recorded", "big", b"x" * 2_000_000, None))
    _flush(db, nats_url, "crm", Limits())
    assert _cli(tmp_path, "outbox") == 0
    listed = capsys.readouterr().out
    assert "crm:1 " in listed and "status.crm.a.recorded  2000000 bytes" in listed, listed
    assert _cli(tmp_path, "outbox", "--requeue", "crm:1") == 0
    assert _rows(db)["big"][:3] == (False, False, 0), "back with its relay, counted afresh"
    assert _cli(tmp_path, "outbox", "--requeue", "crm:1") == 3
    db.dispose()


def test_a_job_result_the_orchestrator_refuses_becomes_an_incident_not_a_retry_loop(
    tmp_path: Path, nats_url: str
) -> None:
    """Sending a refused result again would be refused forever: the worker reports the job failed without
    retries, so it waits as an incident naming why, and the job message is done."""
    folder = bpmn_folder(tmp_path, {"skeleton": SKELETON})
    small = Limits(max_variable_bytes=30)  # the inputs below fit; crm's ids (36-character UUIDs) do not
    with in_process_system(tmp_path, nats_url, ["crm"], bpmn_dir=folder, limits=small) as system:
        created = system.orchestrator.CreateInstance(
            pb.CreateInstanceRequest(
                process_id="skeleton", variables_json=json.dumps({**INQUIRY, "question": "Help?"})
            )
        )
        instance = system.wait_for(created.instance_id, lambda i: len(i.incidents) > 0)
    [incident] = instance.incidents
    assert instance.state == pb.INSTANCE_STATE_ACTIVE
    assert "refused the job's result" in incident.message and "max_variable_bytes" in incident.message
