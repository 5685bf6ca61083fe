"""The orchestrator's gRPC API: messages in, use cases called, messages out; nothing else."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import grpc

from consultflow.api.orchestrator.v1 import orchestrator_pb2 as pb
from consultflow.api.orchestrator.v1 import orchestrator_pb2_grpc as pb_grpc
from consultflow.orchestrator import models
from consultflow.orchestrator.runtime import Orchestrator
from consultflow.platform.errors import InvalidArgument
from consultflow.platform.jsonutil import loads_object
from consultflow.platform.timeutil import timestamp

_STATES = {
    "ACTIVE": pb.INSTANCE_STATE_ACTIVE,
    "COMPLETED": pb.INSTANCE_STATE_COMPLETED,
    "CANCELED": pb.INSTANCE_STATE_CANCELED,
}
_STATE_NAMES = {v: k for k, v in _STATES.items()}
_OUTCOMES = {
    "CORRELATED": pb.MESSAGE_OUTCOME_CORRELATED,
    "STARTED": pb.MESSAGE_OUTCOME_STARTED,
    "BUFFERED": pb.MESSAGE_OUTCOME_BUFFERED,
    "DUPLICATE": pb.MESSAGE_OUTCOME_DUPLICATE,
    "DROPPED": pb.MESSAGE_OUTCOME_DROPPED,
}
MAX_TTL_SECONDS = 30 * 24 * 3600
MAX_RESOURCES = 100


_ts = timestamp


def definition_message(d: models.Definition) -> pb.ProcessDefinition:
    return pb.ProcessDefinition(
        definition_id=d.definition_id,
        process_id=d.process_id,
        version=d.version,
        name=d.name,
        content_hash=d.content_hash,
        resource_name=d.resource_name,
        deployed_at=_ts(d.deployed_at),
        start_messages=json.loads(d.start_messages),
    )


def job_message(j: models.Job) -> pb.Job:
    return pb.Job(
        job_key=j.job_key,
        instance_id=j.instance_id,
        element_id=j.element_id,
        operation=j.operation,
        state=j.status,
        attempt=j.attempt,
        retries=j.retries,
        deadline=_ts(j.deadline),
        error_message=j.error_message,
        created_at=_ts(j.created_at),
    )


def incident_message(i: models.Incident) -> pb.Incident:
    return pb.Incident(
        incident_id=i.incident_id,
        instance_id=i.instance_id,
        element_id=i.element_id,
        kind=i.kind,
        message=i.message,
        job_key=i.job_key,
        created_at=_ts(i.created_at),
        resolved_at=_ts(i.resolved_at),
        process_id=i.process_id,
    )


def user_task_message(t: models.UserTask, variables: dict[str, Any] | None = None) -> pb.UserTask:
    fields = [
        pb.FormField(
            id=f["id"],
            label=f["label"],
            type=f["type"],
            required=f["required"],
            values=[pb.FormValue(id=v["id"], name=v["name"]) for v in f["values"]],
            default_value=f["default"],
        )
        for f in json.loads(t.form_fields)
    ]
    return pb.UserTask(
        user_task_id=t.user_task_id,
        instance_id=t.instance_id,
        element_id=t.element_id,
        name=t.name,
        documentation=t.documentation,
        candidate_groups=[g for g in t.candidate_groups.split(",") if g],
        assignee=t.assignee,
        due_at=_ts(t.due_at),
        form_fields=fields,
        state=t.status,
        variables_json=json.dumps(variables, ensure_ascii=False) if variables is not None else "",
        created_at=_ts(t.created_at),
        process_id=t.process_id,
        business_key=t.business_key,
        completed_by=t.completed_by,
        completed_at=_ts(t.completed_at),
    )


def event_message(e: models.HistoryEvent) -> pb.InstanceEvent:
    return pb.InstanceEvent(
        sequence=e.sequence,
        instance_id=e.instance_id,
        time=_ts(e.time),
        type=e.type,
        element_id=e.element_id,
        element_name=e.element_name,
        detail=e.detail,
    )


class OrchestratorServicer(pb_grpc.OrchestratorServiceServicer):
    """Thin: every method validates its request's shape and calls one `Orchestrator` use case."""

    def __init__(self, orchestrator: Orchestrator, watch_poll_seconds: float = 0.5) -> None:
        self._o = orchestrator
        self._poll = watch_poll_seconds
        self._watchers: dict[str, set[asyncio.Event]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None

    def attach_loop(self, loop: asyncio.AbstractEventLoop) -> None:
        """Lets committed steps wake WatchInstance streams on the event loop."""
        self._loop = loop

        def on_effects(effects: Any) -> None:
            for instance_id in effects.instances:
                for event in list(self._watchers.get(instance_id, ())):
                    loop.call_soon_threadsafe(event.set)

        self._o.add_listener(on_effects)

    def DeployResources(self, request: pb.DeployResourcesRequest, context: grpc.ServicerContext) -> Any:
        if len(request.resources) > MAX_RESOURCES:
            raise InvalidArgument("resources", f"at most {MAX_RESOURCES} files per deployment")
        resources: dict[str, bytes] = {}
        for resource in request.resources:
            if resource.name in resources:
                raise InvalidArgument("resources.name", f"{resource.name!r} appears twice")
            resources[resource.name] = resource.content
        result = self._o.deploy(resources)
        return pb.DeployResourcesResponse(
            deployment_id=result.deployment_id,
            definitions=[definition_message(d) for d in result.definitions],
            unchanged=result.unchanged,
        )

    def ListDefinitions(self, request: pb.ListDefinitionsRequest, context: grpc.ServicerContext) -> Any:
        rows = self._o.list_definitions(request.process_id, request.latest_only)
        return pb.ListDefinitionsResponse(definitions=[definition_message(d) for d in rows])

    def CreateInstance(self, request: pb.CreateInstanceRequest, context: grpc.ServicerContext) -> Any:
        variables = loads_object(request.variables_json, "variables_json")
        result = self._o.create_instance(request.process_id, request.version, variables, request.business_key)
        return pb.CreateInstanceResponse(
            instance_id=result.instance_id, definition_id=result.definition_id, created=result.created
        )

    def GetInstance(self, request: pb.GetInstanceRequest, context: grpc.ServicerContext) -> Any:
        if not request.instance_id:
            raise InvalidArgument("instance_id", "is required")
        view = self._o.get_instance(request.instance_id, request.history_limit)
        row = view.instance
        version = int(row.definition_id.rsplit(":", 1)[1])
        return pb.Instance(
            instance_id=row.instance_id,
            definition_id=row.definition_id,
            process_id=row.process_id,
            version=version,
            business_key=row.business_key or "",
            state=_STATES[row.status],
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
            created_at=_ts(row.created_at),
            ended_at=_ts(row.ended_at),
            revision=row.revision,
        )

    def ListInstances(self, request: pb.ListInstancesRequest, context: grpc.ServicerContext) -> Any:
        status = _STATE_NAMES.get(request.state, "")
        rows, token = self._o.list_instances(
            request.process_id,
            status,
            request.business_key,
            request.with_incidents,
            request.page_size,
            request.page_token,
        )
        return pb.ListInstancesResponse(
            instances=[
                pb.InstanceSummary(
                    instance_id=r.instance_id,
                    definition_id=r.definition_id,
                    process_id=r.process_id,
                    business_key=r.business_key or "",
                    state=_STATES[r.status],
                    waiting_at=json.loads(r.waiting_at),
                    open_incidents=r.open_incidents,
                    created_at=_ts(r.created_at),
                    updated_at=_ts(r.updated_at),
                )
                for r in rows
            ],
            next_page_token=token,
        )

    def CancelInstance(self, request: pb.CancelInstanceRequest, context: grpc.ServicerContext) -> Any:
        if not request.instance_id:
            raise InvalidArgument("instance_id", "is required")
        self._o.cancel_instance(request.instance_id, request.reason)
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
                    None, self._o.history_after, request.instance_id, after
                )
                for event in events:
                    after = event.sequence
                    yield event_message(event)
                if status != "ACTIVE" and not events:
                    return
                if not events:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(wake.wait(), self._poll)
        finally:
            watchers = self._watchers.get(request.instance_id, set())
            watchers.discard(wake)
            if not watchers:
                self._watchers.pop(request.instance_id, None)

    def PublishMessage(self, request: pb.PublishMessageRequest, context: grpc.ServicerContext) -> Any:
        if request.ttl_seconds < 0 or request.ttl_seconds > MAX_TTL_SECONDS:
            raise InvalidArgument("ttl_seconds", f"must be between 0 and {MAX_TTL_SECONDS}")
        variables = loads_object(request.variables_json, "variables_json")
        result = self._o.publish_message(
            request.name,
            request.correlation_key,
            variables,
            timedelta(seconds=request.ttl_seconds),
            request.message_id,
        )
        return pb.PublishMessageResponse(
            outcome=_OUTCOMES[result.outcome], instance_id=result.instance_id, message_key=result.message_key
        )

    def ListUserTasks(self, request: pb.ListUserTasksRequest, context: grpc.ServicerContext) -> Any:
        rows, token = self._o.list_user_tasks(
            request.candidate_group,
            request.assignee,
            request.instance_id,
            request.include_closed,
            request.page_size,
            request.page_token,
        )
        return pb.ListUserTasksResponse(
            user_tasks=[user_task_message(t) for t in rows], next_page_token=token
        )

    def GetUserTask(self, request: pb.GetUserTaskRequest, context: grpc.ServicerContext) -> Any:
        row, data = self._o.get_user_task(request.user_task_id)
        return user_task_message(row, data)

    def ClaimUserTask(self, request: pb.ClaimUserTaskRequest, context: grpc.ServicerContext) -> Any:
        return user_task_message(
            self._o.claim_user_task(request.user_task_id, request.assignee, request.force)
        )

    def CompleteUserTask(self, request: pb.CompleteUserTaskRequest, context: grpc.ServicerContext) -> Any:
        values = loads_object(request.variables_json, "variables_json")
        self._o.complete_user_task(request.user_task_id, values, request.completed_by)
        return pb.CompleteUserTaskResponse()

    def CompleteJob(self, request: pb.CompleteJobRequest, context: grpc.ServicerContext) -> Any:
        self._o.complete_job(request.job_key, loads_object(request.variables_json, "variables_json"))
        return pb.CompleteJobResponse()

    def FailJob(self, request: pb.FailJobRequest, context: grpc.ServicerContext) -> Any:
        self._o.fail_job(request.job_key, request.retries, request.retry_backoff_ms, request.error_message)
        return pb.FailJobResponse()

    def ThrowError(self, request: pb.ThrowErrorRequest, context: grpc.ServicerContext) -> Any:
        variables = loads_object(request.variables_json, "variables_json")
        self._o.throw_error(request.job_key, request.error_code, request.error_message, variables)
        return pb.ThrowErrorResponse()

    def ListIncidents(self, request: pb.ListIncidentsRequest, context: grpc.ServicerContext) -> Any:
        rows = self._o.list_incidents(request.instance_id, request.include_resolved, request.page_size)
        return pb.ListIncidentsResponse(incidents=[incident_message(i) for i in rows])

    def ResolveIncident(self, request: pb.ResolveIncidentRequest, context: grpc.ServicerContext) -> Any:
        self._o.resolve_incident(request.incident_id, request.retries or 1)
        return pb.ResolveIncidentResponse()
