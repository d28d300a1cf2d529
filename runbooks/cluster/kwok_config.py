"""KWOK's configuration: the full default stage set plus the chaos stage for NotReady on demand,
pod deletion that is immediate unless a pod asks to take its time, and Job pods that exit with
the code a test asks for (kwok_job_exit.py).

Passing any Stage replaces all of KWOK's defaults, so every stage the cluster needs is listed here;
without pod-ready pods never become Ready, without pod-delete evicted pods never go away.
"""

from __future__ import annotations

from pathlib import Path

from runbooks.cluster.kwok_job_exit import job_exit_stages, without_exit_annotation

STAGE_FILES = (
    "node/fast/node-initialize.yaml",
    "node/heartbeat-with-lease/node-heartbeat-with-lease.yaml",
    "node/chaos/node-not-ready.yaml",
    "pod/fast/pod-ready.yaml",
    "pod/fast/pod-complete.yaml",
)

# A pod carrying this annotation (a Go duration: "5s", "1m30s") is deleted by KWOK that long after
# it starts terminating, like a container that exits some seconds after SIGTERM, but no later than
# its grace period, when a kubelet would SIGKILL it; other pods go at once. A longer grace period
# does not stretch the delay (KWOK's own pod-delete.stage.kwok.x-k8s.io/delay stage adds a random
# jitter up to the deletionTimestamp, so kubectl's --grace-period=300 would stretch it to minutes).
# A value that is not a duration deletes at once.
TERMINATE_AFTER_ANNOTATION = "kube-runbooks.local/terminate-after"

_ANNOTATION_QUERY = f'.metadata.annotations["{TERMINATE_AFTER_ANNOTATION}"]'

# The delay, in CEL (KWOK binds the pod to `self`; Now() is the wall clock). Not jq: it has no
# parser for Go durations ("1m30s"), so it cannot compare the annotation with the grace period.
# The pod goes at the earlier of
#   - the annotation's delay after KWOK sees the deletion (the clock used before the cap), and
#   - min(annotation, grace period) after the deletion as the API recorded it, when a kubelet
#     would have SIGKILLed it. The deletion is deletionTimestamp - deletionGracePeriodSeconds,
#     but the API keeps timestamps at whole seconds, rounded down, so + 1 s rounds it up instead:
#     the pod never goes before min(annotation, grace) has passed, and at most 1 s after.
# The second bound is pinned to the pod's own fields, so it holds when KWOK evaluates the stage
# again later (on any update of the terminating pod, or a KWOK restart), which restarts the first.
# A pod annotated "120s" and evicted with a 3 s grace period goes 3-4 s after its eviction; one
# annotated "5s" and evicted with 300 s, 5 s after. A second delete that shortens the grace period
# moves deletionTimestamp, so both clocks count from that delete. An annotation that is not a
# duration fails the evaluation: KWOK logs "Failed to get delay" and deletes the pod at once.
_ANNOTATION = f'duration(self.metadata.annotations["{TERMINATE_AFTER_ANNOTATION}"])'
_GRACE = 'duration(string(self.metadata.deletionGracePeriodSeconds) + "s")'
_CAPPED = f"({_ANNOTATION} < {_GRACE} ? {_ANNOTATION} : {_GRACE})"
_KILL_IN = f'(self.metadata.deletionTimestamp - {_GRACE} + duration("1s") + {_CAPPED} - Now())'
DELAY_CEL = f"{_ANNOTATION} < {_KILL_IN} ? {_ANNOTATION} : {_KILL_IN}"

# KWOK picks among all matching stages at random by weight, so the two selectors exclude each
# other on the annotation: a pod matches exactly one of them. The first is KWOK's
# pod/fast/pod-delete.yaml (kept under its name) with the annotation excluded.
POD_DELETE_STAGES = f"""\
apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata:
  name: pod-delete
spec:
  resourceRef:
    apiGroup: v1
    kind: Pod
  selector:
    matchExpressions:
    - key: '.metadata.deletionTimestamp'
      operator: 'Exists'
    - key: '{_ANNOTATION_QUERY}'
      operator: 'DoesNotExist'
  next:
    delete: true
---
apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata:
  name: pod-delete-after-delay
spec:
  resourceRef:
    apiGroup: v1
    kind: Pod
  selector:
    matchExpressions:
    - key: '.metadata.deletionTimestamp'
      operator: 'Exists'
    - key: '{_ANNOTATION_QUERY}'
      operator: 'Exists'
  delay:
    durationFrom:
      cel:
        expression: >-
          {DELAY_CEL}
  next:
    delete: true
"""

# A config file gets no defaults from kwok v0.8.0 (its defaulting only runs for flag-built
# configs): without these, it exits "node leases parallelism must be greater than 0".
_HEADER = """\
kind: KwokConfiguration
apiVersion: config.kwok.x-k8s.io/v1alpha1
options:
  cidr: 10.0.0.0/16
  nodeLeaseParallelism: 4
  nodePlayStageParallelism: 4
  podPlayStageParallelism: 4
  podsOnNodeSyncParallelism: 1
  enableDebuggingHandlers: false
  enableProfilingHandler: false
  enableContentionProfiling: false
"""


# KWOK's pod-complete, minus pods a test ends itself (see kwok_job_exit.py).
_POD_COMPLETE = "pod/fast/pod-complete.yaml"


def write_kwok_config(stages_dir: Path, target: Path) -> None:
    parts = [_HEADER]
    for relative in STAGE_FILES:
        text = (stages_dir / relative).read_text()
        if relative == _POD_COMPLETE:
            text = without_exit_annotation(text)
        parts.append("---\n" + text.rstrip() + "\n")
    parts.append("---\n" + POD_DELETE_STAGES)
    parts.append("---\n" + job_exit_stages())
    target.write_text("".join(parts))
