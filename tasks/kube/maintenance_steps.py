"""The steps of rolling node maintenance as Prefect tasks, one per node and step, so the UI shows
"drain worker-3" failing rather than one opaque task. Each returns a StepDone or raises a
StepFailed that says which node, which step, what went wrong and what state the node is in."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.exceptions import MissingContextError
from prefect.logging import get_run_logger

from runbooks.kube_target import KubeTarget
from runbooks.maintenance.drain_plan import DrainOptions
from runbooks.maintenance.facts import NodeInfo
from runbooks.maintenance.ownership import Cordon
from runbooks.maintenance.params import InvalidRequest, MaintenanceAction, MaintenanceParams
from runbooks.maintenance.plan import MaintenancePlan, build_plan
from runbooks.settings import get_settings
from tasks import blockers as blocker_checks
from tasks.kube import nodes, pods
from tasks.kube.client import KubeConfigError
from tasks.kube.drain import DrainFailed, drain
from tasks.kube.retry import before_change
from tasks.maintenance_action import perform


def logger() -> logging.Logger | logging.LoggerAdapter:
    try:
        return get_run_logger()
    except MissingContextError:
        return logging.getLogger("kube_runbooks.maintenance")


@dataclass
class StepDone:
    node: str
    step: str
    seconds: float
    evicted: list[str] = field(default_factory=list)
    detail: str = ""
    skipped: bool = False  # e.g. cordoned by someone else meanwhile
    node_info: NodeInfo | None = None  # the node as the step last saw it (saves a re-read)


class StepFailed(Exception):
    def __init__(
        self, node: str, step: str, message: str, seconds: float, evicted: list[str] | None = None
    ) -> None:
        super().__init__(message)
        self.node = node
        self.step = step
        self.seconds = seconds
        self.evicted = evicted or []


def _timed(node: str, step: str, started: float, exc: BaseException) -> StepFailed:
    evicted = exc.evicted if isinstance(exc, DrainFailed) else []
    return StepFailed(node, step, str(exc), time.monotonic() - started, evicted)


@task(name="plan maintenance", cache_policy=NO_CACHE)
def plan_maintenance(params: MaintenanceParams, run_id: str) -> MaintenancePlan:
    """Read the cluster (all nodes, the selected nodes' pods, DaemonSets, budgets) and decide;
    changes nothing."""
    target = params.target
    try:
        everything = nodes.list_nodes(target)  # one LIST: names checked, states, room
        names = nodes.find_nodes(
            target, [n.name for n in everything], params.nodes, params.selector
        )
    except (nodes.NodeSelectionError, KubeConfigError) as exc:
        raise InvalidRequest(str(exc)) from None
    infos = nodes.pick(everything, names)
    by_node = pods.pods_by_node(target, [n.name for n in infos])
    return build_plan(
        params,
        infos,
        by_node,
        pods.daemonsets(target),
        pods.budgets(target),
        run_id,
        cluster_nodes=everything,
        own_node=get_settings().node_name,
    )


@task(name="read nodes", cache_policy=NO_CACHE)
def read_nodes(target: KubeTarget, names: list[str]) -> list[NodeInfo]:
    return nodes.read_nodes(target, names)


@task(name="check blockers", cache_policy=NO_CACHE)
def check_blockers(params: MaintenanceParams) -> list[str]:
    """What blocks now, one line per blocker that blocks; empty when clear."""
    checks = blocker_checks.check_blockers(params.target, params.blockers)
    return [c.describe() for c in checks if c.blocking]


@task(task_run_name="cordon {node}", cache_policy=NO_CACHE)
def cordon_node(target: KubeTarget, node: str, run_id: str, known: NodeInfo | None) -> StepDone:
    started = time.monotonic()
    try:
        before_change(f"cordon {node}")
        before = nodes.cordon(target, node, run_id, known)
    except nodes.CordonedBySomeoneElse as exc:
        return StepDone(node, "cordon", time.monotonic() - started, detail=str(exc), skipped=True)
    except Exception as exc:
        raise _timed(node, "cordon", started, exc) from exc
    detail = "resumed the cordon of an earlier run" if before == Cordon.EARLIER_RUN else ""
    return StepDone(node, "cordon", time.monotonic() - started, detail=detail)


@task(task_run_name="drain {node}", cache_policy=NO_CACHE)
def drain_node(
    target: KubeTarget, node: str, options: DrainOptions, timeout: float, grace: int | None
) -> StepDone:
    started = time.monotonic()
    try:
        drained = drain(target, node, options, timeout, grace, log=logger())
    except Exception as exc:
        raise _timed(node, "drain", started, exc) from exc
    detail = ""
    if drained.not_waited:
        detail = (
            f"not waited for (deletion overdue by more than "
            f"{options.skip_wait_for_delete_timeout}s; node unreachable?): "
            + ", ".join(drained.not_waited)
        )
    return StepDone(
        node, "drain", time.monotonic() - started, evicted=drained.evicted, detail=detail
    )


@task(task_run_name="maintain {node}", cache_policy=NO_CACHE)
def act_on_node(target: KubeTarget, node: str, action: MaintenanceAction, run_id: str) -> StepDone:
    started = time.monotonic()
    try:
        before_change(f"{action.kind} action on {node}")
        output = perform(target, node, action, run_id)
    except Exception as exc:
        raise _timed(node, "action", started, exc) from exc
    if output:
        logger().info("action on %s: %s", node, output)
    return StepDone(node, "action", time.monotonic() - started, detail=output)


@task(task_run_name="wait for {node} Ready", cache_policy=NO_CACHE)
def wait_node_ready(
    target: KubeTarget, node: str, timeout: float, previous_boot_id: str | None
) -> StepDone:
    started = time.monotonic()
    try:
        info = nodes.wait_ready(target, node, timeout, previous_boot_id)
    except Exception as exc:
        raise _timed(node, "ready", started, exc) from exc
    return StepDone(node, "ready", time.monotonic() - started, node_info=info)


@task(task_run_name="uncordon {node}", cache_policy=NO_CACHE)
def uncordon_node(
    target: KubeTarget, node: str, run_id: str, known: NodeInfo | None = None
) -> StepDone:
    started = time.monotonic()
    try:
        before_change(f"uncordon {node}")
        done = nodes.uncordon(target, node, run_id, known)
    except Exception as exc:
        raise _timed(node, "uncordon", started, exc) from exc
    detail = "" if done else "not uncordoned: the cordon is not this run's"
    return StepDone(node, "uncordon", time.monotonic() - started, detail=detail)
