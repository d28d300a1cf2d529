"""The README's demo: sample workloads on the local cluster, rolled through `runbook maintain`.

Run by ``scripts/demo`` after ``runbook cluster up``; reads KUBECONFIG like kubectl.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

from kubernetes import client
from kubernetes.client.rest import ApiException

from runbooks.cluster import workloads
from runbooks.kube_client import client_for_kubeconfig

NAMESPACE = "shop"


def seed(api: client.ApiClient) -> None:
    """Create the sample workloads unless they exist: what a drain has to be careful with."""
    workloads.ensure_namespace(api, NAMESPACE)
    creators = [
        lambda: workloads.create_deployment(api, NAMESPACE, "web", replicas=6, max_unavailable=1),
        lambda: workloads.create_deployment(api, NAMESPACE, "api", replicas=3, min_available=2),
        lambda: workloads.create_statefulset(api, NAMESPACE, "db", replicas=3),
        lambda: workloads.create_daemonset(api, NAMESPACE, "node-agent"),
    ]
    for create in creators:
        try:
            create()
        except ApiException as exc:
            if exc.status != 409:
                raise


def show(api: client.ApiClient) -> None:
    core = client.CoreV1Api(api)
    by_node: dict[str, list[str]] = defaultdict(list)
    for pod in core.list_namespaced_pod(NAMESPACE).items:
        by_node[pod.spec.node_name or "(pending)"].append(pod.metadata.name)
    for node in core.list_node().items:
        ready = any(c.type == "Ready" and c.status == "True" for c in node.status.conditions or [])
        flags = "Ready" if ready else "NotReady"
        if node.spec.unschedulable:
            flags += ",SchedulingDisabled"
        pods = sorted(by_node.get(node.metadata.name, []))
        print(f"{node.metadata.name:<12} {flags:<28} {len(pods):>2} pods  {' '.join(pods)}")


def main() -> int:
    api = client_for_kubeconfig(os.environ.get("KUBECONFIG"))
    seed(api)
    nodes = len(client.CoreV1Api(api).list_node().items)
    workloads.wait_pods_ready(api, NAMESPACE, expected=6 + 3 + 3 + nodes, timeout=120)
    print("Sample workloads on the local cluster (namespace shop):")
    show(api)
    maintain = ["maintain", "--selector", "type=kwok", "--max-unavailable", "1", "--action", "none"]
    print(f"\n$ runbook {' '.join(maintain)}", flush=True)
    runbook = Path(sys.executable).with_name("runbook")
    code = subprocess.run([str(runbook), *maintain], check=False).returncode
    print("\nAfter the rolling maintenance (every node drained, then uncordoned):")
    show(api)
    if code:
        return code
    print(f"\nKUBECONFIG={os.environ.get('KUBECONFIG')}")
    print("Stop the cluster with: .venv/bin/runbook cluster down --name demo")
    return 0


if __name__ == "__main__":
    sys.exit(main())
