"""A gRPC call that must be refused: its status code and the words its details must name."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import grpc
import pytest


def refused(call: Callable[[], Any], code: grpc.StatusCode, *words: str) -> str:
    """Runs a call that must fail with `code`; returns the details, which must contain `words`."""
    with pytest.raises(grpc.RpcError) as error:
        call()
    rpc = error.value
    assert isinstance(rpc, grpc.Call)
    assert rpc.code() == code, rpc.details()
    details = rpc.details() or ""
    for word in words:
        assert word in details, details
    return details


def rpc_code(call: Callable[[], object]) -> tuple[grpc.StatusCode, str]:
    """The status code and details a call fails with (fails the test if it succeeds)."""
    try:
        call()
    except grpc.RpcError as error:
        assert isinstance(error, grpc.Call)
        return error.code(), error.details() or ""
    raise AssertionError("the call succeeded")


def rpc_error(call: Callable[[Any], Any], request: Any) -> grpc.RpcError:
    """The error `call(request)` must end in."""
    try:
        call(request)
    except grpc.RpcError as error:
        return error
    raise AssertionError(f"{request!r} was accepted")
