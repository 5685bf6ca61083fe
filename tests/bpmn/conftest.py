"""Ends a test run that drew the diagrams in a browser with the folder holding their screenshots.

Under pytest-xdist the folder is known in the worker that ran tests/bpmn/test_browser.py, not in the
process that prints the summary, so each report carries it (as a user property) to that process."""

from __future__ import annotations

from collections.abc import Generator
from pathlib import Path

import pytest

from tests.bpmn.modeler_tools import SCREENSHOTS

PROPERTY = "diagram-screenshots"
_folders: set[Path] = set()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    folder = item.config.stash.get(SCREENSHOTS, None)
    if folder is not None and report.when == "call" and "screenshots" in getattr(item, "fixturenames", ()):
        report.user_properties.append((PROPERTY, str(folder)))
    return report


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    _folders.update(Path(str(value)) for name, value in report.user_properties if name == PROPERTY)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    for folder in sorted(_folders):
        if folder.is_dir() and any(folder.iterdir()):
            terminalreporter.write_line(f"diagram screenshots (bpmn-js in Chromium): {folder}")
