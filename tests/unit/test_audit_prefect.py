"""The audit trail seen from Prefect (a real test-harness API): records carry the flow run,
steps show up as Prefect events, the run gets a Markdown artifact, and `runbook history`
lists real runs with their states and who started them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from prefect import flow, task

from runbooks.audit import AuditStore, RecordFilter, get_store
from runbooks.audit.checkpoints import generate_key
from tasks.audit import audit_context, audited, publish_run_summary

pytestmark = pytest.mark.slow


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[AuditStore]:
    from runbooks.settings import get_settings

    monkeypatch.setenv("RUNBOOK_AUDIT_URL", f"sqlite:///{tmp_path / 'audit.db'}")
    get_settings.cache_clear()
    yield get_store()
    get_settings.cache_clear()


@task
def cordon(node: str) -> None:
    with audited("node.cordon", node, details={"reason": "kernel update"}) as outcome:
        outcome["unschedulable"] = True


@task
def evict(node: str, pod: str) -> None:
    with audited("pod.evict", pod, target_kind="pod", details={"node": node}):
        raise RuntimeError(f"eviction of {pod} blocked by PodDisruptionBudget shop/web-pdb")


@flow(name="audit-demo-maintenance")
def demo_maintenance(node: str, fail: bool = False) -> str:
    with audit_context("audit-demo-maintenance", actor="oncall:alice"):
        cordon(node)
        if fail:
            evict(node, "shop/web-0")
        publish_run_summary()
    from prefect.runtime import flow_run

    return str(flow_run.id)


def _wait_for(check: Callable[[], list[Any]], timeout: float = 20.0) -> list[Any]:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.5)


def test_flow_records_carry_the_run_and_leave_events_and_an_artifact(
    prefect_server: str, store: AuditStore
) -> None:
    from prefect.client.orchestration import get_client
    from prefect.events.filters import EventFilter, EventNameFilter

    run_id = demo_maintenance("worker-7")
    records = store.records(RecordFilter(flow_run_id=run_id))
    assert [(r.action, r.phase, r.outcome) for r in records] == [
        ("node.cordon", "intent", None),
        ("node.cordon", "outcome", "ok"),
    ]
    assert {r.actor for r in records} == {"oncall:alice"}

    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts()
        summary = [a for a in artifacts if a.key == "audit-audit-demo-maintenance"]
        assert summary and f"runbook audit show --run {run_id}" in str(summary[0].data)

        def cordon_events() -> list[Any]:
            page = client.read_events(
                filter=EventFilter(event=EventNameFilter(name=["kube-runbooks.node.cordon.ok"])),
                limit=50,  # the client's default (100) is above the server's maximum (50)
            )
            return [e for e in page.events if e.resource.id == "k8s.node.worker-7"]

        events = _wait_for(cordon_events)
    assert events, "no kube-runbooks.node.cordon.ok event for k8s.node.worker-7"


def _history(env: dict[str, str]) -> tuple[int, dict[str, Any], str]:
    done = subprocess.run(
        [sys.executable, "-m", "runbooks.cli.main", "history", "--output", "json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return done.returncode, json.loads(done.stdout or "{}"), done.stderr


def test_history_lists_real_runs_with_state_and_who_started_them(
    prefect_server: str, store: AuditStore
) -> None:
    ok_run = demo_maintenance("worker-8")
    with pytest.raises(RuntimeError, match="blocked by PodDisruptionBudget"):
        demo_maintenance("worker-9", fail=True)
    failed_run = store.records(RecordFilter(target="worker-9", target_kind="node"))[0].flow_run_id

    code, result, err = _history(dict(os.environ))
    assert code == 0, err
    runs = {r["flow_run_id"]: r for r in result["runs"]}
    assert runs[ok_run]["status"] == "Completed"
    assert runs[ok_run]["started_by"] == "oncall:alice"
    assert runs[ok_run]["runbook"] == "audit-demo-maintenance"
    assert runs[ok_run]["parameters"] == {"node": "worker-8", "fail": False}
    assert runs[failed_run]["status"] == "Failed"
    assert runs[failed_run]["audit_failures"] == 1
    starts = [r["start"] for r in result["runs"]]
    assert starts == sorted(starts, reverse=True)


def test_history_without_a_prefect_server_says_so_and_uses_the_audit_store(
    store: AuditStore,
) -> None:
    from tasks.audit import record

    with audit_context("rolling-node-maintenance", actor="bob", flow_run_id="run-offline"):
        record("node.cordon", "worker-1")
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    code, result, err = _history(env)
    assert code == 0, err
    assert "no Prefect API configured" in err
    (run,) = [r for r in result["runs"] if r["flow_run_id"] == "run-offline"]
    assert run["started_by"] == "bob" and run["status"] == "unknown"


@flow(name="audit-demo-tagged")
def tagged_run() -> str:
    from tasks.audit import record

    record("node.cordon", "worker-5")  # no audit_context: defaults from the run
    from prefect.runtime import flow_run

    return str(flow_run.id)


def test_a_run_tagged_with_its_actor_is_attributed_to_them(
    prefect_server: str, store: AuditStore
) -> None:
    """The listener starts runs with run_deployment(tags=["actor:slack:U0REQ"]); records made
    without an explicit actor name that person, and the run's flow name and id."""
    from prefect import tags

    with tags("actor:slack:U0REQ"):
        run_id = tagged_run()
    (rec,) = store.records(RecordFilter(flow_run_id=run_id))
    assert (rec.actor, rec.runbook) == ("slack:U0REQ", "audit-demo-tagged")


def test_a_run_keeps_its_final_chain_head_in_an_artifact_an_event_and_a_checkpoint(
    prefect_server: str, store: AuditStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Copies of the run's last record (seq and hash) outside the audit database: what
    `verify --anchor` and the signed checkpoint file check a truncated trail against."""
    from prefect.client.orchestration import get_client
    from prefect.events.filters import EventFilter, EventNameFilter

    key = tmp_path / "anchor.pem"
    generate_key(key)
    monkeypatch.setenv("RUNBOOK_AUDIT_ANCHOR_KEY", str(key))
    monkeypatch.setenv("RUNBOOK_AUDIT_ANCHOR_FILE", str(tmp_path / "anchors.jsonl"))
    run_id = demo_maintenance("worker-6")
    last = store.records(RecordFilter(flow_run_id=run_id))[-1]

    (line,) = (tmp_path / "anchors.jsonl").read_text().splitlines()
    checkpoint = json.loads(line)
    assert (checkpoint["seq"], checkpoint["hash"]) == (last.seq, last.hash)
    assert checkpoint["by"].startswith(f"run {run_id} of audit-demo-maintenance")

    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts()
        heads = [
            a
            for a in artifacts
            if a.key == "audit-head-audit-demo-maintenance" and str(a.flow_run_id) == run_id
        ]
        assert heads and f"verify --anchor {last.seq}:{last.hash}" in str(heads[0].data)
        summary = [
            a
            for a in artifacts
            if a.key == "audit-audit-demo-maintenance" and str(a.flow_run_id) == run_id
        ]
        assert summary and f"Last record of this run: **{last.seq}**" in str(summary[0].data)

        def head_events() -> list[Any]:
            page = client.read_events(
                filter=EventFilter(event=EventNameFilter(name=["kube-runbooks.audit.head"])),
                limit=50,
            )
            return [e for e in page.events if e.payload.get("hash") == last.hash]

        events = _wait_for(head_events)
    assert events and events[0].payload["seq"] == last.seq


def test_verify_with_prefect_reports_records_deleted_after_a_run_without_any_key(
    prefect_server: str, store: AuditStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No signing key configured: the run heads Prefect keeps still expose the issue's attack
    (delete the newest records, rewind audit_head)."""
    from sqlalchemy import text

    monkeypatch.delenv("RUNBOOK_AUDIT_ANCHOR_KEY", raising=False)
    demo_maintenance("worker-11")
    run_id = demo_maintenance("worker-12")
    last = store.records(RecordFilter(flow_run_id=run_id))[-1]
    verify = [sys.executable, "-m", "runbooks.cli.main", "audit", "verify", "--prefect"]
    clean = subprocess.run(
        verify, env=dict(os.environ), capture_output=True, text=True, timeout=120
    )
    assert clean.returncode == 0, clean.stderr
    assert "run head(s) kept by Prefect" in clean.stderr

    keep = next(r for r in store.records() if r.seq == last.seq - 1)
    with store.engine.connect() as conn, conn.begin():
        conn.execute(text("DELETE FROM audit_records WHERE seq > :s"), {"s": keep.seq})
        conn.execute(
            text("UPDATE audit_head SET seq = :s, hash = :h"), {"s": keep.seq, "h": keep.hash}
        )
    assert store.verify().ok
    broken = subprocess.run(
        verify, env=dict(os.environ), capture_output=True, text=True, timeout=120
    )
    assert broken.returncode == 1, broken.stdout
    assert f"BROKEN at record {last.seq}: missing (deleted)" in broken.stderr
    assert f"Prefect artifact audit-head-audit-demo-maintenance of run {run_id}" in broken.stderr


def test_verify_with_prefect_but_no_prefect_api_says_so_in_one_line(store: AuditStore) -> None:
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    verify = [sys.executable, "-m", "runbooks.cli.main", "audit", "verify", "--prefect"]
    done = subprocess.run(verify, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    assert (
        done.stderr.strip()
        == "error: --prefect: no Prefect API configured (PREFECT_API_URL is unset)"
    )
