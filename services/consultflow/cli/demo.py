"""`consultflow demo`: sample engagements through the whole regulation (built with the end-to-end issue)."""

from __future__ import annotations

import argparse

from consultflow.cli import output as out


def run(args: argparse.Namespace) -> int:
    out.error("the demo arrives with the end-to-end issue; see README")
    return out.EXIT_ERROR
