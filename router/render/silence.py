"""Alertmanager's "new silence" page, prefilled with an alert's labels, in bounded length."""

from __future__ import annotations

from urllib.parse import quote

from router.triage import TriageResult

MAX_URL = 3000  # Slack's limit for a button's URL; PagerDuty links use the same


def alert_silence_url(result: TriageResult, limit: int = MAX_URL) -> str | None:
    """The "new silence" page for this alert, when Alertmanager's URL is http(s)."""
    external = result.external_url or ""
    if not external.startswith(("https://", "http://")) or len(external) > limit:
        return None
    return silence_url(external, result.alert.labels, limit)


def silence_url(external_url: str, labels: dict[str, str], limit: int = MAX_URL) -> str:
    """``{alertname="…",…}`` as the form's filter: as many labels as fit in ``limit``.

    ``alertname`` comes first, then the others by name; each label is quoted once, and
    labels stop being added when the next one would not fit, so the work is linear.
    """
    base = external_url.rstrip("/") + "/#/silences/new?filter="
    close = quote("}", safe="")
    budget = limit - len(base) - len(quote("{", safe="")) - len(close)
    parts: list[str] = []
    for name in sorted(labels, key=lambda k: (k != "alertname", k)):
        part = quote(("," if parts else "") + f'{name}="{_quoted(labels[name])}"', safe="")
        if len(part) > budget:
            break
        parts.append(part)
        budget -= len(part)
    return base + quote("{", safe="") + "".join(parts) + close


def _quoted(value: str) -> str:
    """A matcher value as Alertmanager's double-quoted string."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
