"""The `job` action's Job for one node, built as an object and never as YAML text, so an image
or command ends up verbatim whatever characters it holds; the check that tells this run's
Job for this node from any other Job that happens to have its name; and the one that finds
another run's Job still at work on the node (a crashed CLI run's: its run id dies with it).

The Job is pinned by nodeName (which bypasses the scheduler, so the cordon does not keep it out)
and tolerates every taint a cordoned or rebooting node carries.
"""

from __future__ import annotations

import re
from typing import Any

from runbooks.kit.digest import sha256_hex

MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGED_BY = "kube-runbooks"
RUN_LABEL = "kube-runbooks.io/run"
NODE_LABEL = "kube-runbooks.io/node"
# Label values hold at most 63 characters; node names up to 253. The annotations always hold
# the full values, and they are what decides whether an existing Job is ours.
RUN_ANNOTATION = "kube-runbooks.io/run-id"
NODE_ANNOTATION = "kube-runbooks.io/node-name"

NAME_PREFIX = "maint-"
READABLE_CHARS = 40  # of the node name, for people reading `kubectl get jobs`
HASH_CHARS = 16  # 64 bits of sha256(node, run): 6 + 40 + 1 + 16 = 63 characters at most
TTL_AFTER_FINISHED = 86400

_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")


def _digest(*parts: str) -> str:
    # "\n" never occurs in a node name or run id, so ("a", "b\nc") and ("a\nb", "c") differ.
    return sha256_hex("\n".join(parts))


def job_name(node: str, run_id: str) -> str:
    """A DNS-1123 label of at most 63 characters: a readable prefix of the node name and a hash
    of the full node name and the full run id, so two nodes (or two runs) never share a Job."""
    readable = re.sub(r"[^a-z0-9-]", "-", node.lower())[:READABLE_CHARS].strip("-")
    digest = _digest(node, run_id)[:HASH_CHARS]
    return f"{NAME_PREFIX}{readable}-{digest}" if readable else f"{NAME_PREFIX}{digest}"


def label_value(value: str) -> str:
    """``value`` when it is a valid label value, otherwise a hash of it (see the annotations)."""
    if len(value) <= 63 and _LABEL_VALUE.match(value):
        return value
    return "sha256-" + _digest(value)[:56]


def job_manifest(
    node: str, run_id: str, namespace: str, image: str, command: list[str], timeout: float
) -> dict[str, Any]:
    """The Job for ``node`` in run ``run_id``, as the API takes it."""
    managed = {MANAGED_BY_LABEL: MANAGED_BY, NODE_LABEL: label_value(node)}
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": job_name(node, run_id),
            "namespace": namespace,
            "labels": {**managed, RUN_LABEL: label_value(run_id)},
            "annotations": {RUN_ANNOTATION: run_id, NODE_ANNOTATION: node},
        },
        "spec": {
            "backoffLimit": 0,
            "activeDeadlineSeconds": max(1, int(timeout)),
            "ttlSecondsAfterFinished": TTL_AFTER_FINISHED,
            "template": {
                "metadata": {"labels": dict(managed)},
                "spec": {
                    "nodeName": node,
                    "restartPolicy": "Never",
                    "hostPID": True,
                    "tolerations": [{"operator": "Exists"}],
                    "containers": [
                        {
                            "name": "maintenance",
                            "image": image,
                            "command": list(command),
                            "env": [{"name": "NODE_NAME", "value": node}],
                            "securityContext": {"privileged": True},
                        }
                    ],
                },
            },
        },
    }


def foreign_job(
    labels: dict[str, str] | None,
    annotations: dict[str, str] | None,
    node: str,
    run_id: str,
) -> str | None:
    """None when an existing Job's metadata says it is run ``run_id``'s Job for ``node`` (a
    crashed attempt of this run made it: adopt it); otherwise whose it is, for the error."""
    labels, annotations = labels or {}, annotations or {}
    if labels.get(MANAGED_BY_LABEL) != MANAGED_BY:
        return "it was not created by kube-runbooks"
    other_run, other_node = annotations.get(RUN_ANNOTATION), annotations.get(NODE_ANNOTATION)
    if other_run is None or other_node is None:
        return "it does not say which run and node it belongs to"
    if (other_run, other_node) != (run_id, node):
        return f"it belongs to run {other_run}, node {other_node}"
    return None


def node_jobs_selector(node: str) -> str:
    """The label selector for every kube-runbooks Job made for ``node``, by any run. Labels may
    hold a hash of the node name: callers compare the full name with :func:`other_run`."""
    return f"{MANAGED_BY_LABEL}={MANAGED_BY},{NODE_LABEL}={label_value(node)}"


def other_run(annotations: dict[str, str] | None, node: str, run_id: str) -> str | None:
    """The run that made a kube-runbooks Job for ``node`` when it is not run ``run_id``; None
    for this run's own Job (adopted) or another node's (a label hash that matched)."""
    annotations = annotations or {}
    if annotations.get(NODE_ANNOTATION) != node:
        return None
    owner = annotations.get(RUN_ANNOTATION)
    return None if owner == run_id else owner or "unknown"


def finished(conditions: list[tuple[str, str]]) -> bool:
    """Whether a Job's (type, status) conditions say it is over: Complete or Failed is True."""
    return any(kind in ("Complete", "Failed") and status == "True" for kind, status in conditions)
