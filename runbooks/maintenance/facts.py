"""Plain records of what the cluster holds, as the planning code needs them.

tasks/ builds these from API objects; the pure planners never see a kubernetes client type.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

COMPLETED_PHASES = frozenset({"Succeeded", "Failed"})


class PodRef(BaseModel, frozen=True):
    """A pod by name *and* UID: a StatefulSet pod recreated under the same name is another pod."""

    namespace: str
    name: str
    uid: str = ""

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}"


class PodInfo(BaseModel):
    namespace: str
    name: str
    uid: str
    node: str = ""
    phase: str = "Running"
    labels: dict[str, str] = Field(default_factory=dict)
    controller_kind: str | None = None
    controller_name: str | None = None
    mirror: bool = False
    terminating: bool = False
    deletion_due: datetime | None = None  # deletionTimestamp: when the grace period ends
    empty_dir_volumes: list[str] = Field(default_factory=list)
    node_selector: dict[str, str] = Field(default_factory=dict)  # where a replacement may go

    @property
    def ref(self) -> PodRef:
        return PodRef(namespace=self.namespace, name=self.name, uid=self.uid)

    @property
    def completed(self) -> bool:
        return self.phase in COMPLETED_PHASES


class LabelRequirement(BaseModel):
    key: str
    operator: str  # In, NotIn, Exists, DoesNotExist
    values: list[str] = Field(default_factory=list)


class LabelSelector(BaseModel):
    match_labels: dict[str, str] = Field(default_factory=dict)
    match_expressions: list[LabelRequirement] = Field(default_factory=list)

    def matches(self, labels: dict[str, str]) -> bool:
        """Kubernetes label selector semantics; an empty selector matches everything."""
        if any(labels.get(k) != v for k, v in self.match_labels.items()):
            return False
        for req in self.match_expressions:
            present = req.key in labels
            if req.operator == "In" and not (present and labels[req.key] in req.values):
                return False
            if req.operator == "NotIn" and present and labels[req.key] in req.values:
                return False
            if req.operator == "Exists" and not present:
                return False
            if req.operator == "DoesNotExist" and present:
                return False
        return True


class BudgetInfo(BaseModel):
    """A PodDisruptionBudget and the status the disruption controller gave it."""

    namespace: str
    name: str
    selector: LabelSelector | None = None  # None selects no pods
    disruptions_allowed: int = 0
    current_healthy: int = 0
    desired_healthy: int = 0
    expected_pods: int = 0
    observed: bool = True  # status.observedGeneration == metadata.generation

    def covers(self, pod: PodInfo) -> bool:
        return (
            self.namespace == pod.namespace
            and self.selector is not None
            and self.selector.matches(pod.labels)
        )

    def describe(self) -> str:
        """ "PodDisruptionBudget shop/api-pdb (0 disruptions allowed, 3/3 healthy, needs 3)"."""
        if not self.observed:
            return (
                f"PodDisruptionBudget {self.namespace}/{self.name} "
                "(not yet processed by the disruption controller)"
            )
        return (
            f"PodDisruptionBudget {self.namespace}/{self.name} "
            f"({self.disruptions_allowed} disruptions allowed, "
            f"{self.current_healthy}/{self.expected_pods} healthy, needs {self.desired_healthy})"
        )


class NodeInfo(BaseModel):
    name: str
    unschedulable: bool = False
    ready: bool = True
    boot_id: str = ""
    cordoned_by: str | None = None  # run id from our annotation, if we cordoned it
    # field managers that set spec.unschedulable (metadata.managedFields): proves whose cordon
    # it is, since `kubectl uncordon` leaves our annotation behind (see ownership.py)
    unschedulable_set_by: list[str] = Field(default_factory=list)
    resource_version: str = ""  # lets a write that follows this read skip a second GET
    labels: dict[str, str] = Field(default_factory=dict)

    @property
    def out(self) -> bool:
        """Counts against max-unavailable: it takes no new pods or is not healthy."""
        return self.unschedulable or not self.ready
