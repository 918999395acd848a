"""Facts from Kubernetes objects (plain dicts as the API returns them): pure functions.

Kept apart from the client so each rule ("the last termination reason", "the
revision of a ReplicaSet", "is the HPA at its maximum") reads in one place.
"""

from __future__ import annotations

import re
from collections import Counter
from datetime import datetime
from typing import Any

_MISSING_CONFIG = re.compile(r'(secret|configmap)s? "([^"]+)" not found', re.IGNORECASE)
_QUANTITY = re.compile(r"^([0-9.]+)([a-zA-Z]*)$")
_UNITS = {
    "": 1,
    "k": 1e3,
    "M": 1e6,
    "G": 1e9,
    "T": 1e12,
    "Ki": 1024,
    "Mi": 1024**2,
    "Gi": 1024**3,
    "Ti": 1024**4,
}
_FAILING_WAITS = frozenset({"CrashLoopBackOff", "Error", "CreateContainerConfigError"})
ERROR_WORDS = re.compile(r"error|exception|fatal|panic|killed|traceback", re.IGNORECASE)


def quantity_bytes(text: str | None) -> float | None:
    match = _QUANTITY.match(text or "")
    if not match or match.group(2) not in _UNITS:
        return None
    return float(match.group(1)) * _UNITS[match.group(2)]


def pod_facts(pods: list[dict[str, Any]]) -> dict[str, Any]:
    summaries = [_pod_summary(p) for p in pods]
    containers = [(s["name"], c) for s in summaries for c in s["containers"]]
    failing = [(s, c) for s in summaries for c in s["containers"] if _failing(c)]
    return {
        "pods": summaries,
        "restarting": [f"{p}/{c['name']}" for p, c in containers if c["restart_count"] > 0],
        # The ReplicaSets whose pods fail, and how their last runs ended: a rollout
        # that created one of them is the cause, not a coincidence.
        "failing_replicasets": sorted({s["replicaset"] for s, _ in failing if s["replicaset"]}),
        "exit_codes": sorted({c["last_exit_code"] for _, c in failing if c["last_exit_code"]}),
        "oom_killed": [
            f"{p}/{c['name']}" for p, c in containers if c["last_termination_reason"] == "OOMKilled"
        ],
        "termination_reasons": dict(
            Counter(
                c["last_termination_reason"] for _, c in containers if c["last_termination_reason"]
            )
        ),
        "waiting_reasons": dict(
            Counter(c["waiting_reason"] for _, c in containers if c["waiting_reason"])
        ),
        "not_ready": [s["name"] for s in summaries if not s["ready"]],
        "max_restarts": max((c["restart_count"] for _, c in containers), default=0),
        "memory_limits": {
            f"{p}/{c['name']}": b
            for p, c in containers
            if (b := quantity_bytes(c["limits"].get("memory"))) is not None
        },
    }


def workload_names(facts: dict[str, Any]) -> dict[str, str]:
    """The names the pods check learned: the Deployment, and the pod (with its node and
    container) when one pod is the one in trouble, or the only one; nothing it must guess."""
    names = {"deployment": facts["deployment"]} if facts.get("deployment") else {}
    pods = facts["pods"]
    troubled = {entry.split("/", 1)[0] for entry in facts["restarting"]} | set(facts["not_ready"])
    chosen = [p for p in pods if p["name"] in troubled] if troubled else pods
    if len(chosen) != 1:
        return names
    pod = chosen[0]
    names["pod"] = pod["name"]
    if pod["node"]:
        names["node"] = pod["node"]
    containers = [c for c in pod["containers"] if c["restart_count"]] or pod["containers"]
    if len(containers) == 1:
        names["container"] = containers[0]["name"]
    return names


def _pod_summary(pod: dict[str, Any]) -> dict[str, Any]:
    spec, status = pod.get("spec", {}), pod.get("status", {})
    resources = {c["name"]: c.get("resources", {}) for c in spec.get("containers", [])}
    containers = [
        _container(c, resources.get(c["name"], {})) for c in status.get("containerStatuses", [])
    ]
    ready = any(
        c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions", [])
    )
    owners = pod["metadata"].get("ownerReferences") or []
    return {
        "name": pod["metadata"]["name"],
        "replicaset": next((o["name"] for o in owners if o.get("kind") == "ReplicaSet"), None),
        "phase": status.get("phase"),
        "ready": ready,
        "node": spec.get("nodeName"),
        "restarts": sum(c["restart_count"] for c in containers),
        "containers": containers,
    }


def _container(status: dict[str, Any], resources: dict[str, Any]) -> dict[str, Any]:
    last = (status.get("lastState") or {}).get("terminated") or {}
    waiting = (status.get("state") or {}).get("waiting") or {}
    return {
        "name": status["name"],
        "ready": bool(status.get("ready")),
        "restart_count": int(status.get("restartCount", 0)),
        "waiting_reason": waiting.get("reason"),
        "last_termination_reason": last.get("reason"),
        "last_exit_code": last.get("exitCode"),
        "last_finished_at": last.get("finishedAt"),
        "requests": dict(resources.get("requests") or {}),
        "limits": dict(resources.get("limits") or {}),
    }


def _failing(container: dict[str, Any]) -> bool:
    return container["restart_count"] > 0 or container["waiting_reason"] in _FAILING_WAITS


def event_facts(events: list[dict[str, Any]]) -> dict[str, Any]:
    warnings = [
        {
            "reason": e.get("reason"),
            "message": (e.get("message") or "")[:300],
            "object": f"{e.get('involvedObject', {}).get('kind')}/{e.get('involvedObject', {}).get('name')}",
            "count": e.get("count") or 1,
            "last_seen": e.get("lastTimestamp") or e.get("eventTime"),
        }
        for e in events
        if e.get("type") == "Warning"
    ]
    reasons = Counter()
    for e in events:
        reasons[e.get("reason")] += e.get("count") or 1
    messages = " ".join(e.get("message") or "" for e in events)
    return {
        "reasons": dict(reasons),
        "warnings": warnings,
        "image_pull_failed": any(r in reasons for r in ("ErrImagePull", "ImagePullBackOff"))
        or "Failed to pull image" in messages,
        "probe_failures": reasons.get("Unhealthy", 0),
        "mount_failures": reasons.get("FailedMount", 0),
        "missing_config": sorted({name for _, name in _MISSING_CONFIG.findall(messages)}),
    }


def revision(replicaset: dict[str, Any]) -> int:
    annotations = replicaset["metadata"].get("annotations") or {}
    return int(annotations.get("deployment.kubernetes.io/revision", 0))


def images(replicaset: dict[str, Any]) -> list[str]:
    return [
        c.get("image", "") for c in replicaset["spec"]["template"]["spec"].get("containers", [])
    ]


def rollout_facts(
    deployment: dict[str, Any],
    replicasets: list[dict[str, Any]],
    starts_at: datetime,
    window: float,
) -> dict[str, Any]:
    ordered = sorted(replicasets, key=revision, reverse=True)
    current = ordered[0] if ordered else None
    previous = ordered[1] if len(ordered) > 1 else None
    status = deployment.get("status", {})
    facts: dict[str, Any] = {
        "deployment": deployment["metadata"]["name"],
        "revision": revision(current) if current else None,
        "replicaset": current["metadata"]["name"] if current else None,
        "previous_revision": revision(previous) if previous else None,
        "rolled_out_at": None,
        "minutes_before_alert": None,
        "within_window": False,
        "images": {
            "previous": images(previous) if previous else [],
            "current": images(current) if current else [],
        },
        "image_changed": bool(previous and current and images(previous) != images(current)),
        "replicas": {
            "desired": deployment.get("spec", {}).get("replicas", 1),
            "ready": status.get("readyReplicas", 0),
            "updated": status.get("updatedReplicas", 0),
            "available": status.get("availableReplicas", 0),
        },
    }
    if current and previous:  # a first revision is a creation, not a rollout
        created = datetime.fromisoformat(
            current["metadata"]["creationTimestamp"].replace("Z", "+00:00")
        )
        minutes = (starts_at - created).total_seconds() / 60
        facts |= {
            "rolled_out_at": created.isoformat(),
            "minutes_before_alert": round(minutes, 1),
            "within_window": 0 <= minutes <= window,
        }
    return facts


def hpa_facts(hpa: dict[str, Any] | None) -> dict[str, Any]:
    if hpa is None:
        return {"found": False}
    spec, status = hpa.get("spec", {}), hpa.get("status", {})
    current, maximum = status.get("currentReplicas", 0), spec.get("maxReplicas", 0)
    metrics = []
    for metric in status.get("currentMetrics") or []:
        resource = metric.get("resource") or {}
        current_value = (resource.get("current") or {}).get("averageUtilization")
        metrics.append(
            {"name": resource.get("name") or metric.get("type"), "current": current_value}
        )
    return {
        "found": True,
        "name": hpa["metadata"]["name"],
        "current": current,
        "desired": status.get("desiredReplicas", current),
        "min": spec.get("minReplicas", 1),
        "max": maximum,
        "at_max": bool(maximum) and current >= maximum,
        "metrics": metrics,
    }
