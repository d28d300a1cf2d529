"""Ask the blockers: firing alerts (Prometheus or Alertmanager HTTP API) and pods matching a
selector. Each answers with what blocks; an unreachable source blocks too (fail closed)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

from kubernetes.client.rest import ApiException

from runbooks.kube_target import KubeTarget
from runbooks.maintenance.blockers import (
    Alert,
    BlockerCheck,
    blocking_alerts,
    parse_alert_filter,
)
from runbooks.maintenance.params import Blockers
from tasks.kube import client as kube
from tasks.kube.retry import retrying

HTTP_TIMEOUT = 10


def _get_json(url: str) -> object:
    with urllib.request.urlopen(url, timeout=HTTP_TIMEOUT) as response:
        return json.load(response)


def prometheus_alerts(base_url: str) -> list[Alert]:
    body = _get_json(base_url.rstrip("/") + "/api/v1/alerts")
    data = body.get("data", {}) if isinstance(body, dict) else {}
    return [
        Alert(labels=a.get("labels", {}), state=a.get("state", "firing"))
        for a in data.get("alerts", [])
    ]


def alertmanager_alerts(base_url: str) -> list[Alert]:
    body = _get_json(
        base_url.rstrip("/") + "/api/v2/alerts?active=true&silenced=false&inhibited=false"
    )
    alerts = body if isinstance(body, list) else []
    return [
        Alert(labels=a.get("labels", {}), state=(a.get("status") or {}).get("state", "active"))
        for a in alerts
    ]


def check_alerts(source: str, url: str, settings: Blockers) -> BlockerCheck:
    name = f"{source} alerts"
    try:
        fetch = prometheus_alerts if source == "prometheus" else alertmanager_alerts
        alerts = fetch(url)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        return BlockerCheck(name=name, reasons=[f"cannot ask {url} ({exc}); failing closed"])
    matchers = parse_alert_filter(settings.alert_filter)
    found = blocking_alerts(alerts, matchers, settings.ignore_alerts)
    return BlockerCheck(name=name, reasons=[f"alert {a.describe()}" for a in found])


def check_pods(target: KubeTarget, selector: str) -> BlockerCheck:
    name = f"pods matching {selector!r}"
    try:
        pods = retrying(
            lambda: kube.core(target).list_pod_for_all_namespaces(label_selector=selector),
            "list blocking pods",
        ).items
    except ApiException as exc:
        return BlockerCheck(
            name=name, reasons=[f"cannot list pods (HTTP {exc.status}); failing closed"]
        )
    live = [p for p in pods if (p.status.phase if p.status else "") not in ("Succeeded", "Failed")]
    return BlockerCheck(
        name=name, reasons=[f"pod {p.metadata.namespace}/{p.metadata.name}" for p in live]
    )


def check_blockers(target: KubeTarget, settings: Blockers) -> list[BlockerCheck]:
    """Every configured blocker's answer (blocking or not), in a stable order."""
    checks = []
    if settings.prometheus_url:
        checks.append(check_alerts("prometheus", settings.prometheus_url, settings))
    if settings.alertmanager_url:
        checks.append(check_alerts("alertmanager", settings.alertmanager_url, settings))
    if settings.pod_selector:
        checks.append(check_pods(target, settings.pod_selector))
    return checks
