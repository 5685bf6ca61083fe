"""Measuring tools for the full-system benchmark (tests/benchmarks/test_system_bench.py).

CPU comes from /proc (psutil is not installed): every process is charged to the component it descends
from, so the orchestrator's sandbox workers count as the orchestrator's, and a child the supervisor
restarted keeps the CPU its earlier process used up to the last sample. Latencies come from the rows the
components write anyway (no instrumentation added to the system being measured).
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine

from consultflow import COMPONENTS
from consultflow.cli.system import LocalSystem
from consultflow.orchestrator import engine
from consultflow.platform.scripting import ScriptEngine

TICKS = os.sysconf("SC_CLK_TCK")
NATS = "nats-server"


def _stat(pid: int) -> tuple[int, float] | None:
    """(parent pid, user+system CPU seconds) of a live process, None if it is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = raw[raw.rindex(")") + 2 :].split()  # after "pid (comm) "; comm may hold spaces
    return int(fields[1]), (int(fields[11]) + int(fields[12])) / TICKS


class CpuMeter:
    """Samples every process of the system twice a second and keeps each one's latest CPU time.

    A process's CPU is known up to its last sample: one that exits (a restarted child, a sandbox worker
    retired) loses at most half a second of its CPU."""

    def __init__(self, system: LocalSystem, interval: float = 0.5) -> None:
        self.system = system
        self.interval = interval
        self.seen: dict[int, tuple[str, float]] = {}  # pid -> (component, CPU seconds at last sample)
        self.baseline: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="cpu-meter", daemon=True)

    def roots(self) -> dict[int, str]:
        # a further replica (`orchestrator-2`) counts as its component
        found = {c.process.pid: c.component for c in self.system.children.values() if c.process is not None}
        if self.system.nats is not None:
            found[self.system.nats.pid] = NATS
        return found

    def sample(self) -> None:
        roots = self.roots()
        stats: dict[int, tuple[int, float]] = {}
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                stat = _stat(int(entry.name))
                if stat is not None:
                    stats[int(entry.name)] = stat
        for pid, (_, cpu) in stats.items():
            owner = _owner(pid, roots, stats)
            if owner is not None:
                self.seen[pid] = (owner, cpu)

    def totals(self) -> dict[str, float]:
        sums: dict[str, float] = {}
        for owner, cpu in self.seen.values():
            sums[owner] = sums.get(owner, 0.0) + cpu
        return sums

    def start(self) -> None:
        self.sample()
        self.baseline = self.totals()
        self._thread.start()

    def mark(self) -> dict[str, float]:
        """CPU seconds each component used since `start` or the last mark; counting goes on from here."""
        self.sample()
        now = self.totals()
        used = {k: v - self.baseline.get(k, 0.0) for k, v in now.items()}
        self.baseline = now
        return used

    def stop(self) -> dict[str, float]:
        """CPU seconds each component used since `start` or the last mark."""
        self._stop.set()
        self._thread.join()
        return self.mark()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()


def _owner(pid: int, roots: Mapping[int, str], stats: Mapping[int, tuple[int, float]]) -> str | None:
    for _ in range(8):  # a component's sandbox workers are its children (or grandchildren)
        if pid in roots:
            return roots[pid]
        parent = stats.get(pid)
        if parent is None or parent[0] <= 1:
            return None
        pid = parent[0]
    return None


# ------------------------------------------------------------------------------------------- databases


def component_urls(system: LocalSystem, overrides: Mapping[str, str]) -> dict[str, str]:
    """Each component's database URL as its settings pick it (platform/settings.py)."""
    return {
        name: overrides.get(name) or f"sqlite:///{system.data_dir / (name + '.db')}"
        for name in system.components
    }


def component_databases(kind: str) -> Iterator[dict[str, str]]:
    """The components' database URLs for a fixture's `sqlite` or `postgres` parameter: {} (each its SQLite
    file), or a fresh schema per component on CONSULTFLOW_TEST_POSTGRES_URL (skipped when it is not set)."""
    if kind == "sqlite":
        yield {}
        return
    base = os.environ.get("CONSULTFLOW_TEST_POSTGRES_URL", "")
    if not base:
        pytest.skip("PostgreSQL not configured: set CONSULTFLOW_TEST_POSTGRES_URL")
    with postgres_schemas(base, COMPONENTS) as urls:
        yield urls


@contextmanager
def postgres_schemas(base: str, names: tuple[str, ...]) -> Iterator[dict[str, str]]:
    """One fresh schema per component (as tests/conftest.py does for one), dropped afterwards."""
    admin = create_engine(base)
    tag = os.urandom(4).hex()
    schemas = {name: f"bench_{tag}_{name}" for name in names}
    separator = "&" if "?" in base else "?"
    with admin.begin() as connection:
        for schema in schemas.values():
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield {n: f"{base}{separator}options=-csearch_path%3D{s}" for n, s in schemas.items()}
    finally:
        with admin.begin() as connection:
            for schema in schemas.values():
                connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def _utc(value: Any) -> datetime:
    """SQLite gives naive datetimes (stored as UTC), PostgreSQL aware ones."""
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    assert isinstance(moment, datetime)
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _rows(db: Engine, query: str, **params: Any) -> list[Any]:
    with db.connect() as connection:
        return list(connection.execute(text(query), params))


@dataclass
class Records:
    """What the run left in the databases, read after it ended."""

    job_created: dict[str, datetime] = field(default_factory=dict)
    job_completed: dict[str, datetime] = field(default_factory=dict)  # jobs.updated_at of completed jobs
    job_published: dict[str, datetime] = field(default_factory=dict)  # first outbox sent_at per job
    job_processed: dict[str, datetime] = field(default_factory=dict)  # processed_jobs.processed_at
    task_latency: list[float] = field(default_factory=list)  # user task created → completed, seconds
    steps: int = 0  # sum of instances.revision: one per committed orchestrated step
    engagement_steps: float = 0.0  # mean revision of the engagement instances
    elements_completed: int = 0
    instances: int = 0
    engagement_resources: dict[str, bytes] = field(default_factory=dict)
    sample_variables: dict[str, Any] = field(default_factory=dict)
    state_written: tuple[float, int] = (0.0, 0)  # the engagements' state rows at the end: mean, max chars
    state_whole: tuple[float, int] = (0.0, 0)  # the same with the finished subprocesses stored apart


def read_records(urls: Mapping[str, str], since: datetime) -> Records:
    found = Records()
    orchestrator = create_engine(urls["orchestrator"])
    try:
        _read_orchestrator(orchestrator, since, found)
    finally:
        orchestrator.dispose()
    for url in urls.values():
        db = create_engine(url)
        try:
            for key, at in _rows(db, "SELECT job_key, processed_at FROM processed_jobs"):
                found.job_processed[key] = min(_utc(at), found.job_processed.get(key, _utc(at)))
        finally:
            db.dispose()
    return found


def _read_orchestrator(db: Engine, since: datetime, found: Records) -> None:
    for key, status, created, updated in _rows(
        db, "SELECT job_key, status, created_at, updated_at FROM jobs"
    ):
        if _utc(created) >= since:
            found.job_created[key] = _utc(created)
            if status == "COMPLETED":
                found.job_completed[key] = _utc(updated)
    for msg_id, sent in _rows(
        db, "SELECT msg_id, sent_at FROM outbox WHERE subject LIKE 'jobs.%' AND sent_at IS NOT NULL"
    ):
        key = str(msg_id).split(":", 1)[0]
        found.job_published[key] = min(_utc(sent), found.job_published.get(key, _utc(sent)))
    for created, completed in _rows(
        db, "SELECT created_at, completed_at FROM user_tasks WHERE completed_at IS NOT NULL"
    ):
        if _utc(created) >= since:
            found.task_latency.append((_utc(completed) - _utc(created)).total_seconds())
    for revision, count in _rows(db, "SELECT COALESCE(SUM(revision), 0), COUNT(*) FROM instances"):
        found.steps, found.instances = int(revision), int(count)
    found.engagement_steps = float(
        _rows(db, "SELECT COALESCE(AVG(revision), 0) FROM instances WHERE process_id = 'engagement'")[0][0]
    )
    found.state_written, found.state_whole = _state_sizes(db)
    found.elements_completed = int(
        _rows(db, "SELECT COUNT(*) FROM history WHERE type = 'element.completed'")[0][0]
    )
    definition = _rows(
        db,
        "SELECT resources FROM definitions WHERE process_id = 'engagement' ORDER BY version DESC LIMIT 1",
    )[0][0]
    for name, digest in json.loads(definition).items():
        content = _rows(db, "SELECT content FROM resources WHERE content_hash = :h", h=digest)[0][0]
        found.engagement_resources[name] = bytes(content)
    variables = _rows(
        db,
        "SELECT variables FROM instances WHERE process_id = 'engagement'"
        " AND business_key LIKE 'DEMO-ONSITE-%' ORDER BY revision DESC LIMIT 1",
    )
    found.sample_variables = json.loads(variables[0][0]) if variables else {}


def _state_sizes(db: Engine) -> tuple[tuple[float, int], tuple[float, int]]:
    """What a step of an engagement writes as its state at the end of the run, and the whole state."""
    where = "FROM instances WHERE process_id = 'engagement'"
    written, whole = "LENGTH(state)", "LENGTH(state) + parts_bytes"
    [(mean, top, whole_mean, whole_top)] = _rows(
        db, f"SELECT AVG({written}), MAX({written}), AVG({whole}), MAX({whole}) {where}"
    )
    return (float(mean or 0), int(top or 0)), (float(whole_mean or 0), int(whole_top or 0))


def job_latencies(created: Mapping[str, datetime], later: Mapping[str, datetime]) -> list[float]:
    """Seconds from each job's creation to a later moment of the same job (jobs that have both)."""
    return [(later[k] - at).total_seconds() for k, at in created.items() if k in later]


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


# --------------------------------------------------------------------------------------- raw SpiffWorkflow


def _waiting_event(workflow: Any, found: engine.Snapshot) -> Any:
    """The first intermediate message or timer event the instance waits at (boundary events excepted:
    they would cut the story short)."""
    for task_id in [m.task_id for m in found.messages] + [t.task_id for t in found.timers]:
        task = engine.find_task(workflow, task_id)
        if task is not None and type(task.task_spec).__name__ != "BoundaryEvent":
            return task
    return None


def raw_step_us(
    resources: Mapping[str, bytes], variables: Mapping[str, Any], walk: int, seconds: float = 5.0
) -> tuple[float, int]:
    """µs per raw SpiffWorkflow step on the engagement's own diagrams, without our host: load the state,
    complete the next open user or service task (else the first message or timer it waits at) with an
    ended engagement's variables, run the engine, save the state — what one orchestrated step does
    minus the database, messages and checks. Each walk stops after `walk` steps (as many as an
    orchestrated engagement took: the state, and so the step's cost, grows along the way) and starts
    again from a new instance."""
    specs = engine.parse_resources(dict(resources), checks=None)["engagement"]
    script_engine = ScriptEngine()
    _walks(specs, script_engine, variables, 1.0, walk)  # warm-up: sandbox workers start, caches fill
    measured, steps = _walks(specs, script_engine, variables, seconds, walk)
    return measured / max(steps, 1) * 1e6, steps


def _walks(
    specs: engine.ProcessSpecs,
    script_engine: ScriptEngine,
    variables: Mapping[str, Any],
    seconds: float,
    walk: int,
) -> tuple[float, int]:
    steps = 0
    measured = 0.0
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        workflow = engine.new_workflow(specs, script_engine, variables)
        workflow.do_engine_steps()
        state = engine.SERIALIZER.serialize_json(workflow)  # Spiff's own, without our memo
        for _ in range(walk):
            started = time.perf_counter()
            workflow = engine.load_state(state, specs, script_engine)
            found = engine.snapshot(workflow)
            if found.user_tasks:
                task = next(iter(found.user_tasks.values()))
                task.data.update(variables)
                task.run()
            elif found.service_tasks:
                task = next(iter(found.service_tasks.values())).task
                task.data.update(variables)
                task.complete()
            else:
                waiting = _waiting_event(workflow, found)
                if waiting is None:
                    break
                waiting.data.update(variables)
                waiting.complete()  # the message arrived / the timer is due, without correlating it
            try:
                workflow.do_engine_steps()
            except Exception:  # a gateway or script the sample variables do not satisfy: walk again
                break
            state = engine.SERIALIZER.serialize_json(workflow)  # Spiff's own, without our memo
            measured += time.perf_counter() - started
            steps += 1
    return measured, steps
