"""The HTTP layer: the Alertmanager webhook, health, readiness and metrics."""

from router.web.app import create_app

__all__ = ["create_app"]
