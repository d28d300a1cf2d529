"""APIs each Kubernetes release removes, and which of them this cluster still uses.

Source: kubernetes.io "Deprecated API Migration Guide"
(https://kubernetes.io/docs/reference/using-api/deprecation-guide/), its sections v1.22, v1.25,
v1.26, v1.27, v1.29 and v1.32 (group/version, kind, what to migrate to). For v1.33 to v1.36 the
guide, as far as this table knows, removes no served built-in group/version: an upgrade to 1.36
finds nothing here, which is why the table is a parameter (``removals=``) for the scan and tests
inject a CustomResourceDefinition version they declare removed. Extend the table when the guide
gains a section.

Two signals, as pluto and kubent use them:
- the scan: for each removed group/version the server still serves, one LIST of its resource;
  an object counts when a writer used the removed version (``metadata.managedFields[].apiVersion``
  or the ``kubectl.kubernetes.io/last-applied-configuration`` annotation). Reading it back through
  another version proves nothing (the API server converts), so listing alone is not use.
- the API server's ``apiserver_requested_deprecated_apis`` metric (GET /metrics): requests to a
  deprecated version, with the release that removes it. It counts only since that API server
  started: a quiet metric an hour after a restart says little about a monthly CronJob.
"""

from __future__ import annotations

import json
import re
from typing import Any

from pydantic import BaseModel, Field

GUIDE = "https://kubernetes.io/docs/reference/using-api/deprecation-guide/"
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
METRIC = "apiserver_requested_deprecated_apis"
EVIDENCE_LIMIT = 10


class Removal(BaseModel, frozen=True):
    """One group/version of one resource that a release stops serving."""

    group: str  # "" for the core group
    version: str
    kind: str
    resource: str  # plural, as in the URL
    removed_in: tuple[int, int]  # (1, 25)
    use_instead: str = ""

    @property
    def group_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def release(self) -> str:
        return f"v{self.removed_in[0]}.{self.removed_in[1]}"

    def describe(self) -> str:
        instead = f"; use {self.use_instead}" if self.use_instead else ""
        return f"{self.group_version} {self.kind} (removed in {self.release}{instead})"


def _r(gv: str, kind: str, resource: str, release: str, instead: str = "") -> Removal:
    group, _, version = gv.rpartition("/")
    major, minor = (int(p) for p in release.split("."))
    return Removal(
        group=group,
        version=version,
        kind=kind,
        resource=resource,
        removed_in=(major, minor),
        use_instead=instead,
    )


REMOVALS: tuple[Removal, ...] = (
    # v1.22
    _r("admissionregistration.k8s.io/v1beta1", "MutatingWebhookConfiguration",
       "mutatingwebhookconfigurations", "1.22", "admissionregistration.k8s.io/v1"),
    _r("admissionregistration.k8s.io/v1beta1", "ValidatingWebhookConfiguration",
       "validatingwebhookconfigurations", "1.22", "admissionregistration.k8s.io/v1"),
    _r("apiextensions.k8s.io/v1beta1", "CustomResourceDefinition", "customresourcedefinitions",
       "1.22", "apiextensions.k8s.io/v1"),
    _r("apiregistration.k8s.io/v1beta1", "APIService", "apiservices", "1.22",
       "apiregistration.k8s.io/v1"),
    _r("certificates.k8s.io/v1beta1", "CertificateSigningRequest", "certificatesigningrequests",
       "1.22", "certificates.k8s.io/v1"),
    _r("coordination.k8s.io/v1beta1", "Lease", "leases", "1.22", "coordination.k8s.io/v1"),
    _r("extensions/v1beta1", "Ingress", "ingresses", "1.22", "networking.k8s.io/v1"),
    _r("networking.k8s.io/v1beta1", "Ingress", "ingresses", "1.22", "networking.k8s.io/v1"),
    _r("networking.k8s.io/v1beta1", "IngressClass", "ingressclasses", "1.22",
       "networking.k8s.io/v1"),
    _r("rbac.authorization.k8s.io/v1beta1", "ClusterRole", "clusterroles", "1.22",
       "rbac.authorization.k8s.io/v1"),
    _r("rbac.authorization.k8s.io/v1beta1", "ClusterRoleBinding", "clusterrolebindings", "1.22",
       "rbac.authorization.k8s.io/v1"),
    _r("rbac.authorization.k8s.io/v1beta1", "Role", "roles", "1.22",
       "rbac.authorization.k8s.io/v1"),
    _r("rbac.authorization.k8s.io/v1beta1", "RoleBinding", "rolebindings", "1.22",
       "rbac.authorization.k8s.io/v1"),
    _r("scheduling.k8s.io/v1beta1", "PriorityClass", "priorityclasses", "1.22",
       "scheduling.k8s.io/v1"),
    _r("storage.k8s.io/v1beta1", "CSIDriver", "csidrivers", "1.22", "storage.k8s.io/v1"),
    _r("storage.k8s.io/v1beta1", "CSINode", "csinodes", "1.22", "storage.k8s.io/v1"),
    _r("storage.k8s.io/v1beta1", "StorageClass", "storageclasses", "1.22", "storage.k8s.io/v1"),
    _r("storage.k8s.io/v1beta1", "VolumeAttachment", "volumeattachments", "1.22",
       "storage.k8s.io/v1"),
    # v1.25
    _r("batch/v1beta1", "CronJob", "cronjobs", "1.25", "batch/v1"),
    _r("discovery.k8s.io/v1beta1", "EndpointSlice", "endpointslices", "1.25",
       "discovery.k8s.io/v1"),
    _r("events.k8s.io/v1beta1", "Event", "events", "1.25", "events.k8s.io/v1"),
    _r("autoscaling/v2beta1", "HorizontalPodAutoscaler", "horizontalpodautoscalers", "1.25",
       "autoscaling/v2"),
    _r("policy/v1beta1", "PodDisruptionBudget", "poddisruptionbudgets", "1.25", "policy/v1"),
    _r("policy/v1beta1", "PodSecurityPolicy", "podsecuritypolicies", "1.25",
       "Pod Security Admission (no replacement API)"),
    _r("node.k8s.io/v1beta1", "RuntimeClass", "runtimeclasses", "1.25", "node.k8s.io/v1"),
    # v1.26
    _r("flowcontrol.apiserver.k8s.io/v1beta1", "FlowSchema", "flowschemas", "1.26",
       "flowcontrol.apiserver.k8s.io/v1"),
    _r("flowcontrol.apiserver.k8s.io/v1beta1", "PriorityLevelConfiguration",
       "prioritylevelconfigurations", "1.26", "flowcontrol.apiserver.k8s.io/v1"),
    _r("autoscaling/v2beta2", "HorizontalPodAutoscaler", "horizontalpodautoscalers", "1.26",
       "autoscaling/v2"),
    # v1.27
    _r("storage.k8s.io/v1beta1", "CSIStorageCapacity", "csistoragecapacities", "1.27",
       "storage.k8s.io/v1"),
    # v1.29
    _r("flowcontrol.apiserver.k8s.io/v1beta2", "FlowSchema", "flowschemas", "1.29",
       "flowcontrol.apiserver.k8s.io/v1"),
    _r("flowcontrol.apiserver.k8s.io/v1beta2", "PriorityLevelConfiguration",
       "prioritylevelconfigurations", "1.29", "flowcontrol.apiserver.k8s.io/v1"),
    # v1.32
    _r("flowcontrol.apiserver.k8s.io/v1beta3", "FlowSchema", "flowschemas", "1.32",
       "flowcontrol.apiserver.k8s.io/v1"),
    _r("flowcontrol.apiserver.k8s.io/v1beta3", "PriorityLevelConfiguration",
       "prioritylevelconfigurations", "1.32", "flowcontrol.apiserver.k8s.io/v1"),
    # v1.33 .. v1.36: none known (see the module docstring).
)  # fmt: skip


def removed_between(
    current: tuple[int, int], target: tuple[int, int], table: tuple[Removal, ...] = REMOVALS
) -> list[Removal]:
    """What the upgrade from minor ``current`` to minor ``target`` stops serving: removed
    after ``current`` and no later than ``target``."""
    return [r for r in table if current < r.removed_in <= target]


def removed_by(target: tuple[int, int], table: tuple[Removal, ...] = REMOVALS) -> list[Removal]:
    """Everything ``target`` no longer serves (what a still-served old version would lose)."""
    return [r for r in table if r.removed_in <= target]


class ScanFinding(BaseModel):
    """One scanned removal: the objects a writer created or changed through it."""

    removal: Removal
    objects: list[str] = Field(default_factory=list)  # "namespace/name (by manager)"
    listed: int = 0
    error: str | None = None


def written_through(obj: dict[str, Any], group_version: str) -> list[str]:
    """Who wrote ``obj`` through ``group_version``: field managers whose entry names it, and
    ``kubectl apply`` when the last-applied annotation does."""
    meta = obj.get("metadata") or {}
    writers = sorted(
        {
            str(entry.get("manager") or "?")
            for entry in meta.get("managedFields") or []
            if entry.get("apiVersion") == group_version
        }
    )
    applied = (meta.get("annotations") or {}).get(LAST_APPLIED)
    if applied:
        try:
            if json.loads(applied).get("apiVersion") == group_version:
                writers.append("kubectl apply (last-applied-configuration)")
        except (ValueError, AttributeError):
            pass
    return writers


def scan(removal: Removal, items: list[dict[str, Any]]) -> ScanFinding:
    """The objects of one LIST through the removed version that were written through it."""
    objects = []
    for obj in items:
        writers = written_through(obj, removal.group_version)
        if writers:
            meta = obj.get("metadata") or {}
            name = "/".join(p for p in (meta.get("namespace"), meta.get("name")) if p)
            objects.append(f"{name} (by {', '.join(writers)})")
    return ScanFinding(removal=removal, objects=sorted(objects), listed=len(items))


class DeprecatedRequest(BaseModel):
    """One series of ``apiserver_requested_deprecated_apis``."""

    group: str
    version: str
    resource: str
    subresource: str = ""
    removed_release: str = ""  # "1.29"; empty when no removal is planned

    @property
    def removed_in(self) -> tuple[int, int] | None:
        parts = self.removed_release.split(".")
        if len(parts) >= 2 and all(p.isdigit() for p in parts[:2]):
            return (int(parts[0]), int(parts[1]))
        return None

    def describe(self) -> str:
        gv = f"{self.group}/{self.version}" if self.group else self.version
        sub = f"/{self.subresource}" if self.subresource else ""
        when = f"removed in v{self.removed_release}" if self.removed_release else "deprecated"
        return f"{gv} {self.resource}{sub} ({when})"


_SERIES = re.compile(r"^" + METRIC + r"\{(?P<labels>[^}]*)\}\s+(?P<value>\S+)")
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def parse_deprecated_requests(metrics_text: str) -> list[DeprecatedRequest]:
    """The series of the metric in a /metrics page (Prometheus text format) with a value
    above 0 (the gauge is 1 for each deprecated API requested since the server started)."""
    found = []
    for line in metrics_text.splitlines():
        match = _SERIES.match(line)
        if not match:
            continue
        try:
            if float(match["value"]) <= 0:
                continue
        except ValueError:
            continue
        labels = dict(_LABEL.findall(match["labels"]))
        found.append(
            DeprecatedRequest(
                group=labels.get("group", ""),
                version=labels.get("version", ""),
                resource=labels.get("resource", ""),
                subresource=labels.get("subresource", ""),
                removed_release=labels.get("removed_release", ""),
            )
        )
    return sorted(found, key=lambda d: (d.group, d.version, d.resource, d.subresource))
