"""Waiting for status events in tests, and the status code of a refused call."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

import grpc

from consultflow.api.events.v1 import events_pb2
from tests.support.status import read_status


def wait_for_types(
    nats_url: str, types: Sequence[str], timeout: float = 10.0
) -> list[events_pb2.StatusEvent]:
    """Reads until every `source.type` named (e.g. "crm.inquiry.recorded") was seen at least as often
    as named; fails naming what is missing."""

    def seen(events: list[events_pb2.StatusEvent]) -> bool:
        names = [f"{e.source}.{e.type}" for e in events]
        return all(names.count(t) >= list(types).count(t) for t in set(types))

    events = read_status(nats_url, seen, timeout)
    names = [f"{e.source}.{e.type}" for e in events]
    missing = [t for t in set(types) if names.count(t) < list(types).count(t)]
    assert not missing, f"status events missing: {missing}; seen: {names}"
    return events


def payload(event: events_pb2.StatusEvent) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(event.payload_json or "{}")
    return result


def rpc_code(call: Callable[[], object]) -> tuple[grpc.StatusCode, str]:
    """The status code and details a call fails with (fails the test if it succeeds)."""
    try:
        call()
    except grpc.RpcError as error:
        assert isinstance(error, grpc.Call)
        return error.code(), error.details() or ""
    raise AssertionError("the call succeeded")
