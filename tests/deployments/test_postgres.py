"""The production shape: a Prefect server on PostgreSQL, the audit store on PostgreSQL, a
runbook run by deployment name through both (PostgreSQL from Debian's packages)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
from prefect.client.schemas.objects import StateType
from sqlalchemy.engine import make_url

from runbooks.cluster import workloads
from tests.deployments.conftest import run_by_name
from tests.deployments.stack import ServedStack

pytestmark = [pytest.mark.cluster, pytest.mark.slow, pytest.mark.postgres]


def runbook(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "runbooks.cli.main", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_maintenance_runs_and_is_audited_on_prefect_and_audit_store_in_postgresql(
    cluster, postgres_server, node_group, namespace: str, tmp_path: Path
) -> None:
    prefect_db = make_url(postgres_server.create_database("prefect"))
    audit_url = postgres_server.create_database("audit")
    stack = ServedStack(
        tmp_path,
        {
            "KUBECONFIG": str(cluster.kubeconfig),
            "PREFECT_SERVER_DATABASE_CONNECTION_URL": prefect_db.set(
                drivername="postgresql+asyncpg"
            ).render_as_string(hide_password=False),
            "RUNBOOK_AUDIT_URL": audit_url,
        },
        ["--no-listener"],
    )
    try:
        stack.wait_ready()
        group = node_group(2)
        workloads.create_deployment(
            cluster.api, namespace, "web", 2, group.node_selector, min_available=1
        )
        workloads.wait_pods_ready(cluster.api, namespace, expected=2)
        workloads.wait_pdb_observed(cluster.api, namespace, "web-pdb")

        run = run_by_name(
            stack.api_url,
            "rolling-node-maintenance/on-demand",
            {"params": {"nodes": group.names, "dry_run": False}},
        )

        assert run.state is not None
        assert run.state.type == StateType.COMPLETED, f"{run.state}: {stack.tail(30)}"
        # Prefect's own record of the run is in PostgreSQL ...
        dsn = (
            f"host={prefect_db.host} port={prefect_db.port} "
            f"user={prefect_db.username} dbname={prefect_db.database}"
        )
        with psycopg.connect(dsn) as conn:
            row = conn.execute("SELECT state_type FROM flow_run WHERE id = %s", (run.id,))
            assert row.fetchone() == ("COMPLETED",)
        # ... and so is the audit trail of what it did to the nodes, with an intact chain.
        env = {"RUNBOOK_AUDIT_URL": audit_url, "PREFECT_API_URL": stack.api_url}
        shown = runbook(env, "audit", "show", "--run", str(run.id), "--output", "json")
        assert shown.returncode == 0, shown.stderr
        payload = json.loads(shown.stdout)
        records = payload["records"] if isinstance(payload, dict) else payload
        actions = {r["action"] for r in records}
        assert {"node.cordon", "pod.evict", "node.uncordon"} <= actions, actions
        touched = {r["target"] for r in records if r["action"] == "node.cordon"}
        assert touched == set(group.names)
        verified = runbook(env, "audit", "verify")
        assert verified.returncode == 0, verified.stdout + verified.stderr
    finally:
        code, _ = stack.stop()
    assert code == 0, stack.tail()
