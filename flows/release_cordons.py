"""Give back nodes the engine left cordoned (a halted or interrupted run): the safe
`kubectl uncordon`, which lifts only the engine's own cordons and clears their marks.

    for node in nodes:
        ours? -> uncordon, remove the mark
        schedulable with our mark (someone ran kubectl uncordon) -> remove the mark
        cordoned by someone else -> leave it, say who

Holds the maintenance Lease while it works, so it never lifts the cordon of a run in progress.
"""

from __future__ import annotations

import getpass
import os
import socket
import uuid

from runbooks.maintenance.facts import NodeInfo
from runbooks.maintenance.ownership import foreign_cordon, release_action
from runbooks.maintenance.release import NodeRelease, ReleaseParams, ReleaseReport
from tasks.audit import audit_context
from tasks.kube import nodes
from tasks.kube.lease import MaintenanceLease

RUNBOOK = "release-cordons"


def _holder(release_id: str) -> str:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = f"uid{os.getuid()}"
    return f"{RUNBOOK} run {release_id} ({user}@{socket.gethostname()}, pid {os.getpid()})"


def _detail(action: str, before: NodeInfo, dry_run: bool) -> str:
    would = "would be " if dry_run else ""
    if action == "uncordon":
        return f"{would}uncordoned (cordoned by run {before.cordoned_by})"
    if action == "clear-mark":
        return f"schedulable; the stale mark of run {before.cordoned_by} {would or 'was '}cleared"
    if action == "foreign":
        return f"left cordoned: {foreign_cordon(before)}"
    return "schedulable, not cordoned by this engine: nothing to give back"


def release_cordons(params: ReleaseParams) -> ReleaseReport:
    """Release the requested nodes; raises NodeSelectionError for unknown nodes (user error)
    and LeaseHeld while a maintenance run holds the cluster (nothing changed)."""
    release_id = f"release-{uuid.uuid4().hex[:12]}"
    target = params.target
    everything = nodes.list_nodes(target)
    names = nodes.find_nodes(target, [n.name for n in everything], params.nodes, params.selector)
    if params.all_marked:
        names += [n.name for n in everything if n.cordoned_by and n.name not in names]
    infos = nodes.pick(everything, names)
    report = ReleaseReport(release_id=release_id, dry_run=params.dry_run)
    if params.dry_run:
        for info in infos:
            action = release_action(info)
            detail = _detail(action, info, dry_run=True)
            report.nodes.append(NodeRelease(node=info.name, action=action, detail=detail))
        return report
    lease = MaintenanceLease(target, params.lease, _holder(release_id))
    with audit_context(RUNBOOK, flow_run_id=release_id), lease.held():
        for info in infos:
            # read again under the lease: a run that held it may have changed the node
            action, seen = nodes.release(target, info.name)
            detail = _detail(action, seen, dry_run=False)
            report.nodes.append(NodeRelease(node=info.name, action=action, detail=detail))
    return report
