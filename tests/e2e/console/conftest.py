"""The console tests' fixtures: the whole system with the console, started once per module (each module
is one scenario and may change what is deployed), and one headless chromium for the session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser

from consultflow.cli.system import LocalSystem
from tests.support.console import chromium_browser, start_console_system


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    with chromium_browser() as launched:
        yield launched


@pytest.fixture(scope="module")
def console_system(tmp_path_factory: pytest.TempPathFactory, browser: Browser) -> Iterator[LocalSystem]:
    """Needs the browser first: without chromium the scenario skips before starting eight processes."""
    system = start_console_system(tmp_path_factory.mktemp("console-system"))
    try:
        yield system
    finally:
        system.stop()
