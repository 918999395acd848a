"""The alert side of the search: what is wrong (problem terms) and where (workload terms).

*Problem* terms come from the alert name (CamelCase split), its summary and
description, the metrics its expression reads and the matcher values that say
*what* is measured (``reason="OOMKilled"``, ``status=~"5.."``, ``phase="Pending"``),
plus the category's vocabulary. *Workload* terms come from the labels that say
*who* (service, job, namespace, container, …); they are left out of the problem
terms, so a section is never chosen only because it names the service.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from router.alerts import Alert
from router.classify.classifier import MAX_EXPRESSION_CHARS, MAX_TEXT_CHARS
from router.classify.exprfacts import SelectorUse
from router.classify.scorer import expression_facts
from router.library.technologies import resources, systems
from router.library.terms import spans, status_family, surfaces, terms

ALERTNAME = 1.0
SUMMARY = 0.6
DESCRIPTION = 0.4
MEASURED = 0.8
METRIC = 0.35
METRIC_SOURCE = "metric "
METRIC_NAMESPACE = 0.2  # the first word of a metric name: its exporter (pg_, node_, redis_)
CATEGORY = 0.5
SYNONYM = 0.5

TEXT_ANNOTATIONS = {"summary": SUMMARY, "description": DESCRIPTION, "message": DESCRIPTION}
# Labels that say *who*, with how much naming them counts (the service most).
WORKLOAD_LABELS: dict[str, float] = {
    **dict.fromkeys(
        ("service", "service_name", "exported_service", "sloth_service", "application"),
        1.0,
    ),
    **dict.fromkeys(
        ("destination_workload", "destination_service_name", "app", "app_kubernetes_io_name"),
        1.0,
    ),
    **dict.fromkeys(
        ("component", "container", "deployment", "statefulset", "daemonset", "workload"), 1.0
    ),
    **dict.fromkeys(("job", "type", "groupname", "ingress", "consumergroup", "queue"), 0.8),
    **dict.fromkeys(("pod", "topic", "persistentvolumeclaim"), 0.6),
    **dict.fromkeys(("namespace", "exported_namespace", "datname", "database", "db"), 0.5),
    **dict.fromkeys(("cluster", "team"), 0.3),
}
# Labels whose value says *what* is wrong rather than who (a problem word).
MEASURED_LABELS = frozenset(
    {"reason", "phase", "condition", "resource", "state", "outcome", "handler", "slo"}
    | {"sloth_slo", "grpc_code", "rpc_grpc_status_code", "status", "code", "status_code"}
)
GRPC_CODE_LABELS = frozenset({"grpc_code", "rpc_grpc_status_code"})
_GRPC_FAILURES = re.compile(
    r"Unknown|Internal|Unavailable|DataLoss|DeadlineExceeded|\b(?:2|4|13|14|15)\b"
)
# Scrapers and exporters: the label names the collector, not the workload.
COLLECTORS = re.compile(
    r"^(?:kube-state-metrics|kubelet|cadvisor|node-exporter|node|blackbox|blackbox-exporter"
    r"|prometheus|pushgateway|apiserver|kube-apiserver|.*-exporter)$"
)
_POD_SUFFIX = re.compile(r"-(?:[a-z0-9]{6,10}-)?[a-z0-9]{5}$|-\d+$")
# Unit suffixes and the kube-state-metrics prefix say nothing about the problem.
_METRIC_NOISE = frozenset(
    terms("total count bucket sum seconds bytes info created ratio kube status")
)

# Things an alert is about, not what is wrong with them: a heading that shares only
# these with the alert ("Node logs" for DiskPressure on a node) does not name its problem.
SUBJECTS = frozenset(
    terms(
        "pod pods node nodes container containers kubernetes k8s kube cluster instance host "
        "server service api gateway app application deployment namespace process system "
        "component endpoint target status"
    )
)

CATEGORY_TERMS: dict[str, str] = {
    "latency": "latency slow response time duration",
    "error_rate": "error errors 5xx failure availability",
    "db_saturation": "connection pool saturation exhausted database",
    "crashloop": "crash crashloop restart down",
}
# Abbreviations stand for their words at full weight.
ABBREVIATIONS: dict[str, str] = {
    "oom": "memory",
    "pvc": "volume",
    "db": "database",
    "pg": "postgres",
    "tls": "certificate",
    "cert": "certificate",
    "hpa": "autoscaler",
    "k8s": "kubernetes",
}
# Words people use for the same problem; each side is expanded to the other.
SYNONYMS: tuple[tuple[str, ...], ...] = (
    ("latency", "slow", "slowness", "duration", "response"),
    ("error", "errors", "failure", "failing"),
    ("oom", "oomkilled", "memory"),
    ("restart", "crash", "crashloop", "crashloopbackoff"),
    ("down", "unavailable", "unreachable", "absent"),
    ("volume", "pvc", "persistentvolumeclaim", "storage", "disk"),
    ("full", "space", "filling"),
    ("pending", "unschedulable", "scheduling"),
    ("saturation", "saturated", "exhausted", "exhaustion"),
    ("connection", "connections", "pool"),
    ("availability", "burn", "budget"),
)


@dataclass
class AlertQuery:
    """Weighted terms for the two searches, with where each problem term came from."""

    problem: dict[str, float] = field(default_factory=dict)
    workload: dict[str, float] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)
    words: dict[str, str] = field(default_factory=dict)  # term -> the word a person wrote
    families: set[str] = field(default_factory=set)  # status-code families: 4xx, 5xx
    systems: frozenset[str] = frozenset()  # PostgreSQL, Redis… the alert names
    resources: frozenset[str] = frozenset()  # memory, disk, CPU

    @property
    def condition(self) -> dict[str, float]:
        """The problem terms that say what is wrong, not what it is wrong with: no subject
        nouns, and nothing read only from a metric's name (``activity`` in
        ``pg_stat_activity``) — a heading must match what the alert says."""
        return {
            t: w
            for t, w in self.problem.items()
            if t not in SUBJECTS and not self.sources[t].startswith(METRIC_SOURCE)
        }

    def word(self, term: str) -> str:
        """The word a term was read from, for people."""
        return self.words.get(term, term)

    def add(
        self, text: str, weight: float, source: str, skip: frozenset[str] = frozenset()
    ) -> None:
        """The terms of ``text`` at ``weight`` (a term keeps its strongest weight and source).

        A word that names the workload adds nothing, nor do its parts (``PgBouncer`` for
        ``job="pgbouncer"``: neither ``pg`` nor ``bouncer``).
        """
        named = {t for joined, run in spans(text) if joined in self.workload for t in run}
        for term, word in surfaces(text).items():
            if term in skip or term in named or term in self.workload:
                continue
            if weight <= self.problem.get(term, 0.0):
                continue
            self.problem[term] = weight
            self.sources[term] = source
            self.words.setdefault(term, word)


def alert_query(alert: Alert, category: str | None) -> AlertQuery:
    """The terms the finder searches the library with for this alert."""
    workload, words = _workload(alert.labels)
    query = AlertQuery(workload=workload, words=words)
    query.add(alert.alertname[:MAX_TEXT_CHARS], ALERTNAME, "alertname")
    for name, weight in TEXT_ANNOTATIONS.items():
        query.add(alert.annotations.get(name, "")[:MAX_TEXT_CHARS], weight, name)
    for label in sorted(MEASURED_LABELS & alert.labels.keys()):
        query.add(_measured(label, alert.labels[label]), MEASURED, f"label {label}")
    if alert.expression and len(alert.expression) <= MAX_EXPRESSION_CHARS:
        _add_expression(query, alert.expression)  # the classifier's bound: work stays small
    query.families = {t for t in query.problem if status_family(t)}
    query.systems = systems([*query.problem, *query.workload])
    query.resources = resources(t for t, source in query.sources.items() if "synonym" not in source)
    _add_synonyms(query)
    if category in CATEGORY_TERMS:
        query.add(CATEGORY_TERMS[category], CATEGORY, f"category {category}")
    return query


def _workload(labels: dict[str, str]) -> tuple[dict[str, float], dict[str, str]]:
    """Workload terms with their weights, and the label values they were read from."""
    found: dict[str, float] = {}
    words: dict[str, str] = {}
    for label, weight in WORKLOAD_LABELS.items():
        value = labels.get(label, "")
        if not value or COLLECTORS.match(value):
            continue
        if label == "pod":
            value = _POD_SUFFIX.sub("", value)
        for term in terms(value):
            found[term] = max(weight, found.get(term, 0.0))
            words.setdefault(term, value)
    return found, words


def _measured(label: str, value: str) -> str:
    """The problem words of one matcher or label value (a status family, a reason, a phase)."""
    if label in GRPC_CODE_LABELS:
        return "error failure" if _GRPC_FAILURES.search(value) else ""
    family = status_family(value.split("|")[0])
    if family:
        return f"{family} error" if family == "5xx" else family
    return value.replace("|", " ")


def _add_expression(query: AlertQuery, expression: str) -> None:
    for use in expression_facts(expression).uses:
        namespace, _, rest = use.name.replace(":", "_").partition("_")
        source = f"{METRIC_SOURCE}{use.name}"
        query.add(rest, METRIC, source, skip=_METRIC_NOISE)
        query.add(namespace, METRIC_NAMESPACE, source, skip=_METRIC_NOISE)
        for matcher in use.matchers:
            if matcher.name in MEASURED_LABELS and matcher.op in ("=", "=~"):
                words = _measured(matcher.name, matcher.value)
                query.add(words, MEASURED, f"matcher {matcher.name} in {use.name}")
        if _is_liveness(use):
            query.add("down unavailable", MEASURED, f"{use.name} falls to 0")


def _is_liveness(use: SelectorUse) -> bool:
    """``up == 0``, ``…_up < 1``: a target or component that stopped answering."""
    named_up = use.name == "up" or use.name.endswith("_up")
    return named_up and (use.falls or use.direction == "==") and (use.threshold or 0) <= 0.5


def _add_synonyms(query: AlertQuery) -> None:
    for short, long in ABBREVIATIONS.items():
        (stem,) = terms(short)
        if stem in query.problem:
            query.add(long, query.problem[stem], f"{short} stands for {long}")
    for group in SYNONYMS:
        present = [t for t in terms(" ".join(group)) if t in query.problem]
        if present:
            weight = min(SYNONYM, max(query.problem[t] for t in present))
            query.add(" ".join(group), weight, f"synonym of {query.word(present[0])}")
