"""Slack's request signature, checked on the raw body before it is parsed.

``X-Slack-Signature: v0=<hex>``, HMAC-SHA256 of ``v0:{timestamp}:{body}`` with the
app's signing secret, and ``X-Slack-Request-Timestamp`` within five minutes
(slack-sdk's verifier).
"""

from __future__ import annotations

from collections.abc import Mapping

from slack_sdk.signature import Clock, SignatureVerifier


class SlackSignature:
    """Checks Slack's signature headers against the signing secret."""

    def __init__(self, signing_secret: str, clock: Clock | None = None) -> None:
        self._verifier = SignatureVerifier(signing_secret, clock or Clock())

    def valid(self, body: bytes, headers: Mapping[str, str]) -> bool:
        try:
            return self._verifier.is_valid_request(body, dict(headers))
        except (ValueError, UnicodeDecodeError):  # a timestamp that is not a number, a bad body
            return False
