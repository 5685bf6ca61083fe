"""A finished subprocess is stored once, in a row of its own (state_parts.py): later steps leave it alone,
a restarted orchestrator loads it back, states written before the parts existed still run, and a step
that does not commit leaves neither its state nor its parts (nor a memory of them) behind."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from alembic import command
from sqlalchemy import delete, event, select, update

from consultflow.orchestrator import host, state_memo
from consultflow.orchestrator.orm import Instance, InstancePart
from consultflow.platform.db import alembic_config
from consultflow.platform.errors import ResourceExhausted
from consultflow.platform.limits import Limits
from tests.support.bpmn_builder import bpmn
from tests.support.orchestrator_harness import Harness

DIAGRAM = bpmn(
    "p",
    '<startEvent id="s"/><userTask id="first"/>'
    '<subProcess id="inner"><startEvent id="is"/><userTask id="inside"/><endEvent id="ie"/>'
    '<sequenceFlow id="if1" sourceRef="is" targetRef="inside"/>'
    '<sequenceFlow id="if2" sourceRef="inside" targetRef="ie"/></subProcess>'
    '<userTask id="last"/><userTask id="after"/><endEvent id="e"/>',
    "s -> first\nfirst -> inner\ninner -> last\nlast -> after\nafter -> e",
)


@pytest.fixture
def db_url(database_url: str) -> str:
    return database_url


@pytest.fixture
def h(db_url: str) -> Iterator[Harness]:
    harness = Harness(db_url)
    harness.deploy(p=DIAGRAM)
    yield harness
    harness.close()


def restarted(db_url: str) -> Harness:
    """Another orchestrator on the same database: nothing cached."""
    return Harness(db_url)


def stored(h: Harness, instance_id: str) -> tuple[dict[str, Any], dict[str, str], int]:
    """The instance's state, its parts and its parts_bytes as the database holds them."""
    with h.db.read() as session:
        row = session.get(Instance, instance_id)
        assert row is not None
        parts = session.execute(
            select(InstancePart.part_id, InstancePart.content).where(InstancePart.instance_id == instance_id)
        )
        return json.loads(row.state), {p.part_id: p.content for p in parts}, row.parts_bytes


def statements_on_parts(h: Harness) -> list[str]:
    """Collects, from now on, the SQL statements that touch instance_parts."""
    seen: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if "instance_parts" in statement:
            seen.append(statement.split()[0])

    event.listen(h.db.engine, "before_cursor_execute", record)
    return seen


def at_last(h: Harness) -> str:
    instance_id = h.start("p")
    h.submit("first", instance_id, a=1)
    h.submit("inside", instance_id, b=[1, 2, 3])
    return instance_id


def test_a_finished_subprocess_is_written_once_and_a_restarted_orchestrator_loads_it(
    h: Harness, db_url: str
) -> None:
    instance_id = at_last(h)
    state, parts, parts_bytes = stored(h, instance_id)
    [(part_id, content)] = parts.items()
    assert state["subprocesses"] == {part_id: state_memo.STORED_APART}
    assert json.loads(content)["completed"] is True
    assert parts_bytes == len(content)

    touched = statements_on_parts(h)
    h.submit("last", instance_id, c="x")
    assert touched == [], "a later step neither reads nor writes a stored part"
    assert stored(h, instance_id)[1] == parts

    other = restarted(db_url)
    try:
        touched = statements_on_parts(other)
        other.submit("after", instance_id)
        assert touched == ["SELECT"], "loaded with its parts, nothing written again"
        assert other.status(instance_id) == "COMPLETED"
        variables = other.variables(instance_id)
        assert {k: variables.get(k) for k in "abc"} == {"a": 1, "b": [1, 2, 3], "c": "x"}
    finally:
        other.close()


def test_a_state_stored_with_its_subprocesses_inline_runs_on_and_moves_them_out(
    h: Harness, db_url: str
) -> None:
    """A row as the orchestrator wrote it before finished subprocesses were stored apart."""
    instance_id = at_last(h)
    state, parts, _ = stored(h, instance_id)
    for part_id, content in parts.items():
        state["subprocesses"][part_id] = json.loads(content)
    with h.uow() as uow:
        uow.session.execute(
            update(Instance)
            .where(Instance.instance_id == instance_id)
            .values(state=json.dumps(state), parts_bytes=0, revision=Instance.revision + 1)
        )
        uow.session.execute(delete(InstancePart))
        uow.commit()

    other = restarted(db_url)
    try:
        other.submit("last", instance_id, c="x")
        moved, parts_after, parts_bytes = stored(other, instance_id)
        assert list(parts_after) == list(parts) and moved["subprocesses"] == dict.fromkeys(
            parts, state_memo.STORED_APART
        )
        assert parts_bytes == sum(len(c) for c in parts_after.values())
        other.submit("after", instance_id)
        assert other.status(instance_id) == "COMPLETED"
    finally:
        other.close()


def test_a_step_that_does_not_commit_leaves_no_part_and_its_retry_writes_it(
    h: Harness, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    instance_id = h.start("p")
    h.submit("first", instance_id, a=1)
    before = stored(h, instance_id)

    def fail_before_commit(name: str) -> None:
        if name == "orchestrator.step.before_commit":
            raise RuntimeError("the database went away before the commit")

    with monkeypatch.context() as patched:
        patched.setattr(host, "crash_point", fail_before_commit)
        with pytest.raises(RuntimeError, match="went away"):
            h.submit("inside", instance_id, b=[1])
    assert stored(h, instance_id) == before, "neither the state nor a part was written"

    h.submit("inside", instance_id, b=[1])  # the live workflow was dropped: this step writes the part
    state, parts, _ = stored(h, instance_id)
    assert len(parts) == 1 and list(state["subprocesses"].values()) == [state_memo.STORED_APART]
    other = restarted(db_url)
    try:
        other.submit("last", instance_id)
        other.submit("after", instance_id)
        assert other.status(instance_id) == "COMPLETED"
    finally:
        other.close()


def test_a_stored_state_over_the_size_limit_with_its_parts_is_not_loaded(h: Harness, db_url: str) -> None:
    """max_instance_state_bytes is on the whole state, wherever its pieces are stored: a running part
    well within it, with parts that take it over, is refused before it is loaded."""
    instance_id = at_last(h)
    with h.db.read() as session:
        row = session.get(Instance, instance_id)
        assert row is not None
        running, parts_bytes = len(row.state), row.parts_bytes
    assert parts_bytes > 0
    tight = Harness(db_url, limits=Limits(max_instance_state_bytes=running + parts_bytes // 2))
    try:
        with pytest.raises(ResourceExhausted, match="max_instance_state_bytes") as refused:
            tight.submit("last", instance_id)
        assert f"{running + parts_bytes:,} bytes" in str(refused.value)
    finally:
        tight.close()


def test_the_downgrade_puts_the_parts_back_into_their_states(h: Harness, db_url: str) -> None:
    """Alembic's downgrade of b8e2d5f0c419 leaves states as the orchestrator wrote them before: whole."""
    instance_id = at_last(h)
    state, parts, _ = stored(h, instance_id)
    assert parts
    with h.db.engine.begin() as connection:
        config = alembic_config("orchestrator")
        config.attributes["connection"] = connection
        command.downgrade(config, "6ffd44bfa35d")
        text = connection.execute(
            select(Instance.state).where(Instance.instance_id == instance_id)
        ).scalar_one()
    whole = json.loads(text)
    assert whole["subprocesses"] == {part_id: json.loads(content) for part_id, content in parts.items()}
    assert {k: v for k, v in whole.items() if k != "subprocesses"} == {
        k: v for k, v in state.items() if k != "subprocesses"
    }
