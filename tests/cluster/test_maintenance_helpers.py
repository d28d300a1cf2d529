"""Shared helpers for the maintenance cluster tests (no tests here)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from kubernetes import client, watch

from runbooks.kube_target import KubeTarget
from runbooks.maintenance.ownership import CORDONED_BY_ANNOTATION
from runbooks.maintenance.params import MaintenanceParams

RUNBOOK = str(Path(sys.executable).with_name("runbook"))


def params(cluster: Any, group: Any, **overrides: Any) -> MaintenanceParams:
    """Parameters aimed at this test's nodes, with a lease of its own and short timeouts."""
    base: dict[str, Any] = {
        "target": KubeTarget(kubeconfig=cluster.kubeconfig),
        "selector": group.selector,
        "drain_timeout": "60s",
        "ready_timeout": "30s",
        "lease": {"name": f"maint-{uuid.uuid4().hex[:8]}", "duration": "10s"},
    }
    base.update(overrides)
    return MaintenanceParams.model_validate(base)


def cli(cluster: Any, *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    """``runbook maintain ...`` as an operator runs it (no Prefect server: the local engine)."""
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    return subprocess.run(
        [RUNBOOK, "maintain", "--kubeconfig", str(cluster.kubeconfig), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        check=False,
    )


def node_state(cluster: Any, names: list[str]) -> dict[str, tuple[bool, str | None]]:
    """name -> (unschedulable, our cordoned-by annotation)."""
    out = {}
    for name in names:
        node = cluster.core.read_node(name)
        out[name] = (
            bool(node.spec.unschedulable),
            (node.metadata.annotations or {}).get(CORDONED_BY_ANNOTATION),
        )
    return out


def pod_uids(cluster: Any, namespace: str) -> dict[str, str]:
    return {
        p.metadata.name: p.metadata.uid for p in cluster.core.list_namespaced_pod(namespace).items
    }


def pods_on(cluster: Any, namespace: str, node: str) -> list[client.V1Pod]:
    return [
        p
        for p in cluster.core.list_namespaced_pod(namespace).items
        if p.spec.node_name == node and not p.metadata.deletion_timestamp
    ]


class UnschedulableWatcher:
    """Records, from a watch, which of the group's nodes are unschedulable over time."""

    def __init__(self, cluster: Any, selector: str) -> None:
        self.cluster = cluster
        self.selector = selector
        self.samples: list[tuple[float, frozenset[str]]] = []
        self._state: dict[str, bool] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> UnschedulableWatcher:
        listing = self.cluster.core.list_node(label_selector=self.selector)
        for n in listing.items:
            self._state[n.metadata.name] = bool(n.spec.unschedulable)
        self._record()
        self._version = listing.metadata.resource_version
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _record(self) -> None:
        out = frozenset(n for n, u in self._state.items() if u)
        self.samples.append((time.monotonic(), out))

    def _run(self) -> None:
        while not self._stop.is_set():
            stream = watch.Watch()
            for event in stream.stream(
                self.cluster.core.list_node,
                label_selector=self.selector,
                resource_version=self._version,
                timeout_seconds=1,
            ):
                node = event["object"]
                self._version = node.metadata.resource_version
                self._state[node.metadata.name] = bool(node.spec.unschedulable)
                self._record()
                if self._stop.is_set():
                    break

    @property
    def most_out_at_once(self) -> int:
        return max(len(s) for _, s in self.samples)

    @property
    def ever_out(self) -> set[str]:
        return set().union(*(s for _, s in self.samples))


def wait_for(predicate: Any, timeout: float = 30, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise TimeoutError(f"{what} not reached in {timeout:.0f}s")
