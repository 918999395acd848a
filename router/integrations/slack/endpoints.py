"""``POST /slack/commands`` (``/triage``) and ``POST /slack/interactions`` (the re-run button).

Every request's signature is checked on the raw body before anything is parsed; a
missing, wrong or stale one is a 401 and no work. A request is then answered within
Slack's three seconds: ``help`` and ``list`` at once, a re-triage with an ephemeral
"re-running diagnostics for …" once the request is recorded — the work itself runs in
the background (``router.retriage``) and answers through ``response_url``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import time
from typing import Any
from urllib.parse import parse_qsl

from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from router.config import SlackSettings
from router.integrations.slack.message import RERUN_ACTION, ephemeral, hhmm
from router.integrations.slack.mrkdwn import escape
from router.integrations.slack.payloads import SlackAction, SlackCommand, SlackInteraction
from router.integrations.slack.response import answer, valid_response_url
from router.integrations.slack.signature import SlackSignature
from router.jsonbody import BadJSON, parse_json
from router.retriage import Request as Retriage
from router.retriage import Resolved, Retriager, resolve
from router.store import AlertSummary, Store, StoreUnavailable
from router.web.body import read_body
from router.web.drain import refuse_when_draining
from router.web.errors import HTTPError, invalid

log = logging.getLogger("router.integrations.slack.endpoints")

LIST_LIMIT = 30
_USER_ID = re.compile(r"[UW][A-Z0-9]{2,30}")
HELP = """*{command}* runs classification and diagnostics again for an alert, now, and posts \
the fresh findings here, in the alert's thread, and on its PagerDuty incident.
• `{command} <fingerprint>` — or its first few characters
• `{command} <alert name>` — the newest alert of that name
• `{command} <incident>` — a PagerDuty incident number (`#1234`) or id
• `{command} list` — the firing alerts, with category and age
• `{command} help` — this text"""
UNAVAILABLE = ":warning: The router cannot reach its database right now; try again in a minute."


class SlackEndpoints:
    """The Slack app's request URLs; both verify the signature first."""

    def __init__(
        self,
        settings: SlackSettings,
        store: Store,
        retriager: Retriager | None,
        max_body_bytes: int,
    ) -> None:
        secret = settings.signing_secret
        self.signature = SlackSignature(secret.get_secret_value()) if secret else None
        self.api_url = settings.api_url
        self.store = store
        self.retriager = retriager
        self.max_body_bytes = max_body_bytes

    async def commands(self, request: Request) -> Response:
        body = await self._verified(request)
        form = _form(body)
        slash = SlackCommand.model_validate(form)
        command = slash.command or "/triage"
        text = " ".join(slash.text.split())
        try:
            return _answer(await self._command(slash, command, text, _digest(form)))
        except StoreUnavailable as exc:
            log.warning("%s %s: %s", command, text, exc)
            return _answer(UNAVAILABLE)

    async def _command(self, slash: SlackCommand, command: str, text: str, digest: str) -> str:
        word = text.lower()
        if word in ("", "help"):
            return HELP.format(command=escape(command))
        if word == "list":
            return await self._list()
        found = await resolve(self.store.lookup, text)
        if found.alert is None:
            return _not_found(found, command)
        retriage = _request(
            slash.trigger_id or digest,
            slash.user_name or slash.user_id,
            slash.user_id,
            command,
            self._response_url(slash.response_url),
        )
        if self.retriager is None:
            return ":warning: Re-running diagnostics is not enabled on this router."
        await self.retriager.submit(retriage, found.alert)
        return _acknowledgement(found)

    async def _list(self) -> str:
        firing = await self.store.lookup.active(limit=LIST_LIMIT + 1)
        if not firing:
            return "No alerts are firing."
        now = time.time()
        lines = [
            f"*{len(firing[:LIST_LIMIT])} firing*"
            + (" (newest)" if len(firing) > LIST_LIMIT else "")
        ]
        for alert in firing[:LIST_LIMIT]:
            category = alert.category or "_not triaged yet_"
            age = _age(now - alert.starts_at.timestamp())
            lines.append(
                f"• *{escape(alert.alertname)}* `{alert.fingerprint}` — {category} · {age}"
            )
        return "\n".join(lines)

    async def interactions(self, request: Request) -> Response:
        body = await self._verified(request)
        form = _form(body)
        try:
            data = parse_json(form.get("payload") or "")
        except BadJSON as exc:
            detail = {"expected": "payload=<JSON>", **exc.detail}
            raise HTTPError(400, "malformed payload", detail) from None
        if not isinstance(data, dict) or data.get("type") != "block_actions":
            return Response(status_code=200)  # other interactions are not ours to answer
        try:
            payload = SlackInteraction.model_validate(data)
        except ValidationError as exc:
            raise invalid(exc) from None
        action = next((a for a in payload.actions if a.action_id == RERUN_ACTION), None)
        if action is None:
            return Response(status_code=200)
        try:
            return await self._rerun(payload, action)
        except StoreUnavailable as exc:
            log.warning("re-run button: %s", exc)
            return _answer(UNAVAILABLE)

    async def _rerun(self, payload: SlackInteraction, action: SlackAction) -> Response:
        alert = await self.store.lookup.by_fingerprint(action.value)
        if alert is None:
            return _answer(f"Alert `{escape(action.value)}` is no longer known to the router.")
        if self.retriager is None:
            return _answer(":warning: Re-running diagnostics is not enabled on this router.")
        user = payload.user
        key = payload.trigger_id or _digest({"user": user.id, "ts": action.action_ts})
        retriage = _request(
            key,
            user.username or user.name or user.id,
            user.id,
            "the Re-run diagnostics button",
            self._response_url(payload.response_url),
        )
        ack = ephemeral(_acknowledgement(Resolved(alert)))
        first = [answer(retriage, ack, "ack")] if retriage.response_url else []
        await self.retriager.submit(retriage, alert, first)
        return Response(status_code=200)

    def _response_url(self, url: str | None) -> str | None:
        """Slack's ``response_url``, or None (and a warning) when it is not Slack's."""
        if url and not valid_response_url(url, self.api_url):
            log.warning("response_url ignored: not an https URL of Slack's")
            return None
        return url or None

    async def _verified(self, request: Request) -> bytes:
        """The raw body when it is signed by Slack; raises :class:`HTTPError` otherwise."""
        if self.signature is None:
            raise HTTPError(401, "unauthorized", "slack.signing_secret is not configured")
        body = await read_body(request, self.max_body_bytes)
        try:
            body.decode()
        except UnicodeDecodeError as exc:
            detail = f"the body is not valid UTF-8 (byte {exc.start})"
            raise HTTPError(400, "malformed body", detail) from None
        if not self.signature.valid(body, request.headers):
            log.warning("Slack request with a missing, wrong or stale signature refused")
            raise HTTPError(401, "unauthorized", "invalid or stale Slack signature")
        refuse_when_draining(request)
        return body


def _request(
    key: str, name: str | None, user_id: str | None, via: str, response_url: str | None
) -> Retriage:
    """A re-triage request from Slack, recorded once per ``key`` (its trigger id)."""
    return Retriage(
        key=f"slack:{key}",
        source="slack",
        requested_by=f"{name or 'someone'} via {via}",
        mention=f"<@{user_id}>" if user_id and _USER_ID.fullmatch(user_id) else None,
        response_url=response_url or None,
    )


def _form(body: bytes) -> dict[str, str]:
    """The form's fields; NUL (which no store's text holds) becomes U+FFFD."""
    fields = parse_qsl(body.decode(), keep_blank_values=True)
    return {k: v.replace("\x00", "\ufffd") for k, v in fields}


def _answer(text: str) -> JSONResponse:
    return JSONResponse(ephemeral(text))


def _acknowledgement(found: Resolved) -> str:
    alert = found.alert
    assert alert is not None
    text = (
        f":arrows_counterclockwise: Re-running diagnostics for *{escape(alert.alertname)}* "
        f"(`{alert.fingerprint}`, {alert.status} since {hhmm(alert.starts_at)})…"
    )
    if found.others:
        text += f"\nAlso named {escape(alert.alertname)}: {_listed(found.others)}."
        text += " Pick one with `/triage <fingerprint>`."
    return text


def _not_found(found: Resolved, command: str) -> str:
    text = f":grey_question: {escape(found.problem or '')}"
    if found.others:
        text += f"\nCandidates: {_listed(found.others)}."
    command = escape(command)
    return text + f"\n`{command} list` shows the firing alerts; `{command} help` explains."


def _listed(alerts: list[AlertSummary]) -> str:
    return ", ".join(f"`{a.fingerprint}` ({escape(a.alertname)}, {a.status})" for a in alerts)


def _age(seconds: float) -> str:
    minutes = max(0, int(seconds // 60))
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if hours < 48 else f"{hours // 24} d {hours % 24} h"


def _digest(fields: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:32]
