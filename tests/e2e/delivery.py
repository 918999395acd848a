"""The router as a real process delivering to a fake Slack and a fake PagerDuty (over TLS).

:class:`DeliveryStack` starts both fakes, writes a config file pointing the router at
them and runs ``python -m router serve``; tests post webhooks (directly, or through a
real Alertmanager) and read what arrived at the fakes.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import httpx

from tests import factories
from tests.harness.fake_pagerduty import API_TOKEN, FakePagerDuty, FakePagerDutyServer
from tests.harness.fake_slack import TOKEN as SLACK_TOKEN
from tests.harness.fake_slack import FakeSlack, FakeSlackServer
from tests.harness.waiting import eventually_sync
from tests.procs import RouterProcess, free_port

WEBHOOK_TOKEN = "e2e-webhook-token"
ROUTING_KEY = "R0E2E0DEFAULT0123456789abcdef01"
FROM = "oncall-bot@example.com"
CHANNEL = "#alerts"
RUNBOOKS_URL = "https://git.example.com/sre/runbooks/blob/main"

T = TypeVar("T")


class DeliveryStack:
    """Fake Slack + fake PagerDuty + ``runbook-router serve`` configured for both."""

    def __init__(
        self,
        workdir: Path,
        *,
        slack: FakeSlack | None = None,
        config: dict[str, Any] | None = None,
        env: dict[str, str] | None = None,
        port: int | None = None,
    ) -> None:
        self.workdir = workdir
        self.slack = slack or FakeSlack()
        self.slack.add_channel(CHANNEL)
        self.slack_server = FakeSlackServer(self.slack)
        self.pagerduty = FakePagerDuty(services={ROUTING_KEY: "shop"})
        self.pagerduty_server = FakePagerDutyServer(self.pagerduty, workdir)
        self.config_path = workdir / "router.yaml"
        self.config_path.write_text(json.dumps(self._config(config or {}), indent=2))
        self.env = {
            "ROUTER_CONFIG": str(self.config_path),
            "KUBECONFIG": str(workdir / "no-kubeconfig"),
            **(env or {}),
        }
        self.port = port or free_port()
        self.router: RouterProcess = self.start_router()

    def _config(self, extra: dict[str, Any]) -> dict[str, Any]:
        """YAML is a superset of JSON: the config file is written as JSON."""
        pd = self.pagerduty_server
        config: dict[str, Any] = {
            "data_dir": str(self.workdir / "data"),
            "runbooks_base_url": RUNBOOKS_URL,
            "webhook": {"token": WEBHOOK_TOKEN},
            "worker": {"poll_seconds": 0.1, "lease_seconds": 3},
            "slack": {
                "bot_token": SLACK_TOKEN,
                "api_url": self.slack_server.api_url,
                "default_channel": CHANNEL,
                "rate_per_second": 50,
                "burst": 20,
                "timeout_seconds": 5,
            },
            "pagerduty": {
                "routing_key": ROUTING_KEY,
                "events_url": pd.url,
                "api_url": pd.url,
                "api_token": API_TOKEN,
                "from": FROM,
                "ca_file": str(pd.ca_file),
                "timeout_seconds": 5,
            },
            "diagnostics": {"deadline_seconds": 5},
        }
        for section, values in extra.items():
            if isinstance(values, dict) and isinstance(config.get(section), dict):
                config[section] = {**config[section], **values}
            else:
                config[section] = values
        return config

    def start_router(self) -> RouterProcess:
        self.router = RouterProcess(self.workdir, self.env, port=self.port).start()
        return self.router

    @property
    def webhook_url(self) -> str:
        return f"{self.router.url}/alertmanager"

    def post(self, *alerts: dict[str, Any]) -> httpx.Response:
        return httpx.post(
            self.webhook_url,
            content=factories.body(*alerts),
            headers={
                "Authorization": f"Bearer {WEBHOOK_TOKEN}",
                "Content-Type": "application/json",
            },
            timeout=10,
        )

    # -- what arrived --------------------------------------------------------------

    def messages(self) -> list[dict[str, Any]]:
        """Top-level messages in the alert channel."""
        return self.slack.top_level(CHANNEL)

    def message_for(self, alertname: str) -> dict[str, Any] | None:
        found = [m for m in self.messages() if alertname in m.get("text", "")]
        assert len(found) <= 1, f"{len(found)} messages for {alertname}"
        return found[0] if found else None

    def thread(self, message: dict[str, Any]) -> list[dict[str, Any]]:
        return self.slack.thread(CHANNEL, message["ts"])

    def events_for(self, fingerprint_part: str) -> list[dict[str, Any]]:
        return [e for e in self.pagerduty.events() if fingerprint_part in e["dedup_key"]]

    def wait(self, probe: Callable[[], T | None], what: str, timeout: float = 30) -> T:
        """Poll ``probe`` until it returns something truthy; fail with the router's log."""
        return eventually_sync(probe, timeout, lambda: f"{what}:\n{self.log_tail()}", interval=0.1)

    def log_tail(self, chars: int = 4000) -> str:
        logs = sorted(self.workdir.glob("router-*.log"))
        return "\n".join(path.read_text()[-chars:] for path in logs)

    def close(self) -> None:
        try:
            if self.router.process and self.router.process.poll() is None:
                self.router.terminate()
        finally:
            self.slack_server.stop()
            self.pagerduty_server.stop()
