"""The one way tests wait for something: poll a condition until it holds or time runs out.

``eventually`` is for async tests (its condition may be sync or async), ``eventually_sync``
for tests and harnesses that block (a router process, a server thread). Both return what
the condition returned once it was true, so a wait can hand back what it waited for::

    output = eventually_sync(lambda: delivered(console), what="the delivery")

``what`` names the wait in the failure; a callable is asked only then (a log's tail).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")
What = str | Callable[[], str]


async def eventually(
    check: Callable[[], Awaitable[T] | T],
    timeout: float = 15.0,
    what: What = "",
    interval: float = 0.02,
) -> T:
    """``check()``'s first true value (sync or async); fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        outcome = check()
        value = await outcome if isinstance(outcome, Awaitable) else outcome
        if value:
            return value
        assert time.monotonic() < deadline, _timed_out(what, timeout)
        await asyncio.sleep(interval)


def eventually_sync(
    check: Callable[[], T], timeout: float = 15.0, what: What = "", interval: float = 0.05
) -> T:
    """``check()``'s first true value, blocking between tries; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        if value := check():
            return value
        assert time.monotonic() < deadline, _timed_out(what, timeout)
        time.sleep(interval)


def _timed_out(what: What, timeout: float) -> str:
    text = what() if callable(what) else what
    return f"timed out after {timeout:g} s waiting{f' for {text}' if text else ''}"
