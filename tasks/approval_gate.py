"""The approval gate any flow calls before a risky step.

It records a pending approval, posts it to Slack (Approve / Reject, the plan and its digest),
and waits with Prefect pause (or suspend, for a deployed flow that may wait hours). When the
run resumes it re-reads the approval row and goes on only if the row says approved, for this
run and this plan digest. Rejection, expiry or Slack being down stop the runbook with the
reason. A resume from anywhere else (the Prefect UI's form, the API) is ignored and the gate
waits again until the time limit.

    approval = approval_gate("drain worker-3 (prod-eu1)", plan.to_markdown(),
                             policy, timeout=timedelta(minutes=30), plan_digest=plan.digest())
    post_progress(approval.thread, "cordoned worker-3")
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Literal

from prefect import get_run_logger
from prefect.artifacts import create_markdown_artifact
from prefect.exceptions import FlowPauseTimeout, PausedRun
from prefect.flow_runs import pause_flow_run, suspend_flow_run
from prefect.runtime import flow_run
from slack_sdk.errors import SlackApiError

from runbooks.approvals import trail
from runbooks.approvals.blocks import render
from runbooks.approvals.config import load_slack_settings, require
from runbooks.approvals.policy import ApprovalPolicy, ApproverPolicy
from runbooks.approvals.record import (
    Approval,
    ApprovalState,
    new_approval_id,
    plan_digest,
    utcnow,
)
from runbooks.approvals.resume import ApprovalDecision
from runbooks.approvals.slack_client import web_client
from runbooks.approvals.store import ApprovalStore
from runbooks.approvals.view import expire, show
from runbooks.identity import cli_starter, from_created_by, requester_identities
from runbooks.kit.digest import sha256_hex
from tasks.slack.messages import SlackThread, post_message

if TYPE_CHECKING:
    from tasks.steps import StepRunner


class ApprovalRefused(RuntimeError):
    """The gate did not open; the message says why (who rejected, when it expired, …)."""

    def __init__(self, approval_id: str, reason: str) -> None:
        super().__init__(f"approval {approval_id}: {reason}")
        self.approval_id = approval_id
        self.reason = reason


class ApprovalRejected(ApprovalRefused):
    pass


class ApprovalExpired(ApprovalRefused):
    pass


class ApprovalUnavailable(ApprovalRefused):
    """Slack could not be reached when asking: the gate fails closed, never open."""


@dataclass(frozen=True)
class Approved:
    """The open gate: who approved, and the thread to post progress in."""

    approval: Approval

    @property
    def id(self) -> str:
        return self.approval.id

    @property
    def approvers(self) -> list[str]:
        return self.approval.approvers

    @property
    def thread(self) -> SlackThread | None:
        a = self.approval
        return SlackThread(a.slack_channel, a.slack_ts) if a.slack_channel and a.slack_ts else None


def approval_gate(
    title: str,
    plan: str,
    policy: ApproverPolicy,
    *,
    timeout: timedelta,
    plan_digest_value: str | None = None,
    requester: str | None = None,
    runbook: str | None = None,
    wait: Literal["pause", "suspend"] = "pause",
    poll_interval: int = 2,
    expiry_grace: timedelta = timedelta(seconds=60),
    store: ApprovalStore | None = None,
) -> Approved:
    """Ask for approval of ``plan`` and wait; returns only if approved for this run and plan.

    Call it from a flow body (Prefect pauses flows, not tasks). ``wait="suspend"`` releases the
    worker while waiting; it needs a deployment and re-runs the flow from the top on resume,
    where this call finds its own approval again instead of asking twice.

    At the time limit the listener expires the approval and resumes the run, so the run fails
    with the reason; Prefect's own pause timeout (``expiry_grace`` later) is the fallback when
    no listener runs, and then the run's state says only "never resumed" (Prefect's wording).
    """
    run_id = flow_run.id
    if not run_id:
        raise RuntimeError("approval_gate must be called inside a Prefect flow run")
    store = store or ApprovalStore()
    if isinstance(policy, ApprovalPolicy):  # the runbook parameter carries the timeout too
        policy = policy.approvers()
    # A name the flow's code passes adds to what the run knows of its starter, never replaces
    # it (a flow must not take it from its parameters: whoever starts the run sets those).
    starter = sorted(requester_identities(requester or "") | set(starter_identities()))
    policy = policy.model_copy(update={"requester_identities": starter})
    digest = plan_digest_value or plan_digest(plan)
    log = get_run_logger()

    approval = _request(
        store,
        title=title,
        plan=plan,
        digest=digest,
        policy=policy,
        timeout=timeout,
        requester=requester or describe_starter(starter),
        runbook=runbook or flow_run.flow_name or "adhoc",
        run_id=str(run_id),
        stable=wait == "suspend",
    )
    log.info("waiting for approval %s in Slack (expires %s)", approval.id, approval.expires_at)

    for attempt in range(100):
        current = store.get(approval.id)
        assert current is not None, f"approval {approval.id} vanished from the store"
        if current.state is not ApprovalState.PENDING:
            return _verdict(current, run_id=str(run_id), digest=digest)
        remaining = (current.expires_at - utcnow()).total_seconds()
        pause_timeout = math.ceil(remaining + expiry_grace.total_seconds())
        if remaining <= 0:
            return _expired(store, current, run_id=str(run_id), digest=digest)
        wait_for = ApprovalDecision.with_initial_data(
            description=_pause_description(current), approval_id=current.id
        )
        try:
            if wait == "suspend":
                suspend_flow_run(
                    wait_for_input=wait_for,
                    timeout=pause_timeout,
                    key=f"{current.pause_key}-{attempt}",
                )
            else:
                pause_flow_run(
                    wait_for_input=wait_for,
                    timeout=pause_timeout,
                    poll_interval=poll_interval,
                    key=f"{current.pause_key}-{attempt}",
                )
        except FlowPauseTimeout:
            current = store.get(approval.id) or current
            return _expired(store, current, run_id=str(run_id), digest=digest)
        except PausedRun:
            raise  # suspend: the process ends here; the re-run comes back through _request
        after = store.get(approval.id)
        if after is not None and after.state is ApprovalState.PENDING:
            trail.audit(
                trail.REFUSE,
                approval_id=approval.id,
                actor="prefect-resume",
                approval=after,
                outcome="refused",
                details={
                    "reason": "run resumed without a decision recorded by the listener; "
                    "input ignored, waiting again"
                },
            )
            log.warning("resumed without a recorded decision for %s; waiting again", approval.id)
    raise ApprovalRefused(approval.id, "resumed too often without a decision")


def approve_plan(
    runner: StepRunner,
    title: str,
    plan: str,
    policy: ApprovalPolicy,
    *,
    digest: str,
    runbook: str,
) -> Approved | str:
    """The gate as a runbook's procedure asks for it: the open gate, or the reason to stop
    before anything changed (refused, expired, Slack down, or no Prefect server to pause)."""
    if not runner.in_prefect:
        return "plan approval needs a Prefect server (set PREFECT_API_URL)"
    try:
        return approval_gate(
            title, plan, policy, timeout=policy.timeout, plan_digest_value=digest, runbook=runbook
        )
    except ApprovalRefused as exc:
        return f"not approved, nothing was changed: {exc}"


UNIDENTIFIED = "unidentified starter"


def starter_identities() -> list[str]:
    """Who started this run, as far as the run can know it (runbooks/identity.py): the CLI
    user when the CLI runs it in this process, and the flow run's ``created_by`` in Prefect.
    Empty when neither says: then nobody may approve (the requester cannot be excluded)."""
    found = list(cli_starter() or ())
    run_id = flow_run.id
    if run_id:
        try:
            from prefect.client.orchestration import get_client

            with get_client(sync_client=True) as client:
                found += from_created_by(client.read_flow_run(run_id).created_by)
        except Exception as exc:  # unknown is safe: it only makes approval stricter
            get_run_logger().warning("could not read who created run %s: %s", run_id, exc)
    return sorted(set(found))


def describe_starter(identities: list[str]) -> str:
    """The requester as shown on the approval (Slack, audit): its identities, or that there
    are none."""
    return ", ".join(identities)[:200] if identities else UNIDENTIFIED


def _request(
    store: ApprovalStore,
    *,
    title: str,
    plan: str,
    digest: str,
    policy: ApproverPolicy,
    timeout: timedelta,
    requester: str,
    runbook: str,
    run_id: str,
    stable: bool,
) -> Approval:
    """Insert the pending row, audit it, post it. With ``stable`` (suspend) the id derives from
    the run and plan, so the re-run after a resume finds the same row and posts nothing."""
    if stable:
        approval_id = "apr_" + sha256_hex(f"{run_id}:{title}:{digest}")[:20]
        existing = store.get(approval_id)
        if existing is not None:
            return existing
    else:
        approval_id = new_approval_id()
    settings = load_slack_settings()
    require(settings, "bot_token", "channel")
    now = utcnow()
    approval = Approval(
        id=approval_id,
        flow_run_id=run_id,
        runbook=runbook,
        title=title,
        plan=plan,
        plan_digest=digest,
        requester=requester,
        policy=policy,
        requested_at=now,
        expires_at=now + timeout,
    )
    store.create(approval)
    trail.audit(
        trail.REQUEST,
        approval_id=approval.id,
        actor=requester,
        approval=approval,
        outcome="pending",
        details={
            "title": title,
            "plan_digest": digest,
            "policy": policy.model_dump(mode="json"),
            "expires_at": approval.expires_at.isoformat(),
        },
    )
    text, blocks = render(approval)
    state = post_message(
        text,
        blocks=[b.to_dict() for b in blocks],
        channel=settings.channel,
        metadata={"event_type": "runbook_approval", "event_payload": {"approval_id": approval.id}},
        return_state=True,
    )
    if state.is_failed():
        _cancel(store, approval, f"could not post the request to Slack: {_slack_error(state)}")
    thread = state.result()
    store.set_message(approval.id, channel=thread.channel, ts=thread.ts)
    stored = store.get(approval.id)
    assert stored is not None
    if stored.state.is_final:  # clicked before we knew where the message was: show it now
        show(web_client(settings), stored)
    return stored


def _slack_error(state: object) -> str:
    try:
        state.result()  # type: ignore[attr-defined]
    except SlackApiError as exc:
        return str(exc.response.get("error"))
    except Exception as exc:  # connection refused, timeouts
        return type(exc).__name__
    return "unknown"


def _cancel(store: ApprovalStore, approval: Approval, reason: str) -> None:
    """Fail closed: nobody can approve what nobody was asked."""
    now = utcnow()
    cancelled = approval.model_copy(
        update={"state": ApprovalState.CANCELLED, "decided_at": now, "reason": reason}
    )
    store.compare_and_set(approval, cancelled, now=now)
    trail.audit(
        trail.CANCEL,
        approval_id=approval.id,
        actor="runbook",
        approval=cancelled,
        outcome="cancelled",
        details={"reason": reason},
    )
    raise ApprovalUnavailable(approval.id, reason)


def _expired(store: ApprovalStore, current: Approval, *, run_id: str, digest: str) -> Approved:
    """Time is up: expire the row (unless a decision just landed: then that decision counts)."""
    if current.state is ApprovalState.PENDING:
        expire(store, web_client(load_slack_settings()), current, now=utcnow(), actor="runbook")
    latest = store.get(current.id)
    assert latest is not None
    return _verdict(latest, run_id=run_id, digest=digest)


def _verdict(approval: Approval, *, run_id: str, digest: str) -> Approved:
    """The row decides. Approved counts only for this run and this exact plan."""
    _summary_artifact(approval)
    if approval.state is ApprovalState.APPROVED:
        if approval.flow_run_id != run_id:
            raise ApprovalRefused(approval.id, f"approval belongs to run {approval.flow_run_id}")
        if approval.plan_digest != digest:
            raise ApprovalRefused(approval.id, "the plan changed after it was approved")
        return Approved(approval)
    if approval.state is ApprovalState.REJECTED:
        at = approval.decided_at.isoformat() if approval.decided_at else "?"
        raise ApprovalRejected(approval.id, f"rejected by {approval.rejecter} at {at}")
    if approval.state is ApprovalState.EXPIRED:
        raise ApprovalExpired(
            approval.id, f"expired at {approval.expires_at.isoformat()}: nobody decided in time"
        )
    raise ApprovalRefused(approval.id, approval.reason or approval.state.value)


def _pause_description(approval: Approval) -> str:
    return (
        f"**Waiting for approval `{approval.id}` in Slack**: {approval.title}\n\n"
        f"Plan digest `{approval.plan_digest}`. Decide with the buttons in Slack. Resuming "
        "from here does not pass the gate: the run re-reads the approval record and waits again."
    )


def _summary_artifact(approval: Approval) -> None:
    """A summary on the run, for people reading Prefect: no tokens, only ids and decisions."""
    votes = "\n".join(
        f"| {v.user} | {'approve' if v.approve else 'reject'} | {v.at.isoformat()} |"
        for v in approval.votes
    )
    markdown = (
        f"## Approval {approval.id}: {approval.state.value}\n\n"
        f"{approval.title}\n\nPlan digest `{approval.plan_digest}`, requested by "
        f"{approval.requester} at {approval.requested_at.isoformat()}, "
        f"expires {approval.expires_at.isoformat()}.\n\n"
        "| Slack user | Decision | At |\n|---|---|---|\n" + votes
    )
    create_markdown_artifact(
        key=approval.pause_key, markdown=markdown, description=f"Approval {approval.id}"
    )


__all__ = [
    "ApprovalExpired",
    "ApprovalPolicy",
    "ApprovalRefused",
    "ApprovalRejected",
    "ApprovalUnavailable",
    "Approved",
    "ApproverPolicy",
    "approval_gate",
]
