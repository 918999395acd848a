"""The Slack sink: one message per alert (or Alertmanager group), edited in place.

``render`` (pure) turns a triage result into deliveries:

- ``publish`` (``slack:publish:{state_key}``): the Block Kit message. ``send`` posts
  it when the thread has no message yet (with message metadata naming the delivery
  key, then saves where it went in ``store.messages``), or edits that message;
- ``reply`` (``slack:reply:{state_key}:{n}``): thread replies. Under a new message,
  the whole runbook section and the findings; after a state change, one line;
- ``graph`` (``slack:graph:{state_key}``): the alert expression's last hour as a PNG.

``already_delivered`` finds a post or reply interrupted by a crash through its
metadata, so killing the router between the Slack call and recording it never
posts twice. Sends wait for a per-channel token; storms are summarised.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
import weakref
from collections import OrderedDict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from jinja2 import StrictUndefined, TemplateError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from router.config import SlackSettings
from router.delivery import SETTLES, Delivery, DeliveryError
from router.integrations.slack.api import SlackApi
from router.integrations.slack.flow import Clock, RateLimiter, Sleep, Storm, StormWatch
from router.integrations.slack.graph import render_png
from router.integrations.slack.message import SlackMessages, graph_payload, requester, storm_line
from router.redact import Redactor
from router.retriage_request import RetriageRequest
from router.store import Store
from router.triage import TriageResult

log = logging.getLogger("router.integrations.slack.sink")

NAME = "slack"
EVENT_TYPE = "runbook_router_alert"
HISTORY_LIMIT = 200  # messages per page of a crash-recovery look-up
HISTORY_PAGES = 50  # at most 10,000 messages back
CLOCK_SKEW = 120.0  # between our clock and Slack's message timestamps
STORM_EDIT_SECONDS = 5.0
_REMEMBERED = 1024

JSON = dict[str, Any]


class SlackSink:
    """Delivers triage results to Slack through the Web API (slack-sdk)."""

    name = NAME

    def __init__(
        self,
        settings: SlackSettings,
        store: Store,
        templates: Path,
        secrets: Iterable[str] = (),
        *,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
        storm_edit_seconds: float = STORM_EDIT_SECONDS,
    ) -> None:
        if settings.bot_token is None:
            raise ValueError("slack.bot_token is not configured")
        token = settings.bot_token.get_secret_value()
        self.settings, self.store = settings, store
        self.redact = Redactor([token, *secrets])
        self.api = SlackApi(
            token,
            base_url=settings.api_url,
            timeout=settings.timeout_seconds,
            redact=self.redact,
            pauses=store.pauses,
        )
        self.messages = SlackMessages(templates, per_group=settings.message_per == "group")
        self.limiter = RateLimiter(
            settings.rate_per_second, settings.burst, clock=clock, sleep=sleep
        )
        self.storms = StormWatch(settings.storm_threshold_per_minute, clock=clock)
        self.clock, self.sleep, self.storm_edit_seconds = clock, sleep, storm_edit_seconds
        self._channel_template = _compile(settings.channel_template)
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()
        self._posted: OrderedDict[str, JSON] = OrderedDict()  # posts not yet recorded
        self._flushes: set[asyncio.Task[None]] = set()

    # -- render (pure) -------------------------------------------------------------

    def channel(self, result: TriageResult) -> str:
        return slack_channel(self.settings, result, self._channel_template)

    def thread_key(self, result: TriageResult) -> str:
        if self.settings.message_per == "group" and result.group_key:
            return result.group_key
        return result.alert.fingerprint

    def render(self, result: TriageResult) -> list[Delivery]:
        alert = result.alert
        base = self._base(result)
        publish = {**base, "message": self.messages.message(result), "line": storm_line(result)}
        out = [Delivery(NAME, "publish", f"slack:publish:{alert.state_key}", publish)]
        first, change = self.messages.first_replies(result), self.messages.change_reply(result)
        for n in range(max(len(first), 1)):
            reply = {**base, "first": first[n] if n < len(first) else None}
            reply["change"] = change if n == 0 else None
            out.append(Delivery(NAME, "reply", f"slack:reply:{alert.state_key}:{n}", reply))
        graph = graph_payload(result)
        if graph is not None:
            out.append(Delivery(NAME, "graph", f"slack:graph:{alert.state_key}", {**base, **graph}))
        return out

    async def retriage(
        self, result: TriageResult, request: RetriageRequest, *, rerun: bool
    ) -> list[Delivery]:
        """A Slack request's re-run findings as replies in the alert message's thread, when
        the alert has a message of its own (not one summarised in a storm)."""
        if request.source != "slack":
            return []
        ref = await self.store.messages.get(self.thread_key(result), NAME)
        if ref is None or ref.get("storm"):
            return []
        replies = self.messages.retriage_replies(result, requester(request))
        base = self._base(result)
        return [
            Delivery(
                NAME,
                "reply",
                f"slack:retriage:{request.key}:{n}",
                {**base, "first": m, "change": m},
            )
            for n, m in enumerate(replies)
        ]

    def retriage_failed(self, request: RetriageRequest, reason: str) -> list[Delivery]:
        return []  # told through the response_url (router.integrations.slack.response)

    def _base(self, result: TriageResult) -> JSON:
        """What every delivery of this alert carries: where it goes and which state it is."""
        alert = result.alert
        return {
            "channel": self.channel(result),
            "thread_key": self.thread_key(result),
            "fingerprint": alert.fingerprint,
            "state_key": alert.state_key,
            "status": alert.status,
            "alertname": alert.alertname,
            "category": result.classification.category,
        }

    # -- send ------------------------------------------------------------------------

    async def send(self, delivery: Delivery) -> JSON | None:
        payload = delivery.payload
        async with self._lock(payload["thread_key"]):
            ref = await self._ref(delivery)
            if delivery.action == "publish":
                return await self._publish(delivery, ref)
            if ref is None:
                raise DeliveryError("no Slack message to reply to", permanent=True)
            if ref.get("storm"):
                return {"skipped": "summarised in a storm"}
            if delivery.action == "reply":
                return await self._reply(delivery, ref)
            if delivery.action == "graph":
                return await self._graph(delivery, ref)
        raise DeliveryError(f"unknown Slack action {delivery.action!r}", permanent=True)

    async def _ref(self, delivery: Delivery) -> JSON | None:
        thread_key = delivery.payload["thread_key"]
        ref = await self.store.messages.get(thread_key, NAME)
        return ref or self._posted.get(thread_key)

    async def _publish(self, delivery: Delivery, ref: JSON | None) -> JSON:
        payload = delivery.payload
        if ref is not None and ref.get("storm"):
            if payload["status"] != "firing":
                return {"skipped": "summarised in a storm", SETTLES: _thread_of(payload)}
            ref = None  # firing again after a storm: a message of its own
        if (
            ref is not None
            and ref.get("posted_by") == payload["state_key"]
            and "permalink" not in ref
        ):
            return await self._record(delivery, ref["channel"], ref["ts"])  # posted, not saved
        if ref is not None:
            await self.limiter.acquire(payload["channel"])
            message = payload["message"]
            await self.api.call("chat_update", channel=ref["channel"], ts=ref["ts"], **message)
            return {"channel": ref["channel"], "ts": ref["ts"], "updated": True}
        storm = self.storms.storm(payload["channel"], delivery.key)
        if storm is not None:
            return await self._summarise(storm, delivery)
        await self.limiter.acquire(payload["channel"])
        body = await self.api.call(
            "chat_postMessage",
            channel_name=payload["channel"],
            channel=payload["channel"],
            unfurl_links=False,
            unfurl_media=False,
            metadata=_metadata(delivery),
            **payload["message"],
        )
        self.api.remember(payload["channel"], body["channel"])
        return await self._record(delivery, body["channel"], body["ts"])

    async def _record(self, delivery: Delivery, channel_id: str, ts: str) -> JSON:
        """Save where the message went (first without, then with its permalink)."""
        payload = delivery.payload
        ref = {"channel": channel_id, "ts": ts, "posted_by": payload["state_key"]}
        self._remember(payload["thread_key"], ref)
        await self.store.messages.save(payload["thread_key"], NAME, ref)
        try:
            link = await self.api.call("chat_getPermalink", channel=channel_id, message_ts=ts)
        except DeliveryError as exc:
            log.warning("no permalink for %s: %s", delivery.key, exc.reason)
        else:
            ref["permalink"] = link.get("permalink")
            await self.store.messages.save(payload["thread_key"], NAME, ref)
        self._posted.pop(payload["thread_key"], None)
        return {"channel": channel_id, "ts": ts, "permalink": ref.get("permalink")}

    def _remember(self, thread_key: str, ref: JSON) -> None:
        """Keep a post in memory until it is recorded, so a failed save never re-posts."""
        self._posted[thread_key] = ref
        while len(self._posted) > _REMEMBERED:
            self._posted.popitem(last=False)

    async def _reply(self, delivery: Delivery, ref: JSON) -> JSON:
        payload = delivery.payload
        variant = "first" if ref.get("posted_by") == payload["state_key"] else "change"
        message = payload.get(variant)
        if not message:
            return {"skipped": f"no {variant} reply"}
        await self.limiter.acquire(payload["channel"])
        body = await self.api.call(
            "chat_postMessage",
            channel_name=payload["channel"],
            channel=ref["channel"],
            thread_ts=ref["ts"],
            unfurl_links=False,
            unfurl_media=False,
            metadata=_metadata(delivery),
            **message,
        )
        return {"channel": ref["channel"], "ts": body.get("ts")}

    async def _graph(self, delivery: Delivery, ref: JSON) -> JSON:
        payload = delivery.payload
        points = [(float(t), float(v)) for t, v in payload["points"]]
        png = await asyncio.to_thread(
            render_png, points, title=payload["title"], unit=payload["unit"], start=payload["start"]
        )
        if png is None:
            return {"skipped": "fewer than two points"}
        await self.limiter.acquire(payload["channel"])
        body = await self.api.call(
            "files_upload_v2",
            content=png,
            filename=_filename(delivery),
            title=payload["title"][:250],
            channel=ref["channel"],
            thread_ts=ref["ts"],
        )
        files = body.get("files") or [{}]
        return {"channel": ref["channel"], "file_id": files[0].get("id")}

    # -- storms ----------------------------------------------------------------------

    async def _summarise(self, storm: Storm, delivery: Delivery) -> JSON:
        payload = delivery.payload
        now = self.clock()
        async with storm.lock:
            storm.add(delivery.key, payload["alertname"], payload["category"], payload["line"], now)
            if storm.ts is None:
                await self.limiter.acquire(storm.channel)
                body = await self.api.call(
                    "chat_postMessage",
                    channel_name=storm.channel,
                    channel=storm.channel,
                    unfurl_links=False,
                    **self.messages.storm(storm),
                )
                storm.channel_id, storm.ts = body["channel"], body["ts"]
                storm.last_edit, storm.dirty = now, False
            elif now - storm.last_edit >= self.storm_edit_seconds:
                await self._edit_storm(storm)
            else:
                self._schedule_flush(storm)
        ref = {"channel": storm.channel_id, "ts": storm.ts, "storm": True}
        await self.store.messages.save(payload["thread_key"], NAME, ref)
        return {"storm": storm.ts, "channel": storm.channel_id, SETTLES: _thread_of(payload)}

    async def _edit_storm(self, storm: Storm) -> None:
        await self.limiter.acquire(storm.channel)
        message = self.messages.storm(storm)
        await self.api.call("chat_update", channel=storm.channel_id, ts=storm.ts, **message)
        storm.last_edit, storm.dirty = self.clock(), False

    def _schedule_flush(self, storm: Storm) -> None:
        if storm.flush_pending:
            return
        storm.flush_pending = True
        task = asyncio.create_task(self._flush_later(storm))
        self._flushes.add(task)
        task.add_done_callback(self._flushes.discard)

    async def _flush_later(self, storm: Storm) -> None:
        await self.sleep(max(0.0, storm.last_edit + self.storm_edit_seconds - self.clock()))
        await self._flush(storm)

    async def _flush(self, storm: Storm) -> None:
        async with storm.lock:
            storm.flush_pending = False
            if not storm.dirty or storm.ts is None:
                return
            try:
                await self._edit_storm(storm)
            except DeliveryError as exc:
                log.warning("cannot update the storm summary in %s: %s", storm.channel, exc.reason)

    async def flush_storms(self) -> None:
        """Edit every storm summary with news now (on shutdown, and in tests)."""
        for storm in self.storms.active():
            await self._flush(storm)

    async def aclose(self) -> None:
        """Flush storm summaries and stop pending edits."""
        for task in list(self._flushes):
            task.cancel()
        await asyncio.gather(*self._flushes, return_exceptions=True)
        await self.flush_storms()

    # -- crash recovery --------------------------------------------------------------

    async def already_delivered(self, delivery: Delivery) -> bool:
        """Whether a post or reply of unknown outcome is in Slack, found by its metadata.

        The search pages through the channel's history (or the thread) back to when the
        delivery was queued, less ``CLOCK_SKEW``, however busy the channel has been since.
        """
        payload = delivery.payload
        ref = await self.store.messages.get(payload["thread_key"], NAME)
        if delivery.action == "publish":
            if ref is not None:
                return ref.get("posted_by") == payload["state_key"]  # else an update: redo it
            channel_id = await self.api.channel_id(payload["channel"])
            found = await self._search(delivery, "conversations_history", channel=channel_id)
            if found is None:
                return False
            await self._record(delivery, channel_id, found["ts"])
            return True
        if ref is None or ref.get("storm"):
            return False
        found = await self._search(
            delivery, "conversations_replies", channel=ref["channel"], ts=ref["ts"]
        )
        return found is not None

    async def _search(self, delivery: Delivery, method: str, **where: Any) -> JSON | None:
        """Page through history (or replies) since the delivery was queued for its message."""
        oldest = f"{max(0.0, (delivery.queued_at or 0.0) - CLOCK_SKEW):.6f}"
        cursor, seen = None, 0
        for _ in range(HISTORY_PAGES):
            body = await self.api.call(
                method,
                limit=HISTORY_LIMIT,
                oldest=oldest,
                cursor=cursor,
                include_all_metadata=True,
                **where,
            )
            seen += len(body.get("messages") or [])
            found = _find(body, delivery)
            cursor = (body.get("response_metadata") or {}).get("next_cursor")
            if found is not None or not (body.get("has_more") and cursor):
                break
        log.info(
            "look-up of %s in %d messages since %s: %s",
            delivery.key,
            seen,
            oldest,
            f"found {found['ts']}" if found else "not there",
            extra={"key": delivery.key, "sink": NAME},
        )
        return found

    def _lock(self, key: str) -> asyncio.Lock:
        """One lock per thread, alive while someone holds or awaits it."""
        return self._locks.setdefault(key, asyncio.Lock())


def _thread_of(payload: JSON) -> list[str]:
    """Key prefixes of this alert state's thread deliveries: none is needed in a storm."""
    state_key = payload["state_key"]
    return [f"slack:reply:{state_key}:", f"slack:graph:{state_key}"]


def _metadata(delivery: Delivery) -> JSON:
    """Message metadata naming the delivery, so recovery can find what it posted."""
    keys = {"key": delivery.key, "fingerprint": delivery.payload["fingerprint"]}
    return {"event_type": EVENT_TYPE, "event_payload": keys}


def _filename(delivery: Delivery) -> str:
    """A file name derived from the delivery key, so recovery can recognise the upload."""
    return f"graph-{hashlib.sha256(delivery.key.encode()).hexdigest()[:16]}.png"


def _find(body: JSON, delivery: Delivery) -> JSON | None:
    """The message in a history or replies page that this delivery made, if any."""
    filename = _filename(delivery) if delivery.action == "graph" else None
    for message in body.get("messages") or []:
        meta = (message.get("metadata") or {}).get("event_payload") or {}
        if meta.get("key") == delivery.key:
            return message
        if filename and any(f.get("name") == filename for f in message.get("files") or []):
            return message
    return None


def slack_channel(settings: SlackSettings, result: TriageResult, template: Any = None) -> str:
    """The rule's channel, else ``channel_template`` over the labels, else the default."""
    if result.classification.routing.slack_channel:
        return result.classification.routing.slack_channel
    template = template or _compile(settings.channel_template)
    if template is not None:
        alert = result.alert
        try:
            chosen = template.render(
                labels=alert.labels, annotations=alert.annotations, alertname=alert.alertname
            ).strip()
        except TemplateError:
            chosen = ""
        if chosen.lstrip("#"):
            return chosen
    return settings.default_channel


def _compile(source: str | None) -> Any:
    if not source:
        return None
    env = ImmutableSandboxedEnvironment(undefined=StrictUndefined, autoescape=False)
    return env.from_string(source)
