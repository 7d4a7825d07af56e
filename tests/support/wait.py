"""The one way a test waits for something: poll a condition until it holds or a deadline passes.

A fixed `time.sleep(n)` either waits too long (slow suite) or not long enough (flaky suite); waiting for
the condition itself does neither. Sleeps that remain in the tests create a time gap on purpose (a lease
that must expire, a quiet period to prove nothing more is sent) and say so in a comment.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_until(
    condition: Callable[[], T], timeout: float = 30, *, interval: float = 0.1, message: str = "condition"
) -> T:
    """Call `condition()` until it returns something truthy and return that; fail after `timeout` seconds
    (the condition is always called once more at the deadline). Exceptions from the condition propagate."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() >= deadline:
            raise AssertionError(f"{message} not met within {timeout}s (last value: {result!r})")
        time.sleep(interval)


def run_coroutine(coro):
    """asyncio.run(coro), in a thread of its own when this thread already runs an event loop (Playwright's
    sync API keeps one running once a test of the session used the browser)."""
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()
