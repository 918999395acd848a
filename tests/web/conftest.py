"""Fixtures for the HTTP layer: a real SQLite store, the app, an ASGI client, a live server."""

from __future__ import annotations

import io
import logging
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from router.config import Settings, WebhookSettings
from router.logs import configure_logging
from router.metrics import Metrics
from router.redact import Redactor
from router.store import Store, open_store
from router.web import create_app
from tests.web.webhelpers import PASSWORD, TOKEN, USERNAME, LiveServer, asgi_client


@pytest.fixture
async def store(tmp_path) -> AsyncIterator[Store]:
    opened = await open_store(f"sqlite+aiosqlite:///{tmp_path / 'db' / 'router.db'}")
    yield opened
    await opened.close()


@pytest.fixture
def metrics() -> Metrics:
    return Metrics()


AppFactory = Callable[..., Starlette]


@pytest.fixture
def make_app(store: Store, metrics: Metrics) -> AppFactory:
    """``make_app(token=…, username=…, password=…, max_body_bytes=…, store=…, readiness=…)``."""

    def factory(*, store: Store = store, readiness: Any = None, **webhook: Any) -> Starlette:
        settings = Settings(webhook=WebhookSettings(**webhook))
        return create_app(settings, store, metrics, readiness=readiness)

    return factory


@pytest.fixture
def app(make_app: AppFactory) -> Starlette:
    """An app with both a bearer token and basic credentials configured."""
    return make_app(token=TOKEN, username=USERNAME, password=PASSWORD)


@pytest.fixture
async def client(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    async with asgi_client(app) as c:
        yield c


@pytest.fixture
def auth_headers() -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
async def live(app: Starlette) -> AsyncIterator[LiveServer]:
    async with LiveServer(app) as server:
        yield server


class LogCapture:
    """Everything logged while active, through the router's own redacting handler."""

    def __init__(self, format: str, redactor: Redactor) -> None:
        self.stream = io.StringIO()
        self.format = format
        self.redactor = redactor

    @property
    def text(self) -> str:
        return self.stream.getvalue()


@pytest.fixture
def capture_logs() -> Iterator[Callable[..., LogCapture]]:
    """``capture_logs("json", secrets)`` configures logging into a buffer; restored after."""
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)

    def start(format: str = "text", secrets: tuple[str, ...] = ()) -> LogCapture:
        capture = LogCapture(format, Redactor(secrets))
        configure_logging(format, "debug", redactor=capture.redactor, stream=capture.stream)  # type: ignore[arg-type]
        return capture

    yield start
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in saved[0]:
        root.addHandler(handler)
    root.setLevel(saved[1])
