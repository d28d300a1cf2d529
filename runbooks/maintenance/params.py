"""The runbook's parameters: one pydantic model, which is also the Prefect UI form."""

from __future__ import annotations

import re
import shlex
from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, Field, field_validator, model_validator

from runbooks.approvals.policy import RunApproval
from runbooks.kit.durations import MAX_DURATION, Duration
from runbooks.kube_target import KubeTarget
from runbooks.maintenance.blockers import parse_alert_filter
from runbooks.maintenance.drain_plan import DrainOptions
from runbooks.maintenance.max_unavailable import validate_max_unavailable
from runbooks.verify.selector import parse_selector
from runbooks.window import MaintenanceWindow

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
# What the API accepts as a namespace (a DNS-1123 label) and as an object name such as a
# Lease's (a DNS-1123 subdomain); the patterns also go into the form's schema.
_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
NAMESPACE_PATTERN = rf"^{_LABEL}$"
OBJECT_NAME_PATTERN = rf"^{_LABEL}(\.{_LABEL})*$"


def check_namespace(value: str) -> str:
    """A namespace name the API accepts, or ValueError saying what one looks like."""
    if len(value) > 63 or not re.match(NAMESPACE_PATTERN, value):
        raise ValueError(
            f"{value!r} is not a namespace name (lowercase letters, digits and '-', at most 63)"
        )
    return value


def check_object_name(value: str) -> str:
    """An object name (e.g. a Lease's) the API accepts, or ValueError saying what one is."""
    if len(value) > 253 or not re.match(OBJECT_NAME_PATTERN, value):
        raise ValueError(
            f"{value!r} is not a Lease name (lowercase letters, digits, '-' and '.', at most 253)"
        )
    return value


# Checked when read, and declared in the form's schema so the Prefect UI refuses a typo too.
NamespaceName = Annotated[
    str, AfterValidator(check_namespace), Field(json_schema_extra={"pattern": NAMESPACE_PATTERN})
]
LeaseName = Annotated[
    str,
    AfterValidator(check_object_name),
    Field(json_schema_extra={"pattern": OBJECT_NAME_PATTERN}),
]


class InvalidRequest(ValueError):
    """The request cannot be carried out as asked (unknown node, bad selector, ...): nothing
    was changed. The CLI exits 2 with this message."""


class MaintenanceAction(BaseModel):
    """What to do to each drained node before it returns to service."""

    kind: Literal["none", "command", "job", "manual", "kubelet-version"] = Field(
        default="none",
        description="none: drain and uncordon only; command: run a local command line; "
        "job: run a Kubernetes Job pinned to the node; manual: pause until a person says done; "
        "kubelet-version: the local KWOK cluster's node upgrade (set by the upgrade runbook).",
    )
    kubelet_version: str | None = Field(
        default=None,
        description="For kind=kubelet-version: the version the node's KWOK kubelet reports "
        "after its simulated upgrade and reboot (the local cluster only).",
    )
    command: str | None = Field(
        default=None,
        description="Command line for kind=command (split as a shell would, run without a "
        "shell), or the container command for kind=job. {node} is replaced by the node name.",
    )
    timeout: Duration = Field(
        default="30m", validate_default=True, description="Give up on the action after this long."
    )
    reboots: bool = Field(
        default=False,
        description="The action reboots the node: wait for its boot ID to change, then Ready.",
    )
    job_image: str = Field(default="busybox:1.36", description="Container image for kind=job.")
    job_namespace: NamespaceName = Field(
        default="kube-system", description="Namespace for kind=job."
    )

    @model_validator(mode="after")
    def _command_needed(self) -> MaintenanceAction:
        if self.kind == "command" and not (self.command and self.command.strip()):
            raise ValueError("action 'command' needs a command line (--command)")
        if self.kind == "kubelet-version" and not self.kubelet_version:
            raise ValueError("action 'kubelet-version' needs the kubelet version to report")
        if self.command:
            try:
                shlex.split(self.command)
            except ValueError as exc:
                raise ValueError(f"cannot split command {self.command!r}: {exc}") from None
        return self

    def argv(self, node: str) -> list[str]:
        return [part.replace("{node}", node) for part in shlex.split(self.command or "")]


class Blockers(BaseModel):
    """Reasons not to take the next batch out: firing alerts, or pods that must not be disturbed."""

    prometheus_url: str | None = Field(
        default=None, description="Prometheus base URL; firing alerts from /api/v1/alerts."
    )
    alertmanager_url: str | None = Field(
        default=None, description="Alertmanager base URL; active alerts from /api/v2/alerts."
    )
    alert_filter: str = Field(
        default="",
        description="Which alerts block, as matchers: 'severity=critical,alertname=~Node.*'. "
        "Empty: every firing alert blocks. Operators: = != =~ !~.",
    )
    ignore_alerts: list[str] = Field(
        default_factory=lambda: ["Watchdog", "InfoInhibitor"],
        description="Alert names that never block (always-firing heartbeats).",
    )
    pod_selector: str | None = Field(
        default=None,
        description="Label selector; any matching pod (in any namespace) blocks, e.g. "
        "'app=backup-running'.",
    )
    check_interval: Duration = Field(
        default="1m", validate_default=True, description="While blocked, re-check this often."
    )
    max_wait: Duration = Field(
        default="30m", validate_default=True, description="Halt if still blocked after this long."
    )

    @field_validator("alert_filter")
    @classmethod
    def _filter_readable(cls, value: str) -> str:
        parse_alert_filter(value)
        return value

    @field_validator("pod_selector")
    @classmethod
    def _selector_readable(cls, value: str | None) -> str | None:
        """A typo here would block every batch (the API refuses the list) until max-wait."""
        if value is not None:
            parse_selector(value)
        return value

    @field_validator("prometheus_url", "alertmanager_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        """Refused now, not when the first batch asks it (after the plan, under the Lease)."""
        if value is None:
            return None
        scheme, _, rest = value.strip().partition("://")
        if scheme.lower() not in ("http", "https") or not rest.strip("/"):
            raise ValueError(f"{value!r} is not a URL: use http:// or https://HOST[:PORT]")
        return value.strip()

    @property
    def configured(self) -> bool:
        return bool(self.prometheus_url or self.alertmanager_url or self.pod_selector)


class LeaseSettings(BaseModel):
    """The coordination.k8s.io Lease that makes maintenance one-at-a-time per cluster."""

    namespace: NamespaceName = Field(
        default="kube-system", description="Namespace of the Lease; it must exist."
    )
    name: LeaseName = Field(default="kube-runbooks-maintenance", description="Name of the Lease.")
    duration: Duration = Field(
        default="1m",
        validate_default=True,
        description="A holder that stops renewing for this long is taken over.",
    )
    wait: Duration = Field(
        default="0s",
        validate_default=True,
        description="How long to wait for a Lease another run holds (until it is released "
        "or expires) instead of halting at once; 0s: do not wait.",
    )

    @field_validator("duration")
    @classmethod
    def _at_least_3s(cls, value: timedelta) -> timedelta:
        if value.total_seconds() < 3:
            raise ValueError("lease duration must be at least 3s")
        return value


class MaintenanceParams(BaseModel):
    """Roll maintenance across nodes: cordon, drain, act, wait Ready, uncordon."""

    target: KubeTarget = Field(default_factory=KubeTarget, description="Which cluster.")
    nodes: list[str] = Field(default_factory=list, description="Nodes by name.")
    selector: str | None = Field(
        default=None, description="Nodes by label selector, e.g. 'pool=workers'."
    )
    max_unavailable: str = Field(
        default="1",
        description="Most nodes out at once (count, or percent of the selected nodes), "
        "counting nodes already unschedulable or NotReady.",
    )
    drain_timeout: Duration = Field(
        default="15m", validate_default=True, description="Give up draining a node after this long."
    )
    ready_timeout: Duration = Field(
        default="10m",
        validate_default=True,
        description="Give up waiting for the node to be Ready after the action.",
    )
    grace_period: int | None = Field(
        default=None,
        ge=0,
        le=int(MAX_DURATION.total_seconds()),
        description="Seconds each pod gets to stop; empty: the pod's own.",
    )
    delete_emptydir_data: bool = Field(
        default=False, description="Evict pods with emptyDir volumes (their data is lost)."
    )
    force: bool = Field(
        default=False, description="Evict pods without a controller (they are gone for good)."
    )
    ignore_daemonsets: bool = Field(
        default=True, description="Leave DaemonSet pods in place; if off, they refuse the drain."
    )
    skip_wait_for_delete_timeout: int = Field(
        default=0,
        ge=0,
        le=int(MAX_DURATION.total_seconds()),
        description="Stop waiting for an evicted pod this many seconds after its deletion was "
        "due (its grace period ended): its node is not answering, e.g. powered off. As kubectl "
        "drain's flag; 0 waits for every pod until the drain timeout.",
    )
    evict_without_room: bool = Field(
        default=False,
        description="Drain even when evicted pods would have no Ready, schedulable node to go "
        "to (every node they may run on is in the batch or out): they stay Pending until a "
        "node returns. Off: such a plan is refused before anything is cordoned.",
    )
    on_drain_failure: Literal["uncordon", "leave-cordoned"] = Field(
        default="uncordon",
        description="A node whose drain failed: uncordon it (its evicted pods run elsewhere "
        "already), or leave it cordoned for a person.",
    )
    action: MaintenanceAction = Field(default_factory=MaintenanceAction)
    blockers: Blockers = Field(default_factory=Blockers)
    dry_run: bool = Field(default=False, description="Show the plan; change nothing.")
    deadline: datetime | None = Field(
        default=None,
        description="Start no new batch after this time; finish the one in hand and report "
        "the nodes left for next time.",
    )
    window: MaintenanceWindow | None = Field(
        default=None,
        title="Window",  # a model reference gets no title otherwise; the UI would say "Field"
        description="Maintenance window, read when the run starts: no new batch once it has "
        "closed, and a run started outside it starts nothing. An earlier deadline still wins.",
    )
    lease: LeaseSettings = Field(default_factory=LeaseSettings)
    approval: RunApproval | None = Field(
        default=None,
        title="Approval",  # as for window: without it the UI form labels the field "Field"
        description="Ask in Slack before the first node is touched, under the operator's "
        "approval policy (see docs/slack-app.md); here a run may only make it stricter: fewer "
        "of the approvers, more approvals, a shorter timeout. A live run asks anyway when the "
        "operator's policy says so. Empty: only the operator's policy decides.",
    )

    @field_validator("max_unavailable", mode="before")
    @classmethod
    def _max_unavailable(cls, value: object) -> str:
        if not isinstance(value, str | int):
            raise ValueError("max-unavailable must be a count or a percentage")
        return validate_max_unavailable(value)

    @field_validator("nodes")
    @classmethod
    def _node_names(cls, value: list[str]) -> list[str]:
        bad = [n for n in value if not _DNS_LABEL.match(n)]
        if bad:
            raise ValueError(f"not valid node names: {', '.join(bad)}")
        return list(dict.fromkeys(value))

    @model_validator(mode="after")
    def _something_selected(self) -> MaintenanceParams:
        if not self.nodes and not (self.selector and self.selector.strip()):
            raise ValueError("name the nodes to maintain, or give a --selector")
        return self

    @model_validator(mode="after")
    def _deadline_from_window(self) -> MaintenanceParams:
        """The window becomes the deadline when the parameters are read, i.e. the run starts."""
        if self.window is not None:
            self.deadline = self.window.deadline(datetime.now(UTC), self.deadline)
        return self

    @property
    def drain_options(self) -> DrainOptions:
        return DrainOptions(
            delete_emptydir_data=self.delete_emptydir_data,
            force=self.force,
            ignore_daemonsets=self.ignore_daemonsets,
            skip_wait_for_delete_timeout=self.skip_wait_for_delete_timeout,
        )
