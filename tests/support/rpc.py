"""A gRPC call that must be refused: its status code and the words its details must name."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import grpc


def rpc_error(call: Callable[[Any], Any], request: Any) -> grpc.RpcError:
    """The error `call(request)` must end in (fails the test if it succeeds)."""
    try:
        call(request)
    except grpc.RpcError as error:
        assert isinstance(error, grpc.Call)
        return error
    raise AssertionError(f"{request!r} was accepted")


def rpc_code(call: Callable[[], object]) -> tuple[grpc.StatusCode, str]:
    """The status code and details a call fails with (fails the test if it succeeds)."""
    error = rpc_error(lambda _: call(), None)
    assert isinstance(error, grpc.Call)
    return error.code(), error.details() or ""


def refused(call: Callable[[], Any], code: grpc.StatusCode, *words: str) -> str:
    """Runs a call that must fail with `code`; returns the details, which must contain `words`."""
    actual, details = rpc_code(call)
    assert actual == code, details
    for word in words:
        assert word in details, details
    return details
