"""KWOK's configuration: the full default stage set plus the chaos stage for NotReady on demand.

Passing any Stage replaces all of KWOK's defaults, so every stage the cluster needs is listed here;
without pod-ready pods never become Ready, without pod-delete evicted pods never go away.
"""

from __future__ import annotations

from pathlib import Path

STAGE_FILES = (
    "node/fast/node-initialize.yaml",
    "node/heartbeat-with-lease/node-heartbeat-with-lease.yaml",
    "node/chaos/node-not-ready.yaml",
    "pod/fast/pod-ready.yaml",
    "pod/fast/pod-complete.yaml",
    "pod/fast/pod-delete.yaml",
)

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


def write_kwok_config(stages_dir: Path, target: Path) -> None:
    parts = [_HEADER]
    for relative in STAGE_FILES:
        parts.append("---\n" + (stages_dir / relative).read_text().rstrip() + "\n")
    target.write_text("".join(parts))
