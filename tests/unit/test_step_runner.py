"""The step runner: the same steps run as Prefect task runs or as plain threaded calls, a step
that raises never stops the others, and the audit context reaches every thread."""

from __future__ import annotations

import threading
import time

import pytest
from prefect import flow, task

from runbooks.audit import current_context
from tasks.audit import audit_context
from tasks.steps import LocalRunner, PrefectRunner, current_runner


@task
def check(check_id: str, fail: str = "") -> str:
    if check_id == fail:
        raise RuntimeError(f"{check_id} could not be evaluated")
    context = current_context()
    return f"{check_id} by {context.actor if context else 'nobody'}"


@task
def sleepy(node: str, barrier: threading.Barrier) -> str:
    barrier.wait(timeout=5)  # all keys must be in flight at once to get past this
    return node


def test_local_runner_runs_steps_concurrently_and_returns_failures_as_results() -> None:
    runner = LocalRunner()
    assert runner.run_id.startswith("local-") and not runner.in_prefect
    barrier = threading.Barrier(3)
    began = time.monotonic()
    assert runner.each(sleepy, ["a", "b", "c"], barrier=barrier) == {"a": "a", "b": "b", "c": "c"}
    assert time.monotonic() - began < 5
    with audit_context("test-runbook", actor="oncall:alice"):
        results = runner.each(check, ["x", "y"], key_arg="check_id", fail="y")
    assert results["x"] == "x by oncall:alice"
    assert isinstance(results["y"], RuntimeError)


def test_outside_a_flow_run_the_runner_is_local() -> None:
    assert isinstance(current_runner(), LocalRunner)


@pytest.mark.slow
def test_inside_a_flow_run_steps_are_task_runs_with_the_same_results() -> None:
    from prefect.testing.utilities import prefect_test_harness

    @flow
    def verify_demo() -> dict[str, object]:
        runner = current_runner()
        assert isinstance(runner, PrefectRunner) and runner.flow_run_id
        results = runner.each(check, ["x", "y"], key_arg="check_id", fail="y")
        return {
            k: (type(v).__name__ if isinstance(v, Exception) else v) for k, v in results.items()
        }

    with prefect_test_harness():
        assert verify_demo() == {"x": "x by nobody", "y": "RuntimeError"}
