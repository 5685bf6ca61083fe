"""A gRPC call that must be refused."""

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
