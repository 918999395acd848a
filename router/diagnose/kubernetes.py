"""The Kubernetes API (lightkube), read-only: the alert's pods, their events, logs, rollouts, HPA.

The workload comes from the check's params, rendered from the alert's labels:
``pod`` (its Deployment is found through ownerReferences), ``deployment``,
``statefulset``, ``daemonset`` or ``selector``, within the required ``namespace``.
Facts per check kind are documented in ``router.diagnose.kube_facts``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import httpx2
import yaml
from lightkube import ApiError, AsyncClient, KubeConfig
from lightkube.resources.apps_v1 import DaemonSet, Deployment, ReplicaSet, StatefulSet
from lightkube.resources.autoscaling_v2 import HorizontalPodAutoscaler
from lightkube.resources.core_v1 import Event, Pod, PodLog

from router.config import KubernetesSettings
from router.diagnose import kube_facts as facts_of
from router.diagnose.base import (
    AlertContext,
    Check,
    CheckOutcome,
    ProviderError,
    ProviderSettingsError,
    tls_failure,
)
from router.diagnose.catalog import KUBERNETES
from router.redact import Redactor
from router.triage import Evidence, Finding

NAME = KUBERNETES.title
MAX_PODS = 50
SERVICE_ACCOUNT = Path("/var/run/secrets/kubernetes.io/serviceaccount")
_WORKLOADS = {"deployment": Deployment, "statefulset": StatefulSet, "daemonset": DaemonSet}
# Label values become API paths: each must be a Kubernetes name (RFC 1123), never "../x".
_NAMED = ("namespace", "pod", "container", *_WORKLOADS)
_OBJECT_NAME = re.compile(r"[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?")


class KubernetesProvider:
    name = KUBERNETES.name
    kinds = KUBERNETES.kinds

    def __init__(
        self, config: KubeConfig, settings: KubernetesSettings, secrets: Iterable[str] = ()
    ) -> None:
        self.settings = settings
        self.redact = Redactor(secrets)
        single = config.get(settings.context)
        if single is not None and single.user and single.user.token:
            self.redact.add(single.user.token)
        self.client = AsyncClient(
            single or config, timeout=httpx2.Timeout(settings.timeout_seconds)
        )

    @classmethod
    def from_settings(
        cls, settings: KubernetesSettings, secrets: Iterable[str] = ()
    ) -> KubernetesProvider | None:
        """The provider, or None when disabled or when no kubeconfig or service account is found.

        Raises :class:`ProviderSettingsError` for a kubeconfig that cannot work.
        """
        config = load_kubeconfig(settings)
        return cls(config, settings, secrets) if config is not None else None

    async def run(self, check: Check, context: AlertContext) -> CheckOutcome:
        namespace = check.params.get("namespace")
        if not namespace:
            raise ProviderError(f"{NAME}: no namespace")
        for key in _NAMED:
            value = str(check.params.get(key) or "")
            if value and not _OBJECT_NAME.fullmatch(value):
                raise ProviderError(f"{NAME}: {key} {value[:60]!r} is not a Kubernetes name")
        try:
            return await getattr(self, f"_{check.kind}")(check.params, namespace, context)
        except ApiError as exc:
            status = exc.response.status_code if exc.response is not None else "?"
            raise ProviderError(
                self.redact(f"{NAME}: {status} {exc.status.reason or ''} ({exc.status.message})")
            ) from None
        except httpx2.TimeoutException:
            raise ProviderError(
                f"{NAME}: timed out after {self.settings.timeout_seconds:g} s"
            ) from None
        except httpx2.HTTPError as exc:
            reason = tls_failure(exc) or (
                "connection refused" if isinstance(exc, httpx2.ConnectError) else type(exc).__name__
            )
            raise ProviderError(self.redact(f"{NAME}: {reason}")) from None

    async def close(self) -> None:
        await self.client._client.close()  # lightkube's AsyncClient has no public close

    # -- the workload ---------------------------------------------------------------

    async def _workload_pods(self, params: dict[str, Any], namespace: str) -> list[dict[str, Any]]:
        if params.get("pod"):
            return [(await self.client.get(Pod, params["pod"], namespace=namespace)).to_dict()]
        labels = await self._selector(params, namespace)
        pods = []
        async for pod in self.client.list(Pod, namespace=namespace, labels=labels):
            pods.append(pod.to_dict())
            if len(pods) >= MAX_PODS:
                break
        return pods

    async def _selector(self, params: dict[str, Any], namespace: str) -> dict[str, str] | None:
        for kind, resource in _WORKLOADS.items():
            if params.get(kind):
                workload = await self.client.get(resource, params[kind], namespace=namespace)
                return dict(workload.spec.selector.matchLabels or {})
        if params.get("selector"):
            return dict(part.split("=", 1) for part in params["selector"].split(",") if "=" in part)
        return None

    async def _deployment_name(self, params: dict[str, Any], namespace: str) -> str | None:
        if params.get("deployment"):
            return params["deployment"]
        if not params.get("pod"):
            return None
        pod = await self.client.get(Pod, params["pod"], namespace=namespace)
        for owner in pod.metadata.ownerReferences or []:
            if owner.kind == "ReplicaSet":
                replicaset = await self.client.get(ReplicaSet, owner.name, namespace=namespace)
                for parent in replicaset.metadata.ownerReferences or []:
                    if parent.kind == "Deployment":
                        return parent.name
        return None

    # -- check kinds ----------------------------------------------------------------

    async def _pods(
        self, params: dict[str, Any], namespace: str, context: AlertContext
    ) -> CheckOutcome:
        pods = await self._workload_pods(params, namespace)
        facts = facts_of.pod_facts(pods)
        facts["deployment"] = await self._deployment_name(params, namespace)
        return CheckOutcome(_pod_findings(facts), facts, facts_of.workload_names(facts))

    async def _events(
        self, params: dict[str, Any], namespace: str, context: AlertContext
    ) -> CheckOutcome:
        names = {p["metadata"]["name"] for p in await self._workload_pods(params, namespace)}
        names |= {params[k] for k in ("deployment", "statefulset", "daemonset") if params.get(k)}
        events = [e.to_dict() async for e in self.client.list(Event, namespace=namespace)]
        related = [
            e for e in events if not names or e.get("involvedObject", {}).get("name") in names
        ]
        related.sort(key=lambda e: (e.get("type") != "Warning", _reverse_time(e)))
        related = related[: int(params.get("limit") or 20)]
        facts = facts_of.event_facts(related)
        rows = [
            [w["reason"] or "", w["object"], str(w["count"]), self.redact(w["message"][:120])]
            for w in facts["warnings"][:10]
        ]
        title = (
            f"{len(facts['warnings'])} warning event(s): "
            + ", ".join(sorted({w["reason"] or "" for w in facts["warnings"]}))
            if facts["warnings"]
            else "No warning events"
        )
        evidence = (
            [
                Evidence(
                    kind="table",
                    label="events",
                    columns=["reason", "object", "count", "message"],
                    rows=rows,
                )
            ]
            if rows
            else []
        )
        severity = "warning" if facts["warnings"] else "ok"
        return CheckOutcome(
            [Finding(title=title, source=self.name, severity=severity, evidence=evidence)], facts
        )

    async def _logs(
        self, params: dict[str, Any], namespace: str, context: AlertContext
    ) -> CheckOutcome:
        pods = facts_of.pod_facts(await self._workload_pods(params, namespace))["pods"]
        candidates = [
            (p["name"], c)
            for p in pods
            for c in p["containers"]
            if not params.get("container") or c["name"] == params["container"]
        ]
        if not candidates:
            raise ProviderError(f"{NAME}: no container to read logs from")
        pod, container = max(candidates, key=lambda pc: pc[1]["restart_count"])
        previous = bool(params.get("previous", True)) and container["restart_count"] > 0
        text = await self._log_text(pod, namespace, container["name"], previous)
        lines = [line for line in text.splitlines() if line.strip()]
        errors = [line[:300] for line in lines if facts_of.ERROR_WORDS.search(line)][-5:]
        facts = {
            "pod": pod,
            "container": container["name"],
            "previous": previous,
            "lines": len(lines),
            "error_lines": errors,
        }
        which = "previous (crashed) container" if previous else "current container"
        title = f"{pod}/{container['name']}: last {len(lines)} log lines of the {which}" + (
            f", {len(errors)} with errors" if errors else ""
        )
        evidence = [
            Evidence(
                kind="log",
                label=f"{pod}/{container['name']}",
                text=self.redact("\n".join(lines[-30:])),
            )
        ]
        return CheckOutcome([Finding(title=title, source=self.name, evidence=evidence)], facts)

    async def _log_text(self, pod: str, namespace: str, container: str, previous: bool) -> str:
        params = {
            "container": container,
            "previous": previous or None,
            "tailLines": self.settings.log_lines,
            "limitBytes": self.settings.log_bytes,
        }
        generic = self.client._client  # lightkube's log() cannot ask for the previous container
        request = generic.build_adapter_request(
            generic.prepare_request("get", PodLog, name=pod, namespace=namespace, params=params)
        )
        response = await generic.send(request)
        generic.raise_for_status(response)
        return response.text[: self.settings.log_bytes]

    async def _rollout(
        self, params: dict[str, Any], namespace: str, context: AlertContext
    ) -> CheckOutcome:
        name = await self._deployment_name(params, namespace)
        if not name:
            raise ProviderError(f"{NAME}: no deployment for this alert")
        deployment = (await self.client.get(Deployment, name, namespace=namespace)).to_dict()
        labels = deployment["spec"]["selector"].get("matchLabels")
        owned = [
            rs.to_dict()
            async for rs in self.client.list(ReplicaSet, namespace=namespace, labels=labels)
            if any(
                o.kind == "Deployment" and o.name == name for o in rs.metadata.ownerReferences or []
            )
        ]
        window = float(params.get("window_minutes") or 30)
        facts = facts_of.rollout_facts(deployment, owned, context.alert.startsAt, window)
        return CheckOutcome([_rollout_finding(facts)], facts, {"deployment": name})

    async def _hpa(
        self, params: dict[str, Any], namespace: str, context: AlertContext
    ) -> CheckOutcome:
        name = await self._deployment_name(params, namespace)
        found = None
        async for hpa in self.client.list(HorizontalPodAutoscaler, namespace=namespace):
            target = hpa.spec.scaleTargetRef
            if target.kind == "Deployment" and target.name == name:
                found = hpa.to_dict()
                break
        facts = facts_of.hpa_facts(found)
        if not facts["found"]:
            return CheckOutcome(
                [Finding(title=f"No HPA targets deployment {name}", source=self.name)], facts
            )
        title = (
            f"HPA {facts['name']}: {facts['current']} replicas (min {facts['min']}, max {facts['max']})"
            + (" — at its maximum" if facts["at_max"] else "")
        )
        return CheckOutcome(
            [
                Finding(
                    title=title,
                    source=self.name,
                    severity="critical" if facts["at_max"] else "info",
                )
            ],
            facts,
        )


def load_kubeconfig(settings: KubernetesSettings) -> KubeConfig | None:
    """The kubeconfig to use: the configured file, ``$KUBECONFIG``, ``~/.kube/config``, in-cluster.

    None when there is none and none is required; :class:`ProviderSettingsError` when the
    configured one is missing, unreadable or lacks the context, or when ``enabled: true``
    finds nothing.
    """
    if settings.enabled is False:
        return None
    at = ("diagnostics", "kubernetes", "kubeconfig")
    if settings.kubeconfig is not None and not settings.kubeconfig.is_file():
        raise ProviderSettingsError(at, f"no kubeconfig file at {settings.kubeconfig}")
    path = settings.kubeconfig or Path(
        os.environ.get("KUBECONFIG", Path.home() / ".kube" / "config")
    )
    if Path(path).is_file():
        config = _read_kubeconfig(Path(path), at)
    elif (SERVICE_ACCOUNT / "token").is_file():
        config = KubeConfig.from_service_account()
    elif settings.enabled:
        raise ProviderSettingsError(
            ("diagnostics", "kubernetes", "enabled"),
            f"Kubernetes diagnostics enabled but no kubeconfig at {path} and no service account",
        )
    else:
        return None
    _check_context(config, settings.context, path)
    return config


def _read_kubeconfig(path: Path, at: tuple[str, ...]) -> KubeConfig:
    try:
        config = KubeConfig.from_file(path)
    except OSError as exc:
        raise ProviderSettingsError(
            at, f"cannot read the kubeconfig {path} ({exc.strerror})"
        ) from None
    except yaml.MarkedYAMLError as exc:  # its text would quote the line, maybe a token
        where = f"line {exc.problem_mark.line + 1}: " if exc.problem_mark else ""
        raise ProviderSettingsError(
            at, f"{path} is not a valid kubeconfig ({where}{exc.problem or 'invalid YAML'})"
        ) from None
    except Exception as exc:  # lightkube's and msgspec's errors name keys, never values
        raise ProviderSettingsError(at, f"{path} is not a valid kubeconfig ({exc})") from None
    for name, cluster in config.clusters.items():
        ca_file = cluster.certificate_auth
        if ca_file and not os.access(path.parent / ca_file, os.R_OK):
            raise ProviderSettingsError(
                at, f"{path}: cluster {name}: cannot read the CA file {ca_file}"
            )
    return config


def _check_context(config: KubeConfig, context: str | None, path: Path | str) -> None:
    if context is None and config.current_context is None:
        raise ProviderSettingsError(
            ("diagnostics", "kubernetes", "kubeconfig"),
            f"{path} has no current-context: set diagnostics.kubernetes.context",
        )
    if context is not None and context not in config.contexts:
        known = ", ".join(sorted(config.contexts)) or "none"
        raise ProviderSettingsError(
            ("diagnostics", "kubernetes", "context"),
            f"no context {context!r} in {path} (it has: {known})",
        )


def _reverse_time(event: dict[str, Any]) -> str:
    stamp = event.get("lastTimestamp") or event.get("eventTime") or ""
    return "".join(chr(0x10FFFF - ord(c)) for c in stamp)  # newest first within a group


def _pod_findings(facts: dict[str, Any]) -> list[Finding]:
    findings = []
    for pod in facts["pods"]:
        for c in pod["containers"]:
            if c["last_termination_reason"] or c["waiting_reason"] or c["restart_count"]:
                what = c["last_termination_reason"] or c["waiting_reason"] or "restarting"
                exit_code = (
                    f" (exit {c['last_exit_code']})" if c["last_exit_code"] is not None else ""
                )
                limit = (
                    f", memory limit {c['limits']['memory']}" if c["limits"].get("memory") else ""
                )
                title = f"{pod['name']}/{c['name']}: {what}{exit_code}, {c['restart_count']} restarts{limit}"
                severity = "critical" if what == "OOMKilled" or c["waiting_reason"] else "warning"
                findings.append(Finding(title=title, source="kubernetes", severity=severity))
    rows = [
        [
            p["name"],
            p["phase"] or "",
            "yes" if p["ready"] else "no",
            str(p["restarts"]),
            p["node"] or "",
        ]
        for p in facts["pods"][:10]
    ]
    table = Evidence(
        kind="table", label="pods", columns=["pod", "phase", "ready", "restarts", "node"], rows=rows
    )
    summary = f"{len(facts['pods'])} pod(s), {len(facts['not_ready'])} not ready, {facts['max_restarts']} restarts at most"
    return [*findings, Finding(title=summary, source="kubernetes", evidence=[table])]


def _rollout_finding(facts: dict[str, Any]) -> Finding:
    if facts["minutes_before_alert"] is None:
        return Finding(
            title=f"Deployment {facts['deployment']}: no rollout since it was created",
            source="kubernetes",
        )
    images = facts["images"]
    change = (
        f" (image {', '.join(images['current'])} ← {', '.join(images['previous'])})"
        if facts["image_changed"]
        else ""
    )
    minutes = facts["minutes_before_alert"]
    when = (
        f"{minutes:.0f} min before the alert started"
        if minutes >= 0
        else f"{-minutes:.0f} min after the alert started"
    )
    title = f"Rollout of {facts['deployment']} to revision {facts['revision']}{change} {when}"
    return Finding(
        title=title, source="kubernetes", severity="warning" if facts["within_window"] else "info"
    )
