"""Rolling node maintenance: the operator's kubectl script vs `runbook maintain` (max-unavailable
1 and 5), on one local cluster, several rounds, alternating the order. Not a timed test.

    python bench/maintenance_vs_kubectl.py --nodes 20 --deployments 20 --replicas 20 --rounds 3

KWOK deletes an evicted pod at once; with --termination-seconds N every Deployment pod stays
terminating N s after its eviction instead (the kube-runbooks.local/terminate-after annotation,
runbooks/cluster/kwok_config.py). KWOK caps that delay at the grace period the eviction asks
for, as a kubelet would; below both tools' grace periods (kubectl's 300 s, the pods' own 30 s
for the runbook) it is the same for both.

Per run it records wall time, the API requests the tool itself sent (kubectl: its -v=6 request
log; runbook: a counter on the Kubernetes client's REST layer), the apiserver's own request
count over the run from /metrics (includes KCM, scheduler and KWOK reacting to the evictions,
and their background heartbeats), and the runbook process's peak RSS. Prints a Markdown table
of medians and writes the raw rows as JSON next to it with --json.

The kubectl script is the one from issue 4, node by node, without a maintenance step:
    kubectl cordon $NODE
    kubectl drain $NODE --ignore-daemonsets --delete-emptydir-data --force --grace-period=300
    kubectl wait --for=condition=Ready node/$NODE --timeout=600s
    kubectl uncordon $NODE
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from kubernetes import client
from kubernetes.client.rest import ApiException

from runbooks.cluster import launcher, workloads
from runbooks.cluster.binaries import ensure_binaries
from runbooks.kube_target import KubeTarget
from tasks.kube.client import api_client

NAMESPACE = "bench"
SCRIPT = """set -euo pipefail
for NODE in {nodes}; do
  kubectl cordon $NODE -v=6
  kubectl drain $NODE --ignore-daemonsets --delete-emptydir-data --force --grace-period=300 -v=6
  kubectl wait --for=condition=Ready node/$NODE --timeout=600s -v=6
  kubectl uncordon $NODE -v=6
done
"""
# kubectl -v=6 logs one line per response: `"Response" verb="GET" url="..." status="200 OK"`
_KUBECTL_RESPONSE = re.compile(
    r'"Response" verb="[A-Z]+"|^I.* (GET|POST|PATCH|PUT|DELETE) https?://'
)

COUNTED_RUNBOOK = """
import collections, json, os, re, sys, time
t0 = time.monotonic()
from kubernetes.client import rest
count = {"requests": 0}
kinds = collections.Counter()
original = rest.RESTClientObject.request
def kind(method, url):
    path, _, query = re.sub(r"^https?://[^/]+", "", url).partition("?")
    path = re.sub(r"/namespaces/[^/]+", "/namespaces/*", path)
    path = re.sub(r"/(nodes|pods|leases|poddisruptionbudgets)/[^/]+", r"/\\1/*", path)
    return f"{method} {path}" + (" (watch)" if "watch=true" in query.lower() else "")
def counted(self, method, url, *args, **kwargs):
    count["requests"] += 1
    kinds[kind(method, url)] += 1
    return original(self, method, url, *args, **kwargs)
rest.RESTClientObject.request = counted
from runbooks.cli.main import app
t1 = time.monotonic()
code = 0
try:
    app(sys.argv[1:])
except SystemExit as exc:
    code = exc.code or 0
t2 = time.monotonic()
with open(os.environ["BENCH_OUT"], "w") as out:
    json.dump({"requests": count["requests"], "startup_s": t1 - t0, "run_s": t2 - t1,
               "code": code, "by_kind": dict(kinds.most_common())}, out)
"""


def server_requests(api: client.ApiClient) -> int:
    """Sum of apiserver_request_total: every request the apiserver answered so far."""
    response = api.call_api(
        "/metrics", "GET", auth_settings=["BearerToken"], _preload_content=False
    )
    response = response[0] if isinstance(response, tuple) else response
    total = 0.0
    for line in response.data.decode().splitlines():
        if line.startswith("apiserver_request_total{"):
            total += float(line.rsplit(" ", 1)[1])
    return int(total)


def seed(
    api: client.ApiClient, deployments: int, replicas: int, budget: str, termination: float
) -> int:
    workloads.ensure_namespace(api, NAMESPACE)
    for i in range(deployments):
        try:
            workloads.create_deployment(
                api,
                NAMESPACE,
                f"svc-{i:02d}",
                replicas,
                {"type": "kwok"},
                max_unavailable=int(budget) if budget.isdigit() else budget,
                terminate_after_seconds=termination or None,
            )
        except ApiException as exc:
            if exc.status != 409:
                raise
    try:
        workloads.create_daemonset(api, NAMESPACE, "node-agent", {"type": "kwok"})
    except ApiException as exc:
        if exc.status != 409:
            raise
    return deployments * replicas


def settle(api: client.ApiClient, pods: int, nodes: int, deployments: int) -> None:
    """All pods Ready, all budgets observed with room, no node cordoned: a fair start."""
    core = client.CoreV1Api(api)
    for node in core.list_node().items:
        if node.spec.unschedulable:
            core.patch_node(node.metadata.name, {"spec": {"unschedulable": None}})
    workloads.wait_pods_ready(api, NAMESPACE, pods + nodes, timeout=600)
    for i in range(deployments):
        workloads.wait_pdb_observed(api, NAMESPACE, f"svc-{i:02d}-pdb", timeout=120)


def run_kubectl(kubectl: Path, kubeconfig: Path, nodes: list[str]) -> dict:
    env = {
        **os.environ,
        "KUBECONFIG": str(kubeconfig),
        "PATH": f"{kubectl.parent}:{os.environ['PATH']}",
    }
    started = time.monotonic()
    proc = subprocess.run(
        ["bash", "-c", SCRIPT.format(nodes=" ".join(nodes))],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    wall = time.monotonic() - started
    requests = sum(1 for line in proc.stderr.splitlines() if _KUBECTL_RESPONSE.search(line))
    if proc.returncode:
        raise RuntimeError(f"kubectl script failed: {proc.stderr[-2000:]}")
    return {"wall_s": wall, "requests": requests, "peak_rss_mb": None}


def run_runbook(kubeconfig: Path, nodes: list[str], max_unavailable: int) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    with (
        tempfile.NamedTemporaryFile(suffix=".json") as out,
        tempfile.TemporaryFile("w+") as stdout_file,
        tempfile.TemporaryFile("w+") as stderr_file,
    ):  # files, not pipes: a chatty run must not block on a full pipe while we wait4() it
        env["BENCH_OUT"] = out.name
        args = [
            "maintain",
            *nodes,
            "--kubeconfig",
            str(kubeconfig),
            "--max-unavailable",
            str(max_unavailable),
            "--output",
            "json",
        ]
        started = time.monotonic()
        proc = subprocess.Popen(
            [sys.executable, "-c", COUNTED_RUNBOOK, *args],
            stdout=stdout_file,
            stderr=stderr_file,
            env=env,
        )
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.monotonic() - started
        stdout_file.seek(0)
        stderr_file.seek(0)
        stdout, stderr = stdout_file.read(), stderr_file.read()
        counted = json.loads(Path(out.name).read_text() or "{}")
    if os.waitstatus_to_exitcode(status) != 0 or counted.get("code"):
        raise RuntimeError(f"runbook failed: {stdout[-2000:]} {stderr[-2000:]}")
    return {
        "wall_s": wall,
        "run_s": counted["run_s"],
        "startup_s": counted["startup_s"],
        "requests": counted["requests"],
        "requests_by_kind": counted["by_kind"],
        "peak_rss_mb": usage.ru_maxrss / 1024,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=20)
    parser.add_argument("--deployments", type=int, default=20)
    parser.add_argument("--replicas", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--budget", default="25%", help="maxUnavailable of each Deployment's PodDisruptionBudget"
    )
    parser.add_argument(
        "--termination-seconds",
        type=float,
        default=0,
        help="Seconds each Deployment pod takes to terminate once evicted (default: KWOK's "
        "immediate deletion).",
    )
    parser.add_argument("--name", default="bench-maint")
    parser.add_argument("--json", type=Path, default=None, help="Write raw rows here.")
    parser.add_argument("--keep", action="store_true", help="Leave the cluster running.")
    args = parser.parse_args()

    load_start = os.getloadavg()
    record = launcher.up(name=args.name, nodes=args.nodes)
    kubeconfig = record.kubeconfig
    kubectl = ensure_binaries().path("kubectl")
    api = api_client(KubeTarget(kubeconfig=kubeconfig))
    rows: list[dict] = []
    try:
        pods = seed(api, args.deployments, args.replicas, args.budget, args.termination_seconds)
        nodes = sorted(
            n.metadata.name
            for n in client.CoreV1Api(api).list_node(label_selector="type=kwok").items
        )[: args.nodes]
        tools = {
            "kubectl script": lambda: run_kubectl(kubectl, kubeconfig, nodes),
            "runbook, max-unavailable 1": lambda: run_runbook(kubeconfig, nodes, 1),
            "runbook, max-unavailable 5": lambda: run_runbook(kubeconfig, nodes, 5),
        }
        for round_no in range(args.rounds):
            order = list(tools) if round_no % 2 == 0 else list(reversed(tools))
            for tool in order:
                settle(api, pods, len(nodes), args.deployments)
                before = server_requests(api)
                row = tools[tool]()
                row.update(
                    tool=tool, round=round_no + 1, server_requests=server_requests(api) - before
                )
                rows.append(row)
                print(json.dumps(row), file=sys.stderr, flush=True)
    finally:
        if not args.keep:
            launcher.down(args.name)
    load_end = os.getloadavg()
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    print(summary(rows, args, pods, (load_start[0], load_end[0])))
    return 0


def summary(
    rows: list[dict], args: argparse.Namespace, pods: int, load: tuple[float, float]
) -> str:
    def med(tool: str, key: str) -> float | None:
        values = [r[key] for r in rows if r["tool"] == tool and r.get(key) is not None]
        return statistics.median(values) if values else None

    termination = (
        f"each evicted pod terminates in {args.termination_seconds:g} s"
        if args.termination_seconds
        else "evicted pods deleted at once (KWOK)"
    )
    lines = [
        f"{args.nodes} KWOK nodes, {pods} pods in {args.deployments} Deployments (each with a "
        f"maxUnavailable={args.budget} budget) + 1 DaemonSet; {termination}; every node "
        f"maintained once per run; {args.rounds} rounds, order alternating. 1-minute load "
        f"average {load[0]:.1f} at the start, {load[1]:.1f} at the end. Medians:",
        "",
        "| Tool | Wall time | In-process run time | Tool's API requests (per node) | "
        "apiserver requests during the run | Peak RSS |",
        "|---|---|---|---|---|---|",
    ]
    for tool in dict.fromkeys(r["tool"] for r in rows):
        wall, run = med(tool, "wall_s"), med(tool, "run_s")
        req, server, rss = (
            med(tool, "requests"),
            med(tool, "server_requests"),
            med(tool, "peak_rss_mb"),
        )
        lines.append(
            f"| {tool} | {wall:.1f} s | {f'{run:.1f} s' if run else '-'} | "
            f"{req:.0f} ({(req or 0) / args.nodes:.1f}) | {server:.0f} | "
            f"{f'{rss:.0f} MB' if rss else '-'} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
