"""The HTTP shell: the app, its one error type, the bounded body reader, draining,
authentication, health, and the Alertmanager webhook. Slack and PagerDuty bring their
own endpoints (``router.integrations``)."""

from router.web.app import create_app

__all__ = ["create_app"]
