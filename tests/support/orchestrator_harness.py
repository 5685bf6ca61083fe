"""The orchestrator in-process on a real database, with helpers to play workers, people and clocks.

Jobs are rows the harness completes as a worker would; nothing needs NATS (outbox rows simply stay).
Timers are fast-forwarded by moving the orchestrator's clock to when they are due, then firing due timers.
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select

from consultflow.orchestrator.orm import JobRecord, Timer, UserTask
from consultflow.orchestrator.runtime import InstanceView, Orchestrator
from consultflow.platform import timeutil
from consultflow.platform.clock import ManualClock, ShiftedClock
from consultflow.platform.db import Database, UnitOfWork, migrate
from consultflow.platform.tables import outbox
from tests.support.identity import TESTER, person


class Harness:
    def __init__(
        self, database_url: str, clock: ManualClock | ShiftedClock | None = None, **orchestrator_options: Any
    ) -> None:
        self.db = Database(database_url)
        migrate(self.db, "orchestrator")
        # Time keeps flowing (rows are ordered by when they were written) unless a test stops it.
        self.clock = clock if clock is not None else ShiftedClock()
        self.orchestrator = Orchestrator(self.db, self.uow, clock=self.clock, **orchestrator_options)

    @classmethod
    def sqlite(cls, tmp_path: Path, **orchestrator_options: Any) -> Harness:
        return cls(f"sqlite:///{tmp_path / 'orchestrator.db'}", **orchestrator_options)

    def uow(self) -> UnitOfWork:
        return UnitOfWork(self.db, "orchestrator")

    def close(self) -> None:
        self.db.dispose()

    # -- deploy and start

    def deploy(self, **resources: bytes) -> None:
        """deploy(p=bpmn(...)) deploys `p.bpmn`; names ending in _dmn deploy as `.dmn`."""
        named = {(k[:-4] + ".dmn" if k.endswith("_dmn") else k + ".bpmn"): v for k, v in resources.items()}
        self.orchestrator.deploy(named)

    def start(self, process_id: str, business_key: str = "", **variables: Any) -> str:
        return self.orchestrator.create_instance(process_id, 0, variables, business_key).instance_id

    # -- observe

    def view(self, instance_id: str) -> InstanceView:
        return self.orchestrator.get_instance(instance_id)

    def status(self, instance_id: str) -> str:
        return self.view(instance_id).instance.status

    def variables(self, instance_id: str) -> dict[str, Any]:
        result: dict[str, Any] = json.loads(self.view(instance_id).instance.variables)
        return result

    def history(self, instance_id: str, kind: str = "") -> list[str]:
        """History as `type element_id` strings (only `kind` events if given)."""
        return [
            f"{e.type} {e.element_id}".strip()
            for e in self.view(instance_id).history
            if not kind or e.type == kind
        ]

    def completed_elements(self, instance_id: str) -> list[str]:
        return [e.element_id for e in self.view(instance_id).history if e.type == "element.completed"]

    def jobs(
        self, instance_id: str = "", operation: str = "", status: str = "ACTIVATABLE"
    ) -> list[JobRecord]:
        query = select(JobRecord).where(JobRecord.status == status).order_by(JobRecord.created_at)
        if instance_id:
            query = query.where(JobRecord.instance_id == instance_id)
        if operation:
            query = query.where(JobRecord.operation == operation)
        with self.db.read() as session:
            return list(session.scalars(query))

    def job_messages(self) -> list[str]:
        """Subjects of the job messages written to the outbox, in order."""
        with self.db.read() as session:
            return [
                s
                for s in session.scalars(select(outbox.c.subject).order_by(outbox.c.seq))
                if s.startswith("jobs.")
            ]

    def user_tasks(self, instance_id: str = "") -> list[UserTask]:
        rows, _ = self.orchestrator.list_user_tasks(instance_id=instance_id, page_size=500)
        return rows

    # -- act as workers, people and clients

    def job(self, operation: str, instance_id: str = "") -> JobRecord:
        jobs = self.jobs(instance_id, operation)
        assert jobs, f"no open {operation} job; open: {[j.operation for j in self.jobs(instance_id)]}"
        return jobs[0]

    def complete(self, operation: str, instance_id: str = "", **variables: Any) -> JobRecord:
        job = self.job(operation, instance_id)
        self.orchestrator.complete_job(job.job_key, variables)
        return job

    def task(self, element_id: str, instance_id: str = "") -> UserTask:
        tasks = [t for t in self.user_tasks(instance_id) if t.element_id == element_id]
        assert tasks, (
            f"no open user task {element_id}; open: {[t.element_id for t in self.user_tasks(instance_id)]}"
        )
        return tasks[0]

    def submit(self, element_id: str, instance_id: str = "", by: str = "", **values: Any) -> None:
        """Completes the task as `by` (a staff member of the task's groups; default an admin), claiming it
        first unless it is theirs already."""
        task = self.task(element_id, instance_id)
        actor = person(by, *task.candidate_groups.strip(",").split(",")) if by else TESTER
        if task.assignee != actor.name:
            self.orchestrator.claim_user_task(task.user_task_id, actor)
        self.orchestrator.complete_user_task(task.user_task_id, values, actor)

    def publish(
        self, name: str, key: str = "", ttl_seconds: float = 0, message_id: str = "", **variables: Any
    ) -> str:
        result = self.orchestrator.publish_message(
            name, key, variables, timedelta(seconds=ttl_seconds), message_id
        )
        return result.outcome

    def fast_forward(self, instance_id: str, element_id: str = "") -> None:
        """Moves the clock past the due time of the instance's waiting timers (or of the one at
        `element_id`), then fires due timers."""
        query = select(Timer.due_at).where(Timer.instance_id == instance_id)
        if element_id:
            query = query.where(Timer.element_id == element_id)
        with self.db.read() as session:
            due = [timeutil.aware(d) for d in session.scalars(query)]
        assert due, f"no waiting timer {element_id or ''} in {instance_id}"
        self.clock.advance_to(max(d for d in due if d is not None) + timedelta(seconds=1))
        self.orchestrator.fire_due_timers()

    def deliver_thrown(self) -> int:
        """What the message dispatcher does: correlate messages instances threw to each other."""
        return self.orchestrator.correlate_pending()
