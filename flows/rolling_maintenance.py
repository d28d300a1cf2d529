"""Rolling node maintenance: the operator's script, done carefully across many nodes.

    kubectl cordon $NODE
    kubectl drain $NODE --ignore-daemonsets ...
    <maintenance: patch, reboot, ...>
    kubectl wait --for=condition=Ready node/$NODE
    kubectl uncordon $NODE

This module decides the order only: plan first (refusals before anything is cordoned), take the
cluster's lease, then batch by batch (never more than max-unavailable out, counted from the
cluster), check blockers, cordon, drain, act, wait Ready, uncordon; halt at the first failure.
Every call to the cluster is a task in tasks/; every decision is pure code in runbooks/.

The same procedure runs as a Prefect flow (``rolling_node_maintenance``: UI, artifacts, manual
pauses) or, when no Prefect server is configured, as plain Python in threads (``run_local``), so
the CLI does not pay for a temporary server.

No ``from __future__ import annotations``: ``rolling_node_maintenance.serve()`` runs each flow run
in a spawned process with the flow's function pickled by value, without this module's globals;
Prefect must find ``MaintenanceParams`` in the annotation itself to validate the parameters.
"""

import getpass
import os
import time
from datetime import UTC, datetime
from typing import Any

from prefect import flow
from prefect.exceptions import TerminationSignal
from prefect.task_runners import ThreadPoolTaskRunner

from runbooks.approvals.policy import ApprovalPolicy, PolicyLoosened, effective_policy
from runbooks.audit import AuditStoreError
from runbooks.kit.durations import format_duration
from runbooks.maintenance.batch_plan import cordons_to_give_back, next_batch
from runbooks.maintenance.facts import NodeInfo
from runbooks.maintenance.lease_holder import HolderIdentity
from runbooks.maintenance.ownership import Cordon, cordon_owner
from runbooks.maintenance.params import InvalidRequest, MaintenanceParams
from runbooks.maintenance.plan import MaintenancePlan
from runbooks.maintenance.report import Ledger, MaintenanceReport, Status, Step
from runbooks.operator_config import OperatorConfigError, load_operator_config
from tasks.approval_gate import approve_plan
from tasks.audit import audit_context, record
from tasks.kube.lease import LeaseHeld, LeaseRefused, MaintenanceLease, this_machine
from tasks.kube.maintenance_steps import (
    StepDone,
    StepFailed,
    act_on_node,
    check_blockers,
    cordon_node,
    drain_node,
    logger,
    plan_maintenance,
    read_nodes,
    uncordon_node,
    wait_node_ready,
)
from tasks.kube.retry import LEASE_LOST
from tasks.maintenance_artifacts import publish_plan, publish_report
from tasks.manual_pause import manual_unavailable, wait_for_manual_work
from tasks.node_steps import Outcome, each_node
from tasks.slack import RunThread
from tasks.steps import STOPPED, LocalRunner, PrefectRunner, StepRunner

FLOW_NAME = "rolling-node-maintenance"


# --- The procedure --------------------------------------------------------------------------


def holder_identity(run_id: str) -> str:
    """Who holds the Lease: run, user, host, boot ID and PID, so a rerun on this machine can
    tell that the holder's process is gone (runbooks/maintenance/lease_holder.py)."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = f"uid{os.getuid()}"
    here = this_machine()
    identity = HolderIdentity(FLOW_NAME, run_id, user, here.host, here.boot, os.getpid())
    return str(identity)


def operator_rules(params: MaintenanceParams) -> ApprovalPolicy | None:
    """Before the plan, whoever started the run: the operator's configuration decides which
    commands and images may run and who approves (a run may only make that stricter). The
    approval policy to hold the run to, or None; InvalidRequest (exit 2, nothing changed)."""
    try:
        config = load_operator_config()
        policy = effective_policy(
            config.approvals.get(FLOW_NAME),
            params.approval,
            changes_something=not params.dry_run,
            identities=config.identities,
            where=config.where,
            runbook=FLOW_NAME,
        )
    except (OperatorConfigError, PolicyLoosened) as exc:
        raise InvalidRequest(str(exc)) from None
    action = params.action
    refusal = config.action_refusal(action.kind, action.argv("{node}"), action.job_image)
    if refusal:
        raise InvalidRequest(refusal)
    return policy


def run_maintenance(params: MaintenanceParams, runner: StepRunner) -> MaintenanceReport:
    started = datetime.now(UTC)
    with audit_context(FLOW_NAME, flow_run_id=runner.flow_run_id or runner.run_id):
        policy = operator_rules(params)
        if params.action.kind == "manual" and not params.dry_run:
            reason = manual_unavailable(runner)
            if reason:
                raise InvalidRequest(reason)
        plan: MaintenancePlan = runner.call(plan_maintenance, params, runner.run_id)
        publish_plan(runner, plan)
        ledger = Ledger(plan)
        slack = RunThread()  # the approval's Slack thread, once approved in Slack

        def finish(status: Status, message: str) -> MaintenanceReport:
            report = ledger.report(runner.run_id, status, message, started)
            publish_report(runner, report)
            slack.outcome(f"{status}: {message}")
            (runner.log.info if status in ("succeeded", "dry-run") else runner.log.error)(
                "%s: %s", status, message
            )
            return report

        if params.dry_run:
            return finish("dry-run", f"dry run: {_plan_summary(plan)}; nothing was changed")
        if plan.refusals:
            pods = "; ".join(f"{r.node}: {r.pod}: {r.reason}" for r in plan.refusals)
            return finish("refused", f"nothing was cordoned, the drain would refuse {pods}")
        if plan.refuses_for_room:
            rooms = "; ".join(r.describe() for r in plan.no_room)
            return finish(
                "refused",
                f"nothing was cordoned: {rooms}. Lower max-unavailable, add nodes, or allow it "
                "with evict-without-room (--evict-without-room)",
            )
        if not plan.order:
            return finish("succeeded", "no node to maintain (all selected nodes skipped)")
        approval_id = None
        if policy is not None:
            approval = approve_plan(
                runner,
                f"rolling maintenance of {len(plan.order)} node(s) on {plan.cluster}",
                plan.to_markdown(),
                policy,
                digest=plan.digest(),
                runbook=FLOW_NAME,
            )
            if isinstance(approval, str):
                return finish("halted", approval)
            approval_id, slack.thread = approval.id, approval.thread

        lease = MaintenanceLease(params.target, params.lease, holder_identity(runner.run_id))
        record(
            "run.start",
            plan.cluster,
            target_kind="cluster",
            details={"nodes": plan.order, "plan_digest": plan.digest()},
            approval_id=approval_id,
        )
        try:
            with lease.held():
                status, message = roll(params, plan, ledger, runner, slack, lease)
        except LeaseHeld as exc:
            status, message = "halted", str(exc)
        except STOPPED as exc:
            record_interruption(plan, ledger, exc)  # the lease is released by now
            raise
        except LeaseRefused as exc:
            record_finish(plan, "refused", str(exc))
            raise
        record_finish(plan, status, message)
        return finish(status, message)


def record_finish(plan: MaintenancePlan, outcome: str, message: str, **details: Any) -> None:
    """The audit record that closes the run opened by ``run.start``."""
    record(
        "run.finish",
        plan.cluster,
        target_kind="cluster",
        outcome=outcome,
        details={"message": message, **details},
    )


def record_interruption(plan: MaintenancePlan, ledger: Ledger, exc: BaseException) -> None:
    """run.finish 'interrupted', naming the nodes a rerun has to finish; never hides ``exc``."""
    how = "cancelled or terminated" if isinstance(exc, TerminationSignal) else "interrupted"
    unfinished = [
        n for n in plan.order if ledger.results[n].result not in ("maintained", "skipped")
    ]
    message = (
        f"{how}; the lease was released, nodes this run cordoned keep its annotation and a "
        f"rerun finishes them (not finished: {', '.join(unfinished) or 'none'})"
    )
    logger().warning("%s", message)
    try:
        record_finish(plan, "interrupted", message, not_finished=unfinished)
    except AuditStoreError as audit_exc:
        logger().error("could not record the interruption: %s", audit_exc)


def roll(
    params: MaintenanceParams,
    plan: MaintenancePlan,
    ledger: Ledger,
    runner: StepRunner,
    slack: RunThread,
    lease: MaintenanceLease,
) -> tuple[Status, str]:
    """Batches until done, halted, or past the deadline."""
    remaining = list(plan.order)
    batch_no = 0
    while remaining:
        if _past(params.deadline):
            return "deadline", _deadline_message(params, remaining)
        if lease.lost:
            return "halted", _lease_lost_message(lease, ledger, remaining)
        cleared = wait_until_clear(params, plan, ledger, runner, remaining)
        if isinstance(cleared, tuple):
            status, message = cleared
            return status, message
        batch, infos = cleared.batch, cleared.infos
        if lease.lost:
            return "halted", _lease_lost_message(lease, ledger, remaining)
        if not batch:  # every remaining node was skipped meanwhile
            break
        batch_no += 1
        runner.log.info("batch %d: %s", batch_no, ", ".join(batch))
        slack.progress(f"batch {batch_no}: {', '.join(batch)}")
        remaining = [n for n in remaining if n not in batch]
        maintain_batch(params, batch, infos, ledger, runner)
        if lease.lost:
            return "halted", _lease_lost_message(lease, ledger, remaining)
        if ledger.failures:
            first = ledger.failures[0]
            rest = f"; not started: {', '.join(remaining)}" if remaining else ""
            return "halted", (
                f"{first.node} failed at {first.failed_step}: {first.error} "
                f"(node left {first.left}){rest}"
            )
    done = [r.node for r in ledger.results.values() if r.result == "maintained"]
    skipped = [r.node for r in ledger.results.values() if r.result == "skipped"]
    tail = f"; skipped: {', '.join(skipped)}" if skipped else ""
    return "succeeded", f"{len(done)} node(s) maintained{tail}"


def _lease_lost_message(lease: MaintenanceLease, ledger: Ledger, remaining: list[str]) -> str:
    """The halt after the Lease was lost: why, and what each node was left as (no change was
    made after the loss was seen; a run that holds the Lease finishes this run's cordons)."""
    cordoned = [r.node for r in ledger.results.values() if r.left == "cordoned"]
    parts = [f"lease lost: {lease.lost}; no change was made after that"]
    if cordoned:
        parts.append(
            f"left cordoned: {', '.join(cordoned)} (a rerun that holds {lease.where} finishes them)"
        )
    if remaining:
        parts.append(f"not started: {', '.join(remaining)}")
    return "; ".join(parts)


class _Clear:
    def __init__(self, batch: list[str], infos: dict[str, NodeInfo]) -> None:
        self.batch = batch
        self.infos = infos


def wait_until_clear(
    params: MaintenanceParams,
    plan: MaintenancePlan,
    ledger: Ledger,
    runner: StepRunner,
    remaining: list[str],
) -> _Clear | tuple[Status, str]:
    """The next batch, once blockers are clear and max-unavailable has room (counted from the
    cluster now); waits and re-checks up to blockers.max_wait, then halts."""
    began = time.monotonic()
    max_wait = params.blockers.max_wait.total_seconds()
    while True:
        if LEASE_LOST.is_set():  # roll() halts, naming the loss
            return _Clear([], {})
        infos = {n.name: n for n in runner.call(read_nodes, params.target, plan.pool)}
        for name in list(remaining):
            info = infos.get(name)
            why = None
            if info is None:
                why = "node no longer exists"
            elif cordon_owner(info, runner.run_id) == Cordon.SOMEONE_ELSE:
                why = "cordoned by someone else since the plan was made; left as it is"
            if why:
                ledger.skipped(name, why)
                remaining.remove(name)
        out_now = {n for n, i in infos.items() if i.out}
        ours_out = [n for n in remaining if infos[n].unschedulable and infos[n].cordoned_by]
        give_back = cordons_to_give_back(ours_out, out_now, plan.limit)
        if give_back:
            release_cordons(params, give_back, infos, ledger, runner)
            continue
        batch = next_batch(remaining, out_now, plan.limit)
        reasons: list[str] = []
        if params.blockers.configured:
            reasons += runner.call(check_blockers, params)
        if remaining and not batch:
            reasons.append(
                f"max-unavailable {plan.limit} used up by nodes out now: "
                + ", ".join(sorted(out_now))
            )
        if not reasons:
            return _Clear(batch, infos)
        waited = time.monotonic() - began
        if waited >= max_wait:
            return "halted", (
                f"next batch blocked for {format_duration(waited)}: {'; '.join(reasons)}; "
                f"not started: {', '.join(remaining)}"
            )
        if _past(params.deadline):
            return "deadline", _deadline_message(params, remaining)
        pause = min(params.blockers.check_interval.total_seconds(), max_wait - waited)
        runner.log.warning(
            "next batch waits: %s; re-checking in %s", "; ".join(reasons), format_duration(pause)
        )
        if LEASE_LOST.wait(pause):  # roll() halts, naming the loss
            return _Clear([], {})


def release_cordons(
    params: MaintenanceParams,
    nodes: list[str],
    infos: dict[str, NodeInfo],
    ledger: Ledger,
    runner: StepRunner,
) -> None:
    """Uncordon cordons an earlier run of ours left beyond this run's max-unavailable (taking
    them over first, since only a run's own cordon is uncordoned); they are done later."""
    runner.log.warning(
        "an earlier run left %s cordoned, more than max-unavailable %s allows; uncordoning "
        "them first",
        ", ".join(nodes),
        params.max_unavailable,
    )
    target, run_id = params.target, runner.run_id
    taken = each_node(
        runner,
        cordon_node,
        nodes,
        per_node={n: {"known": infos[n]} for n in nodes},
        target=target,
        run_id=run_id,
    )
    ok = [n for n, out in taken.items() if isinstance(out, StepDone) and not out.skipped]
    if len(ok) < len(nodes):
        raise RuntimeError(f"cannot take over the cordons of {', '.join(nodes)}: {taken}")
    for node, out in each_node(runner, uncordon_node, ok, target=target, run_id=run_id).items():
        if isinstance(out, StepFailed):
            raise RuntimeError(f"cannot give back the cordon of {node}: {out}")
        ledger.note(node, "uncordoned first: an earlier run left it cordoned beyond the limit")


def maintain_batch(
    params: MaintenanceParams,
    batch: list[str],
    infos: dict[str, NodeInfo],
    ledger: Ledger,
    runner: StepRunner,
) -> None:
    """cordon -> drain -> act -> wait Ready -> uncordon, each step for the whole batch at once.
    A node that fails stops; the others in hand finish (they are drained already)."""
    target, run_id = params.target, runner.run_id

    def record_step(step: Step, outcomes: dict[str, Outcome]) -> list[str]:
        ok = []
        for node, out in outcomes.items():
            if isinstance(out, StepFailed):
                ledger.step_failed(node, step, out.seconds, str(out), out.evicted)
            elif out.skipped:
                ledger.skipped(node, out.detail)
            else:
                ledger.step_done(node, step, out.seconds, out.evicted, out.detail)
                ok.append(node)
        return ok

    def lease_lost(nodes: list[str], step: Step) -> bool:
        """Once the Lease is lost no further step starts: the nodes in hand stay as they are
        (a run that holds the Lease finishes this run's cordons), as after an interrupt."""
        reason = LEASE_LOST.reason()
        if reason is None:
            return False
        for node in nodes:
            ledger.step_failed(
                node, step, 0.0, f"not started: the maintenance Lease was lost: {reason}", []
            )
        return True

    if lease_lost(batch, "cordon"):
        return
    cordoned = record_step(
        "cordon",
        each_node(
            runner,
            cordon_node,
            batch,
            per_node={n: {"known": infos.get(n)} for n in batch},
            target=target,
            run_id=run_id,
        ),
    )
    if lease_lost(cordoned, "drain"):
        return
    drain_results = each_node(
        runner,
        drain_node,
        cordoned,
        target=target,
        options=params.drain_options,
        timeout=params.drain_timeout.total_seconds(),
        grace=params.grace_period,
    )
    drained = record_step("drain", drain_results)
    failed = [n for n in cordoned if n not in drained]
    lost_now = LEASE_LOST.is_set()  # no uncordon either: the next holder decides
    for node in failed if lost_now else []:
        ledger.note(node, "left cordoned: the maintenance Lease was lost during the drain")
    if failed and not lost_now and params.on_drain_failure == "uncordon":
        for node, out in each_node(
            runner, uncordon_node, failed, target=target, run_id=run_id
        ).items():
            if isinstance(out, StepDone):
                ledger.left(node, "schedulable")
                ledger.note(
                    node,
                    "uncordoned after the failed drain (its evicted pods run elsewhere already)",
                )
            else:
                ledger.note(node, f"uncordon after the failed drain failed too: {out}")
    for node in failed if params.on_drain_failure == "leave-cordoned" else []:
        ledger.note(node, f"left cordoned for a person; `runbook release {node}` when done")

    action = params.action
    if lease_lost(drained, "action"):
        return
    boot_ids = {n: infos[n].boot_id if action.reboots and n in infos else None for n in drained}
    if action.kind == "manual" and drained:
        began = time.monotonic()
        stop = wait_for_manual_work(drained, action.timeout.total_seconds())
        seconds = time.monotonic() - began
        acted = []
        for node in drained:
            if stop:
                ledger.step_failed(node, "action", seconds, stop, [])
            else:
                ledger.step_done(node, "action", seconds, [])
                acted.append(node)
    elif action.kind == "none":
        acted = drained
    else:
        acted = record_step(
            "action",
            each_node(runner, act_on_node, drained, target=target, action=action, run_id=run_id),
        )
    if lease_lost(acted, "ready"):
        return
    ready_results = each_node(
        runner,
        wait_node_ready,
        acted,
        per_node={n: {"previous_boot_id": boot_ids.get(n)} for n in acted},
        target=target,
        timeout=params.ready_timeout.total_seconds(),
    )
    ready = record_step("ready", ready_results)
    for node in drained:
        if node not in ready:
            ledger.note(
                node,
                "left cordoned (maintenance not confirmed healthy); fix the node, "
                f"then rerun or `runbook release {node}` (not `kubectl uncordon`)",
            )
    seen = {n: r.node_info for n, r in ready_results.items() if isinstance(r, StepDone)}
    if lease_lost(ready, "uncordon"):
        return
    record_step(
        "uncordon",
        each_node(
            runner,
            uncordon_node,
            ready,
            per_node={n: {"known": seen.get(n)} for n in ready},
            target=target,
            run_id=run_id,
        ),
    )


def _past(deadline: datetime | None) -> bool:
    if deadline is None:
        return False
    if deadline.tzinfo is None:
        deadline = deadline.replace(tzinfo=UTC)
    return datetime.now(UTC) >= deadline


def _deadline_message(params: MaintenanceParams, remaining: list[str]) -> str:
    return f"deadline {params.deadline} reached; nodes left for next time: {', '.join(remaining)}"


def _plan_summary(plan: MaintenancePlan) -> str:
    evictions = sum(len(n.drain.evict) for n in plan.nodes if n.drain and n.maintained)
    return (
        f"{len(plan.order)} node(s) in {len(plan.batches)} batch(es), {evictions} pod(s) to "
        f"evict, {len(plan.refusals)} refusal(s), {len(plan.skipped)} skipped"
    )


# --- Entry points ---------------------------------------------------------------------------


@flow(
    name=FLOW_NAME,
    description="Cordon, drain, maintain, wait Ready, uncordon: node by node, safely.",
    task_runner=ThreadPoolTaskRunner(max_workers=32),  # type: ignore[arg-type]
    validate_parameters=True,
)
def rolling_node_maintenance(params: MaintenanceParams) -> MaintenanceReport:
    """Roll maintenance across the selected nodes; the report says what happened to each."""
    return _as_flow_state(run_maintenance(params, PrefectRunner()))


def _as_flow_state(report: MaintenanceReport) -> Any:
    """A halted run ends Failed in Prefect (with the report as its result), so the UI shows it."""
    if report.status in ("succeeded", "dry-run", "deadline"):
        return report
    from prefect.states import Failed

    return Failed(message=report.message, data=report)


def run_local(params: MaintenanceParams) -> MaintenanceReport:
    """The same procedure without a Prefect API (the CLI's default when none is configured)."""
    return run_maintenance(params, LocalRunner())
