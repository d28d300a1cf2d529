"""Everything the upgrade preflight reads: one request per resource type, concurrently.

The provision checks' reads (version, nodes, ...) come from ``tasks.kube.cluster_reads`` (the
same snapshot ``runbook verify`` reads); then Pods, PodDisruptionBudgets, the API server's
/metrics and its served group/versions at once; then one LIST per removed group/version the
server still serves; then the backup sources. Each read is a task run under Prefect. A read
that fails is kept as its reason: only the checks that need it report ``error``.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from typing import Any

from kubernetes import client
from kubernetes.client.rest import ApiException
from prefect import task
from prefect.cache_policies import NO_CACHE

from runbooks.backups.params import BackupCheckParams
from runbooks.kube_target import KubeTarget
from runbooks.upgrade.preflight import VERIFY_CHECKS, OwnSnapshot, PreflightFacts
from runbooks.upgrade.removals import REMOVALS, Removal, ScanFinding, removed_by, scan
from runbooks.upgrade.versions import Version, parse_version
from runbooks.verify.checks import reads_for
from runbooks.verify.snapshot import ClusterSnapshot
from tasks.backup_reads import read_backups
from tasks.kube.client import KubeConfigError, KubeUnreachable, api_client
from tasks.kube.cluster_reads import read_cluster
from tasks.kube.retry import describe_error, retrying
from tasks.steps import Call, StepRunner

PAGE = 500


def _get(api: client.ApiClient, path: str, query: list[tuple[str, Any]] | None = None) -> Any:
    response = api.call_api(
        path,
        "GET",
        query_params=query or [],
        auth_settings=["BearerToken"],
        _preload_content=False,
    )
    return response[0] if isinstance(response, tuple) else response


def _list(api: client.ApiClient, path: str) -> list[dict[str, Any]]:
    """Every item of a LIST, in pages of PAGE (one logical LIST)."""
    items: list[dict[str, Any]] = []
    token = ""
    while True:
        query: list[tuple[str, Any]] = [("limit", PAGE)]
        if token:
            query.append(("continue", token))
        body = json.loads(_get(api, path, query).data)
        items += body.get("items") or []
        token = (body.get("metadata") or {}).get("continue") or ""
        if not token:
            return items


def _served(api: client.ApiClient) -> list[str]:
    """The group/versions the API server serves (GET /apis, and the core group's /api)."""
    groups = json.loads(_get(api, "/apis").data).get("groups") or []
    served = [v["groupVersion"] for g in groups for v in g.get("versions") or []]
    return served + list(json.loads(_get(api, "/api").data).get("versions") or [])


READERS: dict[str, Callable[[client.ApiClient], Any]] = {
    "pods": lambda api: _list(api, "/api/v1/pods"),
    "poddisruptionbudgets": lambda api: _list(api, "/apis/policy/v1/poddisruptionbudgets"),
    "metrics": lambda api: _get(api, "/metrics").data.decode(),
    "served": _served,
}


@task(task_run_name="read {what}", cache_policy=NO_CACHE)
def read(what: str, target: KubeTarget) -> Any:
    """One resource type (or /metrics, or discovery), one request (retried when transient)."""
    api = api_client(target)
    return retrying(lambda: READERS[what](api), f"read {what}", attempts=3)


def _path(removal: Removal) -> str:
    base = f"/apis/{removal.group}" if removal.group else "/api"
    return f"{base}/{removal.version}/{removal.resource}"


@task(task_run_name="scan {key}", cache_policy=NO_CACHE)
def scan_removed(key: str, removal: Removal, target: KubeTarget) -> ScanFinding | None:
    """One LIST through a removed group/version; None when the server does not serve this
    resource there (404)."""
    api = api_client(target)
    try:
        items = retrying(lambda: _list(api, _path(removal)), f"list {key}", attempts=3)
    except ApiException as exc:
        if exc.status == 404:
            return None
        return ScanFinding(removal=removal, error=describe_error(exc))
    return scan(removal, items)


def _merge(snapshot: ClusterSnapshot, raw: dict[str, Any]) -> None:
    for name, value in raw.items():
        if isinstance(value, KubeUnreachable | KubeConfigError):
            raise value  # the environment, not a check: one line for the whole run
        if isinstance(value, BaseException):
            snapshot.failures[name] = describe_error(value)
        else:
            snapshot.reads[name] = value


def read_preflight_inputs(
    runner: StepRunner,
    target: KubeTarget,
    to: Version | str,
    *,
    selector: str | None = None,
    max_unavailable: str = "1",
    rpo: dt.timedelta = dt.timedelta(hours=24),
    backups: BackupCheckParams | None = None,
    own_snapshot: OwnSnapshot | None = None,
    removals: tuple[Removal, ...] = REMOVALS,
) -> dict[str, Any]:
    """The inputs of ``preflight_checks()`` for ``run_checks``: ``{"facts": PreflightFacts}``.

    ``to``: the target version; ``selector``/``max_unavailable``: the nodes the upgrade rolls
    and how many at once (the room check); ``rpo``: how fresh a backup must be; ``backups``:
    the sources backup-check would read (their policy's RPO is replaced by ``rpo``), None for
    none; ``own_snapshot``: the etcd snapshot the runbook takes itself (planned, or its
    outcome), None when the provider cannot take one; ``removals``: the table of removed
    APIs (tests inject one). KubeUnreachable/KubeConfigError end the run (one line)."""
    version = to if isinstance(to, Version) else parse_version(to)
    needed = reads_for(VERIFY_CHECKS) | {"version", "nodes"}
    snapshot = read_cluster(runner, target, needed, None)
    _merge(snapshot, runner.run_all({n: (read, {"what": n, "target": target}) for n in READERS}))
    served = set(snapshot.reads.get("served") or [])
    calls: dict[str, Call] = {
        f"{r.group_version}/{r.resource}": (
            scan_removed,
            {"key": f"{r.group_version}/{r.resource}", "removal": r, "target": target},
        )
        for r in removed_by(version.minor, removals)
        if r.group_version in served
    }
    scans: list[ScanFinding] = []
    for key, value in runner.run_all(calls).items():
        if isinstance(value, KubeUnreachable | KubeConfigError):
            raise value
        if isinstance(value, BaseException):
            removal = calls[key][1]["removal"]
            scans.append(ScanFinding(removal=removal, error=describe_error(value)))
        elif value is not None:
            scans.append(value)
    if "served" in snapshot.failures:
        snapshot.failures["scans"] = f"discovery failed: {snapshot.failures['served']}"
    else:
        snapshot.reads["scans"] = scans
    backup_facts = None
    if backups is not None:
        policy = backups.policy.model_copy(update={"rpo": rpo})
        backup_facts = read_backups(
            runner, backups.model_copy(update={"policy": policy, "target": target})
        )
    facts = PreflightFacts(
        target=version,
        snapshot=snapshot,
        selector=selector,
        max_unavailable=max_unavailable,
        removals=removals,
        backups=backup_facts,
        own_snapshot=own_snapshot,
        rpo=rpo,
    )
    return {"facts": facts}
