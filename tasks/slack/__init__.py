"""Prefect tasks that talk to Slack: post, update, thread replies. Retried when Slack says so."""

from tasks.slack.messages import SlackThread, post_message, post_outcome, post_progress
from tasks.slack.run_thread import RunThread

__all__ = ["RunThread", "SlackThread", "post_message", "post_outcome", "post_progress"]
