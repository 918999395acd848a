"""The shapes of the PagerDuty webhook bodies the router reads (pydantic).

Only the fields the router uses are declared, each with its type; everything else is
ignored. A body of another shape is a clear 400 naming the fields, never a 500.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

MAX_INCIDENT_NUMBER = 2**63 - 1  # what the store's BIGINT column holds


class _Body(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


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
