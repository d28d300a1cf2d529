"""The backup check's demo: Velero objects on the local cluster, judged by `runbook backup-check`.

After ``runbook cluster up`` (reads KUBECONFIG like kubectl):
``.venv/bin/python -m runbooks.cluster.backup_demo``. Installs Velero's CRDs, writes a healthy
storage location and schedule with yesterday's good backup and today's failed one (as Velero's
controllers would), and runs the check: it names the failed backup and exits 1.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from kubernetes import client
from kubernetes.client.rest import ApiException

from runbooks.cluster import workloads
from runbooks.cluster.velero import backup_status, install_velero_crds, rfc3339, write
from runbooks.kube_client import client_for_kubeconfig

NAMESPACE = "velero"
SCHEDULE_LABEL = {"velero.io/schedule-name": "daily"}


def seed(api: client.ApiClient) -> None:
    """Velero's objects, unless they exist."""
    workloads.ensure_namespace(api, NAMESPACE)
    objects: list[tuple[str, str, dict[str, Any], dict[str, Any], dict[str, str] | None]] = [
        (
            "BackupStorageLocation",
            "default",
            {"provider": "aws", "default": True, "accessMode": "ReadWrite"},
            {"phase": "Available", "lastValidationTime": rfc3339(0.01)},
            None,
        ),
        (
            "Schedule",
            "daily",
            {"schedule": "0 2 * * *", "template": {"ttl": "720h0m0s"}},
            {"phase": "Enabled", "lastBackup": rfc3339(5)},
            None,
        ),
        (
            "Backup",
            "daily-yesterday",
            {"includedNamespaces": ["shop"], "ttl": "720h0m0s"},
            backup_status("Completed", 11),
            SCHEDULE_LABEL,
        ),
        (
            "Backup",
            "daily-today",
            {"includedNamespaces": ["shop"], "ttl": "720h0m0s"},
            backup_status("Failed", 5, failureReason="object storage unreachable"),
            SCHEDULE_LABEL,
        ),
    ]
    for kind, name, spec, status, labels in objects:
        try:
            write(api, NAMESPACE, kind, name, spec, status, labels)
        except ApiException as exc:
            if exc.status != 409:
                raise


def main() -> int:
    api = client_for_kubeconfig(os.environ.get("KUBECONFIG"))
    install_velero_crds(api)
    seed(api)
    check = ["backup-check", "--velero-namespace", NAMESPACE]
    print(f"$ runbook {' '.join(check)}", flush=True)
    runbook = Path(sys.executable).with_name("runbook")
    return subprocess.run([str(runbook), *check], check=False).returncode


if __name__ == "__main__":
    sys.exit(main())
