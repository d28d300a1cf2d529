"""Who carries out an upgrade: the local cluster itself, or the operator's commands.

A provider answers four things and nothing else: take an etcd snapshot before the control
plane is touched, upgrade the control plane to a version, and the maintenance action that
upgrades one drained node in place (the rolling-maintenance engine runs it, so drain, Ready and
uncordon stay the engine's). Reading where the cluster stands is not a provider's business
(``tasks.upgrade_state``): the API server and the Nodes say it the same way for every provider.

- ``local``: the runbook's local cluster (``runbook cluster up``): etcd snapshot through the
  local etcd, the control plane restarted on the target's binaries, KWOK kubelets that report
  the new version after a simulated reboot.
- ``command``: argv templates (never a shell) with {node} and {version}: kubeadm over ssh, a
  managed cluster's CLI. Their output is kept for the report; after the control-plane commands
  the provider waits for the API server to report the new version and /readyz.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from runbooks.cluster.launcher import ClusterRecord, load_record
from runbooks.kit.durations import format_duration
from runbooks.maintenance.params import MaintenanceAction
from runbooks.settings import get_settings
from runbooks.upgrade.params import UpgradeParams, fill
from tasks.etcd import save_snapshot
from tasks.maintenance_action import run_command
from tasks.upgrade_state import api_server_ready, api_server_version, control_plane_nodes


class ProviderError(RuntimeError):
    """The provider could not do the step; the message says which command or component."""


class UnknownLocalCluster(ValueError):
    """The local provider cannot tell which local cluster the kubeconfig belongs to (exit 2)."""


@dataclass
class StepOutput:
    """What a provider step did, for the report and the audit trail."""

    summary: str
    output: list[str] = field(default_factory=list)


class UpgradeProvider(Protocol):
    name: str

    def snapshot(self, run_id: str) -> StepOutput | None: ...

    def upgrade_control_plane(self, version: str) -> StepOutput: ...

    def node_action(self, version: str) -> MaintenanceAction: ...


def local_cluster_name(params: UpgradeParams) -> str:
    """--local-cluster, else the <name> of a kubeconfig at $RUNBOOK_STATE_DIR/clusters/<name>/."""
    if params.local_cluster:
        return params.local_cluster
    clusters = (get_settings().state_dir / "clusters").resolve()
    kubeconfig = params.target.kubeconfig
    if kubeconfig is not None:
        path = Path(kubeconfig).expanduser().resolve()
        if path.parent.parent == clusters:
            return path.parent.name
    raise UnknownLocalCluster(
        f"provider local: kubeconfig {kubeconfig or '(default)'} is not a local cluster's "
        f"(expected {clusters}/<name>/kubeconfig); give --local-cluster NAME or --provider command"
    )


class LocalProvider:
    """The local cluster: snapshot from its etcd, restart on new binaries, KWOK kubelets."""

    name = "local"

    def __init__(self, params: UpgradeParams) -> None:
        self.params = params
        self.cluster = local_cluster_name(params)

    def _record(self) -> ClusterRecord:
        record = load_record(self.cluster)
        if record is None:
            raise ProviderError(f"no local cluster {self.cluster!r} (runbook cluster up)")
        return record

    def snapshot(self, run_id: str) -> StepOutput:
        record = self._record()
        directory = record.directory / "snapshots"
        directory.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        path = directory / f"pre-upgrade-{self.params.to}-{stamp}.db"
        save_snapshot(f"http://127.0.0.1:{record.ports.etcd_client}", path)
        return StepOutput(f"etcd snapshot {path} ({path.stat().st_size} bytes)")

    def upgrade_control_plane(self, version: str) -> StepOutput:
        from runbooks.cluster.upgrade import upgrade_control_plane

        restarted = upgrade_control_plane(self.cluster, version)
        what = "restarted" if restarted else "already ran"
        return StepOutput(
            f"local cluster {self.cluster}: control plane {what} on {version}", restarted
        )

    def node_action(self, version: str) -> MaintenanceAction:
        return MaintenanceAction(
            kind="kubelet-version",
            kubelet_version=version,
            reboots=True,
            timeout=self.params.command_timeout,
        )


class CommandProvider:
    """The operator's argv templates, run here without a shell."""

    name = "command"

    def __init__(self, params: UpgradeParams) -> None:
        self.params = params
        self.timeout = params.command_timeout.total_seconds()

    def snapshot(self, run_id: str) -> StepOutput | None:
        if not self.params.snapshot_command:
            return None
        argv = fill(self.params.snapshot_command, "", self.params.to)
        return StepOutput(f"ran {' '.join(argv)}", [run_command(argv, self.timeout)])

    def upgrade_control_plane(self, version: str) -> StepOutput:
        """The command once per control-plane Node ({node}; once with {node} empty where the
        cluster shows none, as managed clusters do), then wait for the API server."""
        template = self.params.control_plane_command or ""
        nodes = control_plane_nodes(self.params.target) or [""]
        outputs = []
        for node in nodes:
            argv = fill(template, node, version)
            try:
                outputs.append(run_command(argv, self.timeout))
            except RuntimeError as exc:
                raise ProviderError(f"control plane{f' on {node}' if node else ''}: {exc}") from exc
        waited = wait_for_api_server(self.params, version, self.timeout)
        where = ", ".join(n for n in nodes if n) or "the control plane"
        return StepOutput(
            f"ran {template!r} for {where}; API server at {version}, /readyz ok after "
            f"{format_duration(waited)}",
            outputs,
        )

    def node_action(self, version: str) -> MaintenanceAction:
        command = (self.params.node_command or "").replace("{version}", version)
        return MaintenanceAction(
            kind="command", command=command, timeout=self.params.command_timeout
        )


def wait_for_api_server(params: UpgradeParams, version: str, timeout: float) -> float:
    """Until the API server reports ``version`` and /readyz answers ok; seconds waited."""
    began = time.monotonic()
    seen = "no answer"
    while True:
        try:
            seen = api_server_version(params.target)
            if seen == version and api_server_ready(params.target):
                return time.monotonic() - began
        except Exception as exc:  # restarting: connection refused, 503, ...
            seen = f"no answer ({type(exc).__name__})"
        if time.monotonic() - began > timeout:
            raise ProviderError(
                f"the API server did not report {version} with /readyz ok within "
                f"{format_duration(timeout)} (last: {seen})"
            )
        time.sleep(2)


def snapshot_plan(params: UpgradeParams) -> str | None:
    """How this run will take its etcd snapshot before the control plane, or None."""
    if params.provider == "local":
        return "local provider: etcd snapshot through the local cluster's etcd"
    if params.snapshot_command:
        return f"snapshot-command {params.snapshot_command!r}"
    return None


def provider_for(params: UpgradeParams) -> UpgradeProvider:
    return LocalProvider(params) if params.provider == "local" else CommandProvider(params)
