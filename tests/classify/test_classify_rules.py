"""Rules files: loading, first-match precedence, and errors that name file and line."""

from __future__ import annotations

from pathlib import Path
from textwrap import dedent

import pytest
from classify_helpers import Section, TinyIndex, make_alert

from router.classify import EvidenceClassifier, load_rules
from router.config import BUILTIN_RULES
from router.yamlfile import ConfigError


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def load_error(path: Path, playbooks: tuple[str, ...] = ()) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        load_rules([path], playbooks)
    return caught.value


def test_first_matching_rule_wins_in_file_order(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "rules.yaml",
        """
        rules:
          - name: payments-critical
            matchers: ['team = payments', 'severity = critical']
            category: error_rate
          - name: payments-any
            matchers: ['team="payments"']
            category: latency
        """,
    )
    rules = load_rules([path])
    critical = rules.match({"team": "payments", "severity": "critical"})
    warning = rules.match({"team": "payments", "severity": "warning"})
    assert critical is not None and critical.name == "payments-critical"
    assert warning is not None and warning.name == "payments-any"
    assert rules.match({"team": "search"}) is None


def test_folder_loads_yaml_files_sorted_by_name(tmp_path: Path) -> None:
    write(
        tmp_path, "20-late.yml", "rules: [{name: late, matchers: ['a=~.*'], category: latency}]\n"
    )
    write(
        tmp_path,
        "10-early.yaml",
        "rules: [{name: early, matchers: ['a=~.*'], category: crashloop}]\n",
    )
    write(tmp_path, "notes.txt", "not a rules file")
    rules = load_rules([tmp_path])
    assert [r.name for r in rules.rules] == ["early", "late"]
    first = rules.match({})
    assert first is not None and first.name == "early"


def test_rule_fields_and_defaults(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "rules.yaml",
        """
        categories:
          - name: certificates
            description: TLS certificates close to expiry
        rules:
          - name: latency-p95
            matchers: ['alertname = LatencyP95Breaching']
            category: latency
            runbook: operations.md#latency-breach
            routing:
              slack_channel: "#oncall-web"
              pagerduty_routing_key: payments
              pagerduty_severity: {critical: critical, warning: warning}
          - name: certs
            matchers: ['alertname = CertExpiring']
            category: certificates
          - name: certs-with-playbook
            matchers: ['alertname = CertExpired']
            category: certificates
            playbook: certificates
        """,
    )
    rules = load_rules([path], playbooks=["certificates"])
    latency, certs, certs_playbook = rules.rules
    assert latency.playbook == "latency"
    assert latency.runbook == "operations.md#latency-breach"
    assert latency.routing.slack_channel == "#oncall-web"
    assert latency.routing.pagerduty_routing_key == "payments"
    assert latency.routing.pagerduty_severity == {"critical": "critical", "warning": "warning"}
    assert latency.line == 5
    assert certs.playbook == "certificates"  # a known playbook named like the category
    assert certs_playbook.playbook == "certificates"
    assert rules.categories["certificates"] == "TLS certificates close to expiry"


def test_user_category_without_a_playbook_uses_generic(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "rules.yaml",
        """
        categories: [{name: certificates}]
        rules: [{name: certs, matchers: ['alertname=CertExpiring'], category: certificates}]
        """,
    )
    (rule,) = load_rules([path]).rules
    assert rule.playbook == "generic"


def test_a_matchers_entry_may_be_a_brace_list(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "rules.yaml",
        """
        rules:
          - name: web-critical
            matchers: ['{team="web", severity=~"critical|page"}', 'env != staging']
            category: latency
        """,
    )
    (rule,) = load_rules([path]).rules
    assert len(rule.matchers) == 3
    assert rule.matches({"team": "web", "severity": "page", "env": "prod"})
    assert not rule.matches({"team": "web", "severity": "page", "env": "staging"})


def test_empty_file_has_no_rules(tmp_path: Path) -> None:
    assert load_rules([write(tmp_path, "empty.yaml", "# nothing yet\n")]).rules == ()


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("rules:\n  - name: a\n    matchers: [\n", 4, "invalid YAML"),
        (
            "rules:\n  - name: a\n    matchers:\n      - 'alertname = A'\n      - 'severity ~ x'\n"
            "    category: latency\n",
            5,
            "invalid matcher: expected an operator",
        ),
        (
            "rules:\n  - name: a\n    matchers: ['alertname=\"A']\n    category: latency\n",
            3,
            "unterminated quoted string",
        ),
        (
            "rules:\n  - name: a\n    matchers: ['x=~\"(\"']\n    category: latency\n",
            3,
            "invalid regular expression",
        ),
        (
            "rules:\n  - name: a\n    matchers: ['alertname=A']\n    category: certificates\n",
            4,
            "unknown category 'certificates'",
        ),
        (
            "rules:\n  - name: a\n    matchers: ['alertname=A']\n    category: latency\n"
            "    playbook: restart-everything\n",
            5,
            "unknown playbook 'restart-everything'",
        ),
        ("rules:\n  - name: a\n    category: latency\n", 2, "rules[0].matchers: Field required"),
        (
            "rules:\n  - name: a\n    matchers: []\n    category: latency\n",
            3,
            "rules[0].matchers: List should have at least 1 item",
        ),
        (
            "rules:\n  - name: a\n    matchers: ['a=b']\n    category: latency\n    colour: red\n",
            5,
            "rules[0].colour: unknown key",
        ),
        (
            "rules:\n  - name: a\n    matchers: ['a=b']\n    category: latency\n"
            "  - name: a\n    matchers: ['a=c']\n    category: latency\n",
            5,
            "duplicate rule name 'a'",
        ),
        (
            "rules:\n  - name: a\n    matchers: ['a=b']\n    category: latency\n    routing:\n"
            "      pagerduty_severity: {critical: urgent}\n",
            6,
            "PagerDuty severity 'urgent'",
        ),
        (
            "rules:\n  - name: a\n    matchers: ['a=b']\n    category: latency\n"
            "    runbook: 'ops guide.md'\n",
            5,
            "rules[0].runbook: String should match pattern",
        ),
        ("categories:\n  - name: latency\n", 2, "category 'latency' is built in"),
        ("- just\n- a list\n", 1, "must be a mapping"),
    ],
)
def test_every_error_names_file_and_line(
    tmp_path: Path, text: str, line: int, message: str
) -> None:
    path = write(tmp_path, "bad.yaml", text)
    error = load_error(path)
    assert error.path == str(path)
    assert error.line == line
    assert message in error.message
    assert str(error).startswith(f"{path}:{line}: ")


def test_duplicate_rule_name_across_files_points_at_both(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", "rules: [{name: same, matchers: ['a=b'], category: latency}]\n")
    second = write(
        tmp_path,
        "b.yaml",
        "# second\nrules: [{name: same, matchers: ['a=c'], category: latency}]\n",
    )
    error = load_error(tmp_path)
    assert error.path == str(second) and error.line == 2
    assert "a.yaml:1" in error.message


def test_missing_path_is_an_error(tmp_path: Path) -> None:
    error = load_error(tmp_path / "nope.yaml")
    assert "does not exist" in error.message


def test_check_runbooks_reports_broken_references_with_lines(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "rules.yaml",
        """
        rules:
          - name: ok
            matchers: ['alertname=A']
            category: latency
            runbook: runbooks/latency.md#p95
          - name: broken-anchor
            matchers: ['alertname=B']
            category: latency
            runbook: runbooks/latency.md#p42
          - name: external
            matchers: ['alertname=C']
            category: latency
            runbook: https://wiki.example.com/latency
          - name: missing-file
            matchers: ['alertname=D']
            category: crashloop
            runbook: runbooks/nope.md
        """,
    )
    index = TinyIndex(sections=[Section("runbooks/latency.md", "p95", category="latency")])
    errors = load_rules([path]).check_runbooks(index)
    assert [(e.path, e.line) for e in errors] == [(str(path), 9), (str(path), 17)]
    assert "'runbooks/latency.md#p42' not found" in errors[0].message
    assert "broken-anchor" in errors[0].message


def test_default_rules_load_and_classify_the_four_user_alerts() -> None:
    classifier = EvidenceClassifier(load_rules([BUILTIN_RULES]))
    expected = {
        "LatencyP95Breaching": "latency",
        "SLOAvailabilityFastBurn": "error_rate",
        "DatabaseConnectionSaturation": "db_saturation",
        "PodCrashLooping": "crashloop",
    }
    for alertname, category in expected.items():
        result = classifier.classify(make_alert(alertname))
        assert (result.category, result.matched_by) == (category, "rule"), alertname
        assert result.playbook == category
        assert result.reasons[0].startswith(f"rule: {result.rule} matched alertname=")


def test_default_rules_have_no_runbook_keys_yet() -> None:
    assert all(rule.runbook is None for rule in load_rules([BUILTIN_RULES]).rules)
