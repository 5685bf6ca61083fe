"""The limits that keep one diagram, instance or script from stopping the engine for everyone.

One place names them all: their defaults, the environment variable that changes each, and what happens when
one is hit (docs/limits.md). A limit hit at deploy time refuses the deploy naming the element; at run time
it is an incident naming the limit, never a giant row, a crash or an INTERNAL error.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields
from typing import Any


@dataclass(frozen=True)
class Limits:
    """Every limit with its default; `from_env` reads `CONSULTFLOW_LIMIT_<FIELD NAME IN CAPITALS>`."""

    # scripts, conditions and expressions (platform/scripting.py, platform/sandbox.py)
    script_cpu_ms: int = 1000
    """CPU time one script or expression may use (enforced by the OS in a sandbox process)."""
    script_memory_mb: int = 256
    """Address space of a sandbox process; a script that needs more fails with an incident."""
    script_workers: int = 2
    """Warm sandbox processes that run the scripts which are not trivially safe."""
    max_string_length: int = 1_000_000
    """The longest string or bytes a script may produce."""
    max_collection_items: int = 100_000
    """The most items a list, tuple, range or repetition a script builds may hold."""
    max_script_length: int = 20_000
    """The longest script or expression source (characters) a diagram may carry (deploy time): compiling
    takes about 1 s per 100,000 characters, and the first run after a restart compiles inside a step."""
    max_task_candidates: int = 1000
    """The most candidate users an assignee or candidateUsers expression may name for one user task."""
    max_user_name_length: int = 256
    """The longest user name an assignee or candidateUsers expression may yield."""
    max_int_bits: int = 4096
    """The largest integer (in bits, about 1,233 decimal digits) a script may produce."""
    max_variable_bytes: int = 1_048_576
    """A single variable's size as JSON, whoever sets it (script, worker, person, message)."""
    max_instance_state_bytes: int = 16_777_216
    """An instance's stored state (its tasks and their data) as JSON."""

    # the engine (orchestrator/engine.py, orchestrator/step.py)
    max_tasks_per_step: int = 200
    """Engine tasks one transaction runs before the rest continues in a later transaction."""
    max_step_engine_ms: int = 250
    """Engine time one transaction may spend before the rest continues in a later transaction."""
    max_instance_tasks: int = 10_000
    """Tasks an instance may hold in total (like a history length limit)."""
    max_call_depth: int = 16
    """Call activities nested inside each other."""
    max_fan_out: int = 1000
    """Branches one gateway or multi-instance activity may start."""
    max_path_length: int = 2000
    """Elements on one path of a process (deploy time): longer chains belong in call activities."""
    max_sub_process_depth: int = 32
    """Sub-processes nested inside each other in one diagram (deploy time)."""
    min_timer_cycle_seconds: float = 1.0
    """The shortest interval a cycle timer may repeat at, in the diagram and at run time."""
    max_timer_catch_up: int = 10
    """Missed firings a cycle timer catches up after falling behind (a restart); older ones are skipped."""
    step_failures_before_parking: int = 3
    """Failed attempts at one instance's step before it is parked with an incident."""

    # jobs (orchestrator/usecases/jobs.py)
    max_job_hold_seconds: float = 3600.0
    """How long one delivery of a job may be held by extending its deadline (ExtendJobDeadline); past it
    the extension is refused and the job is delivered again at its deadline, so a stuck handler cannot
    hold a job forever."""

    # requests (platform/db.py, platform/grpcserver.py)
    db_busy_timeout_ms: int = 5000
    """How long a SQLite writer waits for the write lock before the call is answered UNAVAILABLE: above the
    longest bounded step (engine time per step plus one script's budget, slowed by a busy CPU)."""
    max_queued_calls: int = 256
    """Calls a component accepts beyond its database threads; more are answered RESOURCE_EXHAUSTED."""
    max_pending_calls: int = 20_000
    """Calls gRPC holds before the server takes them; past this, gRPC itself drops some (CANCELLED)."""
    min_call_budget_ms: int = 50
    """A queued call whose deadline leaves less than this is answered UNAVAILABLE instead of started."""

    # JetStream streams (platform/messaging.py, set by the provisioner) and the outbox (platform/outbox.py)
    stream_max_message_bytes: int = 1_048_576
    """The largest message either stream accepts (nats-server's max_payload is 1 MiB too)."""
    jobs_stream_max_bytes: int = 1_073_741_824
    """Bytes of jobs not yet taken by a worker; when full, new jobs wait in their outbox (discard new)."""
    jobs_stream_max_messages: int = 1_000_000
    """Jobs not yet taken by a worker; when full, new jobs wait in their outbox (discard new)."""
    status_stream_max_bytes: int = 2_147_483_648
    """Bytes of status events kept; beyond it the oldest are dropped (discard old)."""
    status_stream_max_age_hours: float = 168.0
    """How long status events are kept (7 days); older ones are dropped."""
    outbox_publish_attempts: int = 10
    """Refused publishes of one outbox row (NATS reachable) before it is set aside as dead."""

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Limits:
        source = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = source.get(env_name(f.name))
            if raw is not None and raw.strip():
                values[f.name] = type(getattr(cls(), f.name))(raw.strip())
        return cls(**values)


def env_name(field_name: str) -> str:
    """The environment variable that sets a limit."""
    return f"CONSULTFLOW_LIMIT_{field_name.upper()}"


DEFAULT_LIMITS = Limits()
