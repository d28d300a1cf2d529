"""What the backup checks read, as plain values: Velero objects, CronJobs, etcd snapshot files.

The tasks read the world into these models (the boundary), the checks decide from them alone,
so every decision is table-tested without a cluster. A source that was not asked for is ``None``
(its checks skip); one that could not be read carries ``error`` (its checks report ``error``).
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from runbooks.kit.durations import Duration

# Velero's terminal failures of a Backup: the backup is not (fully) usable.
BACKUP_FAILED = ("PartiallyFailed", "Failed", "FailedValidation")
# Phases of a Backup still being made; one that stays here long is stuck.
BACKUP_UNFINISHED = (
    "New",
    "Queued",
    "ReadyToStart",
    "InProgress",
    "WaitingForPluginOperations",
    "WaitingForPluginOperationsPartiallyFailed",
    "Finalizing",
    "FinalizingPartiallyFailed",
)
SCHEDULE_LABEL = "velero.io/schedule-name"


class Policy(BaseModel):
    """How fresh and clean the backups must be; the CLI flags and the flow's parameters."""

    rpo: Duration = Field(
        default=dt.timedelta(hours=25),
        description="Newest good backup may be at most this old (recovery point objective).",
    )
    max_warnings: int = Field(
        default=0, ge=0, description="A Completed backup with more warnings than this warns."
    )
    stuck_after: Duration = Field(
        default=dt.timedelta(hours=2),
        description="A backup still unfinished after this long is stuck.",
    )
    bsl_validation_max_age: Duration = Field(
        default=dt.timedelta(minutes=10),
        description="A storage location not validated for this long is suspect.",
    )


class _Object(BaseModel):
    """A Kubernetes object as the checks see it: name, namespace, labels, creation time."""

    model_config = ConfigDict(extra="ignore")

    name: str
    namespace: str = ""
    labels: dict[str, str] = Field(default_factory=dict)
    created: dt.datetime | None = None

    @property
    def ref(self) -> str:
        return f"{self.namespace}/{self.name}" if self.namespace else self.name


class StorageLocation(_Object):
    phase: str = ""
    message: str = ""
    default: bool = False
    access_mode: str = "ReadWrite"
    last_validated: dt.datetime | None = None


class Schedule(_Object):
    cron: str = ""
    paused: bool = False
    phase: str = ""
    validation_errors: list[str] = Field(default_factory=list)
    last_backup: dt.datetime | None = None
    last_skipped: dt.datetime | None = None


class Backup(_Object):
    included_namespaces: list[str] = Field(default_factory=list)
    phase: str = ""
    failure_reason: str = ""
    validation_errors: list[str] = Field(default_factory=list)
    started: dt.datetime | None = None
    completed: dt.datetime | None = None
    expiration: dt.datetime | None = None
    errors: int = 0
    warnings: int = 0
    snapshots_attempted: int = 0
    snapshots_completed: int = 0
    csi_snapshots_attempted: int = 0
    csi_snapshots_completed: int = 0
    item_operations_failed: int = 0
    items_total: int | None = None
    items_backed_up: int | None = None

    @property
    def schedule(self) -> str | None:
        return self.labels.get(SCHEDULE_LABEL)


class Velero(BaseModel):
    """Velero's objects in its namespace; ``served`` False when velero.io/v1 is not installed."""

    namespace: str
    served: bool = True
    error: str | None = None
    locations: list[StorageLocation] = Field(default_factory=list)
    schedules: list[Schedule] = Field(default_factory=list)
    backups: list[Backup] = Field(default_factory=list)


class CronJobRun(BaseModel):
    """A Job a backup CronJob started."""

    name: str
    created: dt.datetime | None = None
    failed: bool = False
    succeeded: bool = False
    reason: str = ""


class CronJob(_Object):
    schedule: str = ""
    suspended: bool = False
    last_successful: dt.datetime | None = None
    last_scheduled: dt.datetime | None = None
    jobs: list[CronJobRun] = Field(default_factory=list)

    @property
    def last_job(self) -> CronJobRun | None:
        dated = [j for j in self.jobs if j.created is not None]
        return max(dated, key=lambda j: j.created or dt.datetime.min) if dated else None


class CronJobs(BaseModel):
    selector: str
    error: str | None = None
    items: list[CronJob] = Field(default_factory=list)


class SnapshotStatus(BaseModel):
    """``etcdutl snapshot status -w json`` of one file."""

    hash: int
    revision: int
    total_keys: int = Field(alias="totalKey")
    total_size: int = Field(alias="totalSize")
    version: str = ""

    model_config = ConfigDict(populate_by_name=True)


class SnapshotFile(BaseModel):
    path: str
    modified: dt.datetime
    size: int
    status: SnapshotStatus | None = None
    status_error: str | None = None


class EtcdSnapshots(BaseModel):
    """The newest snapshot files of a directory, newest first (at most two are inspected)."""

    directory: str
    error: str | None = None
    files: list[SnapshotFile] = Field(default_factory=list)


class Drill(BaseModel):
    """A restore drill's outcome: what was restored, whether it matched, how long it took."""

    source: str
    ok: bool
    evidence: list[str] = Field(default_factory=list)
    seconds: float | None = None


class BackupFacts(BaseModel):
    """Everything the backup checks decide from."""

    now: dt.datetime
    policy: Policy = Field(default_factory=Policy)
    velero: Velero | None = None
    cronjobs: CronJobs | None = None
    etcd: EtcdSnapshots | None = None
    etcd_drill: Drill | None = None
    velero_drill: Drill | None = None
    drill_requested: bool = False


_GO_PART = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_GO_UNIT = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600}


def go_duration(text: str | None) -> dt.timedelta | None:
    """Velero's durations are Go's (``1m0s``, ``720h0m0s``); None when absent or unreadable."""
    if not text:
        return None
    raw = text.strip()
    if raw == "0":
        return dt.timedelta(0)
    if not raw or _GO_PART.sub("", raw) != "":
        return None
    return dt.timedelta(seconds=sum(float(n) * _GO_UNIT[u] for n, u in _GO_PART.findall(raw)))


def timestamp(value: Any) -> dt.datetime | None:
    """An RFC 3339 timestamp as the API serves it (``...Z``), or a datetime, as aware UTC."""
    if value is None or value == "":
        return None
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    parsed = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)
