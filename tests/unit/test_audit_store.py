"""The audit store on both backends: tampering is caught at the row, concurrent writers keep
one chain, filters answer an auditor's questions. The same tests run on SQLite and on a real
PostgreSQL (marked ``postgres``)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from runbooks.audit import AuditStore, NewRecord, RecordFilter
from runbooks.audit.chain import Anchor, canonical_json, record_hash


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def audit_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'audit.db'}"
    server: Any = request.getfixturevalue("postgres_server")
    return str(server.create_database("audit"))


@pytest.fixture
def store(audit_url: str) -> AuditStore:
    return AuditStore(audit_url)


def _new(action: str = "node.cordon", target: str = "worker-1", **extra: Any) -> NewRecord:
    fields: dict[str, Any] = {
        "runbook": "rolling-node-maintenance",
        "actor": "alice",
        "flow_run_id": "run-1",
        "action": action,
        "target": target,
    }
    fields.update(extra)
    return NewRecord(**fields)


def _fill(store: AuditStore, count: int = 6) -> None:
    for i in range(1, count + 1):
        store.append(_new(target=f"worker-{i}", details={"step": i}))


def _sql(store: AuditStore, statement: str, **params: Any) -> None:
    with store.engine.connect() as conn, conn.begin():
        conn.execute(text(statement), params)


def test_untouched_chain_verifies(store: AuditStore) -> None:
    _fill(store)
    verdict = store.verify()
    assert verdict.ok and verdict.checked == 6 and verdict.head_seq == 6


def test_edited_row_breaks_the_chain_at_that_row(store: AuditStore) -> None:
    _fill(store)
    _sql(store, "UPDATE audit_records SET target = 'worker-99' WHERE seq = 3")
    verdict = store.verify()
    assert verdict.first_break is not None
    assert verdict.first_break.seq == 3
    assert "changed" in verdict.first_break.reason


def test_edited_row_with_recomputed_hash_is_caught_by_the_next_row(store: AuditStore) -> None:
    _fill(store)
    (row,) = [r for r in store.records() if r.seq == 3]
    forged = row.model_dump() | {"actor": "mallory"}
    forged["details"] = '{"step":3}'
    new_hash = record_hash(forged)
    _sql(
        store,
        "UPDATE audit_records SET actor = 'mallory', hash = :h WHERE seq = 3",
        h=new_hash,
    )
    verdict = store.verify()
    assert verdict.first_break is not None and verdict.first_break.seq == 4
    assert "does not link" in verdict.first_break.reason


def test_deleted_row_is_named_as_missing(store: AuditStore) -> None:
    _fill(store)
    _sql(store, "DELETE FROM audit_records WHERE seq = 3")
    verdict = store.verify()
    assert verdict.first_break is not None and verdict.first_break.seq == 3
    assert "missing" in verdict.first_break.reason


def test_deleted_last_row_is_caught_by_the_head(store: AuditStore) -> None:
    _fill(store)
    _sql(store, "DELETE FROM audit_records WHERE seq = 6")
    verdict = store.verify()
    assert verdict.first_break is not None and verdict.first_break.seq == 6


def test_inserted_row_in_the_middle_is_named(store: AuditStore) -> None:
    _fill(store)
    # Make room at 4 (renumber 4.. up by one), then slip a forged uncordon in.
    _sql(store, "UPDATE audit_records SET seq = seq + 1000 WHERE seq >= 4")
    _sql(store, "UPDATE audit_records SET seq = seq - 999 WHERE seq >= 1000")
    prev = next(r for r in store.records() if r.seq == 3)
    _sql(
        store,
        "INSERT INTO audit_records (seq, at, runbook, flow_run_id, actor, action, target_kind,"
        " target, phase, details, prev_hash, hash) VALUES (4, :at, 'rolling-node-maintenance',"
        " 'run-1', 'alice', 'node.uncordon', 'node', 'worker-3', 'event', '{}', :prev, :h)",
        at=prev.at,
        prev=prev.hash,
        h="f" * 64,
    )
    verdict = store.verify()
    assert verdict.first_break is not None and verdict.first_break.seq == 4


def test_forged_row_appended_with_a_valid_hash_is_beyond_the_head(store: AuditStore) -> None:
    _fill(store)
    last = store.records()[-1]
    row: dict[str, Any] = {
        "seq": 7,
        "at": last.at,
        "runbook": "rolling-node-maintenance",
        "flow_run_id": "run-1",
        "actor": "alice",
        "action": "node.uncordon",
        "target_kind": "node",
        "target": "worker-1",
        "phase": "event",
        "outcome": None,
        "intent_seq": None,
        "approval_id": None,
        "details": "{}",
        "prev_hash": last.hash,
    }
    row["hash"] = record_hash(row)
    columns = ", ".join(row)
    _sql(
        store,
        f"INSERT INTO audit_records ({columns}) VALUES ({', '.join(':' + c for c in row)})",
        **row,
    )
    verdict = store.verify()
    assert verdict.first_break is not None and verdict.first_break.seq == 7
    assert "inserted" in verdict.first_break.reason


_WRITER = textwrap.dedent(
    """
    import sys
    from runbooks.audit import AuditStore, NewRecord
    url, name, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    store = AuditStore(url)
    store.ensure_schema()
    open(sys.argv[4], "w").close()  # ready
    while not __import__("os").path.exists(sys.argv[5]):
        pass
    for i in range(count):
        store.append(NewRecord(runbook="concurrency", actor=name, action="pod.evict",
                               target_kind="pod", target=f"ns/{name}-{i}", details={"i": i}))
    """
)


def test_two_processes_appending_at_once_keep_one_valid_chain(
    audit_url: str, tmp_path: Path
) -> None:
    count = 150
    go = tmp_path / "go"
    procs = []
    for name in ("flow-a", "listener-b"):
        ready = tmp_path / f"ready-{name}"
        procs.append(
            (
                subprocess.Popen(
                    [
                        sys.executable,
                        "-c",
                        _WRITER,
                        audit_url,
                        name,
                        str(count),
                        str(ready),
                        str(go),
                    ],
                    stderr=subprocess.PIPE,
                    text=True,
                ),
                ready,
            )
        )
    deadline = datetime.now(UTC) + timedelta(seconds=60)
    while not all(ready.exists() for _, ready in procs) and datetime.now(UTC) < deadline:
        time.sleep(0.01)
    go.touch()
    for proc, _ in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
    store = AuditStore(audit_url)
    verdict = store.verify()
    assert verdict.ok, str(verdict.first_break)
    records = store.records()
    assert [r.seq for r in records] == list(range(1, 2 * count + 1))
    by_actor = {a: [r for r in records if r.actor == a] for a in ("flow-a", "listener-b")}
    assert all(len(rs) == count for rs in by_actor.values())
    # Both writers really interleaved: neither finished before the other started.
    first_b = by_actor["listener-b"][0].seq
    last_a = by_actor["flow-a"][-1].seq
    first_a = by_actor["flow-a"][0].seq
    last_b = by_actor["listener-b"][-1].seq
    assert first_b < last_a and first_a < last_b
    assert [r.at for r in records] == sorted(r.at for r in records)


def test_filters_answer_who_did_what_to_which_node_when(store: AuditStore) -> None:
    store.append(_new("node.cordon", "worker-1"))
    store.append(_new("pod.evict", "shop/web-0", target_kind="pod", details={"node": "worker-1"}))
    store.append(_new("node.cordon", "worker-10", actor="bob", flow_run_id="run-2"))
    store.append(
        _new(
            "approval.decide",
            "apr-1",
            target_kind="approval",
            actor="U0APPROVER",
            approval_id="apr-1",
        )
    )
    node = store.records(RecordFilter(target="worker-1", target_kind="node"))
    assert [(r.action, r.target) for r in node] == [
        ("node.cordon", "worker-1"),
        ("pod.evict", "shop/web-0"),
    ]
    assert [r.target for r in store.records(RecordFilter(actor="bob"))] == ["worker-10"]
    assert len(store.records(RecordFilter(flow_run_id="run-2"))) == 1
    assert [r.action for r in store.records(RecordFilter(action="approval."))] == [
        "approval.decide"
    ]
    future = datetime.now(UTC) + timedelta(hours=1)
    assert store.records(RecordFilter(since=future)) == []
    assert len(store.records(RecordFilter(until=future))) == 4
    newest = store.records(RecordFilter(limit=1, newest_first=True))
    assert newest[0].action == "approval.decide"


def test_outcome_marks_its_intent_closed(store: AuditStore) -> None:
    intent = store.append(_new(phase="intent"))
    dangling = store.append(_new(target="worker-2", phase="intent"))
    store.append(_new(phase="outcome", outcome="ok", intent_seq=intent.seq))
    assert store.open_intents([intent.seq, dangling.seq]) == {dangling.seq}


def test_unreachable_store_says_where_and_why(tmp_path: Path) -> None:
    from runbooks.audit import AuditStoreError

    store = AuditStore("postgresql://nobody@127.0.0.1:1/none")
    with pytest.raises(AuditStoreError, match=r"127\.0\.0\.1:1/none: cannot create its tables"):
        store.append(_new())


def test_chain_rebuilt_with_database_access_is_caught_by_a_kept_anchor(store: AuditStore) -> None:
    """Someone who can write the database and knows the algorithm rewrites record 3 and
    re-hashes everything after it: the chain is consistent again, the anchor is not."""
    _fill(store)
    before = store.verify()
    anchor = Anchor.parse(f"{before.head_seq}:{before.head_hash[:16]}")
    prev = next(r for r in store.records() if r.seq == 2).hash
    for rec in store.records():
        if rec.seq < 3:
            continue
        row = rec.model_dump()
        row["details"] = canonical_json(rec.details)
        row["actor"] = "mallory" if rec.seq == 3 else rec.actor
        row["prev_hash"] = prev
        row["hash"] = record_hash(row)
        _sql(
            store,
            "UPDATE audit_records SET actor = :actor, prev_hash = :prev_hash, hash = :hash "
            "WHERE seq = :seq",
            **row,
        )
        prev = row["hash"]
    _sql(store, "UPDATE audit_head SET hash = :h", h=prev)
    assert store.verify().ok  # the chain alone cannot tell
    verdict = store.verify(anchor)
    assert verdict.first_break is not None and verdict.first_break.seq == 6
    assert "rewritten" in verdict.first_break.reason


def test_neighbours_write_in_the_same_database_without_breaking_the_chain(
    store: AuditStore,
) -> None:
    """The approvals table shares the store's database (and its engine)."""
    _fill(store, 2)
    with store.writing() as conn:
        conn.execute(text("CREATE TABLE approvals_probe (id INTEGER PRIMARY KEY, state TEXT)"))
        conn.execute(text("INSERT INTO approvals_probe VALUES (1, 'pending')"))
    with store.writing() as conn:
        changed = conn.execute(
            text("UPDATE approvals_probe SET state = 'approved' WHERE id = 1 AND state = 'pending'")
        ).rowcount
    assert changed == 1
    store.append(_new())
    assert store.verify().ok


def test_verify_command_names_the_tampered_record(store: AuditStore, audit_url: str) -> None:
    """`runbook audit verify` as an auditor runs it, against this backend."""
    import os

    _fill(store)
    runbook = [os.path.join(os.path.dirname(sys.executable), "runbook"), "audit", "verify"]
    env = {**os.environ, "RUNBOOK_AUDIT_URL": audit_url}
    clean = subprocess.run(runbook, env=env, capture_output=True, text=True, timeout=60)
    assert clean.returncode == 0 and "intact: 6 records" in clean.stdout, clean.stderr
    _sql(store, "UPDATE audit_records SET outcome = 'ok' WHERE seq = 4")
    broken = subprocess.run(runbook, env=env, capture_output=True, text=True, timeout=60)
    assert broken.returncode == 1 and "BROKEN at record 4: content changed" in broken.stderr
