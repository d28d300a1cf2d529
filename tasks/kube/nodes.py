"""Find nodes, cordon and uncordon them (only our own cordons), and wait for them to be Ready.

Cordon and uncordon carry the node's resourceVersion, so a change made by someone else between
our read and our write is a 409 we re-read and re-decide on, never a blind overwrite. Every node
write names the engine's field manager: that is how a later read tells our cordon from one a
person set after lifting ours by hand (runbooks/maintenance/ownership.py).
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime

from kubernetes import client, watch
from kubernetes.client.rest import ApiException

from runbooks.kit.durations import format_duration
from runbooks.kube_target import KubeTarget
from runbooks.maintenance.facts import NodeInfo
from runbooks.maintenance.ownership import (
    CORDONED_AT_ANNOTATION,
    CORDONED_BY_ANNOTATION,
    FIELD_MANAGER,
    Cordon,
    Release,
    cordon_owner,
    foreign_cordon,
    release_action,
    stale_mark,
)
from tasks import audit
from tasks.kube import client as kube
from tasks.kube.convert import node_info
from tasks.kube.retry import TURN_SECONDS, retrying, stop_reason, watch_can_resume

log = logging.getLogger("kube_runbooks.nodes")


class NodeSelectionError(ValueError):
    """The nodes asked for do not exist or the selector is wrong: a user error."""


class CordonedBySomeoneElse(RuntimeError):
    """Someone cordoned the node after we planned; we leave it alone."""


class NodeNotReady(TimeoutError):
    """The node did not come back (Ready, new boot ID) in time."""


def _known(names: list[str]) -> str:
    shown = sorted(names)
    if len(shown) > 8:
        return f"{', '.join(shown[:8])}, ... ({len(shown)} nodes)"
    return ", ".join(shown) or "none"


def find_nodes(
    target: KubeTarget, existing: list[str], names: list[str], selector: str | None
) -> list[str]:
    """The node names asked for (named ones in order, then selector matches); user errors say
    what was asked and what exists. ``existing``: every node's name, from the caller's LIST."""
    core = kube.core(target)
    selected: list[str] = []
    if names:
        missing = [n for n in names if n not in existing]
        if missing:
            raise NodeSelectionError(
                f"node{'s' if len(missing) > 1 else ''} {', '.join(missing)} not found in "
                f"{target.describe()} (known nodes: {_known(existing)})"
            )
        selected += names
    if selector:
        try:
            found = retrying(
                lambda: core.list_node(label_selector=selector), "list nodes by selector"
            ).items
        except ApiException as exc:
            if exc.status == 400:
                raise NodeSelectionError(
                    f"bad node selector {selector!r}: {_api_message(exc)}"
                ) from None
            raise
        if not found:
            raise NodeSelectionError(
                f"selector {selector!r} matches no nodes in {target.describe()}"
            )
        selected += sorted(n.metadata.name for n in found)
    return list(dict.fromkeys(selected))


def list_nodes(target: KubeTarget) -> list[NodeInfo]:
    """Every node of the cluster, from one LIST."""
    return [node_info(n) for n in retrying(kube.core(target).list_node, "list nodes").items]


def pick(infos: list[NodeInfo], names: list[str]) -> list[NodeInfo]:
    """``names`` in their order; names not in ``infos`` (vanished nodes) are dropped."""
    by_name = {n.name: n for n in infos}
    return [by_name[n] for n in names if n in by_name]


def read_nodes(target: KubeTarget, names: list[str]) -> list[NodeInfo]:
    """Current state of ``names`` from one LIST (order kept); vanished nodes are dropped.
    A stale mark (our annotation on a schedulable node) is cleared on the way, audited: the
    run reads its nodes this way before every batch, so no mark outlives its cordon for long."""
    return [
        clear_stale_mark(target, info) if stale_mark(info) else info
        for info in pick(list_nodes(target), names)
    ]


def read_node(target: KubeTarget, name: str) -> NodeInfo:
    return node_info(retrying(lambda: kube.core(target).read_node(name), f"read node {name}"))


def cordon(target: KubeTarget, name: str, run_id: str, known: NodeInfo | None = None) -> Cordon:
    """Mark the node unschedulable with our run's annotation. A cordon of an earlier run of ours
    is taken over (re-marked with this run); someone else's raises CordonedBySomeoneElse.
    ``known`` (a fresh read) saves a GET; a stale one costs a 409 and a re-read.
    Returns who held the cordon before."""
    core = kube.core(target)
    info = known
    for _ in range(10):
        if info is None:
            info = read_node(target, name)
        owner = cordon_owner(info, run_id)
        if owner == Cordon.THIS_RUN:
            return owner
        if owner == Cordon.SOMEONE_ELSE:
            raise CordonedBySomeoneElse(
                f"node {name} was {foreign_cordon(info)} after the plan was made; left alone"
            )
        body = {
            "metadata": {
                "resourceVersion": info.resource_version,
                "annotations": {
                    CORDONED_BY_ANNOTATION: run_id,
                    CORDONED_AT_ANNOTATION: datetime.now(UTC).isoformat(timespec="seconds"),
                },
            },
            "spec": {"unschedulable": True},
        }
        action = "node.cordon" if owner == Cordon.NONE else "node.adopt-cordon"
        details = {"run_id": run_id, "previous_run": info.cordoned_by}
        if _patch(core, name, body, action, details) is not None:
            if owner == Cordon.EARLIER_RUN:
                log.info(
                    "node %s: taking over the cordon of earlier run %s", name, info.cordoned_by
                )
            return owner
        info = None  # changed since we read it: read again and decide again
    raise RuntimeError(f"node {name} kept changing while cordoning it; try again")


def uncordon(target: KubeTarget, name: str, run_id: str, known: NodeInfo | None = None) -> bool:
    """Make the node schedulable again, only if this run's annotation is on it. Returns whether
    it was uncordoned; someone else's cordon is left (and logged)."""
    core = kube.core(target)
    info = known
    for _ in range(10):
        if info is None:
            try:
                info = read_node(target, name)
            except ApiException as exc:
                if exc.status == 404:
                    return False
                raise
        owner = cordon_owner(info, run_id)
        if owner == Cordon.NONE and info.cordoned_by == run_id:  # lifted by hand meanwhile
            return clear_stale_mark(target, info).cordoned_by is None
        if owner != Cordon.THIS_RUN:
            if info.unschedulable:
                log.warning(
                    "node %s is cordoned, but not by this run (%s): left cordoned",
                    name,
                    foreign_cordon(info) if owner == Cordon.SOMEONE_ELSE else info.cordoned_by,
                )
            return False
        body = {
            "metadata": {
                "resourceVersion": info.resource_version,
                "annotations": {CORDONED_BY_ANNOTATION: None, CORDONED_AT_ANNOTATION: None},
            },
            "spec": {"unschedulable": None},
        }
        if _patch(core, name, body, "node.uncordon", {"run_id": run_id}) is not None:
            return True
        info = None
    raise RuntimeError(f"node {name} kept changing while uncordoning it; try again")


def clear_stale_mark(target: KubeTarget, info: NodeInfo) -> NodeInfo:
    """Remove our annotation from a node found schedulable (someone ran `kubectl uncordon`), so
    it can never be read as ours again. Audited; a node changed since ``info`` was read (a 409)
    is returned as read, and the next read decides again."""
    body: dict[str, object] = {
        "metadata": {
            "resourceVersion": info.resource_version,
            "annotations": {CORDONED_BY_ANNOTATION: None, CORDONED_AT_ANNOTATION: None},
        }
    }
    details = {"previous_run": info.cordoned_by, "reason": "node found schedulable"}
    patched = _patch(kube.core(target), info.name, body, "node.clear-stale-mark", details)
    if patched is None:
        return info
    log.info("node %s: cleared the stale mark of run %s", info.name, info.cordoned_by)
    return node_info(patched)


def release(
    target: KubeTarget, name: str, known: NodeInfo | None = None
) -> tuple[Release, NodeInfo]:
    """Give a node back: uncordon it if the engine cordoned it (any run), clear a stale mark,
    leave anyone else's cordon. Returns what was done and the node as read when deciding."""
    core = kube.core(target)
    info = known
    for _ in range(10):
        if info is None:
            info = read_node(target, name)
        action = release_action(info)
        if action == "clear-mark":
            if clear_stale_mark(target, info).cordoned_by is None:
                return action, info
        elif action == "uncordon":
            body = {
                "metadata": {
                    "resourceVersion": info.resource_version,
                    "annotations": {CORDONED_BY_ANNOTATION: None, CORDONED_AT_ANNOTATION: None},
                },
                "spec": {"unschedulable": None},
            }
            patched = _patch(core, name, body, "node.release", {"previous_run": info.cordoned_by})
            if patched is not None:
                return action, info
        else:
            return action, info
        info = None  # changed since we read it: read again and decide again
    raise RuntimeError(f"node {name} kept changing while releasing it; try again")


def _patch(
    core: client.CoreV1Api, name: str, body: dict[str, object], action: str, details: dict
) -> client.V1Node | None:
    """Audited PATCH, as the engine's field manager, with a resourceVersion precondition.
    The node as patched, or None on 409 (changed meanwhile: re-read and decide again)."""
    try:
        with audit.audited(action, name, details=details):
            return retrying(
                lambda: core.patch_node(name, body, field_manager=FIELD_MANAGER),
                f"{action} {name}",
            )
    except ApiException as exc:
        if exc.status == 409:
            return None
        raise


def wait_ready(
    target: KubeTarget, name: str, timeout: float, previous_boot_id: str | None = None
) -> NodeInfo:
    """Watch the node until it is Ready (and, after a reboot, reports a new boot ID).

    A watch with a short server timeout doubles as the resync: every turn starts from a fresh
    read, so a missed event costs at most one turn."""
    core = kube.core(target)
    deadline = time.monotonic() + timeout

    def back(info: NodeInfo) -> bool:
        rebooted = previous_boot_id is None or info.boot_id != previous_boot_id
        return rebooted and info.ready

    while True:
        node = retrying(lambda: core.read_node(name), f"read node {name}")
        info = node_info(node)
        if back(info):
            return info
        left = deadline - time.monotonic()
        stopping = stop_reason()  # interrupted, or the maintenance Lease lost
        if stopping:
            raise NodeNotReady(f"waiting for node {name} stopped: {stopping}")
        if left <= 0:
            waited = format_duration(timeout)
            if previous_boot_id is not None and info.boot_id == previous_boot_id:
                raise NodeNotReady(
                    f"node {name} did not reboot (boot ID unchanged); waited {waited}"
                )
            raise NodeNotReady(f"node {name} not Ready; waited {waited}")
        stream = watch.Watch()
        try:
            for event in stream.stream(
                core.list_node,
                field_selector=f"metadata.name={name}",
                resource_version=node.metadata.resource_version,
                timeout_seconds=max(1, min(TURN_SECONDS, int(left) + 1)),
                _request_timeout=max(5, min(TURN_SECONDS + 10, int(left) + 10)),
            ):
                if event["type"] == "ERROR":  # the watch broke: the loop re-reads
                    break
                obj = event["object"]
                if isinstance(obj, client.V1Node) and back(node_info(obj)):
                    break
                if time.monotonic() >= deadline:
                    break
        except Exception as exc:  # 410 (too old) or a dropped connection: the loop re-reads
            if not watch_can_resume(exc):
                raise
        finally:
            stream.stop()


def _api_message(exc: ApiException) -> str:
    import json

    try:
        return str(json.loads(exc.body or "{}").get("message") or exc.reason)
    except (ValueError, AttributeError):
        return str(exc.reason)
