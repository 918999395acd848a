"""Request signatures of Slack and PagerDuty, checked on the raw body before it is parsed.

Slack: ``X-Slack-Signature: v0=<hex>``, HMAC-SHA256 of ``v0:{timestamp}:{body}`` with
the app's signing secret, and ``X-Slack-Request-Timestamp`` within five minutes
(slack-sdk's verifier). PagerDuty (webhooks v3): ``X-PagerDuty-Signature: v1=<hex>[,v1=<hex>…]``,
HMAC-SHA256 of the body with the subscription's secret; during a rotation there are
several signatures and any one may match any configured secret.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Mapping

from slack_sdk.signature import Clock, SignatureVerifier
from starlette.requests import ClientDisconnect, Request

from router.config import PagerDutySettings


class SlackSignature:
    """Checks Slack's signature headers against the signing secret."""

    def __init__(self, signing_secret: str, clock: Clock | None = None) -> None:
        self._verifier = SignatureVerifier(signing_secret, clock or Clock())

    def valid(self, body: bytes, headers: Mapping[str, str]) -> bool:
        try:
            return self._verifier.is_valid_request(body, dict(headers))
        except (ValueError, UnicodeDecodeError):  # a timestamp that is not a number, a bad body
            return False


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


async def read_body(request: Request, limit: int) -> bytes | None:
    """The raw body, or None when it is larger than ``limit`` or the client went away."""
    length = request.headers.get("content-length")
    if length is not None and (not length.isdigit() or int(length) > limit):
        return None
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                return None
            chunks.append(chunk)
    except ClientDisconnect:
        return None
    return b"".join(chunks)
