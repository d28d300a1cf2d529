"""A local stand-in for Slack (Web API over HTTP, Socket Mode over WebSocket) and a click
simulator, so the gate and the listener run unmodified without reaching slack.com.

Real servers on 127.0.0.1 speaking Slack's wire formats: slack-sdk's own HTTP and WebSocket
code is exercised, nothing is patched.
"""

from devtools.slack_standin.clicks import ClickSimulator
from devtools.slack_standin.server import SlackStandin

__all__ = ["ClickSimulator", "SlackStandin"]
