"""Polling until something holds, for tests that watch another thread, process or venue.

One signature for both: `condition` is polled every `step_s` until it returns something
truthy, which is returned; after `timeout_s` the test fails, naming `what` it waited for.
`wait_until_async` sleeps with `asyncio.sleep`, for tests whose servers run on the same
event loop (a blocking sleep would stall them)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_until(
    condition: Callable[[], T], *, timeout_s: float = 5.0, step_s: float = 0.02, what: str = "condition"
) -> T:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(step_s)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")


async def wait_until_async(
    condition: Callable[[], T], *, timeout_s: float = 5.0, step_s: float = 0.02, what: str = "condition"
) -> T:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while loop.time() < deadline:
        value = condition()
        if value:
            return value
        await asyncio.sleep(step_s)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
