"""Start, reuse, inspect and stop a local control plane bound to 127.0.0.1.

One directory per cluster under ``$RUNBOOK_STATE_DIR/clusters/<name>``: PKI, etcd data, logs,
the kubeconfig and ``cluster.json`` (ports and the PIDs this launcher started). ``down`` stops
exactly those PIDs, after checking each still runs the binary we started (PIDs get reused).
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

import yaml
from pydantic import BaseModel, Field

from runbooks.cluster.binaries import (
    DEFAULT_KUBERNETES_VERSION,
    Binaries,
    check_kubernetes_version,
    ensure_binaries,
)
from runbooks.cluster.kwok_config import write_kwok_config
from runbooks.cluster.nodes import KWOK_MANAGED, KWOK_MANAGED_LABEL
from runbooks.cluster.pki import ensure_pki
from runbooks.lifetime import stop_with_this_process
from runbooks.settings import get_settings

# Start order; stop runs in reverse.
COMPONENT_ORDER = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok")
NODE_MONITOR_GRACE = "40s"


class ClusterError(RuntimeError):
    """The cluster could not be started or reached; the message says what to look at."""


class VersionMismatch(ClusterError, ValueError):
    """Asked for one Kubernetes version while the cluster runs another (the user's mistake)."""


class ClusterPorts(BaseModel):
    etcd_client: int
    etcd_peer: int
    apiserver: int
    kwok: int
    # Secure ports of KCM and the scheduler, for their /healthz (the upgrade waits on it);
    # None in records written before they had one (they ran with --secure-port=0).
    controller_manager: int | None = None
    scheduler: int | None = None


class ClusterRecord(BaseModel):
    """What ``up`` started, persisted so ``status`` and ``down`` work from another process."""

    name: str
    directory: Path
    binaries: Path
    ports: ClusterPorts
    pids: dict[str, int] = Field(default_factory=dict)
    # The binary each PID was started from: after an upgrade, etcd and KWOK still run from the
    # first version's cache dir while the control plane runs from the new one.
    exes: dict[str, Path] = Field(default_factory=dict)
    nodes: int
    started_at: dt.datetime
    kubernetes_version: str = DEFAULT_KUBERNETES_VERSION

    def exe(self, component: str) -> Path:
        """The binary ``component`` runs (or was last started) from."""
        return self.exes.get(component) or Binaries(root=self.binaries).path(component)

    @property
    def kubeconfig(self) -> Path:
        return self.directory / "kubeconfig"

    @property
    def server(self) -> str:
        return f"https://127.0.0.1:{self.ports.apiserver}"


def log(message: str) -> None:
    """Progress goes to stderr: stdout of ``cluster up`` is reserved for the export line."""
    print(f"[cluster] {message}", file=sys.stderr, flush=True)


def cluster_dir(name: str) -> Path:
    return get_settings().state_dir / "clusters" / name


def load_record(name: str) -> ClusterRecord | None:
    path = cluster_dir(name) / "cluster.json"
    if not path.exists():
        return None
    return ClusterRecord.model_validate_json(path.read_text())


def save_record(record: ClusterRecord) -> None:
    path = record.directory / "cluster.json"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(record.model_dump_json(indent=2))
    tmp.replace(path)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _pid_runs(pid: int, binary: Path) -> bool:
    """True when ``pid`` is alive and still the binary we started, not a reused PID."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].decode()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return False
    if Path(f"/proc/{pid}/stat").read_text().split(") ")[-1].startswith("Z"):
        return False
    return cmdline == str(binary)


def running_components(record: ClusterRecord) -> dict[str, bool]:
    return {name: _pid_runs(pid, record.exe(name)) for name, pid in record.pids.items()}


def _ssl_context(directory: Path) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(directory / "pki" / "ca.crt"))
    ctx.load_cert_chain(str(directory / "pki" / "admin.crt"), str(directory / "pki" / "admin.key"))
    return ctx


def apiserver_ready(record: ClusterRecord) -> bool:
    try:
        with urllib.request.urlopen(
            f"{record.server}/readyz", context=_ssl_context(record.directory), timeout=3
        ) as resp:
            return bool(resp.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def wait_for(
    what: str, check: Callable[[], bool], timeout: float, logs: Path | None = None
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.25)
    hint = f"; see {logs}" if logs else ""
    raise ClusterError(f"timed out after {timeout:.0f}s waiting for {what}{hint}")


def _write_kubeconfig(record: ClusterRecord) -> None:
    pki = record.directory / "pki"
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": record.name,
                "cluster": {"server": record.server, "certificate-authority": str(pki / "ca.crt")},
            }
        ],
        "users": [
            {
                "name": f"{record.name}-admin",
                "user": {
                    "client-certificate": str(pki / "admin.crt"),
                    "client-key": str(pki / "admin.key"),
                },
            }
        ],
        "contexts": [
            {
                "name": record.name,
                "context": {"cluster": record.name, "user": f"{record.name}-admin"},
            }
        ],
        "current-context": record.name,
    }
    record.kubeconfig.write_text(yaml.safe_dump(config, sort_keys=False))
    record.kubeconfig.chmod(0o600)


# The API server's own audit log, kept small: who changed a node or evicted a pod, and who asked
# for /version (each event names the caller's User-Agent, e.g. kube-runbooks/0.1.0).
AUDIT_POLICY, AUDIT_LOG = "audit-policy.yaml", "kube-apiserver-audit.log"
AUDIT_POLICY_YAML = """\
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
  - level: Metadata
    verbs: [create, update, patch, delete]
    resources:
      - group: ""
        resources: [nodes, pods/eviction]
  - level: Metadata
    nonResourceURLs: [/version]
  - level: None
"""


def command_lines(record: ClusterRecord, binaries: Binaries) -> dict[str, list[str]]:
    """Every component's argv. The flags used are the same for v1.35 and v1.36 (checked by
    starting both); a version needing others would branch on ``minor_version`` here."""
    d, p = record.directory, record.ports
    pki, kubeconfig = d / "pki", str(record.kubeconfig)
    return {
        "etcd": [
            str(binaries.path("etcd")),
            "--name=node0",
            f"--data-dir={d / 'etcd'}",
            "--unsafe-no-fsync",
            "--auto-compaction-retention=1",
            "--quota-backend-bytes=4294967296",
            f"--listen-client-urls=http://127.0.0.1:{p.etcd_client}",
            f"--advertise-client-urls=http://127.0.0.1:{p.etcd_client}",
            f"--listen-peer-urls=http://127.0.0.1:{p.etcd_peer}",
            f"--initial-advertise-peer-urls=http://127.0.0.1:{p.etcd_peer}",
            f"--initial-cluster=node0=http://127.0.0.1:{p.etcd_peer}",
            "--listen-metrics-urls=",
        ],
        "kube-apiserver": [
            str(binaries.path("kube-apiserver")),
            f"--etcd-servers=http://127.0.0.1:{p.etcd_client}",
            "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1",
            f"--secure-port={p.apiserver}",
            f"--tls-cert-file={pki / 'apiserver.crt'}",
            f"--tls-private-key-file={pki / 'apiserver.key'}",
            f"--client-ca-file={pki / 'ca.crt'}",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            f"--service-account-key-file={pki / 'sa.pub'}",
            f"--service-account-signing-key-file={pki / 'sa.key'}",
            "--service-cluster-ip-range=10.96.0.0/16",
            "--authorization-mode=Node,RBAC",
            "--allow-privileged=true",
            "--profiling=false",
            f"--audit-policy-file={d / AUDIT_POLICY}",
            f"--audit-log-path={d / 'logs' / AUDIT_LOG}",
            "--audit-log-maxsize=20",
            "--audit-log-maxbackup=1",
        ],
        "kube-controller-manager": [
            str(binaries.path("kube-controller-manager")),
            f"--kubeconfig={kubeconfig}",
            "--leader-elect=false",
            "--bind-address=127.0.0.1",
            f"--secure-port={p.controller_manager or 0}",
            f"--cert-dir={d / 'pki' / 'kube-controller-manager'}",
            f"--service-account-private-key-file={pki / 'sa.key'}",
            f"--root-ca-file={pki / 'ca.crt'}",
            "--use-service-account-credentials=false",
            "--node-monitor-period=5s",
            f"--node-monitor-grace-period={NODE_MONITOR_GRACE}",
            "--kube-api-qps=200",
            "--kube-api-burst=400",
        ],
        "kube-scheduler": [
            str(binaries.path("kube-scheduler")),
            f"--kubeconfig={kubeconfig}",
            "--leader-elect=false",
            "--bind-address=127.0.0.1",
            f"--secure-port={p.scheduler or 0}",
            f"--cert-dir={d / 'pki' / 'kube-scheduler'}",
            "--kube-api-qps=200",
            "--kube-api-burst=400",
        ],
        "kwok": [
            str(binaries.path("kwok")),
            f"--kubeconfig={kubeconfig}",
            f"--config={d / 'kwok.yaml'}",
            # Not --manage-all-nodes: a node whose label changes is cut off (unreachable).
            f"--manage-nodes-with-label-selector={KWOK_MANAGED_LABEL}={KWOK_MANAGED}",
            "--node-ip=127.0.0.1",
            "--node-name=kwok-controller",
            f"--node-port={p.kwok}",
            f"--server-address=127.0.0.1:{p.kwok}",
            f"--tls-cert-file={pki / 'apiserver.crt'}",
            f"--tls-private-key-file={pki / 'apiserver.key'}",
            "--node-lease-duration-seconds=40",
        ],
    }


def start_component(record: ClusterRecord, name: str, argv: list[str], tied: bool) -> None:
    """Start one component from ``argv`` and record its PID and binary before anything waits."""
    log_path = record.directory / "logs" / f"{name}.log"
    with open(log_path, "ab") as out:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # outlives `runbook cluster up`; stopped by PID in `down`
            # SIGKILL: a tied cluster is a test session's, with nothing to save once the session
            # is gone; on SIGTERM without etcd, kube-apiserver takes longer than anyone waits.
            preexec_fn=stop_with_this_process(signal.SIGKILL) if tied else None,
        )
    record.pids[name] = proc.pid
    record.exes[name] = Path(argv[0])
    save_record(record)


def _etcd_healthy(record: ClusterRecord) -> bool:
    try:
        with urllib.request.urlopen(
            f"http://127.0.0.1:{record.ports.etcd_client}/health", timeout=2
        ) as resp:
            return b'"true"' in resp.read()
    except (urllib.error.URLError, OSError):
        return False


def is_up(record: ClusterRecord) -> bool:
    alive = running_components(record)
    return all(alive.get(c, False) for c in COMPONENT_ORDER) and apiserver_ready(record)


def up(
    name: str = "local",
    nodes: int = 3,
    timeout: float = 180,
    stop_with_caller: bool = False,
    kubernetes_version: str | None = None,
) -> ClusterRecord:
    """Start the cluster ``name`` with ``nodes`` KWOK nodes, or reuse it if it already runs.

    ``stop_with_caller``: the components stop when this process dies, even by SIGKILL (a test
    session's cluster); otherwise they run until ``down`` (``runbook cluster up``).
    ``kubernetes_version``: the control plane's version (default v1.36.3); a running cluster is
    reused only if it runs that version (None: whatever it runs).
    """
    if kubernetes_version is not None:
        check_kubernetes_version(kubernetes_version)
    existing = load_record(name)
    if existing is not None and is_up(existing):
        if kubernetes_version not in (None, existing.kubernetes_version):
            raise VersionMismatch(
                f"cluster {name!r} already runs Kubernetes {existing.kubernetes_version}, not "
                f"{kubernetes_version}; `runbook cluster upgrade` it or `down` it first"
            )
        log(f"cluster {name!r} already running ({existing.server}); reusing it")
        return existing
    if existing is not None:
        partly = any(running_components(existing).values())
        log(f"cluster {name!r} is {'partly ' if partly else ''}stopped; starting it afresh")
        down(name)

    version = kubernetes_version or DEFAULT_KUBERNETES_VERSION
    directory = cluster_dir(name)
    # The state dir first: a path that cannot hold a cluster fails at once, not after a build.
    shutil.rmtree(directory / "etcd", ignore_errors=True)
    for sub in ("logs",):
        (directory / sub).mkdir(parents=True, exist_ok=True)
    binaries = ensure_binaries(version)
    started = time.monotonic()
    ensure_pki(directory / "pki")
    record = ClusterRecord(
        name=name,
        directory=directory,
        binaries=binaries.root,
        ports=ClusterPorts(
            etcd_client=free_port(),
            etcd_peer=free_port(),
            apiserver=free_port(),
            kwok=free_port(),
            controller_manager=free_port(),
            scheduler=free_port(),
        ),
        nodes=nodes,
        started_at=dt.datetime.now(dt.UTC),
        kubernetes_version=version,
    )
    save_record(record)
    _write_kubeconfig(record)
    write_kwok_config(binaries.stages, directory / "kwok.yaml")
    (directory / AUDIT_POLICY).write_text(AUDIT_POLICY_YAML)
    argv = command_lines(record, binaries)
    logs = directory / "logs"
    try:
        start_component(record, "etcd", argv["etcd"], stop_with_caller)
        wait_for("etcd health", lambda: _etcd_healthy(record), 60, logs / "etcd.log")
        start_component(record, "kube-apiserver", argv["kube-apiserver"], stop_with_caller)
        wait_for("kube-apiserver /readyz", lambda: apiserver_ready(record), timeout, logs)
        for component in ("kube-controller-manager", "kube-scheduler", "kwok"):
            start_component(record, component, argv[component], stop_with_caller)
        from runbooks.cluster.nodes import add_nodes, wait_until_usable

        add_nodes(record.kubeconfig, count=nodes)
        wait_until_usable(record.kubeconfig, nodes=nodes, timeout=timeout)
    except BaseException:
        log(f"start failed; stopping what was started (logs kept in {logs})")
        down(name, keep_logs=True)
        raise
    log(
        f"cluster {name!r} (Kubernetes {version}) up in {time.monotonic() - started:.1f}s: "
        f"{record.server}, {nodes} nodes"
    )
    return record


def down(name: str = "local", keep_logs: bool = False) -> list[str]:
    """Stop the processes this launcher started for ``name``; return the components stopped."""
    record = load_record(name)
    if record is None:
        return []
    stopped: list[str] = []
    for component in reversed(COMPONENT_ORDER):
        if stop_component(record, component):
            stopped.append(component)
    record.pids.clear()
    record.exes.clear()
    save_record(record)
    shutil.rmtree(record.directory / "etcd", ignore_errors=True)
    if not keep_logs:
        shutil.rmtree(record.directory / "logs", ignore_errors=True)
    return stopped


def stop_component(record: ClusterRecord, component: str, grace: float = 10) -> bool:
    """SIGTERM the PID recorded for ``component`` (SIGKILL after ``grace`` s) if it still runs
    the binary we started; True if it was running."""
    pid, exe = record.pids.get(component), record.exe(component)
    if pid is None or not _pid_runs(pid, exe):
        return False
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and _pid_runs(pid, exe):
        time.sleep(0.1)
    if _pid_runs(pid, exe):
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and _pid_runs(pid, exe):
            time.sleep(0.05)
    return True


def component_healthy(record: ClusterRecord, component: str) -> bool:
    """KCM's or the scheduler's /healthz on its secure port (self-signed serving cert)."""
    port = {
        "kube-controller-manager": record.ports.controller_manager,
        "kube-scheduler": record.ports.scheduler,
    }[component]
    if not port:
        return False
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # localhost, self-signed; /healthz carries no secret
    try:
        with urllib.request.urlopen(
            f"https://127.0.0.1:{port}/healthz", context=ctx, timeout=3
        ) as resp:
            return bool(resp.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def rss_megabytes(record: ClusterRecord) -> dict[str, float]:
    """Resident memory of each running component, for the notes and benchmarks."""
    result: dict[str, float] = {}
    for component, pid in record.pids.items():
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    result[component] = int(line.split()[1]) / 1024
        except FileNotFoundError:
            continue
    return result
