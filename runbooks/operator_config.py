"""The operator's configuration: what no run can change about itself.

Read by the worker (and the CLI) from a YAML file the people who start runs cannot write:
``/etc/kube-runbooks/config.yaml`` if it exists, else ``RUNBOOK_CONFIG`` if set, else
``config.yaml`` in the state dir (``RUNBOOK_STATE_DIR``). No file: no approval policy and no
``command``/``job`` actions. Unknown keys are an error naming the key, so a typo never silently
loosens anything.

    approvals:                      # per runbook (flow name)
      rolling-node-maintenance:
        usergroups: [S0ONCALL]
        min_approvals: 1
        timeout: 30m
        live_runs_require_approval: true
    identities:                     # Slack user -> identities they start runs as
      U012ALICE: [os-user:alice, prefect-user:alice@example.com]
    allow:
      commands:                     # argv prefixes, as a shell would split them
        - /usr/local/sbin/patch-node {node}
        - [ssh, "{node}", sudo, /usr/local/sbin/patch-node]
      images:                       # exact references, or a digest (sha256:…)
        - registry.example.com/ops/node-patcher:1.4@sha256:0123…
"""

from __future__ import annotations

import os
import shlex
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator

from runbooks.approvals.policy import ConfiguredApproval, check_user_ids
from runbooks.identity import check_identities

CONFIG_ENV = "RUNBOOK_CONFIG"
SYSTEM_CONFIG = Path("/etc/kube-runbooks/config.yaml")


class OperatorConfigError(ValueError):
    """The configuration cannot be read as written; one line naming the file and the key."""


class AllowList(BaseModel):
    """What the ``command`` and ``job`` actions may run."""

    model_config = ConfigDict(extra="forbid")

    commands: list[list[str]] = Field(
        default_factory=list,
        description="argv prefixes (a string is split as a shell would); {node} matches itself.",
    )
    images: list[str] = Field(
        default_factory=list,
        description="Job images: exact references, or digests (sha256:…) matching any "
        "reference pinned to that digest.",
    )

    @field_validator("commands", mode="before")
    @classmethod
    def _split(cls, value: object) -> object:
        if not isinstance(value, list):
            return value
        out = []
        for entry in value:
            argv = shlex.split(entry) if isinstance(entry, str) else entry
            if not argv:
                raise ValueError("an empty command would allow every command")
            out.append(argv)
        return out

    def command_allowed(self, argv: list[str]) -> bool:
        return any(argv[: len(prefix)] == prefix for prefix in self.commands)

    def image_allowed(self, image: str) -> bool:
        digest = image.rpartition("@")[2] if "@" in image else None
        return any(
            image == entry or (digest is not None and digest == entry) for entry in self.images
        )


class OperatorConfig(BaseModel):
    """Approval policies per runbook, who is who, and what actions may run."""

    model_config = ConfigDict(extra="forbid")

    approvals: dict[str, ConfiguredApproval] = Field(default_factory=dict)
    identities: dict[str, list[str]] = Field(default_factory=dict)
    allow: AllowList = Field(default_factory=AllowList)
    unattended_upgrades: bool = Field(
        default=False, description="Allow `runbook upgrade --approval none` (nobody approves)."
    )
    _source: str = PrivateAttr(default="no operator configuration file")

    @field_validator("identities")
    @classmethod
    def _identities(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        check_user_ids(list(value))
        for ids in value.values():
            check_identities(ids)
        return value

    @property
    def source(self) -> str:
        return self._source

    @property
    def where(self) -> str:
        return f"the operator configuration ({self._source})"

    def action_refusal(self, kind: str, argv: list[str], image: str | None) -> str | None:
        """Why a ``command``/``job`` action may not run (one line naming it and where to allow
        it), or None. ``argv`` is the command as written, before {node} is filled in."""
        if kind not in ("command", "job"):
            return None
        if kind == "job" and image is not None and not self.allow.image_allowed(image):
            return (
                f"job image {image!r} is not allowed: add it (or its sha256 digest) under "
                f"allow.images in {self.where}"
            )
        if argv and not self.allow.command_allowed(argv):
            what = "command" if kind == "command" else "job command"
            return (
                f"{what} {' '.join(argv)!r} is not allowed: add it (or an argv prefix of it) "
                f"under allow.commands in {self.where}"
            )
        return None


def config_path() -> Path | None:
    """The file to read, or None when there is none. The system file wins when it exists: a
    flow run's environment can be set by whoever starts it (a work pool's ``env`` job
    variable), so an environment variable must not be able to swap the policy out. Without
    it, ``RUNBOOK_CONFIG`` (which must exist), else the state dir's ``config.yaml``."""
    if SYSTEM_CONFIG.is_file():
        return SYSTEM_CONFIG
    explicit = os.environ.get(CONFIG_ENV, "").strip()
    if explicit:
        return Path(explicit)
    from runbooks.settings import get_settings

    candidate = get_settings().state_dir / "config.yaml"
    return candidate if candidate.is_file() else None


def load_operator_config(path: Path | None = None) -> OperatorConfig:
    """Read it now (not cached: an operator's edit applies to the next run)."""
    path = path or config_path()
    if path is None:
        return OperatorConfig()
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except OSError as exc:
        raise OperatorConfigError(
            f"cannot read the operator configuration {path} ({CONFIG_ENV}): {exc.strerror}"
        ) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark else ""
        raise OperatorConfigError(f"operator configuration {path} is not YAML{at}") from None
    if not isinstance(raw, dict):
        raise OperatorConfigError(f"operator configuration {path}: expected a mapping at the top")
    try:
        config = OperatorConfig.model_validate(raw)
    except ValidationError as exc:
        raise OperatorConfigError(f"operator configuration {path}: {_first(exc)}") from None
    config._source = str(path)
    return config


def _first(exc: ValidationError) -> str:
    error = exc.errors()[0]
    where = ".".join(str(p) for p in error["loc"])
    if error["type"] == "extra_forbidden":
        return f"unknown key {where}"
    return f"{where}: {str(error['msg']).removeprefix('Value error, ')}"
