"""The recording API the runbooks call: intent before, outcome after, context carried along."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from runbooks.audit import AuditStore, RecordFilter
from runbooks.audit.store import get_store
from tasks.audit import audit_context, audited, record


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[AuditStore]:
    """A private SQLite store, found the way runbooks find it: through settings."""
    from runbooks.settings import get_settings

    monkeypatch.setenv("RUNBOOK_AUDIT_URL", f"sqlite:///{tmp_path / 'audit.db'}")
    get_settings.cache_clear()
    yield get_store()
    get_settings.cache_clear()


def test_audited_writes_intent_then_outcome_linked_to_it(store: AuditStore) -> None:
    with (
        audit_context("rolling-node-maintenance", actor="alice"),
        audited("node.cordon", "worker-1", details={"reason": "kernel"}) as outcome,
    ):
        outcome["was_cordoned"] = False
    intent, done = store.records()
    assert (intent.phase, intent.action, intent.target, intent.actor) == (
        "intent",
        "node.cordon",
        "worker-1",
        "alice",
    )
    assert intent.runbook == "rolling-node-maintenance"
    assert (done.phase, done.outcome, done.intent_seq) == ("outcome", "ok", intent.seq)
    assert done.details == {"reason": "kernel", "was_cordoned": False}


def test_failed_step_records_the_error_and_reraises(store: AuditStore) -> None:
    with (
        pytest.raises(RuntimeError, match="budget"),
        audit_context("m", actor="bob"),
        audited("pod.evict", "payments/api-0", target_kind="pod", details={"node": "w2"}),
    ):
        raise RuntimeError("blocked by budget payments/api-pdb")
    intent, done = store.records()
    assert done.outcome == "failed"
    assert "blocked by budget payments/api-pdb" in done.details["error"]
    assert done.intent_seq == intent.seq


def test_record_outside_any_context_names_the_os_user(
    store: AuditStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RUNBOOK_ACTOR", "schedule:prod-eu-window")
    seq = record("approval.request", "apr-1", target_kind="approval", approval_id="apr-1")
    (rec,) = store.records(RecordFilter(action="approval.request"))
    assert rec.seq == seq
    assert rec.actor == "schedule:prod-eu-window"
    assert rec.flow_run_id is None


def test_secrets_never_reach_the_store(store: AuditStore) -> None:
    kubeconfig = "apiVersion: v1\nkind: Config\nclusters:\n- cluster: {server: x}\nusers: []\n"
    record(
        "node.cordon",
        "w1",
        details={"token": "s3cr3t-value", "kubeconfig": kubeconfig, "note": "xoxb-1234567890-abc"},
    )
    (rec,) = store.records()
    text = str(rec.details)
    assert "s3cr3t-value" not in text and "kind: Config" not in text and "xoxb-" not in text


def test_threads_of_a_run_inherit_its_context(store: AuditStore) -> None:
    """A plain thread pool (the maintenance flow's local mode) does not copy context
    variables; the one open context still applies to its records."""
    from concurrent.futures import ThreadPoolExecutor

    def cordon(node: str) -> int:
        return record("node.cordon", node)

    with (
        audit_context("rolling-node-maintenance", actor="carol", flow_run_id="local-1"),
        ThreadPoolExecutor(max_workers=2) as pool,
    ):
        list(pool.map(cordon, ["w1", "w2"]))
    records = store.records()
    assert {(r.runbook, r.actor, r.flow_run_id) for r in records} == {
        ("rolling-node-maintenance", "carol", "local-1")
    }


def test_a_step_error_stays_the_error_when_the_outcome_cannot_be_written(
    store: AuditStore,
) -> None:
    """The operator sees why the step failed; the trail shows an intent without an outcome."""
    from sqlalchemy import text

    with pytest.raises(RuntimeError, match="drain of worker-3 failed"), audited("node.drain", "w3"):
        with store.engine.connect() as conn, conn.begin():
            conn.execute(text("DROP TABLE audit_head"))  # the store breaks mid-step
        raise RuntimeError("drain of worker-3 failed")
    (intent,) = store.records()
    assert intent.phase == "intent" and store.open_intents([intent.seq]) == {intent.seq}


def test_carried_functions_keep_the_context_even_with_several_runs_open(
    store: AuditStore,
) -> None:
    """Two runs in one process (no safe guess): ``carried`` still attributes each thread."""
    from concurrent.futures import ThreadPoolExecutor

    from tasks.audit import carried

    def cordon(node: str) -> int:
        return record("node.cordon", node)

    with (
        audit_context("maintenance-a", actor="carol", flow_run_id="run-a"),
        ThreadPoolExecutor(max_workers=2) as pool,
    ):
        with audit_context("maintenance-b", actor="dave", flow_run_id="run-b"):
            list(pool.map(carried(cordon), ["b1", "b2"]))
        list(pool.map(carried(cordon), ["a1"]))
    got = {r.target: (r.actor, r.flow_run_id) for r in store.records()}
    assert got == {"b1": ("dave", "run-b"), "b2": ("dave", "run-b"), "a1": ("carol", "run-a")}


def test_a_process_killed_mid_step_leaves_an_intent_without_outcome(store: AuditStore) -> None:
    """SIGKILL between intent and outcome: no outcome is written, and the trail says so."""
    import os
    import subprocess
    import sys

    script = (
        "import os, signal\n"
        "from tasks.audit import audit_context, audited\n"
        "with audit_context('rolling-node-maintenance', actor='alice', flow_run_id='run-k'):\n"
        "    with audited('node.cordon', 'worker-4'):\n"
        "        os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], env=dict(os.environ), timeout=60)
    assert done.returncode == -9
    (intent,) = store.records()
    assert (intent.phase, intent.target) == ("intent", "worker-4")
    assert store.open_intents([intent.seq]) == {intent.seq}
    assert store.verify().ok
