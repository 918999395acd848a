"""A fake Slack Web API over real HTTP, for the real slack-sdk client.

It implements the methods the Slack sink calls — ``chat.postMessage``,
``chat.update``, ``chat.getPermalink``, ``conversations.history``/``replies``/``list``,
``files.getUploadURLExternal``, the upload URL itself, ``files.completeUploadExternal``
and ``auth.test`` — over in-memory channels and messages, the way Slack answers
them (HTTP 200 with ``{"ok": false, "error": …}`` for API errors, 429 with
``Retry-After`` for rate limits), plus ``response_url``s for commands and buttons
(:meth:`FakeSlack.response_url`). Every request is recorded with its parsed body and
when it arrived. History and replies page like Slack's (``limit``, ``oldest``,
``cursor``, ``has_more``). Tests can make the next calls of a method fail (HTTP
status, Slack error, 429), hang, or answer late and then do the work anyway
(:meth:`FakeSlack.answer_late`), as Slack does when it is slow.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from tests.harness.waiting import eventually_sync
from tests.procs import free_port

TOKEN = "xoxb-1111-2222-fakeslacktoken0123456789"


@dataclass
class Call:
    """One request as the fake received it."""

    method: str
    http: str
    headers: dict[str, str]
    body: dict[str, Any]
    at: float = field(default_factory=time.monotonic)


@dataclass
class Failure:
    times: int
    status: int = 200
    error: str | None = None
    retry_after: float | None = None
    hang: bool = False
    late: float = 0.0  # answer after this long, having done the work


@dataclass
class Channel:
    id: str
    name: str
    messages: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class FakeSlack:
    channels: dict[str, Channel] = field(default_factory=dict)
    calls: list[Call] = field(default_factory=list)
    uploads: dict[str, dict[str, Any]] = field(default_factory=dict)
    failures: dict[str, list[Failure]] = field(default_factory=dict)
    responses: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    base_url: str = ""
    stopping: bool = False
    _ids: itertools.count = field(default_factory=lambda: itertools.count(1))
    _ts: itertools.count = field(default_factory=lambda: itertools.count(100))

    def add_channel(self, name: str, channel_id: str | None = None) -> Channel:
        channel = Channel(channel_id or f"C{next(self._ids):08d}", name.lstrip("#"))
        self.channels[channel.id] = channel
        return channel

    def fail(
        self,
        method: str,
        times: int = 1,
        *,
        status: int = 200,
        error: str | None = None,
        retry_after: float | None = None,
        hang: bool = False,
    ) -> None:
        """Make the next ``times`` calls of ``method`` fail (or hang)."""
        self.failures.setdefault(method, []).append(
            Failure(times, status, error, retry_after, hang)
        )

    def answer_late(self, method: str, seconds: float, times: int = 1) -> None:
        """The next ``times`` calls of ``method`` take effect, but are answered ``seconds`` late."""
        self.failures.setdefault(method, []).append(Failure(times, late=seconds))

    def requests(self, method: str) -> list[Call]:
        return [c for c in self.calls if c.method == method]

    def find(self, name_or_id: str) -> Channel | None:
        if name_or_id in self.channels:
            return self.channels[name_or_id]
        name = name_or_id.lstrip("#")
        return next((c for c in self.channels.values() if c.name == name), None)

    def top_level(self, channel: str) -> list[dict[str, Any]]:
        found = self.find(channel)
        assert found is not None
        return [m for m in found.messages if m.get("thread_ts", m["ts"]) == m["ts"]]

    def thread(self, channel: str, ts: str) -> list[dict[str, Any]]:
        found = self.find(channel)
        assert found is not None
        return [m for m in found.messages if m.get("thread_ts") == ts]

    def response_url(self, name: str) -> str:
        """A ``response_url`` whose posts land in ``responses[name]`` (five uses, like Slack's)."""
        self.responses.setdefault(name, [])
        return f"{self.base_url}/response/{name}"

    # -- HTTP ------------------------------------------------------------------------

    async def respond(self, request: Request) -> Response:
        name = request.path_params["name"]
        body = await _body(request)
        self.calls.append(Call("response_url", request.method, dict(request.headers), body))
        if name not in self.responses:
            return PlainTextResponse("expired_url", 404)
        if len(self.responses[name]) >= 5:
            return PlainTextResponse("used_url", 404)
        self.responses[name].append(body)
        return PlainTextResponse("ok")

    async def handle(self, request: Request) -> Response:
        method = request.path_params["method"]
        body = await _body(request)
        self.calls.append(Call(method, request.method, dict(request.headers), body))
        failure = self._failure(method)
        if failure is not None and failure.late:
            answer = await self._answer(method, request, body)
            await asyncio.sleep(failure.late)
            return answer
        if failure is not None:
            if failure.hang:
                await self._hang()
            headers = {"Retry-After": f"{failure.retry_after:g}"} if failure.retry_after else {}
            content = {"ok": False, "error": failure.error or "internal_error"}
            if failure.status >= 500 and failure.error is None:
                return PlainTextResponse("upstream trouble", failure.status, headers=headers)
            return JSONResponse(content, failure.status, headers=headers)
        return await self._answer(method, request, body)

    async def _answer(self, method: str, request: Request, body: dict[str, Any]) -> Response:
        if request.headers.get("authorization") != f"Bearer {TOKEN}":
            return _error(
                "not_authed" if "authorization" not in request.headers else "invalid_auth"
            )
        handler = getattr(self, "_" + method.replace(".", "_"), None)
        if handler is None:
            return _error("unknown_method")
        return await handler(body)

    async def upload(self, request: Request) -> Response:
        file_id = request.path_params["file_id"]
        data = await request.body()
        self.calls.append(Call("upload", request.method, dict(request.headers), {"bytes": data}))
        if file_id not in self.uploads:
            return PlainTextResponse("no such upload", 404)
        self.uploads[file_id]["data"] = data
        return PlainTextResponse(f"OK - {len(data)}")

    async def _hang(self) -> None:
        """Answer nothing until the server stops (so stopping it stays quick)."""
        deadline = time.monotonic() + 3600
        while not self.stopping and time.monotonic() < deadline:
            await asyncio.sleep(0.02)

    def _failure(self, method: str) -> Failure | None:
        queue = self.failures.get(method) or []
        if not queue:
            return None
        failure = queue[0]
        failure.times -= 1
        if failure.times <= 0:
            queue.pop(0)
        return failure

    # -- methods ---------------------------------------------------------------------

    async def _auth_test(self, body: dict[str, Any]) -> Response:
        return _ok(team_id="T0000FAKE", user_id="U0000BOT", bot_id="B0000BOT")

    async def _chat_postMessage(self, body: dict[str, Any]) -> Response:
        channel = self.find(str(body.get("channel", "")))
        if channel is None:
            return _error("channel_not_found")
        if not body.get("text") and not body.get("blocks") and not body.get("attachments"):
            return _error("no_text")
        thread_ts = body.get("thread_ts")
        if thread_ts and not any(m["ts"] == thread_ts for m in channel.messages):
            return _error("thread_not_found")
        message = {"type": "message", "user": "U0000BOT", "ts": self._next_ts(), **_fields(body)}
        if thread_ts:
            message["thread_ts"] = thread_ts
        channel.messages.append(message)
        return _ok(channel=channel.id, ts=message["ts"], message=message)

    async def _chat_update(self, body: dict[str, Any]) -> Response:
        channel = self.channels.get(str(body.get("channel", "")))
        if channel is None:
            return _error("channel_not_found")
        message = next((m for m in channel.messages if m["ts"] == body.get("ts")), None)
        if message is None:
            return _error("message_not_found")
        message.update(_fields(body))
        message["edited"] = {"user": "U0000BOT", "ts": self._next_ts()}
        return _ok(channel=channel.id, ts=message["ts"], text=message.get("text", ""))

    async def _chat_getPermalink(self, body: dict[str, Any]) -> Response:
        channel = self.channels.get(str(body.get("channel", "")))
        ts = str(body.get("message_ts", ""))
        if channel is None or not any(m["ts"] == ts for m in channel.messages):
            return _error("message_not_found" if channel else "channel_not_found")
        link = f"https://fake.slack.com/archives/{channel.id}/p{ts.replace('.', '')}"
        return _ok(channel=channel.id, permalink=link)

    async def _conversations_history(self, body: dict[str, Any]) -> Response:
        channel = self.channels.get(str(body.get("channel", "")))
        if channel is None:
            return _error("channel_not_found")
        messages = [m for m in channel.messages if m.get("thread_ts", m["ts"]) == m["ts"]]
        return _page(list(reversed(messages)), body, 100)

    async def _conversations_replies(self, body: dict[str, Any]) -> Response:
        channel = self.channels.get(str(body.get("channel", "")))
        if channel is None:
            return _error("channel_not_found")
        ts = str(body.get("ts", ""))
        thread = [m for m in channel.messages if m["ts"] == ts or m.get("thread_ts") == ts]
        if not thread:
            return _error("thread_not_found")
        return _page(thread, body, 1000)

    async def _conversations_list(self, body: dict[str, Any]) -> Response:
        listed = [{"id": c.id, "name": c.name, "is_channel": True} for c in self.channels.values()]
        return _ok(channels=listed, response_metadata={"next_cursor": ""})

    async def _files_getUploadURLExternal(self, body: dict[str, Any]) -> Response:
        if not body.get("filename") or not str(body.get("length", "")).isdigit():
            return _error("invalid_arguments")
        file_id = f"F{next(self._ids):08d}"
        self.uploads[file_id] = {"filename": body["filename"], "length": int(body["length"])}
        return _ok(upload_url=f"{self.base_url}/upload/{file_id}", file_id=file_id)

    async def _files_completeUploadExternal(self, body: dict[str, Any]) -> Response:
        files = json.loads(body.get("files") or "[]")
        if not files or any(f.get("id") not in self.uploads for f in files):
            return _error("invalid_arguments")
        if any("data" not in self.uploads[f["id"]] for f in files):
            return _error("file_not_found")
        shown = [
            {"id": f["id"], "name": self.uploads[f["id"]]["filename"], "title": f.get("title", "")}
            for f in files
        ]
        channel = self.channels.get(str(body.get("channel_id", "")))
        if channel is not None:
            message = {"type": "message", "ts": self._next_ts(), "files": shown, "text": ""}
            if body.get("thread_ts"):
                message["thread_ts"] = body["thread_ts"]
            channel.messages.append(message)
        return _ok(files=shown)

    def _next_ts(self) -> str:
        """A timestamp like Slack's: the current time, made unique."""
        return f"{int(time.time())}.{next(self._ts):06d}"


def _fields(body: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for key in ("text", "blocks", "attachments", "metadata"):
        if key in body:
            value = body[key]
            out[key] = json.loads(value) if isinstance(value, str) and key != "text" else value
    return out


def _page(messages: list[dict[str, Any]], body: dict[str, Any], default: int) -> Response:
    """One page of messages no older than ``oldest``, from ``cursor`` (an offset), like Slack."""
    oldest = float(body.get("oldest") or 0)
    kept = [m for m in messages if float(m["ts"]) >= oldest]
    start, limit = int(body.get("cursor") or 0), int(body.get("limit") or default)
    page = [_shown(m, body) for m in kept[start : start + limit]]
    more = start + limit < len(kept)
    cursor = str(start + limit) if more else ""
    return _ok(messages=page, has_more=more, response_metadata={"next_cursor": cursor})


def _shown(message: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
    """A message as history/replies return it: metadata only when asked for."""
    if str(body.get("include_all_metadata", "")).lower() in ("1", "true"):
        return dict(message)
    return {k: v for k, v in message.items() if k != "metadata"}


async def _body(request: Request) -> dict[str, Any]:
    body: dict[str, Any] = dict(request.query_params)
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("application/json"):
        body.update(json.loads(await request.body() or b"{}"))
    elif content_type.startswith("application/x-www-form-urlencoded"):
        body.update(parse_qsl((await request.body()).decode(), keep_blank_values=True))
    return body


def _ok(**fields: Any) -> JSONResponse:
    return JSONResponse({"ok": True, **fields})


def _error(code: str) -> JSONResponse:
    return JSONResponse({"ok": False, "error": code})


class FakeSlackServer:
    """Runs a :class:`FakeSlack` under uvicorn in a background thread."""

    def __init__(self, slack: FakeSlack) -> None:
        self.slack = slack
        self.port = free_port()
        slack.base_url = f"http://127.0.0.1:{self.port}"
        app = Starlette(
            routes=[
                Route("/api/{method}", slack.handle, methods=["GET", "POST"]),
                Route("/upload/{file_id}", slack.upload, methods=["POST"]),
                Route("/response/{name}", slack.respond, methods=["POST"]),
            ]
        )
        self.server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning")
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        eventually_sync(lambda: self.server.started, 10, "the fake Slack to start", 0.01)

    @property
    def api_url(self) -> str:
        return f"{self.slack.base_url}/api/"

    def stop(self) -> None:
        self.slack.stopping = True
        self.server.should_exit = True
        self.thread.join(5)


# -- test helpers -------------------------------------------------------------------


def triage_result(
    status: str = "firing",
    *,
    name: str = "HighLatency",
    fingerprint: str = "3f1c0de2a9b84e11",
    starts_at: str = "2026-11-22T03:25:00Z",
    ends_at: str | None = None,
    labels: dict[str, str] | None = None,
    annotations: dict[str, str] | None = None,
    **fields: Any,
) -> Any:
    """A :class:`TriageResult` for one alert state, shaped like the pipeline's."""
    from router.alerts import Alert
    from router.triage import TriageResult

    alert = Alert(
        status=status,
        labels={"alertname": name, "severity": "critical", "namespace": "shop", **(labels or {})},
        annotations=annotations if annotations is not None else {"summary": f"{name} on api"},
        startsAt=starts_at,
        endsAt=ends_at or ("2026-11-22T03:42:00Z" if status == "resolved" else None),
        generatorURL="http://prometheus:9090/graph?g0.expr=up+%3D%3D+0&g0.tab=1",
        fingerprint=fingerprint,
    )
    defaults = {"external_url": "http://alertmanager:9093", "group_key": '{}:{alertname="X"}'}
    return TriageResult(alert=alert, **{**defaults, **fields})


def settings_for(fake: FakeSlack, **overrides: Any) -> Any:
    """Slack settings pointing at the fake; a fast limiter unless the test sets one."""
    from router.config import SlackSettings

    values = {
        "bot_token": TOKEN,
        "api_url": f"{fake.base_url}/api/",
        "rate_per_second": 1000,
        "burst": 100,
        **overrides,
    }
    return SlackSettings(**values)
