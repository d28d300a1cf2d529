"""One node step (cordon, drain, act, wait Ready, uncordon) for a batch of nodes at once.

The step runner returns each call's result or the exception it raised; a runbook that acts on
nodes wants a ``StepDone`` or a ``StepFailed`` per node, so an unforeseen exception is still a
failure of that node's step (named in the report), never a crash of the whole rollout.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tasks.kube.maintenance_steps import StepDone, StepFailed
from tasks.steps import Step, StepRunner

Outcome = StepDone | StepFailed


def each_node(
    runner: StepRunner,
    step: Step,
    nodes: list[str],
    *,
    per_node: Mapping[str, Mapping[str, Any]] | None = None,
    **common: Any,
) -> dict[str, Outcome]:
    """``step(node=n, **common, **per_node[n])`` for every node at once; each node's outcome."""
    raw = runner.each(step, nodes, per_key=per_node, **common)
    return {node: as_outcome(node, step.name, value) for node, value in raw.items()}


def as_outcome(node: str, step: str, value: Any) -> Outcome:
    if isinstance(value, StepDone | StepFailed):
        return value
    if isinstance(value, BaseException):  # not a step failure we foresaw: still a failure
        return StepFailed(node, step, f"{type(value).__name__}: {value}", 0.0)
    return StepFailed(node, step, f"unexpected result {value!r}", 0.0)
