"""Cluster upgrade: the kubeadm procedure, with an approver who sees the whole risk first.

    preflight (version skew, removed APIs, budgets, nodes Ready, provision checks, backups)
    -> refuse if a blocker fails (nothing changed)
    -> approval (Slack: version change, preflight table, node order, rollback limits)
    -> etcd snapshot -> control plane (skipped once the API server reports the target)
    -> nodes, pool by pool, with the rolling-maintenance engine (the node's upgrade is its action)
    -> verify (every node Ready at the target, API server at the target, provision checks)

Where the upgrade stands is read from the cluster every time (API server version, kubelet
versions, the engine's cordon marks, the maintenance Lease), so a rerun after a kill continues
and never repeats a control-plane step that already reached the target.

No ``from __future__ import annotations``: Prefect must find ``UpgradeParams`` in the flow's
annotation itself (see flows/rolling_maintenance.py).
"""

import shlex
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TypeVar

from prefect import flow
from prefect.task_runners import ThreadPoolTaskRunner

from flows.provision_verification import VerifyParams, verify
from flows.rolling_maintenance import holder_identity, roll
from runbooks.approvals.policy import ApprovalPolicy, PolicyLoosened, RunApproval, effective_policy
from runbooks.kit.checks import CheckReport
from runbooks.maintenance.params import InvalidRequest, LeaseSettings, MaintenanceParams
from runbooks.maintenance.report import Ledger, NodeResult
from runbooks.operator_config import OperatorConfigError, load_operator_config
from runbooks.upgrade.params import UpgradeParams, unattended_refusal
from runbooks.upgrade.plan import NodeFacts, UpgradePlan, at_target_checks, plan_upgrade
from runbooks.upgrade.preflight import OwnSnapshot, apply_skips, preflight_checks
from runbooks.upgrade.report import Status, UpgradeReport
from tasks.approval_gate import approve_plan
from tasks.audit import audit_context, record
from tasks.checks import run_checks
from tasks.kube.lease import LeaseHeld, MaintenanceLease
from tasks.kube.maintenance_steps import plan_maintenance
from tasks.slack import RunThread
from tasks.steps import STOPPED, LocalRunner, PrefectRunner, StepRunner
from tasks.upgrade_providers import (
    UnknownLocalCluster,
    UpgradeProvider,
    provider_for,
    snapshot_plan,
)
from tasks.upgrade_reads import read_preflight_inputs
from tasks.upgrade_steps import (
    read_api_server_version,
    read_node_versions,
    take_snapshot,
    upgrade_control_plane,
)

FLOW_NAME = "cluster-upgrade"
T = TypeVar("T")


# --- The procedure --------------------------------------------------------------------------


def run_upgrade(params: UpgradeParams, runner: StepRunner) -> UpgradeReport:
    started = datetime.now(UTC)
    phases: dict[str, float] = {}
    steps: list[str] = []
    nodes: list[NodeResult] = []
    slack = RunThread()

    def timed(phase: str, call: Callable[[], T]) -> T:
        began = time.monotonic()
        try:
            return call()
        finally:
            phases[phase] = round(phases.get(phase, 0.0) + time.monotonic() - began, 3)

    with audit_context(FLOW_NAME, flow_run_id=runner.flow_run_id or runner.run_id):
        policy = upgrade_rules(params)
        provider = choose_provider(params)
        preflight = timed("preflight", lambda: run_preflight(params, runner))
        plan = timed("plan", lambda: read_plan(params, runner, preflight))
        runner.publish_markdown("cluster-upgrade-plan", plan.to_markdown(), "The upgrade plan")

        def finish(
            status: Status, message: str, verified: CheckReport | None = None
        ) -> UpgradeReport:
            report = UpgradeReport(
                run_id=runner.run_id,
                status=status,
                message=message,
                started_at=started,
                finished_at=datetime.now(UTC),
                plan=plan,
                preflight=preflight,
                verify=verified,
                phases=phases,
                steps=steps,
                nodes=nodes,
            )
            runner.publish_markdown("cluster-upgrade-report", report.to_markdown(), status)
            slack.outcome(f"upgrade {plan.current} -> {plan.target}: {status}: {message}")
            (runner.log.info if report.exit_code == 0 else runner.log.error)(
                "%s: %s", status, message
            )
            return report

        if params.dry_run:
            return finish("dry-run", f"dry run: {summary(plan)}; nothing was changed")
        failing = [c.id for c in preflight.checks if c.blocks]
        if failing:
            return finish("refused", f"preflight failed: {', '.join(failing)}; nothing was changed")

        approval_id = None
        if policy is not None:
            approval = timed(
                "approval",
                lambda: approve_plan(
                    runner,
                    f"upgrade {plan.cluster} {plan.current} -> {plan.target}",
                    plan.to_markdown(),
                    policy,
                    digest=plan.digest(),
                    runbook=FLOW_NAME,
                ),
            )
            if isinstance(approval, str):
                return finish("halted", approval)
            approval_id, slack.thread = approval.id, approval.thread

        record(
            "run.start",
            plan.cluster,
            target_kind="cluster",
            details={
                "from": plan.current,
                "to": plan.target,
                "provider": plan.provider,
                "nodes": plan.to_upgrade,
                "plan_digest": plan.digest(),
                "skipped_checks": plan.skipped_checks,
                "approval": params.approval,
            },
            approval_id=approval_id,
        )
        lease = MaintenanceLease(params.target, LeaseSettings(), holder_identity(runner.run_id))
        try:
            with lease.held():
                status, message = timed(
                    "control_plane",
                    lambda: control_plane(params, plan, runner, steps, slack),
                )
                if status == "succeeded":
                    status, message = timed(
                        "nodes",
                        lambda: upgrade_nodes(params, plan, provider, runner, nodes, slack, lease),
                    )
        except LeaseHeld as exc:
            status, message = "halted", str(exc)
        except STOPPED:  # Ctrl-C / SIGTERM: the Lease is released; a rerun continues
            record(
                "run.finish",
                plan.cluster,
                target_kind="cluster",
                outcome="interrupted",
                details={"message": "interrupted; a rerun continues from the cluster's state"},
            )
            raise
        verified = None
        if status == "succeeded":
            verified = timed("verify", lambda: verify_upgrade(params, plan, runner))
            if verified.exit_code != 0:
                status = "halted"
                message = f"upgraded, but verification failed: {verified.summary_line()}"
        record(
            "run.finish",
            plan.cluster,
            target_kind="cluster",
            outcome=status,
            details={"message": message, "phases": phases},
        )
        return finish(status, message, verified)


def upgrade_rules(params: UpgradeParams) -> ApprovalPolicy | None:
    """Before anything is read: who approves (the operator's policy for cluster-upgrade), or,
    with --approval none, whether this place allows upgrades nobody approves (audited with who
    ran it). InvalidRequest (exit 2, nothing changed) otherwise."""
    try:
        config = load_operator_config()
    except OperatorConfigError as exc:
        raise InvalidRequest(str(exc)) from None
    for template in (params.control_plane_command, params.node_command, params.snapshot_command):
        if refusal := config.action_refusal("command", _argv(template), None):
            raise InvalidRequest(refusal)
    refusal = unattended_refusal(params, allowed_by_config=config.unattended_upgrades)
    if refusal:
        raise InvalidRequest(refusal)
    if params.approval == "none":
        if not params.dry_run:
            record(
                "approval.waived",
                FLOW_NAME,
                target_kind="runbook",
                details={"to": params.to, "why": "--approval none, unattended upgrades allowed"},
            )
        return None
    try:
        policy = effective_policy(
            config.approvals.get(FLOW_NAME),
            RunApproval(),
            changes_something=not params.dry_run,
            identities=config.identities,
            where=config.where,
            runbook=FLOW_NAME,
        )
    except PolicyLoosened as exc:
        raise InvalidRequest(str(exc)) from None
    return policy


def _argv(template: str | None) -> list[str]:
    return shlex.split(template) if template else []


def choose_provider(params: UpgradeParams) -> UpgradeProvider:
    try:
        return provider_for(params)
    except UnknownLocalCluster as exc:
        raise InvalidRequest(str(exc)) from None


def run_preflight(params: UpgradeParams, runner: StepRunner) -> CheckReport:
    """Every preflight check at once (runbooks/upgrade/preflight.py), then --skip-check. The
    etcd snapshot this run takes before the control plane counts as the fresh backup."""
    how = snapshot_plan(params)
    inputs = read_preflight_inputs(
        runner,
        params.target,
        params.version,
        selector=params.selector,
        max_unavailable=params.max_unavailable,
        rpo=params.rpo,
        own_snapshot=OwnSnapshot(how=how) if how else None,
    )
    report = run_checks(
        runner, FLOW_NAME, preflight_checks(), inputs, target=params.target.describe()
    )
    return apply_skips(report, params.skip_check)


def read_plan(params: UpgradeParams, runner: StepRunner, preflight: CheckReport) -> UpgradePlan:
    """Where the cluster stands now, and what is left to do."""
    current = runner.call(read_api_server_version, params)
    found = runner.call(read_node_versions, params)
    facts = [NodeFacts.model_validate(n.model_dump()) for n in found]
    cluster = params.target.context or params.target.describe()
    return plan_upgrade(params, cluster, current, facts, preflight.to_markdown())


def control_plane(
    params: UpgradeParams,
    plan: UpgradePlan,
    runner: StepRunner,
    steps: list[str],
    slack: RunThread,
) -> tuple[Status, str]:
    """etcd snapshot, then the control plane; skipped when the API server is at the target
    already (read again now: a rerun never repeats it). A failure halts before any worker."""
    if runner.call(read_api_server_version, params) == plan.target:
        steps.append(f"control plane already at {plan.target}: not touched")
        return "succeeded", "control plane at target"
    try:
        snap = runner.call(take_snapshot, params, runner.run_id)
        if snap is not None:
            steps.append(snap.summary)
            record(
                "etcd.snapshot",
                plan.cluster,
                target_kind="cluster",
                details={"summary": snap.summary},
            )
        slack.progress(f"control plane {plan.current} -> {plan.target}")
        record(
            "control-plane.upgrade",
            plan.cluster,
            target_kind="cluster",
            details={"to": plan.target},
        )
        done = runner.call(upgrade_control_plane, params, plan.target)
    except Exception as exc:
        record(
            "control-plane.upgrade",
            plan.cluster,
            target_kind="cluster",
            outcome="failed",
            details={"error": str(exc)},
        )
        return "halted", f"control plane upgrade failed, no worker was touched: {exc}"
    steps.append(done.summary)
    steps += [f"  {line}" for line in done.output if line]
    record(
        "control-plane.upgrade",
        plan.cluster,
        target_kind="cluster",
        outcome="succeeded",
        details={"summary": done.summary},
    )
    return "succeeded", "control plane at target"


def upgrade_nodes(
    params: UpgradeParams,
    plan: UpgradePlan,
    provider: UpgradeProvider,
    runner: StepRunner,
    results: list[NodeResult],
    slack: RunThread,
    lease: MaintenanceLease,
) -> tuple[Status, str]:
    """Pool by pool, the rolling-maintenance engine with the provider's node upgrade as the
    action: cordon, drain, upgrade, wait Ready (a new boot), uncordon; halts at the first
    failure, leaving the remaining nodes untouched."""
    action = provider.node_action(plan.target)
    upgraded = 0
    for index, (pool, names) in enumerate(plan.pools):
        maintenance = MaintenanceParams(
            target=params.target,
            nodes=names,
            max_unavailable=params.max_unavailable,
            drain_timeout=params.drain_timeout,
            ready_timeout=params.ready_timeout,
            action=action,
        )
        mplan = runner.call(plan_maintenance, maintenance, runner.run_id)
        ledger = Ledger(mplan)
        later = [n for _, rest in plan.pools[index + 1 :] for n in rest]
        if mplan.refusals or mplan.refuses_for_room:
            why = "; ".join(f"{r.node}: {r.pod}: {r.reason}" for r in mplan.refusals) or "; ".join(
                r.describe() for r in mplan.no_room
            )
            return (
                "halted",
                f"pool {pool}: the drain would refuse ({why}); "
                f"not started: {', '.join(names + later)}",
            )
        slack.progress(f"pool {pool}: {', '.join(names)}")
        status, message = roll(maintenance, mplan, ledger, runner, slack, lease)
        results += ledger.report(runner.run_id, status, message, datetime.now(UTC)).nodes
        if status != "succeeded":
            tail = f"; pools not started: {', '.join(later)}" if later else ""
            return "halted", f"pool {pool}: {message}{tail}"
        upgraded += sum(1 for r in ledger.results.values() if r.result == "maintained")
    return "succeeded", f"control plane and {upgraded} node(s) at {plan.target}"


def verify_upgrade(params: UpgradeParams, plan: UpgradePlan, runner: StepRunner) -> CheckReport:
    """Provision verification, plus: the API server and every selected node at the target."""
    report = verify(VerifyParams(target=params.target), runner)
    server = runner.call(read_api_server_version, params)
    found = runner.call(read_node_versions, params)
    extra = at_target_checks(
        plan.target, server, [NodeFacts.model_validate(n.model_dump()) for n in found]
    )
    return report.model_copy(update={"checks": extra + list(report.checks)})


def summary(plan: UpgradePlan) -> str:
    cp = (
        "control plane done"
        if plan.control_plane_done
        else f"control plane {plan.current} -> {plan.target}"
    )
    return f"{cp}, {len(plan.to_upgrade)} node(s) in {len(plan.pools)} pool(s)"


# --- Entry points ---------------------------------------------------------------------------


@flow(
    name=FLOW_NAME,
    description="Preflight, approval, etcd snapshot, control plane, then nodes; verified.",
    task_runner=ThreadPoolTaskRunner(max_workers=32),  # type: ignore[arg-type]
    validate_parameters=True,
)
def cluster_upgrade(params: UpgradeParams) -> UpgradeReport:
    """Upgrade the cluster to params.to; the report says what happened at each phase."""
    report = run_upgrade(params, PrefectRunner())
    if report.exit_code == 0:
        return report
    from prefect.states import Failed

    return Failed(message=report.message, data=report)  # type: ignore[return-value]


def run_local(params: UpgradeParams) -> UpgradeReport:
    """The same procedure without a Prefect API (the CLI's default when none is configured)."""
    return run_upgrade(params, LocalRunner())
