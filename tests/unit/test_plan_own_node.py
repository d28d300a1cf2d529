"""A run never drains the node it executes on (RUNBOOK_NODE_NAME, from the downward API)."""

from __future__ import annotations

import pytest

from runbooks.maintenance.facts import NodeInfo
from runbooks.maintenance.params import MaintenanceParams
from runbooks.maintenance.plan import build_plan
from runbooks.settings import Settings


def test_the_node_running_the_run_is_skipped_with_the_reason():
    nodes = [NodeInfo(name="a"), NodeInfo(name="b")]
    params = MaintenanceParams.model_validate({"nodes": ["a", "b"]})

    plan = build_plan(params, nodes, {}, set(), [], "run-1", own_node="b")

    assert plan.order == ["a"]
    [skipped] = plan.skipped
    assert skipped.node == "b" and "RUNBOOK_NODE_NAME" in (skipped.skip_reason or "")
    assert "skip: this run executes on it" in plan.to_markdown()


def test_no_own_node_skips_nothing():
    nodes = [NodeInfo(name="a")]
    params = MaintenanceParams.model_validate({"nodes": ["a"]})
    assert build_plan(params, nodes, {}, set(), [], "run-1").order == ["a"]


def test_the_setting_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("RUNBOOK_NODE_NAME", "worker-7")
    assert Settings().node_name == "worker-7"
