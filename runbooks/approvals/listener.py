"""``runbook listen``: one process that receives clicks (Socket Mode or HTTP), decides them,
expires approvals whose gate is gone, and retries decisions whose run was not resumed.
Several may run at once: the database decides once.
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

from slack_sdk import WebClient

from runbooks.approvals.clicks import ClickHandler, Install, Outcome, Transport, parse_click
from runbooks.approvals.config import SlackSettings, require
from runbooks.approvals.interaction import MalformedPayload
from runbooks.approvals.listener_http import HttpListener
from runbooks.approvals.listener_socket import SocketListener
from runbooks.approvals.refusals import RefusalCounter
from runbooks.approvals.slack_client import web_client
from runbooks.approvals.store import ApprovalStore

log = logging.getLogger("runbooks.approvals")


def discover_install(web: WebClient, settings: SlackSettings) -> Install:
    """Our workspace (and app, if Slack says) from ``auth.test``; RUNBOOK_SLACK_APP_ID wins."""
    answer = web.auth_test()
    return Install(team_id=str(answer["team_id"]), app_id=settings.app_id or answer.get("app_id"))


class Listener:
    """Start with ``http=(host, port)`` for the HTTP endpoint, else Socket Mode."""

    def __init__(
        self,
        settings: SlackSettings,
        *,
        http: tuple[str, int] | None = None,
        store: ApprovalStore | None = None,
        sweep_seconds: float = 30.0,
        workers: int = 8,
    ) -> None:
        require(settings, "bot_token", "signing_secret" if http else "app_token")
        self.web = web_client(settings)
        self.refusals = RefusalCounter()
        self.handler = ClickHandler(
            store or ApprovalStore(),
            self.web,
            discover_install(self.web, settings),
            refusals=self.refusals,
            retry_after=timedelta(seconds=sweep_seconds),
        )
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="click")
        self._stop = threading.Event()
        self._sweep_seconds = sweep_seconds
        self.http: HttpListener | None = None
        self.socket: SocketListener | None = None
        if http:
            assert settings.signing_secret is not None
            self.http = HttpListener(
                settings.signing_secret.get_secret_value(),
                lambda p: self.submit(p, "http"),
                check=self.malformed,
                refusals=self.refusals,
                host=http[0],
                port=http[1],
            )
        else:
            assert settings.app_token is not None
            self.socket = SocketListener(
                settings.app_token.get_secret_value(), self.web, lambda p: self.submit(p, "socket")
            )

    def start(self) -> Listener:
        if self.http:
            self.http.start()
        if self.socket:
            self.socket.start()
        threading.Thread(target=self._sweep_loop, daemon=True, name="approval-sweep").start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self.http:
            self.http.stop()
        if self.socket:
            self.socket.stop()
        self._pool.shutdown(wait=True)

    def submit(self, payload: dict[str, Any], transport: Transport) -> None:
        """After the ack: decide in a worker thread, so the transport is free at once."""
        self._pool.submit(self._decide, payload, transport)

    def malformed(self, payload: dict[str, Any]) -> str | None:
        """Why a verified payload is not a shape Slack sends (answered 400), or None."""
        try:
            parse_click(payload, "http")
        except MalformedPayload as exc:
            return str(exc)
        return None

    def _decide(self, payload: dict[str, Any], transport: Transport) -> Outcome | None:
        try:
            click = parse_click(payload, transport)
        except MalformedPayload as exc:  # Socket Mode: acked already; HTTP checked before the ack
            self.refusals.refuse("malformed_payload", str(exc))
            return None
        if click is None:
            return None
        try:
            return self.handler.handle(click)
        except Exception:
            log.exception("click on approval %s by %s failed", click.approval_id, click.user)
            raise

    @property
    def alive(self) -> bool:
        """Can clicks arrive? A dead socket means silently no approvals (fail closed)."""
        return self.socket.connected if self.socket else self.http is not None

    def _sweep_loop(self) -> None:
        while not self._stop.wait(self._sweep_seconds):
            if not self.alive:
                log.warning("Socket Mode connection is down: approval clicks cannot arrive")
            try:
                self.handler.sweep()
            except Exception:
                log.exception("expiry and resume sweep failed")
            self.refusals.flush()
