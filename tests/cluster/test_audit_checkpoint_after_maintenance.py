"""A real `runbook maintain` run on the local control plane leaves a signed checkpoint of its
last audit record; deleting the run's newest records afterwards (and rewinding the head to
match) is then reported by `runbook audit verify`."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
from pathlib import Path
from typing import Any

import pytest

from runbooks.audit.checkpoints import generate_key
from runbooks.cluster import workloads
from tests.cluster.test_maintenance_helpers import RUNBOOK

pytestmark = pytest.mark.cluster


def runbook(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [RUNBOOK, *args], env=env, capture_output=True, text=True, timeout=300, check=False
    )


def test_deleting_a_maintenance_runs_last_records_is_reported(
    cluster: Any, node_group: Any, namespace: str, tmp_path: Path
) -> None:
    group = node_group(2)
    workloads.create_deployment(cluster.api, namespace, "web", 2, group.node_selector)
    workloads.wait_pods_ready(cluster.api, namespace, 2)
    db = tmp_path / "audit.db"
    key = tmp_path / "keys" / "anchor.pem"
    generate_key(key)
    anchors = tmp_path / "anchors" / "audit-anchors.jsonl"
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    env.update(
        RUNBOOK_AUDIT_URL=f"sqlite:///{db}",
        RUNBOOK_AUDIT_ANCHOR_KEY=str(key),
        RUNBOOK_AUDIT_ANCHOR_FILE=str(anchors),
    )
    done = runbook(
        env,
        "maintain",
        "--kubeconfig",
        str(cluster.kubeconfig),
        "--selector",
        group.selector,
        "--lease-name",
        f"anchor-{group.label[1]}",
        "--lease-duration",
        "10s",
        "--drain-timeout",
        "60s",
        "--ready-timeout",
        "30s",
    )
    assert done.returncode == 0, done.stderr + done.stdout

    with sqlite3.connect(db) as conn:
        last_seq, last_hash = conn.execute(
            "SELECT seq, hash FROM audit_records ORDER BY seq DESC LIMIT 1"
        ).fetchone()
        run_id = conn.execute(
            "SELECT flow_run_id FROM audit_records WHERE seq = ?", (last_seq,)
        ).fetchone()[0]
    (line,) = anchors.read_text().splitlines()
    checkpoint = json.loads(line)
    assert (checkpoint["seq"], checkpoint["hash"]) == (last_seq, last_hash)
    assert checkpoint["by"].startswith(f"run {run_id} of rolling-node-maintenance")
    verified = runbook(env, "audit", "verify")
    assert verified.returncode == 0 and "checked against 1 signed checkpoint" in verified.stderr

    # The attack: drop the uncordon and run.finish records, rewind the head to match.
    keep = last_seq - 3
    with sqlite3.connect(db) as conn:
        (keep_hash,) = conn.execute(
            "SELECT hash FROM audit_records WHERE seq = ?", (keep,)
        ).fetchone()
        conn.execute("DELETE FROM audit_records WHERE seq > ?", (keep,))
        conn.execute("UPDATE audit_head SET seq = ?, hash = ?", (keep, keep_hash))
    broken = runbook(env, "audit", "verify")
    assert broken.returncode == 1, broken.stdout
    assert f"BROKEN at record {keep + 1}: missing (deleted)" in broken.stderr
    assert f"says record {last_seq} existed" in broken.stderr
