"""Velero through the Kubernetes API: read its objects, and drill a restore into scratch namespaces.

One LIST per kind (locations, schedules, backups) in Velero's namespace. velero.io/v1 not served
means Velero is not installed (its checks skip); any other failure is carried as the facts'
``error`` so the checks report it instead of the run dying.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from kubernetes import client, watch
from kubernetes.client.rest import ApiException
from prefect import task
from prefect.cache_policies import NO_CACHE

from runbooks.backups import velero_objects
from runbooks.backups.facts import Backup, Drill, Velero, timestamp
from runbooks.kube_target import KubeTarget
from tasks.audit import record
from tasks.kube.client import api_client

GROUP, VERSION = "velero.io", "v1"
DRILL_LABEL = "kube-runbooks.io/restore-drill"
RESTORE_DONE = ("Completed", "PartiallyFailed", "Failed", "FailedValidation")


def _custom(target: KubeTarget) -> client.CustomObjectsApi:
    return client.CustomObjectsApi(api_client(target))


def _list(api: client.CustomObjectsApi, namespace: str, plural: str) -> list[dict[str, Any]]:
    answer = api.list_namespaced_custom_object(GROUP, VERSION, namespace, plural)
    return list(answer.get("items", []))


def _reason(exc: BaseException) -> str:
    if isinstance(exc, ApiException):
        return f"HTTP {exc.status} {exc.reason}"
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


@task(task_run_name="read Velero objects in {namespace}", cache_policy=NO_CACHE)
def read_velero(target: KubeTarget, namespace: str) -> Velero:
    """Velero's storage locations, schedules and backups in ``namespace``."""
    api = _custom(target)
    try:
        raw = {p: _list(api, namespace, p) for p in ("backupstoragelocations", "schedules")}
        raw["backups"] = _list(api, namespace, "backups")
    except ApiException as exc:
        if exc.status == 404:
            return Velero(namespace=namespace, served=False)
        return Velero(namespace=namespace, error=f"cannot list Velero objects: {_reason(exc)}")
    except Exception as exc:
        return Velero(namespace=namespace, error=f"cannot list Velero objects: {_reason(exc)}")
    return Velero(
        namespace=namespace,
        locations=[velero_objects.storage_location(o) for o in raw["backupstoragelocations"]],
        schedules=[velero_objects.schedule(o) for o in raw["schedules"]],
        backups=[velero_objects.backup(o) for o in raw["backups"]],
    )


def drill_namespace(source: str) -> str:
    """Where a drill restores ``source``: never the namespace itself (at most 63 characters)."""
    return f"drill-{source}"[:63].rstrip("-")


@task(task_run_name="restore drill of {backup.name}", cache_policy=NO_CACHE)
def velero_restore_drill(
    target: KubeTarget, namespace: str, backup: Backup, timeout: float, run_id: str
) -> Drill:
    """Create a Restore of ``backup`` mapping each of its namespaces to a scratch one, wait for
    a final phase (Velero's controller writes it), and report it with the measured time."""
    sources = [n for n in backup.included_namespaces if n != "*"]
    if not sources:
        return Drill(
            source=backup.name,
            ok=False,
            evidence=[
                f"backup {backup.name} covers all namespaces: a drill needs the namespaces "
                "listed (spec.includedNamespaces) to map them to scratch ones"
            ],
        )
    mapping = {n: drill_namespace(n) for n in sources}
    name = f"{backup.name[:200]}-drill-{uuid.uuid4().hex[:6]}"
    body = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Restore",
        "metadata": {"name": name, "namespace": namespace, "labels": {DRILL_LABEL: run_id[:63]}},
        "spec": {
            "backupName": backup.name,
            "includedNamespaces": sources,
            "namespaceMapping": mapping,
        },
    }
    api = _custom(target)
    started = time.monotonic()
    where = f"{namespace}/{name}"
    details = {"backup": backup.name, "namespace_mapping": mapping}
    intent = record("restore.create", where, target_kind="restore", phase="intent", details=details)
    try:
        api.create_namespaced_custom_object(GROUP, VERSION, namespace, "restores", body)
    except Exception as exc:
        record(
            "restore.create",
            where,
            target_kind="restore",
            phase="outcome",
            outcome="failed",
            intent_id=intent,
            details={**details, "error": _reason(exc)},
        )
        raise
    record(
        "restore.create",
        where,
        target_kind="restore",
        phase="outcome",
        outcome="created",
        intent_id=intent,
        details=details,
    )
    status = _await_final_phase(api, namespace, name, timeout)
    seconds = time.monotonic() - started
    phase = status.get("phase") or ""
    mapped = ", ".join(f"{k} -> {v}" for k, v in mapping.items())
    evidence = [f"Restore {namespace}/{name} of {backup.name} ({mapped}): {phase or 'no phase'}"]
    if phase not in RESTORE_DONE:
        evidence.append(f"no final phase within {timeout:.0f}s: is Velero running?")
        return Drill(source=backup.name, ok=False, evidence=evidence)
    detail = [f"{status.get('errors', 0)} errors", f"{status.get('warnings', 0)} warnings"]
    why = status.get("failureReason") or "; ".join(status.get("validationErrors") or [])
    evidence.append(", ".join(detail) + (f": {why}" if why else ""))
    began, ended = (
        timestamp(status.get("startTimestamp")),
        timestamp(status.get("completionTimestamp")),
    )
    if began and ended:
        seconds = (ended - began).total_seconds()
    return Drill(
        source=backup.name,
        ok=phase == "Completed" and not status.get("errors"),
        evidence=evidence,
        seconds=seconds,
    )


def _await_final_phase(
    api: client.CustomObjectsApi, namespace: str, name: str, timeout: float
) -> dict[str, Any]:
    """The Restore's status once its phase is final, watched (not polled); the last seen status
    when the time is up."""
    deadline = time.monotonic() + timeout
    status: dict[str, Any] = {}
    while time.monotonic() < deadline:
        current = api.get_namespaced_custom_object(GROUP, VERSION, namespace, "restores", name)
        status = current.get("status") or {}
        if status.get("phase") in RESTORE_DONE:
            return status
        remaining = max(1, int(deadline - time.monotonic()))
        stream = watch.Watch().stream(
            api.list_namespaced_custom_object,
            GROUP,
            VERSION,
            namespace,
            "restores",
            field_selector=f"metadata.name={name}",
            resource_version=current["metadata"]["resourceVersion"],
            timeout_seconds=min(remaining, 30),
        )
        for event in stream:
            status = (event["object"].get("status") or {}) if isinstance(event, dict) else {}
            if status.get("phase") in RESTORE_DONE:
                return status
    return status
