"""Velero's CustomResourceDefinitions on the local cluster, and objects written as Velero would.

Velero does not run on the local cluster. Tests and the backup demo install its velero.io/v1
CRDs (runbooks/backups/crds/velero.yaml) and write storage locations, schedules and backups with
the status Velero's controllers would give them, so `runbook backup-check` reads them for real.
"""

from __future__ import annotations

import datetime as dt
import time
from importlib import resources
from typing import Any

import yaml
from kubernetes import client
from kubernetes.client.rest import ApiException

GROUP, VERSION = "velero.io", "v1"


def crd_documents() -> list[dict[str, Any]]:
    text = resources.files("runbooks.backups").joinpath("crds/velero.yaml").read_text()
    return [d for d in yaml.safe_load_all(text) if d]


def install_velero_crds(api: client.ApiClient, timeout: float = 30) -> None:
    """Create the CRDs unless they exist, and wait until the API serves velero.io/v1."""
    ext = client.ApiextensionsV1Api(api)
    for body in crd_documents():
        try:
            ext.create_custom_resource_definition(body)
        except ApiException as exc:
            if exc.status != 409:
                raise
    custom = client.CustomObjectsApi(api)
    deadline = time.monotonic() + timeout
    while True:
        try:
            for plural in ("backups", "schedules", "backupstoragelocations", "restores"):
                custom.list_cluster_custom_object(GROUP, VERSION, plural, limit=1)
            return
        except ApiException:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def rfc3339(hours_ago: float) -> str:
    when = dt.datetime.now(dt.UTC) - dt.timedelta(hours=hours_ago)
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def write(
    api: client.ApiClient,
    namespace: str,
    kind: str,
    name: str,
    spec: dict[str, Any],
    status: dict[str, Any],
    labels: dict[str, str] | None = None,
) -> dict[str, Any]:
    """One velero.io/v1 object with its status (not a subresource: one write, as Velero does)."""
    plural = {"BackupStorageLocation": "backupstoragelocations"}.get(kind, kind.lower() + "s")
    body = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": kind,
        "metadata": {"name": name, "namespace": namespace, "labels": labels or {}},
        "spec": spec,
        "status": status,
    }
    return dict(
        client.CustomObjectsApi(api).create_namespaced_custom_object(
            GROUP, VERSION, namespace, plural, body
        )
    )


def backup_status(phase: str, hours_ago: float, **extra: Any) -> dict[str, Any]:
    """A Backup's status as Velero writes it when the backup reaches ``phase``."""
    status: dict[str, Any] = {"phase": phase, "startTimestamp": rfc3339(hours_ago)}
    status |= {"version": 1, "errors": 0, "warnings": 0}
    if phase in ("Completed", "PartiallyFailed", "Failed"):
        status |= {
            "completionTimestamp": rfc3339(hours_ago - 0.1),
            "expiration": rfc3339(hours_ago - 720),  # Velero's default TTL, 720h
            "progress": {"totalItems": 42, "itemsBackedUp": 42},
        }
    return status | extra
