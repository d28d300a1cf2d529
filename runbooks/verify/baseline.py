"""The baseline: what the team declared a cluster must look like, as a pydantic model.

Every section is optional; a check whose section is absent reports ``skip``. Unknown keys are
refused (``extra="forbid"``), so a misspelt section is an error, never a silently skipped check.
The JSON Schema in docs/baseline.schema.json is generated from this model.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from runbooks.verify.selector import parse_selector
from runbooks.verify.versions import parse_version


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class VersionRange(Strict):
    """The API server's version must lie in [min, max]; ``1.36`` covers every 1.36 patch."""

    min: str | None = Field(None, description="Lowest allowed version, e.g. 1.35 or 1.35.2")
    max: str | None = Field(None, description="Highest allowed version, e.g. 1.36")

    @field_validator("min", "max")
    @classmethod
    def _version(cls, value: str | None) -> str | None:
        if value is not None:
            parse_version(value)
        return value

    @model_validator(mode="after")
    def _ordered(self) -> VersionRange:
        if self.min and self.max:
            low, high = parse_version(self.min), parse_version(self.max)
            if low[: len(high)] > high:
                raise ValueError(f"min {self.min} is above max {self.max}")
        return self


class Taint(Strict):
    key: str = Field(min_length=1, description="Taint key, e.g. dedicated")
    value: str | None = Field(None, description="Any value when omitted")
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] = Field(
        description="Taint effect"
    )


class NodePool(Strict):
    """Nodes selected by ``selector``: how many, and the labels and taints each must carry."""

    name: str = Field(min_length=1, description="The pool's name, for the report")
    selector: str = Field(min_length=1, description="Label selector, as kubectl -l")
    count: int | None = Field(None, ge=0, description="Exactly this many nodes")
    min: int | None = Field(None, ge=0, description="At least this many nodes")
    max: int | None = Field(None, ge=0, description="At most this many nodes")
    labels: dict[str, str] = Field(default_factory=dict, description="Each node carries these")
    taints: list[Taint] = Field(default_factory=list, description="Each node carries these")

    @field_validator("selector")
    @classmethod
    def _selector(cls, value: str) -> str:
        parse_selector(value)
        return value

    @model_validator(mode="after")
    def _counts(self) -> NodePool:
        if self.count is not None and (self.min is not None or self.max is not None):
            raise ValueError("give count, or min/max, not both")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min {self.min} is above max {self.max}")
        return self


class Workload(Strict):
    """A system workload that must be available (all its replicas or scheduled pods ready)."""

    namespace: str = Field(min_length=1, description="Its namespace, e.g. kube-system")
    kind: Literal["Deployment", "DaemonSet", "StatefulSet"] = Field(description="Its kind")
    name: str = Field(min_length=1, description="Its name, e.g. coredns")

    def ref(self) -> str:
        return f"{self.namespace}/{self.kind.lower()}/{self.name}"


class Storage(Strict):
    """Kubernetes picks among several default StorageClasses by age: more than one always fails."""

    require_default_class: bool = Field(True, description="Exactly one default StorageClass")
    default_class: str | None = Field(None, description="And it is this one")


class NamespaceRule(Strict):
    """Namespaces by ``name`` (must exist) or by ``selector`` (those present), and what each
    must have: labels (a value, or a list of allowed values), a ResourceQuota, a LimitRange."""

    name: str | None = Field(None, description="One namespace, which must exist")
    selector: str | None = Field(None, description="The namespaces with these labels")
    labels: dict[str, str | list[str]] = Field(
        default_factory=dict, description="Required labels: a value, or a list of allowed ones"
    )
    resource_quota: bool = Field(False, description="Each needs a ResourceQuota")
    limit_range: bool = Field(False, description="Each needs a LimitRange")

    @field_validator("selector")
    @classmethod
    def _selector(cls, value: str | None) -> str | None:
        if value is not None:
            parse_selector(value)
        return value

    @model_validator(mode="after")
    def _one_way(self) -> NamespaceRule:
        if (self.name is None) == (self.selector is None):
            raise ValueError("give a namespace name or a selector (exactly one)")
        return self

    def describe(self) -> str:
        return f"namespace {self.name}" if self.name else f"namespaces matching {self.selector}"


class Subject(Strict):
    kind: Literal["User", "Group", "ServiceAccount"] = Field(description="Subject kind")
    name: str = Field(min_length=1, description="Subject name, e.g. system:masters")
    namespace: str | None = Field(None, description="For a ServiceAccount")

    @model_validator(mode="after")
    def _namespace(self) -> Subject:
        if (self.kind == "ServiceAccount") != (self.namespace is not None):
            raise ValueError("a ServiceAccount subject needs a namespace; others take none")
        return self

    def describe(self) -> str:
        where = f"{self.namespace}/" if self.namespace else ""
        return f"{self.kind} {where}{self.name}"


class Rbac(Strict):
    cluster_admin_subjects: list[Subject] = Field(
        default_factory=list, description="The only subjects bound to cluster-admin"
    )


class SecretRef(Strict):
    namespace: str = Field(min_length=1, description="The Secret's namespace")
    name: str = Field(min_length=1, description="The Secret's name")


class Certificates(Strict):
    """Certificates that must stay valid for ``expiry_window_days`` more days."""

    expiry_window_days: int = Field(30, ge=1, description="Fail when a cert expires sooner")
    apiserver: bool = Field(True, description="The API server's serving certificate")
    files: list[str] = Field(default_factory=list, description="PEM files on this machine")
    secrets: list[SecretRef] = Field(default_factory=list, description="kubernetes.io/tls Secrets")


class ApiServices(Strict):
    required: list[str] = Field(
        default_factory=list, description="APIServices that must exist, e.g. v1beta1.metrics.k8s.io"
    )


class Baseline(Strict):
    """What a cluster must look like; see docs/runbooks/provision-verification.md."""

    version: VersionRange | None = Field(None, description="API server version range")
    nodepools: list[NodePool] | None = Field(None, description="Node pools")
    workloads: list[Workload] | None = Field(None, description="System workloads")
    storage: Storage | None = Field(None, description="Default StorageClass")
    namespaces: list[NamespaceRule] | None = Field(None, description="Namespace rules")
    rbac: Rbac | None = Field(None, description="Who may be cluster-admin")
    certificates: Certificates | None = Field(None, description="Certificate expiry")
    apiservices: ApiServices | None = Field(None, description="Required APIServices")
