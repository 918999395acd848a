"""The scorer's general features: ratio direction, status-code families, pools, whose latency.

Every alert here is named ``Rule``, has no annotations, and so is decided by its PromQL
alone; each case names the reason that must decide it.
"""

from __future__ import annotations

import pytest
from classify_helpers import make_alert

from router.classify import EvidenceClassifier, Matcher, RuleSet
from router.classify import statuscodes as sc


@pytest.fixture(scope="module")
def classifier() -> EvidenceClassifier:
    return EvidenceClassifier(RuleSet())


def classify(classifier: EvidenceClassifier, expr: str) -> tuple[str, list[str]]:
    result = classifier.classify(make_alert("Rule", expr))
    return result.category, result.reasons


def assert_decides(
    classifier: EvidenceClassifier, expr: str, category: str, reason: str | None
) -> None:
    got, reasons = classify(classifier, expr)
    assert got == category, reasons
    if reason is not None:
        assert any(reason in r for r in reasons), reasons


# -- ratio direction -----------------------------------------------------------------

SUCCESS_RATIOS = {
    "linkerd": 'sum(rate(response_total{classification="success"}[5m])) / sum(rate(response_total[5m])) < 0.99',
    "non_5xx": 'sum(rate(istio_requests_total{response_code!~"5.."}[5m])) / sum(rate(istio_requests_total[5m])) < 0.995',
    "grpc_ok": 'sum(rate(grpc_server_handled_total{grpc_code="OK"}[5m])) / sum(rate(grpc_server_handled_total[5m])) <= 0.99',
    "micrometer": 'sum(rate(http_server_requests_seconds_count{outcome="SUCCESS"}[5m])) / sum(rate(http_server_requests_seconds_count[5m])) < 0.97',
    "one_minus": '1 - sum(rate(http_requests_total{code=~"2.."}[5m])) / sum(rate(http_requests_total[5m])) > 0.01',
    "threshold_first": '0.99 > sum(rate(api_requests_total{status="200"}[5m])) / sum(rate(api_requests_total[5m]))',
}  # fmt: skip


@pytest.mark.parametrize("expr", SUCCESS_RATIOS.values(), ids=SUCCESS_RATIOS.keys())
def test_a_success_ratio_that_fires_when_low_is_an_error_rate(
    classifier: EvidenceClassifier, expr: str
) -> None:
    assert_decides(
        classifier, expr, "error_rate", "fires when it falls (errors rising) (+3 error_rate)"
    )


def test_a_success_ratio_that_fires_when_high_is_not_an_error_rate(
    classifier: EvidenceClassifier,
) -> None:
    expr = 'sum(rate(response_total{classification="success"}[5m])) / sum(rate(response_total[5m])) > 0.99'
    category, reasons = classify(classifier, expr)
    assert category == "unclassified"
    assert not any("success ratio" in r for r in reasons), reasons


def test_one_minus_an_error_ratio_below_a_target_is_an_error_rate(
    classifier: EvidenceClassifier,
) -> None:
    expr = "1 - sum(rate(search_request_errors_total[5m])) / sum(rate(search_requests_total[5m])) < 0.995"
    assert_decides(
        classifier, expr, "error_rate", "request error ratio search_request_errors_total"
    )


@pytest.mark.parametrize(
    "expr",
    [
        "sum(rate(cache_hits_total[5m])) / sum(rate(cache_requests_total[5m])) < 0.8",
        'avg_over_time(probe_success{job="blackbox"}[10m]) < 0.9',
        'node_filesystem_avail_bytes{fstype!="tmpfs"} / node_filesystem_size_bytes < 0.1',
    ],
    ids=["hit_ratio", "probe_success", "free_space"],
)
def test_a_ratio_below_a_target_without_a_success_selector_is_not_an_error_rate(
    classifier: EvidenceClassifier, expr: str
) -> None:
    category, reasons = classify(classifier, expr)
    assert category == "unclassified", reasons


# -- status-code families ------------------------------------------------------------


@pytest.mark.parametrize(
    ("label", "op", "value", "kind"),
    [
        ("code", "=~", "5..", "server"),
        ("code", "!~", "[1-4]..", "server"),
        ("envoy_response_code_class", "=", "5", "server"),
        ("response_code", "!~", "5..", "success"),
        ("code", "=~", "4..", "client"),
        ("grpc_code", "=~", "Unknown|Internal|Unavailable|DataLoss|DeadlineExceeded", "server"),
        ("grpc_code", "=", "UNAVAILABLE", "server"),
        ("rpc_grpc_status_code", "=~", "2|4|13|14|15", "server"),
        ("rpc_grpc_status_code", "=", "0", "success"),
        ("grpc_code", "=", "NotFound", "client"),
        ("rpc_grpc_status_code", "=", "5", "client"),
        ("outcome", "=", "SERVER_ERROR", "server"),
        ("outcome", "=", "CLIENT_ERROR", "client"),
        ("outcome", "=", "SUCCESS", "success"),
        ("rcode", "=", "SERVFAIL", "server"),
        ("rcode", "=", "NXDOMAIN", "client"),
        ("method", "=", "500", None),
    ],
)
def test_status_code_families(label: str, op: str, value: str, kind: str | None) -> None:
    matcher = Matcher(label, op, value)  # type: ignore[arg-type]
    found = {
        "server": sc.selects_server_errors(matcher),
        "client": sc.selects_client_errors(matcher),
        "success": sc.selects_successes(matcher),
    }
    assert [k for k, selected in found.items() if selected] == ([kind] if kind else [])


FAILURE_CODES = {
    "otel_numeric_grpc": 'sum(rate(rpc_server_duration_milliseconds_count{rpc_grpc_status_code=~"2|13|14"}[5m])) / sum(rate(rpc_server_duration_milliseconds_count[5m])) > 0.02',
    "grpc_names": 'sum(rate(grpc_server_handled_total{grpc_code=~"Internal|Unavailable"}[5m])) / sum(rate(grpc_server_handled_total[5m])) > 0.05',
    "status_code_label_on_a_grpc_metric": 'sum(rate(grpc_server_processing_duration_seconds_count{statusCode=~"UNAVAILABLE|INTERNAL"}[5m])) / sum(rate(grpc_server_processing_duration_seconds_count[5m])) > 0.02',
    "micrometer_outcome": 'sum(rate(http_server_requests_seconds_count{outcome="SERVER_ERROR"}[5m])) / sum(rate(http_server_requests_seconds_count[5m])) > 0.05',
}  # fmt: skip


@pytest.mark.parametrize("expr", FAILURE_CODES.values(), ids=FAILURE_CODES.keys())
def test_server_failure_codes_beyond_http(classifier: EvidenceClassifier, expr: str) -> None:
    assert_decides(classifier, expr, "error_rate", "selects server errors (+3 error_rate)")


@pytest.mark.parametrize(
    "expr",
    [
        "sum(aws_elb_httpcode_backend_5_xx_sum) / sum(aws_elb_request_count_sum) > 0.05",
        "sum(aws_apigateway_5xxerror_sum) / sum(aws_apigateway_count_sum) > 0.05",
    ],
    ids=["classic_elb", "api_gateway"],
)
def test_a_load_balancer_counting_5xx_by_name_is_an_error_rate(
    classifier: EvidenceClassifier, expr: str
) -> None:
    assert_decides(classifier, expr, "error_rate", "counts 5xx responses by name (+3 error_rate)")


@pytest.mark.parametrize(
    "expr",
    [
        'sum(rate(grpc_server_handled_total{grpc_code="NotFound"}[5m])) / sum(rate(grpc_server_handled_total[5m])) > 0.2',
        'sum(rate(http_server_requests_seconds_count{outcome="CLIENT_ERROR"}[5m])) / sum(rate(http_server_requests_seconds_count[5m])) > 0.2',
    ],
    ids=["grpc_not_found", "micrometer_client_error"],
)
def test_client_failure_codes_are_not_an_error_rate(
    classifier: EvidenceClassifier, expr: str
) -> None:
    assert_decides(classifier, expr, "unclassified", "selects only client errors (-4 error_rate)")


# -- pool semantics ------------------------------------------------------------------

IN_USE_AGAINST_MAX = {
    "pgx_glued_pool": ("pgxpool_acquired_conns / pgxpool_max_conns > 0.85", "pgxpool_acquired_conns / pgxpool_max_conns"),
    "max_connections_setting": ('sum(cnpg_backends_total) / max(cnpg_pg_settings_setting{name="max_connections"}) > 0.9', "cnpg_backends_total / cnpg_pg_settings_setting"),
    "connection_stats": ("100 * (ccp_connection_stats_total / ccp_connection_stats_max_connections) > 90", "ccp_connection_stats_total / ccp_connection_stats_max_connections"),
}  # fmt: skip


@pytest.mark.parametrize(
    ("expr", "subject"), IN_USE_AGAINST_MAX.values(), ids=IN_USE_AGAINST_MAX.keys()
)
def test_connections_in_use_against_a_maximum_saturate_the_database(
    classifier: EvidenceClassifier, expr: str, subject: str
) -> None:
    reason = f"connections in use against a maximum {subject} (+2 db_saturation)"
    assert_decides(classifier, expr, "db_saturation", reason)


@pytest.mark.parametrize(
    ("expr", "subject"),
    [
        ('rate(go_sql_wait_count_total{db_name="orders"}[5m]) > 5', "go_sql_wait_count_total"),
        ("prisma_client_queries_wait > 5", "prisma_client_queries_wait"),
        ("max(pg_pool_waiting_count) > 5", "pg_pool_waiting_count"),
    ],
    ids=["go_database_sql", "prisma", "node_postgres"],
)
def test_callers_waiting_on_a_database_client_saturate_it(
    classifier: EvidenceClassifier, expr: str, subject: str
) -> None:
    reason = f"{subject} waits for a pooled connection (+2 db_saturation)"
    assert_decides(classifier, expr, "db_saturation", reason)


def test_connections_refused_at_a_limit_saturate_the_database(
    classifier: EvidenceClassifier,
) -> None:
    expr = 'increase(pgbouncer_errors_count{errmsg="no more connections allowed (max_client_conn)"}[2m]) > 0'
    assert_decides(
        classifier,
        expr,
        "db_saturation",
        "pgbouncer_errors_count counts connections refused at a limit (+3 db_saturation)",
    )


@pytest.mark.parametrize(
    "expr",
    [
        "rate(mysql_global_status_innodb_row_lock_waits[5m]) > 10",
        "executor_queued_tasks / (executor_queued_tasks + executor_queue_remaining_tasks) > 0.9",
        "kafka_server_kafkarequesthandlerpool_requesthandleravgidlepercent_total < 0.3",
        "haproxy_frontend_current_sessions / haproxy_frontend_limit_sessions > 0.8",
        "redis_blocked_clients > 10",
    ],
    ids=["row_lock_waits", "executor_queue", "handler_pool", "load_balancer_sessions", "blocked"],
)
def test_waits_and_pools_that_are_not_connection_pools_stay_unclassified(
    classifier: EvidenceClassifier, expr: str
) -> None:
    category, reasons = classify(classifier, expr)
    assert category == "unclassified", reasons


# -- whose latency -------------------------------------------------------------------

NOT_REQUEST_LATENCY = {
    "mysql_slow_queries": ("increase(mysql_global_status_slow_queries[5m]) > 10", "database queries"),
    "pg_long_transaction": ('max(pg_stat_activity_max_tx_duration{state="active"}) > 300', "database queries"),
    "sidekiq_queue": ("max by (queue) (sidekiq_queue_latency_seconds) > 60", "queued work"),
    "celery_queue": ("histogram_quantile(0.95, sum by (le) (rate(celery_task_queue_latency_seconds_bucket[10m]))) > 120", "queued work"),
    "gc_pause": ('go_gc_duration_seconds{quantile="1"} > 0.5', "background work"),
}  # fmt: skip


@pytest.mark.parametrize(
    ("expr", "work"), NOT_REQUEST_LATENCY.values(), ids=NOT_REQUEST_LATENCY.keys()
)
def test_latency_of_queries_queues_and_gc_is_not_request_latency(
    classifier: EvidenceClassifier, expr: str, work: str
) -> None:
    assert_decides(classifier, expr, "unclassified", f"times {work}")
    _, reasons = classify(classifier, expr)
    assert any(r.endswith("not requests a user waits on (-4 latency)") for r in reasons), reasons


@pytest.mark.parametrize(
    "expr",
    [
        "histogram_quantile(0.99, sum by (le) (rate(rpc_server_duration_milliseconds_bucket[5m]))) > 800",
        "histogram_quantile(0.99, sum by (le) (rate(prometheus_engine_query_duration_seconds_bucket[5m]))) > 5",
        "job:slo_latency_sli_error:ratio_rate1h > (14.4 * 0.001)",
    ],
    ids=["rpc_server", "non_database_query", "recording_rule_level_is_not_work"],
)
def test_request_and_rpc_latency_stays_latency(classifier: EvidenceClassifier, expr: str) -> None:
    category, reasons = classify(classifier, expr)
    assert category == "latency", reasons
    assert not any("not requests a user waits on" in r for r in reasons), reasons


def test_whose_latency_outweighs_a_name_that_says_latency(classifier: EvidenceClassifier) -> None:
    expr = "sum(rate(mysql_perf_schema_events_statements_seconds_total[5m])) / sum(rate(mysql_perf_schema_events_statements_total[5m])) > 0.5"
    result = classifier.classify(make_alert("MysqlStatementLatencyHigh", expr))
    assert result.category == "unclassified", result.reasons
    assert any("times database queries" in r for r in result.reasons), result.reasons
