"""The Slack Web API as the sink uses it: slack-sdk's async client, errors as DeliveryError.

The client's own retry handlers are off: the outbox retries, with backoff, and
knows when to stop. A 429 pauses its rate-limit scope (the method, and the channel
for ``chat.postMessage``) in the store, so no delivery of any replica calls it again
before ``Retry-After``. A failure after the request may have gone out (a timeout, a
cut connection, a 5xx) is ``unsure``. Nothing raised or logged from here carries the
bot token.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web.async_client import AsyncWebClient

from router.delivery import DeliveryError, delivery_error
from router.store.pauses import Pauses

AUTH = frozenset(
    {
        "invalid_auth",
        "not_authed",
        "account_inactive",
        "token_revoked",
        "token_expired",
        "no_permission",
        "missing_scope",
    }
)
PERMANENT = AUTH | frozenset(
    {
        "channel_not_found",
        "not_in_channel",
        "is_archived",
        "msg_too_long",
        "invalid_blocks",
        "invalid_attachments",
        "invalid_arguments",
        "invalid_metadata_format",
        "message_not_found",
        "cant_update_message",
        "edit_window_closed",
        "thread_not_found",
    }
)
TRANSIENT = frozenset(
    {"ratelimited", "internal_error", "fatal_error", "service_unavailable", "request_timeout"}
)
_CHANNEL_ID = re.compile(r"[CGD][A-Z0-9]{6,}")
_LIST_PAGES = 10


class SlackApi:
    """One bot token's client; ``call`` returns the response body or raises DeliveryError."""

    def __init__(
        self,
        token: str,
        *,
        base_url: str,
        timeout: float,
        redact: Callable[[str], str],
        pauses: Pauses,
    ) -> None:
        self.client = AsyncWebClient(
            token=token,
            base_url=base_url,
            timeout=timeout,  # type: ignore[arg-type]  # aiohttp takes a float
            retry_handlers=[],
        )
        self.timeout = timeout
        self.redact = redact
        self.pauses = pauses
        self._channel_ids: dict[str, str] = {}

    async def call(
        self, method: str, *, channel_name: str | None = None, **arguments: Any
    ) -> dict[str, Any]:
        """Call ``chat_postMessage`` (etc.) with ``arguments``; map every failure.

        ``channel_name``: the configured channel a post goes to, its rate-limit scope.
        """
        name = method.replace("_", ".", 1)
        scope = scope_of(name, channel_name)
        paused = await self.pauses.remaining(scope)
        if paused > 0:
            reason = f"{name}: rate limited ({paused:.1f} s to go)"
            raise DeliveryError(reason, retry_after=paused, kind="rate_limited")
        try:
            response = await getattr(self.client, method)(**arguments)
        except SlackApiError as exc:
            error = api_error(name, exc.response.status_code, exc.response)
            if error.rate_limited and error.retry_after is not None:
                await self.pauses.hold(scope, error.retry_after)
            raise error from None
        except TimeoutError:
            reason = f"{name}: no answer within {self.timeout:g} s"
            raise DeliveryError(reason, unsure=True, kind="timeout") from None
        except aiohttp.ClientConnectorError as exc:  # no connection: nothing was sent
            reason = f"{name}: {type(exc).__name__}: {exc}"
            raise DeliveryError(self.redact(reason)) from None
        except (aiohttp.ClientError, OSError) as exc:
            reason = f"{name}: {type(exc).__name__}: {exc}"
            raise DeliveryError(self.redact(reason), unsure=True) from None
        except SlackClientError as exc:  # e.g. the upload URL refused the file
            raise DeliveryError(self.redact(f"{name}: {exc}")) from None
        return dict(response.data) if isinstance(response.data, dict) else {}

    def remember(self, name: str, channel_id: str) -> None:
        self._channel_ids[name.lstrip("#")] = channel_id

    async def channel_id(self, channel: str) -> str:
        """The ID of a channel given by ID or by name (names are looked up once, then cached)."""
        if _CHANNEL_ID.fullmatch(channel):
            return channel
        name = channel.lstrip("#")
        if name not in self._channel_ids:
            await self._list_channels()
        if name not in self._channel_ids:
            raise DeliveryError("channel_not_found", permanent=True, kind="client")
        return self._channel_ids[name]

    async def _list_channels(self) -> None:
        cursor = None
        for _ in range(_LIST_PAGES):
            body = await self.call(
                "conversations_list",
                types="public_channel,private_channel",
                exclude_archived=True,
                limit=1000,
                cursor=cursor,
            )
            for item in body.get("channels", []):
                self._channel_ids[item["name"]] = item["id"]
            cursor = (body.get("response_metadata") or {}).get("next_cursor")
            if not cursor:
                return


def scope_of(name: str, channel_name: str | None) -> str:
    """What Slack rate-limits together: the method; ``chat.postMessage`` per channel."""
    if name == "chat.postMessage" and channel_name:
        return f"slack:{name}:{channel_name.lstrip('#')}"
    return f"slack:{name}"


def api_error(name: str, status: int, response: Any) -> DeliveryError:
    """A failed call as a DeliveryError: the Slack error code, or the HTTP status."""
    data = response.data if isinstance(response.data, dict) else {}
    error = str(data.get("error") or "")
    headers = response.headers
    if status == 429 or error == "ratelimited":
        return delivery_error(429, headers, f"{name}: ratelimited")
    if status >= 500:
        return delivery_error(
            status, headers, f"{name}: HTTP {status}" + (f" {error}" if error else "")
        )
    if error in TRANSIENT:
        return DeliveryError(f"{name}: {error}", unsure=True, kind="server")
    if error:
        return DeliveryError(error, permanent=True, kind="auth" if error in AUTH else "client")
    if 400 <= status < 500:
        return delivery_error(status, headers, f"{name}: HTTP {status}")
    return DeliveryError(f"{name}: HTTP {status}")
