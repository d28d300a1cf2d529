"""What happens when someone clicks Approve or Reject: the ordered checks, one atomic
transition, the resume, and the new view. Transport-neutral (HTTP and Socket Mode share it).

Order (notes/slack-approvals.md §5): the transport was verified by the caller; the click is for
our app and workspace; the approval exists and the click comes from its own message (else the
click is refused and counted, never audited: nothing ties it to a run); the approval is pending
and not expired; the user may approve (allow-list or user group members fetched now), is not
the requester and has not voted; then compare-and-set. Refusals from then on are audited under
the approval's run with the reason, and told to the clicker only.

A final decision is written with ``resume_after`` set: until the run has been resumed and the
resume audited, the row says so, and the sweep retries (Prefect down, audit append failed, the
listener died between the write and the resume).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from runbooks.approvals import trail
from runbooks.approvals.blocks import APPROVE_ACTION, REJECT_ACTION
from runbooks.approvals.interaction import read_interaction
from runbooks.approvals.policy import refusal
from runbooks.approvals.record import Approval, ApprovalState, utcnow, with_vote
from runbooks.approvals.refusals import RefusalCounter
from runbooks.approvals.resume import Resumed, resume_waiting_run
from runbooks.approvals.store import ApprovalStore
from runbooks.approvals.view import expire, show

log = logging.getLogger("runbooks.approvals")

Transport = Literal["http", "socket"]
_MAX_RACES = 5
# How long a decision is left to the thread that made it before a sweep may resume it: longer
# than resume_waiting_run's wait for the pause (15 s), so the two never resume at once.
HANDOFF = timedelta(seconds=60)


@dataclass(frozen=True)
class Install:
    """Our app and workspace: clicks carrying anything else are refused."""

    team_id: str
    app_id: str | None = None


@dataclass(frozen=True)
class Click:
    approval_id: str
    approve: bool
    user: str
    user_team: str | None
    team: str | None
    app_id: str | None
    channel: str | None
    message_ts: str | None
    action_ts: str | None
    transport: Transport


@dataclass(frozen=True)
class Outcome:
    """What the click did: ``decided`` (approved/rejected), ``counted`` (one of several
    approvals), or ``refused`` with the reason."""

    result: Literal["decided", "counted", "refused"]
    reason: str = ""
    state: ApprovalState | None = None
    resumed: Resumed | None = None


def parse_click(payload: dict[str, Any], transport: Transport) -> Click | None:
    """The click in a ``block_actions`` payload, or None if it is not one of our buttons.

    Raises ``MalformedPayload`` (one line) for a shape Slack does not send."""
    interaction = read_interaction(payload)
    if interaction is None:
        return None
    action = interaction.actions[0]
    if action.action_id not in (APPROVE_ACTION, REJECT_ACTION):
        return None
    return Click(
        approval_id=action.value or "",
        approve=action.action_id == APPROVE_ACTION,
        user=interaction.user.id,
        user_team=interaction.user.team_id,
        team=interaction.team.id if interaction.team else None,
        app_id=interaction.api_app_id,
        channel=interaction.channel_id,
        message_ts=interaction.container.message_ts if interaction.container else None,
        action_ts=action.action_ts,
        transport=transport,
    )


class ClickHandler:
    """Decides clicks. Safe to run in many threads and in several listeners at once."""

    def __init__(
        self,
        store: ApprovalStore,
        slack: WebClient,
        install: Install,
        *,
        clock: Callable[[], datetime] = utcnow,
        resume: Callable[[Approval], Resumed] = resume_waiting_run,
        refusals: RefusalCounter | None = None,
        retry_after: timedelta = timedelta(seconds=30),
    ) -> None:
        self.store = store
        self.slack = slack
        self.install = install
        self.clock = clock
        self.resume = resume
        self.refusals = refusals or RefusalCounter()
        self.retry_after = retry_after

    def handle(self, click: Click) -> Outcome:
        reason = self._foreign(click)
        if reason:
            return self._drop(click, "foreign_app", reason, tell=False)
        approval = self.store.get(click.approval_id)
        if approval is None:
            return self._drop(click, "unknown_approval", "unknown approval")
        if not self._from_its_message(click, approval):
            return self._drop(click, "wrong_message", "not the approval's own message")
        for _ in range(_MAX_RACES):
            if approval.state is not ApprovalState.PENDING:
                self.show(approval)  # the view may lag the row: bring it up to date
                return self._refuse(click, approval, f"already {approval.state.value}")
            now = self.clock()
            if approval.is_expired(now):
                self.expire(approval)
                return self._refuse(click, approval, "approval expired")
            reason = self._unauthorised(click, approval)
            if reason:
                return self._refuse(click, approval, reason)
            new = with_vote(approval, user=click.user, approve=click.approve, at=now)
            if new.state.is_final:
                new = new.model_copy(update={"resume_after": now + HANDOFF})
            if self.store.compare_and_set(approval, new, now=now):
                return self._after_vote(click, new)
            fresh = self.store.get(approval.id)  # someone else moved it first: look again
            assert fresh is not None
            approval = fresh
        return self._refuse(click, approval, "too many concurrent clicks; try again")

    # --- checks ----------------------------------------------------------------------------
    def _foreign(self, click: Click) -> str | None:
        if self.install.app_id and click.app_id != self.install.app_id:
            return f"click for another app ({click.app_id})"
        if click.team != self.install.team_id:
            return f"click from another workspace ({click.team})"
        if not click.user:
            return "click without a user"
        return None

    @staticmethod
    def _from_its_message(click: Click, approval: Approval) -> bool:
        """A real approval id counts only on the message the gate posted for it. Unknown where
        that is (a click in the instant between the post and storing its ts): allowed."""
        if not approval.slack_channel or not approval.slack_ts:
            return True
        return (click.channel, click.message_ts) == (approval.slack_channel, approval.slack_ts)

    def _unauthorised(self, click: Click, approval: Approval) -> str | None:
        if click.user_team and click.user_team != self.install.team_id:
            return f"user from another workspace ({click.user_team})"
        policy = approval.policy
        voted = [v.user for v in approval.votes]
        members: set[str] = set()
        if click.user not in policy.users and policy.usergroups:
            try:
                members = self._group_members(policy.usergroups)
            except SlackApiError as exc:  # fail closed: unknown membership is no membership
                return f"could not check user group membership ({exc.response.get('error')})"
        reason = refusal(
            policy,
            clicker=click.user,
            requester=approval.requester,
            group_members=members,
            already_voted=voted,
            approve=click.approve,
        )
        return reason or self._unfit_account(click.user)

    def _group_members(self, groups: list[str]) -> set[str]:
        """Members now, not when the request was posted: removals take effect at once."""
        members: set[str] = set()
        for group in groups:
            answer = self.slack.usergroups_users_list(usergroup=group, include_disabled=False)
            members.update(answer.get("users") or [])
        return members

    def _unfit_account(self, user: str) -> str | None:
        try:
            info = self.slack.users_info(user=user).get("user") or {}
        except SlackApiError as exc:
            return f"could not look up the user ({exc.response.get('error')})"
        if info.get("deleted"):
            return "account is deactivated"
        if info.get("is_bot"):
            return "bots cannot approve"
        if info.get("is_restricted") or info.get("is_ultra_restricted"):
            return "guest accounts cannot approve"
        if info.get("team_id") and info["team_id"] != self.install.team_id:
            return f"user from another workspace ({info['team_id']})"
        return None

    # --- effects ---------------------------------------------------------------------------
    def _after_vote(self, click: Click, approval: Approval) -> Outcome:
        final = approval.state.is_final
        outcome_name = (
            approval.state.value
            if final
            else (f"counted {len(approval.approvers)} of {approval.policy.min_approvals}")
        )
        resumed: Resumed | None = None
        try:
            trail.audit(
                trail.DECIDE,
                approval_id=approval.id,
                actor=click.user,
                approval=approval,
                outcome=outcome_name,
                details=self._details(click),
            )
        except Exception:
            if not final:
                raise
            self._retry_later(approval, "the decision's audit record could not be written")
        else:
            if final:
                resumed = self.carry(approval, transport=click.transport)
        if final:
            log.info(
                "approval %s %s by %s; run %s: %s",
                approval.id,
                approval.state.value,
                click.user,
                approval.flow_run_id,
                resumed or "resume pending, the sweep retries",
            )
        # re-read: the gate may have stored the message's ts after we first read the row
        self.show(self.store.get(approval.id) or approval)
        return Outcome("decided" if final else "counted", state=approval.state, resumed=resumed)

    def carry(self, approval: Approval, *, transport: str, retry: bool = False) -> Resumed | None:
        """Take a recorded decision to the waiting run, audit that, then clear ``resume_after``.
        Any failure leaves the row due, for the sweep to try again."""
        try:
            if retry:
                self._audit_decision_if_missing(approval)
            resumed = self.resume(approval)
            trail.audit(
                trail.RESUME,
                approval_id=approval.id,
                actor="runbook-listener",
                approval=approval,
                outcome=resumed,
                details={"transport": transport, "retry": retry},
            )
            self.store.resume_done(approval.id)
            return resumed
        except Exception as exc:
            self._retry_later(approval, f"{type(exc).__name__}: {exc}")
            return None

    def _retry_later(self, approval: Approval, why: str) -> None:
        at = self.clock() + self.retry_after
        log.warning(
            "approval %s is %s but run %s was not resumed (%s); retrying after %s",
            approval.id,
            approval.state.value,
            approval.flow_run_id,
            why.splitlines()[0][:300] if why else "unknown error",
            at.isoformat(timespec="seconds"),
        )
        try:
            self.store.retry_resume_at(approval.id, at)
        except Exception:  # the database too: the handoff lease runs out and a sweep retries
            log.exception("could not schedule the retry for approval %s", approval.id)

    def _audit_decision_if_missing(self, approval: Approval) -> None:
        """A retry after the decision's own record failed: write it now, marked recovered."""
        action = trail.EXPIRE if approval.state is ApprovalState.EXPIRED else trail.DECIDE
        if trail.recorded(action, approval.id, outcome=approval.state.value):
            return
        voter = approval.votes[-1].user if approval.votes else "runbook-listener"
        trail.audit(
            action,
            approval_id=approval.id,
            actor=voter if action == trail.DECIDE else "runbook-listener",
            approval=approval,
            outcome=approval.state.value,
            details={"recovered": True, "decided_at": str(approval.decided_at)},
        )

    def expire(self, approval: Approval) -> bool:
        """Expire (once), then resume the run so the gate stops it with the reason."""
        now = self.clock()
        if not expire(
            self.store,
            self.slack,
            approval,
            now=now,
            actor="runbook-listener",
            resume_after=now + HANDOFF,
        ):
            return False
        expired = self.store.get(approval.id)
        if expired is not None:
            self.carry(expired, transport="sweep")
        return True

    def sweep(self) -> int:
        """Expire every pending approval past its limit (a gate whose process died), and retry
        every decision whose run was not resumed. Returns how many rows it moved or retried."""
        done = sum(self.expire(a) for a in self.store.pending_expired(self.clock()))
        return done + self.retry_resumes()

    def retry_resumes(self) -> int:
        """Resume the runs of decisions that are due (each claimed first: one listener each)."""
        retried = 0
        for approval in self.store.resume_due(self.clock()):
            claimed = self.store.claim_resume(approval, until=self.clock() + HANDOFF)
            if claimed is None:
                continue  # another listener took it
            retried += 1
            self.carry(claimed, transport="sweep", retry=True)
        return retried

    def show(self, approval: Approval) -> None:
        show(self.slack, approval)

    def _refuse(self, click: Click, approval: Approval, reason: str) -> Outcome:
        """A verified click on a real approval's message that does not count: audited under
        the approval's run, and the clicker told why."""
        trail.audit(
            trail.REFUSE,
            approval_id=click.approval_id,
            actor=click.user or "unknown",
            approval=approval,
            outcome="refused",
            details={"reason": reason, **self._details(click)},
        )
        log.info("click by %s on approval %s refused: %s", click.user, click.approval_id, reason)
        self._tell(click, reason)
        return Outcome("refused", reason=reason, state=approval.state)

    def _drop(self, click: Click, kind: str, reason: str, *, tell: bool = True) -> Outcome:
        """A click that names no approval of ours (or not from its message): counted and
        logged at a limited rate; no audit record, since nothing ties it to a run."""
        self.refusals.refuse(kind, f"{reason} (approval id {click.approval_id[:64]!r})")
        if tell:
            self._tell(click, reason)
        return Outcome("refused", reason=reason)

    def _tell(self, click: Click, reason: str) -> None:
        if click.channel and click.user:
            try:
                self.slack.chat_postEphemeral(
                    channel=click.channel, user=click.user, text=f"Not recorded: {reason}."
                )
            except SlackApiError as exc:
                log.warning("could not tell %s why: %s", click.user, exc.response.get("error"))

    @staticmethod
    def _details(click: Click) -> dict[str, Any]:
        return {
            "decision": "approve" if click.approve else "reject",
            "transport": click.transport,
            "action_ts": click.action_ts,
            "team": click.team,
        }
