"""What the Slack sink posts for a triage result: Block Kit messages and thread replies.

Pure functions of the result and the templates (``templates/slack/*.j2``, which a
user's ``templates`` folder may override file by file). Every builder stays within
Slack's limits (``router.integrations.slack.blocks``). In ``*.mrkdwn`` templates every
``{{ … }}`` is escaped (``&``, ``<``, ``>``), so no alert text can mention
``<!channel>`` or forge a link; ``*.txt`` templates are plain text, never parsed.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from jinja2 import ChoiceLoader, Environment, FileSystemLoader, StrictUndefined

from router.config import BUILTIN_TEMPLATES
from router.integrations.slack import blocks as kit
from router.integrations.slack.graph import guess_unit
from router.integrations.slack.mrkdwn import Block, Conversions, Mrkdwn, escape, fence
from router.render.order import verdicts_first
from router.render.silence import alert_silence_url
from router.retriage_request import RetriageRequest
from router.triage import Evidence, Finding, RunbookExcerpt, RunbookLink, TriageResult

JSON = dict[str, Any]

GREEN, RED, AMBER, BLUE = "#2eb886", "#e01e5a", "#ecb22e", "#439fe0"
KEY_LABELS = (
    "namespace",
    "service",
    "job",
    "pod",
    "instance",
    "container",
    "deployment",
    "cluster",
)
DASHBOARD_ANNOTATIONS = ("dashboard", "dashboard_url", "grafana_url")
RERUN_ACTION = "rerun_diagnostics"
INLINE_RUNBOOK = 2400  # a runbook section longer than this is summarised in the message
SHOWN_FINDINGS = 8
_EMOJI = {"resolved": ":white_check_mark:", "critical": ":red_circle:", "warning": ":warning:"}
_FINDING_EMOJI = {"critical": ":red_circle:", "warning": ":warning:", "ok": ":white_check_mark:"}


def hhmm(moment: datetime | float) -> str:
    if isinstance(moment, int | float):
        moment = datetime.fromtimestamp(moment, UTC)
    return moment.astimezone(UTC).strftime("%H:%M UTC")


def duration(result: TriageResult) -> str:
    """How long the alert fired: ``17 min``, ``2 h 5 min``."""
    alert = result.alert
    end = alert.endsAt or result.triaged_at
    minutes = max(0, round((end - alert.startsAt).total_seconds() / 60))
    return f"{minutes} min" if minutes < 60 else f"{minutes // 60} h {minutes % 60} min"


def severity(result: TriageResult) -> str:
    return result.alert.labels.get("severity", "none")


def color(result: TriageResult) -> str:
    if result.alert.status == "resolved":
        return GREEN
    level = severity(result).lower()
    if level in ("critical", "error", "page", "high"):
        return RED
    return BLUE if level in ("info", "none", "low") else AMBER


class SlackMessages:
    """Builds the message, its thread replies and the storm summary from templates."""

    def __init__(self, templates: Path, *, per_group: bool = False) -> None:
        self.per_group = per_group
        loaders = [FileSystemLoader(str(templates)), FileSystemLoader(str(BUILTIN_TEMPLATES))]
        # Templates are read once: no file-time check on every message (a restart reloads).
        options: JSON = {
            "loader": ChoiceLoader(loaders),
            "undefined": StrictUndefined,
            "auto_reload": False,
        }
        self._plain = Environment(**options)
        self._mrkdwn = Environment(**options, finalize=_escaped)
        for env in (self._plain, self._mrkdwn):
            env.filters.update(hhmm=hhmm)
        self._conversions = Conversions()

    def text(self, name: str, result: TriageResult | None = None, **extra: Any) -> str:
        variables: JSON = dict(extra)
        if result is not None:
            variables.update(
                r=result,
                a=result.alert,
                c=result.classification,
                severity=severity(result),
                duration=duration(result),
                per_group=self.per_group,
            )
        env = self._mrkdwn if name.endswith(".mrkdwn") else self._plain
        return env.get_template(f"slack/{name}.j2").render(**variables).strip()

    def message(self, result: TriageResult) -> JSON:
        """The alert's message: fallback text and one coloured attachment of blocks."""
        status = "resolved" if result.alert.status == "resolved" else severity(result).lower()
        head = self.text("header.txt", result, emoji=_EMOJI.get(status, ":fire:"))
        body: list[JSON] = [
            kit.header(head),
            kit.section(self.text("summary.mrkdwn", result), _label_fields(result)),
            kit.context(self.text("context.mrkdwn", result)),
            *_findings_blocks(result),
            *self._runbook_blocks(result),
        ]
        buttons = kit.actions(_buttons(result), block_id="alert_actions")
        blocks_ = kit.fit([b for b in [*body, buttons] if b is not None])
        fallback = kit.clip(self.text("fallback.mrkdwn", result), kit.FALLBACK_TEXT)
        return {"text": fallback, "attachments": [{"color": color(result), "blocks": blocks_}]}

    def runbook_is_long(self, result: TriageResult) -> bool:
        return result.runbook is not None and len(self._runbook_text(result)) > INLINE_RUNBOOK

    def first_replies(self, result: TriageResult) -> list[JSON]:
        """The thread under a new message: the whole runbook section (when summarised), then findings."""
        replies: list[JSON] = []
        if result.runbook is not None and self.runbook_is_long(result):
            title = f"*Runbook: {escape(result.runbook.link.title or 'section')}*"
            parts = [Block("heading", title), *self._excerpt_blocks(result.runbook)]
            replies += _replies(parts, f"Runbook: {result.runbook.link.title}")
        details = _finding_details(result.findings)
        if details:
            replies += _replies([Block("heading", "*Findings*"), *details], "Findings")
        return replies

    def change_reply(self, result: TriageResult) -> JSON:
        text = self.text("change.mrkdwn", result)
        return {"text": kit.clip(text, kit.FALLBACK_TEXT), "blocks": [kit.section(text)]}

    def retriage_replies(self, result: TriageResult, requested_by: str) -> list[JSON]:
        """A re-run's thread replies: who asked, the category, then the fresh findings."""
        head = self.text("retriage.mrkdwn", result, requested_by=requested_by)
        details = _finding_details(result.findings) or [Block("paragraph", "_No findings._")]
        title = f"Re-run diagnostics: {result.alert.alertname or 'alert'}"
        return _replies([Block("paragraph", head), *details], title)

    def retriage_response(self, result: TriageResult, requested_by: str) -> JSON:
        """A re-run's answer to whoever asked (ephemeral, never replacing the alert message)."""
        replies = self.retriage_replies(result, requested_by)
        first = replies[0]
        if len(replies) > 1:
            more = kit.context("_More findings in the alert's thread._")
            first = {**first, "blocks": kit.fit([*first["blocks"], more])}
        return ephemeral(first)

    def storm(self, storm: Any) -> JSON:
        text = self.text("storm.mrkdwn", storm=storm)
        lines = "\n".join(escape(line) for line in storm.recent)
        body = [
            kit.section(text),
            *([kit.context(kit.clip(lines, kit.SECTION_TEXT))] if lines else []),
        ]
        fallback = kit.clip(text.splitlines()[0], kit.FALLBACK_TEXT)
        return {"text": fallback, "attachments": [{"color": RED, "blocks": body}]}

    def _runbook_blocks(self, result: TriageResult) -> list[JSON]:
        excerpt = result.runbook
        history = (
            [kit.context(f"_History: {escape(result.history.text)}_")] if result.history else []
        )
        if excerpt is None:
            return [
                kit.divider(),
                kit.context("_No runbook section found for this alert._"),
                *history,
            ]
        why = [kit.context(f"_Why this section: {escape(excerpt.why)}_")] if excerpt.why else []
        why += [kit.context(f"_{escape(excerpt.filled)}_")] if excerpt.filled else []
        why += history
        if not self.runbook_is_long(result):
            return [
                kit.divider(),
                *(kit.section(p) for p in kit.split(self._runbook_blocks_all(result))),
                *why,
            ]
        parts = self._excerpt_blocks(excerpt)
        first = next((p.text for p in parts if p.kind == "paragraph"), "")
        subsections = "\n".join(f"• {_link(s)}" for s in excerpt.subsections)
        summary = [_title(excerpt.link), first, subsections, "_Full runbook in the thread._"]
        return [
            kit.divider(),
            *(kit.section(p) for p in kit.split([Block("paragraph", t) for t in summary if t])),
            *why,
        ]

    def _runbook_text(self, result: TriageResult) -> str:
        return "\n\n".join(p.text for p in self._runbook_blocks_all(result))

    def _runbook_blocks_all(self, result: TriageResult) -> list[Block]:
        assert result.runbook is not None
        heading = Block("heading", _title(result.runbook.link))
        return [heading, *self._excerpt_blocks(result.runbook)]

    def _excerpt_blocks(self, excerpt: RunbookExcerpt) -> list[Block]:
        return self._conversions.blocks(excerpt.markdown, excerpt.template, excerpt.marks)


def _escaped(value: Any) -> str:
    """Every value a ``*.mrkdwn`` template interpolates, unless it already is mrkdwn."""
    return value if isinstance(value, Mrkdwn) else escape(str(value))


def ephemeral(message: JSON | str) -> JSON:
    """A ``response_url`` (or command response) message only the requester sees."""
    body = {"text": message} if isinstance(message, str) else dict(message)
    return {"response_type": "ephemeral", "replace_original": False, **body}


def requester(request: RetriageRequest) -> Mrkdwn:
    """Whoever asked for a re-run, as Slack shows them: a mention, else their name."""
    return Mrkdwn(request.mention or escape(request.requested_by))


def _title(link: RunbookLink) -> str:
    return f":book: *{_link(link, default='Runbook')}*"


def _link(link: RunbookLink, default: str = "section") -> str:
    title = escape(link.title or link.anchor or default)
    url = link.url or ""
    if url.startswith(("http://", "https://")) and len(url) <= kit.URL:
        return f"<{url.replace('&', '&amp;')}|{title.replace('|', '¦')}>"
    return title


def _label_fields(result: TriageResult) -> list[str]:
    labels = result.alert.labels
    return [f"*{k}*\n`{escape(labels[k])}`" for k in KEY_LABELS if labels.get(k)]


def _findings_blocks(result: TriageResult) -> list[JSON]:
    verdicts = result.verdicts
    others = [f for f in result.findings if f.verdict is None]
    out: list[JSON] = []
    if verdicts:
        lines = []
        for finding in verdicts:
            assert finding.verdict is not None
            target = f" → {_link(finding.verdict.runbook)}" if finding.verdict.runbook else ""
            lines.append(f":dart: {escape(finding.verdict.summary)}{target}")
        out.append(kit.section("*Verdicts*\n" + "\n".join(lines)))
    if others:
        lines = [_finding_line(f) for f in others[:SHOWN_FINDINGS]]
        if len(others) > SHOWN_FINDINGS:
            lines.append(f"_… {len(others) - SHOWN_FINDINGS} more in the thread_")
        out.append(kit.section("*Findings*\n" + "\n".join(lines)))
    return out


def _finding_line(finding: Finding) -> str:
    emoji = _FINDING_EMOJI.get(finding.severity, ":small_blue_diamond:")
    return f"{emoji} {escape(finding.title)} _({escape(finding.source)})_"


def _finding_details(findings: Sequence[Finding]) -> list[Block]:
    out: list[Block] = []
    for finding in verdicts_first(findings):
        out.append(Block("paragraph", _finding_line(finding)))
        if finding.verdict is not None:
            out.append(Block("paragraph", f"> verdict: {escape(finding.verdict.summary)}"))
        for item in finding.evidence:
            if item.kind != "series":
                out.extend(_evidence(item))
    return out


def _evidence(item: Evidence) -> list[Block]:
    label = [Block("paragraph", f"*{escape(item.label)}*")] if item.label else []
    if item.kind == "table":
        return [*label, Block("table", fence(_aligned([item.columns, *item.rows])))]
    if item.kind == "log":
        return [*label, Block("code", fence(item.text or ""))]
    value = escape(item.value or item.text or "")
    return [Block("paragraph", f"*{escape(item.label)}*: {value}" if item.label else value)]


def _aligned(rows: list[list[str]]) -> str:
    rows = [[str(c) for c in r] for r in rows if r]
    width = max((len(r) for r in rows), default=0)
    sizes = [max((len(r[i]) for r in rows if i < len(r)), default=0) for i in range(width)]
    return "\n".join(" | ".join(c.ljust(sizes[i]) for i, c in enumerate(r)).rstrip() for r in rows)


def _replies(parts: list[Block], title: str) -> list[JSON]:
    messages = kit.group(kit.split(parts))
    total = len(messages)
    return [
        {
            "text": kit.clip(
                escape(f"{title} ({n}/{total})" if total > 1 else title), kit.FALLBACK_TEXT
            ),
            "blocks": [kit.section(piece) for piece in pieces],
        }
        for n, pieces in enumerate(messages, 1)
    ]


def _buttons(result: TriageResult) -> list[JSON | None]:
    alert = result.alert
    runbook = result.runbook.link.url if result.runbook else None
    dashboard = next(
        (
            alert.annotations[k]
            for k in DASHBOARD_ANNOTATIONS
            if alert.annotations.get(k, "").startswith("http")
        ),
        None,
    )
    silence = alert_silence_url(result, kit.URL)
    return [
        kit.link_button(":book: Runbook", runbook, "open_runbook") if runbook else None,
        kit.link_button(":chart_with_upwards_trend: Graph", alert.generatorURL, "open_graph")
        if alert.generatorURL.startswith("http")
        else None,
        kit.link_button(":no_bell: Silence", silence, "open_silence") if silence else None,
        kit.link_button(":bar_chart: Dashboard", dashboard, "open_dashboard")
        if dashboard
        else None,
        kit.value_button(
            ":arrows_counterclockwise: Re-run diagnostics", RERUN_ACTION, alert.fingerprint
        ),
    ]


def storm_line(result: TriageResult) -> str:
    alert = result.alert
    labels = " ".join(
        f"{k}={alert.labels[k]}" for k in ("namespace", "pod", "instance") if k in alert.labels
    )
    return f"{alert.alertname} ({result.classification.category}) {labels}".strip()[:200]


def graph_payload(result: TriageResult) -> JSON | None:
    """The alert expression's series from the findings, if it has enough points to draw."""
    for finding in result.findings:
        for item in finding.evidence:
            if item.kind == "series" and len(item.points) >= 2:
                return {
                    "points": [list(p) for p in item.points],
                    "title": f"{result.alert.alertname}: {item.label}",
                    "unit": guess_unit(item.label),
                    "start": result.alert.startsAt.timestamp(),
                }
    return None
