"""Answers to Slack commands and button presses, posted to the request's ``response_url``.

A sink like the others so that answers go through the durable outbox: ``render`` has
nothing to add to an alert's own deliveries; for a re-triage requested from Slack it
renders ``respond`` deliveries whose payload carries the ``response_url`` and the message.
A ``response_url`` takes a few posts within 30 minutes, so an expired or used one is
a permanent failure.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from router.delivery import Delivery, DeliveryError, delivery_error
from router.integrations.slack.message import SlackMessages, ephemeral, requester
from router.integrations.slack.mrkdwn import escape
from router.retriage_request import RetriageRequest
from router.triage import TriageResult

NAME = "slack_response"
SLACK_API_URL = "https://slack.com/api/"
RESPONSE_HOST = "hooks.slack.com"
MAX_RESPONSE_URL = 2000


class SlackResponseSink:
    """POSTs JSON messages to Slack ``response_url``s."""

    name = NAME

    def __init__(
        self,
        templates: Path,
        timeout: float = 10.0,
        client: httpx.AsyncClient | None = None,
        api_url: str = SLACK_API_URL,
    ) -> None:
        self.api_url = api_url
        self.messages = SlackMessages(templates)
        self._client = client or httpx.AsyncClient(timeout=timeout, follow_redirects=False)

    def render(self, result: TriageResult) -> list[Delivery]:
        return []

    async def retriage(
        self, result: TriageResult, request: RetriageRequest, *, rerun: bool
    ) -> list[Delivery]:
        """The re-run's answer to whoever asked (ephemeral), when Slack gave a ``response_url``."""
        if not request.response_url:
            return []
        message = self.messages.retriage_response(result, requester(request))
        return [answer(request, message, "result")]

    def retriage_failed(self, request: RetriageRequest, reason: str) -> list[Delivery]:
        if not request.response_url:
            return []
        text = f":warning: Re-running diagnostics failed: {escape(reason)}"
        return [answer(request, ephemeral(text), "result")]

    async def send(self, delivery: Delivery) -> dict[str, Any] | None:
        url = str(delivery.payload.get("response_url") or "")
        if not valid_response_url(url, self.api_url):
            raise DeliveryError("no valid response_url to answer", permanent=True)
        try:
            response = await self._client.post(url, json=delivery.payload["message"])
        except httpx.InvalidURL as exc:
            raise DeliveryError(f"response_url: {exc}", permanent=True, kind="client") from None
        except httpx.TimeoutException as exc:
            raise DeliveryError(f"response_url: {type(exc).__name__}", kind="timeout") from None
        except httpx.HTTPError as exc:
            raise DeliveryError(f"response_url: {type(exc).__name__}") from None
        status = response.status_code
        if status >= 400:
            said = response.text[:100].strip() if 400 <= status < 500 and status != 429 else ""
            shown = "ratelimited" if status == 429 else f"HTTP {status}"
            raise delivery_error(status, response.headers, f"response_url: {said or shown}")
        return {"status": response.status_code}

    async def already_delivered(self, delivery: Delivery) -> bool:
        return False  # nothing to look it up by; an answer twice is the lesser harm

    async def aclose(self) -> None:
        await self._client.aclose()


def answer(request: RetriageRequest, message: dict[str, Any], part: str) -> Delivery:
    """A ``respond`` delivery of ``message`` to the request's ``response_url``."""
    payload = {"response_url": request.response_url, "message": message}
    return Delivery(NAME, "respond", f"{NAME}:{request.key}:{part}", payload)


def valid_response_url(url: str, api_url: str = SLACK_API_URL) -> bool:
    """An https URL on Slack's hooks host, or on the host of the configured ``slack.api_url``.

    Anything else (another host, a control character, an absurd length) is not Slack's,
    and posting to it could never succeed, or worse, would post elsewhere.
    """
    if len(url) > MAX_RESPONSE_URL or not url.isprintable():
        return False
    target, api = urlsplit(url), urlsplit(api_url)
    if target.scheme == "https" and target.hostname == RESPONSE_HOST:
        return True
    return (target.scheme, target.netloc) == (api.scheme, api.netloc) and bool(api.netloc)
