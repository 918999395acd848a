"""Reading alerting rules from rule files and PrometheusRule manifests."""

from __future__ import annotations

from pathlib import Path

import pytest

from router.coverage import rules_from_files
from router.yamlfile import ConfigError
from tests.coverage.conftest import FIXTURES, RULE_FILE


def test_rule_file_yields_alerting_rules_only_with_their_lines() -> None:
    rules = rules_from_files([RULE_FILE])
    assert [r.name for r in rules] == ["PaymentsQueueBacklog", "FrobnicatorWobble"]
    backlog = rules[0]
    assert backlog.expr == "max(payments_queue_depth) > 1000"
    assert backlog.source == f"{RULE_FILE}:6"
    assert backlog.labels == {"severity": "warning"}


def test_alert_is_what_prometheus_would_send() -> None:
    alert = rules_from_files([RULE_FILE])[0].alert("http://prom.example:9090/")
    assert alert.status == "firing"
    assert alert.labels == {"alertname": "PaymentsQueueBacklog", "severity": "warning"}
    assert alert.expression == "max(payments_queue_depth) > 1000"
    assert alert.generatorURL.startswith("http://prom.example:9090/graph?g0.expr=")
    # template values are only known when the alert fires: left out, not sent verbatim
    assert alert.annotations == {"summary": "Queue depth is on"}


def test_prometheusrule_manifests_in_a_list_and_several_documents() -> None:
    path = FIXTURES / "rules" / "prometheusrule.yaml"
    rules = rules_from_files([path])
    assert [(r.name, r.expr) for r in rules] == [
        ("PaymentsQueueBacklog", "max(payments_queue_depth) > 2000"),
        ("UnknownGadgetBroken", "gadget_broken == 1"),
    ]
    assert rules[0].source == f"{path}:13"
    assert rules[1].source == f"{path}:24"


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("groups:\n  - name: g\n    rules:\n      - alert: X\n", 4, "needs `alert` and `expr`"),
        ("groups:\n  - name: g\n    rules: nope\n", 2, "a group needs a list of rules"),
        ("kind: ConfigMap\ndata: {}\n", None, "no rule groups"),
        ("groups: [\n", 2, "invalid YAML"),
        (
            "groups:\n  - name: g\n    rules:\n      - alert: X\n        expr: up\n        labels: [a]\n",
            6,
            "labels must be a mapping",
        ),
    ],
)
def test_bad_rule_file_names_file_and_line(
    tmp_path: Path, text: str, line: int | None, message: str
) -> None:
    path = tmp_path / "bad.yml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        rules_from_files([path])
    assert caught.value.path == str(path)
    assert caught.value.line == line
    assert message in caught.value.message
