"""Delivery's peers, real, once per test module; an engagement of its own for each test, so tests sharing
the peers (and the SQLite and PostgreSQL runs of one test) never see each other's contracts or risks."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from consultflow.api.contracts.v1 import contracts_pb2
from tests.support.delivery import Peers, delivery_peers


@pytest.fixture(scope="module")
def peers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Peers]:
    with delivery_peers(tmp_path_factory.mktemp("peers")) as running:
        yield running


@pytest.fixture
def engagement_id() -> str:
    return f"E-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def contract(peers: Peers, engagement_id: str) -> contracts_pb2.Contract:
    """A contract of the test's engagement that both parties signed, made through the contracts API."""
    return peers.signed_contract(engagement_id)
