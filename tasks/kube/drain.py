"""Drain one node: evict every pod the plan says to, wait by watching until each is gone.

One thread, one loop: evictions that a budget refuses are retried on their own backoff timers
(5 s doubling to 30 s, with jitter: never kubectl-library's hot loop), while a watch on the
node's pods collects deletions in between. A pod is gone when it is deleted or replaced by one
with another UID; every watch turn ends with a LIST as resync, so a missed event costs one turn.
"""

from __future__ import annotations

import logging
import random
import re
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime

from kubernetes import client, watch

from runbooks.kit.durations import format_duration
from runbooks.kube_target import KubeTarget
from runbooks.maintenance.drain_plan import DrainOptions, DrainPlan, plan_drain
from runbooks.maintenance.facts import PodInfo, PodRef
from tasks import audit
from tasks.kube import client as kube
from tasks.kube import pods as pod_reads
from tasks.kube.eviction import Answer, EvictionResult, evict
from tasks.kube.retry import TURN_SECONDS, stop_reason, watch_can_resume

EVICTIONS_AT_ONCE = 8
BUDGET_RETRY_FIRST = 5.0
BUDGET_RETRY_CAP = 30.0
# When the budget reports room again, retry early, but never sooner than 1 s after the last
# attempt, 2 s after two, ... (up to the 5 s kubectl uses): a stale or flapping status can
# speed a drain up, never turn it into a hot loop.
MIN_RETRY_SPACING = 1.0


class DrainFailed(RuntimeError):
    """The drain stopped; the message names the pods or the budget, ``evicted`` what went."""

    def __init__(self, message: str, evicted: list[str], refused: bool = False) -> None:
        super().__init__(message)
        self.evicted = evicted
        self.refused = refused


@dataclass
class _Pending:
    pod: PodRef
    due: float = 0.0
    attempts: int = 0
    blocked_by: str | None = None  # "PodDisruptionBudget ns/name (...)" or a throttle message
    budget: str | None = None
    last_attempt: float = 0.0


@dataclass
class _State:
    to_evict: dict[PodRef, _Pending] = field(default_factory=dict)
    waiting: set[PodRef] = field(default_factory=set)  # evicted or terminating, not yet gone
    evicted: list[str] = field(default_factory=list)
    deletion_due: dict[PodRef, datetime] = field(default_factory=dict)  # of waited-for pods
    not_waited: list[str] = field(default_factory=list)


@dataclass
class Drained:
    """What a finished drain did: the pods it evicted, and those it stopped waiting for
    because their deletion was overdue (skip_wait_for_delete_timeout)."""

    evicted: list[str]
    not_waited: list[str]


def drain(
    target: KubeTarget,
    node: str,
    options: DrainOptions,
    timeout: float,
    grace_period: int | None = None,
    log: logging.Logger | logging.LoggerAdapter = logging.getLogger("kube_runbooks.drain"),  # noqa: B008
) -> Drained:
    """Drain ``node`` (already cordoned). Re-plans from a fresh list, so a pod that appeared
    since the plan and must be refused stops the drain before any eviction. Raises DrainFailed
    naming what blocked."""
    started = time.monotonic()
    deadline = started + timeout
    pods, version = pod_reads.node_pods(target, node)
    owners = {
        f"{p.namespace}/{p.controller_name}" for p in pods if p.controller_kind == "DaemonSet"
    }
    plan: DrainPlan = plan_drain(node, pods, options, pod_reads.daemonsets(target, owners))
    if plan.refused:
        listed = "; ".join(f"{d.pod}: {d.reason}" for d in plan.refused)
        raise DrainFailed(f"drain of {node} refused: {listed}", [], refused=True)
    core = kube.core(target)
    state = _State(to_evict={p: _Pending(p) for p in plan.evict}, waiting=set(plan.wait_for))
    skip_after = options.skip_wait_for_delete_timeout
    _note_deletions(state, pods)
    while state.to_evict or state.waiting:
        now = time.monotonic()
        stopping = stop_reason()  # an interrupt, or the Lease lost: no further eviction
        if stopping:
            raise DrainFailed(f"drain of {node} stopped: {stopping}", state.evicted)
        if skip_after:
            _stop_waiting_for_overdue(node, state, skip_after, log)
            if not state.to_evict and not state.waiting:
                break
        if now >= deadline:
            raise DrainFailed(_timeout_message(target, node, state, timeout), state.evicted)
        due = [p for p in state.to_evict.values() if p.due <= now]
        answers = _evict_all(core, node, [p.pod for p in due], grace_period)
        for pending, result in zip(due, answers, strict=True):
            _apply(node, pending, result, state, log)
        unsent = next((r for r in answers if r.answer == Answer.NOT_SENT), None)
        if unsent is not None:
            raise DrainFailed(f"drain of {node} stopped: {unsent.message}", state.evicted)
        if not state.to_evict and not state.waiting:
            break
        next_due = min((p.due for p in state.to_evict.values()), default=deadline)
        if skip_after:
            next_due = min(next_due, _next_overdue(state, skip_after))
        # One turn at most TURN_SECONDS: the loop looks for an interrupt between turns.
        wait_for = max(0.0, min(min(next_due, deadline) - time.monotonic(), TURN_SECONDS))
        if not state.waiting:
            _wait_for_budget(target, state, wait_for)
            continue
        if wait_for < 0.5:
            time.sleep(wait_for)
            continue
        version = _watch_gone(core, node, state, version, wait_for)
        if state.waiting:  # resync: one LIST settles whatever the watch missed
            current, version = pod_reads.node_pods(target, node)
            present = {p.ref for p in current}
            state.waiting &= present
            _note_deletions(state, current)
    log.info(
        "drained %s: %d pods evicted in %s",
        node,
        len(state.evicted),
        format_duration(time.monotonic() - started),
    )
    return Drained(evicted=state.evicted, not_waited=state.not_waited)


def _note_deletions(state: _State, pods: list[PodInfo]) -> None:
    """Remember when each waited-for pod's deletion is due (its deletionTimestamp)."""
    for pod in pods:
        if pod.deletion_due is not None and pod.ref in state.waiting:
            state.deletion_due[pod.ref] = pod.deletion_due


def _stop_waiting_for_overdue(
    node: str, state: _State, skip_after: int, log: logging.Logger | logging.LoggerAdapter
) -> None:
    """kubectl drain's --skip-wait-for-delete-timeout: a pod still there ``skip_after`` seconds
    after its deletion was due has a kubelet that is not answering; waiting longer only holds
    the drain until its timeout."""
    now = datetime.now(UTC)
    overdue = sorted((p for p in state.waiting if _overdue_by(state, p, now) > skip_after), key=str)
    for pod in overdue:
        state.waiting.discard(pod)
        state.not_waited.append(str(pod))
    if overdue:
        log.warning(
            "not waiting for %s on %s: deletion overdue by more than %ds (is the node "
            "unreachable?)",
            ", ".join(str(p) for p in overdue),
            node,
            skip_after,
        )


def _overdue_by(state: _State, pod: PodRef, now: datetime) -> float:
    due = state.deletion_due.get(pod)
    return (now - due).total_seconds() if due is not None else float("-inf")


def _next_overdue(state: _State, skip_after: int) -> float:
    """The monotonic time at which the next waited-for pod becomes overdue (inf if none)."""
    now = datetime.now(UTC)
    remaining = [
        skip_after - _overdue_by(state, p, now) for p in state.waiting if p in state.deletion_due
    ]
    return time.monotonic() + max(0.0, min(remaining)) + 0.1 if remaining else float("inf")


def _evict_one(
    core: client.CoreV1Api, node: str, pod: PodRef, grace_period: int | None
) -> EvictionResult:
    stopping = stop_reason()  # checked right before each eviction, not only per turn
    if stopping:
        return EvictionResult(Answer.NOT_SENT, stopping)
    with audit.audited(
        "pod.evict", str(pod), target_kind="pod", details={"node": node, "uid": pod.uid}
    ) as outcome:
        result = evict(core, pod, grace_period)
        outcome["answer"] = result.answer.value
        if result.message:
            outcome["message"] = result.message
    return result


def _evict_all(
    core: client.CoreV1Api, node: str, pods: list[PodRef], grace_period: int | None
) -> list[EvictionResult]:
    """Evict several pods at once (kubectl drain does one goroutine per pod); at most
    EVICTIONS_AT_ONCE requests in flight per node, so a big node does not flood the apiserver."""
    if len(pods) <= 1:
        return [_evict_one(core, node, p, grace_period) for p in pods]
    with ThreadPoolExecutor(max_workers=min(EVICTIONS_AT_ONCE, len(pods))) as pool:
        one = audit.carried(lambda p: _evict_one(core, node, p, grace_period))
        return list(pool.map(one, pods))


def _apply(
    node: str,
    pending: _Pending,
    result: EvictionResult,
    state: _State,
    log: logging.Logger | logging.LoggerAdapter,
) -> None:
    """What an eviction's answer means for this drain's state."""
    pod = pending.pod
    if result.answer == Answer.EVICTED:
        del state.to_evict[pod]
        state.waiting.add(pod)
        state.evicted.append(str(pod))
        log.debug("evicting %s", pod)
        return
    if result.answer == Answer.GONE:
        del state.to_evict[pod]
        return
    if result.answer == Answer.NOT_SENT:  # the drain stops after this round
        return
    if result.answer == Answer.FAILED:
        raise DrainFailed(f"eviction of {pod} on {node} failed: {result.message}", state.evicted)
    pending.attempts += 1
    pending.last_attempt = time.monotonic()
    if result.answer == Answer.BUDGET:
        delay = min(BUDGET_RETRY_CAP, BUDGET_RETRY_FIRST * 2 ** (pending.attempts - 1))
        pending.budget = result.budget
        pending.blocked_by = _budget_reason(pod.namespace, result.budget, result.message)
    else:
        delay = result.retry_after or min(BUDGET_RETRY_CAP, 1.0 * 2 ** (pending.attempts - 1))
        pending.budget = None
        pending.blocked_by = result.message
    delay *= random.uniform(0.8, 1.2)
    pending.due = time.monotonic() + delay
    log.info("eviction of %s blocked by %s; retrying in %.0fs", pod, pending.blocked_by, delay)


def _budget_reason(namespace: str, budget: str | None, cause: str) -> str:
    """ "PodDisruptionBudget shop/api-pdb (needs 2 healthy pods and has 2 currently)", from the
    429 itself: no extra read, and never the stale status the controller has not updated yet."""
    if not budget:
        return cause
    detail = re.sub(r"^The disruption budget \S+ ", "", cause).rstrip(".")
    return f"PodDisruptionBudget {namespace}/{budget} ({detail})"


def _wait_for_budget(target: KubeTarget, state: _State, seconds: float) -> None:
    """Nothing to watch on the node, only refused evictions waiting for their retry: watch the
    budgets that refused them and retry a budget's pods early when it allows a disruption again
    (the backoff timer stays the upper bound, MIN_RETRY_SPACING the lower one). One watch: on
    the budget itself, on its namespace, or on all budgets when several namespaces wait."""
    blocked = [p for p in state.to_evict.values() if p.budget]
    if not blocked or seconds < 1:
        time.sleep(seconds)
        return
    waiting = {(p.pod.namespace, p.budget or "") for p in blocked}
    policy = kube.policy(target)
    window: dict[str, object] = {
        "timeout_seconds": max(1, int(seconds)),
        "_request_timeout": int(seconds) + 10,
    }
    if len(waiting) == 1:
        ((namespace, name),) = waiting
        args: tuple = (policy.list_namespaced_pod_disruption_budget, namespace)
        window["field_selector"] = f"metadata.name={name}"
    elif len({ns for ns, _ in waiting}) == 1:
        args = (policy.list_namespaced_pod_disruption_budget, next(iter(waiting))[0])
    else:
        args = (policy.list_pod_disruption_budget_for_all_namespaces,)
    stream = watch.Watch()
    opened: tuple[str, str] | None = None
    try:
        for event in stream.stream(*args, **window):
            if event["type"] in ("ERROR", "BOOKMARK"):  # the backoff timer covers a broken watch
                break
            budget = event["object"]
            key = (budget.metadata.namespace, budget.metadata.name)
            status = budget.status
            if key in waiting and status and (status.disruptions_allowed or 0) > 0:
                opened = key
                break
    except Exception as exc:  # a broken watch only ends this wait early
        if not watch_can_resume(exc, 404):
            raise
    finally:
        stream.stop()
    if opened:
        now = time.monotonic()
        for p in blocked:
            if (p.pod.namespace, p.budget) == opened:
                spacing = min(BUDGET_RETRY_FIRST, MIN_RETRY_SPACING * p.attempts)
                p.due = min(p.due, max(now, p.last_attempt + spacing))


def _watch_gone(
    core: client.CoreV1Api, node: str, state: _State, version: str, seconds: float
) -> str:
    """Watch the node's pods for up to ``seconds``; drop waited-for pods as they go."""
    if seconds < 0.5:
        return version
    stream = watch.Watch()
    names = {(p.namespace, p.name): p for p in state.waiting}
    try:
        for event in stream.stream(
            core.list_pod_for_all_namespaces,
            field_selector=f"spec.nodeName={node}",
            resource_version=version,
            allow_watch_bookmarks=True,
            timeout_seconds=max(1, round(seconds)),
            _request_timeout=round(seconds) + 10,
        ):
            if event["type"] == "ERROR":  # the watch broke (e.g. 410 as an event): resync
                break
            if event["type"] == "BOOKMARK":  # the client leaves these as dicts
                raw = event.get("raw_object") or {}
                version = raw.get("metadata", {}).get("resourceVersion") or version
                continue
            obj = event["object"]
            meta = obj.metadata
            if meta.resource_version:
                version = meta.resource_version
            ref = names.get((meta.namespace, meta.name))
            if ref is not None and (event["type"] == "DELETED" or meta.uid != ref.uid):
                state.waiting.discard(ref)
                del names[(meta.namespace, meta.name)]
            elif ref is not None and meta.deletion_timestamp is not None:
                state.deletion_due[ref] = meta.deletion_timestamp
            if not state.waiting:
                break
    except Exception as exc:  # 410 (too old) or a dropped connection: the resync LIST recovers
        if not watch_can_resume(exc):
            raise
    finally:
        stream.stop()
    return version


def _timeout_message(target: KubeTarget, node: str, state: _State, timeout: float) -> str:
    waited = format_duration(timeout)
    blocked = [p for p in state.to_evict.values() if p.blocked_by]
    budgets = sorted({p.blocked_by for p in blocked if p.budget and p.blocked_by})
    if budgets:
        # re-read so the message carries the budget's state now, not at the first refusal
        fresh = []
        for p in {p.budget: p for p in blocked if p.budget}.values():
            info = pod_reads.budget(target, p.pod.namespace, p.budget or "")
            fresh.append(info.describe() if info else p.blocked_by or "")
        pods = ", ".join(str(p.pod) for p in state.to_evict.values())
        return (
            f"drain of {node} blocked by {'; '.join(sorted(fresh))}; waited {waited} "
            f"(pods not evicted: {pods})"
        )
    parts = []
    if state.to_evict:
        pods = ", ".join(
            f"{p.pod} ({p.blocked_by or 'not attempted'})" for p in state.to_evict.values()
        )
        parts.append(f"pods not evicted: {pods}")
    if state.waiting:
        parts.append(
            f"pods still terminating: {', '.join(str(p) for p in sorted(state.waiting, key=str))}"
        )
    return f"drain of {node} did not finish in {waited}: {'; '.join(parts)}"
