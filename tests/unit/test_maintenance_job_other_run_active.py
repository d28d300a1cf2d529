"""Which listed kube-runbooks Jobs block a node: only another run's Job for this very node
(the label may be a hash, so the full node name decides) that is not yet Complete or Failed."""

from __future__ import annotations

import pytest

from runbooks.maintenance.job_manifest import (
    NODE_ANNOTATION,
    RUN_ANNOTATION,
    finished,
    label_value,
    node_jobs_selector,
    other_run,
)

LONG = "gke-prod-eu1-default-pool-5f3c9a7e-" + "x" * 60


@pytest.mark.parametrize(
    ("annotations", "expected"),
    [
        ({RUN_ANNOTATION: "other-run", NODE_ANNOTATION: "n1"}, "other-run"),
        ({RUN_ANNOTATION: "this-run", NODE_ANNOTATION: "n1"}, None),  # ours: adopted
        ({RUN_ANNOTATION: "other-run", NODE_ANNOTATION: "n1x"}, None),  # another node's
        ({NODE_ANNOTATION: "n1"}, "unknown"),  # run not recorded: still blocks
        (None, None),
    ],
)
def test_only_another_runs_job_for_this_node_counts(annotations, expected) -> None:
    assert other_run(annotations, "n1", "this-run") == expected


@pytest.mark.parametrize(
    ("conditions", "over"),
    [
        ([], False),
        ([("FailureTarget", "True")], False),  # its pod may still be terminating
        ([("SuccessCriteriaMet", "True")], False),
        ([("Complete", "False")], False),
        ([("SuccessCriteriaMet", "True"), ("Complete", "True")], True),
        ([("Failed", "True")], True),
    ],
)
def test_a_job_is_over_only_when_complete_or_failed(conditions, over) -> None:
    assert finished(conditions) is over


def test_the_selector_uses_the_label_value_a_long_node_name_gets() -> None:
    selector = node_jobs_selector(LONG)
    assert selector == (
        "app.kubernetes.io/managed-by=kube-runbooks,kube-runbooks.io/node=" + label_value(LONG)
    )
    assert label_value(LONG).startswith("sha256-")
