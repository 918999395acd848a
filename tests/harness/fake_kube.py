"""A fake Kubernetes API server over real HTTP, for the real lightkube client.

It serves the read paths the diagnostics use from in-memory objects shaped as the
API returns them, honours ``labelSelector`` and ``fieldSelector``, records every
request (so tests can assert that each one was a GET), can be told to answer
401/403 or to hang on a path, and writes a kubeconfig that points at itself.
"""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import uvicorn
import yaml
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from tests.harness.waiting import eventually_sync
from tests.procs import free_port

TOKEN = "fake-kube-bearer-token-0123456789"
PLURALS = {
    "Pod": "pods",
    "Event": "events",
    "ReplicaSet": "replicasets",
    "Deployment": "deployments",
    "HorizontalPodAutoscaler": "horizontalpodautoscalers",
    "StatefulSet": "statefulsets",
}


@dataclass
class FakeKube:
    objects: dict[tuple[str, str, str], dict[str, Any]] = field(default_factory=dict)
    logs: dict[tuple[str, str, bool], str] = field(default_factory=dict)
    requests: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)
    fail: dict[str, int] = field(default_factory=dict)  # path fragment → status
    hang: set[str] = field(default_factory=set)  # path fragments that never answer

    def add(self, *objects: dict[str, Any]) -> None:
        for obj in objects:
            meta = obj["metadata"]
            self.objects[(PLURALS[obj["kind"]], meta["namespace"], meta["name"])] = obj

    async def handle(self, request: Request) -> Response:
        path, query = request.url.path, dict(request.query_params)
        self.requests.append((request.method, path, query))
        if request.headers.get("authorization") != f"Bearer {TOKEN}":
            return _status(401, "Unauthorized", "Unauthorized")
        if request.method != "GET":
            return _status(405, "MethodNotAllowed", "the fake API server is read-only")
        if any(fragment in path for fragment in self.hang):
            await asyncio.sleep(3600)
        for fragment, code in self.fail.items():
            if fragment in path:
                return _status(
                    code,
                    "Forbidden" if code == 403 else "Unauthorized",
                    f'{path} is forbidden: User "router" cannot list',
                )
        parts = path.strip("/").split("/")
        namespace_at = parts.index("namespaces")
        namespace, rest = parts[namespace_at + 1], parts[namespace_at + 2 :]
        if len(rest) == 3 and rest[2] == "log":
            key = (rest[1], query.get("container", ""), query.get("previous") == "true")
            text = self.logs.get(key)
            if text is None:
                return _status(
                    400, "BadRequest", f'previous terminated container "{key[1]}" not found'
                )
            lines = text.splitlines()[-int(query.get("tailLines", 10**6)) :]
            return PlainTextResponse("\n".join(lines)[: int(query.get("limitBytes", 10**9))])
        if len(rest) == 2:
            obj = self.objects.get((rest[0], namespace, rest[1]))
            return (
                JSONResponse(obj)
                if obj
                else _status(404, "NotFound", f'{rest[0]} "{rest[1]}" not found')
            )
        items = [
            o
            for (plural, ns, _), o in sorted(self.objects.items())
            if plural == rest[0] and ns == namespace
        ]
        items = [
            o
            for o in items
            if _labels_match(o, query.get("labelSelector"))
            and _fields_match(o, query.get("fieldSelector"))
        ]
        kind = next((k for k, p in PLURALS.items() if p == rest[0]), "Object")
        return JSONResponse(
            {
                "kind": f"{kind}List",
                "apiVersion": "v1",
                "metadata": {"resourceVersion": "42"},
                "items": items,
            }
        )

    def kubeconfig(self, path: Path, port: int) -> Path:
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "fake", "cluster": {"server": f"http://127.0.0.1:{port}"}}],
            "users": [{"name": "router", "user": {"token": TOKEN}}],
            "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "router"}}],
            "current-context": "fake",
        }
        path.write_text(yaml.safe_dump(config))
        return path


class FakeKubeServer:
    """Runs a :class:`FakeKube` under uvicorn in a background thread."""

    def __init__(self, kube: FakeKube) -> None:
        self.kube = kube
        self.port = free_port()
        app = Starlette(
            routes=[
                Route(
                    "/{path:path}", kube.handle, methods=["GET", "POST", "PUT", "PATCH", "DELETE"]
                )
            ]
        )
        self.server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning")
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        eventually_sync(lambda: self.server.started, 10, "the fake Kubernetes API to start", 0.01)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(5)


def _status(code: int, reason: str, message: str) -> JSONResponse:
    body = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }
    return JSONResponse(body, status_code=code)


def _labels_match(obj: dict[str, Any], selector: str | None) -> bool:
    labels = obj["metadata"].get("labels") or {}
    pairs = [part.split("=", 1) for part in (selector or "").split(",") if "=" in part]
    return all(labels.get(k.rstrip("=")) == v for k, v in pairs)


def _fields_match(obj: dict[str, Any], selector: str | None) -> bool:
    for part in filter(None, (selector or "").split(",")):
        key, _, value = part.partition("=")
        node: Any = obj
        for step in key.split("."):
            node = node.get(step) if isinstance(node, dict) else None
        if node != value:
            return False
    return True


# -- realistic objects -------------------------------------------------------------


def stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def deployment(name: str, namespace: str, *, replicas: int = 3, ready: int = 3) -> dict[str, Any]:
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "uid": f"uid-{name}",
            "labels": labels,
            "creationTimestamp": "2026-10-01T00:00:00Z",
        },
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": name, "image": f"{name}:1"}]},
            },
        },
        "status": {
            "replicas": replicas,
            "readyReplicas": ready,
            "updatedReplicas": replicas,
            "availableReplicas": ready,
        },
    }


def replicaset(
    deploy: str, namespace: str, revision: int, created: datetime, image: str
) -> dict[str, Any]:
    name = f"{deploy}-{revision}abc"
    return {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "uid": f"uid-{name}",
            "labels": {"app": deploy},
            "creationTimestamp": stamp(created),
            "annotations": {"deployment.kubernetes.io/revision": str(revision)},
            "ownerReferences": [
                {
                    "apiVersion": "apps/v1",
                    "kind": "Deployment",
                    "name": deploy,
                    "uid": f"uid-{deploy}",
                    "controller": True,
                }
            ],
        },
        "spec": {
            "replicas": 3,
            "selector": {"matchLabels": {"app": deploy}},
            "template": {
                "metadata": {"labels": {"app": deploy}},
                "spec": {"containers": [{"name": deploy, "image": image}]},
            },
        },
        "status": {"replicas": 3},
    }


def oom_killed_pod(name: str = "api-7abc-x1", namespace: str = "shop") -> dict[str, Any]:
    """The pod every crash-loop test needs: ``api`` of ReplicaSet ``api-7abc``, OOM-killed 4 times."""
    return pod(
        name, namespace, "api-7abc", "api", restarts=4, last_reason="OOMKilled", exit_code=137
    )


def pod(
    name: str,
    namespace: str,
    owner_rs: str,
    app: str,
    *,
    restarts: int = 0,
    last_reason: str | None = None,
    exit_code: int | None = None,
    waiting: str | None = None,
    ready: bool = True,
    memory_limit: str = "256Mi",
) -> dict[str, Any]:
    container_status: dict[str, Any] = {
        "name": app,
        "ready": ready,
        "restartCount": restarts,
        "image": f"{app}:2",
        "imageID": "",
        "state": {"running": {"startedAt": "2026-11-22T02:58:00Z"}},
    }
    if waiting:
        container_status["state"] = {
            "waiting": {"reason": waiting, "message": "back-off restarting failed container"}
        }
    if last_reason:
        container_status["lastState"] = {
            "terminated": {
                "reason": last_reason,
                "exitCode": exit_code,
                "startedAt": "2026-11-22T02:55:00Z",
                "finishedAt": "2026-11-22T02:57:00Z",
            }
        }
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "uid": f"uid-{name}",
            "labels": {"app": app},
            "creationTimestamp": "2026-11-22T02:00:00Z",
            "ownerReferences": [
                {
                    "apiVersion": "apps/v1",
                    "kind": "ReplicaSet",
                    "name": owner_rs,
                    "uid": f"uid-{owner_rs}",
                    "controller": True,
                }
            ],
        },
        "spec": {
            "nodeName": "node-1",
            "containers": [
                {
                    "name": app,
                    "image": f"{app}:2",
                    "resources": {
                        "limits": {"memory": memory_limit, "cpu": "500m"},
                        "requests": {"memory": "128Mi", "cpu": "100m"},
                    },
                }
            ],
        },
        "status": {
            "phase": "Running",
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
            "containerStatuses": [container_status],
        },
    }


def event(
    namespace: str,
    obj_kind: str,
    obj_name: str,
    reason: str,
    message: str,
    *,
    count: int = 1,
    type_: str = "Warning",
    seen: datetime | None = None,
) -> dict[str, Any]:
    name = f"{obj_name}.{reason.lower()}{count}"
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": name, "namespace": namespace, "uid": f"uid-{name}"},
        "involvedObject": {"kind": obj_kind, "name": obj_name, "namespace": namespace},
        "reason": reason,
        "message": message,
        "type": type_,
        "count": count,
        "lastTimestamp": stamp(seen or datetime(2026, 11, 22, 2, 59, tzinfo=UTC)),
    }


def hpa(name: str, namespace: str, target: str, *, current: int, maximum: int) -> dict[str, Any]:
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": name, "namespace": namespace, "uid": f"uid-hpa-{name}"},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": target},
            "minReplicas": 2,
            "maxReplicas": maximum,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "target": {"type": "Utilization", "averageUtilization": 70},
                    },
                }
            ],
        },
        "status": {
            "currentReplicas": current,
            "desiredReplicas": maximum,
            "currentMetrics": [
                {
                    "type": "Resource",
                    "resource": {"name": "cpu", "current": {"averageUtilization": 96}},
                }
            ],
        },
    }


ALERT_START = datetime(2026, 11, 22, 3, 0, tzinfo=UTC)
ROLLOUT_AT = ALERT_START - timedelta(minutes=6)
