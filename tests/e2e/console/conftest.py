"""The console tests' fixtures: the whole system with the console, started once per module (each module
is one scenario and may change what is deployed), and a headless chromium beside it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser

from consultflow.cli.system import LocalSystem
from tests.bpmn.modeler_tools import chromium
from tests.support.console import chromium_browser, start_console_system


@pytest.fixture(scope="module")
def console_system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalSystem]:
    chromium()  # without it the scenario skips before starting eight processes
    system = start_console_system(tmp_path_factory.mktemp("console-system"))
    try:
        yield system
    finally:
        system.stop()


@pytest.fixture(scope="module")
def browser(console_system: LocalSystem) -> Iterator[Browser]:
    """Started after the system: LocalSystem.start runs asyncio, which playwright's running loop forbids."""
    with chromium_browser() as launched:
        yield launched
