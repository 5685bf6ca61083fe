"""Jobs as workers see them, the registry of a service's operations, and the idempotent way one runs.

A service declares each operation where it is written, `@operations.handler("open_project", ...)` over a
plain function `(uow, job, deps) -> variables`, with its contract (clauses, inputs, outputs, BPMN errors:
platform/operation_spec.py) that the service publishes through `OperationCatalog`, and binds its
dependencies once at start (`operations.bind(deps)`). `run_job` wraps the bound handler: a job already
handled returns the stored outcome without acting again, and the outcome is recorded in the same
transaction as the handler's changes and status events. Those records are kept for a TTL, then pruned
in bounded batches (`prune_processed_jobs`).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import Executor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Generic, Literal, TypeVar

from sqlalchemy import Select, delete, insert, select
from sqlalchemy.exc import IntegrityError

from consultflow.api.events.v1 import events_pb2
from consultflow.platform import jsonutil
from consultflow.platform.db import Database, UnitOfWork, busy_error
from consultflow.platform.errors import (
    BpmnError,
    Conflict,
    DomainError,
    InvalidArgument,
    Unauthenticated,
    Unavailable,
)
from consultflow.platform.inputs import yes_no
from consultflow.platform.logging import failure_kind, redact
from consultflow.platform.operation_spec import ErrorSpec, Field, OperationSpec, summary_of
from consultflow.platform.tables import processed_jobs

log = logging.getLogger(__name__)

_MISSING: Any = object()

PRUNE_BATCH = 1000
"""Records one pruning transaction deletes at most: a short write, however far behind pruning is."""
PRUNE_EVERY_SECONDS = 600.0
"""How often a service looks for records past their TTL (between rounds, not between batches)."""


@dataclass(frozen=True)
class Job:
    """A service task handed to this service."""

    key: str
    operation: str
    instance_id: str
    process_id: str
    element_id: str
    parameters: Mapping[str, Any]
    variables: Mapping[str, Any]
    attempt: int
    retries: int
    business_key: str = ""

    @classmethod
    def from_message(cls, message: events_pb2.JobActivated) -> Job:
        return cls(
            key=message.job_key,
            operation=message.operation,
            instance_id=message.instance_id,
            process_id=message.process_id,
            element_id=message.element_id,
            parameters=json.loads(message.parameters_json or "{}"),
            variables=json.loads(message.variables_json or "{}"),
            attempt=message.attempt,
            retries=message.retries,
            business_key=message.business_key,
        )

    def get(self, name: str, default: Any = _MISSING) -> Any:
        """A parameter the diagram passes, else a process variable of that name, else `default`.

        Without a default a missing value is an `InvalidArgument` naming it (the diagram is wrong).
        """
        if name in self.parameters:
            return self.parameters[name]
        if name in self.variables:
            return self.variables[name]
        if default is _MISSING:
            raise InvalidArgument(name, f"the diagram passes no {name!r} to {self.operation}")
        return default

    def text(self, name: str, default: Any = _MISSING) -> str:
        """An input as text (`get`'s rules; null counts as empty), for a command's parser to check."""
        value = self.get(name, default)
        return "" if value is None else str(value)

    def flag(self, name: str) -> bool:
        """A required yes/no input."""
        return yes_no(name, self.get(name))

    @property
    def engagement_id(self) -> str:
        """The engagement this job works for: the diagram's `engagement_id`, else the business key."""
        return self.text("engagement_id", "") or self.business_key

    @property
    def request_id(self) -> str:
        """An idempotency key for use cases that create something: the same job creates it once."""
        return f"job:{self.key}"

    @property
    def correlation(self) -> dict[str, str]:
        """Keys that tie a status event caused by this job to its engagement and instance."""
        keys = {"instance_id": self.instance_id}
        if self.engagement_id:
            keys["engagement_id"] = self.engagement_id
        return keys


JobHandler = Callable[[UnitOfWork, Job], Mapping[str, Any]]
"""A handler with its dependencies bound: what the worker runs."""

D = TypeVar("D")
Handler = Callable[[UnitOfWork, Job, D], Mapping[str, Any]]
"""An operation as written: the unit of work, the job, and the service's dependencies."""


class Operations(Generic[D]):
    """The job operations one service offers (`<service>.<name>`), each declared where it is written.

    Dependencies (peer adapters, decision tables) are bound once, at start, by `bind`; handlers stay
    plain module-level functions a test can call with fakes. A service with nothing to inject uses
    `Operations[None]` and binds `None`.
    """

    def __init__(self, service: str) -> None:
        self.service = service
        self._handlers: dict[str, Handler[D]] = {}
        self._specs: dict[str, OperationSpec] = {}

    def handler(
        self,
        name: str,
        *,
        clauses: Iterable[str] = (),
        inputs: Iterable[Field] = (),
        outputs: Iterable[Field] = (),
        errors: Iterable[ErrorSpec] = (),
        summary: str = "",
        description: str = "",
        assumption: bool = False,
    ) -> Callable[[Handler[D]], Handler[D]]:
        """Registers the decorated function as the operation `<service>.<name>` with its contract.

        The summary defaults to the first paragraph of the handler's docstring (without its clause
        reference). A contract that is not sound (no summary, no clause, a field declared twice, an
        unknown type) is refused at import, naming the operation.
        """
        operation = f"{self.service}.{name}"

        def register(function: Handler[D]) -> Handler[D]:
            if operation in self._handlers:
                raise ValueError(f"operation {operation!r} is declared twice")
            spec = OperationSpec(
                name=operation,
                service=self.service,
                summary=summary or summary_of(function.__doc__),
                description=description,
                clauses=tuple(clauses),
                assumption=assumption,
                inputs=tuple(inputs),
                outputs=tuple(outputs),
                errors=tuple(errors),
            )
            problems = spec.problems()
            if problems:
                raise ValueError("; ".join(problems))
            self._handlers[operation] = function
            self._specs[operation] = spec
            return function

        return register

    @property
    def names(self) -> list[str]:
        """Every operation this service declares, in declaration order."""
        return list(self._handlers)

    @property
    def catalogue(self) -> tuple[OperationSpec, ...]:
        """Every operation's contract, in declaration order: what `OperationCatalog` serves."""
        return tuple(self._specs.values())

    def bind(self, deps: D) -> BoundOperations:
        """The handlers the worker runs, each with `deps` bound, and the catalogue they publish."""
        return BoundOperations(
            {operation: _bound(function, deps) for operation, function in self._handlers.items()},
            self.catalogue,
        )


class BoundOperations(Mapping[str, JobHandler]):
    """The handlers a worker runs by operation name, carrying their catalogue, so the shared bootstrap
    serves `OperationCatalog` for every service that has operations without each wiring it."""

    def __init__(self, handlers: Mapping[str, JobHandler], catalogue: tuple[OperationSpec, ...]) -> None:
        self._handlers = dict(handlers)
        self.catalogue = catalogue

    def __getitem__(self, operation: str) -> JobHandler:
        return self._handlers[operation]

    def __iter__(self) -> Iterator[str]:
        return iter(self._handlers)

    def __len__(self) -> int:
        return len(self._handlers)


def _bound(function: Handler[D], deps: D) -> JobHandler:
    def run(uow: UnitOfWork, job: Job) -> Mapping[str, Any]:
        return function(uow, job, deps)

    run.__doc__ = function.__doc__
    return run


@dataclass(frozen=True)
class Outcome:
    """What a worker reports: completed with variables, a BPMN error, or a failure (retryable or not)."""

    kind: Literal["completed", "error", "failed"]
    variables: Mapping[str, Any] = field(default_factory=dict)
    error_code: str = ""
    message: str = ""
    retries: int = 0
    replayed: bool = False


def run_job(uow_factory: Callable[[], UnitOfWork], handlers: Mapping[str, JobHandler], job: Job) -> Outcome:
    """Runs `job` at most once to completion; a redelivery answers with the recorded outcome."""
    handler = handlers.get(job.operation)
    if handler is None:
        return Outcome("failed", message=f"no handler for operation {job.operation!r}", retries=0)
    log.debug(
        "job %s (%s) for instance %s",
        job.key,
        job.operation,
        job.instance_id,
        extra={"variables": redact(job.variables), "parameters": redact(job.parameters)},
    )
    unit_of_work = uow_factory()
    with unit_of_work.read() as session:
        done = session.execute(_recorded(job)).first()
    if done is not None:
        return _stored_outcome(done.outcome, done.result)
    # The transaction begins at the handler's first statement, so a handler that calls a peer service
    # first holds no database lock while it waits. A duplicate delivery racing this one is caught when the
    # outcome is recorded (the job key is unique).
    with unit_of_work as uow:
        try:
            variables = dict(handler(uow, job))
        except BpmnError as error:
            uow.session.rollback()
            return _record_bpmn_error(uow_factory, job, error)
        except (Unavailable, Conflict, Unauthenticated) as error:
            # A peer or the database is unreachable, a concurrent change won, or a peer did not accept this
            # component's own credentials (a key not yet seen, a token being renewed): nothing in the job
            # is wrong, so a later attempt may succeed, and the retries left bound how long it tries.
            log.warning("job %s (%s) failed, will retry: %s", job.key, job.operation, failure_kind(error))
            log.debug("job %s: %s", job.key, error.message)
            return Outcome(
                "failed", message=f"{type(error).__name__}: {error.message}", retries=max(job.retries - 1, 0)
            )
        except DomainError as error:
            # The request itself is wrong (a missing field, a forbidden transition): retrying cannot help.
            log.warning("job %s (%s) refused: %s", job.key, job.operation, failure_kind(error))
            log.debug("job %s: %s", job.key, error.message)
            return Outcome("failed", message=f"{type(error).__name__}: {error.message}", retries=0)
        except Exception as error:
            busy = busy_error(error)
            if busy is not None:  # the database is busy: like any Unavailable, a later attempt may succeed
                log.warning("job %s (%s) failed, will retry: %s", job.key, job.operation, busy.message)
                return Outcome(
                    "failed", message=f"Unavailable: {busy.message}", retries=max(job.retries - 1, 0)
                )
            log.exception("job %s (%s) failed", job.key, job.operation)
            return Outcome(
                "failed", message=f"{type(error).__name__}: {error}", retries=max(job.retries - 1, 0)
            )
        try:
            _record(uow, job, "completed", variables)
            uow.commit()
        except IntegrityError:
            # Another delivery of the same job committed first; its effects stand and ours roll back.
            uow.session.rollback()
            return _read_outcome(uow_factory, job)
    return Outcome("completed", variables=variables)


def _read_outcome(uow_factory: Callable[[], UnitOfWork], job: Job) -> Outcome:
    with uow_factory() as uow:
        done = uow.session.execute(_recorded(job)).one()
        return _stored_outcome(done.outcome, done.result)


def _recorded(job: Job) -> Select[Any]:
    """The outcome `_record` stored for a job handled before."""
    return select(processed_jobs.c.outcome, processed_jobs.c.result).where(
        processed_jobs.c.job_key == job.key
    )


def _record(uow: UnitOfWork, job: Job, outcome: str, result: Mapping[str, Any]) -> None:
    uow.session.execute(
        insert(processed_jobs).values(
            job_key=job.key,
            operation=job.operation,
            outcome=outcome,
            result=jsonutil.dumps(result),
            processed_at=datetime.now(UTC),
        )
    )


def _record_bpmn_error(uow_factory: Callable[[], UnitOfWork], job: Job, error: BpmnError) -> Outcome:
    with uow_factory() as uow:
        _record(
            uow, job, "error", {"code": error.code, "message": error.message, "variables": error.variables}
        )
        uow.commit()
    return Outcome("error", variables=error.variables, error_code=error.code, message=error.message)


def _stored_outcome(kind: str, result: str) -> Outcome:
    data = json.loads(result)
    if kind == "error":
        return Outcome(
            "error",
            variables=data["variables"],
            error_code=data["code"],
            message=data["message"],
            replayed=True,
        )
    return Outcome("completed", variables=data, replayed=True)


# ------------------------------------------------------------------------------------------ pruning


def prune_processed_jobs(db: Database, older_than: datetime, limit: int = PRUNE_BATCH) -> int:
    """Deletes at most `limit` job records processed before `older_than`, oldest first; returns how many.

    A record only matters while the same job can be delivered again, so the TTL behind `older_than`
    must be far longer than any redelivery window (docs/architecture.md, "Jobs"): a job delivered again
    after its record is gone runs again. Idempotent, so every replica may run it; one owner suffices.
    """
    oldest = (
        select(processed_jobs.c.job_key)
        .where(processed_jobs.c.processed_at < older_than)
        .order_by(processed_jobs.c.processed_at)
        .limit(limit)
    )
    with UnitOfWork(db, "pruning") as uow:
        deleted = uow.session.execute(delete(processed_jobs).where(processed_jobs.c.job_key.in_(oldest)))
        uow.commit()
    return int(deleted.rowcount)  # type: ignore[attr-defined]


async def prune_processed_jobs_periodically(
    db: Database,
    ttl: timedelta,
    executor: Executor,
    every_seconds: float = PRUNE_EVERY_SECONDS,
    cleans_up: Callable[[], bool] = lambda: True,
) -> None:
    """Prunes records older than `ttl` every `every_seconds`, batch after batch until none is left, in the
    replica that `cleans_up()` says does the component's cleanups (the owner of partition 0)."""
    loop = asyncio.get_running_loop()
    while True:
        if not cleans_up():
            await asyncio.sleep(every_seconds)
            continue
        older_than = datetime.now(UTC) - ttl
        pruned = PRUNE_BATCH
        while pruned == PRUNE_BATCH:
            pruned = await loop.run_in_executor(executor, prune_processed_jobs, db, older_than)
            if pruned:
                log.info("pruned %d processed job records older than %s", pruned, older_than)
        await asyncio.sleep(every_seconds)
