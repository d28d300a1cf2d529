"""Velero's velero.io/v1 objects, as the API serves them (dicts), into the checks' models."""

from __future__ import annotations

from typing import Any

from runbooks.backups.facts import Backup, Schedule, StorageLocation, timestamp


def _meta(obj: dict[str, Any]) -> dict[str, Any]:
    meta = obj.get("metadata") or {}
    return {
        "name": meta.get("name", ""),
        "namespace": meta.get("namespace", ""),
        "labels": meta.get("labels") or {},
        "created": timestamp(meta.get("creationTimestamp")),
    }


def _int(value: Any) -> int:
    return int(value or 0)


def storage_location(obj: dict[str, Any]) -> StorageLocation:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    return StorageLocation(
        **_meta(obj),
        phase=status.get("phase", ""),
        message=status.get("message", ""),
        default=bool(spec.get("default", False)),
        access_mode=spec.get("accessMode") or "ReadWrite",
        last_validated=timestamp(status.get("lastValidationTime")),
    )


def schedule(obj: dict[str, Any]) -> Schedule:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    return Schedule(
        **_meta(obj),
        cron=spec.get("schedule", ""),
        paused=bool(spec.get("paused", False)),
        phase=status.get("phase", ""),
        validation_errors=status.get("validationErrors") or [],
        last_backup=timestamp(status.get("lastBackup")),
        last_skipped=timestamp(status.get("lastSkipped")),
    )


def backup(obj: dict[str, Any]) -> Backup:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    progress = status.get("progress") or {}
    return Backup(
        **_meta(obj),
        included_namespaces=spec.get("includedNamespaces") or [],
        phase=status.get("phase", ""),
        failure_reason=status.get("failureReason", ""),
        validation_errors=status.get("validationErrors") or [],
        started=timestamp(status.get("startTimestamp")),
        completed=timestamp(status.get("completionTimestamp")),
        expiration=timestamp(status.get("expiration")),
        errors=_int(status.get("errors")),
        warnings=_int(status.get("warnings")),
        snapshots_attempted=_int(status.get("volumeSnapshotsAttempted")),
        snapshots_completed=_int(status.get("volumeSnapshotsCompleted")),
        csi_snapshots_attempted=_int(status.get("csiVolumeSnapshotsAttempted")),
        csi_snapshots_completed=_int(status.get("csiVolumeSnapshotsCompleted")),
        item_operations_failed=_int(status.get("backupItemOperationsFailed")),
        items_total=progress.get("totalItems"),
        items_backed_up=progress.get("itemsBackedUp"),
    )
