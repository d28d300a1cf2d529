"""KWOK deletes a terminating pod at once, or after the delay its annotation asks for, capped at its
grace period: exactly one pod-delete stage matches any pod (KWOK would pick among several at
random). Whether KWOK evaluates the CEL as intended: tests/cluster/test_slow_termination.py."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from runbooks.cluster.kwok_config import (
    DELAY_CEL,
    STAGE_FILES,
    TERMINATE_AFTER_ANNOTATION,
    write_kwok_config,
)
from runbooks.cluster.workloads import terminate_after

ANNOTATION_KEY = f'.metadata.annotations["{TERMINATE_AFTER_ANNOTATION}"]'


def _stages(tmp_path: Path) -> list[dict]:
    stages = tmp_path / "stages"
    for relative in STAGE_FILES:
        path = stages / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(
            "apiVersion: kwok.x-k8s.io/v1alpha1\nkind: Stage\n"
            f"metadata:\n  name: {Path(relative).stem}\n"
        )
    write_kwok_config(stages, tmp_path / "kwok.yaml")
    return list(yaml.safe_load_all((tmp_path / "kwok.yaml").read_text()))[1:]


def _pod_delete_stages(tmp_path: Path) -> dict[str, dict]:
    return {
        s["metadata"]["name"]: s
        for s in _stages(tmp_path)
        if s.get("spec", {}).get("next", {}).get("delete")
    }


def _requirements(stage: dict) -> dict[str, str]:
    return {e["key"]: e["operator"] for e in stage["spec"]["selector"]["matchExpressions"]}


def test_upstream_fast_pod_delete_is_not_concatenated():
    assert "pod/fast/pod-delete.yaml" not in STAGE_FILES


def test_two_pod_delete_stages_split_on_the_annotation(tmp_path: Path):
    stages = _pod_delete_stages(tmp_path)

    assert {n: _requirements(s) for n, s in stages.items()} == {
        "pod-delete": {".metadata.deletionTimestamp": "Exists", ANNOTATION_KEY: "DoesNotExist"},
        "pod-delete-after-delay": {
            ".metadata.deletionTimestamp": "Exists",
            ANNOTATION_KEY: "Exists",
        },
    }


def test_immediate_stage_has_no_delay_and_delayed_one_only_the_cel_expression(tmp_path: Path):
    stages = _pod_delete_stages(tmp_path)

    assert "delay" not in stages["pod-delete"]["spec"]
    # no fixed part, and no jitter up to the deletionTimestamp: a long grace period does not count
    assert stages["pod-delete-after-delay"]["spec"]["delay"] == {
        "durationFrom": {"cel": {"expression": DELAY_CEL}}
    }


def test_delay_is_the_annotation_capped_at_the_grace_period_from_the_deletion():
    annotation = f'duration(self.metadata.annotations["{TERMINATE_AFTER_ANNOTATION}"])'
    grace = 'duration(string(self.metadata.deletionGracePeriodSeconds) + "s")'

    # min(annotation, grace), counted from the deletion (deletionTimestamp - grace, rounded up
    # to the second) ...
    kill_in = (
        f'(self.metadata.deletionTimestamp - {grace} + duration("1s")'
        f" + ({annotation} < {grace} ? {annotation} : {grace}) - Now())"
    )
    # ... unless the annotation's delay from now ends first
    assert f"{annotation} < {kill_in} ? {annotation} : {kill_in}" == DELAY_CEL


def test_delay_expression_is_one_balanced_line_in_a_folded_scalar(tmp_path: Path):
    _stages(tmp_path)
    text = (tmp_path / "kwok.yaml").read_text()

    assert "\n" not in DELAY_CEL and "'" not in DELAY_CEL
    assert DELAY_CEL.count("(") == DELAY_CEL.count(")")
    assert f"        expression: >-\n          {DELAY_CEL}\n" in text


def test_stage_names_are_unique(tmp_path: Path):
    names = [s["metadata"]["name"] for s in _stages(tmp_path)]

    assert len(names) == len(set(names))


@pytest.mark.parametrize(
    ("seconds", "value"),
    [(5, "5s"), (5.0, "5s"), (0.5, "0.5s"), (2.25, "2.25s"), (90, "90s"), (0.001, "0.001s")],
)
def test_terminate_after_is_a_go_duration(seconds: float, value: str):
    assert terminate_after(seconds) == {TERMINATE_AFTER_ANNOTATION: value}


@pytest.mark.parametrize("seconds", [0, -1, 0.0001])
def test_terminate_after_refuses_no_delay(seconds: float):
    with pytest.raises(ValueError, match="at least 1 ms"):
        terminate_after(seconds)
