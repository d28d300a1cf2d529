"""The preflight checks as pure decisions over what was read, and --skip-check."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from runbooks.backups.facts import BackupFacts, EtcdSnapshots, Policy, SnapshotFile
from runbooks.kit.checks import CheckReport, CheckResult, UnknownCheck
from runbooks.upgrade.preflight import (
    OwnSnapshot,
    PreflightFacts,
    accepted,
    apply_skips,
    check_skip_ids,
    preflight_checks,
)
from runbooks.upgrade.removals import Removal, ScanFinding
from runbooks.upgrade.versions import parse_version
from runbooks.verify.snapshot import ClusterSnapshot

NOW = dt.datetime(2026, 12, 2, 12, 0, tzinfo=dt.UTC)


def node(name: str, kubelet: str = "v1.35.4", ready: bool = True, **labels: str) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "labels": labels},
        "spec": {},
        "status": {
            "nodeInfo": {"kubeletVersion": kubelet},
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
        },
    }


def pod(name: str, on: str, kind: str = "ReplicaSet", **selector: str) -> dict[str, Any]:
    return {
        "metadata": {
            "name": name,
            "namespace": "shop",
            "uid": name,
            "labels": {"app": "api"},
            "ownerReferences": [{"kind": kind, "name": "api", "controller": True}],
        },
        "spec": {"nodeName": on, "nodeSelector": selector},
        "status": {"phase": "Running"},
    }


def pdb(name: str, allowed: int, expected: int = 2) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": "shop", "generation": 1},
        "spec": {"selector": {"matchLabels": {"app": "api"}}},
        "status": {
            "observedGeneration": 1,
            "disruptionsAllowed": allowed,
            "currentHealthy": expected,
            "desiredHealthy": expected - allowed,
            "expectedPods": expected,
        },
    }


def facts(**changes: Any) -> PreflightFacts:
    reads: dict[str, Any] = {
        "version": {"gitVersion": "v1.35.4"},
        "nodes": [node("n1"), node("n2")],
        "pods": [pod("api-1", "n1")],
        "poddisruptionbudgets": [pdb("api", 1)],
        "metrics": "",
        "scans": [],
    }
    reads.update(changes.pop("reads", {}))
    values: dict[str, Any] = {
        "target": parse_version("v1.36.3"),
        "snapshot": ClusterSnapshot(reads=reads, now=NOW),
        "own_snapshot": OwnSnapshot(how="local provider"),
        "now": NOW,
    }
    values.update(changes)
    return PreflightFacts(**values)


def run(check_id: str, f: PreflightFacts) -> CheckResult:
    spec = next(s for s in preflight_checks() if s.id == check_id)
    return spec.run(facts=f)


CRD = Removal(
    group="x.io", version="v1beta1", kind="Widget", resource="widgets", removed_in=(1, 36)
)
METRIC = (
    'apiserver_requested_deprecated_apis{group="batch",removed_release="1.25",'
    'resource="cronjobs",subresource="",version="v1beta1"} 1'
)
LATER = (
    'apiserver_requested_deprecated_apis{group="",removed_release="",'
    'resource="endpoints",subresource="",version="v1"} 1'
)


def snapshot_file(written: dt.datetime) -> SnapshotFile:
    return SnapshotFile(path="/snap/etcd.db", modified=written, size=10)


def backups(written: dt.datetime) -> BackupFacts:
    return BackupFacts(
        now=NOW,
        policy=Policy(rpo=dt.timedelta(hours=24)),
        etcd=EtcdSnapshots(directory="/snap", files=[snapshot_file(written)]),
    )


# (check id, facts, expected status, a phrase the evidence must contain)
CASES = [
    ("upgrade.version-step", facts(), "pass", "v1.35.4 -> v1.36.3: one minor"),
    ("upgrade.version-step", facts(target=parse_version("v1.37.0")), "fail", "skips 1 minor"),
    ("upgrade.version-step", facts(target=parse_version("v1.34.0")), "fail", "downgrade"),
    ("upgrade.kubelet-skew", facts(), "pass", "2 kubelets (v1.35.4 x2)"),
    (
        "upgrade.kubelet-skew",
        facts(reads={"nodes": [node("n1"), node("old-7", "v1.32.0")]}),
        "fail",
        "outside the skew policy at v1.36.3: old-7",
    ),
    ("upgrade.removed-apis", facts(), "pass", "is still served"),
    (
        "upgrade.removed-apis",
        facts(
            reads={"scans": [ScanFinding(removal=CRD, objects=["shop/w (by kubectl)"], listed=1)]}
        ),
        "fail",
        "x.io/v1beta1 Widget (removed in v1.36): 1 of 1 object(s) written through it: shop/w",
    ),
    (
        "upgrade.removed-apis",
        facts(reads={"scans": [ScanFinding(removal=CRD, listed=4)]}),
        "pass",
        "scanned x.io/v1beta1 widgets",
    ),
    (
        "upgrade.removed-apis",
        facts(reads={"scans": [ScanFinding(removal=CRD, error="HTTP 403")]}),
        "error",
        "could not list: HTTP 403",
    ),
    ("upgrade.deprecated-apis-in-use", facts(), "pass", "counts only since"),
    (
        "upgrade.deprecated-apis-in-use",
        facts(reads={"metrics": METRIC}),
        "fail",
        "requested: batch/v1beta1 cronjobs (removed in v1.25)",
    ),
    (
        "upgrade.deprecated-apis-in-use",
        facts(reads={"metrics": LATER}),
        "pass",
        "deprecated, still served by v1.36.3: v1 endpoints (deprecated)",
    ),
    ("upgrade.budgets", facts(), "pass", "1 budget(s)"),
    (
        "upgrade.budgets",
        facts(reads={"poddisruptionbudgets": [pdb("api", 0)]}),
        "fail",
        "PodDisruptionBudget shop/api (0 disruptions allowed, 2/2 healthy, needs 2)",
    ),
    ("upgrade.budgets", facts(reads={"poddisruptionbudgets": [pdb("idle", 0, 0)]}), "pass", ""),
    ("upgrade.room", facts(), "pass", "2 node(s) in batches of 1"),
    (
        "upgrade.room",
        facts(reads={"pods": [pod("api-1", "n1", disk="ssd")]}),
        "fail",
        "batch 1 (n1) would leave 1 pod(s) with nowhere to go (shop/api-1)",
    ),
    (
        "upgrade.room",
        facts(max_unavailable="2"),
        "fail",
        "batch 1 (n1, n2)",
    ),
    ("upgrade.room", facts(reads={"pods": [pod("ds-1", "n1", kind="DaemonSet")]}), "pass", ""),
    ("upgrade.nodes-ready", facts(), "pass", "2 node(s) Ready"),
    (
        "upgrade.nodes-ready",
        facts(reads={"nodes": [node("n1"), node("n2", ready=False)]}),
        "fail",
        "1 of 2 node(s) not Ready: n2",
    ),
    ("upgrade.backup", facts(), "pass", "right before the control-plane step"),
    (
        "upgrade.backup",
        facts(own_snapshot=OwnSnapshot(how="local", error="disk full")),
        "fail",
        "failed: disk full",
    ),
    (
        "upgrade.backup",
        facts(own_snapshot=OwnSnapshot(how="local", taken=snapshot_file(NOW))),
        "pass",
        "taken by this run",
    ),
    ("upgrade.backup", facts(own_snapshot=None), "fail", "no backup source given"),
    (
        "upgrade.backup",
        facts(own_snapshot=OwnSnapshot(how="local", taken=snapshot_file(NOW - dt.timedelta(2)))),
        "fail",
        "etcd snapshot /snap/etcd.db taken by this run 48h ago, older than the RPO 24h",
    ),
    (
        "upgrade.backup",
        facts(own_snapshot=None, backups=backups(NOW - dt.timedelta(hours=2))),
        "pass",
        "etcd.snapshot.fresh: pass",
    ),
    (
        "upgrade.backup",
        facts(own_snapshot=None, backups=backups(NOW - dt.timedelta(days=3))),
        "fail",
        "written 72h ago, older than the RPO 24h",
    ),
]


@pytest.mark.parametrize(("check_id", "f", "status", "phrase"), CASES)
def test_preflight_check_decides_from_what_was_read(
    check_id: str, f: PreflightFacts, status: str, phrase: str
) -> None:
    result = run(check_id, f)
    assert (result.id, result.status) == (check_id, status), result.evidence
    assert phrase in "\n".join(result.evidence)
    assert bool(result.remediation) == (status in ("fail", "warn", "error"))


def test_a_read_that_failed_makes_its_checks_unknown_not_passing() -> None:
    f = facts()
    f.snapshot.failures["nodes"] = "HTTP 403: forbidden"
    del f.snapshot.reads["nodes"]
    with pytest.raises(Exception, match="could not read nodes: HTTP 403"):
        run("upgrade.nodes-ready", f)


def test_the_preflight_lists_every_check_the_issue_names_once() -> None:
    assert [s.id for s in preflight_checks()] == [
        "upgrade.version-step",
        "upgrade.kubelet-skew",
        "upgrade.removed-apis",
        "upgrade.deprecated-apis-in-use",
        "upgrade.budgets",
        "upgrade.room",
        "upgrade.nodes-ready",
        "upgrade.verify",
        "upgrade.backup",
    ]
    assert all(s.severity == "blocker" for s in preflight_checks())


def _report() -> CheckReport:
    return CheckReport(
        runbook="cluster-upgrade",
        checks=[
            CheckResult(id="upgrade.budgets", title="b", severity="blocker", status="fail",
                        evidence=["PodDisruptionBudget shop/api (0 disruptions allowed)"]),
            CheckResult(id="upgrade.room", title="r", severity="blocker", status="pass"),
            CheckResult(id="upgrade.backup", title="k", severity="blocker", status="error",
                        evidence=["could not read"]),
        ],
    )  # fmt: skip


@pytest.mark.parametrize(
    ("skip", "statuses", "report_status"),
    [
        ([], ["fail", "pass", "error"], "fail"),
        (["upgrade.budgets"], ["skip", "pass", "error"], "fail"),
        (["upgrade.budgets", "upgrade.backup"], ["skip", "pass", "skip"], "pass"),
        (["upgrade.room"], ["fail", "pass", "error"], "fail"),  # a pass stays a pass
    ],
)
def test_skip_check_accepts_failing_checks_knowingly(
    skip: list[str], statuses: list[str], report_status: str
) -> None:
    report = apply_skips(_report(), skip)
    assert [c.status for c in report.checks] == statuses
    assert report.status == report_status
    assert accepted(report) == [i for i in ("upgrade.budgets", "upgrade.backup") if i in skip]


def test_an_accepted_check_keeps_what_it_found() -> None:
    budgets = apply_skips(_report(), ["upgrade.budgets"]).checks[0]
    assert budgets.evidence == [
        "accepted by --skip-check (was fail)",
        "PodDisruptionBudget shop/api (0 disruptions allowed)",
    ]


@pytest.mark.parametrize("bad", ["upgrade.budget", "nodes.ready", "budgets"])
def test_unknown_skip_ids_are_refused_naming_the_known(bad: str) -> None:
    with pytest.raises(UnknownCheck, match=f"unknown check id {bad} .*upgrade.version-step"):
        check_skip_ids(["upgrade.room", bad])
    with pytest.raises(UnknownCheck):
        apply_skips(_report(), [bad])
    assert isinstance(UnknownCheck("x"), ValueError)  # the CLI's exit 2
