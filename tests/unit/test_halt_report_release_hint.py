"""A halted run's report says which nodes it left cordoned and how to give them back:
`runbook release`, which lifts only the engine's own cordons (not `kubectl uncordon`)."""

from __future__ import annotations

from datetime import UTC, datetime

from runbooks.maintenance.facts import NodeInfo
from runbooks.maintenance.params import MaintenanceParams
from runbooks.maintenance.plan import build_plan
from runbooks.maintenance.report import Ledger

NOW = datetime(2026, 12, 2, 13, 0, tzinfo=UTC)


def halted_with(left: dict[str, str]) -> Ledger:
    names = list(left)
    plan = build_plan(
        MaintenanceParams(nodes=names), [NodeInfo(name=n) for n in names], {}, set(), [], "r1"
    )
    book = Ledger(plan)
    for node, state in left.items():
        book.step_done(node, "cordon", 0.1, [])
        book.step_failed(node, "ready", 30, f"node {node} not Ready; waited 30s", [])
        book.left(node, state)  # type: ignore[arg-type]
    return book


def test_halt_report_names_the_nodes_left_cordoned_and_the_release_command():
    report = halted_with({"w-1": "cordoned", "w-2": "schedulable", "w-3": "cordoned"}).report(
        "r1", "halted", "w-1 failed at ready", NOW
    )

    hint = "left cordoned by this run: w-1, w-3; rerun to finish them, or `runbook release w-1 w-3`"
    assert hint in report.to_text()
    assert hint in report.to_markdown()
    assert "kubectl uncordon" not in report.to_text()


def test_no_release_hint_when_nothing_was_left_cordoned():
    report = halted_with({"w-1": "schedulable"}).report("r1", "halted", "w-1 failed", NOW)
    assert "runbook release" not in report.to_text()
