"""`runbook verify` at scale: 50 then 500 KWOK nodes (10 pods per node) in one local cluster.

    python bench/verify_scale.py --runs 5 [--json rows.json]

Each run is the real CLI in a fresh process (`runbook verify --baseline <shipped local>
--output json`), timed from start to exit. API requests are counted three ways:
- the CLI's own, by a counter on the Kubernetes client's REST layer;
- the API server's, from apiserver_request_total over the run: LISTs plus non-resource GETs
  (/livez, /readyz, /version), minus the one /metrics read that starts the window. Other
  components send those rarely (informers LIST once, then watch), so this is the run's count;
- the API server's total over the run, all verbs, which includes KWOK's node heartbeats (noise
  that grows with the node count, not the runbook's).
Goal (issue 11): under 5 s and under 30 requests, whatever the node count. Prints medians.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from kubernetes import client

from runbooks.cluster import launcher, workloads
from runbooks.cluster.nodes import add_nodes, wait_until_usable
from runbooks.kube_target import KubeTarget
from runbooks.verify.baseline_file import shipped_baseline
from tasks.kube.client import api_client

NAMESPACE = "bench-verify"
DEPLOYMENTS = 10

COUNTED_CLI = """
import json, os, sys, time
from kubernetes.client import rest
count = {"requests": 0}
original = rest.RESTClientObject.request
def counted(self, method, url, *args, **kwargs):
    count["requests"] += 1
    return original(self, method, url, *args, **kwargs)
rest.RESTClientObject.request = counted
from runbooks.cli.main import app
import flows.provision_verification  # the imports (Prefect: most of the start-up), timed apart
started = time.monotonic()
code = 0
try:
    app(sys.argv[1:])
except SystemExit as exc:
    code = exc.code or 0
with open(os.environ["BENCH_OUT"], "w") as out:
    json.dump({"requests": count["requests"], "code": code,
               "run_s": time.monotonic() - started}, out)
"""


def server_counts(api: client.ApiClient) -> Counter[str]:
    """apiserver_request_total by 'VERB resource' (non-resource URLs: 'GET -')."""
    response = api.call_api(
        "/metrics", "GET", auth_settings=["BearerToken"], _preload_content=False
    )
    response = response[0] if isinstance(response, tuple) else response
    counts: Counter[str] = Counter()
    for line in response.data.decode().splitlines():
        if not line.startswith("apiserver_request_total{"):
            continue
        labels = dict(
            part.split("=", 1) for part in line[line.index("{") + 1 : line.rindex("}")].split(",")
        )
        verb, resource = labels["verb"].strip('"'), labels["resource"].strip('"') or "-"
        counts[f"{verb} {resource}"] += int(float(line.rsplit(" ", 1)[1]))
    return counts


def seed_pods(api: client.ApiClient, nodes: int) -> int:
    """10 pods per node in DEPLOYMENTS Deployments; wait until all are Ready."""
    apps = client.AppsV1Api(api)
    per = nodes * 10 // DEPLOYMENTS
    workloads.ensure_namespace(api, NAMESPACE)
    for i in range(DEPLOYMENTS):
        name = f"app-{i}"
        try:
            workloads.create_deployment(api, NAMESPACE, name, per, {"type": "kwok"})
        except client.ApiException as exc:
            if exc.status != 409:
                raise
            apps.patch_namespaced_deployment_scale(name, NAMESPACE, {"spec": {"replicas": per}})
    # Counted from the pods, not the Deployments' status: under load the ReplicaSet controller
    # can drop a sync ("read version ... is not as new as written version") and leave its
    # status behind pods that are all Ready.
    core = client.CoreV1Api(api)
    deadline = time.monotonic() + 900
    ready = 0
    while time.monotonic() < deadline:
        listed = json.loads(core.list_namespaced_pod(NAMESPACE, _preload_content=False).data)
        ready = sum(
            any(
                c["type"] == "Ready" and c["status"] == "True"
                for c in p["status"].get("conditions", [])
            )
            for p in listed["items"]
            if not p["metadata"].get("deletionTimestamp")
        )
        if ready >= per * DEPLOYMENTS:
            return ready
        time.sleep(3)
    raise TimeoutError(f"{ready}/{per * DEPLOYMENTS} pods Ready after 900 s")


def one_run(kubeconfig: Path, api: client.ApiClient) -> dict[str, Any]:
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        env = {**os.environ, "KUBECONFIG": str(kubeconfig), "BENCH_OUT": out.name}
        env.pop("PREFECT_API_URL", None)  # the CLI's default path: no Prefect server
        before = server_counts(api)
        started = time.monotonic()
        done = subprocess.run(
            [
                sys.executable,
                "-c",
                COUNTED_CLI,
                "verify",
                "--baseline",
                str(shipped_baseline()),
                "--output",
                "json",
            ],
            capture_output=True,
            text=True,
            env=env,
            timeout=300,
            check=False,
        )
        wall = time.monotonic() - started
        after = server_counts(api)
        own = json.loads(Path(out.name).read_text() or "{}")
    delta = after - before
    runbook_kinds = {k: v for k, v in delta.items() if k.startswith("LIST ") or k == "GET -"}
    runbook_kinds["GET -"] = runbook_kinds.get("GET -", 0) - 1  # the /metrics read before
    report = json.loads(done.stdout) if done.stdout else {}
    return {
        "wall_s": round(wall, 3),
        "exit": done.returncode,
        "status": report.get("status"),
        "run_s": round(own.get("run_s", 0.0), 3),
        "client_requests": own.get("requests"),
        "server_requests": sum(runbook_kinds.values()),
        "server_by_kind": {k: v for k, v in sorted(runbook_kinds.items()) if v},
        "server_all_verbs": sum(delta.values()) - 1,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--sizes", default="50,500", help="Node counts, ascending")
    parser.add_argument("--name", default="bench-verify")
    parser.add_argument("--json", type=Path, default=None, help="Write raw rows here.")
    parser.add_argument("--keep", action="store_true", help="Leave the cluster running.")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]

    record = launcher.up(name=args.name, nodes=sizes[0], timeout=600)
    api = api_client(KubeTarget(kubeconfig=record.kubeconfig))
    rows: list[dict[str, Any]] = []
    try:
        for size in sizes:
            add_nodes(record.kubeconfig, count=size)
            wait_until_usable(record.kubeconfig, nodes=size, timeout=600)
            pods = seed_pods(api, size)
            time.sleep(10)  # let the node controller lift new nodes' not-ready taints
            for run in range(args.runs):
                row = {
                    "nodes": size,
                    "pods": pods,
                    "run": run + 1,
                    **one_run(record.kubeconfig, api),
                }
                rows.append(row)
                print(json.dumps(row), file=sys.stderr, flush=True)
    finally:
        if not args.keep:
            launcher.down(args.name)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    print(summary(rows))
    return 0


def summary(rows: list[dict[str, Any]]) -> str:
    def med(size: int, key: str) -> float:
        return statistics.median(r[key] for r in rows if r["nodes"] == size)

    sizes = sorted({r["nodes"] for r in rows})
    lines = [
        "| Nodes | Pods | Wall time | After imports | CLI's requests | apiserver: the run's "
        "requests | apiserver: all verbs during the run | Status |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for size in sizes:
        pods = next(r["pods"] for r in rows if r["nodes"] == size)
        statuses = ",".join(sorted({str(r["status"]) for r in rows if r["nodes"] == size}))
        lines.append(
            f"| {size} | {pods} | {med(size, 'wall_s'):.2f} s | {med(size, 'run_s'):.2f} s "
            f"| {med(size, 'client_requests'):.0f}"
            f" | {med(size, 'server_requests'):.0f} | {med(size, 'server_all_verbs'):.0f} "
            f"| {statuses} |"
        )
    if len(sizes) > 1:
        lo, hi = sizes[0], sizes[-1]
        lines.append("")
        lines.append(
            f"Ratio {hi} / {lo} nodes: wall time x{med(hi, 'wall_s') / med(lo, 'wall_s'):.2f}, "
            f"after imports x{med(hi, 'run_s') / med(lo, 'run_s'):.2f}, "
            f"the run's requests x{med(hi, 'server_requests') / med(lo, 'server_requests'):.2f}."
        )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
