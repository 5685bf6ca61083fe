"""The pytest-xdist groups: `make test` runs the tests on every core with `--dist loadgroup`, which hands
out single tests except that the tests of one group go to one worker and run there one after the other.

A module joins a group with `pytestmark = <GROUP>` only for a reason named here; every other test may run
beside any other (each has its own temporary folder, nats-server streams, free ports and PostgreSQL
schema), so the groups stay few and small.

The hostile tests are not grouped: a worker per core gives each worker about a core whatever runs beside
it, and their liveness probe competes with the hostile work inside one process. What a busy machine
changes is time, so their bounds are generous (tests.support.liveness: 5 s for an answer, HANG_SECONDS for
the hostile work to end).
"""

from __future__ import annotations

import pytest

DEMO_SYSTEM = pytest.mark.xdist_group("demo-system")
"""tests/e2e's session-scoped `demo_system` (eight processes, started once per worker): its modules run on
one worker, so it starts once and the demo engagements' timers are not slowed by a second copy."""


def one_worker(module: str) -> pytest.MarkDecorator:
    """A group of one module whose tests share a module-scoped system of processes or a browser, or results
    cached in the process (tests/bpmn/test_paths.py's scenarios, which its summary tests read all of): on one
    worker it is started, or each scenario run, once rather than once per worker."""
    return pytest.mark.xdist_group(module)
