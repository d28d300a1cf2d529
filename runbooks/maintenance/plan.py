"""The maintenance plan: which nodes, in which batches, which pods go, which would refuse or
block. Pure: built from cluster facts, rendered for people (Markdown) and for approvals (digest)."""

from __future__ import annotations

from pydantic import BaseModel, Field

from runbooks.kit.digest import digest as canonical_digest
from runbooks.kit.durations import format_duration
from runbooks.maintenance.batch_plan import plan_batches
from runbooks.maintenance.drain_plan import DrainOptions, DrainPlan, PodDecision, plan_drain
from runbooks.maintenance.facts import BudgetInfo, NodeInfo, PodInfo
from runbooks.maintenance.max_unavailable import resolve_max_unavailable
from runbooks.maintenance.ownership import Cordon, cordon_owner, foreign_cordon
from runbooks.maintenance.params import MaintenanceParams
from runbooks.maintenance.room import NoRoom, find_no_room


class NodePlan(BaseModel):
    node: str
    ready: bool
    cordon: Cordon
    cordoned_by: str | None = None
    skip_reason: str | None = None
    drain: DrainPlan | None = None

    @property
    def maintained(self) -> bool:
        return self.skip_reason is None


class Refusal(BaseModel):
    node: str
    pod: str
    reason: str


class MaintenancePlan(BaseModel):
    cluster: str
    max_unavailable: str
    limit: int
    pool: list[str]
    out_now: list[str] = Field(default_factory=list)
    nodes: list[NodePlan]
    batches: list[list[str]]
    action: str
    drain_timeout_s: float
    ready_timeout_s: float
    no_room: list[NoRoom] = Field(default_factory=list)
    evict_without_room: bool = False

    @property
    def order(self) -> list[str]:
        return [n.node for n in self.nodes if n.maintained]

    @property
    def skipped(self) -> list[NodePlan]:
        return [n for n in self.nodes if not n.maintained]

    @property
    def refusals(self) -> list[Refusal]:
        return [
            Refusal(node=n.node, pod=str(d.pod), reason=d.reason)
            for n in self.nodes
            if n.maintained and n.drain
            for d in n.drain.refused
        ]

    @property
    def refuses_for_room(self) -> bool:
        """Evicted pods would have nowhere to go, and the request did not accept that."""
        return bool(self.no_room) and not self.evict_without_room

    @property
    def stuck(self) -> bool:
        """Nodes to do, but max-unavailable is used up by nodes already out."""
        return bool(self.order) and not self.batches

    def node(self, name: str) -> NodePlan:
        return next(n for n in self.nodes if n.node == name)

    def digest(self) -> str:
        """sha256 of the canonical JSON: an approval names exactly this plan."""
        return canonical_digest(self.model_dump(mode="json"))

    def to_markdown(self) -> str:
        lines = [
            "## Rolling node maintenance plan",
            "",
            f"- Cluster: {self.cluster}",
            f"- Nodes: {len(self.order)} to maintain, {len(self.skipped)} skipped "
            f"(of {len(self.pool)} selected)",
            f"- Max unavailable: {self.max_unavailable} = {self.limit} node(s) at once"
            + (f"; already out: {', '.join(self.out_now)}" if self.out_now else ""),
            f"- Action: {self.action}; drain timeout {format_duration(self.drain_timeout_s)}, "
            f"ready timeout {format_duration(self.ready_timeout_s)}",
            f"- Plan digest: `{self.digest()[:16]}`",
            "",
        ]
        if self.refusals:
            lines += ["### Refused (nothing will be cordoned until this is resolved)", ""]
            lines += [f"- {r.node}: pod {r.pod}: {r.reason}" for r in self.refusals]
            lines.append("")
        if self.no_room:
            lines += [
                "### No room for evicted pods"
                + (
                    " (accepted: they stay Pending until a node returns)"
                    if self.evict_without_room
                    else " (nothing will be cordoned: lower max-unavailable, add nodes, "
                    "or allow it with evict-without-room)"
                ),
                "",
            ]
            lines += [f"- {r.describe()}" for r in self.no_room]
            lines.append("")
        if self.stuck:
            lines += [
                f"**No batch can start**: max-unavailable {self.limit} is used up by nodes "
                f"already out ({', '.join(self.out_now)}).",
                "",
            ]
        lines += ["### Batches", ""]
        for i, batch in enumerate(self.batches, 1):
            lines.append(f"{i}. {', '.join(batch)}")
        lines += ["", "### Nodes", "", "| Node | Plan | Evict | Left in place | Would block now |"]
        lines.append("|---|---|---|---|---|")
        for n in self.nodes:
            if not n.maintained:
                lines.append(f"| {n.node} | skip: {n.skip_reason} | | | |")
                continue
            d = n.drain or DrainPlan(node=n.node)
            note = "maintain" + (
                f" (resumes run {n.cordoned_by})" if n.cordon == Cordon.EARLIER_RUN else ""
            )
            evict = ", ".join(str(p) for p in d.evict) or "-"
            left = ", ".join(f"{x.pod} ({x.reason})" for x in d.left) or "-"
            blocks = "; ".join(b.describe() for b in d.blocking_budgets) or "-"
            lines.append(f"| {n.node} | {note} | {evict} | {left} | {blocks} |")
        return "\n".join(lines) + "\n"


def select_nodes(named: list[str], by_selector: list[str]) -> list[str]:
    """Named nodes first, in the order given, then selector matches by name: the union."""
    return list(dict.fromkeys([*named, *sorted(by_selector)]))


def _evicted_pods(
    plans: list[NodePlan], pods: dict[str, list[PodInfo]]
) -> dict[str, list[PodInfo]]:
    evicted: dict[str, list[PodInfo]] = {}
    for plan in plans:
        if plan.drain:
            going = set(plan.drain.evict)
            evicted[plan.node] = [p for p in pods.get(plan.node, []) if p.ref in going]
    return evicted


def build_plan(
    params: MaintenanceParams,
    nodes: list[NodeInfo],
    pods: dict[str, list[PodInfo]],
    daemonsets: set[str] | None,
    budgets: list[BudgetInfo],
    run_id: str,
    cluster_nodes: list[NodeInfo] | None = None,
    own_node: str | None = None,
) -> MaintenancePlan:
    """``nodes`` in maintenance order; ``pods`` by node name; ``cluster_nodes`` every node of
    the cluster, to check evicted pods have somewhere to go (None: not checked); ``own_node``
    the node this run executes on, which it must not drain."""
    options: DrainOptions = params.drain_options
    limit = resolve_max_unavailable(params.max_unavailable, len(nodes))
    plans: list[NodePlan] = []
    for node in nodes:
        owner = cordon_owner(node, run_id)
        skip = None
        if owner == Cordon.SOMEONE_ELSE:
            skip = f"{foreign_cordon(node)}; left as it is"
        elif node.name == own_node:
            skip = (
                "this run executes on it (RUNBOOK_NODE_NAME): draining it would evict the run; "
                "maintain it from a runner on another node"
            )
        drain = None
        if skip is None:
            drain = plan_drain(node.name, pods.get(node.name, []), options, daemonsets, budgets)
        plans.append(
            NodePlan(
                node=node.name,
                ready=node.ready,
                cordon=owner,
                cordoned_by=node.cordoned_by,
                skip_reason=skip,
                drain=drain,
            )
        )
    out_now = sorted(n.name for n in nodes if n.out)
    order = [p.node for p in plans if p.maintained]
    batches = plan_batches(order, set(out_now), limit)
    no_room: list[NoRoom] = []
    if cluster_nodes is not None:
        no_room = find_no_room(batches, _evicted_pods(plans, pods), cluster_nodes)
    return MaintenancePlan(
        cluster=params.target.describe(),
        max_unavailable=params.max_unavailable,
        limit=limit,
        pool=[n.name for n in nodes],
        out_now=out_now,
        nodes=plans,
        batches=batches,
        action=params.action.kind
        + (f" ({params.action.command})" if params.action.command else ""),
        drain_timeout_s=params.drain_timeout.total_seconds(),
        ready_timeout_s=params.ready_timeout.total_seconds(),
        no_room=no_room,
        evict_without_room=params.evict_without_room,
    )


__all__ = ["MaintenancePlan", "NodePlan", "PodDecision", "Refusal", "build_plan", "select_nodes"]
