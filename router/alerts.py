"""The Alertmanager webhook payload (version 4), as pydantic models.

Alertmanager posts one *group* of alerts at a time. Each alert is identified by
its ``fingerprint`` (a hash of its label set); a firing alert carries the zero
time ``0001-01-01T00:00:00Z`` as ``endsAt``, so its state comes from ``status``.
"""

from __future__ import annotations

import functools
import hashlib
from datetime import UTC, datetime
from typing import Literal
from urllib.parse import parse_qs, urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

Status = Literal["firing", "resolved"]

ZERO_TIME = datetime(1, 1, 1, tzinfo=UTC)


def label_fingerprint(labels: dict[str, str]) -> str:
    """A stable fingerprint for a label set, for senders that omit ``fingerprint``."""
    canonical = "\xff".join(f"{k}\xfe{v}" for k, v in sorted(labels.items()))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


class Alert(BaseModel):
    """One alert of a webhook payload."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    status: Status
    labels: dict[str, str]
    annotations: dict[str, str] = Field(default_factory=dict)
    startsAt: datetime
    endsAt: datetime | None = None
    generatorURL: str = ""
    fingerprint: str = ""

    @field_validator("startsAt", "endsAt")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value

    @model_validator(mode="after")
    def _defaults(self) -> Alert:
        if not self.fingerprint:
            object.__setattr__(self, "fingerprint", label_fingerprint(self.labels))
        if self.endsAt is not None and self.endsAt <= ZERO_TIME:
            object.__setattr__(self, "endsAt", None)
        return self

    @property
    def alertname(self) -> str:
        return self.labels.get("alertname", "")

    @functools.cached_property  # asked for several times per alert on the ingest path
    def state_key(self) -> str:
        """What makes two deliveries of this alert the same notification.

        Fingerprint, status and ``startsAt``; a resolved alert adds ``endsAt``.
        A re-fire (new ``startsAt``) or a resolve is a new state; a re-send is not.
        """
        parts = [self.fingerprint, self.status, self.startsAt.isoformat()]
        if self.status == "resolved" and self.endsAt is not None:
            parts.append(self.endsAt.isoformat())
        return "|".join(parts)

    @property
    def expression(self) -> str | None:
        """The PromQL expression Prometheus put in ``generatorURL`` (``g0.expr``)."""
        return expression_from_url(self.generatorURL)


class WebhookPayload(BaseModel):
    """A whole Alertmanager webhook body."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    version: str = "4"
    groupKey: str
    truncatedAlerts: int = Field(default=0, ge=0, le=2**31 - 1)
    status: Status
    receiver: str
    groupLabels: dict[str, str] = Field(default_factory=dict)
    commonLabels: dict[str, str] = Field(default_factory=dict)
    commonAnnotations: dict[str, str] = Field(default_factory=dict)
    externalURL: str = ""
    alerts: list[Alert]
    notification_reason: str | None = None
    routeLabels: dict[str, str] | None = None


def expression_from_url(url: str) -> str | None:
    """Extract the PromQL expression from a Prometheus graph URL, if any."""
    if not url:
        return None
    query = parse_qs(urlsplit(url).query)
    for key in ("g0.expr", "expr"):
        if query.get(key):
            return query[key][0]
    return None
