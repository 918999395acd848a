"""A re-triage request as stored and as sinks see it (below the pipeline and the store).

A person asks for fresh findings (Slack's ``/triage``, the re-run button, a PagerDuty
webhook); ``router.retriage`` runs it and asks every sink for its deliveries.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

JSON = dict[str, Any]


@dataclass(frozen=True)
class RetriageRequest:
    """One re-triage request, as stored with its idempotency ``key``."""

    key: str  # "slack:<trigger_id>", "pagerduty:<event id>"
    source: str  # "slack" or "pagerduty"
    requested_by: str  # plain text: "alice via /triage", "PagerDuty incident.acknowledged"
    mention: str | None = None  # how Slack shows the requester: "<@U024BE7LH>"
    response_url: str | None = None
    note: bool = False  # add an incident note whether or not we know of an incident
    max_age: float | None = None  # reuse findings younger than this; None: always re-run

    @classmethod
    def from_json(cls, data: JSON) -> RetriageRequest:
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})
