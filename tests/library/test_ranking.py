"""The runbook finder on libraries written in many house styles (tests/library/styles).

Each case is an alert as Prometheus sends it (labels, summary, the expression in
``generatorURL``) and the section a person would open, or None when no section fits.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

import pytest

from router.alerts import Alert
from router.classify import EvidenceClassifier, load_rules
from router.library import LibraryFinder, RunbookLibrary
from router.library.query import alert_query
from router.library.structure import kind, own_parts

STYLES = Path(__file__).parent / "styles"


def firing(labels: dict[str, str], expr: str = "", summary: str = "") -> Alert:
    url = f"http://prometheus:9090/graph?g0.expr={quote(expr, safe='')}&g0.tab=1" if expr else ""
    return Alert(
        status="firing",
        labels=labels,
        annotations={"summary": summary} if summary else {},
        startsAt="2026-11-22T03:00:00Z",
        generatorURL=url,
    )


def found(library: str, alert: Alert) -> str | None:
    """``path#anchor`` of the section picked for ``alert`` (no rules: as a new user has)."""
    runbooks = RunbookLibrary.load([STYLES / library])
    classification = EvidenceClassifier(load_rules([]), runbooks).classify(alert)
    excerpt = LibraryFinder(runbooks).find(alert, classification)
    if excerpt is None or excerpt.link.path is None:
        return None
    return (
        f"{excerpt.link.path}#{excerpt.link.anchor}" if excerpt.link.anchor else excerpt.link.path
    )


LATENCY = "histogram_quantile(0.99, sum by (le) (rate(http_request_duration_seconds_bucket{{{0}}}[5m]))) > 0.5"
ERRORS = 'sum(rate(http_requests_total{{{0}, code=~"5.."}}[5m])) / sum(rate(http_requests_total{{{0}}}[5m])) > 0.05'
CLIENT_ERRORS = 'sum(rate(http_requests_total{{{0}, code=~"4.."}}[5m])) / sum(rate(http_requests_total{{{0}}}[5m])) > 0.2'


@pytest.mark.parametrize(
    ("labels", "expr", "want"),
    [
        # one file per service: the service's labels pick the file
        (
            {"alertname": "PaymentsP99High", "namespace": "payments"},
            LATENCY.format('namespace="payments"'),
            "payments.md#high-latency",
        ),
        (
            {"alertname": "SearchServerErrors", "service": "search"},
            ERRORS.format('service="search"'),
            "search.md#errors-5xx",
        ),
        (
            {"alertname": "SlowBaskets", "app": "checkout"},
            LATENCY.format('app="checkout"'),
            "checkout.md#high-latency",
        ),
        (
            {
                "alertname": "ContainerRestarting",
                "pod": "payments-7d9f8c6b5-x2kqp",
                "container": "payments",
                "namespace": "payments",
            },
            'increase(kube_pod_container_status_restarts_total{namespace="payments"}[15m]) > 3',
            "payments.md#pod-restarts",
        ),
        # nothing tells the three "High latency" sections apart: no answer, not the first file
        ({"alertname": "RequestLatencyHigh"}, LATENCY.format('job="web"'), None),
        # near misses: a 4xx ratio is not the 5xx section; a certificate has no section
        (
            {"alertname": "PaymentsRejectingRequests", "service": "payments"},
            CLIENT_ERRORS.format('service="payments"'),
            None,
        ),
        (
            {
                "alertname": "PaymentsCertificateExpiresSoon",
                "service": "payments",
                "job": "blackbox",
            },
            'probe_ssl_earliest_cert_expiry{job="blackbox"} - time() < 86400 * 7',
            None,
        ),
    ],
)
def test_one_file_per_service(labels: dict[str, str], expr: str, want: str | None) -> None:
    assert found("per-service", firing(labels, expr)) == want


@pytest.mark.parametrize(
    ("labels", "expr", "summary", "want"),
    [
        # flat sections with bullets
        (
            {"alertname": "StorefrontPagesSlow", "service": "storefront"},
            LATENCY.format('service="storefront"'),
            "",
            "storefront.md#high-latency",
        ),
        # bold labels instead of sub-headings; an alert no category covers still gets it
        (
            {
                "alertname": "ImageCacheVolumeFilling",
                "namespace": "storefront",
                "persistentvolumeclaim": "image-cache",
            },
            'kubelet_volume_stats_available_bytes{persistentvolumeclaim="image-cache"} / kubelet_volume_stats_capacity_bytes{persistentvolumeclaim="image-cache"} < 0.1',
            "The image-cache volume has less than 10% free space",
            "storefront.md#disk-filling-up",
        ),
        # the most specific section, never its group
        (
            {"alertname": "StorefrontDBPoolSaturated", "application": "storefront"},
            'hikaricp_connections_active{application="storefront"} / hikaricp_connections_max{application="storefront"} > 0.9',
            "",
            "storefront.md#issue-connection-pool-exhaustion",
        ),
        (
            {"alertname": "ReplicaBehindPrimary", "job": "postgres"},
            "pg_replication_lag_seconds > 30",
            "The read replica is lagging",
            "storefront.md#issue-replication-lag",
        ),
        # a symptom/cause/fix table is the section's own text
        (
            {"alertname": "PodsNotScheduled", "namespace": "storefront"},
            'kube_pod_status_phase{namespace="storefront", phase="Pending"} == 1',
            "",
            "storefront.md#pod-problems-at-a-glance",
        ),
        # "Alert: X" headings declare X, and rank for alerts nobody declared
        (
            {"alertname": "BillingTargetMissing", "job": "billing"},
            'up{job="billing"} == 0',
            "billing target is down",
            "alerts.md#alert-instancedown-severity-critical",
        ),
        (
            {"alertname": "KubePodCrashLooping", "namespace": "jobs"},
            "",
            "",
            "alerts.md#alert-kubepodcrashlooping",
        ),
        ({"alertname": "HighAPILatency"}, "", "", "alerts.md#1-alert-highapilatency"),
        # a "Remediation" heading after "Alert: X" at the same level is X's remediation
        (
            {"alertname": "JobBacklogGrowing", "queue": "emails"},
            'sum(jobs_waiting{queue="emails"}) > 1000',
            "Jobs wait in the queue; the worker pool is not taking them",
            "alerts.md#alert-queue-consumers-stalled",
        ),
        # front matter names the service; admonitions are part of the text
        (
            {"alertname": "LedgerSlow", "service": "ledger"},
            LATENCY.format('service="ledger"'),
            "",
            "admonitions.md#slow-responses",
        ),
        (
            {"alertname": "LedgerOOMKilled", "container": "ledger", "namespace": "finance"},
            'kube_pod_container_status_last_terminated_reason{container="ledger", reason="OOMKilled"} == 1',
            "",
            "admonitions.md#out-of-memory",
        ),
        # near misses
        (
            {"alertname": "StorefrontCertificateExpiring", "service": "storefront"},
            "probe_ssl_earliest_cert_expiry - time() < 86400 * 14",
            "",
            None,
        ),
        (
            {"alertname": "ElasticsearchClusterRed", "cluster": "catalog"},
            'elasticsearch_cluster_health_status{color="red"} == 1',
            "The catalog search cluster is red",
            None,
        ),
    ],
)
def test_house_styles(labels: dict[str, str], expr: str, summary: str, want: str | None) -> None:
    assert found("mixed", firing(labels, expr, summary)) == want


@pytest.mark.parametrize(
    ("labels", "expr", "want"),
    [
        (
            {"alertname": "ObjectStoreCompactorStopped", "job": "object-store"},
            'objstore_compact_halted{job="object-store"} == 1',
            "mixin.md#object-store",
        ),
        (
            {"alertname": "ProxyP99High", "job": "gateway-proxy"},
            LATENCY.format('job="gateway-proxy"'),
            "mixin.md#gateway-proxy",
        ),
        (
            {"alertname": "IngesterDroppingSamples", "job": "metrics-ingester"},
            'rate(ingester_samples_dropped_total{job="metrics-ingester"}[5m]) > 0',
            "mixin.md#metrics-ingester",
        ),
        # a section named for another component is not this alert's, however alike the words
        (
            {"alertname": "NotificationsFailing", "job": "alertmanager"},
            'rate(alertmanager_notifications_failed_total{job="alertmanager"}[5m]) > 0',
            None,
        ),
    ],
)
def test_sections_named_for_components(labels: dict[str, str], expr: str, want: str | None) -> None:
    assert found("components", firing(labels, expr)) == want


def test_a_document_of_one_section_is_an_answer() -> None:
    alert = firing(
        {"alertname": "OrdersConsumersBehind", "consumergroup": "orders"},
        'sum by (consumergroup) (kafka_consumergroup_lag{consumergroup="orders"}) > 5000',
    )
    assert found("single-kafka-lag.md", alert) == "single-kafka-lag.md#kafka-consumer-lag"
    late = firing({"alertname": "NightlyReportsLate"}, "", "The nightly reports are late")
    assert found("no-headings.md", late) == "no-headings.md"


def test_unclassified_alerts_keep_their_category() -> None:
    runbooks = RunbookLibrary.load([STYLES / "mixed"])
    alert = firing(
        {"alertname": "ImageCacheVolumeFilling", "persistentvolumeclaim": "image-cache"},
        "kubelet_volume_stats_available_bytes / kubelet_volume_stats_capacity_bytes < 0.1",
    )
    classification = EvidenceClassifier(load_rules([]), runbooks).classify(alert)
    excerpt = LibraryFinder(runbooks).find(alert, classification)
    assert classification.category == "unclassified"
    assert excerpt is not None and excerpt.link.anchor == "disk-filling-up"
    assert excerpt.why.startswith("ranked best")


def test_generic_headings_are_parts_and_reference_sections_never_answer() -> None:
    runbooks = RunbookLibrary.load([STYLES / "per-service", STYLES / "mixed"])
    kinds = {s.ref: kind(s) for s in runbooks.sections()}
    assert kinds["payments.md#overview"] == "reference"
    assert kinds["payments.md#common-issues"] == "part"
    assert kinds["storefront.md#contacts"] == "reference"
    assert kinds["alerts.md#remediation"] == "part"
    assert kinds["storefront.md#issue-connection-pool-exhaustion"] == "topic"
    stalled = runbooks.get("alerts.md#alert-queue-consumers-stalled")
    assert stalled is not None
    assert [p.title for p in own_parts(stalled)] == [
        "Alert: Queue consumers stalled",
        "Remediation",
    ]


def test_explain_lists_the_top_candidates_with_reasons() -> None:
    runbooks = RunbookLibrary.load([STYLES / "per-service"])
    alert = firing(
        {"alertname": "SearchServerErrors", "service": "search"}, ERRORS.format('service="search"')
    )
    classification = EvidenceClassifier(load_rules([]), runbooks).classify(alert)
    lines = LibraryFinder(runbooks).explain(alert, classification)
    scored = [line for line in lines if not line.startswith("        ")]
    assert len(scored) == 3
    assert scored[0].split()[1] == "search.md#errors-5xx"
    assert any("workload" in line and "'search'" in line for line in lines)
    assert any("title" in line and "'5xx'" in line for line in lines)


@pytest.mark.parametrize(
    ("labels", "expr", "summary", "want"),
    [
        # a page titled only in its front matter, whose headings are its steps, is the answer
        (
            {"alertname": "BillingHikariPoolExhausted", "application": "billing-api"},
            'hikaricp_connections_pending{application="billing-api"} > 0',
            "billing-api threads wait for a database connection",
            "databases/pool-exhaustion.md",
        ),
        (
            {"alertname": "KubePersistentVolumeFillingUp", "persistentvolumeclaim": "data-0"},
            'kubelet_volume_stats_available_bytes{persistentvolumeclaim="data-0"} / kubelet_volume_stats_capacity_bytes{persistentvolumeclaim="data-0"} < 0.03',
            "PVC data-0 is almost full",
            "kubernetes/volume-full.md",
        ),
        # a generic "Meaning" heading is a part of the section above it
        (
            {"alertname": "KubeletMemoryPressure", "node": "worker-3"},
            'kube_node_status_condition{condition="MemoryPressure", status="true"} == 1',
            "",
            "caches.md#node-memory-pressure",
        ),
    ],
)
def test_front_matter_pages_and_what_a_section_is_about(
    labels: dict[str, str], expr: str, summary: str, want: str | None
) -> None:
    assert found("docusaurus", firing(labels, expr, summary)) == want


@pytest.mark.parametrize(
    ("labels", "expr", "ruled_out", "why"),
    [
        (
            {"alertname": "RedisEvictingKeys", "job": "redis"},
            "rate(redis_evicted_keys_total[5m]) > 0",
            "caches.md#memcached-evicting-sessions",
            "the system is memcached, the alert's redis",
        ),
        (
            {"alertname": "KubeletDiskPressure", "node": "worker-3"},
            'kube_node_status_condition{condition="DiskPressure", status="true"} == 1',
            "caches.md#node-memory-pressure",
            "the resource is memory, the alert's disk",
        ),
    ],
)
def test_a_section_about_another_system_or_resource_is_ruled_out(
    labels: dict[str, str], expr: str, ruled_out: str, why: str
) -> None:
    runbooks = RunbookLibrary.load([STYLES / "docusaurus"])
    summary = "Redis is out of memory and evicting keys" if "redis" in expr else ""
    alert = firing(labels, expr, summary)
    query = alert_query(alert, None)
    candidate = next(c for c in runbooks.rank(query, None) if c.section.ref == ruled_out)
    assert candidate.contradicted == why
    assert found("docusaurus", alert) != ruled_out


def test_a_list_of_services_in_front_matter_names_the_page() -> None:
    runbooks = RunbookLibrary.load([STYLES / "docusaurus"])
    page = next(f for f in runbooks.files() if f.path == "databases/pool-exhaustion.md")
    assert page.meta.service == ["billing-api", "quote-engine"]
    assert runbooks.problems == []


def test_the_same_section_of_several_services_without_a_label_to_choose_is_no_answer() -> None:
    # payments.md and search.md both have "Errors (5xx)"; a namespace both share picks neither
    alert = firing(
        {"alertname": "ShopServerErrors", "namespace": "shop"}, ERRORS.format('namespace="shop"')
    )
    assert found("per-service", alert) is None


def test_hostile_sizes_are_read_only_as_far_as_the_classifier_reads_them() -> None:
    huge = "sum(" * 600 + "up" + ")" * 600 + " == 0"  # over the classifier's 2,048 characters
    alert = firing({"alertname": "X"}, huge, "latency " + "filler " * 100_000 + "certificate")
    query = alert_query(alert, None)
    assert not any(source.startswith("metric ") for source in query.sources.values())
    assert "latenc" in query.problem and "certif" not in query.problem
