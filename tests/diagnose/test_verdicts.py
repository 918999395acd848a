"""Verdict rules of the built-in playbooks, over facts shaped as the providers publish them.

Each verdict must say what it found and point at the sub-section of the real
example runbooks (``runbooks/``) that tells the reader what to do.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from router.alerts import Alert
from router.config import BUILTIN_PLAYBOOKS, BUILTIN_RUNBOOKS
from router.diagnose.planning import template_variables
from router.diagnose.playbooks import load_playbooks
from router.diagnose.verdicts import RunbookPointers, evaluate_verdicts
from router.library import LibraryFinder, RunbookLibrary
from router.triage import Classification, Finding, TriageResult

LIBRARY = RunbookLibrary.load([BUILTIN_RUNBOOKS])
PLAYBOOKS = load_playbooks([BUILTIN_PLAYBOOKS])
NOW = datetime(2026, 11, 22, 3, 0, tzinfo=UTC)


def alert_result(category: str, **annotations: str) -> TriageResult:
    alert = Alert(
        status="firing",
        labels={"alertname": "Test", "namespace": "shop", "deployment": "api"},
        annotations=annotations,
        startsAt="2026-11-22T02:58:00Z",
    )
    classification = Classification(category=category, playbook=category)
    runbook = LibraryFinder(LIBRARY).find(alert, classification)
    return TriageResult(alert=alert, classification=classification, runbook=runbook)


def judge(category: str, facts: dict[str, Any], **annotations: str) -> dict[str, Finding]:
    """The verdicts of ``category``'s playbook over ``facts``, by rule id."""
    result = alert_result(category, **annotations)
    playbook = PLAYBOOKS.get(category)
    assert playbook is not None
    variables = {**template_variables(playbook, result, NOW), **facts}
    pointers = RunbookPointers(LIBRARY, result.runbook, category)
    found = evaluate_verdicts(playbook.verdicts, variables, pointers)
    assert all(f.verdict for f in found), [f.title for f in found]
    return {f.verdict.rule: f for f in found if f.verdict}


def ref(finding: Finding) -> str:
    link = finding.verdict.runbook if finding.verdict else None
    assert link is not None, f"{finding.title!r} points at no runbook section"
    return f"{link.path}#{link.anchor}" if link.anchor else str(link.path)


ROLLOUT = {
    "deployment": "api",
    "revision": 42,
    "previous_revision": 41,
    "minutes_before_alert": 6.2,
    "within_window": True,
    "images": {"previous": ["api:1.4.0"], "current": ["api:1.5.0"]},
    "image_changed": True,
    "replicas": {"desired": 4, "ready": 4, "updated": 4, "available": 4},
}
ROOT_BLOCKER = {
    "pid": 4242,
    "application": "payments-api",
    "state": "idle in transaction",
    "transaction_seconds": 95.4,
    "query": "UPDATE accounts SET balance = '***' WHERE id = 1",
    "waiting": 2,
}
HEALTHY_PODS = {
    "pods": [],
    "restarting": [],
    "oom_killed": [],
    "termination_reasons": {},
    "waiting_reasons": {},
    "not_ready": [],
    "max_restarts": 0,
}


# crashloop


def test_oom_killed_points_at_the_oomkilled_section() -> None:
    pods = {**HEALTHY_PODS, "oom_killed": ["api-7d9c/api"], "termination_reasons": {"OOMKilled": 3}}
    found = judge("crashloop", {"pods": pods})
    assert set(found) == {"oom-killed"}
    assert found["oom-killed"].severity == "critical"
    assert found["oom-killed"].title.startswith("api-7d9c/api was killed")
    assert ref(found["oom-killed"]) == "crashloop.md#oomkilled"


def test_an_application_error_quotes_its_last_error_line() -> None:
    pods = {**HEALTHY_PODS, "restarting": ["api-7d9c/api"], "termination_reasons": {"Error": 5}}
    logs = {"previous": True, "lines": 50, "error_lines": ["WARN slow", "FATAL: no DATABASE_URL"]}
    found = judge("crashloop", {"pods": pods, "logs": logs})
    assert set(found) == {"application-error"}
    assert found["application-error"].title.endswith(": FATAL: no DATABASE_URL")
    assert ref(found["application-error"]) == "crashloop.md#crashloopbackoff-application-error"


@pytest.mark.parametrize(
    ("facts", "rule", "section"),
    [
        (
            {"events": {"missing_config": ["secret/db-credentials"], "reasons": {"Failed": 4}}},
            "missing-config",
            "crashloop.md#missing-secret-or-configmap",
        ),
        (
            {"pods": {**HEALTHY_PODS, "waiting_reasons": {"CreateContainerConfigError": 1}}},
            "missing-config",
            "crashloop.md#missing-secret-or-configmap",
        ),
        (
            {"pods": {**HEALTHY_PODS, "waiting_reasons": {"ImagePullBackOff": 2}}},
            "image-pull",
            "crashloop.md#image-pull-errors",
        ),
        ({"events": {"probe_failures": 12}}, "failed-probes", "crashloop.md#failed-probes"),
        ({"rollout": ROLLOUT}, "deploy-before-alert", "rollback.md"),
    ],
)
def test_crashloop_causes(facts: dict[str, Any], rule: str, section: str) -> None:
    found = judge("crashloop", facts)
    assert rule in found and ref(found[rule]) == section


def test_missing_config_names_what_is_missing() -> None:
    found = judge("crashloop", {"events": {"missing_config": ["secret/db-credentials"]}})
    assert found["missing-config"].title == "The pod cannot start: missing secret/db-credentials"


def test_an_image_pull_after_an_image_change_names_the_new_image() -> None:
    facts = {"events": {"image_pull_failed": True}, "rollout": ROLLOUT}
    assert "changed it to api:1.5.0" in judge("crashloop", facts)["image-pull"].title


def ranked(category: str, facts: dict[str, Any]) -> list[Finding]:
    result = alert_result(category)
    playbook = PLAYBOOKS.get(category)
    assert playbook is not None
    variables = {**template_variables(playbook, result, NOW), **facts}
    pointers = RunbookPointers(LIBRARY, result.runbook, category)
    return evaluate_verdicts(playbook.verdicts, variables, pointers)


def test_a_bad_deploy_is_the_cause_and_the_application_error_its_symptom() -> None:
    pods = {
        **HEALTHY_PODS,
        "restarting": ["api-7abc-x1/api"],
        "termination_reasons": {"Error": 1},
        "failing_replicasets": ["api-7abc"],
        "exit_codes": [1],
    }
    logs = {"error_lines": ["panic: missing PAYMENTS_URL"]}
    rollout = {**ROLLOUT, "revision": 7, "replicaset": "api-7abc", "minutes_before_alert": 4.2}
    found = ranked("crashloop", {"pods": pods, "logs": logs, "rollout": rollout})
    rules = [f.verdict.rule for f in found if f.verdict]
    assert rules == ["bad-deploy", "application-error"]  # no separate "a rollout happened"
    cause, symptom = found
    assert cause.title == (
        "The pods of revision 7, created 4 min before the alert, exit 1:"
        " `panic: missing PAYMENTS_URL`; roll back"
    )
    assert cause.verdict.role == "cause" and ref(cause) == "rollback.md"
    assert symptom.verdict.role == "symptom" and symptom.verdict.explained_by == "bad-deploy"


def test_a_rollout_that_did_not_create_the_failing_pods_is_only_a_factor() -> None:
    pods = {**HEALTHY_PODS, "termination_reasons": {"Error": 1}, "failing_replicasets": ["old"]}
    rollout = {**ROLLOUT, "replicaset": "api-7abc"}
    found = ranked("crashloop", {"pods": pods, "rollout": rollout})
    assert [(f.verdict.rule, f.verdict.role) for f in found if f.verdict] == [
        ("deploy-before-alert", "factor"),
        ("application-error", "symptom"),
    ]
    assert found[1].verdict.explained_by is None


def test_role_outranks_severity_and_corroboration_breaks_ties(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "name: custom\nchecks:\n  - {id: a, provider: http, kind: probe}\n"
        "  - {id: b, provider: http, kind: probe}\nverdicts:\n"
        "  - {id: loud-symptom, when: a.x, say: s, severity: critical, role: symptom}\n"
        "  - {id: one-check, when: a.x, say: one, severity: warning, role: cause}\n"
        "  - {id: two-checks, when: a.x and b.y, say: two, severity: warning, role: cause}\n"
        "  - {id: critical-factor, when: b.y, say: f, severity: critical}\n",
    )
    (playbook,) = load_playbooks([path]).playbooks.values()
    facts = {"a": {"x": True}, "b": {"y": True}}
    found = evaluate_verdicts(playbook.verdicts, facts, RunbookPointers(LIBRARY))
    assert [f.title for f in found] == ["two", "one", "f", "s"]


@pytest.mark.parametrize("category", PLAYBOOKS.names())
def test_no_data_from_any_check_gives_no_verdict_and_no_error(category: str) -> None:
    """Every provider down: each check publishes no facts; no rule fires or fails."""
    playbook = PLAYBOOKS.get(category)
    assert playbook is not None
    result = alert_result(category)
    variables = {**template_variables(playbook, result, NOW)}
    variables |= {planned.spec.id: {} for planned in playbook.checks}
    pointers = RunbookPointers(LIBRARY, result.runbook, category)
    assert evaluate_verdicts(playbook.verdicts, variables, pointers) == []


def test_a_fact_named_like_a_dict_method_is_data_or_undefined() -> None:
    """``by_pod.values`` is the published list, and undefined when there is none."""
    assert judge("error_rate", {"by_pod": {}}) == {}
    values = [{"labels": {"pod": "api-1"}, "value": 9.0}, {"labels": {"pod": "api-2"}, "value": 1}]
    assert "errors-in-one-pod" in judge("error_rate", {"by_pod": {"values": values}})


def test_healthy_facts_give_no_verdict() -> None:
    events = {"reasons": {}, "warnings": [], "image_pull_failed": False, "probe_failures": 0}
    quiet = {**ROLLOUT, "within_window": False, "minutes_before_alert": 600.0}
    assert judge("crashloop", {"pods": HEALTHY_PODS, "events": events, "rollout": quiet}) == {}


def test_failed_probes_are_not_blamed_for_an_oom_kill() -> None:
    pods = {**HEALTHY_PODS, "oom_killed": ["api-1/api"]}
    found = judge("crashloop", {"pods": pods, "events": {"probe_failures": 3}})
    assert "oom-killed" in found and "failed-probes" not in found


# latency


def test_hpa_at_max_points_at_cpu_saturation() -> None:
    hpa = {"found": True, "name": "api", "current": 10, "desired": 10, "min": 2, "max": 10}
    found = judge("latency", {"hpa": {**hpa, "at_max": True}})
    assert found["hpa-at-max"].title.startswith("The autoscaler api is at its maximum (10/10")
    assert ref(found["hpa-at-max"]) == "latency.md#cpu-saturation--hpa-at-max"
    assert judge("latency", {"hpa": {**hpa, "current": 6, "at_max": False}}) == {}


def test_cpu_saturation_from_usage_and_throttling() -> None:
    found = judge("latency", {"cpu": {"value": 0.97}, "throttling": {"value": 0.4}})
    title = found["cpu-saturated"].title
    assert title == "Pods are CPU-saturated: 97% of the CPU limit, throttled 40% of the time"
    assert ref(found["cpu-saturated"]) == "latency.md#cpu-saturation--hpa-at-max"
    assert judge("latency", {"cpu": {"value": 0.5}, "throttling": {"value": 0.1}}) == {}


def test_a_saturated_database_pool() -> None:
    connections = {"used": 92, "max_connections": 100, "usable": 97, "used_ratio": 0.9485}
    found = judge("latency", {"connections": {**connections, "top_application": "orders-api"}})
    assert found["db-pool-saturated"].title == (
        "The database is at 95% of its connections (92 of 97 usable), orders-api holds the most"
    )
    assert ref(found["db-pool-saturated"]) == "latency.md#database-pool-saturated"


def test_a_rollout_six_minutes_before_the_alert_points_at_rollback() -> None:
    found = judge("latency", {"rollout": ROLLOUT})
    assert found["deploy-before-alert"].title.startswith("Rollout to revision 42 6 min before")
    assert ref(found["deploy-before-alert"]) == "rollback.md"


def test_rising_latency_is_noted() -> None:
    p95 = {"first": 0.2, "last": 1.4, "min": 0.2, "max": 1.4, "trend": "rising", "points": 120}
    found = judge("latency", {"p95": p95})
    assert found["latency-rising"].title == (
        "p95 latency is still rising (0.2 s → 1.4 s over the last hour)"
    )


# error_rate


def test_crashlooping_pods_explain_errors() -> None:
    pods = {**HEALTHY_PODS, "restarting": ["api-1/api", "api-2/api"]}
    found = judge("error_rate", {"pods": pods})
    assert "api-1/api, api-2/api" in found["pods-crashlooping"].title
    assert ref(found["pods-crashlooping"]) == "error-rate.md#pods-crashlooping"


def test_an_unreachable_database() -> None:
    ping = {"reachable": False, "latency_ms": None, "error": "connection refused"}
    found = judge("error_rate", {"database": ping})
    assert found["database-unreachable"].title == "The database is unreachable: connection refused"
    assert ref(found["database-unreachable"]) == "error-rate.md#database-unreachable"
    reachable = {"reachable": True, "latency_ms": 2.0, "server_version": "16.4", "error": None}
    assert judge("error_rate", {"database": reachable}) == {}


def test_a_bad_deployment_is_rolled_back_first() -> None:
    found = judge("error_rate", {"rollout": ROLLOUT})
    assert found["deploy-before-alert"].severity == "critical"
    assert ref(found["deploy-before-alert"]) == "rollback.md"


def test_errors_from_one_pod_name_it() -> None:
    values = [
        {"labels": {"pod": "api-3"}, "value": 9.0},
        {"labels": {"pod": "api-1"}, "value": 0.5},
    ]
    found = judge("error_rate", {"by_pod": {"value": 9.0, "values": values, "empty": False}})
    assert found["errors-in-one-pod"].title == "Most errors come from one pod: api-3"


# db_saturation


def connections_facts(server_used: int, db_used: int, app_count: int, limit: int = 97) -> dict:
    """``connections`` facts as the provider publishes them: 97 usable on the server."""
    return {
        "used": server_used,
        "max_connections": 100,
        "reserved": 3,
        "usable": 97,
        "used_ratio": round(server_used / 97, 4),
        "top_application": "orders-api",
        "top_application_share": round(app_count / server_used, 4),
        "by_application": [{"application": "orders-api", "count": app_count, "states": {}}],
        "idle_in_transaction": 0,
        "database": {
            "name": "orders",
            "used": db_used,
            "limit": limit,
            "used_ratio": round(db_used / limit, 4),
            "top_application": "orders-api",
            "top_application_count": app_count,
            "top_application_share": round(app_count / db_used, 4),
        },
    }


def test_one_application_holding_most_connections_is_named() -> None:
    found = judge("db_saturation", {"connections": connections_facts(80, 70, 64)})
    assert set(found) == {"one-application"}
    assert found["one-application"].title == (
        "orders-api holds 64 of the 70 connections to database orders (70 of 97 usable);"
        " the server is at 80 of 97 usable"
    )
    assert found["one-application"].verdict.role == "cause"
    assert ref(found["one-application"]) == (
        "database-saturation.md#one-application-holds-most-connections"
    )


def test_a_database_near_its_own_connection_limit_counts_as_near() -> None:
    found = judge("db_saturation", {"connections": connections_facts(12, 9, 8, limit=10)})
    assert found["one-application"].title == (
        "orders-api holds 8 of the 9 connections to database orders (9 of 10 allowed);"
        " the server is at 12 of 97 usable"
    )


def test_a_server_near_max_connections_names_who_holds_most_of_it() -> None:
    found = judge("db_saturation", {"connections": connections_facts(90, 5, 60)})
    assert found["one-application"].title == (
        "orders-api holds 60 of the 90 connections on the server (90 of 97 usable);"
        " database orders: 5 of 97 usable"
    )


@pytest.mark.parametrize(
    "connections",
    [connections_facts(1, 1, 1), connections_facts(3, 3, 2), connections_facts(60, 40, 39)],
    ids=["one-session", "lock-chain-sized", "below-70%"],
)
def test_one_application_is_not_blamed_far_from_the_limit(connections: dict) -> None:
    assert judge("db_saturation", {"connections": connections}) == {}


@pytest.mark.parametrize(
    ("facts", "rule", "section"),
    [
        (
            {
                "connections": {
                    "idle_in_transaction": 7,
                    "idle_in_transaction_oldest_seconds": 812.4,
                }
            },
            "idle-in-transaction",
            "database-saturation.md#idle-in-transaction",
        ),
        (
            {"locks": {"blocked": 3, "root_blocker": ROOT_BLOCKER}},
            "lock-chain",
            "database-saturation.md#long-running-queries-and-lock-chains",
        ),
        (
            {"long_queries": {"count": 2, "longest_seconds": 95.2, "queries": []}},
            "long-queries",
            "database-saturation.md#long-running-queries-and-lock-chains",
        ),
    ],
)
def test_db_saturation_causes(facts: dict[str, Any], rule: str, section: str) -> None:
    found = judge("db_saturation", facts)
    assert set(found) == {rule} and ref(found[rule]) == section


def test_idle_in_transaction_and_lock_texts() -> None:
    facts = {
        "connections": {"idle_in_transaction": 7, "idle_in_transaction_oldest_seconds": 812.4},
        "locks": {"blocked": 3, "root_blockers": [4242, 4243], "root_blocker": ROOT_BLOCKER},
    }
    found = judge("db_saturation", facts)
    assert "(oldest 812 s)" in found["idle-in-transaction"].title
    assert found["idle-in-transaction"].verdict.explained_by == "lock-chain"
    assert found["lock-chain"].title == (
        "pid 4242 (payments-api, idle in transaction, transaction open 95 s) blocks 2 session(s):"
        " `UPDATE accounts SET balance = '***' WHERE id = 1`"
    )


def test_pool_times_replicas_uses_the_pool_size_annotation() -> None:
    facts = {"connections": connections_facts(10, 5, 3), "rollout": ROLLOUT}
    assert judge("db_saturation", facts) == {}  # 4 x the default pool of 20 fits in 97
    found = judge("db_saturation", facts, pool_size="30")
    assert found["pool-times-replicas"].title == (
        "4 replicas \u00d7 pool 30 = 120 connections, more than the 97 usable"
    )
    assert ref(found["pool-times-replicas"]) == (
        "database-saturation.md#pool-size--replicas-exceeds-max_connections"
    )


# generic


def test_an_expression_no_longer_true() -> None:
    found = judge("generic", {"expression": {"firing_now": False, "value": None}})
    assert set(found) == {"no-longer-true"} and found["no-longer-true"].severity == "info"
    assert judge("generic", {"expression": {"firing_now": True, "value": 3.0}}) == {}
    assert judge("generic", {}) == {}  # not checked is not "no longer true"


def test_warning_events_are_summarised_by_reason() -> None:
    events = {"warnings": [{}, {}, {}], "reasons": {"BackOff": 1, "FailedMount": 2}}
    found = judge("generic", {"events": events})
    assert found["warning-events"].title == (
        "3 warning event(s) for the workload: FailedMount, BackOff"
    )


# rules in general


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "custom.yaml"
    path.write_text(text)
    return path


def test_a_failing_rule_becomes_an_info_finding(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "name: custom\nchecks:\n  - {id: pods, provider: kubernetes, kind: pods}\n"
        "verdicts:\n"
        "  - {id: broken, when: 'pods.max_restarts and pods.max_restarts + \"x\"', say: never}\n"
        "  - {id: fine, when: 'pods.max_restarts and pods.max_restarts > 3',"
        " say: '{{ pods.max_restarts }} restarts'}\n",
    )
    (playbook,) = load_playbooks([path]).playbooks.values()
    variables = {**template_variables(playbook, alert_result("custom"), NOW)}
    found = evaluate_verdicts(
        playbook.verdicts, {**variables, "pods": {"max_restarts": 5}}, RunbookPointers(LIBRARY)
    )
    assert found[0].title == "5 restarts"  # the next rule still runs, and comes first
    assert found[1].title.startswith("verdict rule broken failed: TypeError")
    assert found[1].severity == "info" and found[1].verdict is None


def test_an_unresolvable_pointer_keeps_the_verdict(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "name: custom\nchecks: [{id: c, provider: http, kind: probe}]\nverdicts:\n"
        "  - {id: a, when: c.x, say: words, runbook: [no-such-heading]}\n"
        "  - {id: b, when: c.x, say: ref, runbook: nowhere.md#x}\n",
    )
    (playbook,) = load_playbooks([path]).playbooks.values()
    pointers = RunbookPointers(LIBRARY, alert_result("crashloop").runbook, "crashloop")
    found = evaluate_verdicts(playbook.verdicts, {"c": {"x": True}}, pointers)
    assert [(f.verdict.summary, f.verdict.runbook) for f in found if f.verdict] == [
        ("words", None),
        ("ref", None),
    ]


def test_pointers_search_up_from_a_deep_section_and_fall_back_to_the_category() -> None:
    deep = LIBRARY.excerpt(LIBRARY.get("crashloop.md#investigation"))
    oom = RunbookPointers(LIBRARY, deep, "crashloop").resolve(["oomkilled"])
    assert oom is not None and oom.anchor == "oomkilled"  # a sibling, via the ancestors
    without = RunbookPointers(LIBRARY, None, "db_saturation").resolve(["idle", "transaction"])
    assert without is not None and without.anchor == "idle-in-transaction"
    assert RunbookPointers(None, deep, "crashloop").resolve(["oomkilled"]) is None
