"""The upgrade runbook's parameters: one pydantic model (the Prefect UI form, the CLI's flags).

Bad input is refused here, before anything is read from the cluster (exit 2, one line):
an unparseable version, an unknown provider, a ``command`` provider without its commands, an
argv template with a placeholder other than {node} and {version}, ``--strategy replace`` with
a provider that cannot create nodes. What needs the cluster (a lower version, a selector that
matches no node) is refused at plan time with ``InvalidRequest``, also before any change.
"""

from __future__ import annotations

import os
import re
import shlex
import string
from typing import Literal

from pydantic import BaseModel, Field, field_validator, model_validator

from runbooks.kit.durations import Duration
from runbooks.kube_target import KubeTarget
from runbooks.maintenance.max_unavailable import validate_max_unavailable
from runbooks.maintenance.params import InvalidRequest
from runbooks.verify.selector import parse_selector

__all__ = ["InvalidRequest", "UpgradeParams", "Version", "parse_version", "unattended_refusal"]

PLACEHOLDERS = ("node", "version")
UNATTENDED_ENV = "RUNBOOK_ALLOW_UNATTENDED_UPGRADES"
_VERSION = re.compile(r"^v?(\d+)\.(\d+)\.(\d+)$")


class Version(tuple[int, int, int]):
    """A Kubernetes release, ``v1.36.3``; ordered as numbers, written back with the ``v``."""

    def __str__(self) -> str:
        return "v{}.{}.{}".format(*self)

    @property
    def minor(self) -> tuple[int, int]:
        return (self[0], self[1])


def parse_version(text: str) -> Version:
    """``v1.36.3`` or ``1.36.3`` (a build suffix such as ``+k3s1`` or ``-eks-...`` is ignored
    when read from a cluster); ValueError naming what is accepted."""
    core = text.strip().split("+", 1)[0].split("-", 1)[0]
    match = _VERSION.match(core)
    if not match:
        raise ValueError(
            f"{text!r} is not a Kubernetes version: use vMAJOR.MINOR.PATCH, e.g. v1.36.3"
        )
    return Version(tuple(int(part) for part in match.groups()))


def argv_template(value: str | None, what: str) -> str | None:
    """An argv template: split as a shell would (run without one), only {node} and {version}."""
    if value is None or not value.strip():
        return None
    try:
        parts = shlex.split(value)
    except ValueError as exc:
        raise ValueError(f"cannot split {what} {value!r}: {exc}") from None
    unknown: list[str] = []
    for part in parts:
        try:
            fields = [f for _, f, _, _ in string.Formatter().parse(part) if f is not None]
        except ValueError as exc:
            raise ValueError(
                f"{what} {value!r}: {exc} (write a literal brace as {{{{ }}}})"
            ) from None
        unknown += [f"{{{f}}}" for f in fields if f not in PLACEHOLDERS]
    if unknown:
        raise ValueError(
            f"{what} {value!r} has unknown placeholder(s) {', '.join(unknown)}; "
            "allowed: {node}, {version}"
        )
    return value.strip()


def fill(template: str, node: str, version: str) -> list[str]:
    """The argv of a template for one node and version (each word filled, never a shell)."""
    return [part.format(node=node, version=version) for part in shlex.split(template)]


class UpgradeParams(BaseModel):
    """Upgrade a cluster: preflight, approval, etcd snapshot, control plane, then the nodes."""

    to: str = Field(description="Target Kubernetes version, e.g. v1.36.3.")
    provider: Literal["local", "command"] = Field(
        default="local",
        description="local: the runbook's local cluster (restart on new binaries, KWOK nodes); "
        "command: run the argv templates below (kubeadm over ssh, a managed cluster's CLI).",
    )
    local_cluster: str | None = Field(
        default=None,
        description="Name of the local cluster (provider local); empty: read from the "
        "kubeconfig path $RUNBOOK_STATE_DIR/clusters/<name>/.",
    )
    control_plane_command: str | None = Field(
        default=None,
        description="Provider command: argv run once per control-plane node, e.g. "
        "'ssh {node} sudo kubeadm upgrade apply {version} -y'.",
    )
    node_command: str | None = Field(
        default=None,
        description="Provider command: argv run for each drained node, e.g. "
        "'ssh {node} sudo /usr/local/bin/upgrade-kubelet {version}'.",
    )
    snapshot_command: str | None = Field(
        default=None,
        description="Provider command: argv that takes an etcd snapshot before the control "
        "plane is touched; empty: no snapshot (the backup preflight must pass instead).",
    )
    strategy: Literal["in-place", "replace"] = Field(
        default="in-place",
        description="in-place: upgrade each drained node; replace: a new node first, then "
        "drain and remove the old one.",
    )
    selector: str | None = Field(
        default=None, description="Only nodes matching this label selector; empty: all nodes."
    )
    max_unavailable: str = Field(default="1", description="Most nodes out at once: N or P%.")
    approval: Literal["slack", "none"] = Field(
        default="slack",
        description="slack: the operator's approval policy for cluster-upgrade; none: only "
        f"where {UNATTENDED_ENV}=1 or the operator configuration allows unattended upgrades.",
    )
    skip_check: list[str] = Field(
        default_factory=list,
        description="Preflight check IDs whose failure is accepted knowingly (shown in the "
        "plan the approver signs, and audited).",
    )
    dry_run: bool = Field(default=False, description="Show the plan and preflight; change nothing.")
    output: Literal["text", "json"] = Field(default="text", description="Report format.")
    target: KubeTarget = Field(default_factory=KubeTarget, description="Which cluster.")
    rpo: Duration = Field(
        default="24h", validate_default=True, description="Newest backup must be younger."
    )
    ready_timeout: Duration = Field(
        default="10m", validate_default=True, description="Per node, Ready after its upgrade."
    )
    drain_timeout: Duration = Field(
        default="15m", validate_default=True, description="Give up draining a node after this."
    )
    command_timeout: Duration = Field(
        default="30m", validate_default=True, description="Limit for each provider command."
    )

    @field_validator("to")
    @classmethod
    def _version(cls, value: str) -> str:
        return str(parse_version(value))

    @field_validator("control_plane_command")
    @classmethod
    def _cp_template(cls, value: str | None) -> str | None:
        return argv_template(value, "control-plane-command")

    @field_validator("node_command")
    @classmethod
    def _node_template(cls, value: str | None) -> str | None:
        return argv_template(value, "node-command")

    @field_validator("snapshot_command")
    @classmethod
    def _snapshot_template(cls, value: str | None) -> str | None:
        return argv_template(value, "snapshot-command")

    @field_validator("selector")
    @classmethod
    def _selector(cls, value: str | None) -> str | None:
        if value is not None and value.strip():
            parse_selector(value)
            return value.strip()
        return None

    @field_validator("max_unavailable", mode="before")
    @classmethod
    def _max_unavailable(cls, value: object) -> str:
        if not isinstance(value, str | int):
            raise ValueError("max-unavailable must be a count or a percentage")
        return validate_max_unavailable(value)

    @field_validator("skip_check", mode="before")
    @classmethod
    def _check_ids(cls, value: object) -> object:
        if isinstance(value, str):
            value = [value]
        if isinstance(value, list):
            return [i.strip() for v in value for i in str(v).split(",") if i.strip()]
        return value

    @model_validator(mode="after")
    def _provider_can(self) -> UpgradeParams:
        if self.provider == "command":
            missing = [
                flag
                for flag, value in (
                    ("--control-plane-command", self.control_plane_command),
                    ("--node-command", self.node_command if self.strategy == "in-place" else "-"),
                )
                if not value
            ]
            if missing:
                raise ValueError(f"provider 'command' needs {' and '.join(missing)}")
        elif self.control_plane_command or self.node_command or self.snapshot_command:
            raise ValueError(
                "--control-plane-command, --node-command and --snapshot-command are for "
                "--provider command; the local provider upgrades the local cluster itself"
            )
        if self.strategy == "replace":
            # Neither provider creates nodes yet; refused before anything is read or changed.
            raise ValueError(
                f"--strategy replace: provider {self.provider!r} cannot create nodes in this "
                "version; use --strategy in-place"
            )
        return self

    @property
    def version(self) -> Version:
        return parse_version(self.to)


def unattended_refusal(params: UpgradeParams, *, allowed_by_config: bool) -> str | None:
    """Why ``--approval none`` may not run here (one line), or None. An upgrade without an
    approver is an operator's decision, not a flag: the environment or the operator's
    configuration must say so. Dry runs change nothing and need no approval."""
    if params.approval != "none" or params.dry_run:
        return None
    if os.environ.get(UNATTENDED_ENV, "").strip() == "1" or allowed_by_config:
        return None
    return (
        f"--approval none is refused: set {UNATTENDED_ENV}=1 or unattended_upgrades: true in "
        "the operator configuration to allow upgrades nobody approves"
    )
