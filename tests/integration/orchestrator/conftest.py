"""Fixtures of the orchestrator's integration tests: one orchestrator as a component with no diagrams of
its own (each test deploys what it needs), and a stub signed as the default test caller."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from consultflow.api.orchestrator.v1 import orchestrator_pb2_grpc as pb_grpc
from consultflow.orchestrator.app import build
from tests.support.components import ComponentThread, component_settings
from tests.support.identity import signed_channel


@pytest.fixture
def component(tmp_path: Path, nats_url: str, database_url: str) -> Iterator[ComponentThread]:
    empty = tmp_path / "bpmn"
    empty.mkdir()
    settings = component_settings("orchestrator", tmp_path, nats_url, database_url, bpmn_dir=empty)
    component = ComponentThread(settings, build).start()
    yield component
    component.stop()


@pytest.fixture
def stub(component: ComponentThread) -> Iterator[pb_grpc.OrchestratorServiceStub]:
    channel = signed_channel(component.address)
    yield pb_grpc.OrchestratorServiceStub(channel)
    channel.close()
