"""``runbook listen``: receive Slack approval clicks and resume the runs waiting on them."""

from __future__ import annotations

import logging
import signal
import threading
from typing import Annotated

import typer
from slack_sdk.errors import SlackApiError

from runbooks.approvals.config import SlackNotConfigured, load_slack_settings
from runbooks.approvals.listener import Listener
from runbooks.cli.errors import UserError, reported_errors


def _address(value: str, option: str = "--http") -> tuple[str, int]:
    """``HOST:PORT``, or ``PORT`` / ``:PORT`` for 127.0.0.1 (never all interfaces by default)."""
    host, _, port = value.rpartition(":")
    if not port.isdigit() or not 0 <= int(port) <= 65535:
        raise UserError(f"{option} wants HOST:PORT or PORT (e.g. 127.0.0.1:3000), got {value!r}")
    return host.strip("[]") or "127.0.0.1", int(port)


def listen(
    http: Annotated[
        str | None,
        typer.Option(
            "--http",
            metavar="[HOST:]PORT",
            help="Serve Slack's interactivity requests at http://HOST:PORT/slack/events "
            "instead of Socket Mode. HOST defaults to 127.0.0.1: put a TLS proxy in front.",
        ),
    ] = None,
) -> None:
    """Receive Approve/Reject clicks (Socket Mode by default: no inbound port) and resume runs.

    Needs SLACK_BOT_TOKEN, and SLACK_APP_TOKEN (Socket Mode) or SLACK_SIGNING_SECRET (--http);
    the runs' PREFECT_API_URL; the audit database (RUNBOOK_AUDIT_URL or the state dir).
    With --http, GET /metrics counts refused requests (they are logged, not audited).
    """
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    for chatty in ("httpx", "httpcore", "slack_sdk"):  # request lines, not decisions
        logging.getLogger(chatty).setLevel(logging.WARNING)
    with reported_errors(SlackNotConfigured, SlackApiError, OSError):
        address = _address(http) if http else None
        listener = Listener(load_slack_settings(), http=address).start()
    where = listener.http.url if listener.http else "Slack over Socket Mode"
    typer.echo(f"listening for approval clicks on {where}", err=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    finally:
        listener.stop()
        typer.echo(f"listener stopped; {listener.refusals.summary()}", err=True)
