"""Shared helpers for the classifier tests: alerts and a tiny runbook index."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import quote

from router.alerts import Alert
from router.triage import RunbookExcerpt, RunbookLink


def make_alert(
    alertname: str,
    expr: str | None = None,
    labels: dict[str, str] | None = None,
    annotations: dict[str, str] | None = None,
) -> Alert:
    """A firing alert; ``expr`` goes into generatorURL the way Prometheus puts it."""
    url = f"http://prometheus:9090/graph?g0.expr={quote(expr, safe='')}&g0.tab=1" if expr else ""
    return Alert(
        status="firing",
        labels={"alertname": alertname, **(labels or {})},
        annotations=annotations or {},
        startsAt=datetime(2026, 1, 5, 10, 0, tzinfo=UTC),
        generatorURL=url,
    )


@dataclass
class Section:
    path: str
    anchor: str
    title: str = ""
    category: str | None = None

    def link(self) -> RunbookLink:
        return RunbookLink(path=self.path, anchor=self.anchor, title=self.title)


@dataclass
class TinyIndex:
    """Implements the RunbookIndex protocol over a few sections."""

    sections: list[Section] = field(default_factory=list)
    declares: dict[str, Section] = field(default_factory=dict)
    urls: dict[str, Section] = field(default_factory=dict)

    def declared(self, alertname: str) -> Section | None:
        return self.declares.get(alertname)

    def from_url(self, url: str) -> Section | None:
        return self.urls.get(url)

    def get(self, ref: str) -> Section | None:
        path, _, anchor = ref.partition("#")
        for section in self.sections:
            if section.path == path and (not anchor or section.anchor == anchor):
                return section
        return None

    def excerpt(self, section: Section) -> RunbookExcerpt:
        return RunbookExcerpt(link=section.link(), markdown=f"# {section.title}")
