"""``runbook-router coverage``: which alerting rules have a runbook section, and which sections
no rule reaches."""

from router.coverage.report import CoverageReport, RuleCoverage, build_report
from router.coverage.sources import AlertingRule, rules_from_files, rules_from_prometheus

__all__ = [
    "AlertingRule",
    "CoverageReport",
    "RuleCoverage",
    "build_report",
    "rules_from_files",
    "rules_from_prometheus",
]
