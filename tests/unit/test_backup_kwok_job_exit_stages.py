"""KWOK ends a pod annotated kube-runbooks.local/exit=N with that code, and only such pods: KWOK
picks at random among matching stages, so exactly one stage may match any Running Job pod.
That KWOK really does it: tests/cluster/test_backup_check.py (a CronJob's Job fails)."""

from __future__ import annotations

from pathlib import Path

import yaml

from runbooks.cluster.kwok_config import STAGE_FILES, write_kwok_config
from runbooks.cluster.kwok_job_exit import JOB_EXIT_ANNOTATION

QUERY = f'.metadata.annotations["{JOB_EXIT_ANNOTATION}"]'
UPSTREAM_POD_COMPLETE = """\
apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata:
  name: pod-complete
spec:
  resourceRef: {apiGroup: v1, kind: Pod}
  selector:
    matchExpressions:
    - {key: .status.phase, operator: In, values: [Running]}
  next:
    statusTemplate: |
      phase: Succeeded
"""


def _stages(tmp_path: Path) -> dict[str, dict]:
    for relative in STAGE_FILES:
        path = tmp_path / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"kind: Stage\nmetadata:\n  name: {Path(relative).stem}\n")
    (tmp_path / "pod/fast/pod-complete.yaml").write_text(UPSTREAM_POD_COMPLETE)
    write_kwok_config(tmp_path, tmp_path / "kwok.yaml")
    documents = list(yaml.safe_load_all((tmp_path / "kwok.yaml").read_text()))[1:]
    return {d["metadata"]["name"]: d for d in documents}


def _on_annotation(stage: dict) -> dict:
    return next(e for e in stage["spec"]["selector"]["matchExpressions"] if e["key"] == QUERY)


def _matches(stage: dict, value: str | None) -> bool:
    rule = _on_annotation(stage)
    if rule["operator"] == "DoesNotExist":
        return value is None
    return value is not None and value in rule["values"]


def test_exactly_one_stage_ends_a_running_job_pod_whatever_its_annotation(tmp_path: Path):
    stages = _stages(tmp_path)
    enders = [stages[n] for n in ("pod-complete", "pod-exit-succeeded", "pod-exit-failed")]
    expected: dict[str | None, str | None] = {
        None: "pod-complete",
        "0": "pod-exit-succeeded",
        "1": "pod-exit-failed",
        "255": "pod-exit-failed",
        "hold": None,
        "256": None,
        "-1": None,
    }
    for value, stage in expected.items():
        matching = [s["metadata"]["name"] for s in enders if _matches(s, value)]
        assert matching == ([stage] if stage else []), value


def test_a_failed_exit_writes_the_annotated_code_and_phase_failed(tmp_path: Path):
    template = _stages(tmp_path)["pod-exit-failed"]["spec"]["next"]["statusTemplate"]
    assert f'{{{{ $code := index .metadata.annotations "{JOB_EXIT_ANNOTATION}" }}}}' in template
    assert "exitCode: {{ $code }}" in template
    assert "reason: Error" in template and template.rstrip().endswith("phase: Failed")
