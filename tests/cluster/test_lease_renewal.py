"""Renewing the maintenance Lease through a real API outage: a run rides out an outage shorter
than the Lease (it keeps retrying, with backoff, until the API answers again), and one longer
than the Lease stops the run's changes by itself, before a competitor could take over."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
import yaml
from kubernetes import client

from runbooks.kube_target import KubeTarget
from runbooks.maintenance.params import LeaseSettings
from tasks.kube.lease import MaintenanceLease
from tests.cluster.test_maintenance_helpers import wait_for

pytestmark = pytest.mark.cluster
HOLDER = "rolling-node-maintenance run renewal-test (test@nowhere, pid 1)"


class Relay:
    """A TCP relay on 127.0.0.1 in front of the API server that can be cut: while cut, open
    connections are closed and new ones are closed as soon as they are accepted."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.down = False
        self._open: list[socket.socket] = []
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            if self.down:
                conn.close()
                continue
            try:
                up = socket.create_connection(self.upstream, timeout=5)
            except OSError:
                conn.close()
                continue
            with self._lock:
                self._open += [conn, up]
            for a, b in ((conn, up), (up, conn)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.close()

    def cut(self) -> None:
        self.down = True
        with self._lock:
            sockets, self._open = self._open, []
        for s in sockets:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                s.close()

    def restore(self) -> None:
        self.down = False

    def close(self) -> None:
        self.cut()
        self.server.close()


@pytest.fixture
def relayed(cluster: Any, tmp_path: Path) -> Iterator[tuple[Relay, KubeTarget]]:
    """A kubeconfig for the test cluster whose API address goes through a Relay."""
    kubeconfig = yaml.safe_load(Path(cluster.kubeconfig).read_text())
    server = urlparse(kubeconfig["clusters"][0]["cluster"]["server"])
    relay = Relay((server.hostname or "127.0.0.1", server.port or 443))
    kubeconfig["clusters"][0]["cluster"]["server"] = f"https://127.0.0.1:{relay.port}"
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(kubeconfig))
    try:
        yield relay, KubeTarget(kubeconfig=path)
    finally:
        relay.close()


def renew_time(cluster: Any, name: str) -> Any:
    lease = client.CoordinationV1Api(cluster.api).read_namespaced_lease(name, "kube-system")
    return lease.spec.renew_time


def test_renewal_rides_out_an_api_outage_shorter_than_the_lease(cluster, relayed):
    relay, target = relayed
    settings = LeaseSettings(name=f"maint-{uuid.uuid4().hex[:8]}", duration="30s")
    lease = MaintenanceLease(target, settings, HOLDER)  # renews every 10 s
    with lease.held():
        first = renew_time(cluster, settings.name)
        wait_for(lambda: renew_time(cluster, settings.name) != first, 15, "the first renewal")
        relay.cut()  # right after a renewal: the next two (at +10 s and +20 s) both fail
        time.sleep(21)
        assert lease.lost is None  # 21 s without the API is less than the 30 s Lease
        relay.restore()
        cut_at = renew_time(cluster, settings.name)
        wait_for(lambda: renew_time(cluster, settings.name) != cut_at, 6, "a renewal after it")
        assert lease.lost is None
    holder = client.CoordinationV1Api(cluster.api).read_namespaced_lease(
        settings.name, "kube-system"
    )
    assert holder.spec.holder_identity is None  # released at the end, through the relay


def test_an_api_outage_longer_than_the_lease_stops_changes_before_it_could_be_taken(
    cluster, node_group, relayed
):
    from tasks.kube.maintenance_steps import StepFailed, cordon_node

    (node,) = node_group(1).names
    direct = KubeTarget(kubeconfig=cluster.kubeconfig)  # the steps' own connection still works
    relay, target = relayed
    settings = LeaseSettings(name=f"maint-{uuid.uuid4().hex[:8]}", duration="6s")
    lease = MaintenanceLease(target, settings, HOLDER)  # renews every 2 s, through the relay
    with lease.held():
        first = renew_time(cluster, settings.name)
        wait_for(lambda: renew_time(cluster, settings.name) != first, 5, "the first renewal")
        relay.cut()
        time.sleep(6.0)  # the Lease's duration since its last renewal: another run may take it
        with pytest.raises(StepFailed, match="the maintenance Lease was lost"):
            cordon_node.fn(direct, node, "run-without-lease", None)
        assert "could not be renewed for 6s" in str(lease.lost)
        relay.restore()
    assert not cluster.core.read_node(node).spec.unschedulable  # no change without the Lease
