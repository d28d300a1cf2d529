"""What an upgrade run did: status, phases with their wall time, provider output, each node."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from runbooks.kit.checks import CheckReport
from runbooks.maintenance.report import NodeResult
from runbooks.upgrade.plan import UpgradePlan

Status = Literal["succeeded", "dry-run", "refused", "halted"]


class UpgradeReport(BaseModel):
    run_id: str
    status: Status
    message: str
    started_at: datetime
    finished_at: datetime | None = None
    plan: UpgradePlan | None = None
    preflight: CheckReport | None = None
    verify: CheckReport | None = None
    phases: dict[str, float] = Field(
        default_factory=dict, description="Seconds per phase: preflight, approval, ..."
    )
    steps: list[str] = Field(default_factory=list, description="Provider steps and output.")
    nodes: list[NodeResult] = Field(default_factory=list)

    @property
    def exit_code(self) -> int:
        """0 done (or only planned), 1 refused or halted."""
        return 0 if self.status in ("succeeded", "dry-run") else 1

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    def to_text(self) -> str:
        lines = [f"{self.status}: {self.message}"]
        if self.plan is not None:
            lines.append(
                f"cluster {self.plan.cluster}: {self.plan.current} -> {self.plan.target} "
                f"({self.plan.provider}, {self.plan.strategy})"
            )
        if self.preflight is not None:
            lines += ["", "preflight:", self.preflight.to_text()]
        if self.plan is not None and self.status == "dry-run":
            lines += ["", self.plan.to_markdown()]
        for step in self.steps:
            lines.append(f"- {step}")
        for node in self.nodes:
            notes = f" ({'; '.join(node.notes)})" if node.notes else ""
            lines.append(f"node {node.node}: {node.result}, left {node.left}{notes}")
        if self.verify is not None:
            lines += ["", "verify:", self.verify.to_text()]
        if self.phases:
            lines.append("phases: " + ", ".join(f"{k} {v:.1f}s" for k, v in self.phases.items()))
        return "\n".join(lines)

    def to_markdown(self) -> str:
        lines = [f"## cluster-upgrade: {self.status}", "", self.message, ""]
        if self.plan is not None:
            lines += [self.plan.to_markdown(), ""]
        lines += [f"- {s}" for s in self.steps]
        if self.nodes:
            lines += ["", "| node | result | left |", "|---|---|---|"]
            lines += [f"| {n.node} | {n.result} | {n.left} |" for n in self.nodes]
        if self.verify is not None:
            lines += ["", "#### Verify", "", self.verify.to_markdown()]
        if self.phases:
            lines += ["", " | ".join(f"{k}: {v:.1f}s" for k, v in self.phases.items())]
        return "\n".join(lines)
