"""The ``pagerduty`` clients, configured for the outbox, and their failures as DeliveryErrors.

The clients are synchronous and, left alone, retry a 429 forever and some 5xx with
sleeps in between. Here they make exactly one HTTP request per call, bounded by a
timeout, and every failure becomes a :class:`DeliveryError` that the outbox retries
(with backoff, honouring ``Retry-After``) or gives up on. Reasons are redacted.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import httpx2
import pagerduty

from router.delivery import DeliveryError, delivery_error

INCIDENT_RETRY_SECONDS = 5.0  # PagerDuty creates an incident a moment after the trigger
T = TypeVar("T")
Client = TypeVar("Client", bound=pagerduty.ApiClient)


def tls_verify(ca_file: Path | None) -> ssl.SSLContext | bool:
    """``verify`` for the clients: a private CA when configured, else the default trust store.

    The default honours ``SSL_CERT_FILE`` / ``SSL_CERT_DIR`` (the HTTP library is httpx2,
    which does not read ``REQUESTS_CA_BUNDLE``).
    """
    if ca_file is None:
        return True
    return ssl.create_default_context(cafile=str(ca_file))


def events_client(
    url: str, routing_key: str, verify: ssl.SSLContext | bool, timeout: float
) -> pagerduty.EventsApiV2Client:
    client = pagerduty.EventsApiV2Client(routing_key, base_url=url, verify=verify)
    return _one_attempt(client, timeout)


def rest_client(
    url: str, token: str, sender: str, verify: ssl.SSLContext | bool, timeout: float
) -> pagerduty.RestApiV2Client:
    client = pagerduty.RestApiV2Client(token, default_from=sender, base_url=url, verify=verify)
    return _one_attempt(client, timeout)


def _one_attempt(client: Client, timeout: float) -> Client:
    """No retries inside the client: the outbox retries, with backoff and ``Retry-After``.

    A failed connection raises at once (``max_network_attempts = 0``); 5xx are returned
    (an empty ``retry`` map); a 429 -- retried forever by default -- is returned at once
    because its retry budget (``max_http_attempts = -1``) is already spent.
    """
    client.timeout = timeout
    client.log = _unheard()
    client.max_network_attempts = 0
    client.retry = {429: 1}
    client.max_http_attempts = -1
    client.sleep_timer = 0.0
    return client


def _unheard() -> logging.Logger:
    """A private logger that drops the client's own lines.

    Every call ends in a result or a DeliveryError that the outbox logs; the client would
    add an ERROR ("exceeded maximum number of attempts") for each 429 it hands back.
    Unregistered, so no global logging configuration changes.
    """
    return logging.Logger("pagerduty.client", logging.CRITICAL)


async def call(
    what: str,
    redact: Callable[[str], str],
    fn: Callable[..., T],
    *args: Any,
    missing_is_late: bool = False,
    **kwargs: Any,
) -> T:
    """Run a client call off the event loop; any failure becomes a redacted DeliveryError."""
    try:
        return await asyncio.to_thread(fn, *args, **kwargs)
    except pagerduty.Error as exc:
        response = exc.response
        if response is not None and response.status_code and not response.is_success:
            raise failure(what, response, redact, missing_is_late=missing_is_late) from None
        if response is not None:  # a 2xx PagerDuty's client could not make sense of
            raise DeliveryError(redact(f"PagerDuty {what}: unexpected answer: {exc}")) from None
        raise network_failure(what, exc, redact) from None
    except httpx2.HTTPError as exc:
        raise network_failure(what, exc, redact) from None
    except httpx2.InvalidURL as exc:  # too long, or a control character: it never will work
        reason = redact(f"PagerDuty {what}: invalid URL: {exc}")
        raise DeliveryError(reason, permanent=True, kind="client") from None


def failure(
    what: str,
    response: httpx2.Response,
    redact: Callable[[str], str],
    *,
    missing_is_late: bool = False,
) -> DeliveryError:
    """What an HTTP error answer means for the delivery.

    ``missing_is_late``: a 404 means the incident is not there *yet* (PagerDuty creates it
    asynchronously after a trigger), so it is retried soon.
    """
    status = response.status_code
    detail = redact(_detail(response))
    reason = f"PagerDuty {what}: HTTP {status}" + (f": {detail}" if detail else "")
    if status == 404 and missing_is_late:
        return DeliveryError(reason, retry_after=INCIDENT_RETRY_SECONDS, kind="client")
    if status in (401, 403):
        key = "routing key" if "enqueue" in str(response.request.url) else "API token"
        reason = f"{reason} (check the {key})"
    return delivery_error(status, response.headers, reason)


def network_failure(what: str, exc: BaseException, redact: Callable[[str], str]) -> DeliveryError:
    """A request that got no answer: transient, ``unsure`` unless it never connected."""
    cause = _root(exc)
    if isinstance(cause, ssl.SSLCertVerificationError):
        reason = (
            f"PagerDuty {what}: the server's TLS certificate is not trusted "
            f"({cause.verify_message}); set pagerduty.ca_file to trust a private CA"
        )
        return DeliveryError(redact(reason))
    transport = _transport(exc)
    if isinstance(transport, httpx2.TimeoutException):
        reason = f"PagerDuty {what}: timed out ({type(transport).__name__})"
    elif isinstance(transport, httpx2.ConnectError):
        reason = f"PagerDuty {what}: cannot connect: {cause}"
    else:
        reason = f"PagerDuty {what}: {type(cause).__name__}: {cause}"
    never_sent = isinstance(transport, httpx2.ConnectError | httpx2.ConnectTimeout)
    kind = "timeout" if isinstance(transport, httpx2.TimeoutException) else "other"
    return DeliveryError(redact(reason), unsure=not never_sent, kind=kind)


def json_body(response: httpx2.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _detail(response: httpx2.Response) -> str:
    """PagerDuty's own explanation: Events API ``message``/``errors``, REST ``error``."""
    body = json_body(response)
    if isinstance(body, dict):
        error = body.get("error") if isinstance(body.get("error"), dict) else body
        parts = [str(error.get("message") or "")]
        errors = error.get("errors")
        if isinstance(errors, list) and errors:
            parts.append("; ".join(str(e) for e in errors))
        return ": ".join(p for p in parts if p)[:500]
    return " ".join(response.text.split())[:200]


def _transport(exc: BaseException) -> BaseException | None:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, httpx2.TransportError):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def _root(exc: BaseException) -> BaseException:
    while (nested := exc.__cause__ or exc.__context__) is not None:
        exc = nested
    return exc
