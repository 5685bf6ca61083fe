"""The orchestrator as one object: the `InstanceHost` (locks, cache, steps, listeners) with every use case
as a method, for the servicer, the scheduler, the status bridge and tests.

Each method only forwards to the use case of the same name in usecases/, where its rules are.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from consultflow.orchestrator.host import InstanceHost
from consultflow.orchestrator.orm import (
    AuditEntry,
    Definition,
    HistoryEvent,
    Incident,
    Instance,
    MigrationBatch,
    UserTask,
)
from consultflow.orchestrator.records import ActiveElementView
from consultflow.orchestrator.step import Step
from consultflow.orchestrator.usecases import (
    audit,
    deployments,
    incidents,
    instances,
    jobs,
    messages,
    migration_batches,
    migrations,
    queries,
    statistics,
    timers,
    user_tasks,
)
from consultflow.orchestrator.usecases.deployments import DefinitionFiles, DeployResult, Validation
from consultflow.orchestrator.usecases.instances import CreateResult
from consultflow.orchestrator.usecases.messages import PublishResult
from consultflow.orchestrator.usecases.migration_batches import BatchView, PlanResult, Selection
from consultflow.orchestrator.usecases.migrations import (
    ElementMove,
    InstanceCheck,
    MigrationPlan,
    MigrationProblem,
)
from consultflow.orchestrator.usecases.queries import InstanceView
from consultflow.orchestrator.usecases.statistics import ProcessStatistics
from consultflow.platform.identity import Caller

__all__ = [
    "CreateResult",
    "DefinitionFiles",
    "DeployResult",
    "InstanceView",
    "Orchestrator",
    "ProcessStatistics",
    "PublishResult",
    "Validation",
]


class Orchestrator(InstanceHost):
    """The engine host. Methods are blocking; the gRPC servicer runs them on worker threads."""

    # deployments

    def deploy(
        self, resources: Mapping[str, bytes], actor: Caller | None = None, note: str = ""
    ) -> DeployResult:
        return deployments.deploy(self, resources, actor, note)

    def deploy_at_start(self, resources: Mapping[str, bytes], mode: str = "new") -> DeployResult:
        return deployments.deploy_at_start(self, resources, mode)

    def validate(self, resources: Mapping[str, bytes]) -> Validation:
        return deployments.validate(self, resources)

    def list_definitions(self, process_id: str = "", latest_only: bool = False) -> list[Definition]:
        return queries.list_definitions(self, process_id, latest_only)

    def get_definition(self, definition_id: str) -> DefinitionFiles:
        return deployments.get_definition(self, definition_id)

    def differing(self, definitions: Iterable[Definition]) -> set[str]:
        return deployments.differing(self, definitions)

    def process_statistics(self, process_id: str, version: int = 0) -> ProcessStatistics:
        return statistics.process_statistics(self, process_id, version)

    # instances

    def create_instance(
        self,
        process_id: str,
        version: int,
        variables: Mapping[str, Any],
        business_key: str = "",
        actor: Caller | None = None,
    ) -> CreateResult:
        return instances.create_instance(self, process_id, version, variables, business_key, actor)

    def cancel_instance(self, instance_id: str, reason: str = "", actor: Caller | None = None) -> None:
        instances.cancel_instance(self, instance_id, reason, actor)

    def get_instance(self, instance_id: str, history_limit: int = 0) -> InstanceView:
        return queries.get_instance(self, instance_id, history_limit)

    def history_after(self, instance_id: str, after: int) -> tuple[list[HistoryEvent], str]:
        return queries.history_after(self, instance_id, after)

    def list_instances(
        self,
        process_id: str = "",
        status: str = "",
        business_key: str = "",
        with_incidents: bool = False,
        page_size: int = 50,
        page_token: str = "",
        query: str = "",
        version: int = 0,
        parent_instance_id: str = "",
    ) -> tuple[list[Instance], str]:
        return queries.list_instances(
            self,
            process_id,
            status,
            business_key,
            with_incidents,
            page_size,
            page_token,
            query,
            version,
            parent_instance_id,
        )

    def count_instances(
        self,
        process_id: str = "",
        status: str = "",
        business_key: str = "",
        with_incidents: bool = False,
        query: str = "",
        version: int = 0,
        parent_instance_id: str = "",
    ) -> int:
        return queries.count_instances(
            self, process_id, status, business_key, with_incidents, query, version, parent_instance_id
        )

    # jobs

    def complete_job(self, job_key: str, variables: Mapping[str, Any], actor: Caller | None = None) -> None:
        jobs.complete_job(self, job_key, variables, actor)

    def fail_job(
        self, job_key: str, retries: int, backoff_ms: int, message: str, actor: Caller | None = None
    ) -> None:
        jobs.fail_job(self, job_key, retries, backoff_ms, message, actor)

    def throw_error(
        self,
        job_key: str,
        code: str,
        message: str,
        variables: Mapping[str, Any],
        actor: Caller | None = None,
    ) -> None:
        jobs.throw_error(self, job_key, code, message, variables, actor)

    def extend_job_deadline(
        self, job_key: str, extend_by: timedelta, actor: Caller | None = None
    ) -> datetime:
        return jobs.extend_job_deadline(self, job_key, extend_by, actor)

    def redeliver_overdue_jobs(self, limit: int = 200) -> int:
        return jobs.redeliver_overdue_jobs(self, limit)

    # user tasks

    def list_user_tasks(
        self,
        candidate_group: str = "",
        assignee: str = "",
        instance_id: str = "",
        include_closed: bool = False,
        page_size: int = 50,
        page_token: str = "",
        candidate_user: str = "",
        visible_to: Caller | None = None,
        due_first: bool = False,
    ) -> tuple[list[UserTask], str]:
        return queries.list_user_tasks(
            self,
            candidate_group,
            assignee,
            instance_id,
            include_closed,
            page_size,
            page_token,
            candidate_user,
            visible_to,
            due_first,
        )

    def get_user_task(
        self, user_task_id: str, actor: Caller | None = None
    ) -> tuple[UserTask, dict[str, Any]]:
        return queries.get_user_task(self, user_task_id, actor)

    def claim_user_task(self, user_task_id: str, actor: Caller, force: bool = False) -> UserTask:
        return user_tasks.claim_user_task(self, user_task_id, actor, force)

    def unclaim_user_task(self, user_task_id: str, actor: Caller) -> UserTask:
        return user_tasks.unclaim_user_task(self, user_task_id, actor)

    def complete_user_task(self, user_task_id: str, values: Mapping[str, Any], actor: Caller) -> None:
        user_tasks.complete_user_task(self, user_task_id, values, actor)

    # messages

    def publish_message(
        self,
        name: str,
        correlation_key: str,
        variables: Mapping[str, Any],
        ttl: timedelta = timedelta(0),
        message_id: str = "",
        actor: Caller | None = None,
    ) -> PublishResult:
        return messages.publish_message(self, name, correlation_key, variables, ttl, message_id, actor)

    def correlate_pending(self, limit: int = 200) -> int:
        return messages.correlate_pending(self, limit)

    def expire_messages(self) -> int:
        return messages.expire_messages(self)

    # timers

    def next_timer_due(self) -> datetime | None:
        return timers.next_timer_due(self)

    def fire_due_timers(self, limit: int = 500) -> int:
        return timers.fire_due_timers(self, limit)

    def fire_start_timers(self) -> int:
        return timers.fire_start_timers(self)

    # incidents

    def list_incidents(
        self, instance_id: str = "", include_resolved: bool = False, page_size: int = 100
    ) -> list[Incident]:
        return queries.list_incidents(self, instance_id, include_resolved, page_size)

    def resolve_incident(self, incident_id: str, retries: int = 1, actor: Caller | None = None) -> None:
        incidents.resolve_incident(self, incident_id, retries, actor)

    # audit

    def list_audit(
        self,
        business_key: str = "",
        instance_id: str = "",
        actor: str = "",
        page_size: int = 100,
        page_token: str = "",
    ) -> tuple[list[AuditEntry], str]:
        return audit.list_audit(self, business_key, instance_id, actor, page_size, page_token)

    # migration batches

    def plan_migration(
        self, plan: MigrationPlan, selection: Selection, page_size: int = 0, page_token: str = ""
    ) -> PlanResult:
        return migration_batches.plan_migration(self, plan, selection, page_size, page_token)

    def start_migration(
        self,
        plan: MigrationPlan,
        selection: Selection,
        reason: str,
        skip_refused: bool = False,
        actor: Caller | None = None,
    ) -> MigrationBatch:
        return migration_batches.start_migration(self, plan, selection, reason, skip_refused, actor)

    def run_migrations(self, limit: int = migration_batches.ITEMS_PER_ROUND) -> int:
        return migration_batches.run_batches(self, limit)

    def get_migration(self, batch_id: str) -> BatchView:
        return migration_batches.get_migration(self, batch_id)

    def list_migrations(
        self, process_id: str = "", page_size: int = 0, page_token: str = ""
    ) -> tuple[list[MigrationBatch], str]:
        return migration_batches.list_migrations(self, process_id, page_size, page_token)

    # migration

    def migration_plan_problems(self, plan: MigrationPlan) -> list[MigrationProblem]:
        return migrations.plan_problems(self, plan)

    def check_migration(self, plan: MigrationPlan, instance_id: str) -> InstanceCheck:
        return migrations.check_instance(self, plan, instance_id)

    def migrate_instance(
        self,
        plan: MigrationPlan,
        instance_id: str,
        actor: Caller | None,
        reason: str,
        *,
        alongside: Callable[[Step], None] | None = None,
    ) -> InstanceCheck:
        return migrations.migrate_instance(self, plan, instance_id, actor, reason, alongside=alongside)

    def modify_instance(
        self,
        instance_id: str,
        cancel_element_ids: Sequence[str],
        activate_element_id: str,
        process_id: str,
        reason: str,
        variables: Mapping[str, Any],
        actor: Caller | None = None,
    ) -> tuple[list[ElementMove], list[ActiveElementView]]:
        return migrations.modify_instance(
            self, instance_id, cancel_element_ids, activate_element_id, process_id, reason, variables, actor
        )
