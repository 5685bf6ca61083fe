"""Prints one engagement's trace from a `CONSULTFLOW_TRACE_FILE` (JSON lines) as an indented tree.

    python scripts/trace_tree.py .consultflow/traces.jsonl DEMO-ONLINE-1a2b3c [--lines 60]

One line per span: its start after the root, its duration, the component, its name, indented under its
parent (docs/operations.md, "Observability", shows the output).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

Span = dict[str, Any]


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def tree(spans: list[Span], business_key: str) -> Iterator[str]:
    """The lines of the trace whose start span names `business_key`."""
    root = next(
        s
        for s in spans
        if s["name"].startswith("start ") and s["attributes"].get("consultflow.business_key") == business_key
    )
    trace_id = root["context"]["trace_id"]
    ours = [s for s in spans if s["context"]["trace_id"] == trace_id]
    children: dict[str | None, list[Span]] = {}
    for span in ours:
        children.setdefault(span["parent_id"], []).append(span)
    components = {s["resource"]["attributes"]["service.name"] for s in ours}
    yield f"trace {trace_id.removeprefix('0x')}: {len(ours)} spans, {len(components)} components"
    began = _time(root["start_time"])

    def walk(span: Span, depth: int) -> Iterator[str]:
        start = (_time(span["start_time"]) - began).total_seconds()
        took = (_time(span["end_time"]) - _time(span["start_time"])).total_seconds() * 1000
        component = span["resource"]["attributes"]["service.name"].removeprefix("consultflow-")
        yield f"{start:8.3f}s {took:7.1f}ms  {component:<12} {'  ' * depth}{span['name']}"
        for child in sorted(children.get(span["context"]["span_id"], []), key=lambda c: c["start_time"]):
            yield from walk(child, depth + 1)

    yield from walk(root, 0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("file", type=Path)
    parser.add_argument("business_key")
    parser.add_argument("--lines", type=int, default=0, help="at most this many (0: all)")
    args = parser.parse_args()
    with args.file.open(encoding="utf-8") as lines:
        spans = [json.loads(line) for line in lines if line.strip()]
    for n, line in enumerate(tree(spans, args.business_key)):
        if args.lines and n > args.lines:
            print("…")
            break
        print(line)


if __name__ == "__main__":
    main()
