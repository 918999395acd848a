"""Classification of realistic alerts from the evidence they carry (no rules).

Written in the styles of kubernetes-mixin, node/postgres/mysqld/redis/pgbouncer
exporters, blackbox, Istio, ingress-nginx, Sloth/Pyrra SLO rules and app histograms,
with near misses for each category that must stay ``unclassified``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from classify_helpers import make_alert

from router.classify import EvidenceClassifier, RuleSet


@dataclass(frozen=True)
class Case:
    alertname: str
    expr: str | None
    category: str
    matched_by: str
    annotations: dict[str, str] = field(default_factory=dict)
    evidence: str = ""  # a fragment the deciding reasons must contain


CASES = [
    # -- latency ----------------------------------------------------------------
    Case("CheckoutP99LatencyHigh",
         'histogram_quantile(0.99, sum by (le, route) (rate(http_request_duration_seconds_bucket{job="checkout"}[5m]))) > 0.5',
         "latency", "expression", evidence="histogram_quantile over http_request_duration_seconds_bucket"),
    Case("IstioRequestSlow",
         'histogram_quantile(0.95, sum by (le, destination_service) (rate(istio_request_duration_milliseconds_bucket{reporter="destination"}[5m]))) > 250',
         "latency", "expression", evidence="istio_request_duration_milliseconds_bucket"),
    Case("IngressResponsesSlow",
         'histogram_quantile(0.9, sum(rate(nginx_ingress_controller_request_duration_seconds_bucket{ingress="shop"}[2m])) by (le, ingress)) > 1',
         "latency", "expression"),
    Case("SpringAverageResponseTime",
         'sum by (service) (rate(http_server_requests_seconds_sum{uri!~"/actuator.*"}[5m])) / sum by (service) (rate(http_server_requests_seconds_count{uri!~"/actuator.*"}[5m])) > 0.3',
         "latency", "expression", evidence="average latency http_server_requests_seconds_sum"),
    Case("GrpcHandlingSlow",
         "histogram_quantile(0.99, sum by (le, grpc_method) (rate(grpc_server_handling_seconds_bucket[5m]))) > 0.2",
         "latency", "expression"),
    Case("ApiSummaryQuantileHigh",
         'http_request_duration_seconds{quantile="0.99", handler="/api/orders"} > 2',
         "latency", "expression", evidence="summary quantile"),
    Case("ApiLatencyBudgetBurn",
         'http_request_duration_seconds:burnrate5m{slo="api-latency"} > (14 * (1 - 0.99)) and http_request_duration_seconds:burnrate1h{slo="api-latency"} > (14 * (1 - 0.99))',
         "latency", "expression", evidence="latency SLO burn rate"),
    Case("CheckoutRequestsLatencyPageBurn",
         '(max(slo:sli_error:ratio_rate5m{sloth_service="checkout", sloth_slo="requests-latency"} > (14.4 * 0.01)) without (sloth_window)) and (max(slo:sli_error:ratio_rate1h{sloth_service="checkout", sloth_slo="requests-latency"} > (14.4 * 0.01)) without (sloth_window))',
         "latency", "expression", evidence="latency SLO burn rate"),
    Case("BlackboxSlowHttpProbe",
         'avg_over_time(probe_http_duration_seconds{phase="processing"}[5m]) > 1',
         "latency", "expression", evidence="above a threshold"),
    Case("EnvoyUpstreamRequestTimeHigh",
         "histogram_quantile(0.99, sum by (envoy_cluster_name, le) (rate(envoy_cluster_upstream_rq_time_bucket[5m]))) > 1000",
         "latency", "expression", evidence="histogram_quantile over envoy_cluster_upstream_rq_time_bucket"),
    Case("VaultRequestHandlingSlow", 'vault_core_handle_request{quantile="0.99"} > 500',
         "latency", "expression", evidence="summary quantile of vault_core_handle_request"),
    Case("SearchSLOFastBurn",
         '(max(slo:sli_error:ratio_rate5m{sloth_service="search", sloth_slo="p99-under-300ms"} > (14.4 * 0.01)) without (sloth_window)) and (max(slo:sli_error:ratio_rate1h{sloth_service="search", sloth_slo="p99-under-300ms"} > (14.4 * 0.01)) without (sloth_window))',
         "latency", "expression", evidence="latency SLO burn rate"),
    # latency near misses: disk latency, durations of background work, long-running queries
    Case("HostUnusualDiskReadLatency",
         "rate(node_disk_read_time_seconds_total[1m]) / rate(node_disk_reads_completed_total[1m]) > 0.1 and rate(node_disk_reads_completed_total[1m]) > 0",
         "unclassified", "fallback", {"summary": "Disk latency is growing (read operations > 100ms)"}),
    Case("EtcdHighFsyncDurations",
         'histogram_quantile(0.99, rate(etcd_disk_wal_fsync_duration_seconds_bucket{job="etcd"}[5m])) > 0.5',
         "unclassified", "fallback"),
    Case("GoGcPauseLong", 'go_gc_duration_seconds{quantile="1"} > 1', "unclassified", "fallback",
         evidence="times background work"),
    Case("BatchJobRunningTooLong", "max by (job_name) (batch_job_last_run_duration_seconds) > 3600",
         "unclassified", "fallback"),
    Case("PostgresLongRunningQuery", "ccp_connection_stats_max_query_time > 43200",
         "unclassified", "fallback"),
    # -- error_rate -------------------------------------------------------------
    Case("ApiHighErrorRatio",
         'sum(rate(http_requests_total{job="api", code=~"5.."}[5m])) / sum(rate(http_requests_total{job="api"}[5m])) > 0.05',
         "error_rate", "expression", evidence='http_requests_total{code=~"5.."} selects server errors'),
    Case("IngressServerErrors",
         'sum(rate(nginx_ingress_controller_requests{status=~"5.*"}[2m])) by (ingress) / sum(rate(nginx_ingress_controller_requests[2m])) by (ingress) * 100 > 5',
         "error_rate", "expression"),
    Case("IstioServiceFailing",
         'sum(rate(istio_requests_total{reporter="destination", response_code=~"5.*"}[5m])) / sum(rate(istio_requests_total{reporter="destination"}[5m])) > 0.01',
         "error_rate", "expression"),
    Case("GrpcServerFailing",
         'sum(rate(grpc_server_handled_total{grpc_code!="OK"}[5m])) by (grpc_service) / sum(rate(grpc_server_handled_total[5m])) by (grpc_service) > 0.05',
         "error_rate", "expression", evidence='grpc_code!="OK"'),
    Case("CheckoutAvailabilityPageBurn",
         '(max(slo:sli_error:ratio_rate5m{sloth_id="checkout-availability", sloth_slo="availability"} > (14.4 * 0.001)) without (sloth_window) and max(slo:sli_error:ratio_rate1h{sloth_id="checkout-availability", sloth_slo="availability"} > (14.4 * 0.001)) without (sloth_window))',
         "error_rate", "expression", evidence="error-budget burn rate"),
    Case("ApiErrorBudgetBurn",
         'http_requests:burnrate5m{slo="api-errors"} > (14 * (1 - 0.995)) and http_requests:burnrate1h{slo="api-errors"} > (14 * (1 - 0.995))',
         "error_rate", "expression"),
    Case("PaymentFailuresHigh",
         "sum(rate(payment_requests_failed_total[5m])) / sum(rate(payment_requests_total[5m])) > 0.02",
         "error_rate", "expression", evidence="request error ratio"),
    Case("TraefikBackendErrors",
         'sum(rate(traefik_service_requests_total{code=~"5.."}[5m])) by (service) / sum(rate(traefik_service_requests_total[5m])) by (service) > 0.1',
         "error_rate", "expression"),
    Case("LinkerdFailureRateHigh",
         'sum by (deployment) (rate(response_total{classification="failure", direction="inbound"}[5m])) / sum by (deployment) (rate(response_total{direction="inbound"}[5m])) > 0.05',
         "error_rate", "expression", evidence='response_total{classification="failure"} selects failed requests'),
    Case("CoreDNSErrorsHigh",
         'sum(rate(coredns_dns_responses_total{rcode="SERVFAIL"}[5m])) / sum(rate(coredns_dns_responses_total[5m])) > 0.03',
         "error_rate", "expression", evidence="selects server errors"),
    # error_rate near misses: 4xx, NXDOMAIN, probes, up, absent, jobs, network errors
    Case("CoreDNSNxdomainHigh",
         'sum(rate(coredns_dns_responses_total{rcode="NXDOMAIN"}[5m])) / sum(rate(coredns_dns_responses_total[5m])) > 0.5',
         "unclassified", "fallback"),
    Case("IngressHigh4xxRate",
         'sum(rate(nginx_ingress_controller_requests{status=~"4.."}[5m])) / sum(rate(nginx_ingress_controller_requests[5m])) > 0.2',
         "unclassified", "fallback", {"summary": "Too many HTTP requests with status 4xx (error rate)"}),
    Case("BlackboxProbeFailed", "probe_success == 0", "unclassified", "fallback",
         {"summary": "Blackbox probe failed (instance {{ $labels.instance }})"}),
    Case("TargetDown", 'up{job="payments"} == 0', "unclassified", "fallback"),
    Case("PaymentsMetricsAbsent", 'absent(up{job="payments"} == 1)', "unclassified", "fallback"),
    Case("KubeJobFailed", 'kube_job_status_failed{job="kube-state-metrics"} > 0', "unclassified", "fallback",
         {"description": "Job {{ $labels.job_name }} failed to complete."}),
    Case("HostNetworkReceiveErrors",
         "rate(node_network_receive_errs_total[2m]) / rate(node_network_receive_packets_total[2m]) > 0.01",
         "unclassified", "fallback"),
    # -- db_saturation ----------------------------------------------------------
    Case("PostgresConnectionsNearLimit",
         "sum by (instance) (pg_stat_activity_count) > on(instance) pg_settings_max_connections * 0.8",
         "db_saturation", "expression", evidence="database connection count pg_stat_activity_count"),
    Case("PostgresBackendsHigh",
         "sum by (server) (pg_stat_database_numbackends) / max by (server) (pg_settings_max_connections) > 0.9",
         "db_saturation", "expression", evidence="connection limit pg_settings_max_connections"),
    Case("MysqlConnectionsHigh",
         "max_over_time(mysql_global_status_threads_connected[1m]) / mysql_global_variables_max_connections * 100 > 80",
         "db_saturation", "expression"),
    Case("RedisClientsNearMax", "redis_connected_clients / redis_config_maxclients > 0.9",
         "db_saturation", "expression"),
    Case("PgbouncerClientsWaiting", "pgbouncer_pools_client_waiting_connections > 0",
         "db_saturation", "expression"),
    Case("OrdersHikariPending", 'hikaricp_connections_pending{pool="orders"} > 5',
         "db_saturation", "expression"),
    Case("AppDbPoolNearlyFull", "myapp_db_pool_in_use / myapp_db_pool_max_size > 0.95",
         "db_saturation", "expression"),
    Case("PostgresFewFreeConnections",
         "(pg_settings_max_connections - sum by (instance) (pg_stat_activity_count)) < 10",
         "db_saturation", "expression"),
    Case("MysqlMaxUsedConnectionsNearLimit",
         "mysql_global_status_max_used_connections / mysql_global_variables_max_connections > 0.9",
         "db_saturation", "expression", evidence="database connection count mysql_global_status_max_used_connections"),
    Case("ProxysqlBackendPoolFull",
         "sum(proxysql_connection_pool_conn_used) / (sum(proxysql_connection_pool_conn_used) + sum(proxysql_connection_pool_conn_free)) > 0.9",
         "db_saturation", "expression", evidence="spare connections proxysql_connection_pool_conn_free running out"),
    Case("SqlalchemyPoolExhausted", "sqlalchemy_pool_checkedout / sqlalchemy_pool_size > 0.9",
         "db_saturation", "expression", evidence="connection limit sqlalchemy_pool_size"),
    Case("PgbouncerClientMaxWaitHigh", "max by (database) (pgbouncer_pools_client_maxwait_seconds) > 5",
         "db_saturation", "expression", evidence="waits for a pooled connection"),
    # db near misses: down, too few, replication lag, non-database connections and limits
    Case("HaproxyFrontendSessionsNearLimit",
         "haproxy_frontend_current_sessions / haproxy_frontend_limit_sessions * 100 > 80",
         "unclassified", "fallback"),
    Case("PostgresTooManyLocks",
         "sum by (instance) (pg_locks_count) / (pg_settings_max_locks_per_transaction * pg_settings_max_connections) > 0.2",
         "unclassified", "fallback"),
    Case("MysqlAbortedClients", "rate(mysql_global_status_aborted_clients[5m]) > 1",
         "unclassified", "fallback"),
    Case("PostgresqlDown", "pg_up == 0", "unclassified", "fallback"),
    Case("MysqlDown", "mysql_up == 0", "unclassified", "fallback",
         {"summary": "MySQL instance is down on {{ $labels.instance }}"}),
    Case("OrdersDbTooFewConnections", 'sum(pg_stat_activity_count{datname="orders"}) < 2',
         "unclassified", "fallback", evidence="below a threshold"),
    Case("MysqlReplicationLag",
         "mysql_slave_status_seconds_behind_master - mysql_slave_status_sql_delay > 30",
         "unclassified", "fallback"),
    Case("RabbitmqTooManyConnections", "rabbitmq_connections > 1000", "unclassified", "fallback"),
    # -- crashloop --------------------------------------------------------------
    Case("KubePodCrashLooping",
         'max_over_time(kube_pod_container_status_waiting_reason{reason="CrashLoopBackOff", job="kube-state-metrics"}[5m]) >= 1',
         "crashloop", "expression", evidence="in CrashLoopBackOff"),
    Case("ContainerRestartingOften",
         'increase(kube_pod_container_status_restarts_total{namespace="shop"}[1h]) > 3',
         "crashloop", "expression", evidence="restart counter kube_pod_container_status_restarts_total"),
    Case("KubePodRestartRate",
         'rate(kube_pod_container_status_restarts_total{job="kube-state-metrics"}[10m]) * 60 * 5 > 0',
         "crashloop", "expression"),
    Case("ContainerOomKilledRestarts",
         '(kube_pod_container_status_restarts_total - kube_pod_container_status_restarts_total offset 10m >= 1) and ignoring (reason) min_over_time(kube_pod_container_status_last_terminated_reason{reason="OOMKilled"}[10m]) == 1',
         "crashloop", "expression", evidence="OOM-killed"),
    Case("ServiceRestartingRepeatedly", 'changes(process_start_time_seconds{job="api"}[15m]) > 2',
         "crashloop", "expression"),
    Case("ProcessCounterResets", 'resets(process_cpu_seconds_total{job="worker"}[30m]) > 3',
         "crashloop", "expression", evidence="restart counter process_cpu_seconds_total"),
    # crashloop near misses: image pull, creating, not ready, throttling, memory, node
    Case("NodeRebooted", "changes(node_boot_time_seconds[10m]) > 0", "unclassified", "fallback"),
    Case("KubeContainerImagePullFailing",
         'kube_pod_container_status_waiting_reason{reason=~"ImagePullBackOff|ErrImagePull"} > 0',
         "unclassified", "fallback", evidence="waiting, not crashing"),
    Case("KubeContainerStuckCreating",
         'sum by (pod) (kube_pod_container_status_waiting_reason{reason="ContainerCreating"}) > 0',
         "unclassified", "fallback"),
    Case("KubePodNotReady",
         'sum by (namespace, pod) (max by (namespace, pod) (kube_pod_status_phase{phase=~"Pending|Unknown|Failed"})) > 0',
         "unclassified", "fallback"),
    Case("CPUThrottlingHigh",
         'sum(increase(container_cpu_cfs_throttled_periods_total{container!=""}[5m])) by (container, pod) / sum(increase(container_cpu_cfs_periods_total[5m])) by (container, pod) > 0.25',
         "unclassified", "fallback"),
    Case("ContainerMemoryNearLimit",
         'sum by (pod) (container_memory_working_set_bytes{container!=""}) / sum by (pod) (kube_pod_container_resource_limits{resource="memory"}) > 0.9',
         "unclassified", "fallback"),
    Case("KubeNodeNotReady", 'kube_node_status_condition{condition="Ready", status="true"} == 0',
         "unclassified", "fallback"),
    Case("ServiceRecentlyRestarted", 'time() - process_start_time_seconds{job="api"} < 120',
         "unclassified", "fallback", {"summary": "The API restarted less than two minutes ago"}),
    Case("HostOomKillDetected", "increase(node_vmstat_oom_kill[5m]) > 0", "unclassified", "fallback"),
    # -- no expression, or one that does not parse: the name decides ------------
    Case("CheckoutLatencyHigh", None, "latency", "name",
         {"summary": "Checkout p99 latency above 2s"}, evidence='word "latency"'),
    Case("PaymentsHigh5xxRate", None, "error_rate", "name", evidence='word "5xx"'),
    Case("OrdersDBConnectionPoolExhausted", None, "db_saturation", "name"),
    Case("WorkerCrashLooping", None, "crashloop", "name", evidence='word "crash looping"'),
    Case("TemplatedErrorRatio",
         'sum(rate(http_requests_total{code=~"5.."}[5m])) / sum(rate(http_requests_total[5m])) > {{ .Values.threshold }}',
         "error_rate", "expression", evidence="could not parse"),
    Case("Watchdog", "vector(1)", "unclassified", "fallback"),
]  # fmt: skip


@pytest.fixture(scope="module")
def classifier() -> EvidenceClassifier:
    return EvidenceClassifier(RuleSet())


@pytest.mark.parametrize("case", CASES, ids=[c.alertname for c in CASES])
def test_classifies_realistic_alert(classifier: EvidenceClassifier, case: Case) -> None:
    alert = make_alert(case.alertname, case.expr, {"severity": "warning"}, case.annotations)
    result = classifier.classify(alert)
    assert (result.category, result.matched_by) == (case.category, case.matched_by), result.reasons
    assert result.reasons, "every classification explains itself"
    assert result.playbook == ("generic" if case.category == "unclassified" else case.category)
    if case.evidence:
        assert any(case.evidence in reason for reason in result.reasons), result.reasons


def test_the_table_is_large_and_covers_near_misses_for_each_category() -> None:
    assert len(CASES) >= 40
    unclassified = [c for c in CASES if c.category == "unclassified"]
    assert len(unclassified) >= 15


def test_expression_reasons_name_metric_and_weight(classifier: EvidenceClassifier) -> None:
    alert = make_alert(
        "SomethingSlow",
        "histogram_quantile(0.95, sum by (le) (rate(http_request_duration_seconds_bucket[5m]))) > 1",
    )
    reasons = classifier.classify(alert).reasons
    assert (
        "expr: histogram_quantile over http_request_duration_seconds_bucket (+3 latency)" in reasons
    )


def test_negative_evidence_is_listed_with_its_sign(classifier: EvidenceClassifier) -> None:
    alert = make_alert(
        "Client4xxRatio",
        'sum(rate(http_requests_total{code=~"4.."}[5m])) / sum(rate(http_requests_total[5m])) > 0.3',
    )
    result = classifier.classify(alert)
    assert result.category == "unclassified"
    assert any("selects only client errors (-4 error_rate)" in r for r in result.reasons)
    assert result.reasons[-1].startswith("fallback: no decisive evidence")


def test_the_name_does_not_override_a_contrary_expression(classifier: EvidenceClassifier) -> None:
    """'HighLatency' on a disk-latency expression stays unclassified."""
    alert = make_alert("HighLatency", "rate(node_disk_io_time_seconds_total[5m]) > 0.9")
    assert classifier.classify(alert).category == "unclassified"
