"""The coverage report as a terminal table, Markdown, JSON, or a self-contained HTML page.

Every format lists the rules without a runbook section first, then the covered ones,
then the sections no rule reaches, then the summary line.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from html import escape

from router.coverage.report import CoverageReport, RuleCoverage

NONE = "none"


def as_table(report: CoverageReport) -> str:
    rows = [("ALERT", "CATEGORY", "RUNBOOK SECTION", "WHY")]
    rows += [(r.rule.name, r.category, r.runbook or NONE, r.why) for r in report.rules]
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(row[:3], widths, strict=True)) + "  " + row[3]
        for row in rows
    ]
    lines += ["", "Runbook sections no rule reaches:"]
    lines += [f"  {s.ref}  {s.title}" for s in report.unreached] or ["  (none)"]
    return "\n".join([*lines, "", report.summary])


def as_markdown(report: CoverageReport) -> str:
    lines = [
        "### Runbook coverage",
        "",
        f"**{report.summary}** ({report.percent:.0f} %)",
        "",
        "| alert | category | runbook section | why |",
        "| --- | --- | --- | --- |",
    ]
    lines += [
        f"| {_cell(r.rule.name)} | {r.category} | {_cell(r.runbook or '**' + NONE + '**')} "
        f"| {_cell(r.why)} |"
        for r in report.rules
    ]
    lines += ["", "Runbook sections no rule reaches:", ""]
    lines += [f"- `{s.ref}` {_cell(s.title)}" for s in report.unreached] or ["- (none)"]
    return "\n".join(lines)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def as_json(report: CoverageReport) -> str:
    document = {
        "summary": {
            "rules": len(report.rules),
            "covered": report.covered,
            "percent": round(report.percent, 1),
            "text": report.summary,
        },
        "rules": [_rule_json(r) for r in report.rules],
        "unreached": [{"section": s.ref, "title": s.title} for s in report.unreached],
    }
    return json.dumps(document, ensure_ascii=False, indent=2)


def _rule_json(result: RuleCoverage) -> dict:
    return {
        "alert": result.rule.name,
        "source": result.rule.source,
        "category": result.category,
        "runbook": result.runbook,
        "why": result.why,
    }


_STYLE = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 2em; color: #1f2328; }
table { border-collapse: collapse; width: 100%; }
th, td { border: 1px solid #d0d7de; padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: #f6f8fa; }
tr.missing td { background: #ffebe9; }
td.none { font-weight: bold; color: #cf222e; }
code { font-size: 13px; }
"""


def as_html(report: CoverageReport) -> str:
    """One page with its style inline: no script, no external resource."""
    rows = "\n".join(_html_row(r) for r in report.rules)
    unreached = (
        "\n".join(
            f"<li><code>{escape(s.ref)}</code> {escape(s.title)}</li>" for s in report.unreached
        )
        or "<li>(none)</li>"
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Runbook coverage</title>
<style>{_STYLE}</style></head>
<body>
<h1>Runbook coverage</h1>
<p id="summary">{escape(report.summary)} ({report.percent:.0f} %)</p>
<table id="rules">
<thead><tr><th>Alert</th><th>Category</th><th>Runbook section</th><th>Why</th><th>Source</th></tr></thead>
<tbody>
{rows}
</tbody>
</table>
<h2>Runbook sections no rule reaches</h2>
<ul id="unreached">
{unreached}
</ul>
</body></html>
"""


def _html_row(result: RuleCoverage) -> str:
    css = "" if result.covered else ' class="missing"'
    runbook = (
        f"<td><code>{escape(result.runbook)}</code></td>"
        if result.runbook
        else f'<td class="none">{NONE}</td>'
    )
    return (
        f"<tr{css}><td>{escape(result.rule.name)}</td><td>{escape(result.category)}</td>"
        f"{runbook}<td>{escape(result.why)}</td><td>{escape(result.rule.source)}</td></tr>"
    )


FORMATS: dict[str, Callable[[CoverageReport], str]] = {
    "table": as_table,
    "markdown": as_markdown,
    "json": as_json,
    "html": as_html,
}
