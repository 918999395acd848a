"""The command line: output contracts, and errors that name the file and line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from router.cli import main
from tests import factories

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for name in list(os.environ):
        if name.startswith("ROUTER_"):
            monkeypatch.delenv(name)


@pytest.fixture
def payload_file(tmp_path: Path) -> Path:
    path = tmp_path / "payload.json"
    path.write_bytes(
        factories.body(
            factories.alert("PodCrashLooping", labels={"namespace": "shop", "pod": "api-1"}),
            factories.alert(
                "CheckoutSlow",
                expr='histogram_quantile(0.99, sum by (le) (rate(http_request_duration_seconds_bucket{job="checkout"}[5m]))) > 0.8',
            ),
            factories.alert("SomethingOdd"),
        )
    )
    return path


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_classify_prints_one_json_object_per_alert(capsys, payload_file: Path) -> None:
    code, out, _ = run(capsys, "classify", str(payload_file))
    assert code == 0
    records = [json.loads(line) for line in out.splitlines()]
    assert [r["alertname"] for r in records] == ["PodCrashLooping", "CheckoutSlow", "SomethingOdd"]
    keys = {
        "fingerprint",
        "alertname",
        "status",
        "category",
        "matched_by",
        "rule",
        "reasons",
        "runbook",
    }
    assert all(keys <= set(r) for r in records)
    crash, slow, odd = records
    assert (crash["category"], crash["matched_by"], crash["rule"]) == (
        "crashloop",
        "rule",
        "pod-crash-looping",
    )
    assert crash["runbook"]["path"] == "crashloop.md" and crash["runbook"]["anchor"]
    assert set(crash["runbook"]) == {"path", "anchor", "title", "url"}
    assert (slow["category"], slow["matched_by"], slow["rule"]) == ("latency", "expression", None)
    assert any("histogram_quantile" in reason for reason in slow["reasons"])
    assert (odd["category"], odd["matched_by"]) == ("unclassified", "fallback")


def test_classify_reads_stdin() -> None:
    body = factories.body(factories.alert("KubePodCrashLooping"))
    done = subprocess.run(
        [sys.executable, "-m", "router", "classify", "-"],
        input=body,
        capture_output=True,
        cwd=ROOT,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["category"] == "crashloop"


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b'{"version": "4",\n "alerts": [', "line 2, column"),
        (b'{"version": "4", "status": "firing"}', "alerts"),
        (b"[]", "not an Alertmanager webhook payload"),
        (b"[" * 1000 + b"]" * 1000, "invalid JSON: nested too deeply"),
        (b'{"version":"4","truncatedAlerts":' + b"9" * 5000 + b"}", "too many digits"),
        (b'{"receiver": "\xff"}', "not valid UTF-8"),
    ],
)
def test_classify_rejects_bad_payloads(
    capsys, tmp_path: Path, content: bytes, expected: str
) -> None:
    path = tmp_path / "bad.json"
    path.write_bytes(content)
    code, out, err = run(capsys, "classify", str(path))
    assert code != 0 and out == ""
    assert str(path) in err and expected in err
    assert "Traceback" not in err


def test_classify_missing_file(capsys, tmp_path: Path) -> None:
    code, _, err = run(capsys, "classify", str(tmp_path / "nope.json"))
    assert code != 0 and "cannot read" in err


def test_runbooks_lists_sections_with_alerts_and_categories(capsys) -> None:
    code, out, _ = run(capsys, "runbooks", "--json")
    assert code == 0
    rows = [json.loads(line) for line in out.splitlines()]
    crash = next(r for r in rows if "PodCrashLooping" in r["alerts"])
    assert crash["category"] == "crashloop" and crash["ref"].startswith("crashloop.md#")
    assert {"latency", "error_rate", "db_saturation", "crashloop"} <= {r["category"] for r in rows}
    code, table, _ = run(capsys, "runbooks")
    assert table.splitlines()[0].split("\t") == ["SECTION", "TITLE", "CATEGORY", "ALERTS"]


def test_check_passes_on_the_shipped_configuration(capsys) -> None:
    code, out, err = run(capsys, "check")
    assert code == 0, err
    assert out.startswith("ok:")


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("rules", "line", "message"),
    [
        (
            "rules:\n  - name: a\n    matchers: ['alertname =~ \"(\"']\n    category: latency\n",
            3,
            "regular expression",
        ),
        (
            "rules:\n  - name: a\n    matchers: ['alertname = A']\n    category: nonsense\n",
            4,
            "category",
        ),
        (
            "rules:\n  - name: a\n    matchers: ['alertname = A']\n    category: latency\n"
            "    playbook: unknown-book\n",
            5,
            "playbook",
        ),
        (
            "rules:\n  - name: a\n    matchers: ['alertname = A']\n    category: latency\n"
            "    runbook: missing.md#x\n",
            5,
            "missing.md",
        ),
        (
            "rules:\n  - name: a\n    matchers: ['alertname = A']\n    category: latency\n"
            "    runbook: latency.md#no-such-anchor\n",
            5,
            "no-such-anchor",
        ),
    ],
)
def test_check_reports_file_and_line(
    capsys, tmp_path: Path, rules: str, line: int, message: str
) -> None:
    rules_file = write(tmp_path / "rules" / "team.yaml", rules)
    config = write(tmp_path / "router.yaml", f"rules: [rules]\nrunbooks: [{ROOT / 'runbooks'}]\n")
    code, _, err = run(capsys, "check", "--config", str(config))
    assert code == 1
    assert f"{rules_file}:{line}:" in err
    assert message in err


def test_check_reports_a_broken_runbook_link(capsys, tmp_path: Path) -> None:
    book = write(
        tmp_path / "books" / "ops.md",
        "# Ops\n\n## Latency\n\nAlert: `SlowThing`\n\nSee [rollback](#rollbak).\n\n## Rollback\n",
    )
    config = write(tmp_path / "router.yaml", "runbooks: [books]\n")
    code, _, err = run(capsys, "check", "--config", str(config))
    assert code == 1
    assert f"{book}:7:" in err and "rollbak" in err


def test_check_reports_a_rule_naming_an_unconfigured_pagerduty_key(capsys, tmp_path: Path) -> None:
    rules_file = write(
        tmp_path / "rules" / "team.yaml",
        "rules:\n  - name: db\n    matchers: ['alertname = A']\n    category: db_saturation\n"
        "  - name: payments\n    matchers: ['alertname = B']\n    category: error_rate\n"
        "    routing: {pagerduty_routing_key: payments}\n",
    )
    config = write(
        tmp_path / "router.yaml",
        "rules: [rules]\npagerduty:\n  routing_keys: {platform: R0000000000000000000000000000000}\n",
    )
    code, _, err = run(capsys, "check", "--config", str(config))
    assert code == 1
    assert f"{rules_file}:5:" in err and "'payments'" in err and "platform" in err
    assert "R000000" not in err  # names only, never the keys
    write(tmp_path / "router.yaml", "rules: [rules]\n")  # no PagerDuty: nothing to route
    assert run(capsys, "check", "--config", str(config))[0] == 0


def test_bad_config_file_is_reported_with_line(capsys, tmp_path: Path) -> None:
    config = write(tmp_path / "router.yaml", "worker:\n  count: many\n")
    code, _, err = run(capsys, "classify", "--config", str(config), "-")
    assert code == 1
    assert f"{config}:2:" in err and "worker.count" in err


def test_triage_prints_text_and_json(capsys, payload_file: Path) -> None:
    code, out, _ = run(capsys, "triage", str(payload_file))
    assert code == 0
    assert "==> [FIRING] PodCrashLooping" in out and "category: crashloop" in out
    code, out, _ = run(capsys, "triage", str(payload_file), "--json")
    results = [json.loads(line) for line in out.splitlines()]
    assert [r["classification"]["category"] for r in results] == [
        "crashloop",
        "latency",
        "unclassified",
    ]


def test_help_explains_every_verb() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "router", "--help"], capture_output=True, text=True, cwd=ROOT
    )
    assert done.returncode == 0
    for verb in ("serve", "check", "classify", "runbooks", "triage"):
        assert f"  {verb} " in done.stdout
