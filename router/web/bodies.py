"""The shapes of the Slack and PagerDuty request bodies the router reads (pydantic).

Only the fields the router uses are declared, each with its type; everything else is
ignored. A body of another shape is a clear 400 naming the fields, never a 500.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.responses import JSONResponse

from router.web.errors import error_response

MAX_DETAILS = 20
MAX_INCIDENT_NUMBER = 2**63 - 1  # what the store's BIGINT column holds


class _Body(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class SlackCommand(_Body):
    """A slash command's form: every field is text, so any form fits."""

    command: str = ""
    text: str = ""
    trigger_id: str | None = None
    user_id: str | None = None
    user_name: str | None = None
    response_url: str | None = None


class SlackUser(_Body):
    id: str | None = None
    username: str | None = None
    name: str | None = None


class SlackAction(_Body):
    action_id: str = ""
    value: str = ""
    action_ts: str | None = None


class SlackInteraction(_Body):
    """A ``block_actions`` payload (the buttons); other interaction types are not read."""

    type: str
    trigger_id: str | None = None
    response_url: str | None = None
    user: SlackUser = Field(default_factory=SlackUser)
    actions: list[SlackAction] = Field(default_factory=list)


class PagerDutyIncident(_Body):
    id: str | None = Field(default=None, pattern=r"^[A-Za-z0-9]{1,64}$")  # it goes into URLs
    number: int | None = Field(default=None, ge=0, le=MAX_INCIDENT_NUMBER)
    incident_key: str | None = None


class PagerDutyEvent(_Body):
    """The ``event`` of a v3 webhook; ``data`` is read as an incident for ``incident.*`` types."""

    id: str | None = None
    event_type: str = ""
    data: dict[str, Any] = Field(default_factory=dict)


class PagerDutyWebhookBody(_Body):
    event: PagerDutyEvent


def invalid(
    exc: ValidationError, error: str = "invalid payload", status: int = 400
) -> JSONResponse:
    """The error response naming each field that does not fit (at most :data:`MAX_DETAILS`)."""
    details = [
        {"field": field_path(e["loc"]), "message": e["msg"]} for e in exc.errors()[:MAX_DETAILS]
    ]
    return error_response(status, error, details)


def field_path(loc: tuple[int | str, ...]) -> str:
    """``("alerts", 0, "startsAt")`` → ``alerts[0].startsAt``; the root is ``(body)``."""
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path or "(body)"
