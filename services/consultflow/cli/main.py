"""The `consultflow` command."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from datetime import timedelta
from pathlib import Path
from types import FrameType
from typing import Any

from consultflow.cli import migration as migration_cli
from consultflow.cli import outbox as outbox_cli
from consultflow.cli import staff as staff_cli
from consultflow.cli.system import LocalSystem, SupervisionEvent, replica_counts


def data_dir_default() -> Path:
    return Path(os.environ.get("CONSULTFLOW_DATA_DIR", ".consultflow"))


def report_supervision(event: SupervisionEvent) -> None:
    """One line per restart on the terminal of `consultflow up`; a crash loop in capitals, on stderr."""
    stamp = time.strftime("%H:%M:%S")
    if event.kind == "gave_up":
        print(
            f"{stamp} ERROR {event.name} {event.detail}; the rest keeps running — fix it and start "
            "`consultflow up` again",
            file=sys.stderr,
            flush=True,
        )
    else:
        print(f"{stamp} {event.name} {event.detail}", flush=True)


def cmd_up(args: argparse.Namespace) -> int:
    """Runs NATS and every component until Ctrl-C or SIGTERM, restarting any that dies (`supervise`)."""
    stop = False

    def on_signal(signum: int, frame: FrameType | None) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    extra_env: dict[str, str] = {}
    marker = ""
    if args.demo_timers:
        from consultflow.cli.demo import DEMO_TIMERS, demo_env

        extra_env, marker = demo_env(), DEMO_TIMERS
    system = LocalSystem(
        args.data_dir,
        extra_env=extra_env,
        marker=marker,
        replicas=replica_counts(args.orchestrators, args.replicas),
        nats_cluster=args.nats_cluster,
    )
    started = time.monotonic()
    print(f"starting consultflow (data in {args.data_dir.resolve()}) …", flush=True)
    try:
        endpoints = system.start()
    except Exception as exc:
        print(f"consultflow: could not start: {exc}", file=sys.stderr)
        system.stop()
        return 1
    elapsed = time.monotonic() - started
    width = max(len(n) for n in endpoints)
    print(f"\nconsultflow is up in {elapsed:.1f}s — every gRPC endpoint answers SERVING\n")
    print(f"  {'component'.ljust(width)}  address")
    for name, address in endpoints.items():
        print(f"  {name.ljust(width)}  {address}")
    if "console" in endpoints:
        print(f"\nconsole: {endpoints['console']}  (sign in: `consultflow console --as ana|bella|otto`)")
    print(f"\nendpoints: {args.data_dir / 'endpoints.json'}   logs: {args.data_dir / 'logs'}/")
    print("press Ctrl-C to stop\n", flush=True)
    system.supervise(lambda: stop, interval=0.5, report=report_supervision)
    print("stopping …", flush=True)
    system.stop()
    print("stopped", flush=True)
    return 0


def _count(text: str) -> int:
    """A number of processes: 1 or more."""
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of processes (1 or more)")
    return int(text)


def signed_in(parser: argparse.ArgumentParser, required: bool = False) -> None:
    """The options that say who calls: a person of cli/people.toml, or a name with explicit roles."""
    parser.add_argument(
        "--as",
        dest="as_",
        required=required,
        help="who you are: a name from cli/people.toml (default $CONSULTFLOW_AS or otto, an ops person)",
    )
    parser.add_argument(
        "--roles", help="comma separated roles instead of people.toml's (analyst, staff, ops …)"
    )
    parser.add_argument("--groups", help="comma separated candidate groups (with --roles)")
    parser.add_argument("--engagement", help="the engagement a client's token is for (with --roles client)")


def cmd_token(args: argparse.Namespace) -> int:
    """Prints a token signed by the local issuer of the system under --data-dir."""
    from consultflow.cli.system import read_endpoints
    from consultflow.platform.local_identity import LocalIdentity

    units = {"m": 60, "h": 3600, "d": 86400}
    if not args.ttl or args.ttl[-1] not in units or not args.ttl[:-1].isdigit():
        print(f"--ttl: {args.ttl!r} is not like 30m, 8h or 7d", file=sys.stderr)
        return 2
    ttl = timedelta(seconds=int(args.ttl[:-1]) * units[args.ttl[-1]])
    try:
        identity = LocalIdentity.existing(Path(read_endpoints(args.data_dir)["ca"]).parents[1])
    except (FileNotFoundError, KeyError) as error:
        print(str(error), file=sys.stderr)
        return 5
    if args.roles:
        groups = [g for g in (args.groups or "").split(",") if g]
        roles = [r for r in args.roles.split(",") if r]
        print(identity.issuer.mint(args.as_, roles, groups, args.engagement or "", ttl))
    else:
        try:
            print(identity.token_of(args.as_, ttl))
        except ValueError as error:
            print(str(error), file=sys.stderr)
            return 2
    return 0


def cmd_console(args: argparse.Namespace) -> int:
    """Opens (or prints) a one-time sign-in link to the console of the system under --data-dir."""
    import webbrowser

    from consultflow.cli.system import read_endpoints
    from consultflow.console.tickets import deposit
    from consultflow.platform.local_identity import LocalIdentity, people

    try:
        endpoints = read_endpoints(args.data_dir)
        identity = LocalIdentity.existing(Path(endpoints["ca"]).parents[1])
        url = endpoints["console"]
    except (FileNotFoundError, KeyError) as error:
        print(f"no console found: {error}", file=sys.stderr)
        return 5
    if args.roles:
        roles = [r for r in args.roles.split(",") if r]
        groups = [g for g in (args.groups or "").split(",") if g]
    else:
        known = people()
        if args.as_ not in known:
            print(f"{args.as_!r} is not in people.toml; give --roles (and --groups) instead", file=sys.stderr)
            return 2
        roles, groups = list(known[args.as_].roles), list(known[args.as_].groups)
    ticket = deposit(args.data_dir.resolve() / "console-tickets", identity.issuer, args.as_, roles, groups)
    link = f"{url}/signin?ticket={ticket}"
    if args.print or not webbrowser.open(link):
        print(link)
    else:
        print(f"opened the console for {args.as_} in your browser (the link works once, for 5 minutes)")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="consultflow",
        description="A consulting firm's process regulation as executable BPMN: run it, drive it, watch it.",
        epilog="Exit codes: 0 ok, 1 error, 2 usage, 3 not found, "
        "4 refused (bad input, a rule, or not yours to do), 5 unavailable (the system is not running).",
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=data_dir_default(),
        help="where data, logs and endpoints.json live (default: $CONSULTFLOW_DATA_DIR or .consultflow)",
    )
    parser.add_argument("--orchestrator", help="orchestrator address (default: from endpoints.json)")
    parser.add_argument("--nats", help="NATS URL (default: from endpoints.json)")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    up = commands.add_parser("up", help="run NATS, the orchestrator and the five services until Ctrl-C")
    up.add_argument(
        "--demo-timers", action="store_true", help="shorten the diagrams' timers as `consultflow demo` does"
    )
    up.add_argument(
        "--orchestrators",
        type=_count,
        default=1,
        metavar="N",
        help="orchestrator processes sharing its database (default 1)",
    )
    up.add_argument(
        "--replicas",
        type=_count,
        default=1,
        metavar="M",
        help="processes of each service, each sharing its service's database (default 1)",
    )
    up.add_argument(
        "--nats-cluster",
        type=int,
        choices=(1, 3, 5),
        default=1,
        metavar="K",
        help="nats-servers: 1, or a JetStream cluster of 3 (or 5) on loopback, streams on every node",
    )
    up.set_defaults(func=cmd_up)

    outbox = commands.add_parser(
        "outbox", help="list the messages the components set aside as unpublishable, or requeue one"
    )
    outbox.add_argument(
        "--requeue", metavar="COMPONENT:SEQ", help="give one set-aside message back to its relay"
    )
    outbox.set_defaults(func=outbox_cli.run)

    token = commands.add_parser(
        "token", help="print a token of the local issuer (for grpcurl or another client)"
    )
    signed_in(token, required=True)
    token.add_argument("--ttl", default="8h", help="how long it is valid: 30m, 8h, 7d (default 8h)")
    token.set_defaults(func=cmd_token)

    console = commands.add_parser(
        "console", help="open the console in your browser, signed in as someone (a one-time link)"
    )
    signed_in(console, required=True)
    console.add_argument("--print", action="store_true", help="print the link instead of opening a browser")
    console.set_defaults(func=cmd_console)

    demo = commands.add_parser("demo", help="run sample engagements through the whole regulation")
    demo.add_argument("--keep-running", action="store_true", help="leave the demo system running afterwards")
    demo.add_argument(
        "--timeout", type=float, default=600, help="give up after this many seconds (default 600)"
    )
    demo.set_defaults(func=run_demo)

    def staff(name: str, command: Any, help: str, parent: Any = commands) -> argparse.ArgumentParser:
        sub: argparse.ArgumentParser = parent.add_parser(name, help=help, description=help)
        sub.set_defaults(func=lambda args, command=command: staff_cli.run(args, command))
        signed_in(sub)
        return sub

    tasks = staff("tasks", staff_cli.cmd_tasks, "list open user tasks (by role, assignee or instance)")
    tasks.add_argument("--group", help="candidate group (a role: business, experts, legal, ...)")
    tasks.add_argument("--assignee", help="who claimed them")
    tasks.add_argument(
        "--user", help="a person's inbox: tasks naming them as candidate or assignee (with --group: either)"
    )
    tasks.add_argument("--instance", help="only this instance's tasks")
    tasks.add_argument("--all", action="store_true", help="include completed and canceled tasks")
    tasks.add_argument("--json", action="store_true", help="print JSON")

    task = commands.add_parser("task", help="show, claim or complete one user task")
    task_commands = task.add_subparsers(dest="task_command", required=True, metavar="ACTION")
    show = staff(
        "show", staff_cli.cmd_task_show, "show a task: its form, allowed values and data", task_commands
    )
    show.add_argument("id")
    show.add_argument("--json", action="store_true", help="print JSON")
    claim = staff("claim", staff_cli.cmd_task_claim, "claim a task for yourself", task_commands)
    claim.add_argument("id")
    claim.add_argument("--force", action="store_true", help="take it over from whoever holds it")
    unclaim = staff(
        "unclaim", staff_cli.cmd_task_unclaim, "give a claimed task back to its candidates", task_commands
    )
    unclaim.add_argument("id")
    complete = staff(
        "complete", staff_cli.cmd_task_complete, "complete a task with its form's values", task_commands
    )
    complete.add_argument("id")
    complete.add_argument(
        "--set", action="append", metavar="FIELD=VALUE", help="a form field (repeat for each)"
    )

    instances = staff("instances", staff_cli.cmd_instances, "list process instances")
    instances.add_argument("--process", help="process id, e.g. engagement")
    instances.add_argument("--state", choices=sorted(staff_cli.STATES), help="active, completed or canceled")
    instances.add_argument("--key", help="business key (the engagement id)")
    instances.add_argument("--incidents", action="store_true", help="only instances with open incidents")
    instances.add_argument("--query", help="a prefix of the business key or of the instance id")
    instances.add_argument("--limit", type=int, default=100, help="at most this many (default 100)")
    instances.add_argument("--json", action="store_true", help="print JSON")

    instance = commands.add_parser("instance", help="show, cancel or move one instance")
    instance_commands = instance.add_subparsers(dest="instance_command", required=True, metavar="ACTION")
    ishow = staff(
        "show",
        staff_cli.cmd_instance_show,
        "timeline, where it waits, variables and incidents",
        instance_commands,
    )
    ishow.add_argument("id")
    ishow.add_argument("--json", action="store_true", help="print JSON")
    cancel = staff("cancel", staff_cli.cmd_instance_cancel, "cancel an instance", instance_commands)
    cancel.add_argument("id")
    cancel.add_argument("--reason", help="why (recorded in its history)")
    move = staff(
        "move",
        migration_cli.cmd_move,
        "repair one instance: cancel waiting elements and begin another (ops)",
        instance_commands,
    )
    move.add_argument("id")
    move.add_argument(
        "--cancel",
        action="append",
        default=[],
        metavar="ELEMENT",
        help="a waiting element to cancel (repeat)",
    )
    move.add_argument("--to", metavar="ELEMENT", help="the element to begin at (omit: only cancel)")
    move.add_argument("--process", help="the process holding the elements (default: the instance's own)")
    move.add_argument("--reason", required=True, help="why (audited, and kept in its history)")
    move.add_argument("--var", action="append", metavar="NAME=VALUE", help="a variable to set first")
    move.add_argument("--json", action="store_true", help="print JSON")

    migration = commands.add_parser(
        "migration", help="move running instances to another version of their process (ops)"
    )
    migration_commands = migration.add_subparsers(dest="migration_command", required=True, metavar="ACTION")
    mplan = staff(
        "plan",
        migration_cli.cmd_plan,
        "dry run: what a plan would do to each selected instance (exit 4 if any is refused)",
        migration_commands,
    )
    migration_cli.add_plan_options(mplan)
    mplan.add_argument("--json", action="store_true", help="print JSON")
    mrun = staff(
        "run",
        migration_cli.cmd_run,
        "start a batch: each instance moves in one transaction or not at all",
        migration_commands,
    )
    migration_cli.add_plan_options(mrun)
    mrun.add_argument("--reason", required=True, help="why (audited, and kept in each instance's history)")
    mrun.add_argument(
        "--skip-refused", action="store_true", help="migrate the instances the plan applies to, skip the rest"
    )
    mrun.add_argument("--wait", action="store_true", help="print progress until every instance is settled")
    mrun.add_argument(
        "--wait-unavailable",
        type=float,
        default=300.0,
        metavar="SECONDS",
        help="with --wait: how long to wait for an orchestrator that went away (default 300)",
    )
    mstatus = staff(
        "status", migration_cli.cmd_status, "the batches, or one batch with its instances", migration_commands
    )
    mstatus.add_argument("batch", nargs="?", help="a batch id (omit: list the batches)")
    mstatus.add_argument("--process", help="only batches of this process")
    mstatus.add_argument("--limit", type=int, default=50, help="at most this many batches (default 50)")
    mstatus.add_argument("--json", action="store_true", help="print JSON")

    incidents = staff("incidents", staff_cli.cmd_incidents, "list open incidents")
    incidents.add_argument("--instance", help="only this instance's incidents")
    incidents.add_argument("--all", action="store_true", help="include resolved ones")
    incidents.add_argument("--json", action="store_true", help="print JSON")
    incident = commands.add_parser("incident", help="retry what an incident stopped")
    incident_commands = incident.add_subparsers(dest="incident_command", required=True, metavar="ACTION")
    retry = staff("retry", staff_cli.cmd_incident_retry, "resolve an incident and retry", incident_commands)
    retry.add_argument("id")
    retry.add_argument("--retries", type=int, default=1, help="attempts a failed job gets back (default 1)")

    audit = staff(
        "audit", staff_cli.cmd_audit, "who claimed, completed, started, cancelled, deployed, resolved"
    )
    audit.add_argument("--key", help="an engagement (business key)")
    audit.add_argument("--instance", help="one instance")
    audit.add_argument("--who", help="one person or component")
    audit.add_argument("--json", action="store_true", help="print JSON")

    deploy = staff("deploy", staff_cli.cmd_deploy, "deploy .bpmn and .dmn files (or every one in a folder)")
    deploy.add_argument("paths", nargs="+", metavar="PATH")
    deploy.add_argument("--json", action="store_true", help="print JSON")
    deploy.add_argument("--note", help="why this deploy, kept beside the new versions")
    deploy.add_argument(
        "--validate", action="store_true", help="only check the files and print the problems (exit 4 if any)"
    )
    definitions = staff("definitions", staff_cli.cmd_definitions, "list deployed processes")
    definitions.add_argument("--all", action="store_true", help="every version, not only the latest")
    definitions.add_argument("--json", action="store_true", help="print JSON")

    start = staff("start", staff_cli.cmd_start, "start a process instance")
    start.add_argument("process", help="process id, e.g. engagement")
    start.add_argument(
        "--var",
        action="append",
        metavar="NAME=VALUE",
        help="a variable (repeat for each; JSON values allowed)",
    )
    start.add_argument(
        "--key", help="business key: starting again with the same key returns the first instance"
    )
    start.add_argument("--version", type=int, default=0, help="a version to pin (default: latest)")
    start.add_argument("--json", action="store_true", help="print JSON")

    message = staff("message", staff_cli.cmd_message, "publish a message (e.g. what a client did)")
    message.add_argument("name", help="message name, e.g. quotation.accepted")
    message.add_argument("--key", help="correlation key (usually the engagement id)")
    message.add_argument("--var", action="append", metavar="NAME=VALUE", help="a variable it carries")
    message.add_argument(
        "--ttl", type=int, default=0, help="seconds to wait for a receiver (default 0: now or never)"
    )
    message.add_argument("--id", help="message id: a second message with the same id is dropped")
    message.add_argument("--json", action="store_true", help="print JSON")

    client = staff(
        "client", staff_cli.cmd_client, "act for the client (through the services, as a client would)"
    )
    client.add_argument(
        "action",
        choices=["accept-quote", "sign", "report-acceptance", "answer-survey"],
        help="accept the quote sent; sign the contract the firm signed; report on the acceptance requested; "
        "answer the satisfaction survey",
    )
    client.add_argument("--key", required=True, help="the engagement id")
    client.add_argument("--name", default="the client", help="who acts for the client")
    client.add_argument("--failed", action="store_true", help="report-acceptance: the deliverables fail")
    client.add_argument(
        "--rating", type=int, default=5, choices=range(1, 6), help="answer-survey: 1-5 everywhere"
    )

    events = staff("events", staff_cli.cmd_events, "follow status events on NATS")
    events.add_argument("--subject", default="status.>", help="subject filter (default status.>)")
    events.add_argument("--from-start", action="store_true", help="replay the stream from its start")
    events.add_argument("--count", type=int, default=0, help="stop after this many events")
    events.add_argument("--idle", type=float, default=0, help="stop after this many seconds without an event")
    events.add_argument("--json", action="store_true", help="one JSON object per line")
    return parser


def run_demo(args: argparse.Namespace) -> int:
    """Imports the demo (every service's API) only when it runs, to keep the other commands quick."""
    from consultflow.cli.demo import run as demo

    return demo(args)


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    try:
        code = args.func(args)
        sys.stdout.flush()
    except BrokenPipeError:
        # The reader went away (`consultflow instance show ID | head`): not an error of ours.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        code = 0
    sys.exit(code)


if __name__ == "__main__":
    main()
