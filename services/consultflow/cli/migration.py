"""The ops commands that move running instances: `migration plan|run|status` (a batch from one process
version to another) and `instance move` (one instance's waiting elements, ModifyInstance)."""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Iterator

import grpc

from consultflow.api.orchestrator.v1 import orchestrator_pb2 as pb
from consultflow.cli import output as out
from consultflow.cli.staff import Client, parse_assignments

ACTIONS = {v: k.removeprefix("MOVE_ACTION_").lower().replace("_", " ") for k, v in pb.MoveAction.items()}
BATCH_STATES = {v: k.removeprefix("MIGRATION_STATE_") for k, v in pb.MigrationState.items()}
ITEM_STATES = {v: k.removeprefix("MIGRATION_ITEM_STATE_") for k, v in pb.MigrationItemState.items()}
WAIT_POLL_SECONDS = 0.5
WAIT_CALL_SECONDS = 10.0


def definition(text: str) -> str:
    """PROCESS:VERSION, e.g. onboarding:2."""
    process, sep, version = text.rpartition(":")
    if not sep or not process or not version.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r} is not PROCESS:VERSION (e.g. onboarding:2)")
    return text


def mapping(text: str) -> pb.ElementMapping:
    """[PROCESS/]SOURCE=TARGET[!]: an element's new id in the target; `!` starts its wait afresh."""
    restart = text.endswith("!")
    body = text.removesuffix("!")
    where, sep, target = body.partition("=")
    process, _, source = where.rpartition("/")
    if not sep or not source or not target:
        raise argparse.ArgumentTypeError(f"{text!r} is not [PROCESS/]SOURCE=TARGET[!]")
    return pb.ElementMapping(
        process_id=process, source_element_id=source, target_element_id=target, restart=restart
    )


def add_plan_options(parser: argparse.ArgumentParser) -> None:
    """The plan and the selection, the same for `plan` and `run`."""
    parser.add_argument(
        "--from",
        dest="source",
        required=True,
        type=definition,
        metavar="PROCESS:V",
        help="the version the instances run, e.g. onboarding:1",
    )
    parser.add_argument(
        "--to",
        dest="target",
        required=True,
        type=definition,
        metavar="PROCESS:V",
        help="the version to move them to (of the same process)",
    )
    parser.add_argument(
        "--map",
        action="append",
        type=mapping,
        default=[],
        metavar="[PROCESS/]SOURCE=TARGET[!]",
        help="where a renamed element goes; '!' restarts its wait (repeat for each)",
    )
    parser.add_argument("--key", default="", help="only the instance with this business key")
    parser.add_argument(
        "--instance", action="append", default=[], metavar="ID", help="only these instances (repeat)"
    )
    parser.add_argument("--at", default="", metavar="ELEMENT", help="only instances waiting at this element")
    parser.add_argument("--incidents", action="store_true", help="only instances with open incidents")


def _plan(args: argparse.Namespace) -> tuple[pb.MigrationPlan, pb.MigrationSelection]:
    plan = pb.MigrationPlan(
        source_definition_id=args.source, target_definition_id=args.target, mappings=args.map
    )
    selection = pb.MigrationSelection(
        instance_ids=args.instance,
        business_key=args.key,
        waiting_at_element_id=args.at,
        with_incidents=args.incidents,
    )
    return plan, selection


def _pages(client: Client, args: argparse.Namespace) -> Iterator[pb.PlanMigrationResponse]:
    plan, selection = _plan(args)
    token = ""
    while True:
        page = client.orchestrator.PlanMigration(
            pb.PlanMigrationRequest(plan=plan, selection=selection, page_token=token)
        )
        yield page
        token = page.next_page_token
        if not token:
            return


def _move_rows(check: pb.InstanceMigrationCheck, process_id: str) -> list[list[str]]:
    """One row per waiting element (`called/element` when it is in a called process), then the problems."""
    verdict = "APPLICABLE" if check.applicable else "REFUSED"
    rows = []
    for move in check.moves:
        where = f"{move.process_id}/" if move.process_id not in ("", process_id) else ""
        target = move.target_element_id or "-"
        rows.append(
            [verdict, f"{where}{move.source_element_id} → {target}", ACTIONS[move.action], move.detail]
        )
    for problem in check.problems:
        rows.append(["REFUSED", problem.element_id or "-", "refused", problem.message])
    return rows or [[verdict, "-", "", ""]]


def cmd_plan(client: Client, args: argparse.Namespace) -> int:
    """The dry run: the plan's problems, then per instance whether it moves and what happens where."""
    problems: list[pb.MigrationProblem] = []
    checks: list[pb.InstanceMigrationCheck] = []
    selected = 0
    for page in _pages(client, args):
        problems.extend(page.plan_problems)
        checks.extend(page.instances)
        selected = page.selected
    if args.json:
        out.print_json(
            {
                "plan_problems": [out.to_dict(p) for p in problems],
                "instances": [out.to_dict(c) for c in checks],
                "selected": selected,
            }
        )
        return out.EXIT_REFUSED if problems or any(not c.applicable for c in checks) else out.EXIT_OK
    refused = sum(1 for c in checks if not c.applicable)
    print(f"plan {args.source} → {args.target}: {_instances(selected)} selected")
    if problems:
        print("problems:")
        out.table(
            ["instance", "element", "problem"],
            [[p.instance_id or "(the plan)", p.element_id or "-", p.message] for p in problems],
        )
    rows = []
    for check in checks:
        for index, row in enumerate(_move_rows(check, args.source.rpartition(":")[0])):
            first = index == 0
            rows.append([check.instance_id if first else "", check.business_key if first else "", *row])
    if checks:
        out.table(["instance", "key", "check", "element", "action", "detail"], rows)
    if problems and not checks:
        print("the plan itself cannot apply: no instance was checked")
    else:
        print(f"{len(checks) - refused} applicable, {refused} refused")
    return out.EXIT_REFUSED if problems or refused else out.EXIT_OK


def _instances(count: int) -> str:
    return f"{count} instance" if count == 1 else f"{count} instances"


def _progress(batch: pb.MigrationBatch) -> str:
    pending = batch.total - batch.migrated - batch.skipped - batch.failed
    return (
        f"{BATCH_STATES[batch.state].lower()}: {batch.migrated} migrated, {batch.skipped} skipped, "
        f"{batch.failed} failed, {pending} pending of {batch.total}"
    )


def cmd_run(client: Client, args: argparse.Namespace) -> int:
    """Starts a batch; with --wait prints its progress until every item is settled."""
    plan, selection = _plan(args)
    batch = client.orchestrator.StartMigration(
        pb.StartMigrationRequest(
            plan=plan, selection=selection, reason=args.reason, skip_refused=args.skip_refused
        )
    )
    print(f"migration {batch.batch_id} started: {args.source} → {args.target}, {_instances(batch.total)}")
    if not args.wait:
        print(f"follow it with: consultflow migration status {batch.batch_id}")
        return out.EXIT_OK
    shown = ""
    down_since: float | None = None
    while True:
        try:
            batch = client.orchestrator.GetMigration(
                pb.GetMigrationRequest(batch_id=batch.batch_id), timeout=WAIT_CALL_SECONDS
            )
        except grpc.RpcError as error:
            # The orchestrator restarting (a crash, a deploy): the batch resumes by itself once it is back.
            code, _ = out.rpc_failure(error)
            if code not in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
                raise
            now = time.monotonic()
            if down_since is None:
                down_since = now
                print("the orchestrator is unavailable: waiting for it (the batch resumes when it is back)")
            if now - down_since > args.wait_unavailable:
                raise
            time.sleep(WAIT_POLL_SECONDS)
            continue
        down_since = None
        line = _progress(batch)
        if line != shown:
            print(line, flush=True)
            shown = line
        if batch.state == pb.MIGRATION_STATE_COMPLETED:
            break
        time.sleep(WAIT_POLL_SECONDS)
    _items(batch)
    return out.EXIT_OK if batch.failed == 0 else out.EXIT_ERROR


def _items(batch: pb.MigrationBatch) -> None:
    out.table(
        ["instance", "key", "state", "message"],
        [[i.instance_id, i.business_key, ITEM_STATES[i.state], i.message] for i in batch.items],
    )


def cmd_status(client: Client, args: argparse.Namespace) -> int:
    """One batch with its items, or the batches (newest first)."""
    if args.batch:
        batch = client.orchestrator.GetMigration(pb.GetMigrationRequest(batch_id=args.batch))
        if args.json:
            out.print_json(out.to_dict(batch))
            return out.EXIT_OK
        out.fields(
            {
                "batch": batch.batch_id,
                "plan": f"{batch.plan.source_definition_id} → {batch.plan.target_definition_id}",
                "reason": batch.reason,
                "by": batch.created_by,
                "started": out.when(batch.created_at),
                "ended": out.when(batch.ended_at) or "-",
                "progress": _progress(batch),
            }
        )
        _items(batch)
        return out.EXIT_OK
    batches: list[pb.MigrationBatch] = []
    token = ""
    while True:
        page = client.orchestrator.ListMigrations(
            pb.ListMigrationsRequest(process_id=args.process or "", page_token=token)
        )
        batches.extend(page.batches)
        token = page.next_page_token
        if not token or len(batches) >= args.limit:
            break
    batches = batches[: args.limit]
    if args.json:
        out.print_json([out.to_dict(b) for b in batches])
        return out.EXIT_OK
    out.table(
        ["batch", "plan", "state", "migrated", "skipped", "failed", "total", "started", "by"],
        [
            [
                b.batch_id,
                f"{b.plan.source_definition_id} → {b.plan.target_definition_id}",
                BATCH_STATES[b.state],
                b.migrated,
                b.skipped,
                b.failed,
                b.total,
                out.when(b.created_at),
                b.created_by,
            ]
            for b in batches
        ],
    )
    return out.EXIT_OK


def cmd_move(client: Client, args: argparse.Namespace) -> int:
    """Cancels waiting elements of one instance and (with --to) begins another element."""
    variables = parse_assignments(args.var or [], "--var")
    answer = client.orchestrator.ModifyInstance(
        pb.ModifyInstanceRequest(
            instance_id=args.id,
            cancel_element_ids=args.cancel,
            activate_element_id=args.to or "",
            process_id=args.process or "",
            reason=args.reason,
            variables_json=json.dumps(variables) if variables else "",
        )
    )
    if args.json:
        out.print_json(out.to_dict(answer))
        return out.EXIT_OK
    out.table(
        ["element", "action", "detail"],
        [[m.source_element_id or m.target_element_id, ACTIONS[m.action], m.detail] for m in answer.moves],
    )
    waiting = ", ".join(a.element_id for a in answer.active_elements) or "nothing (it ended)"
    print(f"instance {args.id} now waits at: {waiting}")
    return out.EXIT_OK
