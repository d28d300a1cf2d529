"""The Slack view of an approval, rendered from the row every time it changes.

Built with slack_sdk's block models so Slack's size limits fail here, in tests, not in Slack.
"""

from __future__ import annotations

from datetime import datetime

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ConfirmObject,
    ContextBlock,
    HeaderBlock,
    MarkdownTextObject,
    SectionBlock,
)

from runbooks.approvals.record import Approval, ApprovalState

APPROVE_ACTION = "runbook_approve"
REJECT_ACTION = "runbook_reject"
_PLAN_LIMIT = 2600  # section text max is 3000; leave room for the fences and the note


def _when(at: datetime) -> str:
    """Slack shows this in each reader's time zone; the fallback is UTC."""
    fallback = at.strftime("%Y-%m-%d %H:%M:%S UTC")
    return f"<!date^{int(at.timestamp())}^{{date_short_pretty}} {{time_secs}}|{fallback}>"


def _people(users: list[str]) -> str:
    return ", ".join(f"<@{u}>" for u in users)


def _plan_section(plan_markdown: str) -> SectionBlock:
    plan = plan_markdown.strip()
    note = ""
    if len(plan) > _PLAN_LIMIT:
        plan, note = plan[:_PLAN_LIMIT], "\n_Plan truncated; the full plan is on the Prefect run._"
    return SectionBlock(text=MarkdownTextObject(text=f"```{plan}```{note}"))


def _summary(approval: Approval) -> SectionBlock:
    policy = approval.policy
    need = f"{policy.min_approvals} distinct approver" + ("s" if policy.min_approvals > 1 else "")
    return SectionBlock(
        text=MarkdownTextObject(
            text=(
                f"*Runbook:* {approval.runbook}   *Requested by:* {approval.requester}\n"
                f"*Plan digest:* `{approval.plan_digest}`\n"
                f"*Needs:* {need}   *Expires:* {_when(approval.expires_at)}"
            )
        )
    )


def _footer(approval: Approval) -> ContextBlock:
    return ContextBlock(
        elements=[
            MarkdownTextObject(text=f"flow run `{approval.flow_run_id}` · approval `{approval.id}`")
        ]
    )


def _buttons(approval: Approval) -> ActionsBlock:
    return ActionsBlock(
        block_id=f"approval:{approval.id}",
        elements=[
            ButtonElement(
                text="Approve",
                action_id=APPROVE_ACTION,
                value=approval.id,
                style="primary",
                confirm=ConfirmObject(
                    title="Approve this plan?",
                    text=f"The runbook will carry out plan {approval.plan_digest[:19]}….",
                    confirm="Approve",
                    deny="Cancel",
                ),
            ),
            ButtonElement(
                text="Reject",
                action_id=REJECT_ACTION,
                value=approval.id,
                style="danger",
                confirm=ConfirmObject(
                    title="Reject this plan?",
                    text="The runbook will stop without changing anything.",
                    confirm="Reject",
                    deny="Cancel",
                ),
            ),
        ],
    )


def status_line(approval: Approval) -> str:
    """One line saying where the approval stands; also the notification text."""
    state = approval.state
    if state is ApprovalState.APPROVED and approval.decided_at:
        who = _people(approval.approvers)
        return f":white_check_mark: Approved by {who} at {_when(approval.decided_at)}"
    if state is ApprovalState.REJECTED and approval.decided_at:
        return f":no_entry: Rejected by <@{approval.rejecter}> at {_when(approval.decided_at)}"
    if state is ApprovalState.EXPIRED:
        return f":hourglass: Expired at {_when(approval.expires_at)}: nobody decided in time"
    if state is ApprovalState.CANCELLED:
        return f":heavy_multiplication_x: Cancelled: {approval.reason or 'no reason given'}"
    if approval.approvers:
        got, need = len(approval.approvers), approval.policy.min_approvals
        return f":hourglass_flowing_sand: {got} of {need} approvals: {_people(approval.approvers)}"
    return ":hourglass_flowing_sand: Waiting for approval"


def render(approval: Approval) -> tuple[str, list[Block]]:
    """(notification text, blocks) for the approval as it stands now.

    Buttons only while pending; once decided they are replaced by who decided and when.
    """
    text = f"Approval needed: {approval.title}"
    blocks: list[Block] = [
        HeaderBlock(text=text[:150]),
        _summary(approval),
        _plan_section(approval.plan),
    ]
    line = ContextBlock(elements=[MarkdownTextObject(text=status_line(approval))])
    if approval.state is ApprovalState.PENDING:
        if approval.approvers:
            blocks.append(line)
        blocks.append(_buttons(approval))
    else:
        text = f"{approval.title}: {approval.state.value}"
        blocks.append(line)
    blocks.append(_footer(approval))
    return text, blocks
