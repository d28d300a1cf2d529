"""Read what a drain needs: the pods on a node, the DaemonSets that exist, the budgets."""

from __future__ import annotations

from runbooks.kube_target import KubeTarget
from runbooks.maintenance.facts import BudgetInfo, PodInfo
from tasks.kube import client as kube
from tasks.kube.convert import budget_info, pod_info
from tasks.kube.retry import retrying

PAGE = 500  # kubectl drain's default chunk size


def _list_pods(target: KubeTarget, field_selector: str, what: str) -> tuple[list[PodInfo], str]:
    """Every pod the field selector matches (paginated) and the list's resourceVersion."""
    core = kube.core(target)
    pods: list[PodInfo] = []
    token: str | None = None
    version = ""
    while True:
        page = retrying(
            lambda t=token: core.list_pod_for_all_namespaces(  # type: ignore[misc]
                field_selector=field_selector, limit=PAGE, _continue=t
            ),
            what,
        )
        pods += [pod_info(p) for p in page.items]
        version = version or page.metadata.resource_version
        token = page.metadata._continue
        if not token:
            return pods, version


def node_pods(target: KubeTarget, node: str) -> tuple[list[PodInfo], str]:
    """All pods bound to ``node`` and the list's resourceVersion, to watch from."""
    return _list_pods(target, f"spec.nodeName={node}", f"list pods on {node}")


# Above this many nodes, one LIST of every bound pod costs fewer requests than one per node.
ONE_LIST_FROM = 3


def pods_by_node(target: KubeTarget, nodes: list[str]) -> dict[str, list[PodInfo]]:
    """The pods bound to each of ``nodes``: a LIST per node for a few nodes, else one LIST
    of all bound pods (what a plan over many nodes needs, in one request per 500 pods)."""
    if len(nodes) < ONE_LIST_FROM:
        return {n: node_pods(target, n)[0] for n in nodes}
    found: dict[str, list[PodInfo]] = {n: [] for n in nodes}
    for pod in _list_pods(target, "spec.nodeName!=", "list pods on all nodes")[0]:
        if pod.node in found:
            found[pod.node].append(pod)
    return found


_known_daemonsets: dict[str, set[str]] = {}


def daemonsets(target: KubeTarget, needed: set[str] | None = None) -> set[str]:
    """Every DaemonSet as "namespace/name": a DaemonSet pod whose owner is missing is orphaned.

    With ``needed`` (the owners of the pods at hand), an earlier answer that already holds them
    all is reused: DaemonSets rarely vanish mid-drain, and a missing owner is always re-listed
    before a pod is called an orphan."""
    key = target.model_dump_json()
    known = _known_daemonsets.get(key)
    if needed is not None and known is not None and needed <= known:
        return known
    items = retrying(kube.apps(target).list_daemon_set_for_all_namespaces, "list DaemonSets").items
    _known_daemonsets[key] = {f"{d.metadata.namespace}/{d.metadata.name}" for d in items}
    return _known_daemonsets[key]


def budgets(target: KubeTarget) -> list[BudgetInfo]:
    items = retrying(
        kube.policy(target).list_pod_disruption_budget_for_all_namespaces,
        "list PodDisruptionBudgets",
    ).items
    return [budget_info(b) for b in items]


def budget(target: KubeTarget, namespace: str, name: str) -> BudgetInfo | None:
    from kubernetes.client.rest import ApiException

    try:
        return budget_info(
            retrying(
                lambda: kube.policy(target).read_namespaced_pod_disruption_budget(name, namespace),
                f"read PodDisruptionBudget {namespace}/{name}",
            )
        )
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise
