"""``python -m devtools.slack_standin``: run the stand-in by hand for a demo of the gate.

Prints the environment to export; stops on Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import argparse
import signal
import threading

from devtools.slack_standin.server import SlackStandin
from devtools.slack_standin.socket_mode import SocketModeStandin


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--approver", action="append", default=["U0APPROVER"])
    args = parser.parse_args()
    web = SlackStandin().start(port=args.port)
    socket = SocketModeStandin(web).start()
    for user in args.approver:
        web.add_user(user)
    print(f"export RUNBOOK_SLACK_API_URL={web.api_url}")
    print(f"export SLACK_BOT_TOKEN={web.bot_token} SLACK_APP_TOKEN={web.app_token}")
    print("export RUNBOOK_SLACK_CHANNEL=C0OPS", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    socket.stop()
    web.stop()


if __name__ == "__main__":
    main()
