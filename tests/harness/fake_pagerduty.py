"""A fake PagerDuty over real HTTPS, for the real ``pagerduty`` clients.

One server plays both APIs: the Events API v2 (``POST /v2/enqueue``, validated like
PagerDuty does, creating and resolving incidents by ``dedup_key`` per service) and the
part of REST API v2 the sink uses (``GET /incidents?incident_key=``, ``GET`` and
``POST /incidents/{id}/notes``, with token auth and the ``From`` header). It records
every request (with when it arrived), can fail the next N calls of a path, hang on
one, or answer late having done the work (:meth:`FakePagerDuty.answer_late`), and can
hold new incidents back for a few lookups, as PagerDuty creates them asynchronously.

TLS certificates come from ``trustme``: :attr:`FakePagerDutyServer.ca_file` is the CA
to trust.
"""

from __future__ import annotations

import asyncio
import fnmatch
import itertools
import json
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import trustme
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.harness.waiting import eventually_sync
from tests.procs import free_port

API_TOKEN = "u+fakePagerDutyApiToken0123"
ROUTING_KEY = "R0DEFAULT0123456789abcdef012345"  # the default service's
SEVERITIES = {"critical", "error", "warning", "info"}
NOTE_LIMIT = 25_000


@dataclass(frozen=True)
class Recorded:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: Any
    at: float = field(default_factory=time.monotonic)


@dataclass
class Incident:
    id: str
    incident_key: str
    service: str
    title: str
    created_at: str
    status: str = "triggered"
    notes: list[dict[str, Any]] = field(default_factory=list)
    number: int = 0

    def webhook(self, event_type: str, event_id: str) -> dict[str, Any]:
        """A webhook (v3) body about this incident, as PagerDuty sends it."""
        data = {**self.json(), "number": self.number, "html_url": f"https://pd.test/{self.id}"}
        event = {
            "id": event_id,
            "event_type": event_type,
            "resource_type": "incident",
            "occurred_at": _now(),
            "agent": None,
            "client": None,
            "data": data,
        }
        return {"event": event}

    def json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": "incident",
            "incident_key": self.incident_key,
            "status": self.status,
            "title": self.title,
            "created_at": self.created_at,
            "service": {"id": self.service, "type": "service_reference", "summary": self.service},
        }


@dataclass(frozen=True)
class Failure:
    status: int
    headers: dict[str, str]
    body: Any


@dataclass
class FakePagerDuty:
    """The fake's state. ``services`` maps each valid routing key to a service name."""

    services: dict[str, str]
    api_token: str = API_TOKEN
    requests: list[Recorded] = field(default_factory=list)
    incidents: list[Incident] = field(default_factory=list)
    failures: dict[str, list[Failure]] = field(default_factory=dict)
    hanging: set[str] = field(default_factory=set)
    late: dict[str, list[float]] = field(default_factory=dict)  # "POST /glob" → next delays
    hidden_lookups: int = 0  # new incidents stay invisible to this many lookups
    _ids: itertools.count = field(default_factory=lambda: itertools.count(1))
    _hidden: dict[str, int] = field(default_factory=dict)  # incident id → lookups left

    def fail(
        self,
        path: str,
        status: int,
        *,
        times: int = 1,
        body: Any = None,
        retry_after: str | None = None,
    ) -> None:
        """Answer the next ``times`` requests to ``path`` with ``status``."""
        headers = {"Retry-After": retry_after} if retry_after is not None else {}
        body = body if body is not None else {"error": {"message": f"fake {status}"}}
        self.failures.setdefault(path, []).extend([Failure(status, headers, body)] * times)

    def hang(self, path: str) -> None:
        self.hanging.add(path)

    def answer_late(self, request: str, seconds: float, times: int = 1) -> None:
        """The next ``times`` requests matching ``request`` (``"POST /incidents/*/notes"``)
        take effect but are answered ``seconds`` late."""
        self.late.setdefault(request, []).extend([seconds] * times)

    def calls(self, method: str, path: str) -> list[Recorded]:
        return [r for r in self.requests if r.method == method and r.path == path]

    def events(self) -> list[dict[str, Any]]:
        return [r.body for r in self.calls("POST", "/v2/enqueue")]

    def by_key(self, dedup_key: str) -> list[Incident]:
        return [i for i in self.incidents if i.incident_key == dedup_key]

    async def handle(self, request: Request) -> Response:
        raw = await request.body()
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode(errors="replace")
        path = request.url.path
        self.requests.append(
            Recorded(
                request.method,
                path,
                {k: request.query_params.getlist(k) for k in request.query_params},
                {k.lower(): v for k, v in request.headers.items()},
                body,
            )
        )
        if path in self.hanging:
            await asyncio.sleep(3600)
        if self.failures.get(path):
            failure = self.failures[path].pop(0)
            return JSONResponse(failure.body, failure.status, headers=failure.headers)
        answer = self._route(request, path, body)
        for pattern, delays in self.late.items():
            if delays and fnmatch.fnmatchcase(f"{request.method} {path}", pattern):
                await asyncio.sleep(delays.pop(0))
                break
        return answer

    def _route(self, request: Request, path: str, body: Any) -> Response:
        if path == "/v2/enqueue" and request.method == "POST":
            return self._enqueue(body)
        if request.headers.get("authorization") != f"Token token={self.api_token}":
            return _rest_error(401, 2006, "Authentication required")
        parts = path.strip("/").split("/")
        if path == "/incidents" and request.method == "GET":
            return self._list_incidents(
                request.query_params.get("incident_key"),
                everything=request.query_params.get("date_range") == "all",
            )
        if len(parts) == 3 and parts[0] == "incidents" and parts[2] == "notes":
            incident = next((i for i in self.incidents if i.id == parts[1]), None)
            if incident is None:
                return _rest_error(404, 2100, "Not Found")
            if request.method == "GET":
                return JSONResponse({"notes": incident.notes})
            return self._add_note(incident, request, body)
        return _rest_error(404, 2100, "Not Found")

    def _enqueue(self, event: Any) -> Response:
        errors = _event_errors(event, self.services)
        if errors:
            return JSONResponse(
                {"status": "invalid event", "message": "Event object is invalid", "errors": errors},
                400,
            )
        service = self.services[event["routing_key"]]
        key = event.get("dedup_key") or f"generated-{next(self._ids)}"
        open_ = [
            i
            for i in self.by_key(key)
            if i.service == service and i.status in ("triggered", "acknowledged")
        ]
        if event["event_action"] == "trigger" and not open_:
            incident = Incident(
                f"Q{next(self._ids):06d}", key, service, event["payload"]["summary"], _now()
            )
            incident.number = len(self.incidents) + 1
            self.incidents.append(incident)
            self._hidden[incident.id] = self.hidden_lookups
        elif event["event_action"] == "resolve":
            for incident in open_:
                incident.status = "resolved"
        elif event["event_action"] == "acknowledge":
            for incident in open_:
                incident.status = "acknowledged"
        return JSONResponse(
            {"status": "success", "message": "Event processed", "dedup_key": key}, 202
        )

    def _list_incidents(self, key: str | None, everything: bool = False) -> Response:
        """As PagerDuty lists: the last 30 days unless ``date_range=all``."""
        found = []
        month_ago = datetime.now(UTC) - timedelta(days=30)
        for incident in self.incidents:
            if key is not None and incident.incident_key != key:
                continue
            if not everything and datetime.fromisoformat(incident.created_at) < month_ago:
                continue
            if self._hidden.get(incident.id, 0) > 0:
                self._hidden[incident.id] -= 1
                continue
            found.append(incident)
        body = {
            "incidents": [i.json() for i in found],
            "limit": 25,
            "offset": 0,
            "more": False,
            "total": None,
        }
        return JSONResponse(body)

    def _add_note(self, incident: Incident, request: Request, body: Any) -> Response:
        if not request.headers.get("from"):
            return _rest_error(
                400, 2001, "Invalid Input Provided", ["A valid 'From' header is required."]
            )
        content = body.get("note", {}).get("content") if isinstance(body, dict) else None
        if not isinstance(content, str) or not content:
            return _rest_error(400, 2001, "Invalid Input Provided", ["Note content is required."])
        if len(content) > NOTE_LIMIT:
            return _rest_error(400, 2001, "Invalid Input Provided", ["Note is too long."])
        note = {
            "id": f"N{next(self._ids):06d}",
            "user": {"type": "user_reference", "summary": request.headers["from"]},
            "channel": {"summary": "The PagerDuty API"},
            "content": content,
            "created_at": _now(),
        }
        incident.notes.append(note)
        return JSONResponse({"note": note}, 201)


class FakePagerDutyServer:
    """Runs a :class:`FakePagerDuty` under uvicorn with TLS, in a background thread."""

    def __init__(self, fake: FakePagerDuty, workdir: Path) -> None:
        self.fake = fake
        self.port = free_port()
        ca = trustme.CA()
        cert = ca.issue_cert("127.0.0.1", "localhost")
        self.ca_file = workdir / "fake-pagerduty-ca.pem"
        ca.cert_pem.write_to_path(str(self.ca_file))
        cert_file, key_file = workdir / "fake-pagerduty.pem", workdir / "fake-pagerduty.key"
        cert.cert_chain_pems[0].write_to_path(str(cert_file))
        cert.private_key_pem.write_to_path(str(key_file))
        methods = ["GET", "POST", "PUT", "DELETE"]
        app = Starlette(routes=[Route("/{path:path}", fake.handle, methods=methods)])
        config = uvicorn.Config(
            app,
            host="127.0.0.1",
            port=self.port,
            ssl_certfile=str(cert_file),
            ssl_keyfile=str(key_file),
            log_level="warning",
            timeout_graceful_shutdown=1,
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()

        def started() -> bool:
            if not self.thread.is_alive():
                raise RuntimeError("the fake PagerDuty did not start")
            return self.server.started

        eventually_sync(started, 10, "the fake PagerDuty to start", 0.01)

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(5)


def _event_errors(event: Any, services: dict[str, str]) -> list[str]:
    if not isinstance(event, dict):
        return ["Event object must be a JSON object"]
    errors = []
    if event.get("routing_key") not in services:
        errors.append("Invalid routing key")
    if event.get("event_action") not in ("trigger", "acknowledge", "resolve"):
        errors.append("'event_action' is invalid (must be one of: trigger, acknowledge, resolve)")
    key = event.get("dedup_key")
    if key is not None and (not isinstance(key, str) or len(key) > 255):
        errors.append("'dedup_key' must be a string of at most 255 characters")
    if event.get("event_action") in ("acknowledge", "resolve") and not key:
        errors.append("'dedup_key' is missing or blank")
    if event.get("event_action") == "trigger":
        errors += _payload_errors(event.get("payload"))
    for link in event.get("links") or []:
        if not isinstance(link, dict) or not str(link.get("href", "")).startswith("http"):
            errors.append("'links' entries must have an 'href' URL")
    return errors


def _payload_errors(payload: Any) -> list[str]:
    if not isinstance(payload, dict):
        return ["'payload' is missing or not an object"]
    errors = []
    summary = payload.get("summary")
    if not isinstance(summary, str) or not summary.strip():
        errors.append("'payload.summary' is missing or blank")
    elif len(summary) > 1024:
        errors.append("'payload.summary' is longer than 1024 characters")
    if not isinstance(payload.get("source"), str) or not payload["source"].strip():
        errors.append("'payload.source' is missing or blank")
    if payload.get("severity") not in SEVERITIES:
        errors.append(
            "'payload.severity' is invalid (must be one of: critical, error, warning, info)"
        )
    details = payload.get("custom_details")
    if details is not None and not isinstance(details, dict):
        errors.append("'payload.custom_details' must be an object")
    return errors


def _rest_error(status: int, code: int, message: str, errors: list[str] | None = None) -> Response:
    body: dict[str, Any] = {"error": {"message": message, "code": code}}
    if errors:
        body["error"]["errors"] = errors
    return JSONResponse(body, status)


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
