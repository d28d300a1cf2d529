"""The provision checks as tables: what was read (the API's JSON), the baseline, the verdict."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from runbooks.kit.checks import select_checks
from runbooks.verify.baseline import Baseline
from runbooks.verify.checks import CHECKS, applicable, reads_for
from runbooks.verify.snapshot import CertSeen, ClusterSnapshot, Probe
from runbooks.verify.versions import skew_problem

NOW = dt.datetime(2026, 12, 2, 12, 0, tzinfo=dt.UTC)


def node(
    name: str,
    ready: str = "True",
    kubelet: str = "v1.36.3",
    labels: dict[str, str] | None = None,
    taints: list[dict[str, str]] | None = None,
    unschedulable: bool = False,
    pressure: str | None = None,
) -> dict[str, Any]:
    conditions = [{"type": "Ready", "status": ready, "reason": "KubeletReady"}]
    if pressure:
        conditions.append({"type": pressure, "status": "True"})
    return {
        "metadata": {"name": name, "labels": {"type": "kwok", **(labels or {})}},
        "spec": {"taints": taints or [], "unschedulable": unschedulable},
        "status": {"conditions": conditions, "nodeInfo": {"kubeletVersion": kubelet}},
    }


def meta(name: str, namespace: str | None = None, **extra: Any) -> dict[str, Any]:
    m: dict[str, Any] = {"name": name, **extra}
    if namespace:
        m["namespace"] = namespace
    return {"metadata": m}


def snapshot(**reads: Any) -> ClusterSnapshot:
    base: dict[str, Any] = {
        "livez": Probe(status=200),
        "readyz": Probe(status=200),
        "version": {"gitVersion": "v1.36.3"},
        "nodes": [node("worker-1"), node("worker-2")],
        "apiservices": [
            {**meta("v1.apps"), "status": {"conditions": [{"type": "Available", "status": "True"}]}}
        ],
        "validatingwebhooks": [],
        "mutatingwebhooks": [],
        "endpointslices": [],
        "storageclasses": [],
        "deployments": [],
        "daemonsets": [],
        "statefulsets": [],
        "namespaces": [meta("default"), meta("kube-system")],
        "resourcequotas": [],
        "limitranges": [],
        "clusterrolebindings": [
            {
                **meta("cluster-admin"),
                "roleRef": {"kind": "ClusterRole", "name": "cluster-admin"},
                "subjects": [{"kind": "Group", "name": "system:masters"}],
            }
        ],
        "certificates": [],
    }
    base.update(reads)
    return ClusterSnapshot(reads=base, now=NOW)


def run(check_id: str, snap: ClusterSnapshot, baseline: dict[str, Any] | None = None) -> Any:
    spec = next(c.spec for c in CHECKS if c.spec.id == check_id)
    return spec.run(snapshot=snap, baseline=Baseline.model_validate(baseline) if baseline else None)


def hook(service: str, policy: str = "Fail") -> dict[str, Any]:
    ns, name = service.split("/")
    return {
        **meta("policy"),
        "webhooks": [
            {
                "name": "check.example.com",
                "failurePolicy": policy,
                "clientConfig": {"service": {"namespace": ns, "name": name}},
            }
        ],
    }


def endpoint_slice(service: str, ready: bool = True) -> dict[str, Any]:
    ns, name = service.split("/")
    return {
        "metadata": {
            "name": f"{name}-abc",
            "namespace": ns,
            "labels": {"kubernetes.io/service-name": name},
        },
        "endpoints": [{"addresses": ["10.0.0.1"], "conditions": {"ready": ready}}],
    }


def tls(name: str, days: float) -> CertSeen:
    return CertSeen(source=name, not_after=NOW + dt.timedelta(days=days))


def crb(name: str, kind: str, subject: str, role: str = "cluster-admin") -> dict[str, Any]:
    return {
        **meta(name),
        "roleRef": {"kind": "ClusterRole", "name": role},
        "subjects": [{"kind": kind, "name": subject}],
    }


def default_sc(name: str) -> dict[str, Any]:
    return meta(name, annotations={"storageclass.kubernetes.io/is-default-class": "true"})


ADMINS = {"rbac": {"cluster_admin_subjects": [{"kind": "Group", "name": "system:masters"}]}}
TENANTS = {
    "namespaces": [
        {
            "selector": "tenant=true",
            "labels": {"pod-security.kubernetes.io/enforce": ["baseline", "restricted"]},
            "resource_quota": True,
            "limit_range": True,
        }
    ]
}
POOL = {"nodepools": [{"name": "w", "selector": "type=kwok", "min": 2, "labels": {"a": "b"}}]}

# (case, check, reads, baseline, expected status, a phrase the evidence must contain)
CASES: list[tuple[str, str, dict[str, Any], dict[str, Any] | None, str, str]] = [
    ("live", "api.livez", {}, None, "pass", "/livez: 200"),
    (
        "not live names the failing check",
        "api.livez",
        {"livez": Probe(status=500, failed=["[-]etcd failed: reason withheld"])},
        None,
        "fail",
        "[-]etcd failed",
    ),
    ("ready", "api.readyz", {}, None, "pass", "200"),
    ("not ready", "api.readyz", {"readyz": Probe(status=503)}, None, "fail", "HTTP 503"),
    ("kubelets at the server version", "version.skew", {}, None, "pass", "v1.36.3 x2"),
    (
        "kubelet 3 minors older is allowed",
        "version.skew",
        {"nodes": [node("a", kubelet="v1.33.9")]},
        None,
        "pass",
        "v1.33.9",
    ),
    (
        "kubelet 4 minors older",
        "version.skew",
        {"nodes": [node("old", kubelet="v1.32.0")]},
        None,
        "fail",
        "node old: kubelet v1.32.0 4 minors older",
    ),
    (
        "kubelet newer than the server",
        "version.skew",
        {"nodes": [node("new", kubelet="v1.37.0")]},
        None,
        "fail",
        "newer than the API server",
    ),
    (
        "unparseable kubelet version",
        "version.skew",
        {"nodes": [node("odd", kubelet="banana")]},
        None,
        "fail",
        "not a Kubernetes version",
    ),
    ("all nodes ready", "nodes.conditions", {}, None, "pass", "2 nodes Ready"),
    (
        "a NotReady node",
        "nodes.conditions",
        {"nodes": [node("a"), node("b", ready="False")]},
        None,
        "fail",
        "node b: Ready=False",
    ),
    (
        "disk pressure",
        "nodes.conditions",
        {"nodes": [node("a", pressure="DiskPressure")]},
        None,
        "fail",
        "node a: DiskPressure=True",
    ),
    ("no nodes", "nodes.conditions", {"nodes": []}, None, "fail", "no nodes"),
    (
        "NotReady node's not-ready taint is not a leftover",
        "nodes.taints",
        {"nodes": [node("b", ready="False", taints=[{"key": "node.kubernetes.io/not-ready"}])]},
        None,
        "pass",
        "no leftover",
    ),
    (
        "Ready node still tainted unreachable",
        "nodes.taints",
        {"nodes": [node("a", taints=[{"key": "node.kubernetes.io/unreachable"}])]},
        None,
        "fail",
        "Ready but tainted node.kubernetes.io/unreachable",
    ),
    (
        "a cordoned node",
        "nodes.taints",
        {"nodes": [node("a", unschedulable=True)]},
        None,
        "fail",
        "node a: cordoned",
    ),
    ("apiservices available", "apiservices.available", {}, None, "pass", "1 APIServices"),
    (
        "an unavailable APIService names its reason",
        "apiservices.available",
        {
            "apiservices": [
                {
                    **meta("v1beta1.metrics.k8s.io"),
                    "status": {
                        "conditions": [
                            {"type": "Available", "status": "False", "reason": "MissingEndpoints"}
                        ]
                    },
                }
            ]
        },
        None,
        "fail",
        "v1beta1.metrics.k8s.io: MissingEndpoints",
    ),
    (
        "a required APIService is missing",
        "apiservices.available",
        {},
        {"apiservices": {"required": ["v1beta1.metrics.k8s.io"]}},
        "fail",
        "not registered",
    ),
    ("no webhooks", "webhooks.endpoints", {}, None, "pass", "no Service-backed"),
    (
        "webhook with endpoints",
        "webhooks.endpoints",
        {"validatingwebhooks": [hook("s/w")], "endpointslices": [endpoint_slice("s/w")]},
        None,
        "pass",
        "1 webhooks",
    ),
    (
        "Fail webhook whose only endpoint is not ready",
        "webhooks.endpoints",
        {
            "validatingwebhooks": [hook("s/w")],
            "endpointslices": [endpoint_slice("s/w", ready=False)],
        },
        None,
        "fail",
        "service s/w has no ready endpoints",
    ),
    (
        "Ignore webhook without endpoints warns",
        "webhooks.endpoints",
        {"mutatingwebhooks": [hook("s/w", policy="Ignore")]},
        None,
        "warn",
        "failurePolicy Ignore",
    ),
    (
        "version in range",
        "baseline.version",
        {},
        {"version": {"min": "1.36", "max": "1.36"}},
        "pass",
        "within",
    ),
    (
        "version below the range",
        "baseline.version",
        {},
        {"version": {"min": "1.37"}},
        "fail",
        "outside the declared range",
    ),
    ("no version declared", "baseline.version", {}, {"rbac": {}}, "skip", "no version"),
    (
        "pool as declared",
        "baseline.nodepools",
        {"nodes": [node("a", labels={"a": "b"}), node("b", labels={"a": "b"})]},
        POOL,
        "pass",
        "pool w (type=kwok): 2 nodes",
    ),
    (
        "pool too small",
        "baseline.nodepools",
        {"nodes": [node("a", labels={"a": "b"})]},
        POOL,
        "fail",
        "pool w: 1 nodes, expected min 2",
    ),
    (
        "pool node without its label",
        "baseline.nodepools",
        {"nodes": [node("a", labels={"a": "b"}), node("b")]},
        POOL,
        "fail",
        "node b has a=(none)",
    ),
    (
        "pool node without its taint",
        "baseline.nodepools",
        {"nodes": [node("a")]},
        {
            "nodepools": [
                {
                    "name": "gpu",
                    "selector": "type",
                    "taints": [{"key": "gpu", "effect": "NoSchedule"}],
                }
            ]
        },
        "fail",
        "lacks taint gpu:NoSchedule",
    ),
    (
        "workload available",
        "baseline.workloads",
        {
            "deployments": [
                {
                    **meta("coredns", "kube-system"),
                    "spec": {"replicas": 2},
                    "status": {"availableReplicas": 2},
                }
            ]
        },
        {"workloads": [{"namespace": "kube-system", "kind": "Deployment", "name": "coredns"}]},
        "pass",
        "kube-system/deployment/coredns: available",
    ),
    (
        "workload missing",
        "baseline.workloads",
        {},
        {"workloads": [{"namespace": "kube-system", "kind": "Deployment", "name": "coredns"}]},
        "fail",
        "kube-system/deployment/coredns: not found",
    ),
    (
        "daemonset partly ready",
        "baseline.workloads",
        {
            "daemonsets": [
                {
                    **meta("kube-proxy", "kube-system"),
                    "status": {"desiredNumberScheduled": 3, "numberReady": 2, "numberAvailable": 2},
                }
            ]
        },
        {"workloads": [{"namespace": "kube-system", "kind": "DaemonSet", "name": "kube-proxy"}]},
        "fail",
        "2/3 pods ready",
    ),
    ("no workloads declared", "baseline.workloads", {}, {"workloads": []}, "skip", "no system"),
    (
        "one default class",
        "storage.default-class",
        {"storageclasses": [default_sc("standard"), meta("slow")]},
        {"storage": {}},
        "pass",
        "default: standard",
    ),
    (
        "two default classes",
        "storage.default-class",
        {"storageclasses": [default_sc("standard"), default_sc("fast")]},
        {"storage": {"require_default_class": False}},
        "fail",
        "default: fast, standard",
    ),
    (
        "no default class when one is required",
        "storage.default-class",
        {"storageclasses": [meta("slow")]},
        {"storage": {}},
        "fail",
        "default: none",
    ),
    (
        "the wrong default class",
        "storage.default-class",
        {"storageclasses": [default_sc("fast")]},
        {"storage": {"default_class": "standard"}},
        "fail",
        "declared default: standard",
    ),
    (
        "tenant with its Pod Security label",
        "namespaces.labels",
        {
            "namespaces": [
                meta(
                    "t1",
                    labels={"tenant": "true", "pod-security.kubernetes.io/enforce": "restricted"},
                )
            ]
        },
        TENANTS,
        "pass",
        "1 namespaces",
    ),
    (
        "tenant without its Pod Security label",
        "namespaces.labels",
        {"namespaces": [meta("t1", labels={"tenant": "true"})]},
        TENANTS,
        "fail",
        "namespace t1: pod-security.kubernetes.io/enforce=(none)",
    ),
    (
        "tenant with a privileged level",
        "namespaces.labels",
        {
            "namespaces": [
                meta(
                    "t1",
                    labels={"tenant": "true", "pod-security.kubernetes.io/enforce": "privileged"},
                )
            ]
        },
        TENANTS,
        "fail",
        "=privileged",
    ),
    (
        "a terminating tenant is no longer checked",
        "namespaces.labels",
        {
            "namespaces": [
                {**meta("t1", labels={"tenant": "true"}), "status": {"phase": "Terminating"}}
            ]
        },
        TENANTS,
        "pass",
        "0 namespaces",
    ),
    (
        "a named namespace is missing",
        "namespaces.labels",
        {},
        {"namespaces": [{"name": "monitoring"}]},
        "fail",
        "namespace monitoring: not found",
    ),
    (
        "tenant without a LimitRange",
        "namespaces.quotas",
        {
            "namespaces": [meta("t1", labels={"tenant": "true"})],
            "resourcequotas": [meta("q", "t1")],
        },
        TENANTS,
        "fail",
        "namespace t1: no LimitRange",
    ),
    (
        "tenant with quota and limits",
        "namespaces.quotas",
        {
            "namespaces": [meta("t1", labels={"tenant": "true"})],
            "resourcequotas": [meta("q", "t1")],
            "limitranges": [meta("l", "t1")],
        },
        TENANTS,
        "pass",
        "1 namespaces",
    ),
    (
        "only the declared admins",
        "rbac.cluster-admin",
        {},
        ADMINS,
        "pass",
        "1 cluster-admin subjects",
    ),
    (
        "an undeclared cluster-admin user",
        "rbac.cluster-admin",
        {
            "clusterrolebindings": [
                crb("cluster-admin", "Group", "system:masters"),
                crb("oops", "User", "mallory"),
            ]
        },
        ADMINS,
        "fail",
        "clusterrolebinding oops grants cluster-admin to User mallory",
    ),
    (
        "a binding of another role is not counted",
        "rbac.cluster-admin",
        {"clusterrolebindings": [crb("view", "User", "mallory", role="view")]},
        ADMINS,
        "pass",
        "0 cluster-admin",
    ),
    (
        "certificates far from expiry",
        "certs.expiry",
        {"certificates": [tls("API server", 300)]},
        {"certificates": {}},
        "pass",
        "API server on",
    ),
    (
        "a certificate inside the window",
        "certs.expiry",
        {"certificates": [tls("API server", 300), tls("secret ns/web", 5)]},
        {"certificates": {"expiry_window_days": 30}},
        "fail",
        "secret ns/web: expires",
    ),
    (
        "an expired certificate",
        "certs.expiry",
        {"certificates": [tls("file /x.crt", -1)]},
        {"certificates": {}},
        "fail",
        "expired",
    ),
    (
        "a named secret that is not there",
        "certs.expiry",
        {"certificates": [CertSeen(source="secret ns/web", problem="not found")]},
        {"certificates": {}},
        "fail",
        "secret ns/web: not found",
    ),
]


@pytest.mark.parametrize(
    ("check", "reads", "baseline", "status", "phrase"),
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
def test_check_verdict_and_evidence(
    check: str, reads: dict[str, Any], baseline: dict[str, Any] | None, status: str, phrase: str
) -> None:
    result = run(check, snapshot(**reads), baseline)
    assert result.status == status, result.evidence
    assert any(phrase in line for line in result.evidence), result.evidence
    assert bool(result.remediation) == (status != "pass" and status != "skip")


def test_a_check_whose_read_failed_says_which_read() -> None:
    snap = snapshot()
    snap.failures["storageclasses"] = "HTTP 403 Forbidden"
    with pytest.raises(RuntimeError, match="could not read storageclasses: HTTP 403"):
        run("storage.default-class", snap, {"storage": {}})


def test_without_a_baseline_only_declaration_free_checks_run() -> None:
    ids = [c.spec.id for c in applicable(with_baseline=False)]
    assert ids == [
        "api.livez",
        "api.readyz",
        "version.skew",
        "nodes.conditions",
        "nodes.taints",
        "apiservices.available",
        "webhooks.endpoints",
    ]


def test_only_one_check_reads_only_what_it_needs() -> None:
    chosen = [c for c in CHECKS if c.spec.id == "api.livez"]
    assert reads_for(chosen) == {"livez"}
    every = reads_for(CHECKS)
    assert "pods" not in every  # no check lists pods: 5,000 pods cost nothing


def test_every_check_id_is_selectable() -> None:
    specs = [c.spec for c in CHECKS]
    assert [s.id for s in select_checks(specs, only=["certs.expiry"])] == ["certs.expiry"]
    assert len({s.id for s in specs}) == len(specs) == 15


@pytest.mark.parametrize(
    ("kubelet", "server", "problem"),
    [
        ("v1.36.3", "v1.36.3", None),
        ("v1.33.0", "v1.36.3", None),
        ("v1.32.9", "v1.36.3", "4 minors older"),
        ("v1.37.0", "v1.36.3", "newer"),
        ("v1.36.9", "v1.36.3", None),  # a newer patch of the same minor is allowed
        ("v1.22.0", "v1.25.0", "at most 2"),  # kubelets before 1.25: two minors
        ("v2.0.0", "v1.36.0", "major"),
    ],
)
def test_skew_policy(kubelet: str, server: str, problem: str | None) -> None:
    found = skew_problem(kubelet, server)
    assert (found is None) if problem is None else (found is not None and problem in found)
