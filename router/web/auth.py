"""Authentication of Alertmanager's webhook calls.

Alertmanager's ``http_config`` can send ``Authorization: Bearer <token>``
(``authorization`` / ``bearer_token``) or HTTP Basic (``basic_auth``). Whichever
credentials are configured are accepted; with none configured every call is
accepted, and :func:`warn_if_unauthenticated` says so at start-up.
"""

from __future__ import annotations

import binascii
import hashlib
import hmac
import logging
from base64 import b64decode

from router.config import WebhookSettings

REALM = "runbook-router"


def constant_time_equal(given: bytes, expected: bytes) -> bool:
    """Compare two secrets in time independent of where they differ, and of their lengths."""
    return hmac.compare_digest(hashlib.sha256(given).digest(), hashlib.sha256(expected).digest())


class WebhookAuth:
    """Checks an ``Authorization`` header against the configured webhook credentials."""

    def __init__(
        self,
        token: str | None = None,
        username: str | None = None,
        password: str | None = None,
    ) -> None:
        self._token = token.encode() if token is not None else None
        self._basic = (
            (username.encode(), (password or "").encode()) if username is not None else None
        )

    @classmethod
    def from_settings(cls, settings: WebhookSettings) -> WebhookAuth:
        return cls(
            token=settings.token.get_secret_value() if settings.token is not None else None,
            username=settings.username,
            password=settings.password.get_secret_value() if settings.password else None,
        )

    @property
    def configured(self) -> bool:
        return self._token is not None or self._basic is not None

    def check(self, authorization: str | None) -> bool:
        """Whether the ``Authorization`` header value carries a configured credential."""
        if not self.configured:
            return True
        if not authorization:
            return False
        scheme, _, credentials = authorization.strip().partition(" ")
        scheme, credentials = scheme.lower(), credentials.strip()
        if scheme == "bearer" and self._token is not None:
            return constant_time_equal(credentials.encode(), self._token)
        if scheme == "basic" and self._basic is not None:
            return self._check_basic(credentials)
        return False

    def _check_basic(self, credentials: str) -> bool:
        assert self._basic is not None
        try:
            decoded = b64decode(credentials.encode("ascii"), validate=True)
        except (binascii.Error, UnicodeEncodeError):
            return False
        username, sep, password = decoded.partition(b":")
        user_ok = constant_time_equal(username, self._basic[0])
        password_ok = constant_time_equal(password, self._basic[1])
        return bool(sep) and user_ok and password_ok

    def challenge(self) -> str:
        """The ``WWW-Authenticate`` value for a 401: the schemes that are configured."""
        schemes = []
        if self._token is not None:
            schemes.append(f'Bearer realm="{REALM}"')
        if self._basic is not None:
            schemes.append(f'Basic realm="{REALM}", charset="UTF-8"')
        return ", ".join(schemes)


def warn_if_unauthenticated(auth: WebhookAuth, logger: logging.Logger) -> bool:
    """Log a WARNING when the webhook accepts anyone; return whether it does."""
    if auth.configured:
        return False
    logger.warning(
        "POST /alertmanager is UNAUTHENTICATED: anyone who can reach this port can inject "
        "alerts; set webhook.token (bearer) or webhook.username/password "
        "(ROUTER_WEBHOOK_TOKEN, ROUTER_WEBHOOK_USERNAME, ROUTER_WEBHOOK_PASSWORD)"
    )
    return True
