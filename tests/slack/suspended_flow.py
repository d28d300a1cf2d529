"""A deployed flow whose gate suspends (the process exits while waiting), served by
``python -m tests.slack.suspended_flow`` for test_gate_suspend.py.

No ``from __future__ import annotations``: the runner loads this file by path and Prefect
must resolve the parameter annotations at run time."""

from datetime import timedelta

from prefect import flow

from runbooks.approvals.policy import ApproverPolicy
from tasks.approval_gate import approval_gate
from tasks.slack import post_outcome

DEPLOYMENT = "demo-suspended-change/suspend-demo"


@flow(name="demo-suspended-change", persist_result=True)
def suspended_change(approver_policy: ApproverPolicy, ttl_seconds: float = 120) -> str:
    approved = approval_gate(
        "rotate certificates (demo)",
        "rotate the kubelet serving certificates on 3 nodes",
        approver_policy,
        timeout=timedelta(seconds=ttl_seconds),
        requester="U0REQ",
        wait="suspend",
    )
    post_outcome(approved.thread, "certificates rotated")
    return f"rotated, approved by {','.join(approved.approvers)}"


if __name__ == "__main__":
    suspended_change.serve(name="suspend-demo", limit=2)
