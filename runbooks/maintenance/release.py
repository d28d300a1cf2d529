"""Giving nodes back after a halt: the request and the report of `runbook release`.

Only cordons the engine made are lifted (runbooks/maintenance/ownership.py decides whose a cordon
is); a stale mark is cleared; anyone else's cordon is left and named. Pure data, no cluster.
"""

from __future__ import annotations

from pydantic import BaseModel, Field, model_validator

from runbooks.kube_target import KubeTarget
from runbooks.maintenance.ownership import Release
from runbooks.maintenance.params import LeaseSettings


class ReleaseParams(BaseModel):
    """Which nodes to give back; ``all_marked``: every node carrying the engine's mark."""

    target: KubeTarget = Field(default_factory=KubeTarget)
    nodes: list[str] = Field(default_factory=list)
    selector: str | None = None
    all_marked: bool = False
    lease: LeaseSettings = Field(default_factory=LeaseSettings)
    dry_run: bool = False

    @model_validator(mode="after")
    def _some_nodes(self) -> ReleaseParams:
        if not (self.nodes or self.selector or self.all_marked):
            raise ValueError("name the nodes to release, or give --selector, or --all")
        return self


class NodeRelease(BaseModel):
    node: str
    action: Release
    detail: str


class ReleaseReport(BaseModel):
    release_id: str
    dry_run: bool
    nodes: list[NodeRelease] = Field(default_factory=list)

    @property
    def released(self) -> list[str]:
        return [n.node for n in self.nodes if n.action == "uncordon"]

    def to_text(self) -> str:
        verb = "would release" if self.dry_run else "released"
        head = f"{verb} {len(self.released)} node(s) this engine cordoned"
        if not self.nodes:
            head += "; no node carries its mark"
        return "\n".join([head] + [f"  {n.node}: {n.detail}" for n in self.nodes])

    def summary_json(self) -> dict[str, object]:
        return {
            "release_id": self.release_id,
            "dry_run": self.dry_run,
            "nodes": [n.model_dump() for n in self.nodes],
        }
