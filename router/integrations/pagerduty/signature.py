"""PagerDuty's webhook (v3) signature, checked on the raw body before it is parsed.

``X-PagerDuty-Signature: v1=<hex>[,v1=<hex>…]``, HMAC-SHA256 of the body with the
subscription's secret; during a rotation there are several signatures and any one may
match any configured secret.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable

from router.config import PagerDutySettings


class PagerDutySignature:
    """Checks ``X-PagerDuty-Signature`` against every configured webhook secret."""

    def __init__(self, secrets: Iterable[str]) -> None:
        self._secrets = [s.encode() for s in secrets if s]

    @classmethod
    def from_settings(cls, settings: PagerDutySettings) -> PagerDutySignature:
        secrets = [s.get_secret_value() for s in settings.webhook_secrets]
        if settings.webhook_secret is not None:
            secrets.insert(0, settings.webhook_secret.get_secret_value())
        return cls(secrets)

    @property
    def configured(self) -> bool:
        return bool(self._secrets)

    def valid(self, body: bytes, header: str | None) -> bool:
        """Whether any ``v1=`` signature matches any secret (every pair is compared)."""
        given = [
            part.strip()[3:].encode()
            for part in (header or "").split(",")
            if part.strip().startswith("v1=")
        ]
        matched = False
        for secret in self._secrets:
            expected = hmac.new(secret, body, hashlib.sha256).hexdigest().encode()
            for signature in given:
                matched |= hmac.compare_digest(signature, expected)
        return matched


def sign_pagerduty(secret: str, body: bytes) -> str:
    """The ``v1=`` signature PagerDuty sends for ``body`` (for tests and tools)."""
    return "v1=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
