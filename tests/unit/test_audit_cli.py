"""`runbook audit` as an operator uses it: filters, tables and JSON, verify's verdict and exit
code, exports, and one clear line (exit 2) for bad input."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from runbooks.audit import AuditStore, get_store
from runbooks.cli.main import app
from tasks.audit import audit_context, audited, record

runner = CliRunner()


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[AuditStore]:
    from runbooks.settings import get_settings

    monkeypatch.setenv("RUNBOOK_AUDIT_URL", f"sqlite:///{tmp_path / 'audit.db'}")
    get_settings.cache_clear()
    yield get_store()
    get_settings.cache_clear()


@pytest.fixture
def maintenance_trail(store: AuditStore) -> AuditStore:
    """What a small maintenance run leaves: cordon, an eviction, an approval, a crash."""
    with audit_context("rolling-node-maintenance", actor="alice", flow_run_id="run-aaaa1111"):
        with audited("node.cordon", "worker-1") as out:
            out["unschedulable"] = True
        with audited("pod.evict", "shop/web-0", target_kind="pod", details={"node": "worker-1"}):
            pass
        record(
            "approval.decide",
            "apr-1",
            target_kind="approval",
            actor="U0APPROVER",
            approval_id="apr-1",
            outcome="approved",
        )
        record("node.cordon", "worker-2", phase="intent")  # crashed before its outcome
    with (
        audit_context("rolling-node-maintenance", actor="bob", flow_run_id="run-bbbb2222"),
        audited("node.cordon", "worker-10"),
    ):
        pass
    return store


def run(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_show_node_lists_its_records_and_its_evicted_pods(maintenance_trail: AuditStore) -> None:
    code, out, _ = run("audit", "show", "--node", "worker-1")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split()[:2] == ["SEQ", "TIME"]
    body = "\n".join(lines[1:])
    assert "node/worker-1" in body and "pod/shop/web-0" in body
    assert "worker-10" not in body and "worker-2" not in body
    assert len(lines) == 5  # header + 2 cordon + 2 evict


def test_show_marks_an_intent_without_outcome(maintenance_trail: AuditStore) -> None:
    code, out, _ = run("audit", "show", "--node", "worker-2")
    assert code == 0 and "NO OUTCOME" in out


def test_show_json_filters_by_actor_action_and_run(maintenance_trail: AuditStore) -> None:
    code, out, _ = run("audit", "show", "--actor", "U0APPROVER", "--output", "json")
    assert code == 0
    (rec,) = json.loads(out)
    assert (rec["action"], rec["approval_id"], rec["outcome"]) == (
        "approval.decide",
        "apr-1",
        "approved",
    )
    code, out, _ = run("audit", "show", "--run", "run-bbbb", "-o", "json")  # a prefix
    assert {r["target"] for r in json.loads(out)} == {"worker-10"}
    code, out, _ = run("audit", "show", "--action", "pod.", "-o", "json")
    assert [r["phase"] for r in json.loads(out)] == ["intent", "outcome"]
    code, out, _ = run("audit", "show", "--since", "1h", "--last", "1", "-o", "json")
    assert [r["target"] for r in json.loads(out)] == ["worker-10"]
    code, out, _ = run("audit", "show", "--outcome", "approved", "-o", "json")
    assert [r["action"] for r in json.loads(out)] == ["approval.decide"]
    code, out, _ = run("audit", "show", "--day", "2001-01-01", "-o", "json")
    assert json.loads(out) == []


def test_verify_passes_then_names_the_tampered_record(maintenance_trail: AuditStore) -> None:
    code, out, _ = run("audit", "verify")
    assert code == 0 and "intact: 8 records" in out
    anchor = out.rsplit("anchor to keep: ", 1)[1].strip()
    assert anchor.startswith("8:")
    assert run("audit", "verify", "--anchor", anchor)[0] == 0
    with maintenance_trail.engine.connect() as conn, conn.begin():
        conn.execute(text("UPDATE audit_records SET actor = 'mallory' WHERE seq = 5"))
    code, _, err = run("audit", "verify")
    assert code == 1
    assert "BROKEN at record 5" in err
    code, out, _ = run("audit", "verify", "--output", "json")
    assert code == 1
    verdict = json.loads(out)
    assert (verdict["ok"], verdict["first_broken_seq"]) == (False, 5)


def test_export_jsonl_and_csv_carry_every_record_with_its_hash(
    maintenance_trail: AuditStore,
) -> None:
    code, out, _ = run("audit", "export", "--format", "jsonl")
    rows = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and [r["seq"] for r in rows] == list(range(1, 9))
    assert all(len(r["hash"]) == 64 for r in rows)
    code, out, _ = run("audit", "export", "--format", "csv", "--node", "worker-1")
    table = list(csv.DictReader(io.StringIO(out)))
    assert code == 0 and len(table) == 4
    assert json.loads(table[1]["details"]) == {"unschedulable": True}
    assert {row["target"] for row in table} == {"worker-1", "shop/web-0"}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["audit", "show", "--since", "last tuesday"], "--since 'last tuesday' is not a time"),
        (["audit", "show", "--output", "yaml"], "--output 'yaml' is not supported"),
        (["audit", "show", "--node", "a", "--target", "b"], "give --node or --target"),
        (["audit", "show", "--since", "1h", "--until", "2h"], "must be before --until"),
        (["audit", "show", "--day", "2026-11-24", "--since", "1h"], "give --day or --since"),
        (["audit", "export", "--format", "xml"], "--format 'xml' is not supported"),
        (["history", "--output", "html"], "--output 'html' is not supported"),
        (["audit", "verify", "--anchor", "12"], "anchor '12' is not SEQ:HASH"),
        (["audit", "show", "--last", "0"], "--last 0: give a number of records"),
        (["audit", "show", "--nodes", "w1"], "No such option: --nodes"),
        (["audit", "export", "--format"], "requires an argument"),
        (["history", "--limit", "0"], "--limit 0: give a number of runs from 1 to 200"),
    ],
)
def test_bad_input_exits_2_with_one_clear_line(
    store: AuditStore, args: list[str], message: str
) -> None:
    code, out, err = run(*args)
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("error: ") and message in err
    assert out == ""


def test_unreachable_store_exits_1_with_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    from runbooks.settings import get_settings

    monkeypatch.setenv("RUNBOOK_AUDIT_URL", "postgresql://auditor:hunter2@127.0.0.1:1/audit")
    get_settings.cache_clear()
    try:
        code, _, err = run("audit", "verify")
    finally:
        get_settings.cache_clear()
    assert code == 1 and err.count("\n") == 1
    assert "127.0.0.1:1/audit: cannot create its tables" in err
    assert "hunter2" not in err


def test_installed_command_verifies_a_tampered_store(maintenance_trail: AuditStore) -> None:
    """The console script, as an auditor runs it, in its own process."""
    with maintenance_trail.engine.connect() as conn, conn.begin():
        conn.execute(text("DELETE FROM audit_records WHERE seq = 3"))
    done = subprocess.run(
        [os.path.join(os.path.dirname(sys.executable), "runbook"), "audit", "verify"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert "BROKEN at record 3: missing (deleted)" in done.stderr
