"""Draining: while the service shuts down, endpoints that start work answer 503.

The service sets ``app.state.accepting`` False on shutdown; ``/readyz`` reports it too.
"""

from __future__ import annotations

from starlette.requests import Request

from router.web.errors import unavailable


def accepting(request: Request) -> bool:
    return bool(getattr(request.app.state, "accepting", True))


def refuse_when_draining(request: Request) -> None:
    """Raise a 503 (which Alertmanager retries) when the service is shutting down."""
    if not accepting(request):
        raise unavailable("shutting down, retry later", reason="draining")
