"""The console's JSON API under /api: each route one gRPC call made as the signed-in person (docs/console.md
lists them); the components decide what the person may do, the console only translates."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import time
from typing import Any

import grpc
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from consultflow.api.catalog.v1 import catalog_pb2
from consultflow.api.orchestrator.v1 import orchestrator_pb2 as pb
from consultflow.console.backends import ApiError, Backends, as_person, bad_request
from consultflow.console.web import (
    INT32_MAX,
    bool_param,
    check_csrf,
    int_param,
    json_body,
    message_json,
    object_field,
    session_of,
    text_field,
)
from consultflow.platform import policy
from consultflow.platform.errors import PermissionDenied

log = logging.getLogger(__name__)

ORCHESTRATOR = f"/{policy.ORCHESTRATOR}/"
CAPABILITIES = {
    "model": f"{ORCHESTRATOR}ValidateResources",
    "deploy": f"{ORCHESTRATOR}DeployResources",
    "tasks": f"{ORCHESTRATOR}ListUserTasks",
    "operate": f"{ORCHESTRATOR}ListInstances",
    "cancel": f"{ORCHESTRATOR}CancelInstance",
    "retry": f"{ORCHESTRATOR}ResolveIncident",
    "publish": f"{ORCHESTRATOR}PublishMessage",
    "start": f"{ORCHESTRATOR}CreateInstance",
    "migrate": f"{ORCHESTRATOR}StartMigration",
    "modify": f"{ORCHESTRATOR}ModifyInstance",
}
LIST_OPERATIONS = f"/{policy.CATALOG}/ListOperations"
CATALOGUE_SECONDS = 30.0
STATES = {"ACTIVE", "COMPLETED", "CANCELED"}


def may(roles: frozenset[str], method: str) -> bool:
    try:
        policy.authorize(roles, method)
    except PermissionDenied:
        return False
    return True


def backends(request: Request) -> Backends:
    found: Backends = request.app.state.backends
    return found


async def me(request: Request) -> JSONResponse:
    session = session_of(request)
    caller = session.caller
    return JSONResponse(
        {
            "name": caller.name,
            "roles": sorted(caller.roles),
            "groups": sorted(caller.groups),
            "csrf_token": session.csrf_token,
            "can": {name: may(caller.roles, method) for name, method in CAPABILITIES.items()},
        }
    )


async def list_definitions(request: Request) -> JSONResponse:
    session = session_of(request)
    reply = (
        await backends(request)
        .orchestrator()
        .ListDefinitions(
            pb.ListDefinitionsRequest(
                process_id=request.query_params.get("process_id", ""),
                latest_only=bool_param(request, "latest_only"),
            ),
            **as_person(session.token),
        )
    )
    return JSONResponse(message_json(reply))


async def get_definition(request: Request) -> JSONResponse:
    session = session_of(request)
    reply = (
        await backends(request)
        .orchestrator()
        .GetDefinition(
            pb.GetDefinitionRequest(definition_id=request.path_params["definition_id"]),
            **as_person(session.token),
        )
    )
    body = message_json(reply)
    for resource in body.get("resources", []):  # the diagrams as text, not base64
        resource["content"] = base64.b64decode(resource.get("content", "")).decode("utf-8", "replace")
    return JSONResponse(body)


def _resources(body: dict[str, Any]) -> list[pb.Resource]:
    items = body.get("resources")
    if not isinstance(items, list) or not items:
        raise bad_request("resources", "must be a non-empty list of {name, content}")
    resources = []
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            raise bad_request(f"resources[{index}]", "must be an object {name, content}")
        name = text_field(item, "name", required=True)
        content = item.get("content")
        if not isinstance(content, str):
            raise bad_request(f"resources[{index}].content", "must be the file's text")
        resources.append(pb.Resource(name=name, content=content.encode()))
    return resources


async def validate_deployment(request: Request) -> JSONResponse:
    session = session_of(request)
    check_csrf(request, session)
    body = await json_body(request)
    reply = (
        await backends(request)
        .orchestrator()
        .ValidateResources(
            pb.ValidateResourcesRequest(resources=_resources(body)), **as_person(session.token)
        )
    )
    return JSONResponse(message_json(reply))


async def deploy(request: Request) -> JSONResponse:
    session = session_of(request)
    check_csrf(request, session)
    body = await json_body(request)
    reply = (
        await backends(request)
        .orchestrator()
        .DeployResources(
            pb.DeployResourcesRequest(resources=_resources(body), note=text_field(body, "note")),
            **as_person(session.token),
        )
    )
    return JSONResponse(message_json(reply))


async def operations(request: Request) -> JSONResponse:
    """The services' catalogues, merged and kept for a short while (they change with a release)."""
    session = session_of(request)
    if not may(session.caller.roles, LIST_OPERATIONS):
        raise ApiError(403, "PERMISSION_DENIED", "the operation catalogue is for analysts and ops")
    state = request.app.state
    cached: tuple[float, list[dict[str, Any]]] | None = getattr(state, "catalogue", None)
    if cached is None or time.monotonic() - cached[0] > CATALOGUE_SECONDS:
        stubs = backends(request).catalogues()
        asked = catalog_pb2.ListOperationsRequest()
        replies = await asyncio.gather(
            *(stub.ListOperations(asked, **as_person(session.token)) for stub in stubs.values()),
            return_exceptions=True,
        )
        merged: list[dict[str, Any]] = []
        for service, reply in zip(stubs, replies, strict=True):
            if isinstance(reply, grpc.aio.AioRpcError) and reply.code() == grpc.StatusCode.UNIMPLEMENTED:
                _unimplemented_once(state, service)
                continue
            if isinstance(reply, BaseException):
                raise reply
            merged += [{**message_json(op), "service": op.service or service} for op in reply.operations]
        cached = (time.monotonic(), merged)
        state.catalogue = cached
    return JSONResponse({"operations": cached[1]})


def _unimplemented_once(state: Any, service: str) -> None:
    told: set[str] = getattr(state, "catalogue_unimplemented", set())
    if service not in told:
        log.warning("%s serves no operation catalogue yet: its operations are not offered", service)
        state.catalogue_unimplemented = told | {service}


async def statistics(request: Request) -> JSONResponse:
    session = session_of(request)
    reply = (
        await backends(request)
        .orchestrator()
        .GetProcessStatistics(
            pb.GetProcessStatisticsRequest(
                process_id=request.path_params["process_id"], version=int_param(request, "version")
            ),
            **as_person(session.token),
        )
    )
    return JSONResponse(message_json(reply))


async def list_instances(request: Request) -> JSONResponse:
    session = session_of(request)
    params = request.query_params
    state = params.get("state", "")
    if state and state not in STATES:
        raise bad_request("state", f"{state!r} is not one of {', '.join(sorted(STATES))}")
    reply = (
        await backends(request)
        .orchestrator()
        .ListInstances(
            pb.ListInstancesRequest(
                process_id=params.get("process_id", ""),
                version=int_param(request, "version"),
                state=pb.InstanceState.Value(f"INSTANCE_STATE_{state or 'UNSPECIFIED'}"),
                query=params.get("query", ""),
                with_incidents=bool_param(request, "with_incidents"),
                parent_instance_id=params.get("parent_instance_id", ""),
                page_token=params.get("page_token", ""),
                page_size=int_param(request, "page_size"),
            ),
            **as_person(session.token),
        )
    )
    return JSONResponse(message_json(reply))


async def get_instance(request: Request) -> JSONResponse:
    session = session_of(request)
    reply = (
        await backends(request)
        .orchestrator()
        .GetInstance(
            pb.GetInstanceRequest(
                instance_id=request.path_params["instance_id"],
                history_limit=int_param(request, "history_limit"),
            ),
            **as_person(session.token),
        )
    )
    return JSONResponse(message_json(reply))


async def cancel_instance(request: Request) -> JSONResponse:
    session = session_of(request)
    check_csrf(request, session)
    body = await json_body(request)
    await (
        backends(request)
        .orchestrator()
        .CancelInstance(
            pb.CancelInstanceRequest(
                instance_id=request.path_params["instance_id"], reason=text_field(body, "reason")
            ),
            **as_person(session.token),
        )
    )
    return JSONResponse({})


async def resolve_incident(request: Request) -> JSONResponse:
    session = session_of(request)
    check_csrf(request, session)
    body = await json_body(request)
    text_field(body, "note")  # checked; the orchestrator's audit names who resolved it
    retries = body.get("retries", 1)
    if not isinstance(retries, int) or isinstance(retries, bool) or retries < 1:
        raise bad_request("retries", "must be a whole number of at least 1")
    await (
        backends(request)
        .orchestrator()
        .ResolveIncident(
            pb.ResolveIncidentRequest(incident_id=request.path_params["incident_id"], retries=retries),
            **as_person(session.token),
        )
    )
    return JSONResponse({})


async def publish_message(request: Request) -> JSONResponse:
    session = session_of(request)
    check_csrf(request, session)
    body = await json_body(request)
    reply = (
        await backends(request)
        .orchestrator()
        .PublishMessage(
            pb.PublishMessageRequest(
                name=text_field(body, "name", required=True),
                correlation_key=text_field(body, "correlation_key"),
                variables_json=json.dumps(object_field(body, "variables")),
                message_id=text_field(body, "message_id"),
            ),
            **as_person(session.token),
        )
    )
    return JSONResponse(message_json(reply))


async def list_tasks(request: Request) -> JSONResponse:
    """scope=groups (default): every open task the person may take or holds (the orchestrator narrows a
    staff member's list to their candidacies); scope=mine: only the tasks they hold."""
    session = session_of(request)
    scope = request.query_params.get("scope", "groups")
    if scope not in ("mine", "groups"):
        raise bad_request("scope", f"{scope!r} is not mine or groups")
    reply = (
        await backends(request)
        .orchestrator()
        .ListUserTasks(
            pb.ListUserTasksRequest(
                assignee=session.caller.name if scope == "mine" else "",
                include_closed=bool_param(request, "include_closed"),
                due_first=True,
                page_size=int_param(request, "page_size"),
                page_token=request.query_params.get("page_token", ""),
            ),
            **as_person(session.token),
        )
    )
    return JSONResponse(message_json(reply))


async def get_task(request: Request) -> JSONResponse:
    session = session_of(request)
    reply = (
        await backends(request)
        .orchestrator()
        .GetUserTask(
            pb.GetUserTaskRequest(user_task_id=request.path_params["task_id"]), **as_person(session.token)
        )
    )
    return JSONResponse(message_json(reply))


async def claim_task(request: Request) -> JSONResponse:
    session = session_of(request)
    check_csrf(request, session)
    reply = (
        await backends(request)
        .orchestrator()
        .ClaimUserTask(
            pb.ClaimUserTaskRequest(user_task_id=request.path_params["task_id"]), **as_person(session.token)
        )
    )
    return JSONResponse(message_json(reply))


async def unclaim_task(request: Request) -> JSONResponse:
    session = session_of(request)
    check_csrf(request, session)
    reply = (
        await backends(request)
        .orchestrator()
        .UnclaimUserTask(
            pb.UnclaimUserTaskRequest(user_task_id=request.path_params["task_id"]), **as_person(session.token)
        )
    )
    return JSONResponse(message_json(reply))


async def complete_task(request: Request) -> JSONResponse:
    session = session_of(request)
    check_csrf(request, session)
    body = await json_body(request)
    await (
        backends(request)
        .orchestrator()
        .CompleteUserTask(
            pb.CompleteUserTaskRequest(
                user_task_id=request.path_params["task_id"],
                variables_json=json.dumps(object_field(body, "variables")),
            ),
            **as_person(session.token),
        )
    )
    return JSONResponse({})


def _list_of_texts(body: dict[str, Any], name: str) -> list[str]:
    value = body.get(name, [])
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise bad_request(name, "must be a list of strings")
    return value


def _flag(body: dict[str, Any], name: str) -> bool:
    value = body.get(name, False)
    if not isinstance(value, bool):
        raise bad_request(name, "must be true or false")
    return value


def _plan(body: dict[str, Any]) -> pb.MigrationPlan:
    """The body's `plan` {source_definition_id, target_definition_id, mappings: [{process_id?,
    source_element_id, target_element_id, restart?}]}; each bad part named by its path."""
    plan = body.get("plan")
    if not isinstance(plan, dict):
        raise bad_request("plan", "must be an object {source_definition_id, target_definition_id, mappings}")
    source, target = (plan.get(name, "") for name in ("source_definition_id", "target_definition_id"))
    for name, value in (("source_definition_id", source), ("target_definition_id", target)):
        if not isinstance(value, str) or not value:
            raise bad_request(f"plan.{name}", "is required: a definition id, <process_id>:<version>")
    items = plan.get("mappings", [])
    if not isinstance(items, list):
        raise bad_request("plan.mappings", "must be a list of {source_element_id, target_element_id}")
    mappings = []
    for index, item in enumerate(items):
        where = f"plan.mappings[{index}]"
        if not isinstance(item, dict):
            raise bad_request(where, "must be an object {source_element_id, target_element_id, restart}")
        texts = {}
        for name in ("process_id", "source_element_id", "target_element_id"):
            value = item.get(name, "")
            if not isinstance(value, str):
                raise bad_request(f"{where}.{name}", "must be a string")
            if not value and name != "process_id":
                raise bad_request(f"{where}.{name}", "is required")
            texts[name] = value
        restart = item.get("restart", False)
        if not isinstance(restart, bool):
            raise bad_request(f"{where}.restart", "must be true or false")
        mappings.append(pb.ElementMapping(**texts, restart=restart))
    return pb.MigrationPlan(source_definition_id=source, target_definition_id=target, mappings=mappings)


def _selection(body: dict[str, Any]) -> pb.MigrationSelection:
    """The body's optional `selection` {instance_ids, business_key, waiting_at_element_id, with_incidents}."""
    selection = body.get("selection", {})
    if not isinstance(selection, dict):
        raise bad_request("selection", "must be an object")
    try:
        return pb.MigrationSelection(
            instance_ids=_list_of_texts(selection, "instance_ids"),
            business_key=text_field(selection, "business_key"),
            waiting_at_element_id=text_field(selection, "waiting_at_element_id"),
            with_incidents=_flag(selection, "with_incidents"),
        )
    except ApiError as error:  # named by its path in the body
        field_name, description = error.field_violations[0]
        raise bad_request(f"selection.{field_name}", description) from None


def _page_size(body: dict[str, Any]) -> int:
    value = body.get("page_size", 0)
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= INT32_MAX:
        raise bad_request("page_size", "must be a whole number")
    return value


async def plan_migration(request: Request) -> JSONResponse:
    """The dry run: a POST because the plan is a body, but it changes nothing."""
    session = session_of(request)
    check_csrf(request, session)
    body = await json_body(request)
    reply = (
        await backends(request)
        .orchestrator()
        .PlanMigration(
            pb.PlanMigrationRequest(
                plan=_plan(body),
                selection=_selection(body),
                page_size=_page_size(body),
                page_token=text_field(body, "page_token"),
            ),
            **as_person(session.token),
        )
    )
    return JSONResponse(message_json(reply))


async def start_migration(request: Request) -> JSONResponse:
    session = session_of(request)
    check_csrf(request, session)
    body = await json_body(request)
    plan, selection = _plan(body), _selection(body)
    reason = text_field(body, "reason").strip()
    if not reason:
        raise bad_request("reason", "is required: why the instances move")
    reply = (
        await backends(request)
        .orchestrator()
        .StartMigration(
            pb.StartMigrationRequest(
                plan=plan, selection=selection, reason=reason, skip_refused=_flag(body, "skip_refused")
            ),
            **as_person(session.token),
        )
    )
    return JSONResponse(message_json(reply))


async def get_migration(request: Request) -> JSONResponse:
    session = session_of(request)
    reply = (
        await backends(request)
        .orchestrator()
        .GetMigration(
            pb.GetMigrationRequest(batch_id=request.path_params["batch_id"]), **as_person(session.token)
        )
    )
    return JSONResponse(message_json(reply))


async def list_migrations(request: Request) -> JSONResponse:
    session = session_of(request)
    params = request.query_params
    reply = (
        await backends(request)
        .orchestrator()
        .ListMigrations(
            pb.ListMigrationsRequest(
                process_id=params.get("process_id", ""),
                page_size=int_param(request, "page_size"),
                page_token=params.get("page_token", ""),
            ),
            **as_person(session.token),
        )
    )
    return JSONResponse(message_json(reply))


async def modify_instance(request: Request) -> JSONResponse:
    session = session_of(request)
    check_csrf(request, session)
    body = await json_body(request)
    cancel = _list_of_texts(body, "cancel_element_ids")
    activate = text_field(body, "activate_element_id")
    if not cancel and not activate:
        raise bad_request("activate_element_id", "name an element to activate or elements to cancel")
    reason = text_field(body, "reason").strip()
    if not reason:
        raise bad_request("reason", "is required: why the instance is moved")
    reply = (
        await backends(request)
        .orchestrator()
        .ModifyInstance(
            pb.ModifyInstanceRequest(
                instance_id=request.path_params["instance_id"],
                cancel_element_ids=cancel,
                activate_element_id=activate,
                process_id=text_field(body, "process_id"),
                reason=reason,
                variables_json=json.dumps(object_field(body, "variables")) if "variables" in body else "",
            ),
            **as_person(session.token),
        )
    )
    return JSONResponse(message_json(reply))


ROUTES = [
    Route("/api/me", me),
    Route("/api/definitions", list_definitions),
    Route("/api/definitions/{definition_id}", get_definition),
    Route("/api/deployments/validate", validate_deployment, methods=["POST"]),
    Route("/api/deployments", deploy, methods=["POST"]),
    Route("/api/operations", operations),
    Route("/api/processes/{process_id}/statistics", statistics),
    Route("/api/instances", list_instances),
    Route("/api/instances/{instance_id}", get_instance),
    Route("/api/instances/{instance_id}/cancel", cancel_instance, methods=["POST"]),
    Route("/api/instances/{instance_id}/modify", modify_instance, methods=["POST"]),
    Route("/api/migrations", list_migrations),
    Route("/api/migrations", start_migration, methods=["POST"]),
    Route("/api/migrations/plan", plan_migration, methods=["POST"]),
    Route("/api/migrations/{batch_id}", get_migration),
    Route("/api/incidents/{incident_id}/resolve", resolve_incident, methods=["POST"]),
    Route("/api/messages", publish_message, methods=["POST"]),
    Route("/api/tasks", list_tasks),
    Route("/api/tasks/{task_id}", get_task),
    Route("/api/tasks/{task_id}/claim", claim_task, methods=["POST"]),
    Route("/api/tasks/{task_id}/unclaim", unclaim_task, methods=["POST"]),
    Route("/api/tasks/{task_id}/complete", complete_task, methods=["POST"]),
]
