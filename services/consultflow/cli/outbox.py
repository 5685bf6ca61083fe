"""`consultflow outbox`: the messages each component's outbox relay set aside because they cannot be
published (docs/limits.md), and putting one back once its cause is fixed.

Reads the components' databases directly (as `consultflow up` lays them out, or as
`CONSULTFLOW_<COMPONENT>_DATABASE_URL` says), so it works while the system is down too."""

from __future__ import annotations

import argparse
import os
import sys

from consultflow import COMPONENTS
from consultflow.platform.db import Database
from consultflow.platform.outbox import requeue, set_aside


def _database(args: argparse.Namespace, component: str) -> Database:
    """The component's database as Settings.from_env finds it, under `--data-dir`."""
    url = (
        os.environ.get(f"CONSULTFLOW_{component.upper()}_DATABASE_URL")
        or os.environ.get("CONSULTFLOW_DATABASE_URL")
        or f"sqlite:///{args.data_dir / (component + '.db')}"
    )
    return Database(url)


def run(args: argparse.Namespace) -> int:
    """Lists the set-aside messages of every component, or requeues one (`--requeue crm:42`)."""
    if args.requeue:
        component, _, seq = args.requeue.partition(":")
        if component not in COMPONENTS or not seq.isdigit():
            print(f"--requeue: {args.requeue!r} is not like crm:42", file=sys.stderr)
            return 2
        db = _database(args, component)
        try:
            if not requeue(db, int(seq)):
                print(f"{component} has no set-aside message {seq}", file=sys.stderr)
                return 3
        finally:
            db.dispose()
        print(f"{component}:{seq} goes to its relay again")
        return 0
    found = 0
    for component in COMPONENTS:
        db = _database(args, component)
        try:
            rows = set_aside(db)
        except Exception as error:  # no database yet (never started), or an older schema
            print(f"{component}: not readable ({type(error).__name__})", file=sys.stderr)
            continue
        finally:
            db.dispose()
        for row in rows:
            found += 1
            print(
                f"{component}:{row.seq}  {row.dead_at:%Y-%m-%d %H:%M:%S}  {row.subject}  {row.size} bytes  "
                f"{row.attempts} attempts  {row.reason}"
            )
    if not found:
        print("no message set aside")
    return 0
