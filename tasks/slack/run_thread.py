"""Where a run tells people how it goes: the Slack thread of its approval, or nowhere.

A run approved in Slack posts its batches as replies in the approval's thread and its outcome
to the channel; a run without an approval thread posts nothing (the CLI and the UI show it).
"""

from __future__ import annotations

from dataclasses import dataclass

from tasks.slack.messages import SlackThread, post_outcome, post_progress


@dataclass
class RunThread:
    thread: SlackThread | None = None

    def progress(self, text: str) -> None:
        """A line in the approval's thread (a courtesy: a Slack failure never fails the run)."""
        if self.thread:
            post_progress(self.thread, text)

    def outcome(self, text: str) -> None:
        """The final outcome, broadcast from the approval's thread to the channel."""
        if self.thread:
            post_outcome(self.thread, text)
