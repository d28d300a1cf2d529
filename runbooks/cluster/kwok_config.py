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

_HEADER = "kind: KwokConfiguration\napiVersion: config.kwok.x-k8s.io/v1alpha1\noptions: {}\n"


def write_kwok_config(stages_dir: Path, target: Path) -> None:
    parts = [_HEADER]
    for relative in STAGE_FILES:
        parts.append("---\n" + (stages_dir / relative).read_text().rstrip() + "\n")
    target.write_text("".join(parts))
