"""Cluster upgrade wall time by phase, and its node phase against plain `runbook maintain`.

    python bench/upgrade_phases.py --nodes 20 --replicas 40

On a fresh local cluster at v1.35.4 (KWOK nodes reporting kubelet v1.35.4, one Deployment
behind a budget of maxUnavailable 1 spread over the nodes): `runbook upgrade --to v1.36.3
--approval none` (approval wait is 0 here: no gate), with the seconds of each phase from its
report; then, on the same nodes, `runbook maintain --action command --reboots` whose command
sets a new boot ID (the local provider's node step without the version change), the same
cordon/drain/act/Ready/uncordon engine. Prints a Markdown table. Not a timed test.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from kubernetes import config

from runbooks.cluster import launcher, workloads
from runbooks.cluster.nodes import set_node_info

OLD, NEW = "v1.35.4", "v1.36.3"
RUNBOOK = str(Path(sys.executable).with_name("runbook"))
REBOOT = (
    "import sys, uuid; from pathlib import Path; "
    "from runbooks.cluster.nodes import set_node_info; "
    "set_node_info(Path(sys.argv[1]), sys.argv[2], boot_id=str(uuid.uuid4()))"
)


def run(argv: list[str], config_file: Path) -> tuple[float, subprocess.CompletedProcess[str]]:
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    env["RUNBOOK_ALLOW_UNATTENDED_UPGRADES"] = "1"
    env["RUNBOOK_CONFIG"] = str(config_file)  # allows the maintain run's reboot command
    began = time.monotonic()
    done = subprocess.run(argv, capture_output=True, text=True, env=env, check=False)
    return time.monotonic() - began, done


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--nodes", type=int, default=20)
    parser.add_argument("--replicas", type=int, default=40)
    parser.add_argument("--name", default="bench-upgrade")
    args = parser.parse_args()
    record = launcher.up(name=args.name, nodes=args.nodes, kubernetes_version=OLD)
    try:
        api = config.new_client_from_config(config_file=str(record.kubeconfig))
        names = [f"worker-{i}" for i in range(1, args.nodes + 1)]
        for name in names:
            set_node_info(record.kubeconfig, name, kubelet_version=OLD)
        workloads.create_deployment(api, "default", "web", args.replicas, max_unavailable=1)
        workloads.wait_pods_ready(api, "default", args.replicas, timeout=300)
        workloads.wait_pdb_observed(api, "default", "web-pdb")
        kube = ["--kubeconfig", str(record.kubeconfig)]
        allowed = record.directory / "bench-operator.yaml"
        allowed.write_text(json.dumps({"allow": {"commands": [[sys.executable, "-c"]]}}))

        total, up = run(
            [RUNBOOK, "upgrade", *kube, "--to", NEW, "--approval", "none", "--output", "json"],
            allowed,
        )
        if up.returncode != 0:
            print(up.stdout[-3000:], up.stderr[-3000:], file=sys.stderr)
            return 1
        phases = json.loads(up.stdout)["phases"]

        command = f"{sys.executable} -c '{REBOOT}' {record.kubeconfig} {{node}}"
        maintained, plain = run(
            [
                RUNBOOK,
                "maintain",
                *kube,
                *names,
                "--action",
                "command",
                "--command",
                command,
                "--reboots",
            ],
            allowed,
        )
        if plain.returncode != 0:
            print(plain.stdout[-3000:], plain.stderr[-3000:], file=sys.stderr)
            return 1
        print(f"nodes {args.nodes}, pods {args.replicas}, max-unavailable 1\n")
        print("| step | seconds |\n|---|---|")
        print(f"| `runbook upgrade` wall time (process) | {total:.1f} |")
        for phase, seconds in phases.items():
            print(f"| upgrade phase {phase} | {seconds:.1f} |")
        print(f"| `runbook maintain` same nodes, reboot action (process) | {maintained:.1f} |")
        ratio = phases["nodes"] / maintained
        print(f"\nnode phase / plain maintain = {ratio:.2f}")
        return 0
    finally:
        launcher.down(args.name)


if __name__ == "__main__":
    raise SystemExit(main())
