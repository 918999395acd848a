"""The one way tests wait for something: poll a condition until it holds or time runs out."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

Check = Callable[[], Awaitable[bool] | bool]


async def eventually(check: Check, timeout: float = 15.0, what: str = "") -> None:
    """Return once ``check()`` (sync or async) is true; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        outcome = check()
        if await outcome if isinstance(outcome, Awaitable) else outcome:
            return
        assert time.monotonic() < deadline, f"timed out waiting{f' for {what}' if what else ''}"
        await asyncio.sleep(0.02)
