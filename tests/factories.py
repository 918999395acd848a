"""Alertmanager payloads for tests, shaped like the ones Alertmanager really sends."""

from __future__ import annotations

import hashlib
import json
from typing import Any
from urllib.parse import quote

ZERO = "0001-01-01T00:00:00Z"


def alert(
    name: str = "TestAlert",
    *,
    status: str = "firing",
    fingerprint: str | None = None,
    starts_at: str = "2026-11-22T10:00:00Z",
    ends_at: str | None = None,
    labels: dict[str, str] | None = None,
    annotations: dict[str, str] | None = None,
    expr: str | None = None,
) -> dict[str, Any]:
    all_labels = {"alertname": name, "severity": "warning", **(labels or {})}
    generator = f"http://prometheus:9090/graph?g0.expr={quote(expr)}&g0.tab=1" if expr else ""
    return {
        "status": status,
        "labels": all_labels,
        "annotations": annotations or {"summary": f"{name} is {status}"},
        "startsAt": starts_at,
        "endsAt": ends_at or (ZERO if status == "firing" else "2026-11-22T10:30:00Z"),
        "generatorURL": generator,
        "fingerprint": fingerprint or hashlib.sha256(name.encode()).hexdigest()[:16],
    }


def payload(*alerts: dict[str, Any], receiver: str = "runbook-router") -> dict[str, Any]:
    alerts = alerts or (alert(),)
    status = "firing" if any(a["status"] == "firing" for a in alerts) else "resolved"
    return {
        "version": "4",
        "groupKey": '{}:{alertname="' + alerts[0]["labels"]["alertname"] + '"}',
        "truncatedAlerts": 0,
        "status": status,
        "receiver": receiver,
        "groupLabels": {"alertname": alerts[0]["labels"]["alertname"]},
        "commonLabels": {},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager:9093",
        "alerts": list(alerts),
    }


def body(*alerts: dict[str, Any], **kwargs: Any) -> bytes:
    return json.dumps(payload(*alerts, **kwargs)).encode()
