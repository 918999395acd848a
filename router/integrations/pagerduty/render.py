"""PagerDuty rendering: Events API v2 events and incident notes, from a triage result.

Pure functions: nothing here makes a call or reads the store. Limits are PagerDuty's
(a ``summary`` of at most 1,024 characters) or our own defensive ones (custom details
and notes are kept well under the API's size limits).
"""

from __future__ import annotations

from typing import Any

from router.alerts import Alert
from router.render.limits import shown
from router.render.order import verdicts_first
from router.render.silence import MAX_URL, alert_silence_url
from router.triage import Evidence, Finding, RunbookLink, TriageResult

SEVERITIES = ("critical", "error", "warning", "info")
DEFAULT_SEVERITY = "error"  # an unknown severity still pages: PagerDuty is for pages
SEVERITY_ALIASES = {
    "critical": "critical",
    "page": "critical",
    "p1": "critical",
    "error": "error",
    "high": "error",
    "warning": "warning",
    "warn": "warning",
    "medium": "warning",
    "info": "info",
    "low": "info",
    "none": "info",
}
SUMMARY_LIMIT = 1024
EXCERPT_LIMIT = 4096
FINDING_LIMIT = 2048
NOTE_LIMIT = 25_000
TRUNCATED = "… (truncated)"
CLIENT = "runbook-router"
NOTE_MARKER = "runbook-router delivery: "
DEDUP_PREFIX = "runbook-router-"


def dedup_key(alert: Alert) -> str:
    """The same for every state of one alert, so a resolve finds its trigger's incident."""
    return f"{DEDUP_PREFIX}{alert.fingerprint}"


def fingerprint_of(incident_key: str | None) -> str | None:
    """The alert fingerprint in one of our dedup keys; None for anybody else's key."""
    if not incident_key or not incident_key.startswith(DEDUP_PREFIX):
        return None
    return incident_key[len(DEDUP_PREFIX) :] or None


def severity(alert: Alert, mapping: dict[str, str]) -> str:
    """PagerDuty's severity from the ``severity`` label, the rule's mapping applied first."""
    value = alert.labels.get("severity", "").strip().lower()
    lowered = {k.strip().lower(): v for k, v in mapping.items()}
    value = lowered.get(value, value).strip().lower()
    return SEVERITY_ALIASES.get(value, DEFAULT_SEVERITY)


def summary(result: TriageResult) -> str:
    """``[FIRING] Name: summary — category: verdict``, at most 1,024 characters."""
    alert = result.alert
    text = f"[{alert.status.upper()}] {alert.alertname or 'alert'}"
    said = alert.annotations.get("summary") or alert.annotations.get("description")
    if said:
        text += f": {' '.join(said.split())}"
    tail = result.classification.category
    verdicts = result.verdicts
    if verdicts and verdicts[0].verdict is not None:
        tail += f": {verdicts[0].verdict.summary}"
    text = truncate(text, max(SUMMARY_LIMIT // 2, SUMMARY_LIMIT - len(tail) - 3), marker="…")
    return truncate(f"{text} — {tail}", SUMMARY_LIMIT, marker="…")


def trigger_event(result: TriageResult) -> dict[str, Any]:
    """The Events API v2 trigger (without ``routing_key``, which the client adds)."""
    alert, labels = result.alert, result.alert.labels
    payload: dict[str, Any] = {
        "summary": summary(result),
        "source": _first(labels, "instance", "pod", "service") or alert.alertname or CLIENT,
        "severity": severity(alert, result.classification.routing.pagerduty_severity),
        "timestamp": alert.startsAt.isoformat(),
        "class": result.classification.category,
        "custom_details": custom_details(result),
    }
    component = _first(labels, "service", "job", "deployment")
    group = _first(labels, "namespace", "cluster")
    if component:
        payload["component"] = component
    if group:
        payload["group"] = group
    event: dict[str, Any] = {
        "event_action": "trigger",
        "dedup_key": dedup_key(alert),
        "payload": payload,
        "links": links(result),
        "client": CLIENT,
    }
    if result.external_url:
        event["client_url"] = result.external_url
    return event


def resolve_event(result: TriageResult) -> dict[str, Any]:
    return {"event_action": "resolve", "dedup_key": dedup_key(result.alert)}


def custom_details(result: TriageResult) -> dict[str, Any]:
    """Labels, annotations, classification, findings and a runbook excerpt, all bounded."""
    c = result.classification
    details: dict[str, Any] = {
        "labels": shown(result.alert.labels),
        "annotations": shown(result.alert.annotations),
        "classification": {
            "category": c.category,
            "matched_by": c.matched_by,
            "rule": c.rule,
            "reasons": c.reasons,
        },
        "findings": [_finding_detail(f) for f in verdicts_first(result.findings)],
    }
    if result.history is not None:
        details["history"] = result.history.text
    if result.runbook is not None:
        details["runbook"] = {
            "title": result.runbook.link.title,
            "ref": _ref(result.runbook.link),
            "url": runbook_url(result),
            "why": result.runbook.why,
            "filled": result.runbook.filled,
            "excerpt": truncate(result.runbook.markdown, EXCERPT_LIMIT),
        }
    return details


def links(result: TriageResult) -> list[dict[str, str]]:
    """Runbook, verdict sub-sections, Prometheus graph, Alertmanager silence (Slack: at send)."""
    found: list[dict[str, str]] = []
    url = runbook_url(result)
    if url:
        title = result.runbook.link.title if result.runbook else ""
        found.append({"href": url, "text": f"Runbook: {title}" if title else "Runbook"})
    for finding in result.verdicts:
        link = finding.verdict.runbook if finding.verdict else None
        if link is not None and _web(link.url):
            found.append({"href": link.url, "text": f"Runbook: {link.title or link.url}"})
    if _web(result.alert.generatorURL):
        found.append({"href": result.alert.generatorURL, "text": "Prometheus graph"})
    silence = alertmanager_silence(result)
    if silence:
        found.append({"href": silence, "text": "Silence in Alertmanager"})
    return _unique(found)


def with_slack_link(event: dict[str, Any], permalink: str | None) -> dict[str, Any]:
    """The event with a link to the alert's Slack message, when there is one."""
    if not permalink or any(link.get("href") == permalink for link in event.get("links", [])):
        return event
    return {
        **event,
        "links": [*event.get("links", []), {"href": permalink, "text": "Slack thread"}],
    }


def runbook_url(result: TriageResult) -> str | None:
    """The runbook's web address (a ``file:`` URL of a local library is no use in PagerDuty)."""
    if result.runbook is not None and _web(result.runbook.link.url):
        return result.runbook.link.url
    return _web(result.alert.annotations.get("runbook_url"))


def alertmanager_silence(result: TriageResult) -> str | None:
    """Alertmanager's "new silence" page, pre-filled with the alert's labels."""
    return alert_silence_url(result, MAX_URL)


def note_text(result: TriageResult) -> str:
    """The incident note's body: findings with their verdicts, and the runbook (plain text)."""
    alert = result.alert
    lines = [f"runbook-router triage of {alert.alertname} ({result.classification.category})"]
    if result.classification.reasons:
        lines.append(f"Why: {'; '.join(result.classification.reasons)}")
    if result.history is not None:
        lines.append(f"History: {result.history.text}")
    lines.append("")
    lines.append("Findings:" if result.findings else "Findings: none")
    for finding in verdicts_first(result.findings):
        lines.extend(_finding_lines(finding))
    if result.runbook is not None:
        where = runbook_url(result) or _ref(result.runbook.link)
        lines += ["", f"Runbook: {result.runbook.link.title} <{where}>"]
        if result.runbook.why:
            lines.append(f"Why this section: {result.runbook.why}")
        if result.runbook.filled:
            lines.append(result.runbook.filled)
    elif runbook_url(result):
        lines += ["", f"Runbook: <{runbook_url(result)}>"]
    return "\n".join(lines)


def finish_note(body: str, key: str, slack_permalink: str | None = None) -> str:
    """The note as posted: body, Slack link, then the marker line, at most ``NOTE_LIMIT``."""
    tail = f"\n\n{NOTE_MARKER}{key}"
    if slack_permalink:
        tail = f"\nSlack: <{slack_permalink}>{tail}"
    return truncate(body, NOTE_LIMIT - len(tail)) + tail


def note_marker(key: str) -> str:
    return f"{NOTE_MARKER}{key}"


def truncate(text: str, limit: int, *, marker: str = TRUNCATED) -> str:
    """``text`` cut to at most ``limit`` characters at a line (else word) end, with a marker."""
    if len(text) <= limit:
        return text
    room = limit - len(marker) - 1
    if room <= 0:
        return marker[:limit]
    cut, separator = text[:room], " "
    if text[room].isspace():  # the cut falls on a boundary already
        separator = "\n" if text[room] == "\n" else " "
    elif (at := cut.rfind("\n")) >= room // 2:
        cut, separator = cut[:at], "\n"
    elif (at := cut.rfind(" ")) >= room // 2:
        cut = cut[:at]
    return f"{cut.rstrip()}{separator}{marker}"


def _finding_detail(finding: Finding) -> dict[str, Any]:
    detail: dict[str, Any] = {
        "title": finding.title,
        "source": finding.source,
        "severity": finding.severity,
    }
    if finding.verdict is not None:
        detail["verdict"] = finding.verdict.summary
        if finding.verdict.runbook is not None:
            detail["runbook"] = _ref(finding.verdict.runbook)
    evidence = [text for e in finding.evidence if (text := _evidence_text(e))]
    if evidence:
        detail["evidence"] = truncate("\n".join(evidence), FINDING_LIMIT)
    return detail


def _finding_lines(finding: Finding) -> list[str]:
    lines = [f"- [{finding.severity}] {finding.title} ({finding.source})"]
    if finding.verdict is not None:
        lines.append(f"  Verdict: {finding.verdict.summary}")
        link = finding.verdict.runbook
        if link is not None:
            lines.append(f"  See: {link.title} <{_ref(link)}>")
    for evidence in finding.evidence:
        text = _evidence_text(evidence)
        if text:
            body = truncate(text, FINDING_LIMIT)
            lines.extend(f"  {line}" for line in body.splitlines())
    return lines


def _evidence_text(evidence: Evidence) -> str:
    """Evidence as text; a series (a graph) is left out, its last value kept."""
    label = f"{evidence.label}: " if evidence.label else ""
    if evidence.kind == "value" and evidence.value is not None:
        return f"{label}{evidence.value}"
    if evidence.kind == "series":
        return f"{label}{evidence.points[-1][1]:g} (latest)" if evidence.points else ""
    if evidence.kind == "table" and evidence.rows:
        rows = [" | ".join(evidence.columns)] if evidence.columns else []
        rows += [" | ".join(row) for row in evidence.rows]
        return f"{label}\n" + "\n".join(rows) if label else "\n".join(rows)
    if evidence.text:
        return f"{label}\n{evidence.text}" if label else evidence.text
    return ""


def _ref(link: RunbookLink) -> str:
    if link.url and _web(link.url):
        return link.url
    return f"{link.path or ''}#{link.anchor}" if link.anchor else link.path or link.title


def _web(url: str | None) -> str | None:
    web = url and url.startswith(("https://", "http://")) and len(url) <= MAX_URL
    return url if web else None


def _first(labels: dict[str, str], *names: str) -> str | None:
    return next((labels[n] for n in names if labels.get(n)), None)


def _unique(links: list[dict[str, str]]) -> list[dict[str, str]]:
    seen: set[str] = set()
    out = []
    for link in links:
        if link["href"] not in seen:
            seen.add(link["href"])
            out.append(link)
    return out
