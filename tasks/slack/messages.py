"""Posting to Slack from runbooks.

Two layers of retry: the WebClient's handlers honour HTTP 429 Retry-After and retry 5xx and
connection errors; the task retries ``ok: false`` errors that are Slack's trouble
(``ratelimited``, ``internal_error``, …). Anything else (``channel_not_found``,
``not_in_channel``, ``invalid_auth``) fails at once with Slack's error named.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from prefect import task
from prefect.client.schemas.objects import TaskRun
from prefect.states import State
from slack_sdk.errors import SlackApiError

from runbooks.approvals.config import load_slack_settings, require
from runbooks.approvals.slack_client import TRANSIENT_ERRORS, web_client


@dataclass(frozen=True)
class SlackThread:
    """Where a run talks: the approval message (channel ID + ts) whose thread gets progress."""

    channel: str
    ts: str


def _transient(task: Any, task_run: TaskRun, state: State[Any]) -> bool:
    try:
        state.result()
    except SlackApiError as exc:
        return exc.response.get("error") in TRANSIENT_ERRORS
    except Exception:
        return False
    return False


@task(retries=3, retry_delay_seconds=[1, 2, 5], retry_condition_fn=_transient)
def post_message(
    text: str,
    *,
    blocks: list[dict[str, Any]] | None = None,
    channel: str | None = None,
    thread: SlackThread | None = None,
    broadcast: bool = False,
    metadata: dict[str, Any] | None = None,
) -> SlackThread:
    """Post to the runbook channel (or a thread in it); returns where the message landed."""
    settings = load_slack_settings()
    require(settings, "bot_token", "channel")
    target = thread.channel if thread else (channel or settings.channel)
    args: dict[str, Any] = {"channel": target, "text": text}
    if blocks is not None:
        args["blocks"] = blocks
    if thread is not None:
        args["thread_ts"] = thread.ts
        args["reply_broadcast"] = broadcast
    if metadata is not None:
        args["metadata"] = metadata
    answer = web_client(settings).chat_postMessage(**args)
    return SlackThread(channel=str(answer["channel"]), ts=str(answer["ts"]))


def post_progress(thread: SlackThread | None, text: str) -> None:
    """A progress line as a reply in the approval's thread (or the channel if none).

    Progress is a courtesy: a Slack failure here is logged by Prefect, never fails the run.
    """
    state = post_message(text, thread=thread, return_state=True)
    if state.is_failed():
        from prefect import get_run_logger

        get_run_logger().warning("could not post progress to Slack: %s", state.message)


def post_outcome(thread: SlackThread | None, text: str) -> None:
    """The final outcome, to the channel: broadcast from the thread when there is one."""
    state = post_message(text, thread=thread, broadcast=True, return_state=True)
    if state.is_failed():
        from prefect import get_run_logger

        get_run_logger().warning("could not post the outcome to Slack: %s", state.message)
