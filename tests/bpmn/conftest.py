"""Ends a test run that drew the diagrams in a browser with the folder holding their screenshots."""

from __future__ import annotations

import pytest

from tests.bpmn.modeler_tools import SCREENSHOTS


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    folder = config.stash.get(SCREENSHOTS, None)
    if folder is not None and any(folder.iterdir()):
        terminalreporter.write_line(f"diagram screenshots (bpmn-js in Chromium): {folder}")
