"""Sinks: where triage results go. One module per destination, all behind ``pipeline.Sink``.

A sink's ``send`` raises :class:`DeliveryError` to tell the outbox what to do next:
retry later (optionally not before ``retry_after`` seconds) or stop for good, and
whether the failed call may have taken effect (``unsure``: it timed out, was cut off
after the request went out, or got a 5xx), so the retry looks before it sends.
"""

from __future__ import annotations


class DeliveryError(Exception):
    """A delivery failed; ``permanent`` failures are not retried."""

    def __init__(
        self,
        reason: str,
        *,
        permanent: bool = False,
        retry_after: float | None = None,
        unsure: bool = False,
        rate_limited: bool = False,
    ):
        super().__init__(reason)
        self.reason = reason
        self.permanent = permanent
        self.retry_after = retry_after
        self.unsure = unsure
        self.rate_limited = rate_limited  # a 429: ``retry_after`` holds the whole scope
