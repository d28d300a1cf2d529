"""The in-cluster manifests give the runbooks exactly what a drain needs, and nothing more.

The manifests are applied with kubectl as an operator would; the real RBAC authorizer answers
SubjectAccessReviews, and a token issued to the ServiceAccount (TokenRequest, as the kubelet
mounts it) is used to drain a node for real.
"""

from __future__ import annotations

import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from kubernetes import client, watch
from kubernetes.client.rest import ApiException

from runbooks.cluster import workloads
from runbooks.cluster.binaries import ensure_binaries

pytestmark = pytest.mark.cluster

MANIFESTS = Path(__file__).resolve().parents[2] / "deployments" / "kubernetes"
NAMESPACE = "kube-runbooks"
JOBS = "kube-runbooks-jobs"  # privileged pods: the job action's maintenance Jobs
RUNBOOKS = f"system:serviceaccount:{NAMESPACE}:kube-runbooks"
LISTENER = f"system:serviceaccount:{NAMESPACE}:kube-runbooks-listener"


@dataclass
class Installed:
    """The manifests applied to the local cluster, and a client holding the runbooks' token."""

    admin: client.ApiClient
    runbooks: client.ApiClient
    runbooks_token: str


def kubectl(kubeconfig: Path, *args: str) -> str:
    binary = ensure_binaries().path("kubectl")
    done = subprocess.run(
        [str(binary), f"--kubeconfig={kubeconfig}", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, f"kubectl {' '.join(args)} failed: {done.stderr}"
    return done.stdout


def issue_token(admin: client.ApiClient, account: str) -> str:
    """A token for the ServiceAccount, issued by the API server as the kubelet would mount it."""
    request = client.AuthenticationV1TokenRequest(
        spec=client.V1TokenRequestSpec(audiences=[], expiration_seconds=3600)
    )
    answer = client.CoreV1Api(admin).create_namespaced_service_account_token(
        account, NAMESPACE, request
    )
    return str(answer.status.token)


def token_client(admin: client.ApiClient, token: str) -> client.ApiClient:
    """An API client authenticated only by ``token``."""
    config = client.Configuration()
    config.host = admin.configuration.host
    config.ssl_ca_cert = admin.configuration.ssl_ca_cert
    config.api_key = {"authorization": f"Bearer {token}"}
    return client.ApiClient(config)


def token_kubeconfig(admin: client.ApiClient, token: str, path: Path) -> Path:
    """A kubeconfig holding only the ServiceAccount's token: what the runbooks see in a pod."""
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [
                    {
                        "name": "local",
                        "cluster": {
                            "server": admin.configuration.host,
                            "certificate-authority": admin.configuration.ssl_ca_cert,
                        },
                    }
                ],
                "users": [{"name": "kube-runbooks", "user": {"token": token}}],
                "contexts": [
                    {"name": "runbooks", "context": {"cluster": "local", "user": "kube-runbooks"}}
                ],
                "current-context": "runbooks",
            }
        )
    )
    return path


def wait_namespace_gone_if_terminating(
    core: client.CoreV1Api, name: str, timeout: float = 180
) -> None:
    """A previous run's `kubectl delete` may still be emptying the namespace."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            found = core.read_namespace(name)
        except ApiException as exc:
            if exc.status == 404:
                return
            raise
        if found.metadata.deletion_timestamp is None:
            return
        time.sleep(0.5)
    raise TimeoutError(f"namespace {name} still terminating after {timeout:.0f}s")


@pytest.fixture(scope="module")
def installed(cluster) -> Iterator[Installed]:
    for name in (NAMESPACE, JOBS):
        wait_namespace_gone_if_terminating(cluster.core, name)
    kubectl(cluster.kubeconfig, "apply", "-k", str(MANIFESTS))
    core = cluster.core
    for name, data in (
        ("kube-runbooks-audit", {"url": "sqlite:////tmp/audit.db"}),
        ("kube-runbooks-slack", {"SLACK_BOT_TOKEN": "xoxb-test", "SLACK_SIGNING_SECRET": "s"}),
    ):
        try:
            core.create_namespaced_secret(
                NAMESPACE,
                client.V1Secret(metadata=client.V1ObjectMeta(name=name), string_data=data),
            )
        except ApiException as exc:
            if exc.status != 409:
                raise
    workloads.ensure_namespace(cluster.api, NAMESPACE)  # waits for the namespace to be usable
    try:
        token = issue_token(cluster.api, "kube-runbooks")
        yield Installed(
            admin=cluster.api, runbooks=token_client(cluster.api, token), runbooks_token=token
        )
    finally:
        kubectl(cluster.kubeconfig, "delete", "-k", str(MANIFESTS), "--wait=false")


def may(
    api: client.ApiClient,
    user: str,
    verb: str,
    resource: str,
    group: str = "",
    subresource: str | None = None,
    namespace: str | None = None,
) -> bool:
    """Ask the real authorizer whether ``user`` may ``verb`` the resource."""
    review = client.V1SubjectAccessReview(
        spec=client.V1SubjectAccessReviewSpec(
            user=user,
            groups=[
                "system:serviceaccounts",
                f"system:serviceaccounts:{NAMESPACE}",
                "system:authenticated",
            ],
            resource_attributes=client.V1ResourceAttributes(
                verb=verb,
                group=group,
                resource=resource,
                subresource=subresource,
                namespace=namespace,
            ),
        )
    )
    answer = client.AuthorizationV1Api(api).create_subject_access_review(review)
    return bool(answer.status.allowed)


# (verb, resource, group, subresource, namespace): what a drain and the runbooks need.
NEEDED = [
    ("get", "nodes", "", None, None),
    ("list", "nodes", "", None, None),
    ("watch", "nodes", "", None, None),
    ("patch", "nodes", "", None, None),  # cordon / uncordon
    ("list", "pods", "", None, None),
    ("watch", "pods", "", None, "payments"),
    ("create", "pods", "", "eviction", "payments"),
    ("get", "poddisruptionbudgets", "policy", None, "payments"),
    ("list", "poddisruptionbudgets", "policy", None, None),
    ("watch", "poddisruptionbudgets", "policy", None, "payments"),  # wait for a budget to free
    ("list", "daemonsets", "apps", None, None),
    ("get", "leases", "coordination.k8s.io", None, NAMESPACE),
    ("create", "leases", "coordination.k8s.io", None, NAMESPACE),
    ("update", "leases", "coordination.k8s.io", None, NAMESPACE),
    ("create", "jobs", "batch", None, JOBS),
    ("watch", "jobs", "batch", None, JOBS),
]

FORBIDDEN = [
    ("get", "secrets", "", None, NAMESPACE),
    ("list", "secrets", "", None, None),
    ("watch", "secrets", "", None, "kube-system"),
    ("delete", "namespaces", "", None, None),
    ("delete", "namespaces", "", None, NAMESPACE),
    ("delete", "nodes", "", None, None),
    ("create", "nodes", "", None, None),
    ("update", "nodes", "", None, None),
    ("delete", "pods", "", None, "payments"),  # evict, never delete: budgets must hold
    ("create", "pods", "", None, NAMESPACE),
    ("update", "leases", "coordination.k8s.io", None, "kube-system"),  # leader election
    ("create", "jobs", "batch", None, "default"),
    ("create", "jobs", "batch", None, NAMESPACE),  # not where our restricted pods run
    ("create", "leases", "coordination.k8s.io", None, JOBS),
    ("create", "serviceaccounts", "", "token", NAMESPACE),
    ("bind", "clusterroles", "rbac.authorization.k8s.io", None, None),
    ("escalate", "roles", "rbac.authorization.k8s.io", None, NAMESPACE),
    ("patch", "deployments", "apps", None, NAMESPACE),
    ("get", "configmaps", "", None, NAMESPACE),
    ("delete", "jobs", "batch", None, JOBS),
    ("get", "pods", "", "log", JOBS),
    # No runbook posts Events: a cluster-wide create would let the token forge any object's.
    ("create", "events", "", None, "default"),
    ("create", "events", "", None, None),
    ("create", "events", "events.k8s.io", None, "kube-system"),
    ("patch", "events", "events.k8s.io", None, None),
]


def _label(case: tuple[str, str, str, str | None, str | None]) -> str:
    verb, resource, _, sub, ns = case
    return f"{verb} {resource}{'/' + sub if sub else ''} in {ns or 'cluster'}"


@pytest.mark.parametrize("case", NEEDED, ids=_label)
def test_runbooks_account_may_do_what_a_drain_needs(
    installed: Installed, case: tuple[str, str, str, str | None, str | None]
) -> None:
    verb, resource, group, sub, ns = case
    assert may(installed.admin, RUNBOOKS, verb, resource, group, sub, ns)


@pytest.mark.parametrize("case", FORBIDDEN, ids=_label)
def test_runbooks_account_may_not_read_secrets_delete_namespaces_or_nodes(
    installed: Installed, case: tuple[str, str, str, str | None, str | None]
) -> None:
    verb, resource, group, sub, ns = case
    assert not may(installed.admin, RUNBOOKS, verb, resource, group, sub, ns)


def test_listener_account_may_not_touch_the_cluster(installed: Installed) -> None:
    for verb, resource, group, ns in [
        ("list", "nodes", "", None),
        ("patch", "nodes", "", None),
        ("list", "pods", "", None),
        ("get", "secrets", "", NAMESPACE),
        ("create", "leases", "coordination.k8s.io", NAMESPACE),
    ]:
        assert not may(installed.admin, LISTENER, verb, resource, group, None, ns), verb + resource


CLUSTER_WIDE = {("", "nodes", v) for v in ("get", "list", "watch", "patch")} | {
    ("", "pods", "list"),
    ("", "pods", "watch"),
    ("", "pods/eviction", "create"),
    ("policy", "poddisruptionbudgets", "get"),
    ("policy", "poddisruptionbudgets", "list"),
    ("policy", "poddisruptionbudgets", "watch"),
    ("apps", "daemonsets", "list"),
}
EVERY_ACCOUNT = {  # system:basic-user: ask the API what you may do
    ("authorization.k8s.io", "selfsubjectaccessreviews", "create"),
    ("authorization.k8s.io", "selfsubjectrulesreviews", "create"),
    ("authentication.k8s.io", "selfsubjectreviews", "create"),
}


@pytest.mark.parametrize(
    ("namespace", "namespaced"),
    [
        (NAMESPACE, {("coordination.k8s.io", "leases", v) for v in ("get", "create", "update")}),
        (JOBS, {("batch", "jobs", v) for v in ("get", "list", "watch", "create")}),
        ("default", set()),
    ],
)
def test_runbooks_account_holds_no_rules_beyond_the_declared_ones(
    installed: Installed, namespace: str, namespaced: set[tuple[str, str, str]]
) -> None:
    """Everything the token may do in a namespace, as the API server lists it."""
    review = client.V1SelfSubjectRulesReview(
        spec=client.V1SelfSubjectRulesReviewSpec(namespace=namespace)
    )
    rules = (
        client.AuthorizationV1Api(installed.runbooks)
        .create_self_subject_rules_review(review)
        .status.resource_rules
    )
    granted = {
        (group, resource, verb)
        for rule in rules
        for group in rule.api_groups or [""]
        for resource in rule.resources or []
        for verb in rule.verbs
    }
    assert granted - EVERY_ACCOUNT == CLUSTER_WIDE | namespaced


def test_runbooks_token_drains_a_node_and_is_refused_secrets_and_node_deletion(
    installed: Installed, cluster, node_group, namespace: str
) -> None:
    group = node_group(1)
    node = group.names[0]
    workloads.create_deployment(
        cluster.api,
        namespace,
        "web",
        replicas=2,
        node_selector=group.node_selector,
        min_available=1,
    )
    workloads.wait_pods_ready(cluster.api, namespace, expected=2)
    workloads.wait_pdb_observed(cluster.api, namespace, "web-pdb")
    core = client.CoreV1Api(installed.runbooks)

    # cordon, read the budget, evict what runs on the node, watch it go, uncordon
    core.patch_node(node, {"spec": {"unschedulable": True}})
    budget = client.PolicyV1Api(installed.runbooks).read_namespaced_pod_disruption_budget(
        "web-pdb", namespace
    )
    assert budget.status.disruptions_allowed == 1
    listed = core.list_pod_for_all_namespaces(field_selector=f"spec.nodeName={node}")
    pods = listed.items
    assert len(pods) == 2
    first = pods[0]
    core.create_namespaced_pod_eviction(
        first.metadata.name,
        first.metadata.namespace,
        client.V1Eviction(
            metadata=client.V1ObjectMeta(
                name=first.metadata.name, namespace=first.metadata.namespace
            )
        ),
    )
    gone = False
    for event in watch.Watch().stream(
        core.list_namespaced_pod,
        namespace,
        field_selector=f"metadata.name={first.metadata.name}",
        resource_version=listed.metadata.resource_version,  # from before the eviction
        timeout_seconds=60,
    ):
        if event["type"] == "DELETED" and event["object"].metadata.uid == first.metadata.uid:
            gone = True
            break
    assert gone, f"evicted pod {first.metadata.name} did not go"
    core.patch_node(node, {"spec": {"unschedulable": None}})
    assert not cluster.core.read_node(node).spec.unschedulable

    # the maintenance Lease, in the engine's namespace
    coordination = client.CoordinationV1Api(installed.runbooks)
    lease_name = f"rbac-{uuid.uuid4().hex[:6]}"
    coordination.create_namespaced_lease(
        NAMESPACE,
        client.V1Lease(
            metadata=client.V1ObjectMeta(name=lease_name),
            spec=client.V1LeaseSpec(holder_identity="rbac-test", lease_duration_seconds=15),
        ),
    )
    lease = coordination.read_namespaced_lease(lease_name, NAMESPACE)
    lease.spec.holder_identity = None
    coordination.replace_namespaced_lease(lease_name, NAMESPACE, lease)

    refused = []
    for attempt, call in [
        (
            "read the audit Secret",
            lambda: core.read_namespaced_secret("kube-runbooks-audit", NAMESPACE),
        ),
        ("delete the node", lambda: core.delete_node(node)),
        ("delete the namespace", lambda: core.delete_namespace(namespace)),
        ("delete a pod", lambda: core.delete_namespaced_pod(pods[1].metadata.name, namespace)),
        ("take kube-system's Leases", lambda: coordination.list_namespaced_lease("kube-system")),
        (
            "post an Event about the node",
            lambda: core.create_namespaced_event(
                "default",
                client.CoreV1Event(
                    metadata=client.V1ObjectMeta(generate_name=f"{node}."),
                    involved_object=client.V1ObjectReference(kind="Node", name=node),
                    reason="Forged",
                    message="not from the runbooks",
                ),
            ),
        ),
    ]:
        try:
            call()
        except ApiException as exc:
            if exc.status == 403:
                refused.append(attempt)
    assert refused == [
        "read the audit Secret",
        "delete the node",
        "delete the namespace",
        "delete a pod",
        "take kube-system's Leases",
        "post an Event about the node",
    ]
    assert cluster.core.read_node(node).metadata.deletion_timestamp is None


def test_worker_and_listener_run_under_restricted_pod_security_with_probes_and_requests(
    installed: Installed,
) -> None:
    apps = client.AppsV1Api(installed.admin)
    deadline = time.monotonic() + 60
    while True:
        deployments = {d.metadata.name: d for d in apps.list_namespaced_deployment(NAMESPACE).items}
        available = {n for n, d in deployments.items() if (d.status.available_replicas or 0) >= 1}
        if available == {"kube-runbooks-worker", "kube-runbooks-listener"}:
            break
        assert time.monotonic() < deadline, f"available after 60s: {sorted(available)}"
        time.sleep(0.5)
    for deployment in deployments.values():
        pod = deployment.spec.template.spec
        for container in pod.containers:
            assert container.liveness_probe and container.readiness_probe, container.name
            assert container.resources.requests["cpu"] and container.resources.requests["memory"]
            assert container.resources.limits["memory"]
    listener_pods = (
        client.CoreV1Api(installed.admin)
        .list_namespaced_pod(
            NAMESPACE, label_selector="app.kubernetes.io/name=kube-runbooks-listener"
        )
        .items
    )
    assert listener_pods
    for pod in listener_pods:  # the listener carries no Kubernetes credentials at all
        mounts = [m.mount_path for c in pod.spec.containers for m in c.volume_mounts or []]
        assert "/var/run/secrets/kubernetes.io/serviceaccount" not in mounts


def test_rolling_maintenance_with_a_job_action_needs_nothing_beyond_the_runbooks_token(
    installed: Installed, cluster, node_group, namespace: str, tmp_path: Path
) -> None:
    """The real runbook, every Kubernetes call made with the ServiceAccount's token only:
    plan (nodes, pods, DaemonSets, budgets), Lease, cordon, evict + watch, Job, Ready, uncordon."""
    from flows.rolling_maintenance import run_local
    from runbooks.maintenance.params import MaintenanceParams

    group = node_group(2)
    workloads.create_deployment(
        cluster.api, namespace, "web", 4, group.node_selector, max_unavailable=1
    )
    workloads.create_statefulset(cluster.api, namespace, "db", 2, group.node_selector)
    workloads.create_daemonset(cluster.api, namespace, "agent", group.node_selector)
    workloads.wait_pods_ready(cluster.api, namespace, 4 + 2 + 2)
    workloads.wait_pdb_observed(cluster.api, namespace, "web-pdb")
    kubeconfig = token_kubeconfig(installed.admin, installed.runbooks_token, tmp_path / "sa")

    report = run_local(
        MaintenanceParams.model_validate(
            {
                "target": {"kubeconfig": str(kubeconfig)},
                "nodes": group.names,
                "drain_timeout": "60s",
                "ready_timeout": "30s",
                "action": {
                    "kind": "job",
                    "job_namespace": JOBS,
                    "command": "echo patching {node}",
                },
                "lease": {"namespace": NAMESPACE, "name": f"rbac-{uuid.uuid4().hex[:6]}"},
            }
        )
    )

    assert report.status == "succeeded", report.message
    assert [r.result for r in report.nodes] == ["maintained", "maintained"]
    assert any(r.pods_evicted for r in report.nodes)
    assert all(not cluster.core.read_node(n).spec.unschedulable for n in group.names)


def test_a_lease_namespace_the_account_may_not_write_is_refused_before_any_cordon(
    installed: Installed, cluster, node_group, namespace: str, tmp_path: Path
) -> None:
    """The runbooks' Role covers Leases in its own namespace only: pointed elsewhere, the real
    authorizer answers 403 and the run stops with that answer, before touching a node."""
    from tests.cluster.test_maintenance_helpers import cli, node_state

    group = node_group(2)
    workloads.create_deployment(cluster.api, namespace, "web", 2, group.node_selector)
    workloads.wait_pods_ready(cluster.api, namespace, 2)
    kubeconfig = token_kubeconfig(installed.admin, installed.runbooks_token, tmp_path / "sa")
    lease = f"rbac-{uuid.uuid4().hex[:6]}"

    done = cli(
        cluster, "--kubeconfig", str(kubeconfig), "--selector", group.selector,
        "--lease-namespace", "default", "--lease-name", lease,
    )  # fmt: skip

    assert done.returncode == 2, done.stderr
    assert f"cannot take Lease default/{lease}" in done.stderr
    assert "forbidden" in done.stderr and "nothing was changed" in done.stderr
    assert "Traceback" not in done.stderr
    assert node_state(cluster, group.names) == {n: (False, None) for n in group.names}
    with pytest.raises(ApiException) as missing:
        client.CoordinationV1Api(cluster.api).read_namespaced_lease(lease, "default")
    assert missing.value.status == 404
