"""Payload builders and credentials shared by the web tests."""

from __future__ import annotations

import asyncio
import base64
import socket
from typing import Any

import httpx
import uvicorn
from starlette.types import ASGIApp

TOKEN = "tok-3f9c2a7d5e1b4c8a"
USERNAME = "alertmanager"
PASSWORD = "pw-9d8c7b6a5f4e3d2c"


def basic(username: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


def make_alert(
    name: str = "HighLatency",
    status: str = "firing",
    starts_at: str = "2024-05-01T12:00:00Z",
    ends_at: str = "0001-01-01T00:00:00Z",
    **labels: str,
) -> dict[str, Any]:
    all_labels = {"alertname": name, "severity": "page", **labels}
    return {
        "status": status,
        "labels": all_labels,
        "annotations": {"summary": f"{name} is {status}"},
        "startsAt": starts_at,
        "endsAt": ends_at,
        "generatorURL": "http://prometheus:9090/graph?g0.expr=up+%3D%3D+0",
        "fingerprint": f"fp-{name.lower()}",
    }


def make_payload(*alerts: dict[str, Any], status: str = "firing") -> dict[str, Any]:
    alerts = alerts or (make_alert(),)
    return {
        "version": "4",
        "groupKey": '{}:{alertname="HighLatency"}',
        "truncatedAlerts": 0,
        "status": status,
        "receiver": "team-a",
        "groupLabels": {"alertname": "HighLatency"},
        "commonLabels": {},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager:9093",
        "alerts": list(alerts),
    }


def asgi_client(app: ASGIApp) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url="http://router.test")


class LiveServer:
    """A real uvicorn server on a free loopback port, in the test's event loop."""

    def __init__(self, app: ASGIApp, *, access_log: bool = False) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        config = uvicorn.Config(app, log_config=None, lifespan="off", access_log=access_log)
        self.server = uvicorn.Server(config)
        self.task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> LiveServer:
        self.task = asyncio.create_task(self.server.serve(sockets=[self.sock]))
        for _ in range(500):
            if self.server.started:
                return self
            if self.task.done():
                self.task.result()
            await asyncio.sleep(0.01)
        raise RuntimeError("uvicorn did not start")

    async def __aexit__(self, *exc: object) -> None:
        self.server.should_exit = True
        assert self.task is not None
        await asyncio.wait_for(self.task, 10)
        self.sock.close()
