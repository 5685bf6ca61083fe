"""CPU of writing stored instance states again, in-process.

`.venv/bin/python scripts/state_write_bench.py DB [REPEATS]`:

DB is an orchestrator SQLite database, e.g. the one a `make bench-system` run leaves under its pytest
temp dir (.../system/orchestrator.db). Each instance is loaded from its state, written once (the first
write after a load builds the memo), then written again REPEATS times unchanged — the part of every step's
write that does not depend on what the step changed. Prints mean CPU milliseconds per instance (and for
the largest state), with Spiff's own serialization beside it. Process CPU time, so other load on the
machine disturbs it less than wall-clock figures (docs/performance.md).
"""

from __future__ import annotations

import json
import sqlite3
import sys
import time
from collections.abc import Callable
from functools import partial

from consultflow.orchestrator import engine
from consultflow.platform.scripting import ScriptEngine


def cpu_ms(action: Callable[[], object], repeats: int) -> float:
    started = time.process_time()
    for _ in range(repeats):
        action()
    return (time.process_time() - started) / repeats * 1000


def main(path: str, repeats: int) -> None:
    db = sqlite3.connect(path)
    specs: dict[str, engine.ProcessSpecs] = {}
    script_engine = ScriptEngine()
    rows = db.execute("SELECT definition_id, state FROM instances ORDER BY length(state) DESC").fetchall()
    totals = {"load": 0.0, "first write": 0.0, "write again": 0.0, "Spiff's own": 0.0}
    largest: dict[str, float] = {}
    for definition_id, state in rows:
        if definition_id not in specs:
            hashes, process_id = db.execute(
                "SELECT resources, process_id FROM definitions WHERE definition_id = ?", (definition_id,)
            ).fetchone()
            content = "SELECT content FROM resources WHERE content_hash = ?"
            resources = {
                name: db.execute(content, (digest,)).fetchone()[0]
                for name, digest in json.loads(hashes).items()
            }
            specs[definition_id] = engine.parse_resources(resources, checks=None)[process_id]
        started = time.process_time()
        workflow = engine.load_state(state, specs[definition_id], script_engine)
        figures = {"load": (time.process_time() - started) * 1000}
        write = partial(engine.dump_state, workflow)
        figures["first write"] = cpu_ms(write, 1)
        figures["write again"] = cpu_ms(write, repeats)
        figures["Spiff's own"] = cpu_ms(partial(engine.SERIALIZER.serialize_json, workflow), 3)
        if json.loads(engine.dump_state(workflow)) != json.loads(engine.SERIALIZER.serialize_json(workflow)):
            raise SystemExit(f"the memoised write differs from Spiff's own for a state of {definition_id}")
        for key, value in figures.items():
            totals[key] += value
        largest = largest or figures
    count = len(rows)
    mean_kb = sum(len(state) for _, state in rows) / count / 1024
    largest_kb = len(rows[0][1]) / 1024
    print(f"{count} states, mean {mean_kb:.0f} KB, largest {largest_kb:.0f} KB; CPU ms per state:")
    for key, value in totals.items():
        print(f"  {key.ljust(12)}  mean {value / count:6.2f}   largest {largest[key]:6.2f}")


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 20)
