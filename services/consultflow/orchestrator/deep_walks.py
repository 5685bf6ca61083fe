"""Lets SpiffWorkflow walk diagrams and instances of any length the deploy checks admit: the one place that
adapts Spiff's depth assumptions.

Two things in Spiff 3.2 stop at a depth, and both failed on legitimate diagrams:
- Its task-tree walks (`TaskIterator`, `BpmnTaskIterator`) default to `max_depth=1000` and stop there
  *silently*: a chain of 1,200 tasks, or a loop run 500 times (each pass deepens the tree), reported the
  workflow completed with its end event never reached. The depth is made unlimited here; what bounds a walk
  is the number of tasks an instance may hold (`Limits.max_instance_tasks`, enforced by step.py).
- Its parser and its instantiation (`TaskSpec._predict`) recurse about 2.5 and 1 frames per element on a
  path: Python's default limit of 1,000 frames failed at ~490 chained tasks. The recursion limit is raised
  so that a path of `Limits.max_path_length` elements (refused beyond that at deploy) parses and starts.
  Python 3.11 calls Python functions without using the C stack, so these frames cost little C stack; the
  thread pools that run engine work still get large stacks (platform/bootstrap.py, `WORKER_STACK_BYTES`)
  so C-level recursion (JSON of nested data, say) never reaches the end of a stack before the limit.
Tests lower the walk depth with `set_walk_depth` to prove that a walk stopped early never reports
COMPLETED (step.py's completion guard).
"""

from __future__ import annotations

import inspect
import sys
import threading

from SpiffWorkflow.bpmn.util.task import BpmnTaskIterator
from SpiffWorkflow.util.task import TaskIterator

from consultflow.platform.limits import DEFAULT_LIMITS

UNLIMITED_DEPTH = sys.maxsize
FRAMES_PER_PATH_ELEMENT = 4
"""Recursion frames budgeted per element on a path (measured: parsing ~2.5, instantiating ~1)."""
FRAMES_HEADROOM = 2000
"""Frames for what runs around the recursion (gRPC, SQLAlchemy, the sandbox, the test runner)."""

_lock = threading.Lock()


def set_walk_depth(depth: int) -> int:
    """Sets how deep Spiff's task-tree walks go by default; returns the previous depth."""
    previous = UNLIMITED_DEPTH
    for iterator in (TaskIterator, BpmnTaskIterator):
        init = iterator.__init__
        positional = [
            p.name
            for p in inspect.signature(init).parameters.values()
            if p.kind in (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
        ]
        defaults = list(init.__defaults__ or ())
        # Defaults belong to the last positional parameters (this fails loudly if Spiff renames max_depth).
        index = positional.index("max_depth") - (len(positional) - len(defaults))
        previous = defaults[index]
        defaults[index] = depth
        init.__defaults__ = tuple(defaults)
    return int(previous)


def recursion_needed(max_path_length: int) -> int:
    """The recursion limit a path of `max_path_length` elements needs to parse and start."""
    return FRAMES_PER_PATH_ELEMENT * max_path_length + FRAMES_HEADROOM


def install(max_path_length: int = DEFAULT_LIMITS.max_path_length) -> None:
    """Unlimited walk depth, and recursion headroom for paths up to `max_path_length` (idempotent; the
    recursion limit only ever grows, as it is the interpreter's, shared with everything else)."""
    with _lock:
        set_walk_depth(UNLIMITED_DEPTH)
        needed = recursion_needed(max_path_length)
        if sys.getrecursionlimit() < needed:
            sys.setrecursionlimit(needed)
