"""The commands the firm's staff and ops run against a running system: tasks, instances, incidents,
deployments, messages and events. Each talks to the orchestrator (or NATS) exactly as any client would."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import grpc

from consultflow.api.events.v1 import events_pb2
from consultflow.api.orchestrator.v1 import orchestrator_pb2 as pb
from consultflow.api.orchestrator.v1 import orchestrator_pb2_grpc as pb_grpc
from consultflow.cli import output as out
from consultflow.cli.system import read_endpoints
from consultflow.platform.local_identity import LocalIdentity
from consultflow.platform.messaging import STATUS_STREAM, NatsCredentials, open_client
from consultflow.platform.nats_access import READER
from consultflow.platform.security import secure_channel

STATES = {
    "active": pb.INSTANCE_STATE_ACTIVE,
    "completed": pb.INSTANCE_STATE_COMPLETED,
    "canceled": pb.INSTANCE_STATE_CANCELED,
}
STATE_NAMES = {v: k for k, v in STATES.items()}
OUTCOMES = {v: k.removeprefix("MESSAGE_OUTCOME_").lower() for k, v in pb.MessageOutcome.items()}
EXIT_BY_CODE = {
    grpc.StatusCode.NOT_FOUND: out.EXIT_NOT_FOUND,
    grpc.StatusCode.INVALID_ARGUMENT: out.EXIT_REFUSED,
    grpc.StatusCode.FAILED_PRECONDITION: out.EXIT_REFUSED,
    grpc.StatusCode.ALREADY_EXISTS: out.EXIT_REFUSED,
    grpc.StatusCode.PERMISSION_DENIED: out.EXIT_REFUSED,
    grpc.StatusCode.UNAUTHENTICATED: out.EXIT_REFUSED,
    grpc.StatusCode.UNAVAILABLE: out.EXIT_UNAVAILABLE,
    grpc.StatusCode.DEADLINE_EXCEEDED: out.EXIT_UNAVAILABLE,
}


class Client:
    """The orchestrator and NATS as `consultflow up` (or the environment) says where they are, called as
    the person `--as` names: a token from $CONSULTFLOW_TOKEN (e.g. from the firm's OIDC provider) or the
    file $CONSULTFLOW_TOKEN_FILE names, else
    one the local issuer of `consultflow up` signs for that person (cli/people.toml, or --roles/--groups).
    """

    def __init__(self, args: argparse.Namespace) -> None:
        self._args = args
        self._channel: grpc.Channel | None = None

    def ca(self) -> Path:
        configured = os.environ.get("CONSULTFLOW_CA_FILE", "")
        return Path(configured) if configured else Path(read_endpoints(Path(self._args.data_dir))["ca"])

    def token(self) -> str:
        configured = os.environ.get("CONSULTFLOW_TOKEN", "")
        if configured:
            return configured
        token_file = os.environ.get("CONSULTFLOW_TOKEN_FILE", "")
        if token_file:  # a mounted Secret (the Kubernetes release Job's token), re-read at each call
            return Path(token_file).read_text(encoding="utf-8").strip()
        identity = LocalIdentity.existing(self.ca().parents[1])
        name = getattr(self._args, "as_", None) or os.environ.get("CONSULTFLOW_AS", "") or "otto"
        roles = getattr(self._args, "roles", None)
        if roles:
            groups = [g for g in (getattr(self._args, "groups", None) or "").split(",") if g]
            engagement = getattr(self._args, "engagement", None) or ""
            return identity.token(name, [r for r in roles.split(",") if r], groups, engagement)
        return identity.token_of(name)

    def nats_credentials(self) -> NatsCredentials | None:
        """The read-only NATS user: $CONSULTFLOW_NATS_USER/_PASSWORD_FILE (TLS trusting
        $CONSULTFLOW_NATS_CA_FILE), else the `reader` of `consultflow up` (trusting its CA); none when
        neither says (an open server)."""
        user = os.environ.get("CONSULTFLOW_NATS_USER", "")
        password_file = os.environ.get("CONSULTFLOW_NATS_PASSWORD_FILE", "")
        ca = os.environ.get("CONSULTFLOW_NATS_CA_FILE", "")
        if user and password_file:
            return NatsCredentials.from_file(user, Path(password_file), Path(ca) if ca else None)
        with contextlib.suppress(FileNotFoundError):
            endpoints = read_endpoints(Path(self._args.data_dir))
            local = endpoints.get("nats_reader_password_file", "")
            if local:
                return NatsCredentials.from_file(READER, Path(local), Path(ca or endpoints["ca"]))
        return None

    def endpoint(self, name: str) -> str:
        flag = getattr(self._args, name, None)
        if flag:
            return str(flag)
        env = os.environ.get(
            f"CONSULTFLOW_{name.upper()}_ADDRESS" if name != "nats" else "CONSULTFLOW_NATS_URL"
        )
        if env:
            return env
        return read_endpoints(Path(self._args.data_dir))[name]

    @property
    def orchestrator(self) -> pb_grpc.OrchestratorServiceStub:
        if self._channel is None:
            self._channel = secure_channel(self.endpoint("orchestrator"), self.ca(), self.token())
        return pb_grpc.OrchestratorServiceStub(self._channel)


def run(args: argparse.Namespace, command: Callable[[Client, argparse.Namespace], int | None]) -> int:
    """Runs a command and turns failures into one clear line and an exit code scripts can rely on."""
    try:
        return command(Client(args), args) or out.EXIT_OK
    except grpc.RpcError as error:
        code, details = out.rpc_failure(error)
        out.error(f"{code.name.lower().replace('_', ' ')}: {details}")
        return EXIT_BY_CODE.get(code, out.EXIT_ERROR)
    except FileNotFoundError as error:
        out.error(str(error))
        return out.EXIT_UNAVAILABLE
    except ValueError as error:
        out.error(str(error))
        return out.EXIT_USAGE


def parse_assignments(items: Sequence[str], option: str) -> dict[str, Any]:
    """`k=v` pairs; a value that reads as JSON (a number, true, a list) is that value, else the text."""
    values: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ValueError(f"{option} {item!r}: expected NAME=VALUE")
        try:
            values[key] = json.loads(raw)
        except ValueError:
            values[key] = raw
    return values


# ---------------------------------------------------------------------------------------------- tasks


def cmd_tasks(client: Client, args: argparse.Namespace) -> int:
    response = client.orchestrator.ListUserTasks(
        pb.ListUserTasksRequest(
            candidate_group=args.group or "",
            assignee=args.assignee or "",
            candidate_user=args.user or "",
            instance_id=args.instance or "",
            include_closed=args.all,
            page_size=500,
        ),
        timeout=10,
    )
    if args.json:
        out.print_json([out.to_dict(t) for t in response.user_tasks])
        return 0
    out.table(
        ["id", "task", "group", "assignee", "engagement", "waiting", "due"],
        [
            (
                t.user_task_id,
                t.name,
                ",".join(t.candidate_groups),
                t.assignee or "-",
                t.business_key or t.instance_id[:8],
                out.ago(t.created_at) if t.state == "OPEN" else t.state.lower(),
                out.when(t.due_at),
            )
            for t in response.user_tasks
        ],
        empty="no open tasks",
    )
    return 0


def cmd_task_show(client: Client, args: argparse.Namespace) -> int:
    task = client.orchestrator.GetUserTask(pb.GetUserTaskRequest(user_task_id=args.id), timeout=10)
    if args.json:
        out.print_json(out.with_json_field(task, "variables_json", "variables"))
        return 0
    out.fields(
        {
            "task": task.name,
            "id": task.user_task_id,
            "state": task.state,
            "group": ", ".join(task.candidate_groups) or "-",
            "candidates": ", ".join(task.candidate_users) or "-",
            "assignee": task.assignee or "-",
            "engagement": task.business_key or "-",
            "instance": task.instance_id,
            "due": out.when(task.due_at) or "-",
        }
    )
    if task.documentation:
        print(f"\n{task.documentation}")
    if task.form_fields:
        print("\nform (complete with --set FIELD=VALUE):")
        out.table(
            ["field", "type", "required", "allowed values", "label"],
            [
                (f.id, f.type, "yes" if f.required else "", ", ".join(v.id for v in f.values), f.label)
                for f in task.form_fields
            ],
        )
    variables = json.loads(task.variables_json or "{}")
    if variables:
        print("\nwhat the task sees:")
        out.fields({k: json.dumps(v, ensure_ascii=False) for k, v in sorted(variables.items())})
    return 0


def cmd_task_claim(client: Client, args: argparse.Namespace) -> int:
    task = client.orchestrator.ClaimUserTask(
        pb.ClaimUserTaskRequest(user_task_id=args.id, force=args.force), timeout=10
    )
    print(f"{task.name} is now assigned to {task.assignee}")
    return 0


def cmd_task_unclaim(client: Client, args: argparse.Namespace) -> int:
    task = client.orchestrator.UnclaimUserTask(pb.UnclaimUserTaskRequest(user_task_id=args.id), timeout=10)
    print(f"{task.name} is back with its candidates")
    return 0


def cmd_task_complete(client: Client, args: argparse.Namespace) -> int:
    values = parse_assignments(args.set or [], "--set")
    client.orchestrator.CompleteUserTask(
        pb.CompleteUserTaskRequest(
            user_task_id=args.id,
            variables_json=json.dumps(values, ensure_ascii=False),
        ),
        timeout=30,
    )
    print(f"completed {args.id}")
    return 0


# ------------------------------------------------------------------------------------------ instances


def cmd_instances(client: Client, args: argparse.Namespace) -> int:
    response = client.orchestrator.ListInstances(
        pb.ListInstancesRequest(
            process_id=args.process or "",
            state=STATES.get(args.state or "", pb.INSTANCE_STATE_UNSPECIFIED),
            business_key=args.key or "",
            with_incidents=args.incidents,
            page_size=args.limit,
            query=getattr(args, "query", None) or "",
        ),
        timeout=10,
    )
    if args.json:
        out.print_json([out.to_dict(i) for i in response.instances])
        return 0
    out.table(
        ["id", "process", "key", "state", "waiting at", "incidents", "started"],
        [
            (
                i.instance_id,
                i.definition_id,
                i.business_key or "-",
                STATE_NAMES.get(i.state, "?"),
                ", ".join(i.waiting_at) or "-",
                i.open_incidents or "",
                out.ago(i.created_at),
            )
            for i in response.instances
        ],
        empty="no instances",
    )
    return 0


def cmd_instance_show(client: Client, args: argparse.Namespace) -> int:
    instance = client.orchestrator.GetInstance(pb.GetInstanceRequest(instance_id=args.id), timeout=10)
    if args.json:
        out.print_json(out.with_json_field(instance, "variables_json", "variables"))
        return 0
    variables = json.loads(instance.variables_json or "{}")
    out.fields(
        {
            "instance": instance.instance_id,
            "process": instance.definition_id,
            "key": instance.business_key or "-",
            "state": STATE_NAMES.get(instance.state, "?"),
            "started": out.when(instance.created_at),
            "ended": out.when(instance.ended_at) or "-",
        }
    )
    print("\nwaiting at:")
    out.table(
        ["element", "name", "type", "state"],
        [(a.element_id, a.name, a.type, a.state) for a in instance.active_elements],
        empty="  nothing (the instance has ended)",
    )
    if instance.user_tasks:
        print("\nopen user tasks:")
        out.table(
            ["id", "task", "group"],
            [(t.user_task_id, t.name, ",".join(t.candidate_groups)) for t in instance.user_tasks],
        )
    if instance.jobs:
        print("\nopen jobs:")
        out.table(
            ["operation", "state", "attempt", "retries"],
            [(j.operation, j.state, j.attempt, j.retries) for j in instance.jobs],
        )
    if instance.incidents:
        print("\nincidents:")
        out.table(
            ["id", "kind", "element", "message"],
            [(i.incident_id, i.kind, i.element_id, i.message) for i in instance.incidents],
        )
    print("\ntimeline:")
    out.table(
        ["#", "time", "event", "element", "detail"],
        [
            (e.sequence, out.when(e.time), e.type, e.element_name or e.element_id, e.detail[:80])
            for e in instance.history
        ],
    )
    if variables:
        print("\nvariables:")
        out.fields({k: json.dumps(v, ensure_ascii=False)[:120] for k, v in sorted(variables.items())})
    return 0


def cmd_instance_cancel(client: Client, args: argparse.Namespace) -> int:
    client.orchestrator.CancelInstance(
        pb.CancelInstanceRequest(instance_id=args.id, reason=args.reason or ""), timeout=30
    )
    print(f"canceled {args.id}")
    return 0


def cmd_start(client: Client, args: argparse.Namespace) -> int:
    variables = parse_assignments(args.var or [], "--var")
    response = client.orchestrator.CreateInstance(
        pb.CreateInstanceRequest(
            process_id=args.process,
            version=args.version,
            variables_json=json.dumps(variables, ensure_ascii=False),
            business_key=args.key or "",
        ),
        timeout=30,
    )
    if args.json:
        out.print_json(out.to_dict(response))
    elif response.created:
        print(f"started {response.definition_id}: instance {response.instance_id}")
    else:
        print(f"already running with key {args.key}: instance {response.instance_id}")
    return 0


# -------------------------------------------------------------------------------------- incidents


def cmd_audit(client: Client, args: argparse.Namespace) -> int:
    """Who claimed, completed, started, cancelled, deployed and resolved what (ops)."""
    if not (args.key or args.instance or args.who):
        raise ValueError("name an engagement (--key), an instance (--instance) or a person (--who)")
    response = client.orchestrator.ListAuditEntries(
        pb.ListAuditEntriesRequest(
            business_key=args.key or "", instance_id=args.instance or "", actor=args.who or "", page_size=500
        ),
        timeout=10,
    )
    if args.json:
        out.print_json([out.to_dict(e) for e in response.entries])
        return 0
    out.table(
        ["when", "who", "action", "engagement", "target", "detail"],
        [
            (out.when(e.time), e.actor, e.action, e.business_key, e.target, e.detail[:50])
            for e in response.entries
        ],
        empty="nothing recorded",
    )
    return 0


def cmd_incidents(client: Client, args: argparse.Namespace) -> int:
    response = client.orchestrator.ListIncidents(
        pb.ListIncidentsRequest(instance_id=args.instance or "", include_resolved=args.all, page_size=500),
        timeout=10,
    )
    if args.json:
        out.print_json([out.to_dict(i) for i in response.incidents])
        return 0
    out.table(
        ["id", "instance", "process", "kind", "element", "message", "since"],
        [
            (
                i.incident_id,
                i.instance_id,
                i.process_id,
                i.kind,
                i.element_id,
                i.message[:60],
                out.ago(i.created_at),
            )
            for i in response.incidents
        ],
        empty="no open incidents",
    )
    return 0


def cmd_incident_retry(client: Client, args: argparse.Namespace) -> int:
    client.orchestrator.ResolveIncident(
        pb.ResolveIncidentRequest(incident_id=args.id, retries=args.retries), timeout=30
    )
    print(f"resolved {args.id}: retrying")
    return 0


# ---------------------------------------------------------------------------- deploy, message, events


def cmd_deploy(client: Client, args: argparse.Namespace) -> int:
    files: list[Path] = []
    for path in map(Path, args.paths):
        if path.is_dir():
            files.extend(sorted(p for p in path.iterdir() if p.suffix in (".bpmn", ".dmn")))
        elif path.is_file():
            files.append(path)
        else:
            raise FileNotFoundError(f"{path}: no such file or folder")
    resources = [pb.Resource(name=f.name, content=f.read_bytes()) for f in files]
    if getattr(args, "validate", False):
        return _validate(client, resources, args.json)
    response = client.orchestrator.DeployResources(
        pb.DeployResourcesRequest(resources=resources, note=getattr(args, "note", None) or ""),
        timeout=60,
    )
    if args.json:
        out.print_json(out.to_dict(response))
        return 0
    for definition in response.definitions:
        why = f"  ({definition.note})" if definition.process_id in response.callers else ""
        print(f"deployed {definition.definition_id}  {definition.name}{why}")
    for process_id in response.unchanged:
        print(f"unchanged {process_id}")
    return 0


def _validate(client: Client, resources: list[pb.Resource], as_json: bool) -> int:
    """Every check a deploy makes, deploying nothing: exit 0 when a deploy would be accepted."""
    response = client.orchestrator.ValidateResources(
        pb.ValidateResourcesRequest(resources=resources), timeout=60
    )
    if as_json:
        out.print_json(out.to_dict(response))
    else:
        out.table(
            ["file", "element", "rule", "problem"],
            [(p.resource_name, p.element_id or "-", p.rule, p.message) for p in response.problems],
            empty="no problems: a deploy of these files would be accepted",
        )
        if response.callers and not response.problems:
            print(f"a deploy also makes new versions of: {', '.join(response.callers)}")
    return out.EXIT_REFUSED if response.problems else 0


def cmd_definitions(client: Client, args: argparse.Namespace) -> int:
    response = client.orchestrator.ListDefinitions(
        pb.ListDefinitionsRequest(latest_only=not args.all), timeout=10
    )
    if args.json:
        out.print_json([out.to_dict(d) for d in response.definitions])
        return 0
    out.table(
        ["process", "version", "name", "file", "deployed"],
        [
            (d.process_id, d.version, d.name, d.resource_name, out.when(d.deployed_at))
            for d in response.definitions
        ],
    )
    return 0


def cmd_message(client: Client, args: argparse.Namespace) -> int:
    variables = parse_assignments(args.var or [], "--var")
    response = client.orchestrator.PublishMessage(
        pb.PublishMessageRequest(
            name=args.name,
            correlation_key=args.key or "",
            variables_json=json.dumps(variables, ensure_ascii=False),
            ttl_seconds=args.ttl,
            message_id=args.id or "",
        ),
        timeout=30,
    )
    outcome = OUTCOMES.get(response.outcome, "?")
    if args.json:
        out.print_json(
            {"outcome": outcome, "instance_id": response.instance_id, "message_key": response.message_key}
        )
    else:
        print(
            f"{args.name}: {outcome}"
            + (f" (instance {response.instance_id})" if response.instance_id else "")
        )
    return 0 if outcome != "dropped" else out.EXIT_NOT_FOUND


def cmd_events(client: Client, args: argparse.Namespace) -> int:
    """Follows the STATUS stream (from now, or from its start with --from-start)."""
    from nats.js.api import DeliverPolicy

    async def follow() -> int:
        nc = await open_client(client.endpoint("nats"), client.nats_credentials())
        policy = DeliverPolicy.ALL if args.from_start else DeliverPolicy.NEW
        sub = await nc.jetstream().subscribe(
            args.subject, stream=STATUS_STREAM, ordered_consumer=True, deliver_policy=policy
        )
        shown = 0
        try:
            while args.count == 0 or shown < args.count:
                try:
                    message = await sub.next_msg(timeout=args.idle if args.idle else 3600)
                except TimeoutError:
                    if args.idle:
                        break
                    continue
                event = events_pb2.StatusEvent.FromString(message.data)
                if args.json:
                    data = out.with_json_field(event, "payload_json", "payload")
                    print(json.dumps(data, ensure_ascii=False), flush=True)
                else:
                    keys = " ".join(
                        f"{k}={v}" for k, v in sorted(event.correlation.items()) if k != "process_id"
                    )
                    print(
                        f"{out.when(event.time)}  {message.subject:<45} {event.subject}  {keys}", flush=True
                    )
                shown += 1
        finally:
            await nc.close()
        return 0

    try:
        return asyncio.run(follow())
    except KeyboardInterrupt:
        return 0


# -------------------------------------------------------------------------------------- the client


def cmd_client(client: Client, args: argparse.Namespace) -> int:
    """Acts for the client through the services' own RPCs, exactly as the demo does."""
    from consultflow.demo import driver

    endpoints = read_endpoints(Path(args.data_dir))
    clients = driver.Clients(endpoints)  # the client's own acts are signed as the engagement's client
    story = driver.Story(key=args.key, title="", inquiry={"contact_name": args.name})
    if args.action == "report-acceptance":
        story.acceptance = ["failed" if args.failed else "passed"]
    if args.action == "answer-survey":
        story.ratings = dict.fromkeys(story.ratings, args.rating)  # the survey's questions, all alike
    acts = {
        "accept-quote": driver.accept_quote,
        "sign": driver.sign_contract,
        "report-acceptance": driver.report_acceptance,
        "answer-survey": driver.answer_survey,
    }
    try:
        acts[args.action](clients, story)
    finally:
        clients.close()
    if not story.steps:
        out.error(f"nothing to do: engagement {args.key} has nothing waiting for the client's {args.action}")
        return out.EXIT_REFUSED
    for _, step in story.steps:
        print(step)
    return 0
