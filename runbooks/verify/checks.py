"""The provision checks: each a pure function from the snapshot (and baseline) to a finding.

A check is declared with what it reads, so a run with ``--only api.livez`` reads nothing else,
and whether it needs a baseline (without one only the declaration-free checks run). Evidence
names each object that fails, capped so a 5,000-node cluster gives a readable report.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from runbooks.kit.checks import CheckResult, CheckSpec, CheckStatus, Severity
from runbooks.verify.baseline import Baseline, NamespaceRule, Subject
from runbooks.verify.selector import parse_selector, selects
from runbooks.verify.snapshot import CertSeen, ClusterSnapshot, Probe
from runbooks.verify.versions import in_range, parse_version, skew_problem

EVIDENCE_LIMIT = 10


@dataclass(frozen=True)
class Finding:
    status: CheckStatus
    evidence: list[str] = field(default_factory=list)
    remediation: str = ""


@dataclass(frozen=True)
class VerifyCheck:
    """A check, what it reads from the cluster, and whether it needs the baseline."""

    spec: CheckSpec
    reads: tuple[str, ...]
    needs_baseline: bool


CHECKS: list[VerifyCheck] = []

Evaluate = Callable[[ClusterSnapshot, Baseline | None], Finding]


def _check(
    check_id: str,
    title: str,
    severity: Severity,
    reads: Iterable[str],
    reference: str,
    needs_baseline: bool = False,
) -> Callable[[Evaluate], Evaluate]:
    def register(evaluate: Evaluate) -> Evaluate:
        def run(snapshot: ClusterSnapshot, baseline: Baseline | None = None) -> CheckResult:
            found = evaluate(snapshot, baseline)
            return CheckResult(
                id=check_id,
                title=title,
                severity=severity,
                status=found.status,
                evidence=found.evidence,
                remediation=found.remediation if found.status != "pass" else "",
                reference=reference,
            )

        spec = CheckSpec(id=check_id, title=title, severity=severity, run=run, reference=reference)
        CHECKS.append(VerifyCheck(spec, tuple(reads), needs_baseline))
        return evaluate

    return register


def capped(lines: list[str], limit: int = EVIDENCE_LIMIT) -> list[str]:
    if len(lines) <= limit:
        return lines
    return [*lines[:limit], f"... and {len(lines) - limit} more"]


def _name(obj: dict[str, Any]) -> str:
    meta = obj.get("metadata", {})
    return f"{meta['namespace']}/{meta['name']}" if meta.get("namespace") else meta.get("name", "?")


def _labels(obj: dict[str, Any]) -> dict[str, str]:
    return obj.get("metadata", {}).get("labels") or {}


def _conditions(obj: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["type"]: c for c in (obj.get("status", {}).get("conditions") or [])}


# --- API health ---------------------------------------------------------------------------


def _probe(probe: Probe, path: str) -> Finding:
    if probe.ok:
        return Finding("pass", [f"{path}: 200"])
    return Finding(
        "fail",
        [f"{path}: HTTP {probe.status}", *capped(probe.failed)],
        f"look at the failing checks above (kubectl get --raw '{path}?verbose') and the "
        "kube-apiserver log",
    )


@_check(
    "api.livez",
    "API server is live",
    "blocker",
    ["livez"],
    "https://kubernetes.io/docs/reference/using-api/health-checks/",
)
def api_livez(snapshot: ClusterSnapshot, baseline: Baseline | None) -> Finding:
    return _probe(snapshot.get("livez"), "/livez")


@_check(
    "api.readyz",
    "API server is ready",
    "blocker",
    ["readyz"],
    "https://kubernetes.io/docs/reference/using-api/health-checks/",
)
def api_readyz(snapshot: ClusterSnapshot, baseline: Baseline | None) -> Finding:
    return _probe(snapshot.get("readyz"), "/readyz")


# --- versions -----------------------------------------------------------------------------


@_check(
    "version.skew",
    "Kubelets within the version skew policy",
    "blocker",
    ["version", "nodes"],
    "https://kubernetes.io/releases/version-skew-policy/",
)
def version_skew(snapshot: ClusterSnapshot, baseline: Baseline | None) -> Finding:
    server = snapshot.get("version")["gitVersion"]
    nodes = snapshot.get("nodes")
    problems: list[str] = []
    versions: dict[str, int] = {}
    for node in nodes:
        # Only the kubelet: nodeInfo.kubeProxyVersion is deprecated (1.31) and not reliably set.
        version = node.get("status", {}).get("nodeInfo", {}).get("kubeletVersion") or "(none)"
        versions[version] = versions.get(version, 0) + 1
        why = skew_problem(version, server)
        if why:
            problems.append(f"node {_name(node)}: kubelet {version} {why}")
    seen = ", ".join(f"{v} x{n}" for v, n in sorted(versions.items()))
    summary = f"API server {server}; {len(nodes)} nodes ({seen or 'no versions reported'})"
    if problems:
        return Finding(
            "fail",
            [summary, *capped(problems)],
            "upgrade (or replace) these nodes' kubelets to within 3 minors of the API server, "
            "never newer; upgrade kubelets before the control plane moves further",
        )
    return Finding("pass", [summary])


@_check(
    "baseline.version",
    "API server version in the declared range",
    "blocker",
    ["version"],
    "baseline: version",
    needs_baseline=True,
)
def baseline_version(snapshot: ClusterSnapshot, baseline: Baseline | None) -> Finding:
    declared = baseline.version if baseline else None
    if declared is None:
        return Finding("skip", ["no version range declared"])
    server = snapshot.get("version")["gitVersion"]
    low = parse_version(declared.min) if declared.min else None
    high = parse_version(declared.max) if declared.max else None
    wanted = f"[{declared.min or 'any'}, {declared.max or 'any'}]"
    if in_range(parse_version(server), low, high):
        return Finding("pass", [f"API server {server} within {wanted}"])
    return Finding(
        "fail",
        [f"API server {server} outside the declared range {wanted}"],
        "upgrade the control plane (one minor at a time) or correct the baseline",
    )


# --- nodes --------------------------------------------------------------------------------

_PRESSURE = ("MemoryPressure", "DiskPressure", "PIDPressure", "NetworkUnavailable")


def _node_ready(node: dict[str, Any]) -> bool:
    return _conditions(node).get("Ready", {}).get("status") == "True"


@_check(
    "nodes.conditions",
    "Every node Ready, without pressure",
    "blocker",
    ["nodes"],
    "https://kubernetes.io/docs/reference/node/node-status/#condition",
)
def nodes_conditions(snapshot: ClusterSnapshot, baseline: Baseline | None) -> Finding:
    nodes = snapshot.get("nodes")
    problems = []
    for node in nodes:
        conditions = _conditions(node)
        ready = conditions.get("Ready")
        if ready is None or ready.get("status") != "True":
            status = ready.get("status", "missing") if ready else "missing"
            why = [str(ready[k]) for k in ("reason", "message") if ready and ready.get(k)]
            problems.append(
                f"node {_name(node)}: Ready={status}" + (f" ({': '.join(why)})" if why else "")
            )
        for kind in _PRESSURE:
            if conditions.get(kind, {}).get("status") == "True":
                problems.append(f"node {_name(node)}: {kind}=True")
    if not nodes:
        return Finding("fail", ["no nodes registered"], "join nodes to the cluster")
    if problems:
        return Finding(
            "fail",
            [f"{len(nodes)} nodes, {len(problems)} problems", *capped(problems)],
            "kubectl describe node <name>: look at the kubelet and the container runtime",
        )
    return Finding("pass", [f"{len(nodes)} nodes Ready, no pressure"])


# Taints the node lifecycle controller or cloud provider set while a node is not usable; on a
# Ready node they are leftovers. A NotReady node's taints are explained by nodes.conditions.
_LEFTOVER = (
    "node.kubernetes.io/not-ready",
    "node.kubernetes.io/unreachable",
    "node.kubernetes.io/network-unavailable",
    "node.kubernetes.io/unschedulable",
)
_UNINITIALIZED = "node.cloudprovider.kubernetes.io/uninitialized"


@_check(
    "nodes.taints",
    "No leftover taints or cordons",
    "warn",
    ["nodes"],
    "https://kubernetes.io/docs/reference/labels-annotations-taints/",
)
def nodes_taints(snapshot: ClusterSnapshot, baseline: Baseline | None) -> Finding:
    problems = []
    for node in snapshot.get("nodes"):
        spec = node.get("spec", {})
        keys = [t.get("key") for t in spec.get("taints") or []]
        if _UNINITIALIZED in keys:
            problems.append(
                f"node {_name(node)}: {_UNINITIALIZED} (cloud provider never initialised it)"
            )
        if not _node_ready(node):
            continue
        leftovers = [k for k in keys if k in _LEFTOVER]
        if spec.get("unschedulable"):
            problems.append(f"node {_name(node)}: cordoned (spec.unschedulable)")
        elif leftovers:
            problems.append(f"node {_name(node)}: Ready but tainted {', '.join(leftovers)}")
    if problems:
        return Finding(
            "fail",
            capped(problems),
            "uncordon nodes whose maintenance is over (`runbook release` for this engine's "
            "cordons); a taint that stays on a Ready node needs its controller looked at",
        )
    return Finding("pass", ["no leftover taints or cordons"])


@_check(
    "baseline.nodepools",
    "Node pools as declared",
    "blocker",
    ["nodes"],
    "baseline: nodepools",
    needs_baseline=True,
)
def baseline_nodepools(snapshot: ClusterSnapshot, baseline: Baseline | None) -> Finding:
    pools = baseline.nodepools if baseline else None
    if not pools:
        return Finding("skip", ["no node pools declared"])
    nodes = snapshot.get("nodes")
    evidence, problems = [], []
    for pool in pools:
        chosen = [n for n in nodes if selects(parse_selector(pool.selector), _labels(n))]
        count = len(chosen)
        wanted = (
            f"exactly {pool.count}"
            if pool.count is not None
            else f"min {pool.min or 0}, max {'any' if pool.max is None else pool.max}"
        )
        evidence.append(f"pool {pool.name} ({pool.selector}): {count} nodes ({wanted})")
        if (
            (pool.count is not None and count != pool.count)
            or (pool.min is not None and count < pool.min)
            or (pool.max is not None and count > pool.max)
        ):
            problems.append(f"pool {pool.name}: {count} nodes, expected {wanted}")
        for node in chosen:
            labels = _labels(node)
            for key, value in pool.labels.items():
                if labels.get(key) != value:
                    problems.append(
                        f"pool {pool.name}: node {_name(node)} has "
                        f"{key}={labels.get(key, '(none)')}, expected {value}"
                    )
            taints = node.get("spec", {}).get("taints") or []
            for taint in pool.taints:
                if not any(
                    t.get("key") == taint.key
                    and t.get("effect") == taint.effect
                    and (taint.value is None or t.get("value") == taint.value)
                    for t in taints
                ):
                    problems.append(
                        f"pool {pool.name}: node {_name(node)} lacks taint {taint.key}"
                        f"{'=' + taint.value if taint.value else ''}:{taint.effect}"
                    )
    if problems:
        return Finding(
            "fail",
            [*evidence, *capped(problems)],
            "scale the pool or fix its node template (labels, taints), or correct the baseline",
        )
    return Finding("pass", evidence)


# --- workloads ------------------------------------------------------------------------------

_KIND_READ = {"Deployment": "deployments", "DaemonSet": "daemonsets", "StatefulSet": "statefulsets"}


def workload_problem(kind: str, obj: dict[str, Any]) -> str | None:
    """Why a workload is not available, or None."""
    spec, status = obj.get("spec", {}), obj.get("status", {})
    if kind == "DaemonSet":
        desired = status.get("desiredNumberScheduled", 0)
        ready = status.get("numberReady", 0)
        available = status.get("numberAvailable", 0)
        if ready < desired or available < desired:
            return f"{ready}/{desired} pods ready, {available} available"
        return None
    wanted = spec.get("replicas", 1)
    field_name = "availableReplicas" if kind == "Deployment" else "readyReplicas"
    have = status.get(field_name, 0)
    if have < wanted:
        return f"{have}/{wanted} replicas {'available' if kind == 'Deployment' else 'ready'}"
    return None


@_check(
    "baseline.workloads",
    "System workloads available",
    "blocker",
    ["deployments", "daemonsets", "statefulsets"],
    "baseline: workloads",
    needs_baseline=True,
)
def baseline_workloads(snapshot: ClusterSnapshot, baseline: Baseline | None) -> Finding:
    declared = baseline.workloads if baseline else None
    if not declared:
        return Finding("skip", ["no system workloads declared"])
    evidence: list[str] = []
    problems: list[str] = []
    for workload in declared:
        found = next(
            (
                o
                for o in snapshot.get(_KIND_READ[workload.kind])
                if o["metadata"]["name"] == workload.name
                and o["metadata"].get("namespace") == workload.namespace
            ),
            None,
        )
        if found is None:
            problems.append(f"{workload.ref()}: not found")
            continue
        why = workload_problem(workload.kind, found)
        (problems if why else evidence).append(f"{workload.ref()}: {why or 'available'}")
    if problems:
        return Finding(
            "fail",
            capped(problems) + capped(evidence, 3),
            "install the missing workloads; for unavailable ones, kubectl -n <ns> describe "
            "<kind>/<name> and look at its pods' events",
        )
    return Finding("pass", capped(evidence))


# --- storage --------------------------------------------------------------------------------

DEFAULT_CLASS = (
    "storageclass.kubernetes.io/is-default-class",
    "storageclass.beta.kubernetes.io/is-default-class",
)


@_check(
    "storage.default-class",
    "Exactly one default StorageClass",
    "blocker",
    ["storageclasses"],
    "https://kubernetes.io/docs/concepts/storage/storage-classes/#default-storageclass",
    needs_baseline=True,
)
def storage_default_class(snapshot: ClusterSnapshot, baseline: Baseline | None) -> Finding:
    declared = baseline.storage if baseline else None
    if declared is None:
        return Finding("skip", ["no storage declared"])
    classes = snapshot.get("storageclasses")
    defaults = sorted(
        _name(c)
        for c in classes
        if any((c["metadata"].get("annotations") or {}).get(a) == "true" for a in DEFAULT_CLASS)
    )
    seen = f"{len(classes)} StorageClasses; default: {', '.join(defaults) or 'none'}"
    if len(defaults) > 1:
        return Finding(
            "fail",
            [seen],
            "several defaults: a PVC without a class gets the newest one; remove the "
            "is-default-class annotation from all but one",
        )
    if not defaults and declared.require_default_class:
        return Finding(
            "fail", [seen], "mark one StorageClass with storageclass.kubernetes.io/is-default-class"
        )
    if defaults and declared.default_class and defaults[0] != declared.default_class:
        return Finding(
            "fail",
            [seen, f"declared default: {declared.default_class}"],
            "move the is-default-class annotation to the declared class, or correct the baseline",
        )
    return Finding("pass", [seen])


# --- aggregated APIs and webhooks -----------------------------------------------------------


@_check(
    "apiservices.available",
    "Every APIService available",
    "blocker",
    ["apiservices"],
    "https://kubernetes.io/docs/tasks/extend-kubernetes/configure-aggregation-layer/",
)
def apiservices_available(snapshot: ClusterSnapshot, baseline: Baseline | None) -> Finding:
    services = snapshot.get("apiservices")
    names = {_name(s) for s in services}
    problems = []
    for service in services:
        available = _conditions(service).get("Available", {})
        if available.get("status") != "True":
            reason = available.get("reason", "no Available condition")
            message = available.get("message", "")
            problems.append(f"apiservice {_name(service)}: {reason} {message}".strip())
    required = baseline.apiservices.required if baseline and baseline.apiservices else []
    problems += [
        f"apiservice {r}: not registered (declared required)" for r in required if r not in names
    ]
    if problems:
        return Finding(
            "fail",
            capped(problems),
            "an unavailable APIService breaks discovery (kubectl, controllers, namespace "
            "deletion): fix its Service and pods, or delete the APIService",
        )
    return Finding("pass", [f"{len(services)} APIServices available"])


def webhook_services(snapshot: ClusterSnapshot) -> list[tuple[str, str, str, str]]:
    """(configuration, webhook, namespace/service, failurePolicy) of Service-backed webhooks."""
    found = []
    for read, kind in (("validatingwebhooks", "validating"), ("mutatingwebhooks", "mutating")):
        for config in snapshot.get(read):
            for hook in config.get("webhooks") or []:
                service = (hook.get("clientConfig") or {}).get("service")
                if service:
                    found.append(
                        (
                            f"{kind} {_name(config)}",
                            hook.get("name", "?"),
                            f"{service['namespace']}/{service['name']}",
                            hook.get("failurePolicy", "Fail"),
                        )
                    )
    return found


def ready_services(slices: list[dict[str, Any]]) -> set[str]:
    """namespace/service of every Service with at least one ready endpoint address."""
    ready = set()
    for piece in slices:
        service = _labels(piece).get("kubernetes.io/service-name")
        for endpoint in piece.get("endpoints") or []:
            if (
                service
                and endpoint.get("addresses")
                and (endpoint.get("conditions") or {}).get("ready", True)
            ):
                ready.add(f"{piece['metadata']['namespace']}/{service}")
    return ready


@_check(
    "webhooks.endpoints",
    "Every admission webhook has ready endpoints",
    "blocker",
    ["validatingwebhooks", "mutatingwebhooks", "endpointslices"],
    "https://kubernetes.io/docs/reference/access-authn-authz/extensible-admission-controllers/",
)
def webhooks_endpoints(snapshot: ClusterSnapshot, baseline: Baseline | None) -> Finding:
    hooks = webhook_services(snapshot)
    if not hooks:
        return Finding("pass", ["no Service-backed admission webhooks"])
    ready = ready_services(snapshot.get("endpointslices"))
    failing = [h for h in hooks if h[2] not in ready]
    if not failing:
        return Finding("pass", [f"{len(hooks)} webhooks, each with ready endpoints"])
    lines = [
        f"{config} webhook {name}: service {service} has no ready endpoints "
        f"(failurePolicy {policy})"
        for config, name, service, policy in failing
    ]
    blocking = any(policy == "Fail" for *_, policy in failing)
    return Finding(
        "fail" if blocking else "warn",
        capped(lines),
        "a failurePolicy Fail webhook without endpoints refuses every write it matches: bring "
        "its pods up, or delete the webhook configuration",
    )


# --- namespaces -----------------------------------------------------------------------------


def _rule_namespaces(
    rule: NamespaceRule, namespaces: list[dict[str, Any]]
) -> tuple[list[dict[str, Any]], str | None]:
    """The namespaces ``rule`` covers, and a problem when a named one does not exist."""
    if rule.name is not None:
        found = [n for n in namespaces if n["metadata"]["name"] == rule.name]
        return found, None if found else f"namespace {rule.name}: not found"
    requirements = parse_selector(rule.selector or "")
    return [
        n
        for n in namespaces
        if selects(requirements, _labels(n))
        and n.get("status", {}).get("phase") != "Terminating"  # on its way out: not a tenant
    ], None


def _label_ok(value: str | None, allowed: str | list[str]) -> bool:
    return value is not None and (
        value in allowed if isinstance(allowed, list) else value == allowed
    )


@_check(
    "namespaces.labels",
    "Namespaces carry their required labels (Pod Security)",
    "blocker",
    ["namespaces"],
    "https://kubernetes.io/docs/concepts/security/pod-security-admission/",
    needs_baseline=True,
)
def namespaces_labels(snapshot: ClusterSnapshot, baseline: Baseline | None) -> Finding:
    rules = [r for r in (baseline.namespaces or [])] if baseline else []
    if not rules:
        return Finding("skip", ["no namespace rules declared"])
    namespaces = snapshot.get("namespaces")
    evidence, problems = [], []
    for rule in rules:
        covered, missing = _rule_namespaces(rule, namespaces)
        if missing:
            problems.append(missing)
        evidence.append(f"{rule.describe()}: {len(covered)} namespaces")
        for ns in covered:
            labels = _labels(ns)
            for key, allowed in rule.labels.items():
                if not _label_ok(labels.get(key), allowed):
                    problems.append(
                        f"namespace {_name(ns)}: "
                        f"{key}={labels.get(key, '(none)')}, expected {allowed}"
                    )
    if problems:
        return Finding(
            "fail",
            capped(problems),
            "kubectl label namespace <ns> <key>=<value> (Pod Security labels decide which pods "
            "the namespace admits)",
        )
    return Finding("pass", evidence)


@_check(
    "namespaces.quotas",
    "Namespaces have their ResourceQuota and LimitRange",
    "blocker",
    ["namespaces", "resourcequotas", "limitranges"],
    "https://kubernetes.io/docs/concepts/policy/resource-quotas/",
    needs_baseline=True,
)
def namespaces_quotas(snapshot: ClusterSnapshot, baseline: Baseline | None) -> Finding:
    rules = (
        [r for r in (baseline.namespaces or []) if r.resource_quota or r.limit_range]
        if baseline
        else []
    )
    if not rules:
        return Finding("skip", ["no namespace declares a quota or limit range"])
    namespaces = snapshot.get("namespaces")
    with_quota = {o["metadata"]["namespace"] for o in snapshot.get("resourcequotas")}
    with_limits = {o["metadata"]["namespace"] for o in snapshot.get("limitranges")}
    evidence, problems = [], []
    for rule in rules:
        covered, missing = _rule_namespaces(rule, namespaces)
        if missing:
            problems.append(missing)
        evidence.append(f"{rule.describe()}: {len(covered)} namespaces")
        for ns in covered:
            name = ns["metadata"]["name"]
            if rule.resource_quota and name not in with_quota:
                problems.append(f"namespace {name}: no ResourceQuota")
            if rule.limit_range and name not in with_limits:
                problems.append(f"namespace {name}: no LimitRange")
    if problems:
        return Finding(
            "fail", capped(problems), "create the namespace's ResourceQuota / LimitRange"
        )
    return Finding("pass", evidence)


# --- RBAC -----------------------------------------------------------------------------------


def _subject_allowed(subject: dict[str, Any], allowed: list[Subject]) -> bool:
    return any(
        subject.get("kind") == a.kind
        and subject.get("name") == a.name
        and (a.kind != "ServiceAccount" or subject.get("namespace") == a.namespace)
        for a in allowed
    )


@_check(
    "rbac.cluster-admin",
    "cluster-admin bound only to declared subjects",
    "blocker",
    ["clusterrolebindings"],
    "https://kubernetes.io/docs/reference/access-authn-authz/rbac/#user-facing-roles",
    needs_baseline=True,
)
def rbac_cluster_admin(snapshot: ClusterSnapshot, baseline: Baseline | None) -> Finding:
    if baseline is None or baseline.rbac is None:
        return Finding("skip", ["no cluster-admin subjects declared"])
    allowed = baseline.rbac.cluster_admin_subjects
    bound, problems = 0, []
    for binding in snapshot.get("clusterrolebindings"):
        ref = binding.get("roleRef") or {}
        if ref.get("kind") != "ClusterRole" or ref.get("name") != "cluster-admin":
            continue
        for subject in binding.get("subjects") or []:
            bound += 1
            if not _subject_allowed(subject, allowed):
                where = f"{subject['namespace']}/" if subject.get("namespace") else ""
                problems.append(
                    f"clusterrolebinding {_name(binding)} grants cluster-admin to "
                    f"{subject.get('kind')} {where}{subject.get('name')}"
                )
    if problems:
        return Finding(
            "fail",
            capped(problems),
            "delete the binding (or bind a narrower role), or declare the subject in "
            "rbac.cluster_admin_subjects if it is intended",
        )
    return Finding("pass", [f"{bound} cluster-admin subjects, all declared"])


# --- certificates ---------------------------------------------------------------------------


def cert_problem(cert: CertSeen, now: dt.datetime, window_days: int) -> str | None:
    if cert.problem:
        return f"{cert.source}: {cert.problem}"
    if cert.not_after is None:
        return f"{cert.source}: no expiry date read"
    left = cert.not_after - now
    if left <= dt.timedelta(0):
        return f"{cert.source}: expired {cert.not_after:%Y-%m-%d %H:%M} UTC"
    if left < dt.timedelta(days=window_days):
        return (
            f"{cert.source}: expires {cert.not_after:%Y-%m-%d %H:%M} UTC, in "
            f"{left.days} days (window {window_days} days)"
        )
    return None


@_check(
    "certs.expiry",
    "Certificates valid beyond the expiry window",
    "blocker",
    ["certificates"],
    "https://kubernetes.io/docs/tasks/administer-cluster/kubeadm/kubeadm-certs/",
    needs_baseline=True,
)
def certs_expiry(snapshot: ClusterSnapshot, baseline: Baseline | None) -> Finding:
    declared = baseline.certificates if baseline else None
    if declared is None:
        return Finding("skip", ["no certificates declared"])
    certs: list[CertSeen] = snapshot.get("certificates")
    if not certs:
        return Finding("skip", ["no certificates named"])
    problems = [
        p for c in certs if (p := cert_problem(c, snapshot.now, declared.expiry_window_days))
    ]
    if problems:
        return Finding(
            "fail",
            capped(problems),
            "renew these certificates (kubeadm certs renew, cert-manager, or your CA) before "
            "they expire",
        )
    first = min(certs, key=lambda c: c.not_after or snapshot.now)
    return Finding(
        "pass",
        [
            f"{len(certs)} certificates; the first to expire: {first.source} "
            f"on {first.not_after:%Y-%m-%d}"
        ],
    )


# --- the list -------------------------------------------------------------------------------


def applicable(with_baseline: bool) -> list[VerifyCheck]:
    """The checks a run can do: all of them with a baseline, else the declaration-free ones."""
    return [c for c in CHECKS if with_baseline or not c.needs_baseline]


def reads_for(checks: Iterable[VerifyCheck]) -> set[str]:
    return {r for c in checks for r in c.reads}
