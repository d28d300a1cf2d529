"""What a run did, node by node: the Prefect table and Markdown artifacts, the CLI's text and
JSON, and the exit status. A halt says which node, which step, which pods or budget."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from runbooks.kit.durations import format_duration
from runbooks.maintenance.plan import MaintenancePlan

Step = Literal["plan", "blockers", "cordon", "drain", "action", "ready", "uncordon"]
STEPS: tuple[Step, ...] = ("cordon", "drain", "action", "ready", "uncordon")
NodeOutcome = Literal["maintained", "failed", "skipped", "not-started", "would-maintain"]
Status = Literal["succeeded", "halted", "refused", "dry-run", "deadline"]


class NodeResult(BaseModel):
    node: str
    result: NodeOutcome
    failed_step: Step | None = None
    error: str | None = None
    pods_evicted: list[str] = Field(default_factory=list)
    durations: dict[str, float] = Field(default_factory=dict)  # step -> seconds
    left: Literal["schedulable", "cordoned", "unchanged"] = "unchanged"
    notes: list[str] = Field(default_factory=list)


class MaintenanceReport(BaseModel):
    run_id: str
    status: Status
    message: str
    started_at: datetime
    finished_at: datetime | None = None
    nodes: list[NodeResult] = Field(default_factory=list)
    plan: MaintenancePlan | None = None

    @property
    def exit_code(self) -> int:
        """0 when everything asked for is done (or only planned), 1 when the runbook stopped."""
        return 0 if self.status in ("succeeded", "dry-run") else 1

    def result(self, node: str) -> NodeResult | None:
        return next((r for r in self.nodes if r.node == node), None)

    @property
    def left_cordoned(self) -> list[str]:
        """Nodes this run cordoned and did not give back."""
        return [r.node for r in self.nodes if r.left == "cordoned"]

    def release_hint(self) -> str | None:
        """How to give back what the run left cordoned: `runbook release` lifts only the
        engine's own cordons and clears their marks, unlike `kubectl uncordon`."""
        left = self.left_cordoned
        if not left:
            return None
        names = " ".join(left)
        return (
            f"left cordoned by this run: {', '.join(left)}; rerun to finish them, or "
            f"`runbook release {names}` to give them back"
        )

    def table(self) -> list[dict[str, str | int]]:
        rows: list[dict[str, str | int]] = []
        for r in self.nodes:
            row: dict[str, str | int] = {
                "node": r.node,
                "result": r.result,
                "failed step": r.failed_step or "",
                "pods evicted": len(r.pods_evicted),
                "left": r.left,
            }
            for step in STEPS:
                row[step] = format_duration(r.durations[step]) if step in r.durations else ""
            row["error"] = r.error or ""
            rows.append(row)
        return rows

    def summary_json(self) -> dict[str, object]:
        """The CLI's --output json: overall status and, per node, what happened."""
        return {
            "run_id": self.run_id,
            "status": self.status,
            "message": self.message,
            "nodes": [
                {
                    "node": r.node,
                    "result": r.result,
                    "failed_step": r.failed_step,
                    "error": r.error,
                    "pods_evicted": r.pods_evicted,
                    "left": r.left,
                    "durations": {k: round(v, 3) for k, v in r.durations.items()},
                    "notes": r.notes,
                }
                for r in self.nodes
            ],
            "plan_digest": self.plan.digest() if self.plan else None,
        }

    def to_markdown(self) -> str:
        lines = [f"## Rolling node maintenance: {self.status}", "", self.message, ""]
        if self.nodes:
            lines += ["| Node | Result | Failed step | Pods evicted | Left | Durations |"]
            lines.append("|---|---|---|---|---|---|")
            for r in self.nodes:
                durations = ", ".join(f"{k} {format_duration(v)}" for k, v in r.durations.items())
                lines.append(
                    f"| {r.node} | {r.result} | {r.failed_step or ''} | {len(r.pods_evicted)} | "
                    f"{r.left} | {durations} |"
                )
            lines.append("")
        hint = self.release_hint()
        if hint:
            lines += [hint, ""]
        problems = [r for r in self.nodes if r.error or r.notes]
        if problems:
            lines += ["### Details", ""]
            for r in problems:
                for text in ([r.error] if r.error else []) + r.notes:
                    lines.append(f"- {r.node}: {text}")
            lines.append("")
        if self.plan and self.status in ("dry-run", "refused"):
            lines.append(self.plan.to_markdown())
        return "\n".join(lines)

    def to_text(self) -> str:
        lines = [f"{self.status}: {self.message}"]
        for r in self.nodes:
            took = sum(r.durations.values())
            line = f"  {r.node:<20} {r.result:<14} evicted {len(r.pods_evicted):>3} pods"
            if took:
                line += f" in {format_duration(took)}"
            if r.failed_step:
                line += f"  [failed at {r.failed_step}; left {r.left}]"
            lines.append(line)
            if r.error:
                lines.append(f"      {r.error}")
            lines += [f"      {n}" for n in r.notes]
        hint = self.release_hint()
        if hint:
            lines.append(hint)
        return "\n".join(lines)


class Ledger:
    """Per-node bookkeeping while the run goes; ``report()`` freezes it."""

    def __init__(self, plan: MaintenancePlan) -> None:
        self.plan = plan
        self.results: dict[str, NodeResult] = {}
        for n in plan.nodes:
            if n.maintained:
                self.results[n.node] = NodeResult(node=n.node, result="not-started")
            else:
                self.results[n.node] = NodeResult(
                    node=n.node, result="skipped", notes=[n.skip_reason or ""]
                )

    def step_done(
        self, node: str, step: Step, seconds: float, evicted: list[str], detail: str = ""
    ) -> None:
        r = self.results[node]
        r.durations[step] = round(seconds, 3)
        r.pods_evicted += evicted
        if step == "cordon":
            r.left = "cordoned"
        if step == "uncordon":
            r.left = "schedulable"
            if r.result == "not-started":
                r.result = "maintained"
        if detail:
            r.notes.append(f"{step}: {detail}")

    def skipped(self, node: str, why: str) -> None:
        r = self.results[node]
        r.result = "skipped"
        r.notes.append(why)

    def step_failed(
        self, node: str, step: Step, seconds: float, error: str, evicted: list[str]
    ) -> None:
        r = self.results[node]
        r.result = "failed"
        r.failed_step = step
        r.error = error
        r.durations[step] = round(seconds, 3)
        r.pods_evicted += evicted
        if step == "cordon":
            r.left = "unchanged"

    def left(self, node: str, state: Literal["schedulable", "cordoned", "unchanged"]) -> None:
        self.results[node].left = state

    def note(self, node: str, text: str) -> None:
        self.results[node].notes.append(text)

    @property
    def failures(self) -> list[NodeResult]:
        return [r for r in self.results.values() if r.result == "failed"]

    def report(
        self, run_id: str, status: Status, message: str, started_at: datetime
    ) -> MaintenanceReport:
        from datetime import UTC

        return MaintenanceReport(
            run_id=run_id,
            status=status,
            message=message,
            started_at=started_at,
            finished_at=datetime.now(UTC),
            nodes=[self.results[n.node] for n in self.plan.nodes],
            plan=self.plan,
        )
