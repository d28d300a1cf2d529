"""`runbook verify` against the real local control plane: a fresh cluster passes the shipped
baseline, and each thing an operator would break fails exactly the check named for it."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from kubernetes import client
from kubernetes.client.rest import ApiException

from flows.provision_verification import VerifyParams, run_local
from runbooks.kit.checks import PROBLEMS, CheckReport
from runbooks.kube_target import KubeTarget
from runbooks.verify.baseline import Baseline
from runbooks.verify.baseline_file import load_baseline, shipped_baseline
from tests.conftest import LocalCluster, NodeGroup

pytestmark = pytest.mark.cluster
RUNBOOK = str(Path(sys.executable).with_name("runbook"))


def verify(cluster: LocalCluster, baseline: Baseline | None = None) -> CheckReport:
    params = VerifyParams(
        target=KubeTarget(kubeconfig=cluster.kubeconfig),
        baseline=baseline or load_baseline(shipped_baseline()),
    )
    return run_local(params)


def problems(report: CheckReport) -> list[str]:
    return [c.id for c in report.checks if c.status in PROBLEMS]


def evidence(report: CheckReport, check_id: str) -> str:
    return "\n".join(next(c for c in report.checks if c.id == check_id).evidence)


def shipped(**changes: Any) -> Baseline:
    """The shipped local baseline with some sections changed."""
    return load_baseline(shipped_baseline()).model_copy(update=changes)


def eventually(check: Callable[[], bool], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.5)
    raise TimeoutError(f"not seen in {timeout:.0f}s: {what}")


def settled_node(cluster: LocalCluster, group: NodeGroup) -> str:
    """The group's node once the node controller has lifted the not-ready taint every new node
    starts with (a Ready node that keeps it is what nodes.taints reports)."""
    (name,) = group.names

    def untainted() -> bool:
        taints = cluster.core.read_node(name).spec.taints or []
        return not any(t.key.startswith("node.kubernetes.io/") for t in taints)

    eventually(untainted, f"node {name} without node.kubernetes.io taints")
    return name


def ignore_missing(delete: Callable[[], Any]) -> None:
    try:
        delete()
    except ApiException as exc:
        if exc.status != 404:
            raise


def test_a_fresh_local_cluster_passes_the_shipped_baseline(cluster: LocalCluster) -> None:
    done = subprocess.run(
        [RUNBOOK, "verify", "--baseline", str(shipped_baseline()), "--output", "json"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "KUBECONFIG": str(cluster.kubeconfig)},
    )
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(done.stdout)
    assert report["status"] == "pass"
    statuses = {c["id"]: c["status"] for c in report["checks"]}
    assert len(statuses) == 15
    assert set(statuses.values()) <= {"pass", "skip"}, statuses
    assert statuses["certs.expiry"] == "pass"  # the API server's serving cert was read


def test_a_not_ready_node_fails_node_conditions_only(
    cluster: LocalCluster, node_group: Callable[[int], NodeGroup]
) -> None:
    from runbooks.cluster.nodes import is_ready, set_not_ready

    name = settled_node(cluster, node_group(1))
    set_not_ready(cluster.kubeconfig, name)
    eventually(lambda: not is_ready(cluster.core.read_node(name)), f"{name} NotReady")
    report = verify(cluster)
    assert problems(report) == ["nodes.conditions"]
    assert f"node {name}: Ready=False" in evidence(report, "nodes.conditions")
    assert report.exit_code == 1


def test_a_second_default_storage_class_fails_storage_only(cluster: LocalCluster) -> None:
    storage = client.StorageV1Api(cluster.api)
    names = [f"sc-{uuid.uuid4().hex[:6]}" for _ in range(2)]

    def default_class(name: str) -> client.V1StorageClass:
        return client.V1StorageClass(
            metadata=client.V1ObjectMeta(
                name=name, annotations={"storageclass.kubernetes.io/is-default-class": "true"}
            ),
            provisioner="example.com/none",
        )

    try:
        storage.create_storage_class(default_class(names[0]))
        assert problems(verify(cluster)) == []  # one default is fine
        storage.create_storage_class(default_class(names[1]))
        report = verify(cluster)
        assert problems(report) == ["storage.default-class"]
        assert f"default: {', '.join(sorted(names))}" in evidence(report, "storage.default-class")
    finally:
        for name in names:
            ignore_missing(partial(storage.delete_storage_class, name))


def test_a_missing_system_workload_fails_workloads_only(
    cluster: LocalCluster, namespace: str
) -> None:
    from runbooks.cluster.workloads import create_deployment, wait_pods_ready
    from runbooks.verify.baseline import Workload

    create_deployment(cluster.api, namespace, "dns", 2, {"type": "kwok"})
    wait_pods_ready(cluster.api, namespace, 2)
    declared = shipped(workloads=[Workload(namespace=namespace, kind="Deployment", name="dns")])
    eventually(lambda: problems(verify(cluster, declared)) == [], "deployment dns available")
    cluster.apps.delete_namespaced_deployment("dns", namespace)
    eventually(lambda: not cluster.apps.list_namespaced_deployment(namespace).items, "dns deleted")
    report = verify(cluster, declared)
    assert problems(report) == ["baseline.workloads"]
    assert f"{namespace}/deployment/dns: not found" in evidence(report, "baseline.workloads")


@pytest.fixture
def service_without_endpoints(cluster: LocalCluster, namespace: str) -> str:
    """A Service with no selector and no endpoints: what a crashed add-on leaves behind."""
    cluster.core.create_namespaced_service(
        namespace,
        client.V1Service(
            metadata=client.V1ObjectMeta(name="backend"),
            spec=client.V1ServiceSpec(ports=[client.V1ServicePort(port=443)]),
        ),
    )
    return namespace


def test_an_unavailable_apiservice_fails_apiservices_only(
    cluster: LocalCluster, service_without_endpoints: str
) -> None:
    registration = client.ApiregistrationV1Api(cluster.api)
    name = f"v1alpha1.t{uuid.uuid4().hex[:6]}.example.com"
    registration.create_api_service(
        {
            "apiVersion": "apiregistration.k8s.io/v1",
            "kind": "APIService",
            "metadata": {"name": name},
            "spec": {
                "group": name.split(".", 1)[1],
                "version": "v1alpha1",
                "service": {"namespace": service_without_endpoints, "name": "backend"},
                "insecureSkipTLSVerify": True,
                "groupPriorityMinimum": 1000,
                "versionPriority": 15,
            },
        }
    )
    try:

        def unavailable() -> bool:
            status = registration.read_api_service(name).status
            return any(
                c.type == "Available" and c.status == "False" for c in status.conditions or []
            )

        eventually(unavailable, f"{name} Available=False")
        report = verify(cluster)
        assert problems(report) == ["apiservices.available"]
        assert f"apiservice {name}:" in evidence(report, "apiservices.available")
    finally:  # before the namespace goes: a broken APIService stalls namespace deletion
        ignore_missing(lambda: registration.delete_api_service(name))


def test_a_webhook_without_endpoints_fails_webhooks_only(
    cluster: LocalCluster, service_without_endpoints: str
) -> None:
    admission = client.AdmissionregistrationV1Api(cluster.api)
    name = f"t-{uuid.uuid4().hex[:6]}"
    admission.create_validating_webhook_configuration(
        {
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "ValidatingWebhookConfiguration",
            "metadata": {"name": name},
            "webhooks": [
                {
                    "name": "check.kube-runbooks.test",
                    "clientConfig": {
                        "service": {"namespace": service_without_endpoints, "name": "backend"}
                    },
                    "rules": [
                        {
                            "apiGroups": [""],
                            "apiVersions": ["v1"],
                            "operations": ["CREATE"],
                            "resources": ["configmaps"],
                        }
                    ],
                    # Fail (the dangerous kind), scoped to namespaces nobody labels so far
                    "failurePolicy": "Fail",
                    "namespaceSelector": {"matchLabels": {"kube-runbooks.test/webhook": name}},
                    "sideEffects": "None",
                    "admissionReviewVersions": ["v1"],
                }
            ],
        }
    )
    try:
        report = verify(cluster)
        assert problems(report) == ["webhooks.endpoints"]
        assert f"service {service_without_endpoints}/backend has no ready endpoints" in evidence(
            report, "webhooks.endpoints"
        )
    finally:
        ignore_missing(lambda: admission.delete_validating_webhook_configuration(name))


@pytest.fixture
def tenant(cluster: LocalCluster) -> Iterator[str]:
    """A tenant namespace (the shipped baseline's selector) with its quota and limits, and a
    Pod Security label."""
    name = f"tenant-{uuid.uuid4().hex[:6]}"
    cluster.core.create_namespace(
        client.V1Namespace(
            metadata=client.V1ObjectMeta(
                name=name,
                labels={
                    "kube-runbooks.local/tenant": "true",
                    "pod-security.kubernetes.io/enforce": "restricted",
                },
            )
        )
    )
    cluster.core.create_namespaced_resource_quota(
        name,
        client.V1ResourceQuota(
            metadata=client.V1ObjectMeta(name="quota"),
            spec=client.V1ResourceQuotaSpec(hard={"pods": "10"}),
        ),
    )
    cluster.core.create_namespaced_limit_range(
        name,
        client.V1LimitRange(
            metadata=client.V1ObjectMeta(name="limits"),
            spec=client.V1LimitRangeSpec(
                limits=[client.V1LimitRangeItem(type="Container", default={"cpu": "100m"})]
            ),
        ),
    )
    yield name
    ignore_missing(lambda: cluster.core.delete_namespace(name))


def test_a_namespace_without_its_pod_security_label_fails_namespace_labels_only(
    cluster: LocalCluster, tenant: str
) -> None:
    assert problems(verify(cluster)) == []
    label = "pod-security.kubernetes.io/enforce"
    cluster.core.patch_namespace(tenant, {"metadata": {"labels": {label: None}}})
    report = verify(cluster)
    assert problems(report) == ["namespaces.labels"]
    assert f"namespace {tenant}: {label}=(none)" in evidence(report, "namespaces.labels")


def test_an_unexpected_cluster_admin_binding_fails_rbac_only(cluster: LocalCluster) -> None:
    rbac = client.RbacAuthorizationV1Api(cluster.api)
    name = f"t-{uuid.uuid4().hex[:6]}"
    rbac.create_cluster_role_binding(
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": name},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": "cluster-admin",
            },
            "subjects": [
                {"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "mallory"}
            ],
        }
    )
    try:
        report = verify(cluster)
        assert problems(report) == ["rbac.cluster-admin"]
        assert f"clusterrolebinding {name} grants cluster-admin to User mallory" in evidence(
            report, "rbac.cluster-admin"
        )
        # the CLI: exit 1, and the report names the check, its evidence and what to do
        done = subprocess.run(
            [RUNBOOK, "verify", "--baseline", str(shipped_baseline())],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            env={**os.environ, "KUBECONFIG": str(cluster.kubeconfig)},
        )
        assert done.returncode == 1, done.stdout + done.stderr
        assert (
            "FAIL rbac.cluster-admin: cluster-admin bound only to declared subjects" in done.stdout
        )
        assert f"evidence: clusterrolebinding {name} grants cluster-admin to User mallory" in (
            done.stdout
        )
        assert "remediation: delete the binding" in done.stdout
    finally:
        ignore_missing(lambda: rbac.delete_cluster_role_binding(name))


def test_a_kubelet_outside_the_skew_policy_fails_version_skew_only(
    cluster: LocalCluster, node_group: Callable[[int], NodeGroup]
) -> None:
    from runbooks.cluster.nodes import set_node_info

    name = settled_node(cluster, node_group(1))
    set_node_info(cluster.kubeconfig, name, kubelet_version="v1.32.4")
    report = verify(cluster)
    assert problems(report) == ["version.skew"]
    assert f"node {name}: kubelet v1.32.4 4 minors older" in evidence(report, "version.skew")


def _tls_secret(days: float) -> dict[str, str]:
    import base64

    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "web.example.com")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=days))
        .sign(key, hashes.SHA256())
    )
    pem_key = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return {
        "tls.crt": base64.b64encode(cert.public_bytes(serialization.Encoding.PEM)).decode(),
        "tls.key": base64.b64encode(pem_key).decode(),
    }


def test_a_certificate_expiring_within_the_window_fails_certs_only(
    cluster: LocalCluster, namespace: str
) -> None:
    from runbooks.verify.baseline import Certificates, SecretRef

    for name, days in (("web-tls", 5), ("api-tls", 200)):
        cluster.core.create_namespaced_secret(
            namespace,
            client.V1Secret(
                metadata=client.V1ObjectMeta(name=name),
                type="kubernetes.io/tls",
                data=_tls_secret(days),
            ),
        )
    certificates = Certificates(
        expiry_window_days=30,
        secrets=[SecretRef(namespace=namespace, name=n) for n in ("web-tls", "api-tls")],
    )
    report = verify(cluster, shipped(certificates=certificates))
    assert problems(report) == ["certs.expiry"]
    found = evidence(report, "certs.expiry")
    assert f"secret {namespace}/web-tls: expires" in found
    assert "api-tls" not in found and "API server" not in found


def test_a_run_is_audited_start_each_check_and_finish(cluster: LocalCluster) -> None:
    from runbooks.audit import RecordFilter, get_store

    report = verify(cluster)
    store = get_store()
    [start] = store.records(
        RecordFilter(
            runbook="provision-verification", action="run.start", newest_first=True, limit=1
        )
    )
    records = store.records(RecordFilter(flow_run_id=start.flow_run_id))
    assert [r.action for r in records] == ["run.start"] + ["check.result"] * 15 + ["run.finish"]
    results = {r.details["check"]: r.outcome for r in records if r.action == "check.result"}
    assert results == {c.id: c.status for c in report.checks}
    assert records[-1].outcome == report.status == "pass"


@pytest.mark.slow
def test_under_prefect_each_read_and_check_is_a_task_run_and_a_failing_blocker_fails_the_run(
    cluster: LocalCluster, prefect_server: str
) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    from flows.provision_verification import provision_verification
    from runbooks.verify.baseline import VersionRange

    params = VerifyParams(
        target=KubeTarget(kubeconfig=cluster.kubeconfig),
        baseline=shipped(version=VersionRange(min="1.40")),  # the cluster runs 1.36
    )
    state = provision_verification(params, return_state=True)
    assert state.is_failed()
    report = state.result(raise_on_failure=False)
    assert isinstance(report, CheckReport)
    assert problems(report) == ["baseline.version"]
    expected = {f"check {c.id}" for c in report.checks}
    names: set[str] = set()

    def recorded() -> bool:  # task runs reach the server as events, a moment later
        nonlocal names
        with get_client(sync_client=True) as prefect:
            runs = prefect.read_task_runs(
                flow_run_filter=FlowRunFilter(
                    id=FlowRunFilterId(any_=[state.state_details.flow_run_id])
                )
            )
        names = {r.name for r in runs}
        return expected <= names

    eventually(recorded, "every check's task run on the server", timeout=30)
    assert {"read nodes", "read apiservices", "read certificates"} <= names
    assert not any(n.startswith("read pods") for n in names)


def _service_account_kubeconfig(cluster: LocalCluster, namespace: str, tmp: Path) -> Path:
    """A kubeconfig holding a token the API server issued to ``namespace``/verifier."""
    cluster.core.create_namespaced_service_account(
        namespace, client.V1ServiceAccount(metadata=client.V1ObjectMeta(name="verifier"))
    )
    token = cluster.core.create_namespaced_service_account_token(
        "verifier",
        namespace,
        client.AuthenticationV1TokenRequest(
            spec=client.V1TokenRequestSpec(audiences=[], expiration_seconds=3600)
        ),
    ).status.token
    import yaml

    config = yaml.safe_load(cluster.kubeconfig.read_text())
    config["users"] = [{"name": "verifier", "user": {"token": token}}]
    config["contexts"][0]["context"]["user"] = "verifier"
    path = tmp / "verifier.kubeconfig"
    path.write_text(yaml.safe_dump(config))
    return path


def _bind(cluster: LocalCluster, name: str, rules: list[dict[str, Any]], namespace: str) -> None:
    rbac = client.RbacAuthorizationV1Api(cluster.api)
    rbac.create_cluster_role({"metadata": {"name": name}, "rules": rules})
    rbac.create_cluster_role_binding(
        {
            "metadata": {"name": name},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": name,
            },
            "subjects": [{"kind": "ServiceAccount", "name": "verifier", "namespace": namespace}],
        }
    )


def test_the_read_only_cluster_role_is_enough_and_a_forbidden_read_errors_only_its_check(
    cluster: LocalCluster, namespace: str, tmp_path: Path
) -> None:
    import yaml

    manifest = (
        Path(__file__).resolve().parents[2] / "deployments/kubernetes/clusterrole-verify.yaml"
    )
    rules = next(d for d in yaml.safe_load_all(manifest.read_text()) if d["kind"] == "ClusterRole")[
        "rules"
    ]
    full, narrow = f"t-verify-{uuid.uuid4().hex[:6]}", f"t-narrow-{uuid.uuid4().hex[:6]}"
    kubeconfig = _service_account_kubeconfig(cluster, namespace, tmp_path)
    rbac = client.RbacAuthorizationV1Api(cluster.api)
    target = KubeTarget(kubeconfig=kubeconfig)
    try:
        _bind(cluster, full, rules, namespace)
        eventually(
            lambda: not problems(run_local(VerifyParams(target=target, baseline=shipped()))),
            "every check passing with the read-only ClusterRole",
            timeout=20,
        )
        rbac.delete_cluster_role_binding(full)
        without = [
            {**r, "resources": [x for x in r.get("resources", []) if x != "clusterrolebindings"]}
            for r in rules
        ]
        _bind(cluster, narrow, [r for r in without if r.get("resources") != []], namespace)

        def only_rbac_errors() -> bool:
            report = run_local(VerifyParams(target=target, baseline=shipped()))
            return problems(report) == ["rbac.cluster-admin"]

        eventually(only_rbac_errors, "only rbac.cluster-admin failing once its read is forbidden")
        report = run_local(VerifyParams(target=target, baseline=shipped()))
        [check] = [c for c in report.checks if c.id == "rbac.cluster-admin"]
        assert check.status == "error" and report.exit_code == 1
        assert "could not read clusterrolebindings: HTTP 403" in check.evidence[0]
    finally:
        for name in (full, narrow):
            ignore_missing(partial(rbac.delete_cluster_role_binding, name))
            ignore_missing(partial(rbac.delete_cluster_role, name))
