"""The `job` maintenance action: a Job pinned to the node from the project's template, watched
until it completes or fails."""

from __future__ import annotations

import re
import time

import yaml
from jinja2 import Environment, PackageLoader, StrictUndefined
from kubernetes import watch
from kubernetes.client.rest import ApiException

from runbooks.kube_target import KubeTarget
from runbooks.maintenance.durations import format_duration
from tasks.kube import client as kube
from tasks.kube.retry import INTERRUPT, TURN_SECONDS, retrying, watch_can_resume


class JobFailed(RuntimeError):
    pass


def job_name(node: str, run_id: str) -> str:
    """DNS-1123, at most 63 characters, unique per node and run."""
    base = re.sub(r"[^a-z0-9-]", "-", node.lower())[:40].strip("-")
    return f"maint-{base}-{re.sub(r'[^a-z0-9]', '', run_id.lower())[:8]}"


def render_job(
    node: str, run_id: str, namespace: str, image: str, command: list[str], timeout: float
) -> dict:
    env = Environment(
        loader=PackageLoader("runbooks", "templates"), undefined=StrictUndefined, autoescape=False
    )
    text = env.get_template("maintenance-job.yaml.j2").render(
        name=job_name(node, run_id),
        namespace=namespace,
        node=node,
        run_id=run_id,
        image=image,
        command=command,
        timeout_seconds=max(1, int(timeout)),
    )
    return dict(yaml.safe_load(text))


def run_job(target: KubeTarget, manifest: dict, timeout: float) -> str:
    """Create the Job (an existing one of the same name, from a crashed attempt, is reused) and
    wait for Complete; raise JobFailed on Failed or timeout. Returns a one-line summary."""
    batch = kube.batch(target)
    namespace = manifest["metadata"]["namespace"]
    name = manifest["metadata"]["name"]
    try:
        retrying(lambda: batch.create_namespaced_job(namespace, manifest), f"create job {name}")
    except ApiException as exc:
        if exc.status != 409:
            raise
    deadline = time.monotonic() + timeout
    while True:
        job = retrying(lambda: batch.read_namespaced_job(name, namespace), f"read job {name}")
        verdict = _verdict(job)
        if verdict is not None:
            return verdict
        if INTERRUPT.is_set():  # the Job runs on; a rerun finds it by name and waits again
            raise JobFailed(f"waiting for job {namespace}/{name} interrupted by the operator")
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
