"""The whole system as separate processes (the `consultflow up` machinery), once per e2e session, with the
demo's timer settings so engagements run in about a minute."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from consultflow.cli.demo import DEMO_TIMERS, demo_env
from consultflow.cli.system import LocalSystem
from tests.support.identity import local_identity


@pytest.fixture(scope="session")
def demo_system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalSystem]:
    system = LocalSystem(
        tmp_path_factory.mktemp("system"), extra_env=demo_env(), marker=DEMO_TIMERS, identity=local_identity()
    )
    system.start()
    yield system
    system.stop()
