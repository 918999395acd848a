"""The command line: output contracts, and errors that name the file and line."""

from __future__ import annotations

import importlib.metadata
import json
import re
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
    assert set(crash["runbook"]) == {"path", "anchor", "title", "url", "why"}
    assert crash["runbook"]["why"] == "declares PodCrashLooping"
    assert (slow["category"], slow["matched_by"], slow["rule"]) == ("latency", "expression", None)
    assert any("histogram_quantile" in reason for reason in slow["reasons"])
    assert (odd["category"], odd["matched_by"]) == ("unclassified", "fallback")


def test_classify_explain_says_why_in_words(capsys, payload_file: Path) -> None:
    code, out, _ = run(capsys, "classify", str(payload_file), "--explain")
    assert code == 0
    blocks = out.split("\nCheckoutSlow")
    assert blocks[0].startswith("PodCrashLooping (")
    assert "  category: crashloop (by rule)" in blocks[0]
    assert "  runbook: crashloop.md#" in blocks[0] and "declares PodCrashLooping" in blocks[0]
    slow = blocks[1]
    assert "  runbook: latency.md#1-latency-breach — ranked best" in slow
    candidates = slow.split("  top candidates:\n")[1].split("\nSomethingOdd")[0].splitlines()
    scored = [line for line in candidates if not line.startswith("            ")]
    assert len(scored) == 3
    assert "latency.md#1-latency-breach" in {line.split()[1] for line in scored}
    assert any("'latenc'" in line for line in candidates)


def test_a_rule_is_shown_by_its_path_relative_to_the_configuration(
    capsys, tmp_path: Path, payload_file: Path
) -> None:
    code, out, _ = run(capsys, "classify", str(payload_file))
    assert code == 0
    reason = json.loads(out.splitlines()[0])["reasons"][0]
    assert re.fullmatch(r"rule: pod-crash-looping matched .* \(rules/default\.yaml:\d+\)", reason)
    write(tmp_path / "conf" / "team" / "rules.yaml", "rules:\n" + RULE.format("PodCrashLooping"))
    config = write(tmp_path / "conf" / "router.yaml", "rules: [team]\n")
    code, out, _ = run(capsys, "classify", "--config", str(config), str(payload_file))
    assert code == 0
    reason = json.loads(out.splitlines()[0])["reasons"][0]
    assert reason.endswith("(team/rules.yaml:2)") and str(tmp_path) not in reason


RULE = "  - name: crash\n    matchers: ['alertname = {}']\n    category: crashloop\n"


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
    assert crash["kind"] == "topic" and "crash" in crash["indexed"]["title"]
    symptoms = next(r for r in rows if r["title"] == "Symptoms")
    assert symptoms["kind"] == "part" and symptoms["indexed"] == {}
    code, table, _ = run(capsys, "runbooks")
    header, *lines = table.splitlines()
    assert header.split("\t") == ["SECTION", "TITLE", "CATEGORY", "ALERTS", "KIND", "INDEXED UNDER"]
    latency = next(line.split("\t") for line in lines if line.startswith("latency.md#1-latency"))
    assert latency[4] == "topic" and "latenc" in latency[5].split()


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


def test_check_reports_every_problem_of_every_file_sorted(capsys, tmp_path: Path) -> None:
    first = write(
        tmp_path / "rules" / "a.yaml",
        "rules:\n  - name: one\n    matchers: ['alertname =~ \"(\"']\n    category: latency\n"
        "  - name: two\n    matchers: ['alertname = Two']\n    category: latency\n"
        "    runbook: latency.md#no-such-anchor\n"
        "  - name: three\n    matcher: ['alertname = Three']\n    category: latency\n",
    )
    second = write(
        tmp_path / "rules" / "b.yaml",
        "rules:\n  - name: four\n    matchers: ['alertname = Four']\n    category: latency\n"
        "    category: error_rate\n",
    )
    third = write(tmp_path / "rules" / "c.yaml", "rules:\n  - name: 'five\n    category: x\n")
    config = write(tmp_path / "router.yaml", f"rules: [rules]\nrunbooks: [{ROOT / 'runbooks'}]\n")
    code, out, err = run(capsys, "check", "--config", str(config))
    assert code == 1
    assert out == "6 problem(s) found\n"
    assert err.splitlines() == [
        f"error: {first}:3: invalid matcher: invalid regular expression '(': missing ), "
        "unterminated subpattern at column 14 of 'alertname =~ \"(\"'",
        f"error: {first}:8: rule 'two': runbook 'latency.md#no-such-anchor' not found "
        "(missing file or anchor)",
        f"error: {first}:9: rules[2].matchers: Field required",
        f"error: {first}:10: rules[2].matcher: unknown key (did you mean 'matchers'?)",
        f"error: {second}:5: duplicate key 'category' (first at line 4)",
        f"error: {third}:2: invalid YAML: unterminated quoted string "
        "(found unexpected end of stream)",
    ]


def test_check_names_the_known_key_a_misspelled_one_meant(capsys, tmp_path: Path) -> None:
    config = write(
        tmp_path / "router.yaml", "slack:\n  default_chanel: '#ops'\nworker: {cont: 2}\n"
    )
    code, _, err = run(capsys, "check", "--config", str(config))
    assert code == 1
    assert err.splitlines() == [
        f"error: {config}:2: slack.default_chanel: unknown key (did you mean 'default_channel'?)",
        f"error: {config}:3: worker.cont: unknown key (did you mean 'count'?)",
    ]


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


def test_help_explains_every_verb_once() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "router", "--help"], capture_output=True, text=True, cwd=ROOT
    )
    assert done.returncode == 0
    for verb in ("serve", "check", "classify", "runbooks", "triage"):
        assert len(re.findall(rf"^ +{verb} ", done.stdout, re.MULTILINE)) == 1, verb


def test_version_is_the_installed_package_version() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "router", "--version"], capture_output=True, text=True, cwd=ROOT
    )
    assert done.returncode == 0
    assert done.stdout == f"runbook-router {importlib.metadata.version('runbook-router')}\n"


def test_check_lists_unknown_variables_as_warnings(capsys, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ROUTER_DATABSE_URL", "postgresql://u@db/router")
    code, out, err = run(capsys, "check")
    assert code == 0 and out.startswith("ok:")
    assert err == (
        "warning: ignoring environment variable ROUTER_DATABSE_URL: "
        "did you mean ROUTER_DATABASE_URL?\n"
    )
