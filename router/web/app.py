"""The application factory: routes, middleware and error handling, nothing global."""

from __future__ import annotations

import logging
from collections.abc import Callable

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.routing import Route
from starlette.types import Lifespan

from router.config import Settings
from router.integrations.pagerduty.webhook import PagerDutyWebhook
from router.integrations.slack.endpoints import SlackEndpoints
from router.metrics import Metrics
from router.retriage import Retriager
from router.store import Store
from router.web.alertmanager import AlertmanagerWebhook
from router.web.auth import WebhookAuth, warn_if_unauthenticated
from router.web.errors import ErrorMiddleware, http_exception
from router.web.health import Probes, Readiness, healthz
from router.web.instrument import RequestMetricsMiddleware

log = logging.getLogger("router.web")


def create_app(
    settings: Settings,
    store: Store,
    metrics: Metrics,
    *,
    readiness: Readiness | None = None,
    lifespan: Lifespan[Starlette] | None = None,
    on_ingest: Callable[[], None] | None = None,
    retriager: Retriager | None = None,
) -> Starlette:
    """Build the HTTP application over an open ``store``.

    ``readiness`` adds named checks to ``/readyz`` (``{"workers": True}``).
    ``app.state.accepting`` starts True; set it False while draining and
    ``POST /alertmanager`` answers 503 (and ``/readyz`` reports not ready).
    ``on_ingest`` is called after a webhook stored new alert states (to wake the workers).
    ``retriager`` runs what ``/slack/*`` and ``/pagerduty/webhook`` ask for (re-triage);
    without it those endpoints answer but start no work.
    """
    auth = WebhookAuth.from_settings(settings.webhook)
    warn_if_unauthenticated(auth, log)
    webhook = AlertmanagerWebhook(auth, store, metrics, settings.webhook.max_body_bytes, on_ingest)
    probes = Probes(store, metrics, readiness)
    limit = settings.webhook.max_body_bytes
    slack = SlackEndpoints(settings.slack, store, retriager, limit)
    pagerduty = PagerDutyWebhook(settings.pagerduty, store, retriager, limit)
    routes = [
        Route("/alertmanager", webhook.post, methods=["POST"]),
        Route("/slack/commands", slack.commands, methods=["POST"]),
        Route("/slack/interactions", slack.interactions, methods=["POST"]),
        Route("/pagerduty/webhook", pagerduty.post, methods=["POST"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", probes.readyz, methods=["GET"]),
        Route("/metrics", probes.metrics_endpoint, methods=["GET"]),
    ]
    middleware = [
        Middleware(RequestMetricsMiddleware, metrics=metrics),
        Middleware(ErrorMiddleware),
    ]
    app = Starlette(
        routes=routes,
        middleware=middleware,
        exception_handlers={HTTPException: http_exception},
        lifespan=lifespan,
    )
    app.state.accepting = True
    return app
