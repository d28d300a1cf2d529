"""The report says which node failed at which step, and the exit status follows."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from runbooks.maintenance.facts import NodeInfo
from runbooks.maintenance.params import MaintenanceParams
from runbooks.maintenance.plan import build_plan
from runbooks.maintenance.report import Ledger

NOW = datetime(2026, 11, 27, 2, 0, tzinfo=UTC)


def ledger() -> Ledger:
    infos = [NodeInfo(name=n) for n in ("a", "b", "c")] + [NodeInfo(name="x", unschedulable=True)]
    params = MaintenanceParams(nodes=["a", "b", "c", "x"], max_unavailable="2")
    return Ledger(build_plan(params, infos, {}, set(), [], "r1"))


def test_halt_report_names_node_step_and_what_was_left():
    book = ledger()
    book.step_done("a", "cordon", 0.1, [])
    book.step_done("a", "drain", 2.0, ["shop/web-1", "shop/web-2"])
    book.step_done("a", "ready", 0.2, [])
    book.step_done("a", "uncordon", 0.1, [])
    book.step_done("b", "cordon", 0.1, [])
    book.step_failed(
        "b", "drain", 900, "drain of b blocked by PodDisruptionBudget shop/api-pdb", ["shop/x"]
    )
    book.left("b", "schedulable")

    report = book.report("r1", "halted", "halted: b failed at drain", NOW)

    assert report.exit_code == 1
    by_node = {r.node: r for r in report.nodes}
    assert by_node["a"].result == "maintained" and by_node["a"].pods_evicted == [
        "shop/web-1",
        "shop/web-2",
    ]
    assert by_node["b"].failed_step == "drain" and by_node["b"].left == "schedulable"
    assert by_node["c"].result == "not-started"
    assert by_node["x"].result == "skipped"
    rows = report.table()
    assert rows[1]["failed step"] == "drain" and rows[1]["drain"] == "15m"
    summary = report.summary_json()
    assert summary["status"] == "halted"
    nodes = summary["nodes"]
    assert isinstance(nodes, list), "the summary lists the nodes"
    assert nodes[1]["failed_step"] == "drain"
    assert "api-pdb" in report.to_markdown() and "api-pdb" in report.to_text()


@pytest.mark.parametrize(
    ("status", "code"),
    [("succeeded", 0), ("dry-run", 0), ("halted", 1), ("refused", 1), ("deadline", 1)],
)
def test_exit_status_is_zero_only_when_everything_asked_was_done(status, code):
    assert ledger().report("r1", status, "", NOW).exit_code == code
