"""The `job` maintenance action: a Job pinned to the node (built by
runbooks.maintenance.job_manifest), watched until it completes or fails."""

from __future__ import annotations

import time
from typing import Any

from kubernetes import watch
from kubernetes.client.rest import ApiException

from runbooks.kit.durations import format_duration
from runbooks.kube_target import KubeTarget
from runbooks.maintenance.job_manifest import (
    NODE_ANNOTATION,
    RUN_ANNOTATION,
    finished,
    foreign_job,
    job_manifest,
    job_name,
    node_jobs_selector,
    other_run,
)
from tasks.kube import client as kube
from tasks.kube.retry import TURN_SECONDS, retrying, stop_reason, watch_can_resume

__all__ = ["JobFailed", "job_name", "render_job", "run_job"]


class JobFailed(RuntimeError):
    pass


def render_job(
    node: str, run_id: str, namespace: str, image: str, command: list[str], timeout: float
) -> dict[str, Any]:
    """The Job for ``node`` in this run, as an object: image and command are kept verbatim."""
    return job_manifest(node, run_id, namespace, image, command, timeout)


def run_job(target: KubeTarget, manifest: dict[str, Any], timeout: float) -> str:
    """Create the Job and wait for Complete; raise JobFailed on Failed or timeout. Returns a
    one-line summary. Another run's Job still active on the node fails the node and nothing is
    created. A Job of the same name is adopted only when its metadata says it is this run's Job
    for this node (a crashed attempt made it); any other fails the node."""
    batch = kube.batch(target)
    namespace = manifest["metadata"]["namespace"]
    name = manifest["metadata"]["name"]
    _refuse_if_another_run_is_active(batch, manifest)
    try:
        retrying(lambda: batch.create_namespaced_job(namespace, manifest), f"create job {name}")
    except ApiException as exc:
        if exc.status != 409:
            raise
        _adopt(batch, manifest)
    deadline = time.monotonic() + timeout
    while True:
        job = retrying(lambda: batch.read_namespaced_job(name, namespace), f"read job {name}")
        verdict = _verdict(job)
        if verdict is not None:
            return verdict
        stopping = stop_reason()  # interrupted, or the Lease lost
        if stopping:  # the Job runs on; a retry of this run adopts it
            raise JobFailed(f"waiting for job {namespace}/{name} stopped: {stopping}")
        left = deadline - time.monotonic()
        if left <= 0:
            raise JobFailed(f"job {namespace}/{name} did not finish in {format_duration(timeout)}")
        stream = watch.Watch()
        try:
            for event in stream.stream(
                batch.list_namespaced_job,
                namespace,
                field_selector=f"metadata.name={name}",
                resource_version=job.metadata.resource_version,
                timeout_seconds=max(1, min(TURN_SECONDS, int(left) + 1)),
            ):
                if _verdict(event["object"]) is not None:
                    break
        except Exception as exc:  # 410 or a dropped connection: read again
            if not watch_can_resume(exc):
                raise
        finally:
            stream.stop()


def _refuse_if_another_run_is_active(batch: Any, manifest: dict[str, Any]) -> None:
    """Raise JobFailed when a kube-runbooks Job of another run is still active for this node:
    a CLI run's id dies with its process, so after a crash the rerun's Job would run the action
    a second time, at once, on the same node. One LIST; finished Jobs do not block."""
    meta = manifest["metadata"]
    namespace = meta["namespace"]
    node, run_id = meta["annotations"][NODE_ANNOTATION], meta["annotations"][RUN_ANNOTATION]
    selector = node_jobs_selector(node)
    listed = retrying(
        lambda: batch.list_namespaced_job(namespace, label_selector=selector),
        f"list jobs for node {node}",
    )
    for job in listed.items:
        owner = other_run(job.metadata.annotations, node, run_id)
        conditions = [(c.type, c.status) for c in (job.status and job.status.conditions) or []]
        if owner is None or finished(conditions):
            continue
        name = job.metadata.name
        raise JobFailed(
            f"job {namespace}/{name} of run {owner} is still active on node {node}; the action "
            f"was not run on {node}, so that two maintenance actions never run on it at once. "
            f"Wait for that Job to finish and rerun, or if it is stale (its run is gone and "
            f"nothing runs on the node): kubectl -n {namespace} delete job {name} "
            f"--cascade=foreground, then rerun"
        )


def _adopt(batch: Any, manifest: dict[str, Any]) -> None:
    """Raise JobFailed unless the existing Job named like ``manifest`` is the same run's Job for
    the same node: waiting on someone else's Job would report a node maintained that was not."""
    meta = manifest["metadata"]
    namespace, name = meta["namespace"], meta["name"]
    node, run_id = meta["annotations"][NODE_ANNOTATION], meta["annotations"][RUN_ANNOTATION]
    found = retrying(lambda: batch.read_namespaced_job(name, namespace), f"read job {name}")
    whose = foreign_job(found.metadata.labels, found.metadata.annotations, node, run_id)
    if whose is not None:
        raise JobFailed(
            f"job {namespace}/{name} already exists and is not run {run_id}'s Job for node "
            f"{node}: {whose}; the action was not run on {node}. Find out who made that Job "
            f"(kubectl -n {namespace} describe job {name}), delete it if it is stale, and rerun"
        )


def _verdict(job: object) -> str | None:
    status = getattr(job, "status", None)
    meta = getattr(job, "metadata", None)
    ref = f"{meta.namespace}/{meta.name}" if meta else "job"
    for condition in (status.conditions or []) if status else []:
        if condition.status != "True":
            continue
        if condition.type == "Complete":
            return f"job {ref} completed"
        if condition.type == "Failed":
            raise JobFailed(f"job {ref} failed: {condition.reason}: {condition.message or ''}")
    return None
