"""Which upgrades are allowed: one minor at a time, never down, kubelets within skew after.

kubeadm: "you cannot skip MINOR versions when you upgrade"; the skew policy: kube-apiserver must
not skip minors "even in single-instance clusters", and a kubelet may be up to 3 minors older
than the API server (2 before 1.25), never newer. Sources: kubernetes.io "Version Skew Policy"
and "Upgrading kubeadm clusters" (see ../shared/notes/runbook-checklists.md section 2).
"""

from __future__ import annotations

from runbooks.upgrade.params import Version, parse_version
from runbooks.verify.versions import skew_problem

__all__ = ["Version", "kubelets_outside_skew", "parse_version", "step_refusal"]


def step_refusal(current: Version, target: Version) -> str | None:
    """Why the API server at ``current`` may not go to ``target`` (one line), or None.
    Allowed: the same target (a rerun), a later patch of the same minor, or exactly the next
    minor (any patch)."""
    if target == current:
        return None
    if target < current:
        return (
            f"{target} is older than the API server's {current}: a control-plane downgrade is "
            "not supported"
        )
    if target[0] != current[0]:
        return f"{target} changes the major version of {current}: not supported"
    step = target[1] - current[1]
    if step > 1:
        skipped = ", ".join(f"v{current[0]}.{m}" for m in range(current[1] + 1, target[1]))
        return (
            f"{current} -> {target} skips {step - 1} minor version(s) ({skipped}): upgrade one "
            f"minor at a time, first to v{current[0]}.{current[1] + 1}.x"
        )
    return None


def kubelets_outside_skew(target: Version, kubelets: dict[str, str]) -> dict[str, str]:
    """The nodes whose kubelet (node -> kubeletVersion) would break the skew policy once the
    API server runs ``target``, each with why. They must be upgraded before the control plane."""
    found: dict[str, str] = {}
    for node, kubelet in sorted(kubelets.items()):
        why = skew_problem(kubelet or "(none)", str(target))
        if why:
            found[node] = f"kubelet {kubelet or '(none)'} {why}"
    return found
