"""Flow control for the Slack sink: a token bucket per channel, and storm detection.

Slack allows about one message per second per channel (short bursts tolerated).
:class:`RateLimiter` makes ``send`` wait for a token, but never long: beyond
``max_wait`` it raises a transient :class:`DeliveryError` with ``retry_after`` so
the outbox retries later instead of holding a worker.

:class:`StormWatch` counts new messages per channel over the last minute; past the
threshold, new alerts go into one :class:`Storm` summary per channel instead.
Both take a clock (and the limiter a sleep) so tests control time.
"""

from __future__ import annotations

import asyncio
from collections import Counter, OrderedDict, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from router.delivery import DeliveryError

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]

WINDOW = 60.0
RECENT = 10


@dataclass
class TokenBucket:
    rate: float
    burst: int
    tokens: float
    updated: float

    def reserve(self, now: float, max_wait: float) -> float:
        """Take a token, returning how long to wait for it; raise if that is over ``max_wait``."""
        self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        wait = 0.0 if self.tokens >= 1 else (1 - self.tokens) / self.rate
        if wait > max_wait:
            raise DeliveryError("rate limited per channel", retry_after=wait, kind="rate_limited")
        self.tokens -= 1  # may go below zero: a reservation the next caller waits behind
        return wait


class RateLimiter:
    """About ``rate`` messages per second per channel, with bursts of ``burst``."""

    def __init__(
        self,
        rate: float,
        burst: int,
        *,
        clock: Clock,
        sleep: Sleep = asyncio.sleep,
        max_wait: float = 5.0,
    ) -> None:
        self.rate, self.burst, self.clock, self.sleep = rate, burst, clock, sleep
        self.max_wait = max_wait
        self._buckets: dict[str, TokenBucket] = {}

    async def acquire(self, channel: str) -> float:
        """Wait for a token for ``channel``; returns the time waited."""
        now = self.clock()
        bucket = self._buckets.get(channel)
        if bucket is None:
            bucket = self._buckets[channel] = TokenBucket(self.rate, self.burst, self.burst, now)
        wait = bucket.reserve(now, self.max_wait)
        if wait > 0:
            await self.sleep(wait)
        return wait


@dataclass
class Storm:
    """One channel's storm summary: counts, the latest alerts, and where it was posted."""

    channel: str
    started: float
    last_added: float
    total: int = 0
    names: Counter[str] = field(default_factory=Counter)
    categories: Counter[str] = field(default_factory=Counter)
    recent: deque[str] = field(default_factory=lambda: deque(maxlen=RECENT))
    keys: set[str] = field(default_factory=set)
    channel_id: str | None = None
    ts: str | None = None
    last_edit: float = 0.0
    dirty: bool = False
    flush_pending: bool = False
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def add(self, key: str, name: str, category: str, line: str, now: float) -> bool:
        """Count one alert (once per delivery key); returns whether it was new."""
        self.last_added = now
        if key in self.keys:
            return False
        self.keys.add(key)
        self.total += 1
        self.names[name] += 1
        self.categories[category] += 1
        self.recent.appendleft(line)
        self.dirty = True
        return True

    @property
    def by_name(self) -> list[tuple[str, int]]:
        return self.names.most_common(15)

    @property
    def by_category(self) -> list[tuple[str, int]]:
        return self.categories.most_common()


class StormWatch:
    """Decides, per channel, whether a new alert is posted or summarised.

    It counts the new alerts *offered* to a channel, before the rate limiter: counting
    messages posted would let the limiter (one message a second) hold the count under
    the threshold, so a storm would queue for hours instead of being summarised.
    """

    def __init__(self, threshold: int, *, clock: Clock, window: float = WINDOW) -> None:
        self.threshold, self.clock, self.window = threshold, clock, window
        self._offers: dict[str, OrderedDict[str, float]] = {}  # channel → key → when
        self._storms: dict[str, Storm] = {}

    def storm(self, channel: str, key: str) -> Storm | None:
        """The storm a new alert (``key``: its delivery) joins, or ``None`` to post it.

        A storm starts when more than ``threshold`` new alerts were offered within the
        window, and lasts while new alerts keep arriving within a window of the last one.
        A delivery offered again (a retry) counts once.
        """
        now = self.clock()
        offers = self._offers.setdefault(channel, OrderedDict())
        while offers and next(iter(offers.values())) <= now - self.window:
            offers.popitem(last=False)
        offers.setdefault(key, now)
        current = self._storms.get(channel)
        if current is not None and now - current.last_added < self.window:
            return current
        if len(offers) > self.threshold:
            self._storms[channel] = Storm(channel, started=now, last_added=now)
            return self._storms[channel]
        self._storms.pop(channel, None)
        return None

    def active(self) -> list[Storm]:
        return list(self._storms.values())
