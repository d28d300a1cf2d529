"""The upgrade preflight: every check an approver sees before anything changes.

Each check is a pure function of ``PreflightFacts`` (what ``tasks.upgrade_reads`` read, one
LIST per resource type) returning a ``CheckResult`` in the kit's model; ``preflight_checks()``
is the one list the flow runs through ``tasks.checks.run_checks``. A blocker that fails (or
cannot be evaluated) refuses the upgrade before approval is asked, unless the operator accepts
it knowingly with ``--skip-check ID``: ``apply_skips`` turns it into ``skip`` with the evidence
kept, so the approver and the audit trail see what was accepted.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from runbooks.backups.catalog import CHECKS as BACKUP_CHECKS
from runbooks.backups.facts import BackupFacts, SnapshotFile
from runbooks.backups.verdict import age
from runbooks.kit.checks import (
    PROBLEMS,
    CheckReport,
    CheckResult,
    CheckSpec,
    CheckStatus,
    Severity,
    UnknownCheck,
    errored,
)
from runbooks.kit.durations import format_duration
from runbooks.maintenance.batch_plan import plan_batches
from runbooks.maintenance.facts import PodInfo
from runbooks.maintenance.max_unavailable import resolve_max_unavailable
from runbooks.maintenance.room import find_no_room, needs_a_home
from runbooks.upgrade.objects import budget_info, kubelet_version, node_info, node_ready, pod_info
from runbooks.upgrade.removals import (
    GUIDE,
    METRIC,
    REMOVALS,
    Removal,
    ScanFinding,
    parse_deprecated_requests,
    removed_by,
)
from runbooks.upgrade.versions import Version, kubelets_outside_skew, parse_version, step_refusal
from runbooks.verify.checks import applicable
from runbooks.verify.selector import parse_selector, selects
from runbooks.verify.snapshot import ClusterSnapshot

EVIDENCE_LIMIT = 10
SKIPPED = "accepted by --skip-check"
SKEW_POLICY = "https://kubernetes.io/releases/version-skew-policy/"
KUBEADM = "https://kubernetes.io/docs/tasks/administer-cluster/kubeadm/kubeadm-upgrade/"
# What the verify check runs on: the declaration-free provision checks.
VERIFY_CHECKS = applicable(with_baseline=False)
# The backup checks that answer "is there a backup newer than the RPO?", one per source.
FRESHNESS = ("etcd.snapshot.fresh", "velero.backup.fresh", "cronjob.fresh")


class OwnSnapshot(BaseModel):
    """The etcd snapshot the runbook takes itself right before the control-plane step (as
    kubeadm does): planned (``taken`` None) when the preflight runs before it, or its outcome."""

    how: str  # "local provider: etcdctl snapshot save", "snapshot-command 'ssh cp1 ...'"
    taken: SnapshotFile | None = None
    error: str | None = None


@dataclass
class PreflightFacts:
    """Everything the preflight decides from. ``snapshot.reads`` holds the raw reads (version,
    nodes, pods, poddisruptionbudgets, metrics, scans and the provision checks' reads); a read
    that failed is in ``snapshot.failures`` and only the checks that need it say ``error``."""

    target: Version
    snapshot: ClusterSnapshot
    selector: str | None = None
    max_unavailable: str = "1"
    removals: tuple[Removal, ...] = REMOVALS
    backups: BackupFacts | None = None
    own_snapshot: OwnSnapshot | None = None
    rpo: dt.timedelta = dt.timedelta(hours=24)
    now: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))


@dataclass(frozen=True)
class Finding:
    status: CheckStatus
    evidence: list[str]
    remediation: str = ""


Decide = Callable[[PreflightFacts], Finding]
_SPECS: list[CheckSpec] = []


def _check(
    check_id: str, title: str, severity: Severity, reference: str
) -> Callable[[Decide], Decide]:
    def register(decide: Decide) -> Decide:
        def run(facts: PreflightFacts, **_: Any) -> CheckResult:
            found = decide(facts)
            return CheckResult(
                id=check_id,
                title=title,
                severity=severity,
                status=found.status,
                evidence=found.evidence,
                remediation=found.remediation if found.status in PROBLEMS else "",
                reference=reference,
            )

        _SPECS.append(CheckSpec(check_id, title, severity, run, reference))
        return decide

    return register


def capped(lines: list[str], limit: int = EVIDENCE_LIMIT) -> list[str]:
    if len(lines) <= limit:
        return lines
    return [*lines[:limit], f"... and {len(lines) - limit} more"]


def _name(obj: dict[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("name", "?"))


def _server(facts: PreflightFacts) -> Version:
    return parse_version(facts.snapshot.get("version")["gitVersion"])


# --- versions -------------------------------------------------------------------------------


@_check(
    "upgrade.version-step",
    "The target is a patch or exactly one minor above the API server",
    "blocker",
    KUBEADM,
)
def version_step(facts: PreflightFacts) -> Finding:
    server = _server(facts)
    why = step_refusal(server, facts.target)
    if why:
        return Finding(
            "fail",
            [why],
            f"choose a target of v{server[0]}.{server[1]}.x or v{server[0]}."
            f"{server[1] + 1}.x; for a later minor, upgrade one minor at a time",
        )
    kind = (
        "a rerun at the same version"
        if server == facts.target
        else ("a patch" if server.minor == facts.target.minor else "one minor")
    )
    return Finding("pass", [f"API server {server} -> {facts.target}: {kind}"])


@_check(
    "upgrade.kubelet-skew",
    "Every kubelet within the skew policy once the API server runs the target",
    "blocker",
    SKEW_POLICY,
)
def kubelet_skew(facts: PreflightFacts) -> Finding:
    nodes = facts.snapshot.get("nodes")
    kubelets = {_name(n): kubelet_version(n) for n in nodes}
    outside = kubelets_outside_skew(facts.target, kubelets)
    seen: dict[str, int] = {}
    for version in kubelets.values():
        seen[version or "(none)"] = seen.get(version or "(none)", 0) + 1
    summary = f"{len(nodes)} kubelets ({', '.join(f'{v} x{n}' for v, n in sorted(seen.items()))})"
    if outside:
        return Finding(
            "fail",
            [
                f"{len(outside)} node(s) would be outside the skew policy at {facts.target}: "
                + ", ".join(sorted(outside)),
                *capped([f"node {n}: {why}" for n, why in outside.items()]),
            ],
            "upgrade these nodes' kubelets first (to within 3 minors of the target, never newer), "
            "then upgrade the control plane",
        )
    return Finding("pass", [f"{summary}: within 3 minors of {facts.target}, none newer"])


# --- APIs -----------------------------------------------------------------------------------


@_check(
    "upgrade.removed-apis",
    "No stored object written through an API the target removes",
    "blocker",
    GUIDE,
)
def removed_apis(facts: PreflightFacts) -> Finding:
    scans: list[ScanFinding] = facts.snapshot.get("scans")
    removed = removed_by(facts.target.minor, facts.removals)
    if not scans:
        return Finding(
            "pass",
            [
                f"none of the {len(removed)} group/version resources removed by "
                f"{facts.target} (table up to {_newest(facts.removals)}) is still served"
            ],
        )
    errors = [f"{s.removal.describe()}: could not list: {s.error}" for s in scans if s.error]
    used = [s for s in scans if s.objects]
    lines = [
        f"{s.removal.describe()}: {len(s.objects)} of {s.listed} object(s) written through it: "
        + ", ".join(capped(s.objects, 5))
        for s in used
    ]
    scanned = "; ".join(f"{s.removal.group_version} {s.removal.resource}" for s in scans)
    if used:
        return Finding(
            "fail",
            [*capped(lines + errors), f"scanned (served, removed by {facts.target}): {scanned}"],
            "re-apply these objects (and change the manifests, charts and clients that write "
            "them) through the version named; then run the preflight again",
        )
    if errors:
        return Finding("error", errors, "fix the read above and run the preflight again")
    return Finding(
        "pass",
        [f"scanned {scanned}: no object written through a version {facts.target} removes"],
    )


def _newest(table: Iterable[Removal]) -> str:
    releases = [r.removed_in for r in table]
    return f"v{max(releases)[0]}.{max(releases)[1]}" if releases else "(empty)"


@_check(
    "upgrade.deprecated-apis-in-use",
    "No client requested an API the target removes (apiserver_requested_deprecated_apis)",
    "blocker",
    GUIDE,
)
def deprecated_in_use(facts: PreflightFacts) -> Finding:
    requests = parse_deprecated_requests(facts.snapshot.get("metrics"))
    caveat = (
        f"caveat: {METRIC} counts only since this API server started; a quiet metric shortly "
        "after a restart says little about clients that run rarely"
    )
    removed = [
        r for r in requests if r.removed_in is not None and r.removed_in <= facts.target.minor
    ]
    later = [r for r in requests if r not in removed]
    if removed:
        return Finding(
            "fail",
            [
                *capped([f"requested: {r.describe()}" for r in removed]),
                *capped(
                    [f"deprecated, still served by {facts.target}: {r.describe()}" for r in later],
                    3,
                ),
                caveat,
            ],
            "find the clients (audit log annotation k8s.io/deprecated, or the API server's "
            "warnings) and move them to the replacement version before upgrading",
        )
    if later:  # still served by the target: not this upgrade's risk (v1 Endpoints is on every
        # cluster since 1.33, requested by the control plane itself), so shown, not warned
        return Finding(
            "pass",
            [
                *capped(
                    [f"deprecated, still served by {facts.target}: {r.describe()}" for r in later]
                ),
                caveat,
            ],
        )
    return Finding("pass", ["no deprecated API requested", caveat])


# --- workloads ------------------------------------------------------------------------------


@_check(
    "upgrade.budgets",
    "No PodDisruptionBudget allows 0 disruptions now",
    "blocker",
    "https://kubernetes.io/docs/tasks/run-application/configure-pdb/",
)
def budgets(facts: PreflightFacts) -> Finding:
    found = [budget_info(p) for p in facts.snapshot.get("poddisruptionbudgets")]
    blocking = [b for b in found if b.observed and b.expected_pods and not b.disruptions_allowed]
    if blocking:
        return Finding(
            "fail",
            capped([b.describe() for b in blocking]),
            "every drain of a node with these pods would wait until its timeout: scale the "
            "workloads up, relax the budgets, or accept with --skip-check upgrade.budgets",
        )
    return Finding("pass", [f"{len(found)} budget(s), each allowing at least 1 disruption"])


def _selected(facts: PreflightFacts, nodes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    if not facts.selector:
        return nodes
    wanted = parse_selector(facts.selector)
    return [n for n in nodes if selects(wanted, (n.get("metadata") or {}).get("labels"))]


@_check(
    "upgrade.room",
    "The pods of max-unavailable nodes have somewhere else to go",
    "blocker",
    "runbooks/maintenance/room.py",
)
def room(facts: PreflightFacts) -> Finding:
    nodes = facts.snapshot.get("nodes")
    infos = [node_info(n) for n in nodes]
    order = sorted(_name(n) for n in _selected(facts, nodes))
    limit = resolve_max_unavailable(facts.max_unavailable, len(order))
    batches = plan_batches(order, {i.name for i in infos if i.out}, limit)
    by_node: dict[str, list[PodInfo]] = {}
    for raw in facts.snapshot.get("pods"):
        pod = pod_info(raw)
        if pod.node and not pod.completed and not pod.terminating and needs_a_home(pod):
            by_node.setdefault(pod.node, []).append(pod)
    no_room = find_no_room(batches, by_node, infos)
    moving = sum(len(by_node.get(n, [])) for n in order)
    if no_room:
        return Finding(
            "fail",
            capped([r.describe() for r in no_room]),
            "lower --max-unavailable, add nodes that can take these pods, or relax their "
            "nodeSelector",
        )
    return Finding(
        "pass",
        [
            f"{len(order)} node(s) in batches of {limit}: each of {moving} pod(s) that move has a "
            "Ready, schedulable node outside its batch"
        ],
    )


# --- the cluster ----------------------------------------------------------------------------


@_check(
    "upgrade.nodes-ready",
    "Every node Ready",
    "blocker",
    KUBEADM,
)
def nodes_ready(facts: PreflightFacts) -> Finding:
    nodes = facts.snapshot.get("nodes")
    not_ready = sorted(_name(n) for n in nodes if not node_ready(n))
    if not nodes:
        return Finding("fail", ["no nodes registered"], "join nodes before upgrading")
    if not_ready:
        return Finding(
            "fail",
            [f"{len(not_ready)} of {len(nodes)} node(s) not Ready: {', '.join(capped(not_ready))}"],
            "bring these nodes back (kubectl describe node) or remove them before upgrading",
        )
    return Finding("pass", [f"{len(nodes)} node(s) Ready"])


@_check(
    "upgrade.verify",
    "Provision verification passes",
    "blocker",
    "docs/runbooks/provision-verification.md",
)
def verify(facts: PreflightFacts) -> Finding:
    results = []
    for check in VERIFY_CHECKS:
        try:
            results.append(check.spec.run(snapshot=facts.snapshot))
        except Exception as exc:  # the verify runbook reports it as error; so do we
            results.append(errored(check.spec, exc))
    report = CheckReport(runbook="provision-verification", checks=results)
    lines = [
        f"{c.id}: {c.status}" + (f" ({c.evidence[0]})" if c.evidence else "")
        for c in report.problems
    ]
    status: CheckStatus = report.status
    return Finding(
        status,
        [report.summary_line(), *capped(lines)],
        "run `runbook verify` for the full report and fix its failing blockers",
    )


@_check(
    "upgrade.backup",
    "A backup newer than the RPO (or the runbook's own etcd snapshot)",
    "blocker",
    KUBEADM,
)
def backup(facts: PreflightFacts) -> Finding:
    own = facts.own_snapshot
    if own is not None and own.error:
        return Finding(
            "fail",
            [f"etcd snapshot ({own.how}) failed: {own.error}"],
            "fix the snapshot (disk space, etcd reachable) and run again",
        )
    if own is not None and own.taken is None:
        return Finding(
            "pass",
            [
                f"the runbook takes an etcd snapshot ({own.how}) right before the control-plane "
                "step; if it fails, the run halts before the control plane is touched"
            ],
        )
    rpo = format_duration(facts.rpo)
    earlier: list[str] = []
    if own is not None and own.taken is not None:
        taken, when = own.taken, age(facts.now, own.taken.modified)
        if facts.now - taken.modified <= facts.rpo:
            return Finding(
                "pass", [f"etcd snapshot {taken.path} taken by this run ({own.how}), {when}"]
            )
        earlier = [f"etcd snapshot {taken.path} taken by this run {when}, older than the RPO {rpo}"]
    if facts.backups is None:
        return Finding(
            "fail",
            earlier
            or [
                f"no backup source given and no etcd snapshot planned: nothing shows a backup "
                f"newer than {rpo}"
            ],
            "give the backup sources (etcd snapshot directory, Velero namespace, CronJob "
            "selector) or a provider that takes an etcd snapshot",
        )
    wanted = [s for s in BACKUP_CHECKS if s.id in FRESHNESS]
    results = [s.run(facts=facts.backups) for s in wanted]
    judged = [r for r in results if r.status != "skip"]
    lines = earlier + [
        f"{r.id}: {r.status}" + (f" ({r.evidence[0]})" if r.evidence else "") for r in judged
    ]
    if any(r.status == "pass" for r in judged):
        return Finding("pass", lines)
    return Finding(
        "fail",
        lines or [f"no backup source was read: nothing shows a backup newer than {rpo}"],
        f"take a backup now (etcdctl snapshot save, velero backup create) so one is newer "
        f"than the RPO {rpo}, then run again",
    )


# --- the list, and --skip-check ---------------------------------------------------------


def preflight_checks() -> list[CheckSpec]:
    """Every preflight check, in the order the report and the approval message list them;
    each ``run(facts=PreflightFacts)``. Run them with ``tasks.checks.run_checks``."""
    return list(_SPECS)


PREFLIGHT_IDS: tuple[str, ...] = tuple(s.id for s in _SPECS)


def check_skip_ids(skip_ids: Iterable[str]) -> list[str]:
    """The ids of ``--skip-check``, validated before anything is read: an unknown id is bad
    input (``UnknownCheck``, a ValueError: exit 2), naming the known ones."""
    ids = list(dict.fromkeys(skip_ids))
    unknown = [i for i in ids if i not in PREFLIGHT_IDS]
    if unknown:
        raise UnknownCheck(
            f"--skip-check: unknown check id {', '.join(unknown)} "
            f"(known: {', '.join(PREFLIGHT_IDS)})"
        )
    return ids


def apply_skips(report: CheckReport, skip_ids: Iterable[str]) -> CheckReport:
    """The report with each named check that found a problem accepted knowingly: status
    ``skip``, evidence starting "accepted by --skip-check (was fail)" followed by what it
    found, so the plan the approver signs and the audit trail show what was accepted. A named
    check that passed stays ``pass`` (nothing to accept). Unknown ids raise ``UnknownCheck``."""
    ids = set(check_skip_ids(skip_ids))
    known = {c.id for c in report.checks}
    missing = sorted(ids - known)
    if missing:
        raise UnknownCheck(f"--skip-check: {', '.join(missing)} did not run in this preflight")
    checks = []
    for check in report.checks:
        if check.id in ids and check.status in PROBLEMS:
            check = check.model_copy(
                update={
                    "status": "skip",
                    "evidence": [f"{SKIPPED} (was {check.status})", *check.evidence],
                }
            )
        checks.append(check)
    return CheckReport(runbook=report.runbook, checks=checks)


def accepted(report: CheckReport) -> list[str]:
    """The ids a report accepted by --skip-check (for the plan and the audit record)."""
    return [c.id for c in report.checks if c.evidence[:1] and c.evidence[0].startswith(SKIPPED)]
