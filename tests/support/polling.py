"""The one way a test waits: ask again until the answer is there, and fail naming what never happened."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


def eventually(probe: Callable[[], T | None], what: str, timeout: float = 15.0, interval: float = 0.05) -> T:
    """Calls `probe` until it returns something truthy and returns that; an AssertionError naming `what`
    (and the last answer) once `timeout` seconds passed. A probe may raise to stop waiting at once."""
    deadline = time.monotonic() + timeout
    while True:
        answer = probe()
        if answer:
            return answer
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}; last answer: {answer!r}")
        time.sleep(interval)


async def eventually_async(
    probe: Callable[[], Awaitable[T | None]], what: str, within: float = 15.0, interval: float = 0.05
) -> T:
    """`eventually` for a coroutine probe, on the caller's event loop (`within`: its timeout)."""
    deadline = time.monotonic() + within
    while True:
        answer = await probe()
        if answer:
            return answer
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within:g} s waiting for {what}; last answer: {answer!r}")
        await asyncio.sleep(interval)
