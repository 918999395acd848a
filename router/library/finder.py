"""Picking the runbook excerpt for one alert (implements ``RunbookFinder``)."""

from __future__ import annotations

from router.alerts import Alert
from router.library.library import RunbookLibrary
from router.library.links import is_external
from router.library.model import Section
from router.triage import Classification, RunbookExcerpt, RunbookLink


class LibraryFinder:
    """Finds the runbook section for an alert, most specific evidence first.

    1. ``classification.runbook_ref`` when it resolves in the library (a link to a
       whole file narrows to that file's section for the alert's category);
    2. the section declaring the alert name;
    3. an external ``runbook_ref`` URL, as a bare link;
    4. the best section for the category.
    """

    def __init__(self, library: RunbookLibrary) -> None:
        self.library = library

    def find(self, alert: Alert, classification: Classification) -> RunbookExcerpt | None:
        ref = classification.runbook_ref
        section = self._resolve(ref, classification.category) if ref else None
        if section is None and alert.alertname:
            section = self.library.declared(alert.alertname)
        if section is not None:
            return self.library.excerpt(section)
        if ref and is_external(ref):
            title = f"Runbook for {alert.alertname}" if alert.alertname else "Runbook"
            return RunbookExcerpt(link=RunbookLink(title=title, url=ref), markdown="")
        section = self.library.best_for_category(classification.category)
        return self.library.excerpt(section) if section is not None else None

    def _resolve(self, ref: str, category: str) -> Section | None:
        section = self.library.get(ref) or self.library.from_url(ref)
        if section is None or "#" in ref:
            return section
        best = self.library.best_for_category(category)
        return best if best is not None and best.path == section.path else section
