"""runbook-router: Alertmanager alerts to runbook sections, live diagnostics, Slack and PagerDuty."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("runbook-router")
except PackageNotFoundError:  # run from a source tree that was never installed
    __version__ = "0+unknown"
