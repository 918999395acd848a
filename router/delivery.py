"""A delivery (one remote call a sink will make) and how one fails.

Below the store and the sinks: the outbox stores :class:`Delivery` rows, sinks render
and send them. A sink's ``send`` raises :class:`DeliveryError` to tell the outbox what
to do next: retry later (optionally not before ``retry_after`` seconds) or stop for
good, and whether the failed call may have taken effect (``unsure``: it timed out, was
cut off after the request went out, or got a 5xx), so the retry looks before it sends.

Every failure has one of a few fixed :data:`Reason` values, the label of the failure
metrics (as Alertmanager's ``notify`` package does); the free-text ``reason`` goes to
the logs only, never into a label.
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

Reason = Literal["auth", "client", "server", "rate_limited", "timeout", "other"]
REASONS: tuple[Reason, ...] = ("auth", "client", "server", "rate_limited", "timeout", "other")
DEFAULT_RETRY_AFTER = 30.0  # a 429 that does not say how long to wait

# A ``send`` response may list, under this key, key prefixes of the same alert's later
# deliveries to the same sink that it made unnecessary (an alert summarised in a storm
# has no thread to reply in): the outbox settles them with it instead of sending them.
SETTLES = "settles"


@dataclass(frozen=True)
class Delivery:
    """One remote call a sink will make, stored in the outbox before it is made.

    ``key`` is the idempotency key: the same key is never delivered twice.
    """

    sink: str
    action: str
    key: str
    payload: dict[str, Any] = field(default_factory=dict)
    queued_at: float | None = None  # set by the outbox: crash recovery looks no further back


class DeliveryError(Exception):
    """A delivery failed; ``permanent`` failures are not retried; ``kind`` labels metrics."""

    def __init__(
        self,
        reason: str,
        *,
        permanent: bool = False,
        retry_after: float | None = None,
        unsure: bool = False,
        rate_limited: bool = False,
        kind: Reason | None = None,
    ):
        super().__init__(reason)
        self.reason = reason
        self.permanent = permanent
        self.retry_after = retry_after
        self.unsure = unsure
        self.rate_limited = rate_limited  # a 429: ``retry_after`` holds the whole scope
        self.kind: Reason = kind or ("rate_limited" if rate_limited else "other")


def delivery_error(
    status: int,
    headers: Mapping[str, str] | None,
    reason: str,
    *,
    permanent_kind: Reason | None = None,
) -> DeliveryError:
    """What an HTTP error status means for a delivery; ``reason`` is the log text.

    429: rate limited, not before ``Retry-After``. 401/403: the credentials, for good.
    408 and 5xx: transient, and the call may have been applied (``unsure``). Any other
    status is a permanent client error (``permanent_kind`` overrides its kind).
    """
    if status == 429:
        wait = retry_after(headers)
        return DeliveryError(reason, retry_after=wait, rate_limited=True, kind="rate_limited")
    if status in (401, 403):
        return DeliveryError(reason, permanent=True, kind="auth")
    if status == 408:
        return DeliveryError(reason, unsure=True, kind="timeout")
    if status >= 500:
        return DeliveryError(reason, unsure=True, kind="server")
    return DeliveryError(reason, permanent=True, kind=permanent_kind or "client")


def retry_after(headers: Mapping[str, str] | None, default: float = DEFAULT_RETRY_AFTER) -> float:
    """Seconds to wait from a ``Retry-After`` header: seconds, or an HTTP date."""
    value = _header(headers, "retry-after").strip()
    if not value:
        return default
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return default
    return max(0.0, when.timestamp() - time.time())


def _header(headers: Mapping[str, str] | None, name: str) -> str:
    """A header by name in any case (httpx and aiohttp headers are case-insensitive already)."""
    if not headers:
        return ""
    found = headers.get(name)
    if found is None:
        found = next((v for k, v in headers.items() if k.lower() == name), None)
    return str(found or "")
