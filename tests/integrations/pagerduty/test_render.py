"""PagerDuty rendering: pure functions over a triage result."""

from __future__ import annotations

from urllib.parse import unquote

import pytest

from router.alerts import Alert
from router.integrations.pagerduty import render
from router.triage import Classification, Evidence, Finding, TriageResult, Verdict
from tests import factories


def result(
    labels: dict[str, str] | None = None,
    annotations: dict[str, str] | None = None,
    findings: list[Finding] | None = None,
    **classification: object,
) -> TriageResult:
    alert = Alert.model_validate(
        factories.alert("HighLatency", labels=labels, annotations=annotations)
    )
    return TriageResult(
        alert=alert,
        external_url="http://alertmanager:9093/",
        classification=Classification.model_validate({"category": "latency", **classification}),
        findings=findings or [],
    )


@pytest.mark.parametrize(
    ("label", "mapping", "expected"),
    [
        ("critical", {}, "critical"),
        ("page", {}, "critical"),
        ("P1", {}, "critical"),
        ("high", {}, "error"),
        ("warning", {}, "warning"),
        ("medium", {}, "warning"),
        ("low", {}, "info"),
        ("none", {}, "info"),
        ("sev-unknown", {}, "error"),
        ("", {}, "error"),
        ("page", {"page": "warning"}, "warning"),  # the rule's mapping wins
        ("sev2", {"SEV2": "high"}, "error"),  # and may use the same aliases
    ],
)
def test_severity(label: str, mapping: dict[str, str], expected: str) -> None:
    alert = Alert.model_validate(factories.alert(labels={"severity": label}))
    assert render.severity(alert, mapping) == expected


def test_summary_is_at_most_1024_characters_and_keeps_the_category() -> None:
    long = result(annotations={"summary": "slow " * 400})
    text = render.summary(long)
    assert len(text) <= 1024
    assert text.startswith("[FIRING] HighLatency: slow slow")
    assert text.endswith("… — latency")


def test_source_component_group_fall_back() -> None:
    bare = render.trigger_event(result(labels={"severity": "warning"}))["payload"]
    assert bare["source"] == "HighLatency"
    assert "component" not in bare and "group" not in bare
    full = render.trigger_event(
        result(labels={"service": "checkout", "cluster": "eu-1", "instance": "10.0.0.7:8080"})
    )["payload"]
    assert (full["source"], full["component"], full["group"]) == (
        "10.0.0.7:8080",
        "checkout",
        "eu-1",
    )


def test_silence_url_matches_every_label() -> None:
    url = render.alertmanager_silence(result(labels={"path": 'a"b'}))
    assert url is not None and url.startswith("http://alertmanager:9093/#/silences/new?filter=")
    assert unquote(url.split("filter=")[1]) == (
        '{alertname="HighLatency",path="a\\"b",severity="warning"}'
    )


def test_custom_details_bound_the_excerpt_and_evidence() -> None:
    finding = Finding(
        title="p99 latency",
        source="prometheus",
        evidence=[
            Evidence(kind="log", label="log", text="line\n" * 5000),
            Evidence(kind="series", label="p99", points=[(1.0, 0.2), (2.0, 1.5)]),
        ],
        verdict=Verdict(summary="slow downstream", rule="latency.downstream"),
    )
    details = render.custom_details(result(findings=[finding]))
    (found,) = details["findings"]
    assert len(found["evidence"]) <= render.FINDING_LIMIT
    assert found["evidence"].endswith("… (truncated)")
    assert found["verdict"] == "slow downstream"
    assert "p99: 1.5 (latest)" not in found["evidence"]  # cut: the log came first


def test_a_long_note_is_cut_cleanly_and_keeps_its_marker() -> None:
    findings = [
        Finding(
            title=f"finding {n}",
            source="kubernetes",
            evidence=[Evidence(kind="log", text="x " * 900)],
        )
        for n in range(40)
    ]
    body = render.note_text(result(findings=findings))
    assert len(body) > render.NOTE_LIMIT
    note = render.finish_note(body, "pagerduty:note:k", "https://slack.example/p1")
    assert len(note) <= render.NOTE_LIMIT
    head, _, tail = note.rpartition("… (truncated)")
    assert head.endswith("\n") and not head.endswith(" \n")
    assert (
        tail == "\nSlack: <https://slack.example/p1>\n\nrunbook-router delivery: pagerduty:note:k"
    )


def test_truncate_leaves_short_text_alone_and_cuts_at_a_boundary() -> None:
    assert render.truncate("short", 10) == "short"
    cut = render.truncate("alpha beta gamma delta epsilon", 24)
    assert cut == "alpha beta … (truncated)" and len(cut) <= 24
    assert len(render.truncate("x" * 100, 30)) <= 30


def test_only_web_links_reach_pagerduty() -> None:
    local = result(annotations={"summary": "slow", "runbook_url": "file:///srv/runbooks/x.md"})
    assert render.runbook_url(local) is None
    assert [link["text"] for link in render.links(local)] == ["Silence in Alertmanager"]
    web = result(annotations={"summary": "slow", "runbook_url": "https://wiki.example/latency"})
    assert render.links(web)[0] == {"href": "https://wiki.example/latency", "text": "Runbook"}


def test_the_dedup_key_names_the_alert_and_only_ours_are_read_back() -> None:
    from router.integrations.pagerduty.render import dedup_key, fingerprint_of

    alert = factories.alert("PodCrashLooping", fingerprint="c0ffee0000000001")
    key = dedup_key(Alert.model_validate(alert))
    assert fingerprint_of(key) == "c0ffee0000000001"
    assert fingerprint_of("c0ffee0000000001") is None  # somebody else's incident key
    assert fingerprint_of(None) is None
