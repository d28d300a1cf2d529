"""Find nodes, cordon and uncordon them (only our own cordons), and wait for them to be Ready.

Cordon and uncordon carry the node's resourceVersion, so a change made by someone else between
our read and our write is a 409 we re-read and re-decide on, never a blind overwrite.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime

from kubernetes import client, watch
from kubernetes.client.rest import ApiException

from runbooks.kube_target import KubeTarget
from runbooks.maintenance.durations import format_duration
from runbooks.maintenance.facts import NodeInfo
from runbooks.maintenance.ownership import (
    CORDONED_AT_ANNOTATION,
    CORDONED_BY_ANNOTATION,
    Cordon,
    cordon_owner,
)
from tasks import audit
from tasks.kube import client as kube
from tasks.kube.convert import node_info
from tasks.kube.retry import INTERRUPT, TURN_SECONDS, retrying, watch_can_resume

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
    """Current state of ``names`` from one LIST (order kept); vanished nodes are dropped."""
    return pick(list_nodes(target), names)


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
                f"node {name} was cordoned by someone else after the plan was made; left alone"
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
        if _patch(core, name, body, action, details):
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
        if info.cordoned_by != run_id:
            if info.unschedulable:
                log.warning("node %s is cordoned, but not by this run: left cordoned", name)
            return False
        body = {
            "metadata": {
                "resourceVersion": info.resource_version,
                "annotations": {CORDONED_BY_ANNOTATION: None, CORDONED_AT_ANNOTATION: None},
            },
            "spec": {"unschedulable": None},
        }
        if _patch(core, name, body, "node.uncordon", {"run_id": run_id}):
            return True
        info = None
    raise RuntimeError(f"node {name} kept changing while uncordoning it; try again")


def _patch(
    core: client.CoreV1Api, name: str, body: dict[str, object], action: str, details: dict
) -> bool:
    """Audited PATCH with a resourceVersion precondition; False on 409 (re-read and retry)."""
    try:
        with audit.audited(action, name, details=details):
            retrying(lambda: core.patch_node(name, body), f"{action} {name}")
    except ApiException as exc:
        if exc.status == 409:
            return False
        raise
    return True


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
        if INTERRUPT.is_set():
            raise NodeNotReady(f"waiting for node {name} interrupted by the operator")
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
