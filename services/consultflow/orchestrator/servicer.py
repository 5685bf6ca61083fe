"""The orchestrator's gRPC API: messages in, use cases called, messages out; nothing else."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Sequence
from datetime import timedelta
from typing import Any

import grpc

from consultflow.api.orchestrator.v1 import orchestrator_pb2 as pb
from consultflow.api.orchestrator.v1 import orchestrator_pb2_grpc as pb_grpc
from consultflow.orchestrator import orm
from consultflow.orchestrator.engine import DeploymentError
from consultflow.orchestrator.records import (
    ActiveElementView,
    Effects,
    InstanceStatus,
    MigrationItemState,
    MigrationState,
    MoveAction,
    PublishOutcome,
    version_of,
)
from consultflow.orchestrator.runtime import Orchestrator
from consultflow.orchestrator.usecases.migration_batches import Selection
from consultflow.orchestrator.usecases.migrations import (
    ElementMapping,
    ElementMove,
    InstanceCheck,
    MigrationPlan,
    MigrationProblem,
)
from consultflow.platform import policy
from consultflow.platform.authn import current_caller
from consultflow.platform.errors import InvalidArgument, clip
from consultflow.platform.jsonutil import loads_object
from consultflow.platform.timeutil import timestamp

_STATES = {
    InstanceStatus.ACTIVE: pb.INSTANCE_STATE_ACTIVE,
    InstanceStatus.COMPLETED: pb.INSTANCE_STATE_COMPLETED,
    InstanceStatus.CANCELED: pb.INSTANCE_STATE_CANCELED,
}
_STATE_NAMES = {v: k for k, v in _STATES.items()}
_OUTCOMES = {
    PublishOutcome.CORRELATED: pb.MESSAGE_OUTCOME_CORRELATED,
    PublishOutcome.STARTED: pb.MESSAGE_OUTCOME_STARTED,
    PublishOutcome.BUFFERED: pb.MESSAGE_OUTCOME_BUFFERED,
    PublishOutcome.DUPLICATE: pb.MESSAGE_OUTCOME_DUPLICATE,
    PublishOutcome.DROPPED: pb.MESSAGE_OUTCOME_DROPPED,
}
_MIGRATION_STATES = {
    MigrationState.RUNNING: pb.MIGRATION_STATE_RUNNING,
    MigrationState.COMPLETED: pb.MIGRATION_STATE_COMPLETED,
}
_ITEM_STATES = {
    MigrationItemState.PENDING: pb.MIGRATION_ITEM_STATE_PENDING,
    MigrationItemState.MIGRATED: pb.MIGRATION_ITEM_STATE_MIGRATED,
    MigrationItemState.SKIPPED: pb.MIGRATION_ITEM_STATE_SKIPPED,
    MigrationItemState.FAILED: pb.MIGRATION_ITEM_STATE_FAILED,
}
MAX_TTL_SECONDS = 30 * 24 * 3600
MAX_INSTANCE_ID_LENGTH = 36  # a UUID, as instances.instance_id stores it
MAX_RESOURCES = 100
_MOVE_ACTIONS = {
    MoveAction.CARRIED_OVER: pb.MOVE_ACTION_CARRIED_OVER,
    MoveAction.RESTARTED: pb.MOVE_ACTION_RESTARTED,
    MoveAction.CANCELED: pb.MOVE_ACTION_CANCELED,
    MoveAction.ACTIVATED: pb.MOVE_ACTION_ACTIVATED,
}


def migration_plan_from_pb(plan: pb.MigrationPlan) -> MigrationPlan:
    """The request's plan, checked for well-formed fields (InvalidArgument naming the field)."""
    return MigrationPlan.parse(
        plan.source_definition_id,
        plan.target_definition_id,
        (
            ElementMapping(m.process_id, m.source_element_id, m.target_element_id, m.restart)
            for m in plan.mappings
        ),
    )


def migration_plan_message(plan: MigrationPlan) -> pb.MigrationPlan:
    return pb.MigrationPlan(
        source_definition_id=plan.source_definition_id,
        target_definition_id=plan.target_definition_id,
        mappings=[
            pb.ElementMapping(
                process_id=m.process_id,
                source_element_id=m.source_element_id,
                target_element_id=m.target_element_id,
                restart=m.restart,
            )
            for m in plan.mappings
        ],
    )


def migration_problem_message(problem: MigrationProblem) -> pb.MigrationProblem:
    return pb.MigrationProblem(
        instance_id=problem.instance_id,
        process_id=problem.process_id,
        element_id=problem.element_id,
        message=clip(problem.message),
    )


def element_move_message(move: ElementMove) -> pb.ElementMove:
    return pb.ElementMove(
        process_id=move.process_id,
        source_element_id=move.source_element_id,
        target_element_id=move.target_element_id,
        kind=move.kind,
        action=_MOVE_ACTIONS[move.action],
        detail=move.detail,
    )


def instance_check_message(check: InstanceCheck) -> pb.InstanceMigrationCheck:
    return pb.InstanceMigrationCheck(
        instance_id=check.instance_id,
        business_key=check.business_key,
        applicable=check.applicable,
        problems=[migration_problem_message(p) for p in check.problems],
        moves=[element_move_message(m) for m in check.moves],
    )


def active_element_message(a: ActiveElementView) -> pb.ActiveElement:
    return pb.ActiveElement(
        element_id=a.element_id, name=a.name, type=a.type, state=a.state, process_id=a.process_id
    )


def definition_message(definition: orm.Definition, differs: bool = False) -> pb.ProcessDefinition:
    return pb.ProcessDefinition(
        definition_id=definition.definition_id,
        process_id=definition.process_id,
        version=definition.version,
        name=definition.name,
        content_hash=definition.content_hash,
        resource_name=definition.resource_name,
        deployed_at=timestamp(definition.deployed_at),
        start_messages=json.loads(definition.start_messages),
        note=definition.note or "",
        deployed_by=definition.deployed_by or "",
        differs_from_repository=differs,
    )


def problem_message(error: DeploymentError) -> pb.Problem:
    return pb.Problem(
        resource_name=error.resource, element_id=error.element, message=clip(error.text), rule=error.rule
    )


def job_message(job: orm.JobRecord) -> pb.Job:
    return pb.Job(
        job_key=job.job_key,
        instance_id=job.instance_id,
        element_id=job.element_id,
        operation=job.operation,
        state=job.status,
        attempt=job.attempt,
        retries=job.retries,
        deadline=timestamp(job.deadline),
        error_message=job.error_message,
        created_at=timestamp(job.created_at),
    )


def audit_message(entry: orm.AuditEntry) -> pb.AuditEntry:
    return pb.AuditEntry(
        time=timestamp(entry.time),
        actor=entry.actor,
        action=entry.action,
        instance_id=entry.instance_id,
        business_key=entry.business_key,
        target=entry.target,
        detail=entry.detail,
    )


def incident_message(incident: orm.Incident) -> pb.Incident:
    return pb.Incident(
        incident_id=incident.incident_id,
        instance_id=incident.instance_id,
        element_id=incident.element_id,
        kind=incident.kind,
        message=incident.message,
        job_key=incident.job_key,
        created_at=timestamp(incident.created_at),
        resolved_at=timestamp(incident.resolved_at),
        process_id=incident.process_id,
    )


def user_task_message(task: orm.UserTask, variables: dict[str, Any] | None = None) -> pb.UserTask:
    fields = [
        pb.FormField(
            id=f["id"],
            label=f["label"],
            type=f["type"],
            required=f["required"],
            values=[pb.FormValue(id=v["id"], name=v["name"]) for v in f["values"]],
            default_value=f["default"],
        )
        for f in json.loads(task.form_fields)
    ]
    return pb.UserTask(
        user_task_id=task.user_task_id,
        instance_id=task.instance_id,
        element_id=task.element_id,
        name=task.name,
        documentation=task.documentation,
        candidate_groups=[g for g in task.candidate_groups.split(",") if g],
        assignee=task.assignee,
        candidate_users=[u for u in task.candidate_users.split(",") if u],
        due_at=timestamp(task.due_at),
        form_fields=fields,
        state=task.status,
        variables_json=json.dumps(variables, ensure_ascii=False) if variables is not None else "",
        created_at=timestamp(task.created_at),
        process_id=task.process_id,
        business_key=task.business_key,
        completed_by=task.completed_by,
        completed_at=timestamp(task.completed_at),
    )


def event_message(event: orm.HistoryEvent) -> pb.InstanceEvent:
    return pb.InstanceEvent(
        sequence=event.sequence,
        instance_id=event.instance_id,
        time=timestamp(event.time),
        type=event.type,
        element_id=event.element_id,
        element_name=event.element_name,
        detail=event.detail,
    )


def selection_from_pb(selection: pb.MigrationSelection) -> Selection:
    """A migration's selection; ids are checked for shape here, for existence by the use case."""
    for instance_id in selection.instance_ids:
        if not instance_id.strip():
            raise InvalidArgument("selection.instance_ids", "an instance id is empty")
        if len(instance_id) > MAX_INSTANCE_ID_LENGTH:
            raise InvalidArgument("selection.instance_ids", f"{instance_id[:40]!r}… is not an instance id")
    return Selection(
        instance_ids=tuple(selection.instance_ids),
        business_key=selection.business_key,
        waiting_at_element_id=selection.waiting_at_element_id,
        with_incidents=selection.with_incidents,
    )


def selection_message(selection: Selection) -> pb.MigrationSelection:
    return pb.MigrationSelection(
        instance_ids=list(selection.instance_ids),
        business_key=selection.business_key,
        waiting_at_element_id=selection.waiting_at_element_id,
        with_incidents=selection.with_incidents,
    )


def migration_item_message(item: orm.MigrationItem) -> pb.MigrationItem:
    return pb.MigrationItem(
        instance_id=item.instance_id,
        business_key=item.business_key,
        state=_ITEM_STATES[MigrationItemState(item.state)],
        message=item.message,
        updated_at=timestamp(item.updated_at),
    )


def migration_batch_message(
    batch: orm.MigrationBatch, items: Sequence[orm.MigrationItem] = ()
) -> pb.MigrationBatch:
    return pb.MigrationBatch(
        batch_id=batch.batch_id,
        plan=migration_plan_message(MigrationPlan.from_json(batch.plan)),
        selection=selection_message(Selection.from_json(batch.selection)),
        reason=batch.reason,
        created_by=batch.created_by,
        created_at=timestamp(batch.created_at),
        ended_at=timestamp(batch.ended_at),
        state=_MIGRATION_STATES[MigrationState(batch.state)],
        total=batch.total,
        migrated=batch.migrated,
        skipped=batch.skipped,
        failed=batch.failed,
        items=[migration_item_message(i) for i in items],
    )


def _resources(resources: Sequence[pb.Resource]) -> dict[str, bytes]:
    """A deployment's files by name: at most MAX_RESOURCES, each name once."""
    if len(resources) > MAX_RESOURCES:
        raise InvalidArgument("resources", f"at most {MAX_RESOURCES} files per deployment")
    found: dict[str, bytes] = {}
    for resource in resources:
        if resource.name in found:
            raise InvalidArgument("resources.name", f"{resource.name!r} appears twice")
        found[resource.name] = resource.content
    return found


class OrchestratorServicer(pb_grpc.OrchestratorServiceServicer):
    """Thin: every method validates its request's shape and calls one `Orchestrator` use case."""

    def __init__(self, orchestrator: Orchestrator, watch_poll_seconds: float = 0.5) -> None:
        self._orchestrator = orchestrator
        self._watch_poll_seconds = watch_poll_seconds
        self._watchers: dict[str, set[asyncio.Event]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None

    def attach_loop(self, loop: asyncio.AbstractEventLoop) -> None:
        """Lets committed steps wake WatchInstance streams on the event loop."""
        self._loop = loop

        def on_effects(effects: Effects) -> None:
            for instance_id in effects.instances:
                for event in list(self._watchers.get(instance_id, ())):
                    loop.call_soon_threadsafe(event.set)

        self._orchestrator.add_listener(on_effects)

    def DeployResources(
        self, request: pb.DeployResourcesRequest, context: grpc.ServicerContext
    ) -> pb.DeployResourcesResponse:
        resources = _resources(request.resources)
        result = self._orchestrator.deploy(resources, current_caller(), request.note)
        return pb.DeployResourcesResponse(
            deployment_id=result.deployment_id,
            definitions=[definition_message(d) for d in result.definitions],
            unchanged=result.unchanged,
            callers=result.callers,
        )

    def ValidateResources(
        self, request: pb.ValidateResourcesRequest, context: grpc.ServicerContext
    ) -> pb.ValidateResourcesResponse:
        result = self._orchestrator.validate(_resources(request.resources))
        return pb.ValidateResourcesResponse(
            problems=[problem_message(p) for p in result.problems],
            unchanged=result.unchanged,
            callers=result.callers,
        )

    def ListDefinitions(
        self, request: pb.ListDefinitionsRequest, context: grpc.ServicerContext
    ) -> pb.ListDefinitionsResponse:
        rows = self._orchestrator.list_definitions(request.process_id, request.latest_only)
        differing = self._orchestrator.differing(rows)
        return pb.ListDefinitionsResponse(
            definitions=[definition_message(d, d.definition_id in differing) for d in rows]
        )

    def GetDefinition(
        self, request: pb.GetDefinitionRequest, context: grpc.ServicerContext
    ) -> pb.GetDefinitionResponse:
        found = self._orchestrator.get_definition(request.definition_id)
        differs = found.latest and bool(self._orchestrator.differing([found.definition]))
        return pb.GetDefinitionResponse(
            definition=definition_message(found.definition, differs),
            resources=[pb.Resource(name=name, content=content) for name, content in found.resources],
        )

    def GetProcessStatistics(
        self, request: pb.GetProcessStatisticsRequest, context: grpc.ServicerContext
    ) -> pb.GetProcessStatisticsResponse:
        found = self._orchestrator.process_statistics(request.process_id, request.version)
        return pb.GetProcessStatisticsResponse(
            elements=[
                pb.ElementStatistics(element_id=e.element_id, active=e.active, incidents=e.incidents)
                for e in found.elements
            ],
            running_instances=found.running_instances,
            instances_with_incidents=found.instances_with_incidents,
        )

    def CreateInstance(
        self, request: pb.CreateInstanceRequest, context: grpc.ServicerContext
    ) -> pb.CreateInstanceResponse:
        if request.process_id:
            policy.require_may_start(current_caller(), request.process_id)
        variables = loads_object(request.variables_json, "variables_json")
        result = self._orchestrator.create_instance(
            request.process_id, request.version, variables, request.business_key, current_caller()
        )
        return pb.CreateInstanceResponse(
            instance_id=result.instance_id, definition_id=result.definition_id, created=result.created
        )

    def GetInstance(self, request: pb.GetInstanceRequest, context: grpc.ServicerContext) -> pb.Instance:
        if not request.instance_id:
            raise InvalidArgument("instance_id", "is required")
        view = self._orchestrator.get_instance(request.instance_id, request.history_limit)
        row = view.instance
        return pb.Instance(
            instance_id=row.instance_id,
            definition_id=row.definition_id,
            process_id=row.process_id,
            version=version_of(row.definition_id),
            business_key=row.business_key or "",
            state=_STATES[InstanceStatus(row.status)],
            variables_json=row.variables,
            active_elements=[
                pb.ActiveElement(
                    element_id=a.element_id, name=a.name, type=a.type, state=a.state, process_id=a.process_id
                )
                for a in view.active
            ],
            jobs=[job_message(j) for j in view.jobs],
            user_tasks=[user_task_message(t) for t in view.user_tasks],
            incidents=[incident_message(i) for i in view.incidents],
            history=[event_message(e) for e in view.history],
            created_at=timestamp(row.created_at),
            ended_at=timestamp(row.ended_at),
            revision=row.revision,
        )

    def ListInstances(
        self, request: pb.ListInstancesRequest, context: grpc.ServicerContext
    ) -> pb.ListInstancesResponse:
        status = _STATE_NAMES.get(request.state, "")
        rows, token = self._orchestrator.list_instances(
            request.process_id,
            status,
            request.business_key,
            request.with_incidents,
            request.page_size,
            request.page_token,
            request.query,
            request.version,
            request.parent_instance_id,
        )
        total = self._orchestrator.count_instances(
            request.process_id,
            status,
            request.business_key,
            request.with_incidents,
            request.query,
            request.version,
            request.parent_instance_id,
        )
        return pb.ListInstancesResponse(
            instances=[
                pb.InstanceSummary(
                    instance_id=instance.instance_id,
                    definition_id=instance.definition_id,
                    process_id=instance.process_id,
                    business_key=instance.business_key or "",
                    state=_STATES[InstanceStatus(instance.status)],
                    waiting_at=json.loads(instance.waiting_at),
                    open_incidents=instance.open_incidents,
                    created_at=timestamp(instance.created_at),
                    updated_at=timestamp(instance.updated_at),
                )
                for instance in rows
            ],
            next_page_token=token,
            total=total,
        )

    def CancelInstance(
        self, request: pb.CancelInstanceRequest, context: grpc.ServicerContext
    ) -> pb.CancelInstanceResponse:
        if not request.instance_id:
            raise InvalidArgument("instance_id", "is required")
        self._orchestrator.cancel_instance(request.instance_id, request.reason, current_caller())
        return pb.CancelInstanceResponse()

    async def WatchInstance(
        self, request: pb.WatchInstanceRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> AsyncIterator[pb.InstanceEvent]:
        if not request.instance_id:
            raise InvalidArgument("instance_id", "is required")
        loop = asyncio.get_running_loop()
        wake = asyncio.Event()
        self._watchers.setdefault(request.instance_id, set()).add(wake)
        after = request.after_sequence
        try:
            while True:
                wake.clear()
                events, status = await loop.run_in_executor(
                    None, self._orchestrator.history_after, request.instance_id, after
                )
                for event in events:
                    after = event.sequence
                    yield event_message(event)
                if status != InstanceStatus.ACTIVE and not events:
                    return
                if not events:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(wake.wait(), self._watch_poll_seconds)
        finally:
            watchers = self._watchers.get(request.instance_id, set())
            watchers.discard(wake)
            if not watchers:
                self._watchers.pop(request.instance_id, None)

    def PublishMessage(
        self, request: pb.PublishMessageRequest, context: grpc.ServicerContext
    ) -> pb.PublishMessageResponse:
        if request.ttl_seconds < 0 or request.ttl_seconds > MAX_TTL_SECONDS:
            raise InvalidArgument("ttl_seconds", f"must be between 0 and {MAX_TTL_SECONDS}")
        variables = loads_object(request.variables_json, "variables_json")
        result = self._orchestrator.publish_message(
            request.name,
            request.correlation_key,
            variables,
            timedelta(seconds=request.ttl_seconds),
            request.message_id,
            current_caller(),
        )
        return pb.PublishMessageResponse(
            outcome=_OUTCOMES[result.outcome], instance_id=result.instance_id, message_key=result.message_key
        )

    def ListUserTasks(
        self, request: pb.ListUserTasksRequest, context: grpc.ServicerContext
    ) -> pb.ListUserTasksResponse:
        rows, token = self._orchestrator.list_user_tasks(
            request.candidate_group,
            request.assignee,
            request.instance_id,
            request.include_closed,
            request.page_size,
            request.page_token,
            request.candidate_user,
            visible_to=current_caller(),
            due_first=request.due_first,
        )
        return pb.ListUserTasksResponse(
            user_tasks=[user_task_message(t) for t in rows], next_page_token=token
        )

    def GetUserTask(self, request: pb.GetUserTaskRequest, context: grpc.ServicerContext) -> pb.UserTask:
        row, data = self._orchestrator.get_user_task(request.user_task_id, current_caller())
        return user_task_message(row, data)

    def ClaimUserTask(self, request: pb.ClaimUserTaskRequest, context: grpc.ServicerContext) -> pb.UserTask:
        caller = current_caller()
        policy.require_self(caller, "assignee", request.assignee)
        return user_task_message(
            self._orchestrator.claim_user_task(request.user_task_id, caller, request.force)
        )

    def UnclaimUserTask(
        self, request: pb.UnclaimUserTaskRequest, context: grpc.ServicerContext
    ) -> pb.UserTask:
        if not request.user_task_id:
            raise InvalidArgument("user_task_id", "is required")
        return user_task_message(self._orchestrator.unclaim_user_task(request.user_task_id, current_caller()))

    def CompleteUserTask(
        self, request: pb.CompleteUserTaskRequest, context: grpc.ServicerContext
    ) -> pb.CompleteUserTaskResponse:
        caller = current_caller()
        policy.require_self(caller, "completed_by", request.completed_by)
        values = loads_object(request.variables_json, "variables_json")
        self._orchestrator.complete_user_task(request.user_task_id, values, caller)
        return pb.CompleteUserTaskResponse()

    def CompleteJob(
        self, request: pb.CompleteJobRequest, context: grpc.ServicerContext
    ) -> pb.CompleteJobResponse:
        variables = loads_object(request.variables_json, "variables_json")
        self._orchestrator.complete_job(request.job_key, variables, current_caller())
        return pb.CompleteJobResponse()

    def FailJob(self, request: pb.FailJobRequest, context: grpc.ServicerContext) -> pb.FailJobResponse:
        self._orchestrator.fail_job(
            request.job_key,
            request.retries,
            request.retry_backoff_ms,
            request.error_message,
            current_caller(),
        )
        return pb.FailJobResponse()

    def ThrowError(
        self, request: pb.ThrowErrorRequest, context: grpc.ServicerContext
    ) -> pb.ThrowErrorResponse:
        variables = loads_object(request.variables_json, "variables_json")
        self._orchestrator.throw_error(
            request.job_key, request.error_code, request.error_message, variables, current_caller()
        )
        return pb.ThrowErrorResponse()

    def ExtendJobDeadline(
        self, request: pb.ExtendJobDeadlineRequest, context: grpc.ServicerContext
    ) -> pb.ExtendJobDeadlineResponse:
        if not 0 <= request.extend_by_ms <= MAX_TTL_SECONDS * 1000:
            raise InvalidArgument("extend_by_ms", f"must be between 0 and {MAX_TTL_SECONDS * 1000}")
        deadline = self._orchestrator.extend_job_deadline(
            request.job_key, timedelta(milliseconds=request.extend_by_ms), current_caller()
        )
        return pb.ExtendJobDeadlineResponse(deadline=timestamp(deadline))

    def ListIncidents(
        self, request: pb.ListIncidentsRequest, context: grpc.ServicerContext
    ) -> pb.ListIncidentsResponse:
        rows = self._orchestrator.list_incidents(
            request.instance_id, request.include_resolved, request.page_size
        )
        return pb.ListIncidentsResponse(incidents=[incident_message(i) for i in rows])

    def ResolveIncident(
        self, request: pb.ResolveIncidentRequest, context: grpc.ServicerContext
    ) -> pb.ResolveIncidentResponse:
        self._orchestrator.resolve_incident(request.incident_id, request.retries or 1, current_caller())
        return pb.ResolveIncidentResponse()

    def ListAuditEntries(
        self, request: pb.ListAuditEntriesRequest, context: grpc.ServicerContext
    ) -> pb.ListAuditEntriesResponse:
        rows, token = self._orchestrator.list_audit(
            request.business_key, request.instance_id, request.actor, request.page_size, request.page_token
        )
        return pb.ListAuditEntriesResponse(entries=[audit_message(r) for r in rows], next_page_token=token)

    def PlanMigration(
        self, request: pb.PlanMigrationRequest, context: grpc.ServicerContext
    ) -> pb.PlanMigrationResponse:
        if request.page_size < 0:
            raise InvalidArgument("page_size", "must not be negative")
        found = self._orchestrator.plan_migration(
            migration_plan_from_pb(request.plan),
            selection_from_pb(request.selection),
            request.page_size,
            request.page_token,
        )
        return pb.PlanMigrationResponse(
            plan_problems=[migration_problem_message(p) for p in found.plan_problems],
            instances=[instance_check_message(c) for c in found.checks],
            selected=found.selected,
            next_page_token=found.next_page_token,
        )

    def StartMigration(
        self, request: pb.StartMigrationRequest, context: grpc.ServicerContext
    ) -> pb.MigrationBatch:
        batch = self._orchestrator.start_migration(
            migration_plan_from_pb(request.plan),
            selection_from_pb(request.selection),
            request.reason,
            request.skip_refused,
            current_caller(),
        )
        return migration_batch_message(batch)

    def GetMigration(
        self, request: pb.GetMigrationRequest, context: grpc.ServicerContext
    ) -> pb.MigrationBatch:
        if not request.batch_id:
            raise InvalidArgument("batch_id", "is required")
        found = self._orchestrator.get_migration(request.batch_id)
        return migration_batch_message(found.batch, found.items)

    def ListMigrations(
        self, request: pb.ListMigrationsRequest, context: grpc.ServicerContext
    ) -> pb.ListMigrationsResponse:
        rows, token = self._orchestrator.list_migrations(
            request.process_id, request.page_size, request.page_token
        )
        return pb.ListMigrationsResponse(
            batches=[migration_batch_message(b) for b in rows], next_page_token=token
        )

    def ModifyInstance(
        self, request: pb.ModifyInstanceRequest, context: grpc.ServicerContext
    ) -> pb.ModifyInstanceResponse:
        if not request.instance_id:
            raise InvalidArgument("instance_id", "is required")
        variables = loads_object(request.variables_json, "variables_json") if request.variables_json else {}
        moves, active = self._orchestrator.modify_instance(
            request.instance_id,
            list(request.cancel_element_ids),
            request.activate_element_id,
            request.process_id,
            request.reason,
            variables,
            current_caller(),
        )
        return pb.ModifyInstanceResponse(
            moves=[element_move_message(m) for m in moves],
            active_elements=[active_element_message(a) for a in active],
        )
