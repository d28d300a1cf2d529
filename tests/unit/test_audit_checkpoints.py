"""Signed checkpoints of the chain's head, kept outside the database: deleting the newest
records (and rewinding `audit_head` to match) is reported by `runbook audit verify`; a
checkpoint file edited by hand is reported too; normal appends keep every checkpoint valid."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import text
from typer.testing import CliRunner

from runbooks.audit import AuditStore, get_store
from runbooks.cli.main import app
from tasks.audit import audit_context, audited, record

runner = CliRunner()


@pytest.fixture
def signing_key(tmp_path: Path) -> Path:
    """An ed25519 key as an operator keeps it (a file outside the state dir, mode 0600)."""
    key = Ed25519PrivateKey.generate()
    path = tmp_path / "keys" / "anchor.pem"
    path.parent.mkdir()
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    path.chmod(0o600)
    return path


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def audit_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'state' / 'audit.db'}"
    server: Any = request.getfixturevalue("postgres_server")
    return str(server.create_database("audit"))


@pytest.fixture
def store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, signing_key: Path, audit_url: str
) -> Iterator[AuditStore]:
    from runbooks.settings import get_settings

    monkeypatch.setenv("RUNBOOK_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("RUNBOOK_AUDIT_URL", audit_url)
    monkeypatch.setenv("RUNBOOK_AUDIT_ANCHOR_KEY", str(signing_key))
    monkeypatch.delenv("RUNBOOK_AUDIT_ANCHOR_FILE", raising=False)
    monkeypatch.delenv("RUNBOOK_AUDIT_ANCHOR_PUBLIC_KEY", raising=False)
    get_settings.cache_clear()
    yield get_store()
    get_settings.cache_clear()


def anchor_file(tmp_path: Path) -> Path:
    return tmp_path / "state" / "audit-anchors.jsonl"


def maintenance_run(run_id: str, nodes: list[str]) -> None:
    """What a run leaves: a start, a cordon per node, a finish; the run ends when its
    outermost audit context closes."""
    with audit_context("rolling-node-maintenance", actor="alice", flow_run_id=run_id):
        record("run.start", "prod-eu", target_kind="cluster")
        for node in nodes:
            with audited("node.cordon", node):
                pass
        record("run.finish", "prod-eu", target_kind="cluster", outcome="succeeded")


def sql(store: AuditStore, statement: str, **params: Any) -> None:
    with store.engine.connect() as conn, conn.begin():
        conn.execute(text(statement), params)


def verify(*extra: str) -> tuple[int, str, str]:
    result = runner.invoke(app, ["audit", "verify", *extra])
    return result.exit_code, result.stdout, result.stderr


def test_deleting_the_newest_records_and_rewinding_the_head_is_reported(
    store: AuditStore,
) -> None:
    """The issue's attack: delete the last records, copy the previous hash into audit_head."""
    maintenance_run("run-aaaa1111", ["worker-1", "worker-2"])  # records 1-6
    code, out, err = verify()
    assert code == 0, err
    keep = next(r for r in store.records() if r.seq == 3)
    sql(store, "DELETE FROM audit_records WHERE seq > 3")
    sql(store, "UPDATE audit_head SET seq = :seq, hash = :hash", seq=keep.seq, hash=keep.hash)
    assert store.verify().ok  # the database alone is consistent again

    code, out, err = verify()
    assert code == 1, out
    assert "BROKEN" in err and "record 4" in err, err
    assert "checkpoint" in err and "6" in err, err


def test_truncation_is_reported_in_json_too(store: AuditStore) -> None:
    maintenance_run("run-aaaa1111", ["worker-1"])  # records 1-4
    keep = next(r for r in store.records() if r.seq == 2)
    sql(store, "DELETE FROM audit_records WHERE seq > 2")
    sql(store, "UPDATE audit_head SET seq = :seq, hash = :hash", seq=keep.seq, hash=keep.hash)
    code, out, _ = verify("-o", "json")
    verdict = json.loads(out)
    assert code == 1 and verdict["ok"] is False and verdict["first_broken_seq"] == 3
    assert verdict["checkpoints"] == 1


def test_a_chain_rebuilt_to_disagree_with_a_checkpoint_is_reported(store: AuditStore) -> None:
    """Someone with database access rewrites record 2 and re-hashes everything after it: the
    chain is consistent, the checkpoint of record 4 is not."""
    from runbooks.audit.chain import canonical_json, record_hash

    maintenance_run("run-aaaa1111", ["worker-1"])  # records 1-4, checkpoint at 4
    prev = next(r for r in store.records() if r.seq == 1).hash
    for rec in store.records():
        if rec.seq < 2:
            continue
        row = rec.model_dump()
        row["details"] = canonical_json(rec.details)
        row["actor"] = "mallory" if rec.seq == 2 else rec.actor
        row["prev_hash"] = prev
        row["hash"] = record_hash(row)
        sql(
            store,
            "UPDATE audit_records SET actor = :actor, prev_hash = :prev_hash, hash = :hash "
            "WHERE seq = :seq",
            **row,
        )
        prev = row["hash"]
    sql(store, "UPDATE audit_head SET hash = :h", h=prev)
    assert store.verify().ok

    code, _, err = verify()
    assert code == 1 and "BROKEN at record 4" in err and "chain rewritten" in err, err


def test_an_edited_checkpoint_file_is_reported(store: AuditStore, tmp_path: Path) -> None:
    """Lowering a checkpoint's seq to hide a truncation breaks its signature."""
    maintenance_run("run-aaaa1111", ["worker-1"])  # records 1-4
    path = anchor_file(tmp_path)
    line = json.loads(path.read_text())
    keep = next(r for r in store.records() if r.seq == 2)
    line.update(seq=2, hash=keep.hash)
    path.write_text(json.dumps(line) + "\n")
    sql(store, "DELETE FROM audit_records WHERE seq > 2")
    sql(store, "UPDATE audit_head SET seq = 2, hash = :hash", hash=keep.hash)

    code, out, err = verify()
    assert code == 1, out
    assert f"audit checkpoints BROKEN: {path} line 1: signature does not verify" in err
    assert "intact" not in out


def test_a_garbled_or_cut_checkpoint_line_is_reported(store: AuditStore, tmp_path: Path) -> None:
    maintenance_run("run-aaaa1111", ["worker-1"])
    path = anchor_file(tmp_path)
    path.write_text(path.read_text() + '{"v": 1, "seq": 3')  # no line end, not JSON
    code, out, _ = verify("-o", "json")
    verdict = json.loads(out)
    assert code == 1 and verdict["ok"] is False
    assert any("line 2: cut short" in p for p in verdict["checkpoint_problems"])
    assert any("line 2: not a checkpoint" in p for p in verdict["checkpoint_problems"])


def test_a_checkpoint_signed_with_another_key_names_both_keys(
    store: AuditStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    maintenance_run("run-aaaa1111", ["worker-1"])
    other = tmp_path / "other.pem"
    assert runner.invoke(app, ["audit", "keygen", str(other)]).exit_code == 0
    monkeypatch.setenv("RUNBOOK_AUDIT_ANCHOR_KEY", str(other))
    code, _, err = verify()
    assert code == 1 and "signed with another key; it names key" in err, err


def test_checkpoints_survive_normal_appends(store: AuditStore, tmp_path: Path) -> None:
    """Runs, records outside runs, and `runbook audit anchor` in between: every checkpoint
    stays valid as the chain grows, and verify checks all of them."""
    maintenance_run("run-1", ["worker-1", "worker-2"])  # 1-6
    record("approval.decide", "apr-1", target_kind="approval", outcome="approved")  # 7
    result = runner.invoke(app, ["audit", "anchor"])
    assert result.exit_code == 0 and "checkpoint written: record 7" in result.stdout
    maintenance_run("run-2", ["worker-3"])  # 8-11
    maintenance_run("run-3", [])  # 12-13

    lines = [json.loads(x) for x in anchor_file(tmp_path).read_text().splitlines()]
    assert [c["seq"] for c in lines] == [6, 7, 11, 13]
    assert lines[0]["by"].startswith("run run-1 of rolling-node-maintenance")
    code, out, err = verify()
    assert code == 0 and "intact: 13 records" in out, err
    assert "checked against 4 signed checkpoint(s)" in err
    assert anchor_file(tmp_path).stat().st_mode & 0o777 == 0o600


def test_a_run_that_fails_still_leaves_its_checkpoint(store: AuditStore, tmp_path: Path) -> None:
    with (
        pytest.raises(RuntimeError, match="eviction blocked"),
        audit_context("rolling-node-maintenance", actor="alice", flow_run_id="run-f"),
        audited("pod.evict", "shop/web-0", target_kind="pod"),
    ):
        raise RuntimeError("eviction blocked")
    (line,) = anchor_file(tmp_path).read_text().splitlines()
    assert json.loads(line)["seq"] == 2


def test_a_nested_context_does_not_checkpoint_before_its_run_ends(
    store: AuditStore, tmp_path: Path
) -> None:
    with audit_context("rolling-node-maintenance", actor="alice", flow_run_id="run-n"):
        with audit_context("rolling-node-maintenance", flow_run_id="run-n"):
            record("node.cordon", "worker-1")
        assert not anchor_file(tmp_path).exists()
        record("node.uncordon", "worker-1")
    (line,) = anchor_file(tmp_path).read_text().splitlines()
    assert json.loads(line)["seq"] == 2


def test_a_flow_run_inside_a_callers_context_checkpoints_when_it_ends(
    store: AuditStore, tmp_path: Path
) -> None:
    """A caller wraps a flow to name the actor; the flow's own run (another run id) ends first."""
    with audit_context("rolling-node-maintenance", actor="erin"):
        with audit_context("rolling-node-maintenance", flow_run_id="run-inner"):
            record("node.cordon", "worker-1")
        (line,) = anchor_file(tmp_path).read_text().splitlines()
        assert json.loads(line)["by"].startswith("run run-inner of")
    assert len(anchor_file(tmp_path).read_text().splitlines()) == 1  # the outer wrote nothing


def test_anchor_refuses_to_sign_a_trail_that_does_not_verify(
    store: AuditStore, tmp_path: Path
) -> None:
    maintenance_run("run-1", ["worker-1"])
    before = anchor_file(tmp_path).read_text()
    sql(store, "UPDATE audit_records SET actor = 'mallory' WHERE seq = 2")
    result = runner.invoke(app, ["audit", "anchor"])
    assert result.exit_code == 1
    assert "not anchoring a trail that does not verify: record 2" in result.stderr
    assert anchor_file(tmp_path).read_text() == before


@pytest.mark.parametrize(
    ("env", "args", "message"),
    [
        (
            {"RUNBOOK_AUDIT_ANCHOR_KEY": ""},
            ["anchor"],
            "no signing key: set RUNBOOK_AUDIT_ANCHOR_KEY",
        ),
        ({"RUNBOOK_AUDIT_ANCHOR_KEY": "/nonexistent/k.pem"}, ["anchor"], "cannot read it"),
        ({"RUNBOOK_AUDIT_ANCHOR_KEY": "/etc/hostname"}, ["verify"], "is not an unencrypted PEM"),
        ({"RUNBOOK_AUDIT_ANCHOR_KEY": ""}, ["verify"], "holds signed checkpoints but no key"),
        ({}, ["verify", "--public-key", "/nonexistent.pub"], "cannot read it"),
        ({}, ["keygen", "{tmp}/keys/anchor.pem"], "exists already: not overwriting a key"),
    ],
)
def test_anchoring_mistakes_exit_2_with_one_line(
    store: AuditStore,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    env: dict[str, str],
    args: list[str],
    message: str,
) -> None:
    maintenance_run("run-1", ["worker-1"])  # a checkpoint file exists
    before = anchor_file(tmp_path).read_text()
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    result = runner.invoke(app, ["audit", *[a.format(tmp=tmp_path) for a in args]])
    assert result.exit_code == 2, result.output
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert anchor_file(tmp_path).read_text() == before


def test_without_checkpoints_verify_says_what_it_cannot_detect(
    store: AuditStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("RUNBOOK_AUDIT_ANCHOR_KEY")
    maintenance_run("run-1", ["worker-1"])
    code, out, err = verify()
    assert code == 0 and "intact: 4 records" in out
    assert "no signed checkpoints" in err and "cannot be detected" in err


def test_a_removed_checkpoint_file_fails_verify_when_checkpoints_are_required(
    store: AuditStore, tmp_path: Path
) -> None:
    maintenance_run("run-1", ["worker-1"])
    assert verify("--require-checkpoints")[0] == 0
    anchor_file(tmp_path).unlink()
    code, _, err = verify("--require-checkpoints")
    assert code == 1 and "the file does not exist" in err and "--require-checkpoints" in err


def test_checkpoints_of_another_store_are_skipped_not_failed(
    store: AuditStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from runbooks.settings import get_settings

    maintenance_run("run-1", ["worker-1"])
    monkeypatch.setenv("RUNBOOK_AUDIT_URL", f"sqlite:///{tmp_path / 'state' / 'other.db'}")
    get_settings.cache_clear()
    maintenance_run("run-2", ["worker-2"])
    code, out, err = verify()
    assert code == 0 and "intact: 4 records" in out, err
    assert "1 signed checkpoint(s)" in err and "1 for other stores skipped" in err


@pytest.mark.slow
def test_concurrent_runs_in_several_processes_keep_every_checkpoint_valid(
    store: AuditStore, tmp_path: Path
) -> None:
    import os
    import subprocess
    import sys

    script = (
        "import sys\n"
        "from tasks.audit import audit_context, record\n"
        "for i in range(15):\n"
        "    with audit_context('m', actor='a', flow_run_id=f'{sys.argv[1]}-{i}'):\n"
        "        record('node.cordon', 'w1')\n"
        "        record('node.uncordon', 'w1')\n"
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", script, name], env=dict(os.environ))
        for name in ("p1", "p2", "p3")
    ]
    assert all(p.wait(timeout=120) == 0 for p in procs)
    assert len(anchor_file(tmp_path).read_text().splitlines()) == 45
    code, out, err = verify()
    assert code == 0 and "intact: 90 records" in out and "45 signed checkpoint(s)" in err, err


def test_a_run_without_a_key_still_logs_its_final_head(
    store: AuditStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: Any
) -> None:
    import logging

    monkeypatch.delenv("RUNBOOK_AUDIT_ANCHOR_KEY")
    with caplog.at_level(logging.INFO, logger="tasks.audit"):
        maintenance_run("run-log", ["worker-1"])
    last = store.records()[-1]
    assert f"run run-log ended at record {last.seq} (hash {last.hash})" in caplog.text
    assert not anchor_file(tmp_path).exists()
