"""What happens when someone clicks Approve or Reject: the ordered checks, one atomic
transition, the resume, and the new view. Transport-neutral (HTTP and Socket Mode share it).

Order (notes/slack-approvals.md §5): the transport was verified by the caller; the click is for
our app and workspace; the approval exists, is pending and not expired; the user may approve
(allow-list or user group members fetched now), is not the requester and has not voted; then
compare-and-set. Every refusal is audited with its reason and told to the clicker only.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from runbooks.approvals import trail
from runbooks.approvals.blocks import APPROVE_ACTION, REJECT_ACTION
from runbooks.approvals.policy import refusal
from runbooks.approvals.record import Approval, ApprovalState, utcnow, with_vote
from runbooks.approvals.resume import Resumed, resume_waiting_run
from runbooks.approvals.store import ApprovalStore
from runbooks.approvals.view import expire, show

log = logging.getLogger("runbooks.approvals")

Transport = Literal["http", "socket"]
_MAX_RACES = 5


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
    """The click in a ``block_actions`` payload, or None if it is not one of our buttons."""
    if payload.get("type") != "block_actions":
        return None
    actions = payload.get("actions") or []
    action = actions[0] if actions else {}
    if action.get("action_id") not in (APPROVE_ACTION, REJECT_ACTION):
        return None
    user = payload.get("user") or {}
    return Click(
        approval_id=str(action.get("value") or ""),
        approve=action.get("action_id") == APPROVE_ACTION,
        user=str(user.get("id") or ""),
        user_team=user.get("team_id"),
        team=(payload.get("team") or {}).get("id"),
        app_id=payload.get("api_app_id"),
        channel=(payload.get("container") or {}).get("channel_id")
        or (payload.get("channel") or {}).get("id"),
        action_ts=action.get("action_ts"),
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
    ) -> None:
        self.store = store
        self.slack = slack
        self.install = install
        self.clock = clock
        self.resume = resume

    def handle(self, click: Click) -> Outcome:
        reason = self._foreign(click)
        if reason:
            return self._refuse(click, None, reason)
        approval = self.store.get(click.approval_id)
        if approval is None:
            return self._refuse(click, None, "unknown approval")
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
        if click.user_team and click.user_team != self.install.team_id:
            return f"user from another workspace ({click.user_team})"
        if not click.user:
            return "click without a user"
        return None

    def _unauthorised(self, click: Click, approval: Approval) -> str | None:
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
        trail.audit(
            trail.DECIDE,
            approval_id=approval.id,
            actor=click.user,
            approval=approval,
            outcome=outcome_name,
            details=self._details(click),
        )
        resumed: Resumed | None = None
        if final:
            resumed = self.resume(approval)
            trail.audit(
                trail.RESUME,
                approval_id=approval.id,
                actor="runbook-listener",
                approval=approval,
                outcome=resumed,
                details={"transport": click.transport},
            )
            log.info(
                "approval %s %s by %s; run %s: %s",
                approval.id,
                approval.state.value,
                click.user,
                approval.flow_run_id,
                resumed,
            )
        # re-read: the gate may have stored the message's ts after we first read the row
        self.show(self.store.get(approval.id) or approval)
        return Outcome("decided" if final else "counted", state=approval.state, resumed=resumed)

    def expire(self, approval: Approval) -> bool:
        """Expire (once), then resume the run so the gate stops it with the reason."""
        if not expire(self.store, self.slack, approval, now=self.clock(), actor="runbook-listener"):
            return False
        expired = self.store.get(approval.id)
        if expired is not None:
            self.resume(expired)
        return True

    def sweep(self) -> int:
        """Expire every pending approval past its limit (a gate whose process died)."""
        return sum(self.expire(a) for a in self.store.pending_expired(self.clock()))

    def show(self, approval: Approval) -> None:
        show(self.slack, approval)

    def _refuse(self, click: Click, approval: Approval | None, reason: str) -> Outcome:
        trail.audit(
            trail.REFUSE,
            approval_id=click.approval_id,
            actor=click.user or "unknown",
            approval=approval,
            outcome="refused",
            details={"reason": reason, **self._details(click)},
        )
        log.info("click by %s on approval %s refused: %s", click.user, click.approval_id, reason)
        if click.channel and click.user:
            try:
                self.slack.chat_postEphemeral(
                    channel=click.channel, user=click.user, text=f"Not recorded: {reason}."
                )
            except SlackApiError as exc:
                log.warning("could not tell %s why: %s", click.user, exc.response.get("error"))
        return Outcome("refused", reason=reason, state=approval.state if approval else None)

    @staticmethod
    def _details(click: Click) -> dict[str, Any]:
        return {
            "decision": "approve" if click.approve else "reject",
            "transport": click.transport,
            "action_ts": click.action_ts,
            "team": click.team,
        }
