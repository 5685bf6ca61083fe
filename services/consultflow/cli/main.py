"""The `consultflow` command."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from pathlib import Path
from types import FrameType

from consultflow.cli.system import LocalSystem


def data_dir_default() -> Path:
    return Path(os.environ.get("CONSULTFLOW_DATA_DIR", ".consultflow"))


def cmd_up(args: argparse.Namespace) -> int:
    """Runs NATS and every component until Ctrl-C or SIGTERM."""
    stop = False

    def on_signal(signum: int, frame: FrameType | None) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    system = LocalSystem(args.data_dir)
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
    print(f"\nendpoints: {args.data_dir / 'endpoints.json'}   logs: {args.data_dir / 'logs'}/")
    print("press Ctrl-C to stop\n", flush=True)
    while not stop:
        time.sleep(0.5)
        for name in system.restart_crashed():
            print(
                f"{name} exited unexpectedly; restarted (see {args.data_dir / 'logs' / (name + '.log')})",
                flush=True,
            )
    print("stopping …", flush=True)
    system.stop()
    print("stopped", flush=True)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="consultflow",
        description="A consulting firm's process regulation as executable BPMN: run it, drive it, watch it.",
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=data_dir_default(),
        help="where data, logs and endpoints.json live (default: $CONSULTFLOW_DATA_DIR or .consultflow)",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    up = commands.add_parser("up", help="run NATS, the orchestrator and the five services until Ctrl-C")
    up.set_defaults(func=cmd_up)
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    sys.exit(args.func(args))


if __name__ == "__main__":
    main()
