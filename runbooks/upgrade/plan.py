"""The upgrade plan: a pure function of what was read (API server version, Nodes, preflight).

It says what will change (version, control plane or not, which nodes in which order, pool by
pool), what is already done (a rerun continues: nodes at the target are left alone, the control
plane is not touched again once it reports the target), and the rollback limits. The approver
signs its digest; the dry run prints it.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from runbooks.kit.checks import CheckResult
from runbooks.kit.digest import digest
from runbooks.maintenance.params import InvalidRequest
from runbooks.upgrade.params import UpgradeParams, parse_version

ROLLBACK_LIMITS = (
    "No supported downgrade of the control plane to the previous minor once it runs the "
    "target (kubeadm and managed services refuse it); restoring the etcd snapshot taken "
    "before the control-plane step is the only way back, and loses every change since.",
    "etcd is not downgraded: its data format follows the newer version.",
    "Kubelets can go back to the previous version within the skew policy (node upgrades are "
    "reversible one node at a time).",
    "A node that fails is left cordoned or uncordoned by the same rules as maintenance, and "
    "the run halts: nodes not started stay on the old version.",
)


class PlannedNode(BaseModel):
    name: str
    pool: str
    kubelet: str
    done: bool = Field(description="Already at the target (a rerun leaves it alone).")


class NodeFacts(BaseModel):
    """What the plan needs of a Node (tasks.upgrade_state.NodeVersion carries these fields)."""

    name: str
    kubelet: str
    pool: str
    control_plane: bool = False
    ready: bool = True
    unschedulable: bool = False
    cordoned_by: str | None = None


class UpgradePlan(BaseModel):
    cluster: str
    current: str
    target: str
    provider: str
    strategy: str
    control_plane_done: bool
    nodes: list[PlannedNode]
    max_unavailable: str
    skipped_checks: list[str] = Field(default_factory=list)
    preflight_markdown: str = ""

    @property
    def pools(self) -> list[tuple[str, list[str]]]:
        """Pools in order, each with its nodes still to upgrade."""
        order: dict[str, list[str]] = {}
        for node in self.nodes:
            if not node.done:
                order.setdefault(node.pool, []).append(node.name)
        return list(order.items())

    @property
    def to_upgrade(self) -> list[str]:
        return [n.name for n in self.nodes if not n.done]

    def digest(self) -> str:
        return digest(self.model_dump(mode="json"))

    def to_markdown(self) -> str:
        lines = [
            f"### Upgrade {self.cluster}: {self.current} -> {self.target}",
            "",
            f"- provider: {self.provider}, strategy: {self.strategy}, "
            f"max-unavailable: {self.max_unavailable}",
            "- control plane: "
            + (
                "already at the target (not touched again)"
                if self.control_plane_done
                else f"etcd snapshot, then {self.current} -> {self.target}"
            ),
        ]
        for pool, names in self.pools:
            lines.append(f"- pool {pool}: {', '.join(names)}")
        done = [n.name for n in self.nodes if n.done]
        if done:
            lines.append(f"- already at {self.target}: {', '.join(done)}")
        if self.skipped_checks:
            lines.append(
                f"- failing checks accepted (--skip-check): {', '.join(self.skipped_checks)}"
            )
        if self.preflight_markdown:
            lines += ["", "#### Preflight", "", self.preflight_markdown]
        lines += ["", "#### Rollback limits", ""] + [f"- {limit}" for limit in ROLLBACK_LIMITS]
        return "\n".join(lines)


def plan_upgrade(
    params: UpgradeParams,
    cluster: str,
    api_server: str,
    nodes: list[NodeFacts],
    preflight_markdown: str = "",
) -> UpgradePlan:
    """The plan, or InvalidRequest (exit 2, nothing changed): a target below the API server,
    or a selector that matches no node. Control-plane Nodes are the provider's control-plane
    step, not the node phase."""
    current, target = parse_version(api_server), params.version
    if target < current:
        raise InvalidRequest(
            f"--to {target} is lower than the API server's {current}: downgrades are not "
            "supported (see the rollback limits)"
        )
    workers = [n for n in nodes if not n.control_plane]
    if not workers:
        where = f" matching {params.selector!r}" if params.selector else ""
        raise InvalidRequest(f"no worker node{where} in {cluster}: nothing to upgrade")
    return UpgradePlan(
        cluster=cluster,
        current=str(current),
        target=str(target),
        provider=params.provider,
        strategy=params.strategy,
        control_plane_done=current == target,
        nodes=[
            PlannedNode(
                name=n.name,
                pool=n.pool,
                kubelet=n.kubelet,
                done=_at(n.kubelet, str(target)) and not (n.unschedulable and n.cordoned_by),
            )
            for n in workers
        ],
        max_unavailable=params.max_unavailable,
        skipped_checks=params.skip_check,
        preflight_markdown=preflight_markdown,
    )


def _at(kubelet: str, target: str) -> bool:
    try:
        return str(parse_version(kubelet)) == target
    except ValueError:
        return False


def at_target_checks(target: str, api_server: str, nodes: list[NodeFacts]) -> list[CheckResult]:
    """The upgrade's own verification: the API server and every worker Ready at the target."""
    behind = [
        f"{n.name}: kubelet {n.kubelet}{'' if n.ready else ', NotReady'}"
        for n in nodes
        if not n.control_plane and (not _at(n.kubelet, target) or not n.ready)
    ]
    server_ok = _at(api_server, target)
    return [
        CheckResult(
            id="upgrade.api-server",
            title="API server at the target version",
            severity="blocker",
            status="pass" if server_ok else "fail",
            evidence=[f"API server reports {api_server}"],
            remediation=""
            if server_ok
            else "rerun the upgrade: the control-plane step did not finish",
        ),
        CheckResult(
            id="upgrade.nodes",
            title="Every node Ready at the target version",
            severity="blocker",
            status="fail" if behind else "pass",
            evidence=behind or [f"every node Ready at {target}"],
            remediation="rerun the upgrade to finish them" if behind else "",
        ),
    ]
