"""The backup check's parameters: the UI form, the CLI flags and their validation."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from pydantic import BaseModel, Field, field_validator

from runbooks.backups.facts import Policy
from runbooks.kit.durations import Duration
from runbooks.kube_target import KubeTarget
from runbooks.maintenance.params import check_namespace
from runbooks.verify.selector import parse_selector


class BackupCheckParams(BaseModel):
    """Which backups to check, and how fresh they must be."""

    target: KubeTarget = Field(default_factory=KubeTarget)
    policy: Policy = Field(default_factory=Policy)
    velero_namespace: str | None = Field(
        "velero", description="Velero's namespace; empty: do not check Velero"
    )
    cronjob_selector: str | None = Field(
        None, description="Label selector of backup CronJobs (all namespaces); none: skip"
    )
    etcd_snapshots: Path | None = Field(
        None, description="Directory of etcd snapshot files (on the worker); none: skip"
    )
    etcdutl: Path | None = Field(None, description="etcdutl binary; default: etcdutl on PATH")
    restore_drill: bool = Field(
        False, description="Also restore the newest etcd snapshot and Velero backup (opt-in)"
    )
    drill_timeout: Duration = Field(
        default=dt.timedelta(minutes=5), description="Longest a restore drill may take"
    )

    @field_validator("velero_namespace")
    @classmethod
    def _namespace(cls, value: str | None) -> str | None:
        return check_namespace(value) if value else None

    @field_validator("cronjob_selector")
    @classmethod
    def _selector(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not value.strip():
            raise ValueError("the selector is empty (it would match every CronJob)")
        parse_selector(value)
        return value.strip()
