"""Backup CronJobs by label selector, with the Jobs each started (one LIST of CronJobs across
namespaces, one LIST of Jobs per namespace that has a matching CronJob)."""

from __future__ import annotations

from typing import Any

from kubernetes.client.rest import ApiException
from prefect import task
from prefect.cache_policies import NO_CACHE

from runbooks.backups.facts import CronJob, CronJobRun, CronJobs, timestamp
from runbooks.kube_target import KubeTarget
from tasks.kube.client import batch


def _condition(job: Any, kind: str) -> Any:
    return next(
        (c for c in (job.status.conditions or []) if c.type == kind and c.status == "True"), None
    )


def _run(job: Any) -> CronJobRun:
    failed = _condition(job, "Failed")
    reason = f"{failed.reason}: {failed.message}".strip(": ") if failed else ""
    return CronJobRun(
        name=job.metadata.name,
        created=timestamp(job.metadata.creation_timestamp),
        failed=failed is not None,
        succeeded=_condition(job, "Complete") is not None,
        reason=reason,
    )


@task(task_run_name="read backup CronJobs {selector}", cache_policy=NO_CACHE)
def read_backup_cronjobs(target: KubeTarget, selector: str) -> CronJobs:
    api = batch(target)
    try:
        found = api.list_cron_job_for_all_namespaces(label_selector=selector).items
        jobs: dict[str, list[Any]] = {}
        for namespace in sorted({c.metadata.namespace for c in found}):
            jobs[namespace] = api.list_namespaced_job(namespace).items
    except ApiException as exc:
        why = f"HTTP {exc.status} {exc.reason}"
        return CronJobs(selector=selector, error=f"cannot list CronJobs {selector!r}: {why}")
    items = []
    for cj in found:
        owned = [
            j
            for j in jobs.get(cj.metadata.namespace, [])
            if any(o.uid == cj.metadata.uid for o in (j.metadata.owner_references or []))
        ]
        items.append(
            CronJob(
                name=cj.metadata.name,
                namespace=cj.metadata.namespace,
                labels=cj.metadata.labels or {},
                created=timestamp(cj.metadata.creation_timestamp),
                schedule=cj.spec.schedule,
                suspended=bool(cj.spec.suspend),
                last_successful=timestamp(cj.status.last_successful_time if cj.status else None),
                last_scheduled=timestamp(cj.status.last_schedule_time if cj.status else None),
                jobs=[_run(j) for j in owned],
            )
        )
    return CronJobs(selector=selector, items=items)
