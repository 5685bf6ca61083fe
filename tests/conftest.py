"""Shared fixtures: one real nats-server per test session (per pytest-xdist worker under `make test`), a
database per test (SQLite, and PostgreSQL when CONSULTFLOW_TEST_POSTGRES_URL is set: a schema per test, so
workers never meet in the shared database)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import uuid
from collections.abc import Generator, Iterator
from pathlib import Path

import nats
import pytest
from nats.js.errors import NotFoundError
from sqlalchemy import create_engine, text

from consultflow.cli.system import LOCAL_PORTS_ENV, local_port_range
from consultflow.platform.messaging import STREAMS
from tests.bpmn.modeler_tools import SCREENSHOTS
from tests.support.nats import nats_server, provision_open

POSTGRES_URL = os.environ.get("CONSULTFLOW_TEST_POSTGRES_URL", "")


def pytest_configure(config: pytest.Config) -> None:
    """Each pytest-xdist worker (and what it starts) draws loopback ports from its own slice of the range,
    so two workers never hand out one port (cli.system.free_port)."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    if not worker.startswith("gw") or LOCAL_PORTS_ENV in os.environ:
        return
    count = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    low, high = local_port_range()
    size = (high - low + 1) // count
    start = low + int(worker[2:]) * size
    os.environ[LOCAL_PORTS_ENV] = f"{start}-{start + size - 1}"


UNGROUPED = pytest.StashKey[bool]()
"""Set on a test whose xdist_group mark `--dist loadgroup` did not honour."""


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under `--dist loadgroup` each worker tags a grouped test's id with its xdist_group; a pytest whose
    ids drop the tag (pytest 9.2, pytest-xdist#1386) would run the groups of tests.support.groups side by
    side without a word, so those tests fail instead (pytest_runtest_setup)."""
    if not getattr(config.option, "loadgroup", False):  # set in each worker by `--dist loadgroup`
        return
    for item in items:
        if item.get_closest_marker("xdist_group") and "@" not in item.nodeid:
            item.stash[UNGROUPED] = True


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.stash.get(UNGROUPED, False):
        pytest.fail("pytest-xdist did not keep this test's xdist_group together (pytest-xdist#1386)", False)


# The run ends naming the folder of tests/bpmn/test_browser.py's screenshots. Under pytest-xdist the folder is
# known in the worker that drew them, and only this conftest is loaded where the summary is printed, so each
# report of a test that used the folder carries it there as a user property.
SCREENSHOTS_PROPERTY = "diagram-screenshots"
_screenshot_folders: set[Path] = set()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    folder = item.config.stash.get(SCREENSHOTS, None)
    if folder is not None and report.when == "call" and "screenshots" in getattr(item, "fixturenames", ()):
        report.user_properties.append((SCREENSHOTS_PROPERTY, str(folder)))
    return report


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    folders = (Path(str(value)) for name, value in report.user_properties if name == SCREENSHOTS_PROPERTY)
    _screenshot_folders.update(folders)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    for folder in sorted(_screenshot_folders):
        if folder.is_dir() and any(folder.iterdir()):
            terminalreporter.write_line(f"diagram screenshots (bpmn-js in Chromium): {folder}")


@pytest.fixture(scope="session")
def nats_session_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with nats_server(tmp_path_factory.mktemp("nats")) as url:
        yield url


@pytest.fixture
def nats_url(nats_session_url: str) -> str:
    """The session's NATS server with the consultflow streams deleted and provisioned again, so each test
    starts clean."""

    async def reset() -> None:
        nc = await nats.connect(nats_session_url)
        js = nc.jetstream()
        for config in STREAMS:
            with contextlib.suppress(NotFoundError):
                await js.delete_stream(str(config.name))
        await nc.close()

    asyncio.run(reset())
    provision_open(nats_session_url)
    return nats_session_url


def _postgres_schema_url(base: str) -> Iterator[str]:
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base)
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    separator = "&" if "?" in base else "?"
    try:
        yield f"{base}{separator}options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database: a SQLite file, and (when configured) a PostgreSQL schema."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'test.db'}"
        return
    if not POSTGRES_URL:
        pytest.skip(
            "PostgreSQL not configured: set CONSULTFLOW_TEST_POSTGRES_URL (e.g. postgresql+psycopg://postgres@127.0.0.1/test)"
        )
    yield from _postgres_schema_url(POSTGRES_URL)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'test.db'}"
