"""``runbook cluster``: the local control plane for development, demos and tests."""

from __future__ import annotations

import json
import re
import shlex
from typing import Annotated

import typer

from runbooks.cli.errors import UserError, reported_errors
from runbooks.cluster import launcher, nodes
from runbooks.cluster.binaries import (
    DEFAULT_KUBERNETES_VERSION,
    SUPPORTED_KUBERNETES_VERSIONS,
    BuildError,
    UnsupportedVersion,
    ensure_binaries,
)

app = typer.Typer(
    help="Run a local Kubernetes control plane (etcd, apiserver, KCM, scheduler, KWOK)."
)

_CLUSTER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")


def _cluster_name(value: str) -> str:
    """The name becomes a directory under the state dir: no '/', no '..', no spaces."""
    if not _CLUSTER_NAME.match(value):
        raise typer.BadParameter(
            f"{value!r} is not a cluster name (letters, digits, '-', '_', '.', starting with a "
            "letter or digit, at most 63)"
        )
    return value


NameOption = Annotated[
    str,
    typer.Option("--name", help="Cluster name; several can run at once.", callback=_cluster_name),
]
# OSError: a state dir that cannot hold the cluster (a file in the path, no permission).
# UnsupportedVersion and VersionMismatch are ValueErrors: exit 2, nothing changed.
_FAILURES = (launcher.ClusterError, BuildError, UnsupportedVersion, TimeoutError, OSError)
_VERSIONS = ", ".join(SUPPORTED_KUBERNETES_VERSIONS)


@app.command()
def build(
    kubernetes_version: Annotated[
        str, typer.Option(help=f"Kubernetes version to build ({_VERSIONS}).")
    ] = DEFAULT_KUBERNETES_VERSION,
) -> None:
    """Build (or find in the cache) the control-plane binaries; prints the cache directory."""
    with reported_errors(*_FAILURES):
        typer.echo(ensure_binaries(kubernetes_version).root)


@app.command()
def up(
    nodes_count: Annotated[int, typer.Option("--nodes", min=1, max=500, help="KWOK nodes.")] = 3,
    name: NameOption = "local",
    kubernetes_version: Annotated[
        str | None,
        typer.Option(
            help=f"Control-plane version ({_VERSIONS}; default {DEFAULT_KUBERNETES_VERSION}). "
            "A running cluster is reused only if it runs this version."
        ),
    ] = None,
) -> None:
    """Start the cluster (or reuse a running one). Stdout is only `export KUBECONFIG=...`,
    so `eval "$(runbook cluster up)"` works."""
    with reported_errors(*_FAILURES):
        record = launcher.up(name=name, nodes=nodes_count, kubernetes_version=kubernetes_version)
    typer.echo(f"export KUBECONFIG={shlex.quote(str(record.kubeconfig))}")


@app.command()
def upgrade(
    kubernetes_version: Annotated[
        str, typer.Option(help=f"Target control-plane version ({_VERSIONS}).")
    ],
    name: NameOption = "local",
) -> None:
    """Restart kube-apiserver, then kube-controller-manager, then kube-scheduler on the target
    version's binaries against the same etcd data, each ready before the next. Components
    already on the target are left alone. Nodes: `runbook cluster node N --kubelet-version`."""
    from runbooks.cluster.upgrade import upgrade_control_plane

    with reported_errors(*_FAILURES):
        done = upgrade_control_plane(name, kubernetes_version)
    launcher.log(
        f"cluster {name!r} control plane on {kubernetes_version}"
        + ("" if done else " already; nothing to do")
    )
    for line in done:
        typer.echo(line)


@app.command()
def down(name: NameOption = "local") -> None:
    """Stop exactly the processes `up` started for this cluster."""
    stopped = launcher.down(name)
    launcher.log(f"stopped: {', '.join(stopped) if stopped else 'nothing was running'}")


@app.command()
def status(
    name: NameOption = "local",
    output: Annotated[str, typer.Option("--output", help="text or json")] = "text",
) -> None:
    """Say which components run, with their PIDs and memory."""
    record = launcher.load_record(name)
    if record is None:
        typer.echo(f"cluster {name!r}: not created (run `runbook cluster up --name {name}`)")
        raise typer.Exit(3)
    alive = launcher.running_components(record)
    rss = launcher.rss_megabytes(record)
    ready = launcher.apiserver_ready(record) if any(alive.values()) else False
    if output == "json":
        typer.echo(
            json.dumps(
                {
                    "name": name,
                    "server": record.server,
                    "kubeconfig": str(record.kubeconfig),
                    "ready": ready,
                    "kubernetes_version": record.kubernetes_version,
                    "components": {
                        c: {
                            "pid": record.pids.get(c),
                            "running": alive.get(c, False),
                            "rss_mb": round(rss.get(c, 0.0), 1),
                        }
                        for c in launcher.COMPONENT_ORDER
                    },
                }
            )
        )
    else:
        typer.echo(
            f"cluster {name!r}: {'ready' if ready else 'not ready'} at {record.server} "
            f"(Kubernetes {record.kubernetes_version})"
        )
        typer.echo(f"kubeconfig: {record.kubeconfig}")
        for c in launcher.COMPONENT_ORDER:
            state = "running" if alive.get(c) else "stopped"
            typer.echo(
                f"  {c:<24} {state:<8} pid={record.pids.get(c, '-')} rss={rss.get(c, 0.0):.0f}MB"
            )
    raise typer.Exit(0 if ready else 3)


@app.command()
def node(
    node_name: Annotated[str, typer.Argument(help="Node to change, e.g. worker-2.")],
    not_ready: Annotated[
        bool | None, typer.Option("--not-ready/--ready", help="Report NotReady, or recover.")
    ] = None,
    unreachable: Annotated[
        bool | None,
        typer.Option(
            "--unreachable/--reachable",
            help="Cut the node off like a dead kubelet (no heartbeats; its pods never finish "
            "terminating), or reconnect it.",
        ),
    ] = None,
    kubelet_version: Annotated[
        str | None, typer.Option(help="Report this kubelet version.")
    ] = None,
    reboot: Annotated[bool, typer.Option(help="Report a new boot ID, as after a reboot.")] = False,
    name: NameOption = "local",
) -> None:
    """Simulate node events on the local cluster: NotReady, unreachable, an upgraded kubelet,
    a reboot."""
    import uuid

    with reported_errors(*_FAILURES):
        record = launcher.load_record(name)
        if record is None or not launcher.is_up(record):
            raise UserError(f"cluster {name!r} is not running; start it with `runbook cluster up`")
        if not_ready is not None:
            nodes.set_not_ready(record.kubeconfig, node_name, not_ready)
        if unreachable is not None:
            nodes.set_unreachable(record.kubeconfig, node_name, unreachable)
        nodes.set_node_info(
            record.kubeconfig,
            node_name,
            kubelet_version=kubelet_version,
            boot_id=str(uuid.uuid4()) if reboot else None,
        )
