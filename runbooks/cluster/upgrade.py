"""Upgrade the local cluster's control plane in place, one component at a time.

The order is the one Kubernetes' version-skew policy asks for: kube-apiserver first, then
kube-controller-manager, then kube-scheduler, each on the new binaries against the same etcd
data and waited for (/readyz, /healthz) before the next. etcd and KWOK keep running: the same
etcd 3.6 serves both versions, and KWOK's nodes are upgraded by the node phase
(``runbook cluster node N --kubelet-version vX --reboot``).
"""

from __future__ import annotations

import time
from functools import partial

from runbooks.cluster import launcher
from runbooks.cluster.binaries import (
    UnsupportedVersion,
    check_kubernetes_version,
    ensure_binaries,
    minor_version,
)

CONTROL_PLANE = ("kube-apiserver", "kube-controller-manager", "kube-scheduler")
# After SIGTERM the old kube-apiserver stops its controllers at once but then holds on to the
# open watches of KCM, scheduler and KWOK (still running after 14 s, measured): SIGKILL it after
# a short grace. Nothing is lost: every write it acknowledged is already in etcd.
STOP_GRACE = {"kube-apiserver": 3.0}


class ClusterNotRunning(launcher.ClusterError, ValueError):
    """No such cluster, or its etcd is down: nothing to upgrade (the user's mistake, exit 2)."""


def upgrade_control_plane(
    name: str, version: str, timeout: float = 120, stop_with_caller: bool = False
) -> list[str]:
    """Restart the control plane of cluster ``name`` on Kubernetes ``version``.

    Returns one line per component restarted; a component already running the target binary is
    left alone, so a second call returns []. ``stop_with_caller``: tie the new processes to this
    process, as ``launcher.up(stop_with_caller=True)`` does for a test session's cluster.
    """
    check_kubernetes_version(version)
    record = launcher.load_record(name)
    # etcd holds the cluster; the control plane itself may be partly down after an interrupted
    # upgrade, which this call then finishes.
    if record is None or not launcher.running_components(record).get("etcd", False):
        raise ClusterNotRunning(
            f"cluster {name!r} is not running; start it with `runbook cluster up --name {name}`"
        )
    if minor_version(version) < minor_version(record.kubernetes_version):
        raise UnsupportedVersion(
            f"cluster {name!r} runs {record.kubernetes_version}: a control plane is not "
            f"downgraded to {version} (objects may already be stored in the newer version)"
        )
    binaries = ensure_binaries(version)
    if record.ports.controller_manager is None or record.ports.scheduler is None:
        # A record from before KCM/scheduler had a health port: give them one now.
        record.ports.controller_manager = record.ports.controller_manager or launcher.free_port()
        record.ports.scheduler = record.ports.scheduler or launcher.free_port()
    argv = launcher.command_lines(record, binaries)
    logs = record.directory / "logs"
    done: list[str] = []
    alive = launcher.running_components(record)
    for component in CONTROL_PLANE:
        target = binaries.path(component)
        if record.exe(component) == target and alive.get(component, False):
            continue
        old_pid, started = record.pids.get(component), time.monotonic()
        launcher.stop_component(record, component, grace=STOP_GRACE.get(component, 10.0))
        stopped = time.monotonic() - started
        launcher.start_component(record, component, argv[component], stop_with_caller)
        if component == "kube-apiserver":
            launcher.wait_for(
                "kube-apiserver /readyz", lambda: launcher.apiserver_ready(record), timeout, logs
            )
            # /version now says the new version: so does the record (and a retry after an
            # interruption cannot "downgrade" the apiserver back).
            record.kubernetes_version = version
            launcher.save_record(record)
        else:
            launcher.wait_for(
                f"{component} /healthz",
                partial(launcher.component_healthy, record, component),
                timeout,
                logs / f"{component}.log",
            )
        line = (
            f"{component}: pid {old_pid} -> {record.pids[component]} on {version} "
            f"(stop {stopped:.1f}s, ready {time.monotonic() - started - stopped:.1f}s)"
        )
        launcher.log(line)
        done.append(line)
    if done or record.kubernetes_version != version:
        record.kubernetes_version = version
        record.binaries = binaries.root
        launcher.save_record(record)
    return done
