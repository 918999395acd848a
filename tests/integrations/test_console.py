"""The console sink and the ``triage`` verb's text: excerpts that reach the first commands,
a mark for what is left, where the alert would go, JSON lines when logs are JSON."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from router.cli import main
from router.integrations.console import EXCERPT_LINES, MAX_EXCERPT_LINES, excerpt_length
from tests import factories
from tests.procs import RouterProcess
from tests.test_serve import post, wait_for_text

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for name in list(os.environ):
        if name.startswith("ROUTER_"):
            monkeypatch.delenv(name)


def test_a_short_section_is_shown_whole() -> None:
    assert excerpt_length(["## Short", "", "Restart it.", ""]) == 3


def test_prose_without_commands_is_cut_at_the_usual_length() -> None:
    assert excerpt_length([f"line {i}" for i in range(100)]) == EXCERPT_LINES


def test_the_excerpt_reaches_the_end_of_the_first_code_block() -> None:
    lines = ["## Slow", *(["prose"] * 15), "```bash", "kubectl get pods", "```", *(["x"] * 50)]
    assert excerpt_length(lines) == 19
    assert lines[excerpt_length(lines) - 1] == "```"


def test_a_code_block_too_far_away_is_not_cut_in_half() -> None:
    lines = ["## Slow", *(["prose"] * 9), "", "```", *(["kubectl ..."] * MAX_EXCERPT_LINES), "```"]
    assert excerpt_length(lines) == 10  # the prose, without the blank line and the open fence


def triage(capsys: pytest.CaptureFixture[str], tmp_path: Path, *argv: str) -> str:
    payload = tmp_path / "payload.json"
    payload.write_bytes(
        factories.body(factories.alert("LatencyP95Breaching", labels={"namespace": "shop"}))
    )
    assert main(["triage", *argv, str(payload)]) == 0
    return capsys.readouterr().out


def test_triage_shows_the_first_commands_and_says_how_much_is_left(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    out = triage(capsys, tmp_path)
    shown = [line[8:] for line in out.splitlines() if line.startswith("      | ")]
    section = (REPO / "runbooks" / "latency.md").read_text().split("## 1. Latency Breach")[1]
    total = len(("## 1. Latency Breach" + section.split("\n## ")[0]).rstrip().splitlines())
    assert "### Investigation" in shown and shown[-1].strip() == "```"
    assert any("histogram_quantile" in line for line in shown)
    assert f"      … {total - len(shown)} more lines: latency.md#1-latency-breach\n" in out
    assert "goes to:  the console only" in out


def test_triage_says_which_slack_channel_and_pagerduty_key(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        "rules:\n  - name: slow\n    matchers: ['alertname = LatencyP95Breaching']\n"
        "    category: latency\n"
        "    routing: {slack_channel: '#checkout-oncall', pagerduty_routing_key: checkout}\n"
    )
    config = tmp_path / "router.yaml"
    config.write_text(
        "rules: [rules.yaml]\nslack: {bot_token: xoxb-0000}\n"
        "pagerduty: {routing_keys: {checkout: R0123456789abcdef0123456789abcdef}}\n"
    )
    out = triage(capsys, tmp_path, "--config", str(config))
    assert "    goes to:  Slack #checkout-oncall · PagerDuty routing key 'checkout'\n" in out
    assert "R0123456789" not in out and "xoxb-0000" not in out


def test_with_json_logs_the_console_sink_writes_json_lines(tmp_path: Path) -> None:
    console = tmp_path / "console.jsonl"
    console.touch()
    env = {"ROUTER_LOG_FORMAT": "json", "ROUTER_CONSOLE_PATH": str(console)}
    router = RouterProcess(tmp_path, env).start()
    try:
        assert post(router, factories.alert("PodCrashLooping")).status_code == 202
        wait_for_text(console, '"PodCrashLooping"')
    finally:
        assert router.terminate() == 0
    records = [json.loads(line) for line in console.read_text().splitlines()]
    assert [r["alert"]["labels"]["alertname"] for r in records] == ["PodCrashLooping"]
    assert records[0]["classification"]["category"] == "crashloop"
