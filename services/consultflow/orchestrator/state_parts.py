"""An instance's state in parts: the running part in `instances.state`, each finished subprocess once in
`instance_parts`.

Most of an engagement's state is history: subprocesses that ended long ago (intake, research, every
indicator breach handled). Written inline, they were written again by every step — megabytes per step
once the monitoring timers had started a few hundred breach subprocesses, and on SQLite, where one writer
holds the lock, slower steps let more timers fire, which grew the states further (docs/performance.md).
Here a step writes a finished subprocess once, when it ends (again only when a reset or a migration
changes it, and deletes it when one removes it); the state names it by its id (`state_memo.STORED_APART`).

Both are written by the step's one transaction, under the instance's revision, so a state and the parts
it names are committed together or not at all. The live workflow remembers which parts are stored
(`STORED_ATTRIBUTE`); the host drops a workflow whose step did not commit, so that memory never runs
ahead of the database. States written before the parts existed hold their subprocesses inline and load
as they are; their next step moves the finished ones out.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
from sqlalchemy import Connection, bindparam, delete, insert, select

from consultflow.orchestrator import engine, state_memo
from consultflow.orchestrator.orm import INSTANCE_PARTS

STORED_ATTRIBUTE = "_consultflow_stored_parts"
"""On a live workflow: the JSON of each part stored for it, by subprocess id, as its last commit left them."""

READ_PARTS = select(INSTANCE_PARTS.c.part_id, INSTANCE_PARTS.c.content).where(
    INSTANCE_PARTS.c.instance_id == bindparam("p_instance_id")
)
INSERT_PART = insert(INSTANCE_PARTS)
DELETE_PARTS = delete(INSTANCE_PARTS).where(
    INSTANCE_PARTS.c.instance_id == bindparam("p_instance_id"),
    INSTANCE_PARTS.c.part_id.in_(bindparam("p_part_ids", expanding=True)),
)

PartsReader = Callable[[], Mapping[str, str]]
NAMED = f'"{state_memo.STORED_APART}"'
"""In a state's JSON when it names a part (or when some data holds that string: the parts are then read for
nothing; `engine.load_state` looks only where subprocesses are)."""


@dataclass(frozen=True)
class Dumped:
    """What a step writes of a workflow's state."""

    state: str
    """The running part, naming the finished subprocesses."""
    written: dict[str, str]
    """Parts new or changed since the last commit, by subprocess id."""
    replaced: list[str]
    """Of those, the ones stored before (a reset or a migration changed them)."""
    dropped: list[str]
    """Parts stored before that the state no longer names."""
    parts_bytes: int
    """The JSON size of all parts the state names (ASCII: Spiff's JSON escapes the rest)."""


def read(conn: Connection, instance_id: str) -> dict[str, str]:
    """The stored parts of an instance, by subprocess id."""
    rows = conn.execute(READ_PARTS, {"p_instance_id": instance_id})
    return {row.part_id: row.content for row in rows}


def load(state: str, parts: PartsReader, specs: engine.ProcessSpecs, script_engine: Any) -> BpmnWorkflow:
    """The workflow of a stored state; its parts are read only if it names any."""
    stored = dict(parts()) if NAMED in state else {}
    workflow = engine.load_state(state, specs, script_engine, stored)
    setattr(workflow, STORED_ATTRIBUTE, stored)
    return workflow


def load_stored(
    conn: Connection, instance_id: str, state: str, specs: engine.ProcessSpecs, script_engine: Any
) -> BpmnWorkflow:
    """`load` with the parts read from `conn`: in the transaction that read `state`, so they agree."""
    return load(state, lambda: read(conn, instance_id), specs, script_engine)


def dump(workflow: BpmnWorkflow) -> Dumped:
    """The state to write, and how the stored parts change; remembered as stored from here on (the host
    drops the workflow if the step does not commit)."""
    written_state = engine.dump_state_apart(workflow)
    stored: dict[str, str] = getattr(workflow, STORED_ATTRIBUTE, {})
    apart = written_state.apart
    written = {
        part_id: text
        for part_id, text in apart.items()
        if (known := stored.get(part_id)) is not text and known != text
    }
    replaced = [part_id for part_id in written if part_id in stored]
    dropped = [part_id for part_id in stored if part_id not in apart]
    setattr(workflow, STORED_ATTRIBUTE, apart)
    size = sum(len(text) for text in apart.values())
    return Dumped(written_state.state, written, replaced, dropped, size)


def write(conn: Connection, instance_id: str, dumped: Dumped) -> None:
    """Writes the parts a dump changed, in the step's transaction."""
    if dumped.replaced or dumped.dropped:
        part_ids = dumped.replaced + dumped.dropped
        conn.execute(DELETE_PARTS, {"p_instance_id": instance_id, "p_part_ids": part_ids})
    if dumped.written:
        conn.execute(
            INSERT_PART,
            [
                {"instance_id": instance_id, "part_id": part_id, "content": text}
                for part_id, text in dumped.written.items()
            ],
        )
