"""KWOK stages that end a Job's pod the way a test asks: exit 0 (Succeeded) or N (Failed).

KWOK has no containers to run, so its ``pod-complete`` stage marks every Running pod a Job owns
Succeeded at once. A CronJob-based backup must also be seen failing, for real: the controller-
manager's CronJob and Job controllers then write the Job's Failed condition and the CronJob's
``lastSuccessfulTime`` themselves. A pod carrying the annotation below is ended by these stages
instead, once it is Running:

- ``"0"``: Succeeded, its containers terminated with exit code 0 (reason Completed);
- ``"1"`` .. ``"255"``: Failed, its containers terminated with that exit code (reason Error);
- anything else (e.g. ``"hold"``): it stays Running until the annotation is changed to a code,
  which KWOK sees as an update and acts on (a backup that finishes on demand).

Use ``restartPolicy: Never`` (a kubelet would restart an ``OnFailure`` container, KWOK cannot).
Pods without the annotation are untouched: KWOK's own stage still completes them at once.
"""

from __future__ import annotations

from typing import Any

import yaml

JOB_EXIT_ANNOTATION = "kube-runbooks.local/exit"

_QUERY = f'.metadata.annotations["{JOB_EXIT_ANNOTATION}"]'
_RUNNING: dict[str, Any] = {"key": ".status.phase", "operator": "In", "values": ["Running"]}
_NOT_DELETED: dict[str, Any] = {"key": ".metadata.deletionTimestamp", "operator": "DoesNotExist"}
FAILURE_CODES = [str(code) for code in range(1, 256)]

# Go template: KWOK renders it with the pod as ``.``; the exit code is the annotation itself.
_TERMINATED = """\
{{{{ $now := Now }}}}
{{{{ $code := index .metadata.annotations "{annotation}" }}}}
containerStatuses:
{{{{ range .spec.containers }}}}
- image: {{{{ .image | Quote }}}}
  name: {{{{ .name | Quote }}}}
  ready: false
  restartCount: 0
  started: false
  state:
    terminated:
      exitCode: {{{{ $code }}}}
      finishedAt: {{{{ $now | Quote }}}}
      reason: {reason}
      startedAt: {{{{ $now | Quote }}}}
{{{{ end }}}}
phase: {phase}
"""


def _exit_stage(name: str, codes: list[str], phase: str, reason: str) -> dict[str, Any]:
    return {
        "apiVersion": "kwok.x-k8s.io/v1alpha1",
        "kind": "Stage",
        "metadata": {"name": name},
        "spec": {
            "resourceRef": {"apiGroup": "v1", "kind": "Pod"},
            "selector": {
                "matchExpressions": [
                    _NOT_DELETED,
                    _RUNNING,
                    {"key": _QUERY, "operator": "In", "values": codes},
                ]
            },
            "next": {
                "statusTemplate": _TERMINATED.format(
                    annotation=JOB_EXIT_ANNOTATION, reason=reason, phase=phase
                )
            },
        },
    }


class _Dumper(yaml.SafeDumper):
    """Templates as YAML block text, so the written kwok.yaml reads like KWOK's own files."""


def _text(dumper: yaml.SafeDumper, data: str) -> yaml.ScalarNode:
    return dumper.represent_scalar(
        "tag:yaml.org,2002:str", data, style="|" if "\n" in data else None
    )


_Dumper.add_representer(str, _text)


def without_exit_annotation(upstream_stage: str) -> str:
    """KWOK's own ``pod-complete`` stage, limited to pods without the annotation: KWOK picks
    among matching stages at random, so a pod must match exactly one of them."""
    stage = yaml.safe_load(upstream_stage)
    expressions = stage.setdefault("spec", {}).setdefault("selector", {})
    expressions.setdefault("matchExpressions", []).append(
        {"key": _QUERY, "operator": "DoesNotExist"}
    )
    return yaml.dump(stage, Dumper=_Dumper, sort_keys=False)


def job_exit_stages() -> str:
    """The two stages (exit 0, exit 1..255) as YAML documents."""
    stages = [
        _exit_stage("pod-exit-succeeded", ["0"], "Succeeded", "Completed"),
        _exit_stage("pod-exit-failed", FAILURE_CODES, "Failed", "Error"),
    ]
    return yaml.dump_all(stages, Dumper=_Dumper, sort_keys=False)
